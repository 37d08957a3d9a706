//! Airbyte checkpoints: every input STATE is echoed once the records before it are settled,
//! with `destinationStats` (records since the previous STATE of the same scope, and how many of
//! them were rejected). Rejected records become WARN logs, at most [`MAX_REJECTION_LOGS`].

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::ack::{Ack, Entry};
use crate::dialect::Scope;
use crate::protocol::{log, Level, Message};
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
                let rejected = u64::from(ack != Ack::Delivered);
                for counter in [
                    self.per_stream.entry(meta.scope).or_default(),
                    &mut self.global,
                ] {
                    counter.0 += 1;
                    counter.1 += rejected;
                }
                match &ack {
                    Ack::Delivered => {}
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
                let mut state: Value =
                    serde_json::from_str(raw.get()).unwrap_or_else(|_| json!({}));
                if let Value::Object(map) = &mut state {
                    map.insert(
                        "destinationStats".into(),
                        json!({"recordCount": records as f64, "rejectedRecordCount": rejected as f64}),
                    );
                }
                out.push(json!({"type": "STATE", "state": state}).into());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::{RecordLabel, RecordMeta};
    use std::borrow::Cow;

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
        })
    }

    fn state(json: &str, scope: Scope) -> Entry {
        Entry::State(serde_json::from_str(json).unwrap(), scope)
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
}
