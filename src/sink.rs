//! The write loop, one stage after another:
//!
//! reader events → [`Backlog`] (acknowledgement window + key scheduler) → delivery (up to the
//! adaptive limit, at most `concurrency`, requests in flight) → settled prefix → [`Outbox`]
//! (checkpoints) → stdout.
//!
//! Everything here runs on one thread; the reader thread feeds it through a bounded channel that
//! is only read while the window has room (which is what bounds memory) and few records are
//! ready to go (which keeps them in cache).

use std::pin::Pin;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use tokio::sync::mpsc;
use tokio::time::Sleep;

use crate::ack::{Ack, Entry};
use crate::backlog::Backlog;
use crate::checkpoint::Checkpointer;
use crate::delivery::{Deliverer, Job, Settled};
use crate::dialect::Event;
use crate::failure::Failure;
use crate::ordering::Group;
use crate::outbox::Outbox;
use crate::output::{Closed, Output};
use crate::progress::{LimitTrace, LiveLine, Progress, INTERVAL, LIVE_INTERVAL, TRACE_INTERVAL};
use crate::protocol::{FailureType, Fatal};
use crate::rejection::Rejection;
use crate::signals::{Caught, Signals};

pub struct Sink {
    pub deliverer: Deliverer,
    pub checkpointer: Checkpointer,
    /// The cap of the adaptive limit: sizes the backlog's window.
    pub concurrency: usize,
    pub batch_size: usize,
    /// How long in-flight requests may still settle after the sync was told to stop.
    pub grace: Duration,
}

/// How a run ended. A stopped run's TRACE ERROR is printed by the caller, last, after every
/// STATE this loop emitted.
pub enum Ending {
    Completed,
    Stopped { fatal: Fatal, exit_code: u8 },
}

impl Ending {
    /// A run that stops before its first record, e.g. for a bad config.
    pub fn failed(fatal: Fatal) -> Self {
        Ending::Stopped {
            fatal,
            exit_code: 1,
        }
    }
}

enum Stop {
    Fatal(Fatal),
    Signal(Caught),
}

impl Sink {
    pub async fn run(
        self,
        mut input: mpsc::Receiver<Vec<Event>>,
        signals: &Signals,
        out: &mut Output,
    ) -> Result<Ending, Closed> {
        let Sink {
            deliverer,
            checkpointer,
            concurrency,
            batch_size,
            grace,
        } = self;
        let deliverer = &deliverer;
        let mut turn = Loop::new(deliverer, checkpointer, concurrency, batch_size, grace);
        let mut in_flight = FuturesUnordered::new();
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + INTERVAL, INTERVAL);
        let live = LiveLine::for_stderr();
        let mut live_ticker = tokio::time::interval(LIVE_INTERVAL);
        let mut trace = LimitTrace::from_env();
        let mut trace_ticker = tokio::time::interval(TRACE_INTERVAL);

        loop {
            turn.heed(signals);
            turn.launch(&mut in_flight, |jobs| deliverer.deliver(jobs, signals));
            turn.outbox.checkpoint(&mut turn.backlog, out)?;
            turn.outbox.flush(out, in_flight.is_empty())?;
            if turn.is_done(in_flight.is_empty()) {
                break;
            }
            // Branches are polled in random order (tokio's default): each one only records what
            // happened, and the next turn's steps above act on all of it in a fixed order, so no
            // branch needs to win. Fairness keeps a flood of answers from starving input and
            // signals, and the reverse.
            tokio::select! {
                Some(settled) = in_flight.next(), if !in_flight.is_empty() => {
                    // Every request that has finished by now is settled in this one turn, so
                    // the bookkeeping above runs once per wake-up, not once per request.
                    let mut next = Some(settled);
                    while let Some(settled) = next {
                        turn.settle(settled);
                        next = in_flight.next().now_or_never().flatten();
                    }
                }
                events = input.recv(), if turn.is_reading() => match events {
                    Some(events) => turn.admit(events),
                    None => turn.input_open = false,
                },
                caught = signals.wait(), if turn.stop.is_none() => turn.stop(Stop::Signal(caught)),
                _ = ticker.tick() => turn.outbox.report(in_flight.len(), turn.backlog.len()),
                _ = live_ticker.tick(), if live.is_shown() => {
                    turn.outbox.redraw(&live, in_flight.len(), turn.backlog.len())
                }
                _ = trace_ticker.tick(), if trace.is_some() => {
                    if let Some(trace) = trace.as_mut() {
                        turn.outbox.trace(trace, in_flight.len(), turn.backlog.len());
                    }
                }
                // Only wakes the loop: the flush at its top sees the timer due.
                _ = &mut turn.outbox.flush_timer, if out.is_dirty() => {}
                _ = &mut turn.deadline, if turn.stop.is_some() => break,
            }
        }
        turn.end(in_flight.len(), out)
    }
}

