//! Which records may be in flight together: records sharing a key go one at a time, in input
//! order (mirror mode's `delete` must land before the `upsert` of the same row); records without
//! a key go whenever there is room.

use std::collections::hash_map::Entry;
use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use smallvec::SmallVec;

/// Records taken to go out as one request: a single record unless batching, held inline so
/// that the usual request allocates nothing for it.
pub type Group<T> = SmallVec<[T; 1]>;

pub struct Scheduler<T> {
    ready: VecDeque<T>,
    /// A key is busy while present: its record is ready or in flight, and later records of the
    /// same key wait here in input order.
    /// Keys are already hashes; FxHash only has to spread them.
    waiting: FxHashMap<u64, VecDeque<T>>,
}

impl<T> Default for Scheduler<T> {
    fn default() -> Self {
        Scheduler {
            ready: VecDeque::new(),
            waiting: FxHashMap::default(),
        }
    }
}

impl<T> Scheduler<T> {
    pub fn admit(&mut self, key: Option<u64>, item: T) {
        match key.map(|key| self.waiting.entry(key)) {
            Some(Entry::Occupied(mut queue)) => queue.get_mut().push_back(item),
            Some(Entry::Vacant(slot)) => {
                slot.insert(VecDeque::new());
                self.ready.push_back(item);
            }
            None => self.ready.push_back(item),
        }
    }

    /// The record holding `key` is settled: the next one of that key becomes ready.
    pub fn release(&mut self, key: u64) {
        if let Entry::Occupied(mut queue) = self.waiting.entry(key) {
            match queue.get_mut().pop_front() {
                Some(next) => self.ready.push_back(next),
                None => {
                    queue.remove();
                }
            }
        }
    }

    /// Records that could go out now (not waiting behind their key).
    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// Up to `max` ready records; fewer only when `partial_ok` (nothing else will fill the batch
    /// soon), none when nothing is ready.
    pub fn take(&mut self, max: usize, partial_ok: bool) -> Option<Group<T>> {
        if self.ready.is_empty() || (self.ready.len() < max && !partial_ok) {
            return None;
        }
        let n = self.ready.len().min(max);
        Some(self.ready.drain(..n).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_waits_for_release_in_order() {
        let mut s = Scheduler::default();
        s.admit(Some(1), "delete-1");
        s.admit(Some(1), "upsert-1");
        s.admit(Some(2), "upsert-2");
        s.admit(None, "free");
        assert_eq!(
            s.take(10, true).unwrap()[..],
            ["delete-1", "upsert-2", "free"]
        );
        assert!(s.take(10, true).is_none());
        s.release(1);
        assert_eq!(s.take(10, true).unwrap()[..], ["upsert-1"]);
        s.release(1);
        s.release(2);
        assert!(s.waiting.is_empty());
        s.admit(Some(1), "again");
        assert_eq!(s.take(1, false).unwrap()[..], ["again"]);
    }

    #[test]
    fn batches_fill_unless_partial_is_allowed() {
        let mut s = Scheduler::default();
        s.admit(None, 1);
        s.admit(None, 2);
        assert!(s.take(3, false).is_none());
        assert_eq!(s.take(3, true).unwrap()[..], [1, 2]);
    }
}
