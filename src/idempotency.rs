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

/// What a Valmi run says about itself in `run_time_args`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunScope {
    /// `run_id`: one run, and every re-run of it.
    Run(String),
    /// `sync_id` alone: every run of the sync has it, so it cannot tell runs apart.
    Sync(String),
    Unknown,
}

/// Where a Valmi record stands among the rows of its run.
#[derive(Clone, Copy, Debug)]
pub struct ValmiRow<'a> {
    pub row_num: u64,
    /// The record's data as it came.
    pub content: &'a [u8],
    /// `Some(message_id)` when the row number does not exceed one read before it in this
    /// process (repeated, or going backwards), so it cannot identify the record alone.
    pub out_of_order: Option<u64>,
}

/// Valmi: within a run (`run_id`), the row number identifies a row. Without a `run_id`,
/// the row's content is part of the key, so a later run's changed row is not taken for a
/// replay. A row number that repeats or goes backwards identifies nothing on its own, so the
/// key adds the content and the record's position in the input.
pub fn valmi(scope: &RunScope, row: ValmiRow<'_>) -> Key {
    let number = row.row_num.to_le_bytes();
    let position = row.out_of_order.map(u64::to_le_bytes);
    let mut parts: Vec<&[u8]> = match scope {
        RunScope::Run(run) => vec![b"valmi", run.as_bytes(), &number],
        RunScope::Sync(sync) => vec![b"valmi-sync", sync.as_bytes(), &number, row.content],
        RunScope::Unknown => vec![b"valmi-content", &number, row.content],
    };
    if let Some(position) = &position {
        parts.extend([&b"out-of-order"[..], row.content, position]);
    }
    key_from(&parts)
}

/// Airbyte: the stream, the primary-key value when there is one, and the record itself.
/// `occurrence` (1 for the first) tells identical records apart: see
/// [`crate::dialect::airbyte`] for how it is counted. A refresh's `generation` (> 0) is part of
/// the key, so a receiver that de-duplicates takes a refresh's re-delivery instead of dropping
/// it; generation 0 (and none, from platforms without refreshes) keeps the keys sent before
/// refreshes existed, so upgrading the connector re-delivers nothing.
pub fn airbyte(
    stream: &str,
    primary_key: Option<&str>,
    data: &[u8],
    occurrence: u64,
    generation: Option<i64>,
) -> Key {
    let occurrence = occurrence.to_le_bytes();
    let generation = generation.filter(|g| *g != 0).map(i64::to_le_bytes);
    let mut parts: Vec<&[u8]> = vec![
        b"airbyte",
        stream.as_bytes(),
        primary_key.unwrap_or("").as_bytes(),
        data,
    ];
    // The first occurrence keeps the key of a record that has no twin.
    if occurrence != 1u64.to_le_bytes() {
        parts.push(&occurrence);
    }
    if let Some(generation) = &generation {
        parts.extend([&b"generation"[..], generation]);
    }
    key_from(&parts)
}