/// The write loop's state from one turn to the next. Each step of a turn is one method.
struct Loop<'d> {
    deliverer: &'d Deliverer,
    batch_size: usize,
    grace: Duration,
    backlog: Backlog,
    outbox: Outbox<'d>,
    input_open: bool,
    stop: Option<Stop>,
    /// Due when the in-flight requests of a stopped sync may settle no longer. Re-armed, not
    /// rebuilt, like the outbox's flush timer.
    deadline: Pin<Box<Sleep>>,
}

impl<'d> Loop<'d> {
    fn new(
        deliverer: &'d Deliverer,
        checkpointer: Checkpointer,
        concurrency: usize,
        batch_size: usize,
        grace: Duration,
    ) -> Self {
        Loop {
            deliverer,
            batch_size,
            grace,
            backlog: Backlog::new(concurrency, batch_size),
            outbox: Outbox::new(deliverer, checkpointer),
            input_open: true,
            stop: None,
            deadline: Box::pin(tokio::time::sleep(Duration::from_secs(86_400 * 365))),
        }
    }

    /// The sync stops: no new request starts, and those in flight have the grace to settle.
    /// The first reason stands.
    fn stop(&mut self, reason: Stop) {
        if self.stop.is_none() {
            self.stop = Some(reason);
            self.deadline
                .as_mut()
                .reset(tokio::time::Instant::now() + self.grace);
        }
    }

    /// A signal may have come while the loop was blocked (writing to stdout): it is acted on
    /// before anything else, so no request starts after it.
    fn heed(&mut self, signals: &Signals) {
        if let Some(caught) = signals.received() {
            self.stop(Stop::Signal(caught));
        }
    }

    /// Starts every ready request there is room for.
    fn launch<F>(
        &mut self,
        in_flight: &mut FuturesUnordered<F>,
        deliver: impl Fn(Group<Job>) -> F,
    ) {
        if self.stop.is_some() {
            return;
        }
        while in_flight.len() < self.deliverer.limit.current() as usize {
            let partial_ok = !self.input_open || in_flight.is_empty() || self.backlog.is_full();
            let Some(jobs) = self.backlog.take(self.batch_size, partial_ok) else {
                break;
            };
            in_flight.push(deliver(jobs));
        }
    }

    /// Input ended and every record is settled, or a stopped sync has nothing left in flight.
    fn is_done(&self, idle: bool) -> bool {
        match self.stop {
            None => !self.input_open && self.backlog.is_empty(),
            Some(_) => idle,
        }
    }

    /// Whether to take more input: the window has room and few records are ready to go.
    fn is_reading(&self) -> bool {
        self.input_open
            && self.stop.is_none()
            && self
                .backlog
                .has_room(self.deliverer.limit.current() as usize)
    }

    /// Takes the reader's events: records and STATEs into the backlog, the rest counted and
    /// reported.
    fn admit(&mut self, events: Vec<Event>) {
        for event in events {
            match event {
                Event::Record {
                    meta,
                    request,
                    order_key,
                } => self.backlog.push_record(meta, request, order_key),
                Event::Refused {
                    meta,
                    reason: Rejection::Template(reason),
                } => match self.deliverer.unrenderable(meta.label, reason) {
                    Ok(reason) => self
                        .backlog
                        .push_settled(Entry::Record(meta), Ack::Rejected(reason)),
                    Err(failure) => return self.stop(Stop::Fatal(failure.into())),
                },
                Event::Refused { meta, reason } => self
                    .backlog
                    .push_settled(Entry::Record(meta), Ack::Rejected(reason)),
                Event::Skipped(meta) => {
                    self.backlog.push_settled(Entry::Record(meta), Ack::Skipped)
                }
                Event::State(raw, scope) => self
                    .backlog
                    .push_settled(Entry::State(raw, scope), Ack::Delivered),
                Event::Malformed {
                    line_no,
                    excerpt,
                    reason,
                } => {
                    self.outbox.progress.skipped_lines += 1;
                    let warning = format!("skipped input line {line_no} ({reason}): {excerpt}");
                    self.outbox.warn(&warning);
                }
                Event::UnknownStream(warning) => self.outbox.warn(&warning),
                Event::AlreadyDelivered => self.outbox.progress.already_delivered += 1,
                Event::Broken(reason) => {
                    let fatal = Fatal::new(FailureType::SystemError, reason, String::new());
                    return self.stop(Stop::Fatal(fatal));
                }
            }
        }
    }

