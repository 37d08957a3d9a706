//! The stdin side: a dedicated thread reads lines, parses them and runs the dialect, then hands
//! the results to the delivery loop in chunks. Parsing runs in parallel with delivery, and the
//! bounded channel is what keeps memory flat: when the loop stops taking, this thread stops
//! reading.

use std::io::{BufRead, BufReader, Read};

use tokio::sync::mpsc;

use crate::dialect::{Dialect, Event};
use crate::protocol::{parse_line, Parsed};

/// Longer lines (32 MiB) are skipped unread rather than held in memory whole.
pub const MAX_LINE_BYTES: usize = 33_554_432;
/// Lines longer than this get a buffer sized for the longest allowed line, released after.
const LONG_LINE: usize = 1024 * 1024;
/// Events per hand-over at most. Small, so that a record reaches the delivery thread while the
/// cache still holds it, which on a fast endpoint is worth more than the hand-overs it adds (a
/// possible wake-up of the other thread per 64 records; BENCHMARKS.md, round 4). A trickling
/// input is passed on line by line anyway, since a chunk also goes whenever stdin has nothing
/// more yet.
const CHUNK: usize = 64;
/// Input bytes per hand-over at most, so the channel's read-ahead stays small even when records
/// are large.
const CHUNK_BYTES: usize = 1024 * 1024;
/// How much of a skipped line the WARN shows.
const EXCERPT_BYTES: usize = 200;

/// Starts the reader thread; the channel closes when input ends.
pub fn spawn(input: impl Read + Send + 'static, dialect: Dialect, tx: mpsc::Sender<Vec<Event>>) {
    std::thread::Builder::new()
        .name("stdin-reader".into())
        .spawn(move || read_all(input, dialect, tx))
        .expect("spawn the reader thread");
}

fn read_all(input: impl Read, mut dialect: Dialect, tx: mpsc::Sender<Vec<Event>>) {
    let mut reader = BufReader::with_capacity(256 * 1024, input);
    let mut line = Vec::with_capacity(4096);
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut line_no = 0u64;
    let mut chunk_bytes = 0usize;
    let mut message_id = 0u64;
    loop {
        if line.capacity() > LONG_LINE {
            line = Vec::with_capacity(4096);
        }
        line.clear();
        let (complete, oversized) = match read_line(&mut reader, &mut line) {
            Ok(result) => result,
            Err(e) => {
                chunk.push(Event::Broken(format!(
                    "could not read stdin after line {line_no}: {e}"
                )));
                break;
            }
        };
        if !complete && line.is_empty() && !oversized {
            break;
        }
        line_no += 1;
        chunk_bytes += line.len();
        if oversized {
            dialect.unreadable_line();
            chunk.push(Event::Malformed {
                line_no,
                excerpt: excerpt(&line),
                reason: format!("line longer than {MAX_LINE_BYTES} bytes"),
            });
        } else {
            handle_line(&line, line_no, &mut message_id, &mut dialect, &mut chunk);
        }
        // Hand over when full, or when the next read would wait for the writer of stdin.
        if chunk.len() >= CHUNK || chunk_bytes >= CHUNK_BYTES || reader.buffer().is_empty() {
            chunk_bytes = 0;
            if tx
                .blocking_send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)))
                .is_err()
            {
                return;
            }
        }
        if !complete {
            break;
        }
    }
    if !chunk.is_empty() {
        let _ = tx.blocking_send(chunk);
    }
}

/// Reads one line without its newline into `line`, keeping at most [`MAX_LINE_BYTES`] (the
/// first bytes, for the excerpt). Returns (ended with a newline, was too long).
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<(bool, bool)> {
    let mut oversized = false;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok((false, oversized));
        }
        let (take, found) = match memchr::memchr(b'\n', buf) {
            Some(i) => (i, true),
            None => (buf.len(), false),
        };
        if !oversized && line.len() + take > MAX_LINE_BYTES {
            oversized = true;
            line.truncate(EXCERPT_BYTES);
        }
        if !oversized {
            make_room(line, take);
            line.extend_from_slice(&buf[..take]);
        } else if line.len() < EXCERPT_BYTES {
            let room = (EXCERPT_BYTES - line.len()).min(take);
            line.extend_from_slice(&buf[..room]);
        }
        reader.consume(take + usize::from(found));
        if found {
            return Ok((true, oversized));
        }
    }
}

