//! Airbyte checkpoints: every input STATE is echoed once the records before it are settled,
//! with `destinationStats` (records since the previous STATE of the same scope, and how many of
//! them were rejected). Rejected records become WARN logs, at most [`MAX_REJECTION_LOGS`].

use std::borrow::Cow;
use std::collections::HashMap;

use indexmap::IndexMap;
use serde_json::json;
use serde_json::value::RawValue;

use crate::ack::{Ack, Entry};
use crate::dialect::Scope;
use crate::protocol::{log, Level, Message, RawObject};
use crate::rejection::Rejection;

pub const MAX_REJECTION_LOGS: u64 = 100;

#[derive(Default)]
pub struct AirbyteCheckpoints {
    /// (records, rejected) since the last STATE of each stream.
    per_stream: HashMap<u32, (u64, u64)>,
    /// (records, rejected) since the last GLOBAL/LEGACY STATE.
    global: (u64, u64),
    rejection_logs: u64,
    unlogged_rejections: u64,
}

impl AirbyteCheckpoints {
    pub fn settled(&mut self, entry: Entry, ack: Ack, out: &mut Vec<Message>) {
        match entry {
            Entry::Record(meta) => {
                let rejected = u64::from(matches!(ack, Ack::Rejected(_)));
                for counter in [
                    self.per_stream.entry(meta.scope).or_default(),
                    &mut self.global,
                ] {
                    counter.0 += 1;
                    counter.1 += rejected;
                }
                match &ack {
                    Ack::Delivered | Ack::Skipped => {}
                    // A stream missing from the catalog already had its one WARN.
                    Ack::Rejected(Rejection::UnknownStream | Rejection::AmbiguousStream(_)) => {}
                    Ack::Rejected(_) if self.rejection_logs >= MAX_REJECTION_LOGS => {
                        self.unlogged_rejections += 1
                    }
                    Ack::Rejected(rejection) => {
                        self.rejection_logs += 1;
                        let text = super::rejection_text(&meta, rejection);
                        out.push(log(
                            Level::Warn,
                            &format!("rejected ({}): {text}", rejection.code()),
                        ));
                    }
                }
            }
            Entry::State(raw, scope) => {
                let (records, rejected) = match scope {
                    Scope::Stream(id) => self.per_stream.remove(&id).unwrap_or_default(),
                    Scope::Global => std::mem::take(&mut self.global),
                };
                out.push(echo_state(raw.get(), records, rejected));
            }
        }
    }

    pub fn finish(&mut self, out: &mut Vec<Message>) {
        if self.unlogged_rejections > 0 {
            out.push(log(
                Level::Warn,
                &format!(
                    "{} more records were rejected (not logged one by one)",
                    self.unlogged_rejections
                ),
            ));
            self.unlogged_rejections = 0;
        }
    }
}

/// The STATE message echoing `state` (the input's JSON text) with `destinationStats` set.
/// Only the top level is parsed: the values are copied as text, so a state nested deeper than
/// any parser allows is echoed whole, and numbers and escapes stay as the source wrote them.
fn echo_state(state: &str, records: u64, rejected: u64) -> Message {
    let stats = json!({"recordCount": records as f64, "rejectedRecordCount": rejected as f64});
    let stats = serde_json::value::to_raw_value(&stats).expect("numbers always serialise");
    let state = compact(state);
    let state_text = match serde_json::from_str::<&RawValue>(&state)
        .map_err(|e| e.to_string())
        .and_then(RawObject::parse)
    {
        Ok(fields) => with_field(fields, "destinationStats", &stats),
        // Valid JSON whose keys are not all Unicode (a lone surrogate escape): still echoed,
        // with the stats added at the end.
        Err(_) => spliced(&state, "destinationStats", &stats),
    };
    Message::Raw(
        RawValue::from_string(format!(r#"{{"type":"STATE","state":{state_text}}}"#))
            .expect("a state echo is one JSON object"),
    )
}

/// The object with `key` set to `value`: a key already there keeps its place, and a repeated
/// key its first place and last value, as when the object is parsed into a map.
fn with_field(fields: RawObject<'_>, key: &str, value: &RawValue) -> String {
    let mut map: IndexMap<Cow<'_, str>, &RawValue> = IndexMap::with_capacity(fields.0.len() + 1);
    map.extend(fields.0);
    map.insert(Cow::Borrowed(key), value);
    let mut out = String::from("{");
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(key).expect("a key always serialises"));
        out.push(':');
        out.push_str(value.get());
    }
    out.push('}');
    out
}

/// `object` (compact JSON text of an object) with `"key":value` appended as its last member.
fn spliced(object: &str, key: &str, value: &RawValue) -> String {
    let body = object[..object.len() - 1].trim_end();
    let comma = if body.ends_with('{') { "" } else { "," };
    let key = serde_json::to_string(key).expect("a key always serialises");
    format!("{body}{comma}{key}:{}}}", value.get())
}

