//! A remote-like endpoint: every answer comes after a latency, at most `limit` requests are
//! served at once, and a request beyond that is refused (429 with `Retry-After`) or waits its
//! turn in a queue, like a server with a fixed worker pool. What a real endpoint 20–200 ms away
//! with an unstated capacity looks like to a client, on loopback.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::script::Reply;

/// What happens to a request that finds the endpoint at its capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Beyond {
    /// 429 with `Retry-After: retry_after_s`.
    Refuse { retry_after_s: u32 },
    /// Waits for a request being served to finish.
    Queue,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Remote {
    /// Every answer (a refusal too: it crosses the same network) comes this long after the
    /// request arrived, plus any wait in the queue.
    pub latency_ms: u64,
    /// Requests served at once at most.
    pub limit: u32,
    pub beyond: Beyond,
}

/// A [`Remote`] being served: its capacity and what it has seen.
pub(crate) struct Endpoint {
    remote: Remote,
    slots: Semaphore,
    refused: AtomicU64,
    /// Served requests by latency (arrival to answer) in whole milliseconds; the last bucket
    /// holds everything slower.
    latencies: Vec<AtomicU64>,
}

const LATENCY_BUCKETS: usize = 10_000;

/// A request's turn: the slot it holds while being served, or the refusal to send.
pub(crate) enum Turn<'a> {
    /// The slot goes back when the turn is dropped, with the answer.
    Served {
        _slot: SemaphorePermit<'a>,
    },
    Refused(Reply),
}

impl Endpoint {
    pub(crate) fn new(remote: Remote) -> Self {
        Endpoint {
            remote,
            slots: Semaphore::new(remote.limit.max(1) as usize),
            refused: AtomicU64::new(0),
            latencies: (0..LATENCY_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Waits for a slot (queue) or refuses at once (refuse); either way the answer is due
    /// `latency_ms` after the turn is given.
    pub(crate) async fn turn(&self) -> Turn<'_> {
        let permit = match self.remote.beyond {
            Beyond::Queue => self.slots.acquire().await.ok(),
            Beyond::Refuse { .. } => self.slots.try_acquire().ok(),
        };
        tokio::time::sleep(Duration::from_millis(self.remote.latency_ms)).await;
        match (permit, self.remote.beyond) {
            (Some(slot), _) => Turn::Served { _slot: slot },
            (None, Beyond::Refuse { retry_after_s }) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Turn::Refused(
                    Reply::status(429).with_header("Retry-After", retry_after_s.to_string()),
                )
            }
            (None, Beyond::Queue) => unreachable!("a queued request always gets its slot"),
        }
    }

    pub(crate) fn served(&self, took: Duration) {
        let ms = (took.as_millis() as usize).min(LATENCY_BUCKETS - 1);
        self.latencies[ms].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The `q` quantile (0.5 for the median) of served requests' latency, in whole
    /// milliseconds; `None` before any was served.
    pub(crate) fn latency_ms(&self, q: f64) -> Option<u64> {
        let counts: Vec<u64> = self
            .latencies
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        quantile(&counts, q)
    }
}

/// The bucket below which a share `q` of the counted items fall.
fn quantile(counts: &[u64], q: f64) -> Option<u64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64 * q).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    counts
        .iter()
        .position(|&c| {
            seen += c;
            seen >= rank
        })
        .map(|i| i as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_a_histogram() {
        assert_eq!(quantile(&[0, 0, 0], 0.5), None);
        assert_eq!(quantile(&[0, 3, 1], 0.5), Some(1));
        assert_eq!(quantile(&[0, 1, 3], 0.5), Some(2));
        assert_eq!(quantile(&[2, 0, 2], 0.5), Some(0));
        assert_eq!(quantile(&[2, 0, 2], 1.0), Some(2));
    }
}
