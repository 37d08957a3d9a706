//! A proxy set in the config (`proxy`), for orchestrators that give a connector no environment
//! variables: checked once, then turned into the same matcher the environment's proxy variables
//! give (so `write` and `check` take one route, [`crate::delivery::proxy_for`]) and into the
//! HTTP client's proxy.

use hyper_util::client::proxy::matcher::Matcher;
use url::Url;

use crate::config::ProxyConfig;
use crate::endpoint::basic_credential;

/// Why a configured proxy cannot be used; never shows its URL (it may carry credentials).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("proxy.url: is not a URL ({0})")]
    NotUrl(url::ParseError),
    #[error("proxy.url: the scheme '{0}' is not supported; use http:// or https://")]
    Scheme(String),
    #[error("proxy.url: carries credentials; put them in proxy.username and proxy.password, which are kept secret")]
    Credentials,
    #[error("proxy.password: is set without proxy.username")]
    PasswordOnly,
}

impl ProxyConfig {
    /// The proxy's URL, if it is one requests can go through.
    pub fn parsed(&self) -> Result<Url, ProxyError> {
        let url = Url::parse(self.url.trim()).map_err(ProxyError::NotUrl)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ProxyError::Scheme(url.scheme().to_string()));
        }
        if !url.has_host() {
            return Err(ProxyError::NotUrl(url::ParseError::EmptyHost));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ProxyError::Credentials);
        }
        if self.password.is_some() && self.username.is_none() {
            return Err(ProxyError::PasswordOnly);
        }
        Ok(url)
    }

    /// `base64(username:password)`, the `Proxy-Authorization: Basic` credential, when the
    /// proxy takes one.
    pub fn credential(&self) -> Option<String> {
        let username = self.username.as_deref()?;
        Some(basic_credential(
            username,
            self.password.as_deref().unwrap_or_default(),
        ))
    }

    /// The matcher the environment's variables would give for this proxy: every scheme through
    /// it, `bypass` as `NO_PROXY`.
    pub fn matcher(&self) -> Result<Matcher, ProxyError> {
        Ok(Matcher::builder()
            .all(self.parsed()?.to_string())
            .no(self.bypass.join(","))
            .build())
    }

    /// The HTTP client's proxy: every request through it but to the `bypass` hosts (the token
    /// endpoint's host may be one), with its credentials (for plain requests and for the CONNECT
    /// tunnel alike).
    pub fn for_client(&self) -> Result<reqwest::Proxy, String> {
        let url = self.parsed().map_err(|e| e.to_string())?;
        let proxy = reqwest::Proxy::all(url.as_str())
            .map_err(|e| format!("proxy.url: {}", e.without_url()))?
            .no_proxy(reqwest::NoProxy::from_string(&self.bypass.join(",")));
        Ok(match self.username.as_deref() {
            Some(username) => {
                proxy.basic_auth(username, self.password.as_deref().unwrap_or_default())
            }
            None => proxy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(v: serde_json::Value) -> ProxyConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn only_http_and_https_proxies_without_credentials_in_the_url() {
        use serde_json::json;
        for (config, says) in [
            (json!({"url": "socks5://p:1080"}), "scheme 'socks5'"),
            (json!({"url": "not a url"}), "is not a URL"),
            (
                json!({"url": "http://u:s3cr3t@p:3128"}),
                "carries credentials",
            ),
            // A user name alone, or a password alone, is a credential too.
            (json!({"url": "http://u@p:3128"}), "carries credentials"),
            (
                json!({"url": "http://:s3cr3t@p:3128"}),
                "carries credentials",
            ),
            (
                json!({"url": "http://p:3128", "password": "s3cr3t"}),
                "without proxy.username",
            ),
        ] {
            let message = proxy(config.clone()).parsed().unwrap_err().to_string();
            assert!(message.contains(says), "{config}: {message}");
            assert!(!message.contains("s3cr3t"), "{message}");
        }
        for ok in ["http://p:3128", "https://p", "HTTP://[::1]:8080/"] {
            proxy(serde_json::json!({ "url": ok })).parsed().unwrap();
        }
    }

    #[test]
    fn bypassed_hosts_are_not_intercepted() {
        let matcher = proxy(serde_json::json!({"url": "http://p:3128",
            "bypass": ["internal.example", "10.0.0.0/8"]}))
        .matcher()
        .unwrap();
        let intercepted = |u: &str| matcher.intercept(&u.parse().unwrap()).is_some();
        assert!(intercepted("https://api.example.com/x"));
        assert!(intercepted("http://127.0.0.1:9/x"));
        assert!(!intercepted("https://a.internal.example/x"));
        assert!(!intercepted("http://10.1.2.3/x"));
    }

    #[test]
    fn credentials_go_in_basic_auth() {
        let p = proxy(serde_json::json!({"url": "http://p", "username": "u", "password": "pw"}));
        assert_eq!(p.credential().as_deref(), Some("dTpwdw=="));
        assert_eq!(
            proxy(serde_json::json!({"url": "http://p"})).credential(),
            None
        );
    }
}
