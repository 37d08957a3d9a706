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
}

impl Limit {
    /// A limit that moves between 1 and `cap`.
    pub fn new(cap: u32) -> Self {
        Limit {
            controller: RefCell::new(Controller::new(cap, Instant::now())),
            on_wire: Cell::new(0),
            waiting: Cell::new(0),
            finished: Notify::new(),
        }
    }

    /// Requests that may be in flight now.
    pub fn current(&self) -> u32 {
        self.controller.borrow().limit()
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
        let limit = Limit::new(1);
        let now = Instant::now();
        let on_wire = limit.start();
        let waiter = limit.room();
        tokio::pin!(waiter);
        assert!(futures_util::poll!(waiter.as_mut()).is_pending());
        limit.finish(now, now, on_wire, answered(200));
        assert!(futures_util::poll!(waiter.as_mut()).is_ready());
    }

    #[test]
    fn counts_attempts_on_the_wire() {
        let limit = Limit::new(4);
        assert_eq!((limit.start(), limit.start()), (1, 2));
        let now = Instant::now();
        limit.finish(now, now, 2, answered(429));
        assert_eq!(limit.start(), 2);
        assert_eq!(limit.why(), Change::Backpressure);
        assert_eq!(limit.current(), 1);
    }
}
