//! Counters of the delivery side, read by the progress logs. Single-threaded (the write loop
//! runs on one thread), so plain cells.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use hdrhistogram::Histogram;

pub struct Metrics {
    requests: Cell<u64>,
    retries: Cell<u64>,
    latency_us: RefCell<Histogram<u64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Cell::new(0),
            retries: Cell::new(0),
            latency_us: RefCell::new(
                Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("valid bounds"),
            ),
        }
    }
}

impl Metrics {
    pub fn record_request(&self, took: Duration) {
        self.requests.set(self.requests.get() + 1);
        let _ = self
            .latency_us
            .borrow_mut()
            .record((took.as_micros() as u64).max(1));
    }

    pub fn record_retry(&self) {
        self.retries.set(self.retries.get() + 1);
    }

    pub fn requests(&self) -> u64 {
        self.requests.get()
    }

    pub fn retries(&self) -> u64 {
        self.retries.get()
    }

    /// Latency at quantile `q` (0..=1) in milliseconds.
    pub fn latency_ms(&self, q: f64) -> f64 {
        self.latency_us.borrow().value_at_quantile(q) as f64 / 1000.0
    }
}
