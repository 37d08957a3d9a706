//! The Valmi dialect: the sink's field mapping, `_valmi_meta` first, `_sync_mode` from the sink.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use reqwest::header::HeaderValue;
use serde::Deserialize;

use serde_json::value::RawValue;

use super::{hash_key, Event, RecordLabel, RecordMeta, Request};
use crate::catalog::{mode_needs_order, MappingEntry, ValmiCatalog};
use crate::config::Config;
use crate::encoder::Encoder;
use crate::envelope::{json_name, Envelope, RawFields};
use crate::idempotency::{self, RunScope, ValmiRow};
use crate::json_value::from_serde;
use crate::protocol::{InputRecord, RawObject, Text};
use crate::rejection::Rejection;
use crate::shape::Payload;
use crate::template::Facts;

pub struct Valmi {
    encoder: Encoder,
    sync_mode: String,
    /// (source field, sink name as a JSON string literal), in mapping order.
    mapping: Vec<(String, String)>,
    id_key: Option<String>,
    /// Without a key, a mode that changes rows sends one record at a time.
    serialize_all: bool,
    run_scope: RunScope,
    /// `run_time_args`' run and sync, as templates see them.
    run_id: Option<minijinja::Value>,
    sync_id: Option<minijinja::Value>,
    /// Rows up to here were delivered by an earlier attempt of this run.
    resume_after_row: Option<u64>,
    rows: RowOrder,
    streams: HashMap<String, Arc<str>>,
    /// The stream of the previous record: input comes stream by stream, so this spares a map
    /// lookup per record.
    last_stream: Option<Arc<str>>,
}

#[derive(Deserialize)]
struct ValmiMeta<'a> {
    #[serde(default)]
    _valmi_row_num: Option<u64>,
    #[serde(default, borrow)]
    _valmi_sync_op: Option<Text<'a>>,
}

/// Where a row number stands among those read before it in this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RowPlace {
    /// Above every row number before it.
    Rising,
    /// Not above some row number before it: repeated, or going backwards.
    NotRising,
    /// Covered by the resume checkpoint, and read while the rows still rise: the records of
    /// the acknowledged prefix that the checkpoint was made from.
    AlreadyDelivered,
}

/// The rows read so far, in input order (resume-skipped ones included, so a re-run of the
/// same input sees the same thing).
#[derive(Default)]
struct RowOrder {
    highest: Option<u64>,
    /// Set at the first row that does not rise: from there on, a row under the checkpoint
    /// may be one that was never acknowledged, so nothing more is skipped.
    stopped_skipping: bool,
    /// Unreadable lines since the last record.
    unreadable: u64,
}

impl RowOrder {
    /// Where `row` stands, and how many row numbers right below it the unreadable lines
    /// before it account for (all of the gap below it, or none).
    fn next(&mut self, row: u64, resume_after_row: Option<u64>) -> (RowPlace, u64) {
        let below = self.highest.or(resume_after_row).unwrap_or(0);
        let missing = row.saturating_sub(below + 1);
        let unreadable_rows = if missing <= std::mem::take(&mut self.unreadable) {
            missing
        } else {
            0
        };
        (self.place(row, resume_after_row), unreadable_rows)
    }

    fn place(&mut self, row: u64, resume_after_row: Option<u64>) -> RowPlace {
        let rises = self.highest.is_none_or(|highest| row > highest);
        self.highest = self.highest.max(Some(row));
        self.stopped_skipping |= !rises;
        match resume_after_row {
            Some(done) if rises && row <= done && !self.stopped_skipping => {
                RowPlace::AlreadyDelivered
            }
            _ if rises => RowPlace::Rising,
            _ => RowPlace::NotRising,
        }
    }
}

fn op_name(op: &str) -> Cow<'static, str> {
    match op {
        "upsert" => Cow::Borrowed("upsert"),
        "delete" => Cow::Borrowed("delete"),
        "append" => Cow::Borrowed("append"),
        "create" => Cow::Borrowed("create"),
        "update" => Cow::Borrowed("update"),
        other => Cow::Owned(other.to_string()),
    }
}

