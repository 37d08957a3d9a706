//! The write loop, one stage after another:
//!
//! reader events → acknowledgement window + key scheduler → delivery (up to `concurrency`
//! requests in flight) → settled prefix → checkpoints → stdout.
//!
//! Everything here runs on one thread; the reader thread feeds it through a bounded channel that
//! is only read while the window has room (which is what bounds memory) and few records are
//! ready to go (which keeps them in cache).

use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::ack::{Ack, AckWindow, Entry};
use crate::checkpoint::Checkpointer;
use crate::delivery::{Deliverer, Job, Notice, Settled};
use crate::dialect::Event;
use crate::ordering::Scheduler;
use crate::output::{Closed, Output};
use crate::progress::{LiveLine, Progress, Snapshot, INTERVAL, LIVE_INTERVAL};
use crate::protocol::{log, FailureType, Fatal, Level, Message};

pub struct Sink {
    pub deliverer: Deliverer,
    pub checkpointer: Checkpointer,
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
    Signal(&'static str),
}

/// Bytes the window may hold (bodies and data of records not yet out of the settled prefix)
/// before stdin stops being read: a few very large records must not grow memory with the input.
const WINDOW_BYTES: usize = 64 * 1024 * 1024;

/// How long a message may wait in the stdout buffer while requests are in flight. Flushing
/// after every message would cost one pipe write per STATE; the orchestrator still sees each
/// one within this delay, and at once when the loop goes idle.
const FLUSH_EVERY: Duration = Duration::from_millis(20);

impl Sink {
    /// Records admitted but not yet out of the settled prefix, at most.
    fn window_cap(&self) -> usize {
        (self.concurrency * self.batch_size * 4).clamp(1024, 100_000)
    }

    /// Ready records beyond which no more input is taken. The window's room is for going on past
    /// a slow request, not for queueing: a record sent soon after the reader parsed it is still
    /// in cache, which on a fast endpoint is measurably more throughput (BENCHMARKS.md, round 4).
    fn read_ahead(&self) -> usize {
        self.concurrency * self.batch_size * 2
    }

    pub async fn run(
        mut self,
        mut input: mpsc::Receiver<Vec<Event>>,
        out: &mut Output,
    ) -> Result<Ending, Closed> {
        let mut window: AckWindow<Entry> = AckWindow::default();
        let mut window_bytes = 0usize;
        let mut scheduler: Scheduler<Job> = Scheduler::default();
        let mut in_flight = FuturesUnordered::new();
        let mut progress = Progress::default();
        let mut messages: Vec<Message> = Vec::new();
        let mut input_open = true;
        let mut stop: Option<Stop> = None;
        // Both timers live for the whole loop and are re-armed, not rebuilt on every turn: a
        // fresh timer per turn is a timer-wheel registration per finished request.
        let deadline = tokio::time::sleep(Duration::from_secs(86_400 * 365));
        tokio::pin!(deadline);
        // Due when the stdout buffer may wait no longer: FLUSH_EVERY after the last flush.
        let flush_timer = tokio::time::sleep(FLUSH_EVERY);
        tokio::pin!(flush_timer);
        let mut sigterm = signal(SignalKind::terminate()).expect("install SIGTERM handler");
        let mut sigint = signal(SignalKind::interrupt()).expect("install SIGINT handler");
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + INTERVAL, INTERVAL);
        let live = LiveLine::for_stderr();
        let mut live_ticker = tokio::time::interval(LIVE_INTERVAL);
        let window_cap = self.window_cap();
        let read_ahead = self.read_ahead();
        let deliverer = &self.deliverer;

        loop {
            if stop.is_none() {
                while in_flight.len() < self.concurrency {
                    let partial_ok =
                        !input_open || in_flight.is_empty() || window.len() >= window_cap;
                    let Some(jobs) = scheduler.take(self.batch_size, partial_ok) else {
                        break;
                    };
                    in_flight.push(deliverer.deliver(jobs));
                }
            }
            while let Some((entry, ack)) = window.pop_settled() {
                window_bytes -= entry.size();
                if let Entry::Record(_) = entry {
                    progress.settled(&ack);
                }
                self.checkpointer.settled(entry, ack, &mut messages);
            }
            messages.extend(deliverer.take_notices().into_iter().map(Notice::into_log));
            for message in messages.drain(..) {
                out.emit(&message)?;
            }
            if out.is_dirty()
                && (in_flight.is_empty() || flush_timer.deadline() <= tokio::time::Instant::now())
            {
                out.flush()?;
                flush_timer
                    .as_mut()
                    .reset(tokio::time::Instant::now() + FLUSH_EVERY);
            }

            if stop.is_none() && !input_open && window.is_empty() {
                break;
            }
            if stop.is_some() && in_flight.is_empty() {
                break;
            }
            let reading = input_open
                && stop.is_none()
                && window.len() < window_cap
                && window_bytes < WINDOW_BYTES
                && scheduler.ready_len() < read_ahead;
            tokio::select! {
                Some(settled) = in_flight.next(), if !in_flight.is_empty() => {
                    // Every request that has finished by now is settled in this one turn, so
                    // the bookkeeping above runs once per wake-up, not once per request.
                    let mut next = Some(settled);
                    while let Some(settled) = next {
                        if let Err(fatal) = apply(settled, &mut window, &mut scheduler) {
                            if stop.is_none() {
                                stop = Some(Stop::Fatal(fatal));
                                deadline.as_mut().reset(tokio::time::Instant::now() + self.grace);
                            }
                        }
                        next = in_flight.next().now_or_never().flatten();
                    }
                }
                events = input.recv(), if reading => match events {
                    Some(events) => {
                        for event in events {
                            match admit(event, &mut window, &mut scheduler, &mut progress, &mut messages) {
                                Ok(bytes) => window_bytes += bytes,
                                Err(fatal) => {
                                    stop = Some(Stop::Fatal(fatal));
                                    deadline.as_mut().reset(tokio::time::Instant::now() + self.grace);
                                    break;
                                }
                            }
                        }
                    }
                    None => input_open = false,
                },
                _ = sigterm.recv(), if stop.is_none() => {
                    stop = Some(Stop::Signal("SIGTERM"));
                    deadline.as_mut().reset(tokio::time::Instant::now() + self.grace);
                }
                _ = sigint.recv(), if stop.is_none() => {
                    stop = Some(Stop::Signal("SIGINT"));
                    deadline.as_mut().reset(tokio::time::Instant::now() + self.grace);
                }
                _ = ticker.tick() => {
                    let now = snapshot(deliverer, in_flight.len(), window.len());
                    messages.push(progress.tick(&deliverer.metrics, now));
                }
                _ = live_ticker.tick(), if live.is_shown() => {
                    progress.redraw(&live, &deliverer.metrics, snapshot(deliverer, in_flight.len(), window.len()));
                }
                // Only wakes the loop: the flush at its top sees the timer due.
                _ = &mut flush_timer, if out.is_dirty() => {}
                _ = &mut deadline, if stop.is_some() => break,
            }
        }

