//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub struct Signer {
    key: Vec<u8>,
}

/// Why a `whsec_` secret cannot be used. Used as raw bytes instead, it would sign with a key
/// no Standard Webhooks library derives from the same text, and every request would fail
/// verification with the blame on auth. Never shows the secret.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error(
        "signing_secret: nothing follows 'whsec_'; expected 'whsec_' followed by the key in base64"
    )]
    Empty,
    #[error("signing_secret: starts with 'whsec_' but what follows is not standard base64: {0}; copy the secret again exactly as the endpoint shows it")]
    NotBase64(String),
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
    pub fn new(secret: &str) -> Result<Self, SecretError> {
        Ok(Signer {
            key: signing_key(secret)?,
        })
    }

    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_spec_reference_vector() {
        let signer = Signer::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
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
        let a = Signer::new("plain-secret").unwrap().sign("id", 1, b"x");
        let b = Signer::new(&format!("whsec_{}", STANDARD.encode("plain-secret")))
            .unwrap()
            .sign("id", 1, b"x");
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
            assert!(message.starts_with("signing_secret: "), "{message}");
            let value = secret.trim_start_matches("whsec_");
            assert!(value.is_empty() || !message.contains(value), "{message}");
        }
    }
}
