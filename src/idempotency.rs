//! Idempotency keys: the same row of the same run always gets the same key (across retries and
//! across a re-run), different rows get different keys. Sent as `Idempotency-Key` and
//! `webhook-id`.

use base64::Engine;
use sha2::{Digest, Sha256};

fn key_from(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        // Length-prefixed, so ("ab","c") and ("a","bc") differ.
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    format!(
        "msg_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..18])
    )
}

/// Valmi: the run (`run_id`, else `sync_id`) and the row number identify a row. Without either
/// id the row's own content stands in for the run, so two different runs never share a key.
pub fn valmi(run_scope: Option<&str>, row_num: u64, content: &[u8]) -> String {
    match run_scope {
        Some(run) => key_from(&[b"valmi", run.as_bytes(), &row_num.to_le_bytes()]),
        None => key_from(&[b"valmi-content", &row_num.to_le_bytes(), content]),
    }
}

/// Airbyte: the stream, the primary-key value when there is one, and the record itself.
pub fn airbyte(stream: &str, primary_key: Option<&str>, data: &[u8]) -> String {
    key_from(&[
        b"airbyte",
        stream.as_bytes(),
        primary_key.unwrap_or("").as_bytes(),
        data,
    ])
}

/// A batch is identified by its records, in order.
pub fn batch<'a>(member_keys: impl Iterator<Item = &'a str>) -> String {
    let joined: Vec<&[u8]> = member_keys.map(str::as_bytes).collect();
    let mut parts: Vec<&[u8]> = vec![b"batch"];
    parts.extend(joined);
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
        assert!(k.starts_with("msg_") && k.len() == 28, "{k}");
        assert_ne!(batch(["a", "b"].into_iter()), batch(["ab"].into_iter()));
    }
}
