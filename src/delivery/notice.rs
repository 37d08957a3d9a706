//! What delivery has to tell while it works (a retry, a dry run's request), as typed events.
//! The write loop drains them; [`Notice::into_log`] is the one place they become LOG lines.

use std::time::Duration;

use crate::dialect::RecordLabel;
use crate::protocol::{log, Level, Message};

pub enum Notice {
    Retrying {
        label: RecordLabel,
        after: Duration,
        /// The number of the attempt to come (2 for the first retry), and of the last allowed.
        attempt: u32,
        attempts: u32,
        reason: String,
    },
    /// A request a dry run would have sent.
    DryRun {
        method: reqwest::Method,
        /// Without credentials.
        url: String,
        /// The static headers, credentials redacted.
        headers: String,
        key: String,
        /// The headers set per attempt (token, signatures), values as placeholders.
        per_attempt: String,
        gzip: bool,
        /// The body, uncompressed.
        body: String,
    },
}

impl Notice {
    pub fn into_log(self) -> Message {
        match self {
            Notice::Retrying {
                label,
                after,
                attempt,
                attempts,
                reason,
            } => log(
                Level::Info,
                &format!(
                    "retrying {label} in {:.1}s (attempt {attempt} of {attempts}): {}",
                    after.as_secs_f64(),
                    reason.trim()
                ),
            ),
            Notice::DryRun {
                method,
                url,
                headers,
                key,
                per_attempt,
                gzip,
                body,
            } => {
                let encoding = if gzip {
                    ", content-encoding: gzip (body shown uncompressed)"
                } else {
                    ""
                };
                let message = format!(
                    "dry run: {method} {url} headers: {headers}, idempotency-key: {key}, webhook-id: {key}{per_attempt}{encoding} body: {body}"
                );
                log(Level::Info, &message)
            }
        }
    }
}
