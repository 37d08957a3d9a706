//! The Airbyte dialect: the record's data is the payload, unchanged; the envelope names the
//! stream; the stream's primary key orders and identifies records.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::{hash_key, Event, RecordLabel, RecordMeta, Request, Scope};
use crate::catalog::{mode_needs_order, AirbyteStream, Refresh};
use crate::encoder::Encoder;
use crate::envelope::Envelope;
use crate::flatten;
use crate::idempotency;
use crate::protocol::{InputRecord, RawObject};
use crate::rejection::Rejection;
use crate::template::{Activation, Facts};

struct Stream {
    label: Arc<str>,
    sync_mode: String,
    primary_key: Vec<Vec<String>>,
    serialize_all: bool,
    refresh: Refresh,
    /// The destination object its records go to (an index into the encoder's objects).
    object: usize,
    /// Airbyte's `sync_id` as templates see it.
    sync_id: Option<minijinja::Value>,
}

pub struct Airbyte {
    encoder: Encoder,
    streams: Vec<Stream>,
    /// name → (namespace, stream id) of each stream seen with that name; ids past the
    /// catalog's are streams it does not list. Keyed by name alone so a record's descriptor is
    /// looked up without building an owned key.
    ids: HashMap<String, Vec<(Option<String>, u32)>>,
    /// The id the next stream missing from the catalog gets.
    next_unknown: u32,
    /// Missing streams already warned about.
    warned: std::collections::HashSet<String>,
    twins: Twins,
}

/// Most records without a primary key remembered at once to count their identical twins.
const MAX_REMEMBERED_TWINS: usize = 1 << 17;

/// How many times each record of a keyless stream has been read since the last STATE that
/// covers its stream: the n-th identical copy gets its own idempotency key, so an endpoint
/// that de-duplicates keeps all of them, as the STATE counts them. Counting restarts at each
/// STATE because a source resumes from the last STATE: a re-run then reads the same records in
/// the same order from there and gives them the same keys.
#[derive(Default)]
struct Twins {
    /// stream id → content hash → copies read.
    seen: HashMap<u32, HashMap<u64, u64>>,
    remembered: usize,
}

impl Twins {
    /// 1 for the first copy of `data` in `stream` since the last STATE, 2 for the next...
    fn occurrence(&mut self, stream: u32, data: &str) -> u64 {
        if self.remembered >= MAX_REMEMBERED_TWINS {
            // Bounded memory: forgetting makes a later twin count from 1 again.
            self.seen.clear();
            self.remembered = 0;
        }
        let count = self
            .seen
            .entry(stream)
            .or_default()
            .entry(hash_key(data))
            .or_insert_with(|| {
                self.remembered += 1;
                0
            });
        *count += 1;
        *count
    }

    fn forget(&mut self, scope: Scope) {
        match scope {
            Scope::Stream(id) => {
                let forgotten = self.seen.remove(&id).map_or(0, |m| m.len());
                self.remembered -= forgotten;
            }
            Scope::Global => *self = Twins::default(),
        }
    }
}

impl Airbyte {
    pub fn new(encoder: Encoder, catalog: Vec<AirbyteStream>) -> Self {
        let mut this = Airbyte {
            encoder,
            streams: Vec::new(),
            ids: HashMap::new(),
            next_unknown: catalog.len() as u32,
            warned: Default::default(),
            twins: Twins::default(),
        };
        for s in catalog {
            let label = match &s.namespace {
                Some(ns) => format!("{ns}.{}", s.name),
                None => s.name.clone(),
            };
            this.ids
                .entry(s.name.clone())
                .or_default()
                .push((s.namespace.clone(), this.streams.len() as u32));
            this.streams.push(Stream {
                label: Arc::from(label),
                serialize_all: s.primary_key.is_empty() && mode_needs_order(&s.sync_mode),
                sync_mode: s.sync_mode,
                primary_key: s.primary_key,
                refresh: s.refresh,
                object: s.object,
                sync_id: s.refresh.sync_id.map(minijinja::Value::from),
            });
        }
        this
    }

    /// The stream id for a descriptor; a record without a namespace also matches a catalog
    /// stream that has one only by name when that name is unique.
    fn id(&mut self, namespace: Option<&str>, name: &str) -> u32 {
        let same_name = self.ids.get(name).map(Vec::as_slice).unwrap_or_default();
        if let Some((_, id)) = same_name.iter().find(|(ns, _)| ns.as_deref() == namespace) {
            return *id;
        }
        let by_name: Vec<u32> = match namespace {
            None => same_name
                .iter()
                .filter(|(_, id)| (*id as usize) < self.streams.len())
                .map(|(_, id)| *id)
                .collect(),
            Some(_) => Vec::new(),
        };
        let id = match by_name.as_slice() {
            [only] => *only,
            _ => {
                self.next_unknown += 1;
                self.next_unknown - 1
            }
        };
        self.ids
            .entry(name.to_string())
            .or_default()
            .push((namespace.map(str::to_string), id));
        id
    }

