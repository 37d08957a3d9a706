//! The headers every request carries that do not change per record: User-Agent, Content-Type,
//! the configured `headers` and the auth header. Built once, reused for every request.

use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONNECTION, CONTENT_ENCODING,
    CONTENT_LENGTH, CONTENT_TYPE, HOST, TE, TRAILER, TRANSFER_ENCODING, UPGRADE, USER_AGENT,
};

use crate::config::{Auth, Config};
use crate::endpoint::basic_credential;
use crate::shape::Shape;

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
pub const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
pub const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");

/// Headers the connector owns: a configured header may not replace them, or a receiver could be
/// told a forged identity or signature.
const RESERVED: [HeaderName; 5] = [
    IDEMPOTENCY_KEY,
    WEBHOOK_ID,
    WEBHOOK_TIMESTAMP,
    WEBHOOK_SIGNATURE,
    CONTENT_ENCODING,
];

/// Headers that frame the body or steer the connection: the HTTP client sets them per request
/// from what it actually sends. A configured `Content-Length: 5` cut every body to 5 bytes on a
/// reused connection (the rest was read as the next request), and a larger one left every request
/// waiting for bytes that never came.
const FRAMING: [HeaderName; 8] = [
    CONTENT_LENGTH,
    TRANSFER_ENCODING,
    HOST,
    CONNECTION,
    UPGRADE,
    TE,
    TRAILER,
    HeaderName::from_static("keep-alive"),
];

pub fn user_agent() -> String {
    format!("destination-webhook/{}", env!("CARGO_PKG_VERSION"))
}

#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("headers[{0}]: expected \"Name: Value\" (no colon found)")]
    NoColon(usize),
    #[error("headers[{index}]: '{name}' is not a valid HTTP header name")]
    BadName { index: usize, name: String },
    #[error("headers[{index}]: the value of '{name}' is not a valid HTTP header value (control characters or non-visible bytes)")]
    BadValue { index: usize, name: String },
    #[error("headers[{index}]: '{name}' {why} and cannot be configured")]
    Reserved {
        index: usize,
        name: String,
        why: &'static str,
    },
    #[error("auth: {0}")]
    Auth(String),
}

/// Why a header name may not be configured, as the message's wording; `None` when it may.
pub(crate) fn refusal(name: &HeaderName) -> Option<&'static str> {
    if RESERVED.contains(name) {
        Some("is set by the connector itself")
    } else if FRAMING.contains(name) {
        Some("frames the body or steers the connection (the HTTP client sets it)")
    } else {
        None
    }
}

/// Splits on the FIRST colon and trims both sides (Valmi split on every colon, which cut
/// `Bearer abc:def` down to `Bearer abc`).
pub fn split_header(entry: &str) -> Option<(&str, &str)> {
    entry.split_once(':').map(|(n, v)| (n.trim(), v.trim()))
}

pub fn static_headers(config: &Config, shape: Shape) -> Result<HeaderMap, HeaderError> {
    let mut map = HeaderMap::new();
    map.insert(
        USER_AGENT,
        HeaderValue::from_str(&user_agent()).expect("ascii user agent"),
    );
    if let Some(content_type) = shape.content_type() {
        map.insert(CONTENT_TYPE, content_type);
    }
    for (index, entry) in config.headers.iter().enumerate() {
        let (name, value) = split_header(entry).ok_or(HeaderError::NoColon(index))?;
        let header_name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| HeaderError::BadName {
                index,
                name: name.to_string(),
            })?;
        if let Some(why) = refusal(&header_name) {
            return Err(HeaderError::Reserved {
                index,
                name: name.to_string(),
                why,
            });
        }
        let mut header_value = HeaderValue::from_str(value).map_err(|_| HeaderError::BadValue {
            index,
            name: name.to_string(),
        })?;
        header_value.set_sensitive(crate::redact::is_sensitive_header(name));
        map.append(header_name, header_value);
    }
    if let Some((name, value)) = auth_header(&effective_auth(config))? {
        map.insert(name, value);
    }
    Ok(map)
}

