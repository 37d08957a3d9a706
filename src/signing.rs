//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Config;

/// Signs with every configured secret (more than one while a receiver rotates its secret).
pub struct Signer {
    keys: Vec<Vec<u8>>,
}

/// Why a `whsec_` secret cannot be used. Used as raw bytes instead, it would sign with a key
/// no Standard Webhooks library derives from the same text, and every request would fail
/// verification with the blame on auth. Never shows the secret.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("nothing follows 'whsec_'; expected 'whsec_' followed by the key in base64")]
    Empty,
    #[error("starts with 'whsec_' but what follows is not standard base64: {0}; copy the secret again exactly as the endpoint shows it")]
    NotBase64(String),
}

/// A secret that cannot be used, named by the config field it came from.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct BadSecret {
    pub field: String,
    pub problem: SecretError,
}

/// The HMAC key of a signing secret: `whsec_` + base64 (the spec's format; whitespace around
/// it, such as a newline pasted with it, is dropped) is decoded, any other text is used as
/// its bytes.
pub fn signing_key(secret: &str) -> Result<Vec<u8>, SecretError> {
    let Some(encoded) = secret.trim().strip_prefix("whsec_") else {
        return Ok(secret.as_bytes().to_vec());
    };
    if encoded.is_empty() {
        return Err(SecretError::Empty);
    }
    STANDARD.decode(encoded).map_err(|e| {
        use base64::DecodeError::*;
        // Positions and lengths only: the offending character is part of the secret.
        let position = |offset: usize| offset + "whsec_".len() + 1;
        SecretError::NotBase64(match e {
            InvalidByte(offset, _) => format!(
                "character {} is not in the base64 alphabet",
                position(offset)
            ),
            InvalidLength(_) => {
                "its length cannot be base64 (a character missing or extra?)".into()
            }
            InvalidLastSymbol(offset, _) => format!(
                "character {} cannot end base64 text (the key is cut short?)",
                position(offset)
            ),
            InvalidPadding => "the '=' padding at its end is missing or wrong".into(),
        })
    })
}

impl Signer {
    /// A signer for the config's Standard Webhooks secrets (`signing_secret`, then
    /// `signing_secrets`); `None` when there are none.
    pub fn from_config(config: &Config) -> Result<Option<Self>, BadSecret> {
        let keys = config
            .standard_webhooks_secrets()
            .map(|(field, secret)| {
                signing_key(secret).map_err(|problem| BadSecret { field, problem })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((!keys.is_empty()).then_some(Signer { keys }))
    }

    /// The headers as a dry run shows them, one placeholder per secret.
    pub fn shown(&self) -> String {
        let signatures = vec!["v1,<hmac>"; self.keys.len()].join(" ");
        format!(", webhook-timestamp: <now>, webhook-signature: {signatures}")
    }

    /// `webhook-signature`: one `v1,<base64>` per secret, space-separated, as the Standard
    /// Webhooks specification allows, so a receiver holding any one of the secrets verifies it.
    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        let timestamp = timestamp.to_string();
        let mut out = String::with_capacity(48 * self.keys.len());
        for (i, key) in self.keys.iter().enumerate() {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.as_bytes());
            mac.update(b".");
            mac.update(body);
            if i > 0 {
                out.push(' ');
            }
            out.push_str("v1,");
            STANDARD.encode_string(mac.finalize().into_bytes(), &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(secrets: &[&str]) -> Signer {
        let config: Config = serde_json::from_value(serde_json::json!({
            "url": "http://h", "signing_secret": secrets[0], "signing_secrets": &secrets[1..]
        }))
        .unwrap();
        Signer::from_config(&config).unwrap().unwrap()
    }

    /// A dry run shows one signature placeholder per secret, never a signature.
    #[test]
    fn shown_has_one_placeholder_per_secret() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let shown = signer(&[secret, secret]).shown();
        let expected = ", webhook-timestamp: <now>, webhook-signature: v1,<hmac> v1,<hmac>";
        assert_eq!(shown, expected);
    }

    #[test]
    fn matches_the_spec_reference_vector() {
        let signer = signer(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]);
        assert_eq!(
            signer.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn raw_secrets_are_used_as_bytes() {
        let a = signer(&["plain-secret"]).sign("id", 1, b"x");
        let b =
            signer(&[&format!("whsec_{}", STANDARD.encode("plain-secret"))]).sign("id", 1, b"x");
        assert_eq!(a, b);
        assert_eq!(
            signing_key(" raw with spaces\n").unwrap(),
            b" raw with spaces\n"
        );
    }

    #[test]
    fn whitespace_around_a_whsec_secret_is_dropped() {
        let key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        for padded in [
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
            " \twhsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\r\n",
        ] {
            assert_eq!(signing_key(padded).unwrap(), key, "{padded:?}");
        }
    }

    #[test]
    fn a_malformed_whsec_secret_is_refused_without_showing_it() {
        for (secret, says) in [
            ("whsec_", "nothing follows"),
            (
                "whsec_not*base64",
                "character 10 is not in the base64 alphabet",
            ),
            ("whsec_c2VjcmV0cw", "padding"),
            ("whsec_c2VjcmV0cw=", "padding"),
            ("whsec_c2VjcmV0c", "length"),
            ("whsec_MfKQ9r8GKYqrTwjUPD8I LPZIo2LaLaSw", "character 27"),
            ("whsec_c2VjcmV0cx==", "cut short"),
        ] {
            let message = signing_key(secret).unwrap_err().to_string();
            assert!(message.contains(says), "{secret}: {message}");
            let value = secret.trim_start_matches("whsec_");
            assert!(value.is_empty() || !message.contains(value), "{message}");
        }
    }

    #[test]
    fn every_secret_signs_in_order_space_separated() {
        let reference = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let other = signer(&["raw-other"]).sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        let both = signer(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "raw-other"]).sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(both, format!("{reference} {other}"));
    }

    #[test]
    fn a_malformed_secret_is_named_by_its_field() {
        let config: Config = serde_json::from_value(serde_json::json!({
            "url": "http://h", "signing_secrets": ["fine", "whsec_"]
        }))
        .unwrap();
        let e = Signer::from_config(&config).err().unwrap().to_string();
        assert!(e.starts_with("signing_secrets[1]: nothing follows"), "{e}");
        let none: Config = serde_json::from_value(serde_json::json!({"url": "http://h"})).unwrap();
        assert!(Signer::from_config(&none).unwrap().is_none());
    }
}
