//! Valmi checkpoints: a metric STATE every `records_per_metric` records, a committed STATE
//! every `chunk_size` records (counts reset, next chunk), a final `finished` STATE. Counts are
//! per `_valmi_sync_op`, rejected records under `rejected`.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::ack::{Ack, Entry};
use crate::protocol::{log, now_millis, Level, Message};

pub struct ValmiCheckpoints {
    chunk_size: u64,
    per_metric: u64,
    chunk_id: u64,
    /// Records of the settled prefix so far in this run (resume-skipped rows not included).
    settled: u64,
    /// Records per bucket (sync op, or `rejected`) in the current chunk, in first-seen order.
    counts: Vec<(Cow<'static, str>, u64)>,
    rows: SettledRows,
}

/// Settled rows above the first gap, remembered until the gap fills; past this many, the
/// gap is taken as permanent and `last_row_num` stays where it is.
const MAX_ROWS_AHEAD: usize = 1 << 16;

/// Which rows are settled, as far as a resume may rely on it. A resume skips every row
/// `<= last_row_num`, so `last_row_num` only ever covers rows settled without a gap: with row
/// numbers 1, 2, 3, 10, 4 and row 10 settled, it stays 3, for rows 4 to 9 may still come.
struct SettledRows {
    /// Every row from the first of the run up to here is settled (in this process, or by the
    /// run the checkpoint came from).
    through: Option<u64>,
    ahead: std::collections::BTreeSet<u64>,
    gave_up: bool,
    warned: bool,
}

impl SettledRows {
    fn new(resumed_through: Option<u64>) -> Self {
        SettledRows {
            through: resumed_through,
            ahead: Default::default(),
            gave_up: false,
            warned: false,
        }
    }

