//! What a person watching a sync reads: a progress LOG at most every 10 seconds and a summary
//! at the end.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::ack::Ack;
use crate::concurrency::Change;
use crate::metrics::Metrics;
use crate::protocol::{log, Level, Message};

pub const INTERVAL: Duration = Duration::from_secs(10);
/// How often the live line on a terminal's stderr is redrawn.
pub const LIVE_INTERVAL: Duration = Duration::from_millis(500);

/// The write loop's state at one moment, as progress reports show it.
#[derive(Clone, Copy)]
pub struct Snapshot {
    pub in_flight: usize,
    /// The adaptive concurrency limit and why it last changed.
    pub limit: u32,
    pub why: Change,
    pub waiting: usize,
    pub paused_for: Option<Duration>,
}

pub struct Progress {
    started: Instant,
    last_at: Instant,
    last_requests: u64,
    pub delivered: u64,
    pub rejected: u64,
    /// Records whose operation's route is `skip`.
    pub skipped: u64,
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
            skipped: 0,
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
            Ack::Skipped => self.skipped += 1,
            Ack::Rejected(rejection) => {
                self.rejected += 1;
                *self
                    .reasons
                    .entry(rejection.code().into_owned())
                    .or_default() += 1;
            }
        }
    }

    /// One line of counts, shared by the live line and the progress LOG.
    fn status(&self, metrics: &Metrics, now: Snapshot, rate: f64) -> String {
        let pause = now
            .paused_for
            .map(|d| format!(", endpoint asked to wait {:.1}s more", d.as_secs_f64()))
            .unwrap_or_default();
        format!(
            "{} acknowledged ({} delivered, {} rejected), {} requests in flight (limit {}: {}), {} records waiting, {} retries, {rate:.0} requests/s{pause}",
            self.delivered + self.rejected,
            self.delivered,
            self.rejected,
            now.in_flight,
            now.limit,
            now.why.as_str(),
            now.waiting,
            metrics.retries()
        )
    }

    /// The progress LOG; its rate is over the time since the previous one.
    pub fn tick(&mut self, metrics: &Metrics, now: Snapshot) -> Message {
        let at = Instant::now();
        let rate = (metrics.requests() - self.last_requests) as f64
            / at.duration_since(self.last_at).as_secs_f64().max(1e-3);
        self.last_at = at;
        self.last_requests = metrics.requests();
        log(
            Level::Info,
            &format!("progress: {}", self.status(metrics, now, rate)),
        )
    }

    /// Redraws the live line (nothing happens unless stderr is a terminal).
    pub fn redraw(&self, live: &LiveLine, metrics: &Metrics, now: Snapshot) {
        if let Some(bar) = &live.0 {
            let rate = metrics.requests() as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(self.status(metrics, now, rate));
            bar.tick();
        }
    }

    pub fn summary(&self, metrics: &Metrics, now: Snapshot, outcome: &str) -> Message {
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
        text.push_str(&format!(
            "; concurrency limit {} at the end ({})",
            now.limit,
            now.why.as_str()
        ));
        if self.skipped > 0 {
            text.push_str(&format!(
                "; {} records skipped by their operation's route",
                self.skipped
            ));
        }
        if !top.is_empty() {
            text.push_str(&format!("; top rejection reasons: {}", top.join(", ")));
        }
        log(Level::Info, &text)
    }
}

/// A progress line on stderr for a person watching a terminal; absent when stderr is a pipe or a
/// file, so logs collected by an orchestrator stay clean.
pub struct LiveLine(Option<indicatif::ProgressBar>);

impl LiveLine {
    pub fn for_stderr() -> Self {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return LiveLine(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .expect("valid template"),
        );
        LiveLine(Some(bar))
    }

    pub fn is_shown(&self) -> bool {
        self.0.is_some()
    }
}

impl Drop for LiveLine {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish();
        }
    }
}

/// How often [`LimitTrace`] samples.
pub const TRACE_INTERVAL: Duration = Duration::from_millis(50);

/// The concurrency limit over a run, one tab-separated line per [`TRACE_INTERVAL`] (milliseconds
/// since the start, limit, requests in flight, records acknowledged, why the limit last changed)
/// to the file named by `DESTINATION_WEBHOOK_LIMIT_TRACE`: what `scripts/bench.sh --remote`
/// draws. Off unless that variable is set.
pub struct LimitTrace {
    out: std::io::BufWriter<std::fs::File>,
    started: Instant,
}

impl LimitTrace {
    pub const VAR: &'static str = "DESTINATION_WEBHOOK_LIMIT_TRACE";

