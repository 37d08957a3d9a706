//! When the next attempt may start: after an endpoint-wide pause (a 429/503 asks every worker to
//! wait, not just the one that got it) and within the configured rate limit.

use std::cell::Cell;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

#[derive(Default)]
pub struct Pacing {
    limiter: Option<DefaultDirectRateLimiter>,
    paused_until: Cell<Option<Instant>>,
}

impl Pacing {
    pub fn new(rate_limit_per_second: Option<f64>) -> Self {
        let limiter = rate_limit_per_second
            .filter(|r| *r > 0.0)
            .and_then(|r| Quota::with_period(Duration::from_secs_f64(1.0 / r)))
            .map(RateLimiter::direct);
        Pacing {
            limiter,
            paused_until: Cell::new(None),
        }
    }

    /// When the endpoint asked everyone to wait, until when.
    pub fn paused_until(&self) -> Option<Instant> {
        self.paused_until.get().filter(|t| *t > Instant::now())
    }

    /// Every attempt waits until `for_` from now; a longer pause already set stands.
    pub fn pause(&self, for_: Duration) {
        let until = Instant::now() + for_;
        if self.paused_until.get().is_none_or(|t| t < until) {
            self.paused_until.set(Some(until));
        }
    }

    /// Waits out an endpoint-wide pause and the rate limit before an attempt starts.
    pub async fn wait_turn(&self) {
        while let Some(until) = self.paused_until() {
            tokio::time::sleep_until(until.into()).await;
        }
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
    }
}