    /// Row `row` is settled, with the `unreadable` rows right below it (see
    /// [`crate::dialect::RecordMeta::unreadable_rows_before`]); returns the one warning of the run the first
    /// time rows are not settled one after the other.
    fn settle(&mut self, row: u64, unreadable: u64) -> Option<String> {
        let next = self.through.map_or(1, |t| t + 1);
        let first = row.saturating_sub(unreadable);
        if first == next && !self.gave_up {
            let mut through = row;
            while self.ahead.remove(&(through + 1)) {
                through += 1;
            }
            self.through = Some(through);
            return None;
        }
        if first > next && !self.gave_up {
            self.gave_up = self.ahead.len() as u64 + unreadable >= MAX_ROWS_AHEAD as u64;
            if self.gave_up {
                self.ahead.clear();
            } else {
                self.ahead.extend(first..=row);
            }
        }
        if std::mem::replace(&mut self.warned, true) {
            return None;
        }
        let covered = match self.through {
            Some(through) => format!("row {through}"),
            None => "no row".to_string(),
        };
        Some(format!(
            "_valmi_row_num {row} was settled while row {next} was not: row numbers repeat, go backwards or skip some. The last_row_num of the STATEs stays at the last row settled with none missing before it ({covered} for now), so a resume sends the rows after it again, under the same idempotency keys"
        ))
    }
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
            rows: SettledRows::new(last_row_num),
        }
    }

    pub fn has_progress(&self) -> bool {
        self.settled > 0
    }

    pub fn settled(&mut self, entry: Entry, ack: Ack, out: &mut Vec<Message>) {
        let Entry::Record(meta) = entry else { return };
        let bucket = match &ack {
            Ack::Delivered => meta.op,
            Ack::Skipped => Cow::Borrowed("skipped"),
            Ack::Rejected(rejection) => {
                out.push(rejected_echo(
                    &meta.stream,
                    meta.data.as_deref(),
                    &rejection.code(),
                    super::rejection_text(&meta, rejection).as_str(),
                ));
                Cow::Borrowed("rejected")
            }
        };
        match self.counts.iter_mut().find(|(name, _)| *name == bucket) {
            Some((_, n)) => *n += 1,
            None => self.counts.push((bucket, 1)),
        }
        if let Some(warning) = meta
            .label
            .row_num
            .and_then(|row| self.rows.settle(row, meta.unreadable_rows_before))
        {
            out.push(log(Level::Warn, &warning));
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
                    last_row_num: self.rows.through,
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
            unreadable_rows_before: 0,
        })
    }

    fn without_last_row(mut v: Value) -> Value {
        v["state"]["data"]
            .as_object_mut()
            .unwrap()
            .remove("last_row_num");
        v
    }

    /// An interrupted run reports a STATE only once a record settled (`has_progress`):
    /// nothing settled, nothing to report.
    #[test]
    fn progress_is_a_settled_record() {
        let mut c = ValmiCheckpoints::new(4, 2, None, None);
        assert!(!c.has_progress());
        c.settled(record(1, "upsert"), Ack::Delivered, &mut Vec::new());
        assert!(c.has_progress());
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

    /// `last_row_num` after settling `rows` one by one, and whether a WARN came.
    fn through(resumed: Option<u64>, rows: &[u64]) -> (Option<u64>, bool) {
        let mut settled = SettledRows::new(resumed);
        let warnings = rows
            .iter()
            .filter_map(|row| settled.settle(*row, 0))
            .count();
        assert!(warnings <= 1, "one warning per run");
        let warned = warnings == 1;
        (settled.through, warned)
    }

    #[test]
    fn last_row_num_covers_only_rows_settled_without_a_gap() {
        assert_eq!(through(None, &[1, 2, 3]), (Some(3), false));
        assert_eq!(through(Some(40), &[41, 42]), (Some(42), false));
        assert_eq!(through(None, &[1, 2, 3, 10]), (Some(3), true));
        assert_eq!(
            through(None, &[1, 2, 3, 10, 4, 5, 6, 7, 8, 9]),
            (Some(10), true)
        );
        assert_eq!(through(None, &[1, 2, 2, 3]), (Some(3), true));
        assert_eq!(through(None, &[5, 6]), (None, true));
        assert_eq!(through(Some(40), &[45]), (Some(40), true));
    }

    /// Rows that stood on unreadable lines will never be records: they leave no gap.
    #[test]
    fn rows_of_unreadable_lines_leave_no_gap() {
        let mut settled = SettledRows::new(None);
        for (row, unreadable) in [(1, 0), (2, 0), (4, 1), (5, 0), (8, 2)] {
            assert_eq!(settled.settle(row, unreadable), None, "{row}");
        }
        assert_eq!(settled.through, Some(8));
        let mut gap_first = SettledRows::new(None);
        gap_first.settle(1, 0);
        assert!(gap_first.settle(5, 1).is_some());
        assert_eq!(gap_first.settle(3, 1), None);
        assert_eq!(gap_first.through, Some(5));
    }

    #[test]
    fn a_gap_that_never_fills_stops_last_row_num_with_bounded_memory() {
        let mut settled = SettledRows::new(None);
        settled.settle(1, 0);
        for row in 3..(MAX_ROWS_AHEAD as u64 + 10) {
            settled.settle(row, 0);
        }
        assert!(settled.gave_up && settled.ahead.is_empty());
        settled.settle(2, 0);
        assert_eq!(settled.through, Some(1));
    }

    #[test]
    fn states_carry_the_gapless_last_row_and_one_warning() {
        let mut c = ValmiCheckpoints::new(100, 1, None, None);
        let mut out = Vec::new();
        for row in [1, 2, 3, 10, 4] {
            c.settled(record(row, "upsert"), Ack::Delivered, &mut out);
        }
        let out: Vec<Value> = out.iter().map(Message::to_value).collect();
        let last_rows: Vec<&Value> = out
            .iter()
            .filter(|m| m["type"] == "STATE")
            .map(|m| &m["state"]["data"]["last_row_num"])
            .collect();
        assert_eq!(
            last_rows,
            [&json!(1), &json!(2), &json!(3), &json!(3), &json!(4)]
        );
        let warnings: Vec<&Value> = out.iter().filter(|m| m["type"] == "LOG").collect();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0]["log"]["message"]
            .as_str()
            .unwrap()
            .starts_with("_valmi_row_num 10 was settled while row 4 was not"));
    }
}
