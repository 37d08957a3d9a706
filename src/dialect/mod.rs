//! Turning an input record into what is sent: the payload (Valmi mapping or Airbyte data) in
//! its envelope (through the [`Encoder`](crate::encoder::Encoder)), the ordering key and the
//! idempotency key. Runs on the reader thread,
//! off the delivery loop.

pub mod airbyte;
pub mod valmi;

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bytes::Bytes;
use reqwest::header::HeaderValue;
use serde_json::value::RawValue;

use crate::protocol::InputRecord;
use crate::rejection::Rejection;
use crate::shape::Payload;

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
    /// Valmi: how many row numbers right below this record's were missing from the input
    /// where unreadable lines stood before it; they count as settled with it, since those
    /// lines will never be records.
    pub unreadable_rows_before: u64,
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
            unreadable_rows_before: 0,
        }
    }

    /// The record as refused before sending.
    fn refused(self, reason: Rejection) -> Event {
        Event::Refused { meta: self, reason }
    }

    /// The record as sent: the window holds its request body too.
    fn send(mut self, request: Request, order_key: Option<u64>) -> Event {
        self.size += request.payload.size();
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
    pub payload: Payload,
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
    /// A record whose operation's route is `skip`: acknowledged without being sent.
    Skipped(RecordMeta),
    State(Box<RawValue>, Scope),
    /// A line that is not a protocol message: skipped, counted, warned about.
    Malformed {
        line_no: u64,
        excerpt: String,
        reason: String,
    },
    /// The WARN for the first record of a stream missing from the catalog, once per stream.
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

    /// A line that could not be read as a message (it may have been a record).
    pub fn unreadable_line(&mut self) {
        if let Dialect::Valmi(d) = self {
            d.unreadable_line();
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

/// The ordering key of a record. It only decides which records wait for each other within this
/// process (a collision makes two keys share a turn, nothing more), so it needs speed, not
/// resistance to chosen inputs.
pub fn hash_key(parts: impl Hash) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    parts.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::Payload;

    /// The window's byte bound counts what a record holds while in it: its input data (Valmi
    /// keeps it to echo a rejection) and its request body. An Airbyte record keeps no data, so
    /// its body is all that stops a slow endpoint's read-ahead of large records.
    #[test]
    fn a_sent_record_counts_its_data_and_its_body() {
        let label = RecordLabel {
            message_id: 1,
            row_num: None,
        };
        let body = Bytes::from_static(br#"{"id":1,"x":2}"#);
        let sizes = [None, Some(Bytes::from_static(br#"{"id":1}"#))].map(|data| {
            let request = Request {
                payload: Payload::Json(body.clone()),
                idempotency_key: HeaderValue::from_static("k"),
                label,
            };
            let Event::Record { meta, .. } =
                RecordMeta::new(label, "s".into(), 0, data).send(request, None)
            else {
                panic!("a sent record is a record");
            };
            meta.size
        });
        assert_eq!(sizes, [14, 8 + 14]);
    }
}
