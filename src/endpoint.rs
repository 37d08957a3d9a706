//! The endpoint as the config writes it, parsed once when the config is read: the URL requests
//! go to, without credentials, and the credentials written in it. Credentials in a URL
//! (`https://user:pw@host`, or `https://sk_live_…@host`, an API key as the user name) travel as
//! the Basic auth header, never in the URL, and every message shows the URL without them.
//! Modelled on Vector's `UriSerde`.

use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

#[derive(Clone)]
pub struct Endpoint {
    /// Without userinfo.
    url: Url,
    credentials: Option<Credentials>,
    /// As the config wrote it, so a config serialises back unchanged.
    written: String,
}

/// User name and password from the URL, percent-decoded.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    /// The Basic credential as sent (`base64(user:password)`), which is a secret too.
    pub fn basic(&self) -> String {
        basic_credential(&self.username, &self.password)
    }
}

/// `base64(user:password)`, the value of a Basic Authorization header after `Basic `.
pub fn basic_credential(username: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
}

/// `Basic <credential>` as a header value marked sensitive (kept out of debug output), for
/// `Authorization` or `Proxy-Authorization`.
pub fn basic_header(credential: &str) -> reqwest::header::HeaderValue {
    let mut value = reqwest::header::HeaderValue::try_from(format!("Basic {credential}"))
        .expect("base64 is a header value");
    value.set_sensitive(true);
    value
}

impl Endpoint {
    pub fn parse(written: &str) -> Result<Self, url::ParseError> {
        let mut url = Url::parse(written)?;
        let credentials = (!url.username().is_empty() || url.password().is_some()).then(|| {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            Credentials {
                username: decode(url.username()),
                password: decode(url.password().unwrap_or("")),
            }
        });
        if credentials.is_some() {
            // Cannot fail: a URL that has a user name can have it removed.
            let _ = url.set_username("");
            let _ = url.set_password(None);
        }
        Ok(Endpoint {
            url,
            credentials,
            written: written.to_string(),
        })
    }

    /// Where requests go; what messages show.
    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// Every form in which the URL's credentials could be printed: as written (percent-encoded),
    /// decoded, and as the Basic credential that is sent. A user name alone is the credential
    /// (an API key), so it is secret then; beside a password it is not.
    pub fn secrets(&self) -> Vec<String> {
        let Some(c) = &self.credentials else {
            return Vec::new();
        };
        let mut out = vec![c.basic()];
        let written = Url::parse(&self.written).ok();
        let (user, password) = written
            .as_ref()
            .map_or(("", None), |u| (u.username(), u.password()));
        match password {
            Some(p) => out.extend([c.password.clone(), p.to_string()]),
            None => out.extend([c.username.clone(), user.to_string()]),
        }
        out
    }
}

/// The URL without credentials.
impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str())
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let written = String::deserialize(deserializer)?;
        Endpoint::parse(&written)
            .map_err(|e| de::Error::custom(format!("url: not a valid URL ({e})")))
    }
}

impl Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_url_decoded() {
        let e = Endpoint::parse("https://al%40ce:p%3Aw@host:8443/a?b=1").unwrap();
        assert_eq!(e.to_string(), "https://host:8443/a?b=1");
        let c = e.credentials().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("al@ce", "p:w"));
        assert!(e.secrets().contains(&"p:w".to_string()));
        assert!(e.secrets().contains(&"p%3Aw".to_string()));
        assert!(!e.secrets().contains(&"al@ce".to_string()));
    }

    #[test]
    fn a_user_name_alone_is_the_secret() {
        let e = Endpoint::parse("https://sk_live_abc@host/").unwrap();
        assert_eq!(e.to_string(), "https://host/");
        assert_eq!(e.credentials().unwrap().password, "");
        let secrets = e.secrets();
        assert!(secrets.contains(&"sk_live_abc".to_string()), "{secrets:?}");
        assert!(secrets.contains(&basic_credential("sk_live_abc", "")));
    }

    #[test]
    fn no_credentials_no_secrets() {
        let e = Endpoint::parse("http://h/x").unwrap();
        assert!(e.credentials().is_none() && e.secrets().is_empty());
    }
}
