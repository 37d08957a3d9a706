//! The Valmi dialect: the sink's field mapping, `_valmi_meta` first, `_sync_mode` from the sink.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use super::{hash_key, Job, Prepared, RecordLabel, RecordMeta, Wire};
use crate::catalog::{mode_needs_order, MappingEntry, ValmiCatalog};
use crate::envelope::{json_name, Envelope, RawFields};
use crate::idempotency;
use crate::protocol::{InputRecord, Text};

pub struct Valmi {
    wire: Wire,
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
        wire: Wire,
        catalog: ValmiCatalog,
        run_scope: Option<String>,
        resume_after_row: Option<u64>,
    ) -> Self {
        Valmi {
            wire,
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

    pub fn prepare(&mut self, record: &InputRecord, message_id: u64) -> Prepared {
        let stream = self.stream(&record.stream);
        let mut meta = RecordMeta {
            label: RecordLabel {
                message_id,
                row_num: None,
            },
            op: Cow::Borrowed(""),
            stream,
            scope: 0,
            data: Some(self.wire.keep(record.data.get())),
            size: 0,
        };
        let refuse = |meta, code, message: &str| Prepared::Refuse {
            meta,
            code,
            message: message.to_string(),
        };
        let Some(fields) = &record.fields else {
            return refuse(
                meta,
                "invalid_data",
                "the record's data is not a JSON object",
            );
        };
        let Some(valmi_meta_raw) = fields.get("_valmi_meta") else {
            return refuse(
                meta,
                "missing_valmi_meta",
                "the record has no _valmi_meta, so its row and operation are unknown",
            );
        };
        let Ok(valmi_meta) = serde_json::from_str::<ValmiMeta<'_>>(valmi_meta_raw.get()) else {
            return refuse(
                meta,
                "invalid_valmi_meta",
                "_valmi_meta is not an object with _valmi_row_num and _valmi_sync_op",
            );
        };
        let Some(op) = valmi_meta._valmi_sync_op else {
            return refuse(
                meta,
                "invalid_valmi_meta",
                "_valmi_meta has no _valmi_sync_op",
            );
        };
        meta.op = op_name(&op.0);
        meta.label.row_num = valmi_meta._valmi_row_num;
        if let (Some(row), Some(done)) = (valmi_meta._valmi_row_num, self.resume_after_row) {
            if row <= done {
                return Prepared::AlreadyDelivered;
            }
        }

        let mut payload = RawFields(Vec::with_capacity(self.mapping.len() + 1));
        payload.set(r#""_valmi_meta""#, valmi_meta_raw);
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
        let body = match self
            .wire
            .body(envelope, record.data.get().len(), || payload.to_value())
        {
            Ok(body) => body,
            Err((code, reason)) => return refuse(meta, code, &reason),
        };
        let order_key = match &self.id_key {
            Some(key) => Some(hash_key(fields.get(key).map(|v| v.get()))),
            None if self.serialize_all => Some(0),
            None => None,
        };
        let row = valmi_meta._valmi_row_num.unwrap_or(message_id);
        let idempotency_key =
            idempotency::valmi(self.run_scope.as_deref(), row, record.data.get().as_bytes());
        let job = Job {
            seq: 0,
            body,
            order_key,
            idempotency_key: self.wire.key_header(idempotency_key),
            label: meta.label,
        };
        Prepared::Send(meta, job)
    }
}