impl Valmi {
    pub fn new(
        encoder: Encoder,
        catalog: ValmiCatalog,
        config: &Config,
        resume_after_row: Option<u64>,
    ) -> Self {
        let args = config.run_time_args.as_ref();
        Valmi {
            run_id: args.and_then(|a| a.run_id.as_ref()).map(from_serde),
            sync_id: args.and_then(|a| a.sync_id.as_ref()).map(from_serde),
            encoder,
            serialize_all: catalog.id_key.is_none() && mode_needs_order(&catalog.sync_mode),
            sync_mode: catalog.sync_mode,
            mapping: catalog
                .mapping
                .into_iter()
                .map(|MappingEntry { stream, sink }| (stream, json_name(&sink)))
                .collect(),
            id_key: catalog.id_key,
            run_scope: config.run_scope(),
            resume_after_row,
            rows: RowOrder::default(),
            streams: HashMap::new(),
            last_stream: None,
        }
    }

    pub fn unreadable_line(&mut self) {
        self.rows.unreadable += 1;
    }

    fn stream(&mut self, name: &str) -> Arc<str> {
        if let Some(last) = self.last_stream.as_ref().filter(|s| ***s == *name) {
            return last.clone();
        }
        let s = match self.streams.get(name) {
            Some(s) => s.clone(),
            None => {
                let s: Arc<str> = Arc::from(name);
                self.streams.insert(name.to_string(), s.clone());
                s
            }
        };
        self.last_stream = Some(s.clone());
        s
    }

    pub fn read(&mut self, record: &InputRecord, message_id: u64) -> Event {
        let label = RecordLabel {
            message_id,
            row_num: None,
        };
        let data = self.encoder.keep(record.data.get());
        let mut meta = RecordMeta::new(label, self.stream(&record.stream), 0, Some(data));
        let Some(fields) = &record.fields else {
            return meta.refused(Rejection::InvalidData(
                "the record's data is not a JSON object".into(),
            ));
        };
        let (valmi_meta_raw, valmi_meta) = match read_valmi_meta(fields) {
            Ok(found) => found,
            Err(reason) => return meta.refused(reason),
        };
        let Some(op) = valmi_meta._valmi_sync_op else {
            return meta.refused(Rejection::InvalidValmiMeta(
                "_valmi_meta has no _valmi_sync_op",
            ));
        };
        meta.op = op_name(&op.0);
        meta.label.row_num = valmi_meta._valmi_row_num;
        let order = valmi_meta._valmi_row_num.map(|row| {
            let (place, unreadable_rows) = self.rows.next(row, self.resume_after_row);
            meta.unreadable_rows_before = unreadable_rows;
            place
        });
        if order == Some(RowPlace::AlreadyDelivered) {
            return Event::AlreadyDelivered;
        }
        if self.encoder.skips(&meta.op) {
            return Event::Skipped(meta);
        }
        let out_of_order = order == Some(RowPlace::NotRising);
        self.send(meta, record, fields, valmi_meta_raw, out_of_order)
    }

    /// The record as sent, with its ordering and idempotency keys, or why it cannot be.
    fn send(
        &mut self,
        meta: RecordMeta,
        record: &InputRecord,
        fields: &RawObject<'_>,
        valmi_meta: &RawValue,
        out_of_order: bool,
    ) -> Event {
        let message_id = meta.label.message_id;
        let order_key = self.order_key(fields);
        let idempotency_key =
            self.idempotency_key(record, meta.label.row_num, message_id, out_of_order);
        let facts = Facts {
            op: &meta.op,
            stream: &meta.stream,
            namespace: None,
            row_num: meta.label.row_num,
            message_id,
            sync_mode: &self.sync_mode,
            idempotency_key: &idempotency_key,
            primary_key: self
                .id_key
                .as_ref()
                .and_then(|k| fields.get(k))
                .map(|v| v.get()),
            run_id: self.run_id.as_ref(),
            sync_id: self.sync_id.as_ref(),
            activation: Default::default(),
        };
        let payload = match body(
            &mut self.encoder,
            &self.mapping,
            fields,
            valmi_meta,
            record,
            &facts,
        ) {
            Ok(body) => body,
            Err(reason) => return meta.refused(reason),
        };
        let request = Request {
            payload,
            idempotency_key,
            label: meta.label,
        };
        meta.send(request, order_key)
    }

    /// Records sharing the id key's value go one at a time, in input order; without a key, a
    /// mode that changes rows sends one record at a time.
    fn order_key(&self, fields: &RawObject<'_>) -> Option<u64> {
        match &self.id_key {
            Some(key) => Some(hash_key(fields.get(key).map(|v| v.get()))),
            None if self.serialize_all => Some(0),
            None => None,
        }
    }