    /// The trace the environment asks for; one that cannot be written is no reason to stop a
    /// sync, so it is left off.
    pub fn from_env() -> Option<Self> {
        let path = std::env::var_os(Self::VAR)?;
        let file = std::fs::File::create(path).ok()?;
        Some(LimitTrace {
            out: std::io::BufWriter::new(file),
            started: Instant::now(),
        })
    }

    pub fn sample(&mut self, progress: &Progress, now: Snapshot) {
        use std::io::Write;
        // Best effort, like opening it.
        let _ = writeln!(
            self.out,
            "{}\t{}\t{}\t{}\t{}",
            self.started.elapsed().as_millis(),
            now.limit,
            now.in_flight,
            progress.delivered + progress.rejected,
            now.why.as_str()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Message;
    use crate::rejection::Rejection;

    fn text(message: Message) -> String {
        match message {
            Message::Json(value) => value["log"]["message"].as_str().unwrap().to_owned(),
            Message::Raw(raw) => raw.get().to_owned(),
        }
    }

    #[test]
    fn the_progress_log_shows_the_limit_and_why_it_last_changed() {
        let now = Snapshot {
            in_flight: 12,
            limit: 58,
            why: Change::Backpressure,
            waiting: 100,
            paused_for: Some(Duration::from_millis(700)),
        };
        let line = text(Progress::default().tick(&Metrics::default(), now));
        assert!(
            line.contains("12 requests in flight (limit 58: 429/503 from the endpoint)"),
            "{line}"
        );
        assert!(line.contains("endpoint asked to wait 0.7s more"), "{line}");
        let end = text(Progress::default().summary(&Metrics::default(), now, "sync complete"));
        assert!(
            end.contains("concurrency limit 58 at the end (429/503 from the endpoint)"),
            "{end}"
        );
    }

    fn calm() -> Snapshot {
        Snapshot {
            in_flight: 0,
            limit: 8,
            why: Change::Start,
            waiting: 0,
            paused_for: None,
        }
    }

    /// The figure just before `unit` in `line`, e.g. the 3 of "3 requests".
    fn figure(line: &str, unit: &str) -> f64 {
        let before = &line[..line
            .find(unit)
            .unwrap_or_else(|| panic!("{unit} in {line}"))];
        before
            .trim_end()
            .rsplit([' ', '('])
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Every count the summary states, from the acknowledgements and the requests behind them.
    #[test]
    fn the_summary_counts_each_outcome_and_the_requests_behind_them() {
        let metrics = Metrics::default();
        for ms in [10, 20, 30, 40] {
            metrics.record_request(Duration::from_millis(ms));
        }
        metrics.record_retry();
        let mut progress = Progress::default();
        let refused = |status| Rejection::Refused {
            status,
            excerpt: String::new(),
        };
        for ack in [
            Ack::Delivered,
            Ack::Delivered,
            Ack::Rejected(refused(422)),
            Ack::Rejected(refused(422)),
            Ack::Rejected(refused(404)),
            Ack::Skipped,
        ] {
            progress.settled(&ack);
        }
        progress.skipped_lines = 1;
        let end = text(progress.summary(&metrics, calm(), "sync complete"));
        assert!(
            end.starts_with("sync complete: 2 delivered, 3 rejected, 1 retries, 1 input lines skipped, 0 rows already delivered before (resume); 4 requests in "),
            "{end}"
        );
        // The histogram keeps two significant digits of microseconds: 20 ms reads 20.1.
        let p50 = figure(&end, "ms, p99");
        let p99 = figure(&end, "ms; concurrency");
        assert!(
            (20.0..20.3).contains(&p50) && (40.0..40.5).contains(&p99),
            "{end}"
        );
        assert!(
            end.contains("; 1 records skipped by their operation's route; top rejection reasons: 422 ×2, 404 ×1"),
            "{end}"
        );
        let quiet = text(Progress::default().summary(&Metrics::default(), calm(), "sync complete"));
        assert!(
            quiet.ends_with("concurrency limit 8 at the end (start)"),
            "nothing skipped, nothing rejected: {quiet}"
        );
    }

    /// The progress LOG's rate is the requests since the previous LOG over the time since it.
    #[test]
    fn the_progress_rate_counts_only_the_requests_since_the_last_log() {
        let metrics = Metrics::default();
        let mut progress = Progress::default();
        for _ in 0..3 {
            metrics.record_request(Duration::from_millis(1));
        }
        let first = text(progress.tick(&metrics, calm()));
        assert!(
            figure(&first, "requests/s") >= 3.0,
            "3 requests within a second: {first}"
        );
        assert!(first.contains(", 0 retries, "), "{first}");
        let second = text(progress.tick(&metrics, calm()));
        assert_eq!(figure(&second, "requests/s"), 0.0, "none since: {second}");
    }
}