        if progress.already_delivered > 0 {
            messages.push(log(Level::Info, &format!(
                "resume: skipped {} records that the checkpoint (last_row_num) shows were delivered by an earlier attempt of this run",
                progress.already_delivered
            )));
        }
        let ending = match stop {
            None => {
                self.checkpointer.finish(&mut messages);
                messages.push(progress.summary(&deliverer.metrics, "sync complete"));
                Ending::Completed
            }
            Some(stop) => {
                self.checkpointer.interrupted(&mut messages);
                let abandoned = in_flight.len();
                messages.push(progress.summary(
                    &deliverer.metrics,
                    &format!("sync stopped ({abandoned} requests abandoned in flight)"),
                ));
                match stop {
                    Stop::Fatal(fatal) => Ending::Stopped { fatal, exit_code: 1 },
                    Stop::Signal(name) => Ending::Stopped {
                        fatal: Fatal::new(
                            FailureType::TransientError,
                            format!("sync interrupted by {name}: the last STATE covers every record acknowledged; run again to resume"),
                            format!("{} records delivered, {} rejected before the stop", progress.delivered, progress.rejected),
                        ),
                        exit_code: if name == "SIGINT" { 130 } else { 143 },
                    },
                }
            }
        };
        for message in messages.drain(..) {
            out.emit(&message)?;
        }
        out.flush()?;
        Ok(ending)
    }
}

/// Takes one reader event into the window (and the scheduler); returns the bytes it added, or
/// the reason to stop when the input broke.
fn admit(
    event: Event,
    window: &mut AckWindow<Entry>,
    scheduler: &mut Scheduler<Job>,
    progress: &mut Progress,
    messages: &mut Vec<Message>,
) -> Result<usize, Fatal> {
    let (entry, ack) = match event {
        Event::Record {
            meta,
            request,
            order_key,
        } => {
            let size = meta.size;
            let seq = window.push(Entry::Record(meta), None);
            scheduler.admit(
                order_key,
                Job {
                    seq,
                    order_key,
                    request,
                },
            );
            return Ok(size);
        }
        Event::Refused { meta, reason } => (Entry::Record(meta), Ack::Rejected(reason)),
        Event::State(raw, scope) => (Entry::State(raw, scope), Ack::Delivered),
        Event::Malformed {
            line_no,
            excerpt,
            reason,
        } => {
            progress.skipped_lines += 1;
            messages.push(log(
                Level::Warn,
                &format!("skipped input line {line_no} ({reason}): {excerpt}"),
            ));
            return Ok(0);
        }
        Event::UnknownStream(name) => {
            messages.push(log(
                Level::Warn,
                &format!("stream '{name}' is not in the configured catalog: its records are not sent and are counted as rejected"),
            ));
            return Ok(0);
        }
        Event::AlreadyDelivered => {
            progress.already_delivered += 1;
            return Ok(0);
        }
        Event::Broken(reason) => {
            return Err(Fatal::new(FailureType::SystemError, reason, String::new()))
        }
    };
    let size = entry.size();
    window.push(entry, Some(ack));
    Ok(size)
}

fn snapshot(deliverer: &Deliverer, in_flight: usize, waiting: usize) -> Snapshot {
    Snapshot {
        in_flight,
        waiting,
        paused_for: deliverer.paused_until().map(|t| t - Instant::now()),
    }
}

/// Settles every record of a finished request and frees their keys for the next records.
fn apply(
    settled: Settled,
    window: &mut AckWindow<Entry>,
    scheduler: &mut Scheduler<Job>,
) -> Result<(), Fatal> {
    let acks = settled.result.map_err(Fatal::from)?;
    for (i, job) in settled.jobs.into_iter().enumerate() {
        window.settle(job.seq, acks.get(i));
        if let Some(key) = job.order_key {
            scheduler.release(key);
        }
    }
    Ok(())
}
