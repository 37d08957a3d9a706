//! Delivery policy as data and small pure functions: what each answer means, what to do about
//! it, how long to wait before the next attempt. No I/O here, so every rule is unit-tested on
//! its own. Modelled on Vector's `RetryLogic` and Svix's `calculate_retry_delay`.

use std::time::{Duration, SystemTime};

use crate::config::OnClientError;

/// What the connector does with one HTTP answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// 2xx: acknowledged.
    Delivered,
    /// Worth another attempt; `pause_endpoint` makes every worker wait, not just this one.
    Retry { pause_endpoint: bool },
    /// 3xx: never followed (a POST turned into a GET loses data; another host would get the
    /// credentials).
    Redirect,
    /// 401/403: the credentials are wrong for every record, so going on is pointless.
    Unauthorized,
    /// Any other 4xx, 501, 505: this record is refused (or the sync fails, per `on_client_error`).
    ClientError,
}

pub fn classify(status: u16) -> Class {
    match status {
        200..=299 => Class::Delivered,
        429 | 503 => Class::Retry {
            pause_endpoint: true,
        },
        408 | 425 | 500 | 502 | 504 => Class::Retry {
            pause_endpoint: false,
        },
        300..=399 => Class::Redirect,
        401 | 403 => Class::Unauthorized,
        400..=499 | 501 | 505 => Class::ClientError,
        // Other 5xx (507, 508, 511, vendor codes): the server's trouble, likely to pass.
        500..=599 => Class::Retry {
            pause_endpoint: false,
        },
        // 1xx as a final answer or an invalid code: nothing says the record landed.
        _ => Class::ClientError,
    }
}

/// How one attempt ended, as far as the policy cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The endpoint answered; `retry_after` is its `Retry-After`, read.
    Answered {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// No complete answer: no connection, a reset, a timeout.
    NoAnswer,
    /// The TLS handshake failed for a reason that retrying will not change (untrusted
    /// certificate, client certificate refused).
    TlsRefused,
}

/// The settings the decision depends on.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_retries: u32,
    pub on_client_error: OnClientError,
}

/// What to do after an attempt.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decision {
    Deliver,
    /// Try again after `after`; `pause` makes the whole endpoint wait that long.
    Retry {
        after: Duration,
        pause: bool,
    },
    /// A batch refused as a whole: send its halves to find the records the endpoint refuses.
    Split,
    /// The record is refused and the sync goes on.
    Reject,
    /// The sync stops.
    Fail(Stop),
}

/// Why the sync stops after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Redirect,
    Unauthorized,
    TlsRefused,
    /// Retries exhausted.
    GaveUp,
    /// A client error under `on_client_error: fail`.
    Refused,
}

/// The decision after attempt number `attempt` (0 for the first) of a request carrying
/// `records` records. `jitter` draws the backoff's random unit, only when a retry needs it.
pub fn decide(
    outcome: Outcome,
    attempt: u32,
    records: usize,
    limits: Limits,
    jitter: impl FnOnce() -> f64,
) -> Decision {
    let (retry_after, pause) = match outcome {
        Outcome::TlsRefused => return Decision::Fail(Stop::TlsRefused),
        Outcome::NoAnswer => (None, false),
        Outcome::Answered {
            status,
            retry_after,
        } => match classify(status) {
            Class::Delivered => return Decision::Deliver,
            Class::Redirect => return Decision::Fail(Stop::Redirect),
            Class::Unauthorized => return Decision::Fail(Stop::Unauthorized),
            Class::ClientError if records > 1 && splits_batch(status) => return Decision::Split,
            Class::ClientError => {
                return match limits.on_client_error {
                    OnClientError::Reject => Decision::Reject,
                    OnClientError::Fail => Decision::Fail(Stop::Refused),
                }
            }
            Class::Retry { pause_endpoint } => (retry_after, pause_endpoint),
        },
    };
    if attempt >= limits.max_retries {
        return Decision::Fail(Stop::GaveUp);
    }
    Decision::Retry {
        after: retry_after.unwrap_or_else(|| backoff(attempt, jitter())),
        pause,
    }
}

/// A refused batch of more than one record is split to find the records the endpoint refuses.
pub fn splits_batch(status: u16) -> bool {
    matches!(status, 400 | 413 | 422)
}

pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
pub const BACKOFF_CAP: Duration = Duration::from_secs(60);
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(600);