    pub fn read(&mut self, record: &InputRecord, message_id: u64, out: &mut Vec<Event>) {
        let id = self.id(record.namespace.as_deref(), &record.stream);
        let label = RecordLabel {
            message_id,
            row_num: None,
        };
        let Some(stream) = self.streams.get(id as usize) else {
            let name = match &record.namespace {
                Some(ns) => format!("{ns}.{}", record.stream),
                None => record.stream.to_string(),
            };
            let reason = self.why_unknown(record.namespace.as_deref(), &record.stream);
            if self.warned.insert(name.clone()) {
                out.push(Event::UnknownStream(format!(
                    "stream '{name}' {}: its records are not sent and are counted as rejected",
                    reason.to_string().trim_start_matches("the stream ")
                )));
            }
            let meta = RecordMeta::new(label, Arc::from(name), id, None);
            out.push(meta.refused(reason));
            return;
        };
        let meta = RecordMeta::new(label, stream.label.clone(), id, None);
        out.push(
            match request(
                &mut self.encoder,
                &mut self.twins,
                stream,
                id,
                record,
                label,
            ) {
                Ok(Some((request, order_key))) => meta.send(request, order_key),
                Ok(None) => Event::Skipped(meta),
                Err(reason) => meta.refused(reason),
            },
        );
    }

    /// Why a record's stream matched no catalog stream: a name without a namespace that
    /// several namespaces of the catalog share is ambiguous, not missing.
    fn why_unknown(&self, namespace: Option<&str>, name: &str) -> Rejection {
        let namespaces: Vec<String> = match namespace {
            Some(_) => Vec::new(),
            None => self
                .ids
                .get(name)
                .into_iter()
                .flatten()
                .filter(|(_, id)| (*id as usize) < self.streams.len())
                .filter_map(|(ns, _)| ns.as_ref().map(|ns| format!("'{ns}'")))
                .collect(),
        };
        if namespaces.len() > 1 {
            Rejection::AmbiguousStream(namespaces.join(", "))
        } else {
            Rejection::UnknownStream
        }
    }

    pub fn state_scope(&mut self, state: &RawValue) -> Scope {
        #[derive(Deserialize)]
        struct State {
            #[serde(rename = "type", default)]
            kind: Option<String>,
            #[serde(default)]
            stream: Option<StreamState>,
        }
        #[derive(Deserialize)]
        struct StreamState {
            stream_descriptor: Descriptor,
        }
        #[derive(Deserialize)]
        struct Descriptor {
            name: String,
            #[serde(default)]
            namespace: Option<String>,
        }
        let scope = match serde_json::from_str::<State>(state.get()) {
            Ok(State {
                kind: Some(kind),
                stream: Some(s),
            }) if kind == "STREAM" => Scope::Stream(self.id(
                s.stream_descriptor.namespace.as_deref(),
                &s.stream_descriptor.name,
            )),
            _ => Scope::Global,
        };
        self.twins.forget(scope);
        scope
    }
}

/// The record's operation: its stream's sync mode, or `delete` for a record whose
/// `_ab_cdc_deleted_at` is set when records are routed by operation.
fn operation<'a>(encoder: &Encoder, stream: &'a Stream, fields: &RawObject) -> &'a str {
    let deleted = encoder.routes_by_operation()
        && fields
            .get("_ab_cdc_deleted_at")
            .is_some_and(|at| at.get() != "null");
    match deleted {
        true => "delete",
        false => &stream.sync_mode,
    }
}

/// The record's request and ordering key; `None` when its operation's route skips it.
fn request(
    encoder: &mut Encoder,
    twins: &mut Twins,
    stream: &Stream,
    id: u32,
    record: &InputRecord,
    label: RecordLabel,
) -> Result<Option<(Request, Option<u64>)>, Rejection> {
    let Some(fields) = &record.fields else {
        return Err(Rejection::InvalidData(
            "the record's data is not a JSON object".into(),
        ));
    };
    encoder.select(stream.object);
    let op = operation(encoder, stream, fields);
    if encoder.skips(op) {
        return Ok(None);
    }
    let (order_key, idempotency_key) = keys(twins, stream, id, record, fields);
    let idempotency_key = encoder.key_header(idempotency_key);
    let primary_key_value = encoder
        .templated()
        .then(|| primary_key_json(fields, &stream.primary_key))
        .flatten();
    let facts = Facts {
        op,
        stream: &record.stream,
        namespace: record.namespace.as_deref(),
        row_num: None,
        message_id: label.message_id,
        sync_mode: &stream.sync_mode,
        idempotency_key: &idempotency_key,
        primary_key: primary_key_value.as_deref(),
        run_id: None,
        sync_id: stream.sync_id.as_ref(),
        activation: Activation {
            refresh: stream.refresh,
            changes: record.changes,
        },
    };
    let envelope = Envelope {
        message_id: label.message_id,
        sync_mode: &stream.sync_mode,
        stream: Some(&stream.label),
        payload: record.data,
    };
    let payload = encoder.encode(envelope, record.data.get().len(), &facts, |out| {
        flatten::flatten_fields("", fields.0.iter().cloned(), 1, out)
    })?;
    let request = Request {
        payload,
        idempotency_key,
        label,
    };
    Ok(Some((request, order_key)))
}

