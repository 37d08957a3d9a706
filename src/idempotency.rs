//! Idempotency keys: the same row of the same run always gets the same key (across retries and
//! across a re-run), different rows get different keys. Sent as `Idempotency-Key` and
//! `webhook-id`.

use std::fmt;

use base64::Engine;
use sha2::{Digest, Sha256};

const PREFIX: &[u8] = b"msg_";
/// `msg_` and 18 bytes of SHA-256 in unpadded URL-safe base64 (24 characters).
const LEN: usize = PREFIX.len() + 24;

/// A key held inline: one is made per record on the reader thread and read on the delivery
/// thread, so it is a plain array rather than a heap string.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Key([u8; LEN]);

impl Key {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a key is ASCII")
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn key_from(parts: &[&[u8]]) -> Key {
    let mut hasher = Sha256::new();
    for part in parts {
        // Length-prefixed, so ("ab","c") and ("a","bc") differ.
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut key = [0u8; LEN];
    key[..PREFIX.len()].copy_from_slice(PREFIX);
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode_slice(&digest[..18], &mut key[PREFIX.len()..])
        .expect("18 bytes are 24 base64 characters");
    Key(key)
}

/// Valmi: the run (`run_id`, else `sync_id`) and the row number identify a row. Without either
/// id the row's own content stands in for the run, so two different runs never share a key.
pub fn valmi(run_scope: Option<&str>, row_num: u64, content: &[u8]) -> Key {
    match run_scope {
        Some(run) => key_from(&[b"valmi", run.as_bytes(), &row_num.to_le_bytes()]),
        None => key_from(&[b"valmi-content", &row_num.to_le_bytes(), content]),
    }
}

/// Airbyte: the stream, the primary-key value when there is one, and the record itself.
pub fn airbyte(stream: &str, primary_key: Option<&str>, data: &[u8]) -> Key {
    key_from(&[
        b"airbyte",
        stream.as_bytes(),
        primary_key.unwrap_or("").as_bytes(),
        data,
    ])
}

/// A batch is identified by its records, in order.
pub fn batch<'a>(member_keys: impl Iterator<Item = &'a [u8]>) -> Key {
    let parts: Vec<&[u8]> = std::iter::once(&b"batch"[..]).chain(member_keys).collect();
    key_from(&parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_distinct() {
        assert_eq!(valmi(Some("run-1"), 7, b"a"), valmi(Some("run-1"), 7, b"b"));
        assert_ne!(valmi(Some("run-1"), 7, b"a"), valmi(Some("run-1"), 8, b"a"));
        assert_ne!(valmi(Some("run-1"), 7, b""), valmi(Some("run-2"), 7, b""));
        assert_ne!(valmi(None, 7, b"a"), valmi(None, 7, b"b"));
        assert_eq!(
            airbyte("s", Some("1"), b"{}"),
            airbyte("s", Some("1"), b"{}")
        );
        assert_ne!(
            airbyte("s", Some("1"), b"{}"),
            airbyte("t", Some("1"), b"{}")
        );
        let k = valmi(Some("r"), 1, b"");
        assert!(
            k.as_str().starts_with("msg_") && k.as_str().len() == 28,
            "{k}"
        );
        let (a, b) = (valmi(None, 1, b"a"), valmi(None, 2, b"b"));
        let (a, b) = (a.as_str().as_bytes(), b.as_str().as_bytes());
        assert_ne!(batch([a, b].into_iter()), batch([b, a].into_iter()));
        assert_eq!(batch([a, b].into_iter()), batch([a, b].into_iter()));
    }
}
