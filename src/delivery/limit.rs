//! The adaptive concurrency limit as delivery sees it: the [`Controller`] fed with every
//! attempt's outcome and round trip, and a count of the attempts on the wire that attempts
//! resuming after an endpoint-wide pause wait on.

use std::cell::{Cell, RefCell};
use std::time::Instant;

use tokio::sync::Notify;

use crate::concurrency::{Attempt, Change, Controller, Signal};
use crate::policy::Outcome;

pub struct Limit {
    controller: RefCell<Controller>,
    on_wire: Cell<u32>,
    /// Attempts waiting in [`room`](Self::room), woken when one on the wire finishes.
    waiting: Cell<u32>,
    finished: Notify,
    /// One attempt at a time until the first has finished. A TLS endpoint may speak HTTP/2, and
    /// the client's pool learns that only when a connection has negotiated it: a burst before
    /// opens a connection per request (measured: 16 against an endpoint offering HTTP/2,
    /// instead of one). Costs one round trip at the start.
    warming_up: Cell<bool>,
}

impl Limit {
    /// A limit that moves between 1 and `cap`; with `warm_up`, one at a time until the first
    /// attempt has finished.
    pub fn new(cap: u32, warm_up: bool) -> Self {
        Limit {
            controller: RefCell::new(Controller::new(cap, Instant::now())),
            on_wire: Cell::new(0),
            waiting: Cell::new(0),
            finished: Notify::new(),
            warming_up: Cell::new(warm_up),
        }
    }

    /// Requests that may be in flight now.
    pub fn current(&self) -> u32 {
        match self.warming_up.get() {
            true => 1,
            false => self.controller.borrow().limit(),
        }
    }

    pub fn why(&self) -> Change {
        self.controller.borrow().why()
    }

    /// Waits until fewer attempts than the limit are on the wire. The write loop starts no
    /// request beyond the limit, but the retries of requests already started would all go at
    /// once when a pause ends: they wait here, so work resumes at the reduced limit and ramps.
    pub async fn room(&self) {
        while self.on_wire.get() >= self.current() {
            let finished = self.finished.notified();
            self.waiting.set(self.waiting.get() + 1);
            finished.await;
            self.waiting.set(self.waiting.get() - 1);
        }
    }

    /// An attempt goes on the wire; returns the attempts on it, this one included.
    pub fn start(&self) -> u32 {
        let n = self.on_wire.get() + 1;
        self.on_wire.set(n);
        n
    }

    /// The attempt that [`start`](Self::start) returned `on_wire` for has come to `outcome`.
    pub fn finish(&self, started: Instant, finished: Instant, on_wire: u32, outcome: Outcome) {
        let after = self.on_wire.get();
        self.on_wire.set(after.saturating_sub(1));
        self.warming_up.set(false);
        self.controller.borrow_mut().observe(Attempt {
            started,
            finished,
            on_wire,
            on_wire_after: after,
            signal: signal(outcome),
        });
        if self.waiting.get() > 0 {
            self.finished.notify_waiters();
        }
    }
}

/// What an attempt's outcome says about the endpoint's capacity.
fn signal(outcome: Outcome) -> Signal {
    match outcome {
        Outcome::Answered { status, .. } if (200..300).contains(&status) => Signal::Success,
        Outcome::Answered {
            status: 429 | 503, ..
        } => Signal::Backpressure,
        Outcome::NoAnswer => Signal::Timeout,
        Outcome::Answered { .. } | Outcome::TlsRefused => Signal::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::concurrency::START;

    fn answered(status: u16) -> Outcome {
        Outcome::Answered {
            status,
            retry_after: None,
        }
    }

    #[test]
    fn each_outcome_is_its_signal() {
        assert_eq!(signal(answered(200)), Signal::Success);
        assert_eq!(signal(answered(204)), Signal::Success);
        assert_eq!(signal(answered(429)), Signal::Backpressure);
        assert_eq!(signal(answered(503)), Signal::Backpressure);
        assert_eq!(signal(Outcome::NoAnswer), Signal::Timeout);
        for other in [301, 400, 422, 500, 502] {
            assert_eq!(signal(answered(other)), Signal::Other, "{other}");
        }
        assert_eq!(signal(Outcome::TlsRefused), Signal::Other);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn waits_for_room_on_the_wire() {
        let limit = Limit::new(1, false);
        let now = Instant::now();
        let on_wire = limit.start();
        let waiter = limit.room();
        tokio::pin!(waiter);
        assert!(futures_util::poll!(waiter.as_mut()).is_pending());
        limit.finish(now, now, on_wire, answered(200));
        assert!(futures_util::poll!(waiter.as_mut()).is_ready());
    }

    #[test]
    fn warming_up_is_one_at_a_time_until_an_attempt_finishes() {
        let limit = Limit::new(64, true);
        assert_eq!(limit.current(), 1);
        let now = Instant::now();
        let on_wire = limit.start();
        limit.finish(now, now, on_wire, Outcome::NoAnswer);
        assert_eq!(limit.current(), START.min(64) / 2);
        assert_eq!(Limit::new(64, false).current(), START);
    }

    #[test]
    fn counts_attempts_on_the_wire() {
        let limit = Limit::new(4, false);
        assert_eq!((limit.start(), limit.start()), (1, 2));
        let now = Instant::now();
        limit.finish(now, now, 2, answered(429));
        assert_eq!(limit.start(), 2);
        assert_eq!(limit.why(), Change::Backpressure);
        assert_eq!(limit.current(), 1);
    }
}
