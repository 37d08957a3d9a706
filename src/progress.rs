//! What a person watching a sync reads: a progress LOG at most every 10 seconds and a summary
//! at the end.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::ack::Ack;
use crate::metrics::Metrics;
use crate::protocol::{log, Level};

pub const INTERVAL: Duration = Duration::from_secs(10);

pub struct Progress {
    started: Instant,
    last_at: Instant,
    last_requests: u64,
    pub delivered: u64,
    pub rejected: u64,
    pub skipped_lines: u64,
    pub already_delivered: u64,
    reasons: HashMap<String, u64>,
}

impl Default for Progress {
    fn default() -> Self {
        let now = Instant::now();
        Progress {
            started: now,
            last_at: now,
            last_requests: 0,
            delivered: 0,
            rejected: 0,
            skipped_lines: 0,
            already_delivered: 0,
            reasons: HashMap::new(),
        }
    }
}

impl Progress {
    pub fn settled(&mut self, ack: &Ack) {
        match ack {
            Ack::Delivered => self.delivered += 1,
            Ack::Rejected { code, .. } => {
                self.rejected += 1;
                *self.reasons.entry(code.clone()).or_default() += 1;
            }
        }
    }

    pub fn tick(
        &mut self,
        metrics: &Metrics,
        in_flight: usize,
        waiting: usize,
        paused_for: Option<Duration>,
    ) -> Value {
        let now = Instant::now();
        let rate = (metrics.requests() - self.last_requests) as f64
            / now.duration_since(self.last_at).as_secs_f64().max(1e-3);
        self.last_at = now;
        self.last_requests = metrics.requests();
        let pause = paused_for
            .map(|d| format!(", endpoint asked to wait {:.1}s more", d.as_secs_f64()))
            .unwrap_or_default();
        log(
            Level::Info,
            &format!(
                "progress: {} acknowledged ({} delivered, {} rejected), {in_flight} requests in flight, {waiting} records waiting, {} retries, {rate:.0} requests/s{pause}",
                self.delivered + self.rejected,
                self.delivered,
                self.rejected,
                metrics.retries()
            ),
        )
    }

    pub fn summary(&self, metrics: &Metrics, outcome: &str) -> Value {
        let secs = self.started.elapsed().as_secs_f64();
        let mut reasons: Vec<_> = self.reasons.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let top: Vec<String> = reasons
            .iter()
            .take(5)
            .map(|(code, n)| format!("{code} ×{n}"))
            .collect();
        let mut text = format!(
            "{outcome}: {} delivered, {} rejected, {} retries, {} input lines skipped, {} rows already delivered before (resume); {} requests in {secs:.2}s ({:.0} requests/s); latency p50 {:.1} ms, p99 {:.1} ms",
            self.delivered,
            self.rejected,
            metrics.retries(),
            self.skipped_lines,
            self.already_delivered,
            metrics.requests(),
            metrics.requests() as f64 / secs.max(1e-3),
            metrics.latency_ms(0.5),
            metrics.latency_ms(0.99),
        );
        if !top.is_empty() {
            text.push_str(&format!("; top rejection reasons: {}", top.join(", ")));
        }
        log(Level::Info, &text)
    }
}
