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
    batch_size: usize,
    scheduler: Scheduler<Job>,
}

impl Backlog {
    /// `concurrency` is the cap of the adaptive limit: the window's room is for going on past a
    /// slow request even at the cap.
    pub fn new(concurrency: usize, batch_size: usize) -> Self {
        Backlog {
            window: AckWindow::default(),
            bytes: 0,
            cap: (concurrency * batch_size * 4).clamp(1024, 100_000),
            batch_size,
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

    /// Whether more input may come in: the window has room and fewer records are ready to go
    /// than two rounds of `limit` requests (the adaptive limit now, not its cap). Ready records
    /// are for keeping the requests going, not for queueing: a record sent soon after the reader
    /// parsed it is still in cache, which on a fast endpoint is measurably more throughput
    /// (BENCHMARKS.md, round 4), and against an endpoint that holds the limit at 16 a cap of 256
    /// would hold 512 records parsed and waiting.
    pub fn has_room(&self, limit: usize) -> bool {
        !self.is_full()
            && self.bytes < WINDOW_BYTES
            && self.scheduler.ready_len() < limit * self.batch_size * 2
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::RecordLabel;
    use crate::shape::Payload;
    use reqwest::header::HeaderValue;

    fn push(backlog: &mut Backlog, n: u64, size: usize, key: Option<u64>) {
        let mut meta = meta_of_size(size);
        meta.label.message_id = n;
        let request = Request {
            payload: Payload::Json(bytes::Bytes::new()),
            idempotency_key: HeaderValue::from_static("k"),
            label: meta.label,
        };
        backlog.push_record(meta, request, key);
    }

    fn push_n(backlog: &mut Backlog, n: u64) {
        (0..n).for_each(|i| push(backlog, i, 10, None));
    }

    #[test]
    fn reads_ahead_two_rounds_of_the_current_limit_not_of_the_cap() {
        let mut backlog = Backlog::new(256, 1);
        push_n(&mut backlog, 31);
        assert!(backlog.has_room(16));
        push_n(&mut backlog, 1);
        assert!(!backlog.has_room(16));
        assert!(backlog.has_room(256));
    }

    #[test]
    fn batches_count_in_the_read_ahead() {
        let mut backlog = Backlog::new(4, 10);
        push_n(&mut backlog, 79);
        assert!(backlog.has_room(4));
        push_n(&mut backlog, 1);
        assert!(!backlog.has_room(4));
    }

    /// Every ready record taken (in flight), one at a time.
    fn take_all(backlog: &mut Backlog) -> Vec<Group<Job>> {
        std::iter::from_fn(|| backlog.take(1, false)).collect()
    }

    /// README's bound in records: `concurrency × batch_size × 4`, between 1,024 and 100,000.
    #[test]
    fn the_window_holds_its_cap_in_records_and_no_more() {
        for (concurrency, batch_size, cap) in [(1, 1, 1024), (100, 10, 4000), (1000, 100, 100_000)]
        {
            let mut backlog = Backlog::new(concurrency, batch_size);
            for n in 0..cap as u64 {
                assert!(
                    backlog.has_room(concurrency) && !backlog.is_full(),
                    "{n} of {cap}"
                );
                push(&mut backlog, n, 1, None);
                take_all(&mut backlog);
            }
            assert!(backlog.is_full() && !backlog.has_room(concurrency), "{cap}");
            assert_eq!(backlog.len(), cap);
        }
    }

    /// Only the settled prefix leaves, and the bytes it held are given back.
    #[test]
    fn the_window_holds_64_mib_of_records_at_most_and_settling_frees_them() {
        const MIB_64: usize = 64 << 20;
        let mut backlog = Backlog::new(4, 1);
        push(&mut backlog, 1, MIB_64 - 1, Some(7));
        push(&mut backlog, 2, 0, Some(7));
        let first = take_all(&mut backlog);
        assert_eq!(first.len(), 1, "the second waits behind the first's key");
        assert!(backlog.has_room(4), "one byte short of the bound");
        backlog.push_settled(Entry::Record(meta_of_size(1)), Ack::Delivered);
        assert!(!backlog.has_room(4), "at the bound");
        assert_eq!(backlog.len(), 3);
        assert!(backlog.pop_settled().is_none(), "the oldest is in flight");
        let first = first.into_iter().next().unwrap();
        backlog.settle(first, &Acks::All(Ack::Delivered));
        let second = take_all(&mut backlog);
        assert_eq!(second.len(), 1, "its key was released");
        let (entry, ack) = backlog.pop_settled().unwrap();
        assert_eq!((entry.size(), ack), (MIB_64 - 1, Ack::Delivered));
        assert!(backlog.has_room(4) && backlog.pop_settled().is_none());
        backlog.settle(
            second.into_iter().next().unwrap(),
            &Acks::All(Ack::Delivered),
        );
        assert_eq!(backlog.pop_settled().unwrap().0.size(), 0);
        assert_eq!(backlog.pop_settled().unwrap().0.size(), 1);
        assert!(backlog.is_empty() && backlog.pop_settled().is_none());
        assert_eq!(backlog.bytes, 0);
    }

    fn meta_of_size(size: usize) -> RecordMeta {
        RecordMeta {
            label: RecordLabel {
                message_id: 0,
                row_num: None,
            },
            op: "".into(),
            stream: "s".into(),
            scope: 0,
            data: None,
            size,
            unreadable_rows_before: 0,
        }
    }
}
