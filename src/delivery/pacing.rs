//! When the next attempt may start: after an endpoint-wide pause (a 429/503 asks every worker to
//! wait, not just the one that got it) and within the configured rate limit. The attempts held by
//! a pause are released over a tenth of its length, not all at the same instant.

use std::cell::Cell;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

#[derive(Default)]
pub struct Pacing {
    limiter: Option<DefaultDirectRateLimiter>,
    paused_until: Cell<Option<Instant>>,
    /// How long the pause in force is: its release is spread over a share of it.
    pause_length: Cell<Duration>,
}

/// The share of a pause over which the attempts it held are released.
const RELEASE_SPREAD: f64 = 0.1;

impl Pacing {
    pub fn new(rate_limit_per_second: Option<f64>) -> Self {
        let limiter = rate_limit_per_second
            .filter(|r| *r > 0.0)
            .and_then(|r| Quota::with_period(Duration::from_secs_f64(1.0 / r)))
            .map(RateLimiter::direct);
        Pacing {
            limiter,
            paused_until: Cell::new(None),
            pause_length: Cell::new(Duration::ZERO),
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
            self.pause_length.set(for_);
        }
    }

    /// Waits out an endpoint-wide pause and the rate limit before an attempt starts.
    pub async fn wait_turn(&self) {
        while let Some(until) = self.paused_until() {
            let at = release_at(until, self.pause_length.get(), rand::random::<f64>());
            tokio::time::sleep_until(at.into()).await;
        }
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
    }
}

/// When one attempt held by a pause that ends at `until` starts: spread uniformly (`unit` is the
/// random draw in `[0, 1)`) over a tenth of the pause after it, so that the endpoint that asked
/// for the pause is not met by every held request in the same millisecond.
fn release_at(until: Instant, length: Duration, unit: f64) -> Instant {
    until + length.mul_f64(RELEASE_SPREAD * unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_is_released_over_a_tenth_of_its_length() {
        let until = Instant::now();
        let second = Duration::from_secs(1);
        assert_eq!(release_at(until, second, 0.0), until);
        assert_eq!(
            release_at(until, second, 0.5),
            until + Duration::from_millis(50)
        );
        assert_eq!(
            release_at(until, second, 1.0),
            until + Duration::from_millis(100)
        );
    }

    #[test]
    fn a_pause_holds_until_its_end_and_a_longer_one_already_set_stands() {
        let pacing = Pacing::new(None);
        assert_eq!(pacing.paused_until(), None);
        let before = Instant::now();
        pacing.pause(Duration::from_secs(60));
        let until = pacing.paused_until().expect("paused");
        assert!(until >= before + Duration::from_secs(60), "{until:?}");
        pacing.pause(Duration::from_secs(1));
        assert_eq!(pacing.paused_until(), Some(until));
        pacing.pause(Duration::from_secs(120));
        assert!(pacing.paused_until() > Some(until));
        assert_eq!(pacing.pause_length.get(), Duration::from_secs(120));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_turn_waits_out_the_pause() {
        let pacing = Pacing::new(None);
        let started = Instant::now();
        pacing.pause(Duration::from_millis(50));
        pacing.wait_turn().await;
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(pacing.paused_until(), None);
    }
}