    /// The record's idempotency key as a header value; a row number that repeats or goes
    /// backwards adds the record's position, so two records never share a key.
    fn idempotency_key(
        &mut self,
        record: &InputRecord,
        row_num: Option<u64>,
        message_id: u64,
        out_of_order: bool,
    ) -> HeaderValue {
        let key = idempotency::valmi(
            &self.run_scope,
            ValmiRow {
                row_num: row_num.unwrap_or(message_id),
                content: record.data.get().as_bytes(),
                out_of_order: out_of_order.then_some(message_id),
            },
        );
        self.encoder.key_header(key)
    }
}

/// The payload (`_valmi_meta` first, then the mapped fields in mapping order) in its envelope
/// (or the body template's rendering).
fn body(
    encoder: &mut Encoder,
    mapping: &[(String, String)],
    fields: &RawObject<'_>,
    valmi_meta: &RawValue,
    record: &InputRecord,
    facts: &Facts<'_>,
) -> Result<Payload, Rejection> {
    let mut payload = RawFields(Vec::with_capacity(mapping.len() + 1));
    payload.set(r#""_valmi_meta""#, valmi_meta);
    for (source, sink) in mapping {
        if let Some(value) = fields.get(source) {
            payload.set(sink, value);
        }
    }
    let envelope = Envelope {
        message_id: facts.message_id,
        sync_mode: facts.sync_mode,
        stream: None,
        payload: &payload,
    };
    encoder.encode(envelope, record.data.get().len(), facts, |out| {
        payload.flatten(out)
    })
}

/// `_valmi_meta`, as raw text and read.
fn read_valmi_meta<'a>(fields: &RawObject<'a>) -> Result<(&'a RawValue, ValmiMeta<'a>), Rejection> {
    let raw = fields
        .get("_valmi_meta")
        .ok_or(Rejection::MissingValmiMeta)?;
    let meta = serde_json::from_str::<ValmiMeta<'a>>(raw.get()).map_err(|_| {
        Rejection::InvalidValmiMeta(
            "_valmi_meta is not an object with _valmi_row_num and _valmi_sync_op",
        )
    })?;
    Ok((raw, meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orders(resume_after_row: Option<u64>, rows: &[u64]) -> Vec<RowPlace> {
        let mut order = RowOrder::default();
        rows.iter()
            .map(|row| order.next(*row, resume_after_row).0)
            .collect()
    }

    /// Rows missing where unreadable lines stood are accounted for; other gaps are not.
    #[test]
    fn unreadable_lines_account_for_the_rows_missing_where_they_stood() {
        let mut order = RowOrder::default();
        assert_eq!(order.next(1, None).1, 0);
        order.unreadable += 1;
        assert_eq!(order.next(3, None).1, 1);
        order.unreadable += 1;
        assert_eq!(
            order.next(6, None).1,
            0,
            "two rows missing, one unreadable line"
        );
        assert_eq!(order.next(8, None).1, 0, "no unreadable line");
        let mut resumed = RowOrder::default();
        resumed.unreadable += 2;
        assert_eq!(resumed.next(7, Some(4)).1, 2);
    }

    #[test]
    fn rows_that_do_not_rise_are_out_of_order() {
        use RowPlace::*;
        assert_eq!(orders(None, &[1, 2, 3]), [Rising, Rising, Rising]);
        assert_eq!(
            orders(None, &[1, 3, 2, 3, 4]),
            [Rising, Rising, NotRising, NotRising, Rising]
        );
    }

    /// Only the rising rows under the checkpoint are skipped: once a row repeats or goes back,
    /// rows under it may never have been acknowledged.
    #[test]
    fn resume_skips_only_while_the_rows_rise() {
        use RowPlace::*;
        assert_eq!(
            orders(Some(2), &[1, 2, 3]),
            [AlreadyDelivered, AlreadyDelivered, Rising]
        );
        assert_eq!(
            orders(Some(10), &[1, 3, 2, 5]),
            [AlreadyDelivered, AlreadyDelivered, NotRising, Rising],
            "5 rises, but after a row that went back, rows under the checkpoint are sent"
        );
        assert_eq!(
            orders(Some(10), &[1, 2, 3, 10, 4, 5]),
            [
                AlreadyDelivered,
                AlreadyDelivered,
                AlreadyDelivered,
                AlreadyDelivered,
                NotRising,
                NotRising
            ]
        );
        assert_eq!(
            orders(Some(3), &[1, 2, 3, 2, 3]),
            [
                AlreadyDelivered,
                AlreadyDelivered,
                AlreadyDelivered,
                NotRising,
                NotRising
            ]
        );
    }
}
