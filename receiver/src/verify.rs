//! Signature checking, so tests and the demo can assert the connector signs exactly what it
//! sends: Standard Webhooks (with the `standardwebhooks` crate), or an HMAC-SHA256 header
//! convention (GitHub, Shopify, a Stripe-like signed payload) checked as each convention's
//! documentation tells a receiver to.

use std::io;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use hyper::HeaderMap;
use sha2::Sha256;
use standardwebhooks::Webhook;

/// An HMAC-SHA256 header convention: the signature in `header`, after `prefix`, as hex or
/// base64, over the raw request body, or over `<timestamp>.<body>` with the timestamp read from
/// `timestamp_header`.
#[derive(Clone, Debug, Default)]
pub struct HmacConvention {
    pub header: String,
    pub prefix: String,
    pub base64: bool,
    pub timestamp_header: Option<String>,
}

pub(crate) enum Verifier {
    StandardWebhooks(Webhook),
    Hmac {
        key: Vec<u8>,
        convention: HmacConvention,
    },
}

impl Verifier {
    /// Standard Webhooks: `whsec_<base64>` is decoded as the spec says; any other secret is used
    /// as raw bytes, matching senders that take a plain password-like secret. An HMAC
    /// convention's secret is always its bytes, as GitHub and Shopify use it.
    pub(crate) fn new(secret: &str, hmac: Option<&HmacConvention>) -> io::Result<Verifier> {
        if let Some(convention) = hmac {
            return Ok(Verifier::Hmac {
                key: secret.as_bytes().to_vec(),
                convention: convention.clone(),
            });
        }
        let webhook = if secret.starts_with("whsec_") {
            Webhook::new(secret)
        } else {
            Webhook::from_bytes(secret.as_bytes().to_vec())
        };
        webhook.map(Verifier::StandardWebhooks).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad signing secret: {e}"),
            )
        })
    }

    /// A compressed request is accepted by Standard Webhooks if the signature covers either the
    /// bytes on the wire or the decompressed payload: the spec does not say which, and this
    /// receiver is not the place to decide it. An HMAC convention covers the raw body received.
    pub(crate) fn is_valid(&self, headers: &HeaderMap, wire: &[u8], decoded: &[u8]) -> bool {
        match self {
            Verifier::StandardWebhooks(webhook) => {
                webhook.verify(wire, headers).is_ok()
                    || (decoded != wire && webhook.verify(decoded, headers).is_ok())
            }
            Verifier::Hmac { key, convention } => hmac_valid(key, convention, headers, wire),
        }
    }
}

fn hmac_valid(key: &[u8], convention: &HmacConvention, headers: &HeaderMap, body: &[u8]) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(sent) = text(&convention.header).and_then(|v| v.strip_prefix(&convention.prefix))
    else {
        return false;
    };
    let digest = match convention.base64 {
        true => STANDARD.decode(sent).ok(),
        false => from_hex(sent),
    };
    let Some(digest) = digest else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    if let Some(name) = &convention.timestamp_header {
        let Some(timestamp) = text(name) else {
            return false;
        };
        mac.update(timestamp.as_bytes());
        mac.update(b".");
    }
    mac.update(body);
    mac.verify_slice(&digest).is_ok()
}

/// Lowercase or uppercase hex; `None` when it is not hex.
fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn githubs_documented_example_verifies() {
        // docs.github.com, "Validating webhook deliveries".
        let convention = HmacConvention {
            header: "x-hub-signature-256".into(),
            prefix: "sha256=".into(),
            ..HmacConvention::default()
        };
        let verifier = Verifier::new("It's a Secret to Everybody", Some(&convention)).unwrap();
        let sent = headers(&[(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        )]);
        assert!(verifier.is_valid(&sent, b"Hello, World!", b"Hello, World!"));
        assert!(!verifier.is_valid(&sent, b"Hello, World?", b"Hello, World?"));
        assert!(!verifier.is_valid(&HeaderMap::new(), b"Hello, World!", b""));
    }

    #[test]
    fn a_timestamped_base64_signature_needs_its_timestamp() {
        let convention = HmacConvention {
            header: "x-sig".into(),
            base64: true,
            timestamp_header: Some("x-ts".into()),
            ..HmacConvention::default()
        };
        let verifier = Verifier::new("k", Some(&convention)).unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"k").unwrap();
        mac.update(b"7.body");
        let signature = STANDARD.encode(mac.finalize().into_bytes());
        let good = headers(&[("x-sig", &signature), ("x-ts", "7")]);
        assert!(verifier.is_valid(&good, b"body", b"body"));
        let replayed = headers(&[("x-sig", &signature), ("x-ts", "8")]);
        assert!(!verifier.is_valid(&replayed, b"body", b"body"));
    }
}
