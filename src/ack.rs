//! The acknowledgement window: input entries (records and, in the Airbyte dialect, STATE
//! messages) in input order, each waiting until it is settled. Only the settled prefix leaves
//! the window, so whatever is checkpointed from it never runs ahead of what the endpoint
//! acknowledged.

use std::collections::VecDeque;

use serde_json::value::RawValue;

use crate::dialect::{RecordMeta, Scope};
use crate::rejection::Rejection;

/// How a record was settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ack {
    Delivered,
    Rejected(Rejection),
    /// Its operation's route is `skip`: nothing was sent, on purpose.
    Skipped,
}

/// An entry of the write loop's window: a record, or (Airbyte) an input STATE that leaves once
/// every record before it has.
pub enum Entry {
    Record(RecordMeta),
    State(Box<RawValue>, Scope),
}

impl Entry {
    /// Bytes the entry holds while in the window.
    pub fn size(&self) -> usize {
        match self {
            Entry::Record(meta) => meta.size,
            Entry::State(raw, _) => raw.get().len(),
        }
    }
}

/// What became of a group of records sent as one request: the same for every record (the usual
/// case, and no allocation), or one each when a batch was split.
#[derive(Debug)]
pub enum Acks {
    All(Ack),
    Each(Vec<Ack>),
}

impl Acks {
    /// The acknowledgement of the `i`-th record of the group.
    pub fn get(&self, i: usize) -> Ack {
        match self {
            Acks::All(ack) => ack.clone(),
            Acks::Each(acks) => acks[i].clone(),
        }
    }

    /// One acknowledgement per record of a group of `n`.
    pub fn into_vec(self, n: usize) -> Vec<Ack> {
        match self {
            Acks::All(ack) => vec![ack; n],
            Acks::Each(acks) => acks,
        }
    }
}

pub struct AckWindow<T> {
    /// Sequence number of `slots[0]`.
    base: u64,
    slots: VecDeque<(T, Option<Ack>)>,
}

impl<T> Default for AckWindow<T> {
    fn default() -> Self {
        AckWindow {
            base: 0,
            slots: VecDeque::new(),
        }
    }
}

impl<T> AckWindow<T> {
    /// Adds an entry at the end; `ack` is `Some` for entries settled on arrival (a STATE, a
    /// record refused before sending). Returns its sequence number.
    pub fn push(&mut self, entry: T, ack: Option<Ack>) -> u64 {
        self.slots.push_back((entry, ack));
        self.base + self.slots.len() as u64 - 1
    }

    /// Settles entry `seq`. Settling twice, or an entry already gone, is a bug in the caller.
    pub fn settle(&mut self, seq: u64, ack: Ack) {
        let index = seq
            .checked_sub(self.base)
            .expect("settled an entry that already left the window") as usize;
        let slot = &mut self.slots[index].1;
        debug_assert!(slot.is_none(), "entry {seq} settled twice");
        *slot = Some(ack);
    }

    /// The next entry of the settled prefix, if the front is settled.
    pub fn pop_settled(&mut self) -> Option<(T, Ack)> {
        if !matches!(self.slots.front(), Some((_, Some(_)))) {
            return None;
        }
        let (entry, ack) = self.slots.pop_front()?;
        self.base += 1;
        Some((entry, ack.expect("front is settled")))
    }

    /// Entries not yet out of the window (settled or not).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_the_settled_prefix_leaves() {
        let mut w = AckWindow::default();
        let a = w.push("a", None);
        let b = w.push("b", None);
        w.push("state", Some(Ack::Delivered));
        w.settle(b, Ack::Delivered);
        assert!(w.pop_settled().is_none());
        w.settle(a, Ack::Rejected(Rejection::MissingValmiMeta));
        assert_eq!(w.pop_settled().unwrap().0, "a");
        assert_eq!(w.pop_settled().unwrap().0, "b");
        assert_eq!(w.pop_settled().unwrap().0, "state");
        assert!(w.is_empty());
    }

    proptest! {
        /// Whatever order records complete in, the prefix that leaves is exactly the input order,
        /// never includes an unsettled record, and every state leaves exactly once.
        #[test]
        fn prefix_never_runs_ahead(
            kinds in proptest::collection::vec(any::<bool>(), 1..60),
            order_seed in any::<u64>(),
        ) {
            let mut w = AckWindow::default();
            let mut records = Vec::new();
            for (i, is_state) in kinds.iter().enumerate() {
                if *is_state {
                    w.push((i, true), Some(Ack::Delivered));
                } else {
                    records.push(w.push((i, false), None));
                }
            }
            // A deterministic shuffle from the seed.
            let mut order = records.clone();
            let mut x = order_seed | 1;
            for i in (1..order.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                order.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let mut settled = std::collections::HashSet::new();
            let mut out = Vec::new();
            while let Some(((i, _), _)) = w.pop_settled() {
                out.push(i);
            }
            for seq in order {
                w.settle(seq, Ack::Delivered);
                settled.insert(seq);
                while let Some(((i, is_state), _)) = w.pop_settled() {
                    prop_assert!(is_state || settled.contains(&(i as u64)));
                    out.push(i);
                }
            }
            prop_assert_eq!(out, (0..kinds.len()).collect::<Vec<_>>());
        }
    }
}
