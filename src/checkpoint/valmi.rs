//! Valmi checkpoints: a metric STATE every `records_per_metric` records, a committed STATE
//! every `chunk_size` records (counts reset, next chunk), a final `finished` STATE. Counts are
//! per `_valmi_sync_op`, rejected records under `rejected`.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::ack::{Ack, Entry};
use crate::protocol::{now_millis, Message};

pub struct ValmiCheckpoints {
    chunk_size: u64,
    per_metric: u64,
    chunk_id: u64,
    /// Records of the settled prefix so far in this run (resume-skipped rows not included).
    settled: u64,
    /// Records per bucket (sync op, or `rejected`) in the current chunk, in first-seen order.
    counts: Vec<(Cow<'static, str>, u64)>,
    last_row_num: Option<u64>,
}

impl ValmiCheckpoints {
    /// `resumed_chunk`: the chunk the `--state` checkpoint committed; this run starts after it.
    pub fn new(
        chunk_size: u64,
        per_metric: u64,
        resumed_chunk: Option<u64>,
        last_row_num: Option<u64>,
    ) -> Self {
        ValmiCheckpoints {
            chunk_size: chunk_size.max(1),
            per_metric: per_metric.max(1),
            chunk_id: resumed_chunk.map_or(1, |n| n + 1),
            settled: 0,
            counts: Vec::new(),
            last_row_num,
        }
    }

    pub fn has_progress(&self) -> bool {
        self.settled > 0
    }

    pub fn settled(&mut self, entry: Entry, ack: Ack, out: &mut Vec<Message>) {
        let Entry::Record(meta) = entry else { return };
        let bucket = match &ack {
            Ack::Delivered => meta.op,
            Ack::Rejected(rejection) => {
                out.push(rejected_echo(
                    &meta.stream,
                    meta.data.as_deref(),
                    &rejection.code(),
                    &super::rejection_text(&meta, rejection),
                ));
                Cow::Borrowed("rejected")
            }
        };
        match self.counts.iter_mut().find(|(name, _)| *name == bucket) {
            Some((_, n)) => *n += 1,
            None => self.counts.push((bucket, 1)),
        }
        if let Some(row) = meta.label.row_num {
            self.last_row_num = Some(self.last_row_num.map_or(row, |r| r.max(row)));
        }
        self.settled += 1;
        let commit = self.settled.is_multiple_of(self.chunk_size);
        if commit || self.settled.is_multiple_of(self.per_metric) {
            out.push(self.state(false, commit));
        }
        if commit {
            self.counts.clear();
            self.chunk_id += 1;
        }
    }

    /// A STATE with all five keys Valmi's wrapper requires, plus `last_row_num` for resume.
    /// One goes out every `records_per_metric` records, so it is written from plain structs
    /// rather than assembled as a `Value`.
    pub fn state(&self, finished: bool, commit: bool) -> Message {
        #[derive(Serialize)]
        struct Line<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            state: Body<'a>,
        }
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            data: Data<'a>,
        }
        #[derive(Serialize)]
        struct Data<'a> {
            records_delivered: Counts<'a>,
            chunk_id: u64,
            finished: bool,
            commit_state: bool,
            commit_metric: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            last_row_num: Option<u64>,
        }
        struct Counts<'a>(&'a [(Cow<'static, str>, u64)]);
        impl Serialize for Counts<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_map(self.0.iter().map(|(name, n)| (name, n)))
            }
        }
        let line = Line {
            kind: "STATE",
            state: Body {
                kind: "STREAM",
                data: Data {
                    records_delivered: Counts(&self.counts),
                    chunk_id: self.chunk_id,
                    finished,
                    commit_state: commit,
                    commit_metric: true,
                    last_row_num: self.last_row_num,
                },
            },
        };
        Message::Raw(serde_json::value::to_raw_value(&line).expect("a STATE always serialises"))
    }
}