    fn settle(&mut self, settled: Settled) {
        match settled.result {
            Ok(acks) => self.backlog.settle(settled.jobs, &acks),
            // Left unsettled: the signal that kept it from being sent is the sync's stop.
            Err(Failure::Unsent) => {}
            Err(failure) => self.stop(Stop::Fatal(failure.into())),
        }
    }

    /// The last messages, and how the run ended.
    fn end(mut self, abandoned: usize, out: &mut Output) -> Result<Ending, Closed> {
        let stop = self.stop.take();
        self.outbox.finish(stop.as_ref().map(|_| abandoned), out)?;
        Ok(match stop {
            None => Ending::Completed,
            Some(stop) => stop.ending(&self.outbox.progress),
        })
    }
}

impl Stop {
    fn ending(self, progress: &Progress) -> Ending {
        match self {
            Stop::Fatal(fatal) => Ending::Stopped { fatal, exit_code: 1 },
            Stop::Signal(caught) => Ending::Stopped {
                fatal: Fatal::new(
                    FailureType::TransientError,
                    format!("sync interrupted by {}: the last STATE covers every record acknowledged; run again to resume", caught.name),
                    format!("{} records delivered, {} rejected before the stop", progress.delivered, progress.rejected),
                ),
                exit_code: caught.exit_code,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::valmi::ValmiCheckpoints;
    use crate::dialect::{RecordLabel, RecordMeta, Request};
    use crate::shape::Payload;
    use reqwest::header::HeaderValue;

    fn one_record_ready(deliverer: &Deliverer) -> Loop<'_> {
        let checkpointer = Checkpointer::Valmi(ValmiCheckpoints::new(1, 1, None, None));
        let mut turn = Loop::new(deliverer, checkpointer, 4, 1, Duration::from_secs(1));
        let label = RecordLabel {
            message_id: 1,
            row_num: Some(1),
        };
        let meta = RecordMeta {
            label,
            op: "upsert".into(),
            stream: "s".into(),
            scope: 0,
            data: None,
            size: 2,
            unreadable_rows_before: 0,
        };
        let request = Request {
            payload: Payload::Json(bytes::Bytes::from_static(b"{}")),
            idempotency_key: HeaderValue::from_static("msg_1"),
            label,
        };
        turn.backlog.push_record(meta, request, None);
        turn
    }

    /// A signal that came while the loop was blocked (in a write to stdout) is acted on at the
    /// top of the next turn: the record that was ready is not sent.
    #[tokio::test]
    async fn a_signal_heard_at_the_top_of_a_turn_starts_no_request() {
        let config = serde_json::json!({"url": "http://127.0.0.1:9/hook"});
        let deliverer = Deliverer::new(&serde_json::from_value(config).unwrap(), false).unwrap();
        let sigterm = Caught {
            name: "SIGTERM",
            exit_code: 143,
        };
        let mut heard = one_record_ready(&deliverer);
        let mut in_flight = FuturesUnordered::new();
        heard.heed(&Signals::given(Some(sigterm)));
        heard.launch(&mut in_flight, std::future::ready);
        assert!(in_flight.is_empty());
        assert!(matches!(heard.stop, Some(Stop::Signal(caught)) if caught == sigterm));

        let mut calm = one_record_ready(&deliverer);
        calm.heed(&Signals::given(None));
        calm.launch(&mut in_flight, std::future::ready);
        assert_eq!(in_flight.len(), 1, "without the signal the record goes out");
    }
}