/// Exponential backoff with full jitter: a uniform wait in `[0, min(cap, base * 2^attempt)]`,
/// where `unit` is the random draw in `[0, 1)`. Full jitter spreads a herd of retries best
/// (AWS architecture blog, "Exponential Backoff And Jitter").
pub fn backoff(attempt: u32, unit: f64) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX))
        .min(BACKOFF_CAP);
    ceiling.mul_f64(unit.clamp(0.0, 1.0))
}

/// `Retry-After` as delay-seconds or an HTTP date, capped at 10 minutes.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let delay = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(now).unwrap_or(Duration::ZERO)
        }
    };
    Some(delay.min(RETRY_AFTER_CAP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_its_meaning() {
        assert_eq!(classify(200), Class::Delivered);
        assert_eq!(classify(204), Class::Delivered);
        // The named retryable codes, and any other 5xx: the server's trouble, likely to pass.
        for s in [408, 425, 500, 502, 504, 507, 508, 511, 599] {
            assert_eq!(
                classify(s),
                Class::Retry {
                    pause_endpoint: false
                },
                "{s}"
            );
        }
        assert_eq!(
            classify(429),
            Class::Retry {
                pause_endpoint: true
            }
        );
        assert_eq!(
            classify(503),
            Class::Retry {
                pause_endpoint: true
            }
        );
        assert_eq!(classify(301), Class::Redirect);
        assert_eq!(classify(308), Class::Redirect);
        assert_eq!(classify(401), Class::Unauthorized);
        assert_eq!(classify(403), Class::Unauthorized);
        for s in [400, 404, 409, 413, 422, 501, 505] {
            assert_eq!(classify(s), Class::ClientError, "{s}");
        }
        assert!(splits_batch(413) && splits_batch(400) && splits_batch(422) && !splits_batch(404));
    }

    const LIMITS: Limits = Limits {
        max_retries: 2,
        on_client_error: OnClientError::Reject,
    };

    fn answered(status: u16) -> Outcome {
        Outcome::Answered {
            status,
            retry_after: None,
        }
    }

    #[test]
    fn each_answer_comes_to_its_decision() {
        let retry = |secs: f64| Decision::Retry {
            after: Duration::from_secs_f64(secs),
            pause: false,
        };
        let cases = [
            (answered(204), 0, 1, Decision::Deliver),
            (answered(302), 0, 1, Decision::Fail(Stop::Redirect)),
            (answered(403), 0, 1, Decision::Fail(Stop::Unauthorized)),
            (Outcome::TlsRefused, 0, 1, Decision::Fail(Stop::TlsRefused)),
            (answered(422), 0, 1, Decision::Reject),
            (answered(422), 0, 2, Decision::Split),
            (answered(404), 0, 2, Decision::Reject),
            (answered(500), 1, 1, retry(1.0)),
            (Outcome::NoAnswer, 0, 1, retry(0.5)),
            (answered(503), 2, 1, Decision::Fail(Stop::GaveUp)),
            (Outcome::NoAnswer, 2, 1, Decision::Fail(Stop::GaveUp)),
        ];
        for (outcome, attempt, records, expected) in cases {
            let decided = decide(outcome, attempt, records, LIMITS, || 0.5);
            assert_eq!(decided, expected, "{outcome:?} attempt {attempt}");
        }
    }

    #[test]
    fn the_endpoints_wishes_and_the_users_choice_count() {
        let fail = Limits {
            on_client_error: OnClientError::Fail,
            ..LIMITS
        };
        assert_eq!(
            decide(answered(404), 0, 1, fail, || 0.5),
            Decision::Fail(Stop::Refused)
        );
        let asked = Outcome::Answered {
            status: 429,
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(
            decide(asked, 0, 1, LIMITS, || panic!("no jitter needed")),
            Decision::Retry {
                after: Duration::from_secs(7),
                pause: true
            }
        );
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        assert_eq!(backoff(0, 0.999_999).as_millis(), 999);
        assert_eq!(backoff(3, 0.5), Duration::from_secs(4));
        assert_eq!(backoff(10, 1.0), BACKOFF_CAP);
        assert_eq!(backoff(40, 1.0), BACKOFF_CAP);
        assert_eq!(backoff(5, 0.0), Duration::ZERO);
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(retry_after("99999", now), Some(RETRY_AFTER_CAP));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(retry_after(&later, now), Some(Duration::from_secs(30)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(retry_after("soon", now), None);
    }
}
