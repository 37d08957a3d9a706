//! stdout: protocol messages only, one compact JSON object per line.
//!
//! Writes are buffered; the write loop flushes them at most every few milliseconds while it is
//! busy and at once when it goes idle: a reader sees every message promptly, and a fast sync is
//! not a storm of tiny pipe writes. A
//! closed stdout (the orchestrator died) is reported as [`Closed`] so the caller can stop at
//! once instead of panicking.

use std::io::{self, BufWriter, Write};

use serde::Serialize;

#[derive(Debug, thiserror::Error)]
#[error("stdout was closed by the reader")]
pub struct Closed;

/// Writes each message as it was built: secrets are scrubbed from the prose of LOG and TRACE
/// messages where that text is made (`redact::FreeText`), never from a finished line, which
/// would rewrite STATEs and record data.
pub struct Output {
    out: BufWriter<io::Stdout>,
}

impl Output {
    pub fn stdout() -> Self {
        Output {
            out: BufWriter::with_capacity(64 * 1024, io::stdout()),
        }
    }

    pub fn emit<T: Serialize>(&mut self, message: &T) -> Result<(), Closed> {
        let line = serde_json::to_string(message).expect("protocol messages always serialise");
        self.out.write_all(line.as_bytes()).map_err(|_| Closed)?;
        self.out.write_all(b"\n").map_err(|_| Closed)
    }

    pub fn flush(&mut self) -> Result<(), Closed> {
        self.out.flush().map_err(|_| Closed)
    }

    /// Something was written and not flushed yet.
    pub fn is_dirty(&self) -> bool {
        !self.out.buffer().is_empty()
    }
}