/// A truncating refresh's `on_refresh` request: one per stream and generation, so a retried
/// sync's repeat of it is recognised and the next refresh's is not.
pub fn refresh(stream: &str, generation: Option<i64>) -> Key {
    let generation = generation.unwrap_or_default().to_le_bytes();
    key_from(&[b"refresh", stream.as_bytes(), &generation])
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
        let run = |id: &str| RunScope::Run(id.into());
        let row = |row_num, content: &'static [u8]| ValmiRow {
            row_num,
            content,
            out_of_order: None,
        };
        assert_eq!(
            valmi(&run("run-1"), row(7, b"a")),
            valmi(&run("run-1"), row(7, b"b"))
        );
        assert_ne!(
            valmi(&run("run-1"), row(7, b"a")),
            valmi(&run("run-1"), row(8, b"a"))
        );
        assert_ne!(
            valmi(&run("run-1"), row(7, b"")),
            valmi(&run("run-2"), row(7, b""))
        );
        assert_ne!(
            valmi(&RunScope::Unknown, row(7, b"a")),
            valmi(&RunScope::Unknown, row(7, b"b"))
        );
        assert_eq!(
            airbyte("s", Some("1"), b"{}", 1, None),
            airbyte("s", Some("1"), b"{}", 1, None)
        );
        assert_ne!(
            airbyte("s", Some("1"), b"{}", 1, None),
            airbyte("t", Some("1"), b"{}", 1, None)
        );
        let k = valmi(&run("r"), row(1, b""));
        assert!(
            k.as_str().starts_with("msg_") && k.as_str().len() == 28,
            "{k:?}"
        );
        let (a, b) = (
            valmi(&RunScope::Unknown, row(1, b"a")),
            valmi(&RunScope::Unknown, row(2, b"b")),
        );
        let (a, b) = (a.as_str().as_bytes(), b.as_str().as_bytes());
        assert_ne!(batch([a, b].into_iter()), batch([b, a].into_iter()));
        assert_eq!(batch([a, b].into_iter()), batch([a, b].into_iter()));
    }

    /// The keys of rows in order and of first occurrences are those the connector always sent.
    #[test]
    fn ordinary_keys_are_unchanged() {
        let in_order = ValmiRow {
            row_num: 7,
            content: b"x",
            out_of_order: None,
        };
        assert_eq!(
            valmi(&RunScope::Run("run-1".into()), in_order),
            key_from(&[b"valmi", b"run-1", &7u64.to_le_bytes()])
        );
        assert_eq!(
            valmi(&RunScope::Unknown, in_order),
            key_from(&[b"valmi-content", &7u64.to_le_bytes(), b"x"])
        );
        assert_eq!(
            airbyte("s", None, b"{}", 1, None),
            key_from(&[b"airbyte", b"s", b"", b"{}"])
        );
    }

    /// Two different records never share a key, and a run without a `run_id` does not replay
    /// another run's changed row.
    #[test]
    fn repeated_rows_twins_and_other_runs_get_their_own_keys() {
        let at = |row_num, content: &'static [u8], out_of_order| ValmiRow {
            row_num,
            content,
            out_of_order,
        };
        for scope in [
            RunScope::Run("r".into()),
            RunScope::Sync("s".into()),
            RunScope::Unknown,
        ] {
            let first = valmi(&scope, at(3, b"a", None));
            let repeated = valmi(&scope, at(3, b"b", Some(9)));
            let twin = valmi(&scope, at(3, b"a", Some(9)));
            let later_twin = valmi(&scope, at(3, b"a", Some(10)));
            assert_ne!(first, repeated, "{scope:?}");
            assert_ne!(first, twin, "{scope:?}");
            assert_ne!(twin, later_twin, "{scope:?}");
            assert_eq!(twin, valmi(&scope, at(3, b"a", Some(9))), "{scope:?}");
        }
        let sync = RunScope::Sync("s".into());
        assert_ne!(
            valmi(&sync, at(3, b"monday", None)),
            valmi(&sync, at(3, b"tuesday", None))
        );
        assert_ne!(
            valmi(&sync, at(3, b"a", None)),
            valmi(&RunScope::Run("s".into()), at(3, b"a", None))
        );
        assert_ne!(
            airbyte("s", None, b"{}", 1, None),
            airbyte("s", None, b"{}", 2, None)
        );
        assert_ne!(
            airbyte("s", None, b"{}", 2, None),
            airbyte("s", None, b"{}", 3, None)
        );
    }

    /// A new generation re-delivers under new keys; generation 0 is what the connector always
    /// sent, so a platform that starts sending generations changes no key.
    #[test]
    fn a_refresh_generation_changes_the_keys_and_generation_zero_does_not() {
        let key = |generation| airbyte("s", Some("1"), b"{}", 1, generation);
        assert_eq!(key(Some(0)), key(None));
        assert_ne!(key(Some(1)), key(None));
        assert_ne!(key(Some(1)), key(Some(2)));
        assert_eq!(key(Some(2)), key(Some(2)));
    }
}