/// The configured auth, or Basic from credentials written in the URL (`https://user:pw@host`).
/// Validation refuses a config that has both.
fn effective_auth(config: &Config) -> Auth {
    match (&config.auth, config.url.credentials()) {
        (Auth::None, Some(c)) => Auth::Basic {
            username: c.username.clone(),
            password: c.password.clone(),
        },
        (auth, _) => auth.clone(),
    }
}

/// Headers as a dry run prints them: credentials replaced by `<redacted>`.
pub fn shown(headers: &HeaderMap) -> String {
    headers
        .iter()
        .map(|(name, value)| {
            let text = if value.is_sensitive() {
                "<redacted>"
            } else {
                value.to_str().unwrap_or("<binary>")
            };
            format!("{name}: {text}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn auth_header(auth: &Auth) -> Result<Option<(HeaderName, HeaderValue)>, HeaderError> {
    let secret = |text: String| {
        HeaderValue::from_str(&text)
            .map(|mut v| {
                v.set_sensitive(true);
                v
            })
            .map_err(|_| {
                HeaderError::Auth(
                    "the credential contains characters not allowed in a header".into(),
                )
            })
    };
    Ok(match auth {
        // The token changes during a run: set per attempt (`oauth::TokenSource`).
        Auth::None | Auth::Oauth2ClientCredentials(_) => None,
        Auth::Bearer { token } => Some((AUTHORIZATION, secret(format!("Bearer {token}"))?)),
        Auth::Basic { username, password } => Some((
            AUTHORIZATION,
            secret(format!("Basic {}", basic_credential(username, password)))?,
        )),
        Auth::ApiKey {
            header_name,
            api_key,
        } => {
            let name = HeaderName::from_bytes(header_name.trim().as_bytes()).map_err(|_| {
                HeaderError::Auth(format!(
                    "header_name '{header_name}' is not a valid HTTP header name"
                ))
            })?;
            if let Some(why) = refusal(&name) {
                return Err(HeaderError::Auth(format!(
                    "header_name '{header_name}' {why}"
                )));
            }
            Some((name, secret(api_key.clone())?))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(v: serde_json::Value) -> Config {
        serde_json::from_value(v).unwrap()
    }

    fn static_headers_of(config: &Config) -> Result<HeaderMap, HeaderError> {
        static_headers(config, Shape::of(config))
    }

    #[test]
    fn splits_on_the_first_colon_only() {
        assert_eq!(
            split_header("Authorization: Bearer abc:def"),
            Some(("Authorization", "Bearer abc:def"))
        );
        assert_eq!(
            split_header("X-Test:  spaced  "),
            Some(("X-Test", "spaced"))
        );
        assert_eq!(split_header("nocolon"), None);
    }

    #[test]
    fn builds_configured_and_auth_headers() {
        let h = static_headers_of(&config(serde_json::json!({"url": "http://h",
            "headers": ["Authorization: Bearer abc:def", "X-Test:  spaced  "],
            "auth": {"type": "api_key", "header_name": "X-Api-Key", "api_key": "k1"}})))
        .unwrap();
        assert_eq!(h["authorization"], "Bearer abc:def");
        assert_eq!(h["x-test"], "spaced");
        assert_eq!(h["x-api-key"], "k1");
        assert_eq!(h["content-type"], "application/json");
        let h = static_headers_of(&config(serde_json::json!({"url": "http://h",
            "auth": {"type": "basic", "username": "u", "password": "p"}})))
        .unwrap();
        assert_eq!(h["authorization"], "Basic dTpw");
    }

    #[test]
    fn refuses_reserved_and_invalid_headers() {
        for (entry, expect) in [
            ("Idempotency-Key: x", "set by the connector"),
            ("Content-Length: 5", "frames the body"),
            ("keep-alive: timeout=5", "frames the body"),
            ("HOST: elsewhere", "frames the body"),
            ("Bad Name: v", "not a valid HTTP header name"),
            ("X-A: line\nbreak", "not a valid HTTP header value"),
            ("nocolon", "no colon"),
        ] {
            let err = static_headers_of(&config(
                serde_json::json!({"url": "http://h", "headers": [entry]}),
            ))
            .unwrap_err();
            assert!(err.to_string().contains(expect), "{entry}: {err}");
        }
    }
}