/// Room for `more` bytes of a line. A long line grows in one step to the cap instead of by
/// doubling: doubling copies it again and again and, with the old buffers, doubles the peak
/// memory. Pages are only touched as they are filled.
fn make_room(line: &mut Vec<u8>, more: usize) {
    if line.len() + more > line.capacity() && line.len() + more > LONG_LINE {
        line.reserve_exact(MAX_LINE_BYTES - line.len());
    }
}

fn handle_line(
    line: &[u8],
    line_no: u64,
    message_id: &mut u64,
    dialect: &mut Dialect,
    out: &mut Vec<Event>,
) {
    match parse_line(line) {
        Err(crate::protocol::LineError::Empty) => out.push(Event::Malformed {
            line_no,
            excerpt: String::new(),
            reason: "empty line".into(),
        }),
        Err(e) => {
            dialect.unreadable_line();
            out.push(Event::Malformed {
                line_no,
                excerpt: excerpt(line),
                reason: e.to_string(),
            })
        }
        Ok(Parsed::Ignored) => {}
        Ok(Parsed::State(raw)) => {
            if let Some(scope) = dialect.state_scope(raw) {
                out.push(Event::State(raw.to_owned(), scope));
            }
        }
        Ok(Parsed::Record(record)) => {
            *message_id += 1;
            dialect.read(&record, *message_id, out);
        }
    }
}

fn excerpt(line: &[u8]) -> String {
    let cut = &line[..line.len().min(EXCERPT_BYTES)];
    String::from_utf8_lossy(cut).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line of exactly the limit is kept; one byte more is too long.
    #[test]
    fn the_line_limit_is_inclusive() {
        // The contract's 32 MiB, written out: the constant is what is under test.
        const LIMIT: usize = 33_554_432;
        for (extra, oversized) in [(0, false), (1, true)] {
            let mut input = vec![b'x'; LIMIT + extra];
            input.push(b'\n');
            let mut reader = BufReader::with_capacity(64 * 1024, &input[..]);
            let mut line = Vec::new();
            let (complete, too_long) = read_line(&mut reader, &mut line).unwrap();
            assert!(complete);
            assert_eq!(too_long, oversized, "{} bytes", LIMIT + extra);
        }
    }

    #[test]
    fn long_lines_are_cut_and_flagged_and_partial_last_lines_kept() {
        let mut input = vec![b'x'; MAX_LINE_BYTES + 10];
        input.extend_from_slice(b"\nshort\nlast-no-newline");
        let mut reader = BufReader::with_capacity(1024, &input[..]);
        let mut line = Vec::new();
        assert_eq!(read_line(&mut reader, &mut line).unwrap(), (true, true));
        assert_eq!(line.len(), EXCERPT_BYTES);
        line.clear();
        assert_eq!(read_line(&mut reader, &mut line).unwrap(), (true, false));
        assert_eq!(line, b"short");
        line.clear();
        assert_eq!(read_line(&mut reader, &mut line).unwrap(), (false, false));
        assert_eq!(line, b"last-no-newline");
    }

    /// The excerpt is the line's first bytes however the reader hands them over: here two bytes
    /// come first, then the rest of the over-long line in one read.
    #[test]
    fn an_over_long_line_keeps_its_first_bytes_however_it_is_read() {
        let mut rest = vec![b'x'; MAX_LINE_BYTES + 10];
        rest.push(b'\n');
        let mut reader = (&b"ab"[..]).chain(&rest[..]);
        let mut line = Vec::new();
        assert_eq!(read_line(&mut reader, &mut line).unwrap(), (true, true));
        assert_eq!(line.len(), EXCERPT_BYTES);
        assert!(line.starts_with(b"abx"));
        assert_eq!(excerpt(&line), String::from_utf8(line.clone()).unwrap());
        assert_eq!(excerpt(b"short \xff"), "short \u{fffd}");
    }
}
