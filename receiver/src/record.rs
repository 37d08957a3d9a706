//! What the receiver saw, shared between the server's worker threads and the
//! test thread that inspects it.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;

/// One request, recorded once it has been answered (or hung up on).
#[derive(Clone, Debug, Serialize)]
pub struct RecordedRequest {
    /// 0-based arrival order. A request whose body never fully arrived is not
    /// recorded, which leaves a gap.
    pub seq: u64,
    pub method: String,
    /// The HTTP version it came in: `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// Raw request target (path plus `?query`), not percent-decoded.
    pub path: String,
    /// Names lowercase. Order is arrival order of each distinct name; repeated
    /// values of one name are grouped right after its first occurrence.
    pub headers: Vec<(String, String)>,
    /// Lossy UTF-8 of the body, gunzipped when `Content-Encoding: gzip`.
    pub body: String,
    /// What was answered; 0 when the connection was closed without answering.
    pub status: u16,
    /// `Some` exactly when a signing secret is configured.
    pub signature_valid: Option<bool>,
    /// Milliseconds since the server started, when the request head arrived.
    pub received_at_ms: u64,
    /// Milliseconds since the server started, when the answer was handed to
    /// the connection or the connection was dropped (after any delay). Lets tests prove that two requests
    /// did not overlap: `b.received_at_ms >= a.answered_at_ms`.
    pub answered_at_ms: u64,
}

impl RecordedRequest {
    /// Case-insensitive; the first value if the header repeats.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    ///
    /// # Panics
    /// If the body is not JSON; the message names the request and shows the body.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "request #{} ({} {}) body is not JSON ({e}): {:?}",
                self.seq, self.method, self.path, self.body
            )
        })
    }
}

/// Answered requests plus a count that keeps going when recording is off, so
/// benchmarks can still wait for "n requests done" with flat memory.
#[derive(Default)]
pub(crate) struct Journal {
    state: Mutex<JournalState>,
    changed: Condvar,
}

#[derive(Default)]
struct JournalState {
    answered: u64,
    requests: Vec<RecordedRequest>,
}

impl Journal {
    pub(crate) fn add(&self, request: Option<RecordedRequest>) {
        let mut state = self.lock();
        state.answered += 1;
        state.requests.extend(request);
        drop(state);
        self.changed.notify_all();
    }

    /// Sorted by `seq`: requests are recorded when answered, and a delayed
    /// request is answered after later arrivals.
    pub(crate) fn snapshot(&self) -> Vec<RecordedRequest> {
        let mut requests = self.lock().requests.clone();
        requests.sort_by_key(|r| r.seq);
        requests
    }

    pub(crate) fn count(&self) -> u64 {
        self.lock().answered
    }

    pub(crate) fn wait_for(&self, n: u64, timeout: Duration) -> bool {
        let state = self.lock();
        let (state, _) = self
            .changed
            .wait_timeout_while(state, timeout, |s| s.answered < n)
            .unwrap_or_else(PoisonError::into_inner);
        state.answered >= n
    }

    /// A panicking test thread must not take the server down with it.
    fn lock(&self) -> MutexGuard<'_, JournalState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