/// The echo of a rejected record, with its data copied as raw text. The text was a JSON value
/// when it was read; it is checked again here, only for the (rare) rejected record, to carry it
/// as a raw value.
fn rejected_echo(stream: &str, data: Option<&[u8]>, code: &str, message: &str) -> Message {
    let data = data.and_then(|d| serde_json::from_slice::<&RawValue>(d).ok());
    #[derive(Serialize)]
    struct Echo<'a> {
        stream: &'a str,
        data: Option<&'a RawValue>,
        emitted_at: u64,
        rejected: bool,
        rejection_code: &'a str,
        rejection_message: &'a str,
        metric_type: &'static str,
    }
    #[derive(Serialize)]
    struct Record<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        record: Echo<'a>,
    }
    let echo = Record {
        kind: "RECORD",
        record: Echo {
            stream,
            data,
            emitted_at: now_millis(),
            rejected: true,
            rejection_code: code,
            rejection_message: message,
            metric_type: "rejected",
        },
    };
    Message::Raw(serde_json::value::to_raw_value(&echo).expect("raw JSON always serialises"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::{RecordLabel, RecordMeta};
    use crate::rejection::Rejection;
    use serde_json::{json, Value};
    use std::borrow::Cow;

    fn record(row: u64, op: &'static str) -> Entry {
        Entry::Record(RecordMeta {
            label: RecordLabel {
                message_id: row,
                row_num: Some(row),
            },
            op: Cow::Borrowed(op),
            stream: "s".into(),
            scope: 0,
            data: Some(bytes::Bytes::from_static(br#"{"id":1}"#)),
            size: 0,
        })
    }

    fn without_last_row(mut v: Value) -> Value {
        v["state"]["data"]
            .as_object_mut()
            .unwrap()
            .remove("last_row_num");
        v
    }

    #[test]
    fn reproduces_the_original_cadence() {
        let golden: Vec<Value> =
            include_str!("../../tests/fixtures/valmi/observed/states_8records_chunk4_rpm2.jsonl")
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        let mut c = ValmiCheckpoints::new(4, 2, None, None);
        let mut out = Vec::new();
        for (row, op) in [
            (1, "delete"),
            (2, "delete"),
            (3, "upsert"),
            (4, "upsert"),
            (5, "upsert"),
            (6, "upsert"),
            (7, "delete"),
            (8, "delete"),
        ] {
            c.settled(record(row, op), Ack::Delivered, &mut out);
        }
        out.push(c.state(true, true));
        let out: Vec<Value> = out.iter().map(Message::to_value).collect();
        assert_eq!(out[4]["state"]["data"]["last_row_num"], 8);
        let out: Vec<Value> = out.into_iter().map(without_last_row).collect();
        assert_eq!(out, golden);
        // Key order matters to nothing that parses JSON, but keep it identical anyway.
        assert_eq!(
            serde_json::to_string(&out[1]).unwrap(),
            serde_json::to_string(&golden[1]).unwrap()
        );
    }

    #[test]
    fn resumes_after_the_committed_chunk_and_counts_rejections() {
        let mut c = ValmiCheckpoints::new(300, 10, Some(5), Some(40));
        let mut out = Vec::new();
        c.settled(
            record(41, "upsert"),
            Ack::Rejected(Rejection::Refused {
                status: 400,
                excerpt: "bad".into(),
            }),
            &mut out,
        );
        let out: Vec<Value> = out.iter().map(Message::to_value).collect();
        assert_eq!(out[0]["record"]["rejected"], true);
        assert_eq!(out[0]["record"]["rejection_code"], "400");
        assert_eq!(out[0]["record"]["data"]["id"], 1);
        let last = c.state(true, true).to_value();
        assert_eq!(last["state"]["data"]["chunk_id"], 6);
        assert_eq!(
            last["state"]["data"]["records_delivered"],
            json!({"rejected": 1})
        );
        assert_eq!(last["state"]["data"]["last_row_num"], 41);
    }
}
