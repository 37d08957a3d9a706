//! What the settled prefix turns into on stdout: STATE checkpoints and reports of rejected
//! records, per dialect. Pure: entries in, messages out, so the cadence is tested without I/O.

pub mod airbyte;
pub mod valmi;

use crate::protocol::Message;

use crate::ack::{Ack, Entry};
use crate::dialect::RecordMeta;
use crate::redact::FreeText;
use crate::rejection::Rejection;

pub enum Checkpointer {
    Valmi(valmi::ValmiCheckpoints),
    Airbyte(airbyte::AirbyteCheckpoints),
}

impl Checkpointer {
    /// One entry left the window (in input order).
    pub fn settled(&mut self, entry: Entry, ack: Ack, out: &mut Vec<Message>) {
        match self {
            Checkpointer::Valmi(c) => c.settled(entry, ack, out),
            Checkpointer::Airbyte(c) => c.settled(entry, ack, out),
        }
    }

    /// Input ended and every record is settled.
    pub fn finish(&mut self, out: &mut Vec<Message>) {
        match self {
            Checkpointer::Valmi(c) => out.push(c.state(true, true)),
            Checkpointer::Airbyte(c) => c.finish(out),
        }
    }

    /// The run stops early (fatal error, signal): report the prefix without committing a
    /// partial chunk.
    pub fn interrupted(&mut self, out: &mut Vec<Message>) {
        match self {
            Checkpointer::Valmi(c) if c.has_progress() => out.push(c.state(false, false)),
            Checkpointer::Valmi(_) => {}
            Checkpointer::Airbyte(c) => c.finish(out),
        }
    }
}

/// A rejected record in words, shared by both dialects' reports. It may quote the endpoint's
/// answer, so it is free text; the code is not.
pub fn rejection_text(meta: &RecordMeta, rejection: &Rejection) -> FreeText {
    format!("{} (stream {}): {rejection}", meta.label, meta.stream).into()
}