/// JSON text without whitespace between tokens, so an echo is one compact line like every
/// other message. A byte scan, not a parse: any depth is fine.
fn compact(text: &str) -> Cow<'_, str> {
    let is_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r');
    if !text.contains(is_space) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if escaped {
            escaped = false;
        } else if in_string {
            escaped = c == '\\';
            in_string = c != '"';
        } else if c == '"' {
            in_string = true;
        } else if is_space(c) {
            continue;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::{RecordLabel, RecordMeta};
    use serde_json::Value;

    fn record(scope: u32) -> Entry {
        Entry::Record(RecordMeta {
            label: RecordLabel {
                message_id: 1,
                row_num: None,
            },
            op: Cow::Borrowed(""),
            stream: "s".into(),
            scope,
            data: None,
            size: 0,
            unreadable_rows_before: 0,
        })
    }

    fn state(json: &str, scope: Scope) -> Entry {
        Entry::State(serde_json::from_str(json).unwrap(), scope)
    }

    /// Rejected records are WARNs one by one up to `MAX_REJECTION_LOGS`; the rest are counted
    /// and told in one WARN at the end, once (and none when there are none).
    #[test]
    fn rejections_past_the_cap_are_counted_in_one_warn() {
        let mut c = AirbyteCheckpoints::default();
        let mut out = Vec::new();
        c.finish(&mut out);
        assert!(out.is_empty(), "nothing to tell");
        for _ in 0..MAX_REJECTION_LOGS + 3 {
            c.settled(
                record(0),
                Ack::Rejected(Rejection::MissingValmiMeta),
                &mut out,
            );
        }
        assert_eq!(out.len() as u64, MAX_REJECTION_LOGS);
        c.finish(&mut out);
        c.finish(&mut out);
        assert_eq!(out.len() as u64, MAX_REJECTION_LOGS + 1);
        let told = out.last().unwrap().to_value();
        let says = "3 more records were rejected (not logged one by one)";
        assert_eq!(told["log"]["message"], says);
    }

    #[test]
    fn echoes_states_with_counts_per_scope() {
        let mut c = AirbyteCheckpoints::default();
        let mut out = Vec::new();
        c.settled(record(0), Ack::Delivered, &mut out);
        c.settled(
            record(1),
            Ack::Rejected(Rejection::Refused {
                status: 400,
                excerpt: "bad".into(),
            }),
            &mut out,
        );
        c.settled(
            state(
                r#"{"type":"STREAM","stream":{"stream_descriptor":{"name":"a"}}}"#,
                Scope::Stream(0),
            ),
            Ack::Delivered,
            &mut out,
        );
        c.settled(
            state(r#"{"data":{"x":1}}"#, Scope::Global),
            Ack::Delivered,
            &mut out,
        );
        let out: Vec<Value> = out.iter().map(Message::to_value).collect();
        assert_eq!(out[0]["log"]["level"], "WARN");
        assert_eq!(
            serde_json::to_string(&out[1]["state"]["destinationStats"]).unwrap(),
            r#"{"recordCount":1.0,"rejectedRecordCount":0.0}"#
        );
        assert_eq!(
            out[2]["state"],
            json!({"data": {"x": 1}, "destinationStats": {"recordCount": 2.0, "rejectedRecordCount": 1.0}})
        );
    }

    fn echoed(state: &str) -> String {
        match echo_state(state, 2, 1) {
            Message::Raw(raw) => raw.get().to_string(),
            Message::Json(v) => panic!("a state echo is raw text: {v}"),
        }
    }

    const STATS: &str = r#""destinationStats":{"recordCount":2.0,"rejectedRecordCount":1.0}"#;

    /// The echo is the input's text, whatever its depth: no parser limit applies to it.
    #[test]
    fn a_state_is_echoed_as_its_text_at_any_depth() {
        for depth in [1, 127, 200, 10_000] {
            let data = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
            let state = format!(r#"{{"type":"LEGACY","data":{{"x":{data}}}}}"#);
            let expected = format!(
                r#"{{"type":"STATE","state":{{"type":"LEGACY","data":{{"x":{data}}},{STATS}}}}}"#
            );
            assert_eq!(echoed(&state), expected, "depth {depth}");
        }
    }

    #[test]
    fn text_is_kept_and_whitespace_between_tokens_dropped() {
        let state = " {\"data\" : {\"n\": 1E+2, \"s\": \"a \\\" b\\u00e9\\/\"},\t\"t\":[1, 2]}";
        assert_eq!(
            echoed(state),
            format!(
                r#"{{"type":"STATE","state":{{"data":{{"n":1E+2,"s":"a \" b\u00e9\/"}},"t":[1,2],{STATS}}}}}"#
            )
        );
    }

    /// As when the state was parsed into a map: stats already there are replaced in place, a
    /// repeated key keeps its first place and last value.
    #[test]
    fn stats_already_there_are_replaced_in_place() {
        assert_eq!(
            echoed(r#"{"a":1,"destinationStats":{"recordCount":9.0},"b":2,"a":3}"#),
            format!(r#"{{"type":"STATE","state":{{"a":3,{STATS},"b":2}}}}"#)
        );
        assert_eq!(
            echoed("{}"),
            format!(r#"{{"type":"STATE","state":{{{STATS}}}}}"#)
        );
    }

    #[test]
    fn a_key_that_is_not_unicode_is_echoed_too() {
        assert_eq!(
            echoed(r#"{"\ud800":1}"#),
            format!(r#"{{"type":"STATE","state":{{"\ud800":1,{STATS}}}}}"#)
        );
        assert_eq!(
            echoed(r#"{ "\ud800" : { } }"#),
            format!(r#"{{"type":"STATE","state":{{"\ud800":{{}},{STATS}}}}}"#)
        );
    }
}