/// The record's ordering key (its primary key's value, or its stream when a keyless stream's
/// mode needs order) and idempotency key.
fn keys(
    twins: &mut Twins,
    stream: &Stream,
    id: u32,
    record: &InputRecord,
    fields: &RawObject,
) -> (Option<u64>, idempotency::Key) {
    let primary_key = primary_key_text(fields, &stream.primary_key);
    let order_key = match &primary_key {
        Some(pk) => Some(hash_key((id, pk))),
        None if stream.serialize_all => Some(hash_key(id)),
        None => None,
    };
    let occurrence = match primary_key {
        Some(_) => 1,
        None => twins.occurrence(id, record.data.get()),
    };
    let key = idempotency::airbyte(
        &stream.label,
        primary_key.as_deref(),
        record.data.get().as_bytes(),
        occurrence,
        stream.refresh.generation_id,
    );
    (order_key, key)
}

/// The primary-key value as text (each key path's JSON, joined), or `None` without a key.
fn primary_key_text(fields: &RawObject, key: &[Vec<String>]) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    let mut text = String::new();
    for value in key_values(fields, key) {
        text.push_str(&value);
        text.push('\u{1f}');
    }
    Some(text)
}

/// The primary-key value as JSON, as templates see it: the value of a one-field key, else the
/// array of the fields' values.
fn primary_key_json(fields: &RawObject, key: &[Vec<String>]) -> Option<String> {
    match key {
        [] => None,
        [_] => key_values(fields, key).next(),
        _ => Some(format!(
            "[{}]",
            key_values(fields, key).collect::<Vec<_>>().join(",")
        )),
    }
}

/// Each key path's value as JSON text (`null` when the record lacks it).
fn key_values<'a>(
    fields: &'a RawObject,
    key: &'a [Vec<String>],
) -> impl Iterator<Item = String> + 'a {
    key.iter().map(|path| {
        let top = fields.get(&path[0]);
        match (top, path.len()) {
            (None, _) => "null".to_string(),
            (Some(v), 1) => v.get().to_string(),
            (Some(v), _) => {
                let parsed: Value = serde_json::from_str(v.get()).unwrap_or(Value::Null);
                let pointer: String = path[1..]
                    .iter()
                    .map(|p| format!("/{}", p.replace('~', "~0").replace('/', "~1")))
                    .collect();
                parsed
                    .pointer(&pointer)
                    .map(Value::to_string)
                    .unwrap_or_else(|| "null".into())
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twins_are_counted_per_stream_until_a_state_covers_them() {
        let mut twins = Twins::default();
        let counts: Vec<u64> = [(0, "a"), (0, "a"), (1, "a"), (0, "b"), (0, "a")]
            .iter()
            .map(|(stream, data)| twins.occurrence(*stream, data))
            .collect();
        assert_eq!(counts, [1, 2, 1, 1, 3]);
        assert_eq!(twins.remembered, 3);
        twins.forget(Scope::Stream(0));
        assert_eq!(
            twins.remembered, 1,
            "what a stream's STATE forgets leaves the bound"
        );
        assert_eq!(twins.occurrence(0, "a"), 1);
        assert_eq!(twins.occurrence(1, "a"), 2);
        twins.forget(Scope::Global);
        assert_eq!(twins.occurrence(1, "a"), 1);
        assert_eq!(twins.remembered, 1);
    }

    #[test]
    fn templates_see_a_keys_value_or_nothing_without_a_key() {
        let fields: RawObject = serde_json::from_str(r#"{"id": 7, "o": {"k": "x"}}"#).unwrap();
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(primary_key_json(&fields, &[]), None);
        assert_eq!(
            primary_key_json(&fields, &[path(&["id"])]).as_deref(),
            Some("7")
        );
        let both = [path(&["id"]), path(&["o", "k"])];
        assert_eq!(
            primary_key_json(&fields, &both).as_deref(),
            Some(r#"[7,"x"]"#)
        );
    }

    #[test]
    fn twins_are_forgotten_past_the_bound() {
        let mut twins = Twins::default();
        for n in 0..MAX_REMEMBERED_TWINS {
            twins.occurrence(0, &n.to_string());
        }
        assert_eq!(twins.occurrence(0, "0"), 1);
        assert_eq!(twins.remembered, 1);
    }
}
