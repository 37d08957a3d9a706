//! The records between input and checkpoint: the acknowledgement window (every entry in input
//! order until it settles) and the key scheduler (which of them may go out now). Bounded in
//! records and bytes: when it is full, stdin is not read, which is what keeps memory flat.

use crate::ack::{Ack, AckWindow, Acks, Entry};
use crate::delivery::Job;
use crate::dialect::{RecordMeta, Request};
use crate::ordering::{Group, Scheduler};

/// Bytes the window may hold (bodies and data of records not yet out of the settled prefix)
/// before stdin stops being read: a few very large records must not grow memory with the input.
const WINDOW_BYTES: usize = 64 * 1024 * 1024;

pub struct Backlog {
    window: AckWindow<Entry>,
    /// Bytes the window holds.
    bytes: usize,
    /// Records admitted but not yet out of the settled prefix, at most.
    cap: usize,
    /// Ready records beyond which no more input is taken. The window's room is for going on past
    /// a slow request, not for queueing: a record sent soon after the reader parsed it is still
    /// in cache, which on a fast endpoint is measurably more throughput (BENCHMARKS.md, round 4).
    read_ahead: usize,
    scheduler: Scheduler<Job>,
}

impl Backlog {
    pub fn new(concurrency: usize, batch_size: usize) -> Self {
        Backlog {
            window: AckWindow::default(),
            bytes: 0,
            cap: (concurrency * batch_size * 4).clamp(1024, 100_000),
            read_ahead: concurrency * batch_size * 2,
            scheduler: Scheduler::default(),
        }
    }

    /// A record to send: it waits in the window for its answer, and behind its key's earlier
    /// records for its turn.
    pub fn push_record(&mut self, meta: RecordMeta, request: Request, order_key: Option<u64>) {
        self.bytes += meta.size;
        let seq = self.window.push(Entry::Record(meta), None);
        let job = Job {
            seq,
            order_key,
            request,
        };
        self.scheduler.admit(order_key, job);
    }

    /// An entry settled on arrival: a record refused before sending, an input STATE.
    pub fn push_settled(&mut self, entry: Entry, ack: Ack) {
        self.bytes += entry.size();
        self.window.push(entry, Some(ack));
    }

    /// Settles every record of a finished request and frees their keys for the next records.
    pub fn settle(&mut self, jobs: Group<Job>, acks: &Acks) {
        for (i, job) in jobs.into_iter().enumerate() {
            self.window.settle(job.seq, acks.get(i));
            if let Some(key) = job.order_key {
                self.scheduler.release(key);
            }
        }
    }

    /// The next entry of the settled prefix, if the oldest entry is settled.
    pub fn pop_settled(&mut self) -> Option<(Entry, Ack)> {
        let (entry, ack) = self.window.pop_settled()?;
        self.bytes -= entry.size();
        Some((entry, ack))
    }

    /// Records for the next request: `batch_size` of them, or fewer when `partial_ok`.
    pub fn take(&mut self, batch_size: usize, partial_ok: bool) -> Option<Group<Job>> {
        self.scheduler.take(batch_size, partial_ok)
    }

    /// Whether more input may come in: the window has room and few records are ready to go.
    pub fn has_room(&self) -> bool {
        !self.is_full() && self.bytes < WINDOW_BYTES && self.scheduler.ready_len() < self.read_ahead
    }

    /// The window holds as many records as it may: a batch short of its size goes out anyway.
    pub fn is_full(&self) -> bool {
        self.window.len() >= self.cap
    }

    /// Entries not yet out of the settled prefix.
    pub fn len(&self) -> usize {
        self.window.len()
    }

    pub fn is_empty(&self) -> bool {
        self.window.is_empty()
    }
}
