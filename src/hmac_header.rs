//! HMAC-SHA256 signatures in the conventions receivers other than Standard Webhooks verify:
//! GitHub's `X-Hub-Signature-256: sha256=<hex>`, Shopify's `X-Shopify-Hmac-Sha256: <base64>`,
//! and, with a timestamp header, Stripe's signed payload `<timestamp>.<body>`. Such receivers
//! verify the raw request body they read off the wire, so the signature covers exactly the bytes
//! sent (the gzip-compressed body when compression is on, nothing for a GET).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;

use crate::config::{DigestEncoding, HmacSignature};

/// Why an `hmac_signature` setting cannot be used; never shows the secret.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HmacConfigError {
    #[error("hmac_signature.secret: is empty; a signature without a secret proves nothing")]
    NoSecret,
    #[error("hmac_signature.{field}: '{name}' is not a valid HTTP header name")]
    BadName { field: &'static str, name: String },
    #[error("hmac_signature.{field}: '{name}' {why} and cannot carry the signature")]
    Reserved {
        field: &'static str,
        name: String,
        why: &'static str,
    },
    #[error("hmac_signature.timestamp_header: is the same header as header_name")]
    SameHeader,
    #[error("hmac_signature.prefix: is not a valid HTTP header value (control characters or non-visible bytes)")]
    BadPrefix,
}

/// Signs request bodies into the configured header; keyed once, cloned per request.
pub struct HeaderSigner {
    mac: Hmac<Sha256>,
    header: HeaderName,
    timestamp_header: Option<HeaderName>,
    prefix: String,
    encoding: DigestEncoding,
}

impl HeaderSigner {
    pub fn new(config: &HmacSignature) -> Result<Self, HmacConfigError> {
        if config.secret.is_empty() {
            return Err(HmacConfigError::NoSecret);
        }
        let header = header_name("header_name", &config.header_name)?;
        let timestamp_header = config
            .timestamp_header
            .as_deref()
            .map(|name| header_name("timestamp_header", name))
            .transpose()?;
        if timestamp_header.as_ref() == Some(&header) {
            return Err(HmacConfigError::SameHeader);
        }
        HeaderValue::from_str(&config.prefix).map_err(|_| HmacConfigError::BadPrefix)?;
        Ok(HeaderSigner {
            mac: Hmac::new_from_slice(config.secret.as_bytes()).expect("HMAC takes any key length"),
            header,
            timestamp_header,
            prefix: config.prefix.clone(),
            encoding: config.encoding,
        })
    }

    /// The signature of `body` as the header carries it; with a timestamp header the signed
    /// text is `<timestamp>.<body>`.
    pub fn sign(&self, timestamp: u64, body: &[u8]) -> String {
        let mut mac = self.mac.clone();
        if self.timestamp_header.is_some() {
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
        }
        mac.update(body);
        let digest = mac.finalize().into_bytes();
        let mut out = self.prefix.clone();
        match self.encoding {
            DigestEncoding::Hex => out.push_str(&hex::encode(digest)),
            DigestEncoding::Base64 => STANDARD.encode_string(digest, &mut out),
        }
        out
    }

    /// Adds the signature (and the timestamp, when configured) to a request's headers.
    pub fn apply(&self, headers: &mut HeaderMap, timestamp: u64, body: &[u8]) {
        if let Some(name) = &self.timestamp_header {
            headers.insert(name.clone(), HeaderValue::from(timestamp));
        }
        let value = HeaderValue::try_from(self.sign(timestamp, body))
            .expect("a checked prefix and a hex or base64 digest");
        headers.insert(self.header.clone(), value);
    }

    /// The headers as a dry run shows them: names, with the signature's form but not its value.
    pub fn shown(&self) -> String {
        let timestamp = match &self.timestamp_header {
            Some(name) => format!(", {name}: <now>"),
            None => String::new(),
        };
        format!("{timestamp}, {}: {}<hmac>", self.header, self.prefix)
    }
}

/// A header name the signature may go in: valid, and not one the connector or the HTTP client
/// sets itself.
fn header_name(field: &'static str, name: &str) -> Result<HeaderName, HmacConfigError> {
    let parsed =
        HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| HmacConfigError::BadName {
            field,
            name: name.to_string(),
        })?;
    match crate::headers::refusal(&parsed) {
        Some(why) => Err(HmacConfigError::Reserved {
            field,
            name: name.to_string(),
            why,
        }),
        None => Ok(parsed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(extra: serde_json::Value) -> Result<HeaderSigner, HmacConfigError> {
        let mut config =
            serde_json::json!({"header_name": "X-Sig", "secret": "It's a Secret to Everybody"});
        config
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        HeaderSigner::new(&serde_json::from_value(config).unwrap())
    }

    #[test]
    fn matches_githubs_documented_example() {
        // docs.github.com, "Validating webhook deliveries": secret "It's a Secret to Everybody",
        // payload "Hello, World!".
        let s = signer(serde_json::json!({"prefix": "sha256="})).unwrap();
        assert_eq!(
            s.sign(0, b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn base64_and_timestamp_forms() {
        let plain = signer(serde_json::json!({"encoding": "base64"})).unwrap();
        // The same digest as GitHub's example, in base64 (computed with Python's hmac).
        assert_eq!(
            plain.sign(7, b"Hello, World!"),
            "dXEH6g6yUJ/CESIczphLijdXC211hsIsRvQ3nIsEPhc="
        );
        let stamped = signer(serde_json::json!({"timestamp_header": "X-Ts"})).unwrap();
        assert_eq!(
            stamped.sign(7, b"Hello, World!"),
            signer(serde_json::json!({}))
                .unwrap()
                .sign(0, b"7.Hello, World!")
        );
        let mut headers = HeaderMap::new();
        stamped.apply(&mut headers, 7, b"x");
        assert_eq!(headers["x-ts"], "7");
        assert_eq!(headers["x-sig"], stamped.sign(7, b"x").as_str());
    }

    /// A dry run names both headers and the signature's form, never a signature.
    #[test]
    fn shown_names_the_headers_and_the_form_only() {
        let stamped = signer(serde_json::json!({"timestamp_header": "X-Ts", "prefix": "v1="}));
        assert_eq!(stamped.unwrap().shown(), ", x-ts: <now>, x-sig: v1=<hmac>");
        assert_eq!(
            signer(serde_json::json!({})).unwrap().shown(),
            ", x-sig: <hmac>"
        );
    }

    #[test]
    fn unusable_settings_are_refused_without_the_secret() {
        use serde_json::json;
        for (extra, says) in [
            (json!({"secret": ""}), "secret: is empty"),
            (
                json!({"header_name": "Bad Name"}),
                "'Bad Name' is not a valid",
            ),
            (
                json!({"header_name": "webhook-signature"}),
                "set by the connector",
            ),
            (
                json!({"timestamp_header": "content-length"}),
                "timestamp_header: 'content-length'",
            ),
            (json!({"timestamp_header": "x-sig"}), "same header"),
            (json!({"prefix": "a\nb"}), "prefix"),
        ] {
            let message = signer(extra.clone()).err().unwrap().to_string();
            assert!(message.contains(says), "{extra}: {message}");
            assert!(!message.contains("Everybody"), "{message}");
        }
    }
}
