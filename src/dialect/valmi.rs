//! The Valmi dialect: the sink's field mapping, `_valmi_meta` first, `_sync_mode` from the sink.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use serde_json::value::RawValue;

use super::{hash_key, Event, RecordLabel, RecordMeta, Request};
use crate::catalog::{mode_needs_order, MappingEntry, ValmiCatalog};
use crate::encoder::Encoder;
use crate::envelope::{json_name, Envelope, RawFields};
use crate::idempotency;
use crate::protocol::{InputRecord, RawObject, Text};
use crate::rejection::Rejection;
use crate::shape::Payload;

pub struct Valmi {
    encoder: Encoder,
    sync_mode: String,
    /// (source field, sink name as a JSON string literal), in mapping order.
    mapping: Vec<(String, String)>,
    id_key: Option<String>,
    /// Without a key, a mode that changes rows sends one record at a time.
    serialize_all: bool,
    run_scope: Option<String>,
    /// Rows up to here were delivered by an earlier attempt of this run.
    resume_after_row: Option<u64>,
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
        run_scope: Option<String>,
        resume_after_row: Option<u64>,
    ) -> Self {
        Valmi {
            encoder,
            serialize_all: catalog.id_key.is_none() && mode_needs_order(&catalog.sync_mode),
            sync_mode: catalog.sync_mode,
            mapping: catalog
                .mapping
                .into_iter()
                .map(|MappingEntry { stream, sink }| (stream, json_name(&sink)))
                .collect(),
            id_key: catalog.id_key,
            run_scope,
            resume_after_row,
            streams: HashMap::new(),
            last_stream: None,
        }
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
        if let (Some(row), Some(done)) = (valmi_meta._valmi_row_num, self.resume_after_row) {
            if row <= done {
                return Event::AlreadyDelivered;
            }
        }
        let payload = match self.body(fields, valmi_meta_raw, record, message_id) {
            Ok(body) => body,
            Err(reason) => return meta.refused(reason),
        };
        let order_key = match &self.id_key {
            Some(key) => Some(hash_key(fields.get(key).map(|v| v.get()))),
            None if self.serialize_all => Some(0),
            None => None,
        };
        let row = valmi_meta._valmi_row_num.unwrap_or(message_id);
        let idempotency_key =
            idempotency::valmi(self.run_scope.as_deref(), row, record.data.get().as_bytes());
        let request = Request {
            payload,
            idempotency_key: self.encoder.key_header(idempotency_key),
            label: meta.label,
        };
        meta.send(request, order_key)
    }

    /// The payload (`_valmi_meta` first, then the mapped fields in mapping order) in its
    /// envelope.
    fn body(
        &mut self,
        fields: &RawObject<'_>,
        valmi_meta: &RawValue,
        record: &InputRecord,
        message_id: u64,
    ) -> Result<Payload, Rejection> {
        let mut payload = RawFields(Vec::with_capacity(self.mapping.len() + 1));
        payload.set(r#""_valmi_meta""#, valmi_meta);
        for (source, sink) in &self.mapping {
            if let Some(value) = fields.get(source) {
                payload.set(sink, value);
            }
        }
        let envelope = Envelope {
            message_id,
            sync_mode: &self.sync_mode,
            stream: None,
            payload: &payload,
        };
        self.encoder
            .encode(envelope, record.data.get().len(), |out| {
                payload.flatten(out)
            })
    }
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
