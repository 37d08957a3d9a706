//! The HTTP client every request of a run goes through, built once: TLS (custom trust, client
//! certificate, HTTP/2 when the endpoint offers it), the headers that never change, no redirects,
//! a pool sized for the concurrency,
//! and proxy support only when the configured proxy or the environment's settings cover the
//! endpoint.

use std::time::Duration;

use reqwest::header::HeaderValue;

use hyper_util::client::proxy::matcher::Matcher;

use crate::config::Config;
use crate::proxy::ProxyError;
use crate::shape::Shape;

/// `proxy`: where [`proxy_for`] says requests go through, if anywhere.
pub fn build(
    config: &Config,
    shape: Shape,
    proxy: Option<&Proxy>,
) -> Result<reqwest::Client, String> {
    let mut tls =
        (*crate::tls::client_config(config.tls.as_ref()).map_err(|e| e.to_string())?).clone();
    // An endpoint that speaks HTTP/2 takes every request on one connection (one handshake, no
    // pool of hundreds of sockets at a high limit); reqwest clears this for a TLS proxy.
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let headers = crate::headers::static_headers(config, shape).map_err(|e| e.to_string())?;
    let mut client = reqwest::Client::builder();
    match (proxy, &config.proxy) {
        (None, _) => client = client.no_proxy(),
        // Replaces the environment's proxies (reqwest then reads none).
        (Some(_), Some(configured)) => client = client.proxy(configured.for_client()?),
        (Some(_), None) => {}
    }
    client
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .pool_max_idle_per_host((config.concurrency as usize).max(1))
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .build()
        .map_err(|e| format!("could not build the HTTP client: {}", e.without_url()))
}

/// A proxy that requests to the endpoint go through.
pub struct Proxy {
    /// To resolve and connect to.
    pub host: String,
    pub port: u16,
    /// `scheme://host:port`, never its credentials.
    pub shown: String,
    /// An https proxy: spoken to over TLS.
    pub tls: bool,
    /// `Proxy-Authorization` for a proxy whose URL carries credentials.
    pub authorization: Option<HeaderValue>,
}

/// The proxy requests for the config's endpoint go through, if any: the config's `proxy` when
/// set, else the environment's settings (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`,
/// read by the matcher reqwest itself uses). `write`'s client and `check`'s probe both take their
/// route from here, so a check cannot pass on a path the sync does not take. The endpoint's
/// scheme and host are the same for every request of a run, so without a proxy the client is
/// built without proxy support: the same requests, without matching each one against the
/// environment's proxies twice (a per-request cost of the default client).
pub fn proxy_for(config: &Config) -> Result<Option<Proxy>, ProxyError> {
    let (matcher, credential) = match &config.proxy {
        Some(configured) => (configured.matcher()?, configured.credential()),
        None => (Matcher::from_system(), None),
    };
    let Ok(uri) = config.url.url().as_str().parse::<http::Uri>() else {
        return Ok(None);
    };
    let Some(intercept) = matcher.intercept(&uri) else {
        return Ok(None);
    };
    let proxy = intercept.uri();
    let Some(host) = proxy.host() else {
        return Ok(None);
    };
    let port = proxy.port_u16().unwrap_or(match proxy.scheme_str() {
        Some("https") => 443,
        _ => 80,
    });
    let authorization = match credential {
        Some(credential) => Some(crate::endpoint::basic_header(&credential)),
        None => intercept.basic_auth().cloned(),
    };
    Ok(Some(Proxy {
        shown: format!("{}://{host}:{port}", proxy.scheme_str().unwrap_or("http")),
        // An IPv6 address is written in brackets in a URI, without them in a lookup.
        host: host.trim_matches(['[', ']']).to_string(),
        port,
        tls: proxy.scheme_str() == Some("https"),
        authorization,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(url: &str) -> Proxy {
        let config = serde_json::json!({"url": "http://127.0.0.1:9/hook", "proxy": {"url": url}});
        proxy_for(&serde_json::from_value(config).unwrap())
            .unwrap()
            .expect("a proxy")
    }

    #[test]
    fn a_proxy_without_a_port_has_its_schemes_own() {
        let tls = proxy("https://proxy.example");
        assert_eq!((tls.port, tls.tls), (443, true));
        assert_eq!(tls.shown, "https://proxy.example:443");
        let plain = proxy("http://proxy.example");
        assert_eq!((plain.port, plain.tls), (80, false));
        assert_eq!(proxy("http://[::1]:3128").host, "::1");
    }
}
