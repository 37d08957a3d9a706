//! Turning an input record into what is sent: the payload (Valmi mapping or Airbyte data), the
//! envelope or GET query, the ordering key and the idempotency key. Runs on the reader thread,
//! off the delivery loop.

pub mod airbyte;
pub mod valmi;

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use reqwest::header::HeaderValue;
use serde_json::value::RawValue;

use crate::config::Method;
use crate::envelope::{Envelope, Payload};
use crate::flatten;
use crate::protocol::InputRecord;
use crate::rejection::Rejection;

/// URLs longer than this are refused by many servers or silently truncated.
pub const MAX_GET_URL: usize = 16 * 1024;

/// How a record is named in messages: by Valmi row number when it has one, else by position.
#[derive(Clone, Copy, Debug)]
pub struct RecordLabel {
    pub message_id: u64,
    pub row_num: Option<u64>,
}

impl fmt::Display for RecordLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.row_num {
            Some(row) => write!(f, "record _valmi_row_num={row}"),
            None => write!(f, "record #{} of the input", self.message_id),
        }
    }
}

/// What the acknowledgement side needs to know about a record.
#[derive(Debug)]
pub struct RecordMeta {
    pub label: RecordLabel,
    /// Valmi `_valmi_sync_op` (counted per op in checkpoints); empty in the Airbyte dialect.
    pub op: Cow<'static, str>,
    pub stream: Arc<str>,
    /// Airbyte STATE scope the record counts towards.
    pub scope: u32,
    /// Valmi only: the input data (raw JSON text), echoed back if the record is rejected.
    pub data: Option<Bytes>,
    /// Bytes this record holds while in the window (request body and data).
    pub size: usize,
}

impl RecordMeta {
    fn new(label: RecordLabel, stream: Arc<str>, scope: u32, data: Option<Bytes>) -> Self {
        let size = data.as_ref().map_or(0, Bytes::len);
        RecordMeta {
            label,
            op: Cow::Borrowed(""),
            stream,
            scope,
            data,
            size,
        }
    }

    /// The record as refused before sending.
    fn refused(self, reason: Rejection) -> Event {
        Event::Refused { meta: self, reason }
    }

    /// The record as sent: the window holds its request body too.
    fn send(mut self, request: Request, order_key: Option<u64>) -> Event {
        self.size += request.body.len();
        Event::Record {
            meta: self,
            request,
            order_key,
        }
    }
}

/// What the delivery side needs to send a record.
#[derive(Debug)]
pub struct Request {
    /// The envelope JSON, or for GET the query string.
    pub body: bytes::Bytes,
    /// Ready to send as a header: made here, on the reader thread, in the arena, so sending it
    /// costs the delivery thread neither a check nor an allocation.
    pub idempotency_key: HeaderValue,
    pub label: RecordLabel,
}

/// What one input line comes to, as the write loop takes it.
pub enum Event {
    /// A record to send; records with the same `order_key` go one at a time, in input order.
    Record {
        meta: RecordMeta,
        request: Request,
        order_key: Option<u64>,
    },
    /// A record refused before sending (no `_valmi_meta`, unknown stream, URL too long...).
    Refused {
        meta: RecordMeta,
        reason: Rejection,
    },
    State(Box<RawValue>, Scope),
    /// A line that is not a protocol message: skipped, counted, warned about.
    Malformed {
        line_no: u64,
        excerpt: String,
        reason: String,
    },
    /// The first record of a stream missing from the catalog (warned about once).
    UnknownStream(String),
    /// A record covered by the resume checkpoint: delivered by an earlier attempt of this run.
    AlreadyDelivered,
    /// stdin could not be read: input did not end, it broke, so the run must not finish.
    Broken(String),
}

/// Which STATE counters an Airbyte STATE message reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Stream(u32),
    Global,
}

pub enum Dialect {
    Valmi(valmi::Valmi),
    Airbyte(airbyte::Airbyte),
}

impl Dialect {
    /// The events of one input record (a warning may come before the record's own).
    pub fn read(&mut self, record: &InputRecord, message_id: u64, out: &mut Vec<Event>) {
        match self {
            Dialect::Valmi(d) => out.push(d.read(record, message_id)),
            Dialect::Airbyte(d) => d.read(record, message_id, out),
        }
    }

    /// `None`: the dialect ignores input STATE messages (Valmi).
    pub fn state_scope(&mut self, state: &RawValue) -> Option<Scope> {
        match self {
            Dialect::Valmi(_) => None,
            Dialect::Airbyte(d) => Some(d.state_scope(state)),
        }
    }
}

/// Bytes the arena allocates at a time. Records are written into it back to back and handed
/// on as slices of it, so a record costs no allocation of its own, and the delivery thread
/// frees one block per few hundred records instead of one buffer per record.
const ARENA_BLOCK: usize = 64 * 1024;
/// Room made for a body beyond its payload's size (the envelope's own fields), so a body is
/// written in one place and never moved mid-write.
const ENVELOPE_ROOM: usize = 1024;

/// How records become request bodies: the part both dialects share.
pub struct Wire {
    method: Method,
    url: String,
    arena: BytesMut,
}

impl Wire {
    pub fn new(method: Method, url: String) -> Self {
        Wire {
            method,
            url,
            arena: BytesMut::with_capacity(ARENA_BLOCK),
        }
    }

    /// A copy of `text` that lives as long as the record needs it.
    pub fn keep(&mut self, text: &str) -> Bytes {
        self.room(text.len());
        self.arena.extend_from_slice(text.as_bytes());
        self.arena.split().freeze()
    }

    /// The idempotency key as a header value.
    pub fn key_header(&mut self, key: crate::idempotency::Key) -> HeaderValue {
        HeaderValue::from_maybe_shared(self.keep(key.as_str()))
            .expect("idempotency keys are URL-safe base64")
    }

    /// Makes room for `needed` bytes. A block too small is replaced, never grown: growing a
    /// block whose records are all gone would keep their bytes in it, so large records would
    /// grow it again and again.
    fn room(&mut self, needed: usize) {
        if self.arena.capacity() < needed {
            self.arena = BytesMut::with_capacity(needed.max(ARENA_BLOCK));
        }
    }

    /// The envelope JSON, or for GET the query string; `Err` (a reason) when a GET record cannot
    /// be flattened or its URL would be over the limit. `payload_size`: about how long the
    /// payload's JSON is (the record's data is an upper bound).
    pub fn body<P: Payload>(
        &mut self,
        envelope: Envelope<'_, P>,
        payload_size: usize,
        payload_value: impl FnOnce() -> Result<serde_json::Value, serde_json::Error>,
    ) -> Result<Bytes, Rejection> {
        if self.method != Method::Get {
            self.room(payload_size + ENVELOPE_ROOM);
            envelope.write_json(&mut self.arena);
            return Ok(self.arena.split().freeze());
        }
        let payload = payload_value().map_err(|e| Rejection::NotFlattenable(e.to_string()))?;
        let query = flatten::envelope_query(
            &payload,
            envelope.message_id,
            envelope.sync_mode,
            envelope.stream,
        );
        let length = self.url.len() + 1 + query.len();
        if length > MAX_GET_URL {
            return Err(Rejection::UrlTooLong {
                length,
                limit: MAX_GET_URL,
            });
        }
        Ok(Bytes::from(query))
    }
}

/// The ordering key of a record. It only decides which records wait for each other within this
/// process (a collision makes two keys share a turn, nothing more), so it needs speed, not
/// resistance to chosen inputs.
pub fn hash_key(parts: impl Hash) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    parts.hash(&mut h);
    h.finish()
}
