//! The write loop's stdout side: the settled prefix turned into checkpoints, delivery's notices
//! and progress lines, all in the order they happened, and when the buffer goes out. Flushing
//! after every message would cost one pipe write per STATE; the orchestrator still sees each
//! one within `FLUSH_EVERY`, and at once when the loop goes idle.

use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio::time::Sleep;

use crate::ack::Entry;
use crate::backlog::Backlog;
use crate::checkpoint::Checkpointer;
use crate::delivery::{Deliverer, Notice};
use crate::output::{Closed, Output};
use crate::progress::{LimitTrace, LiveLine, Progress, Snapshot};
use crate::protocol::{log, Level, Message};

/// How long a message may wait in the stdout buffer while requests are in flight.
const FLUSH_EVERY: Duration = Duration::from_millis(20);

pub struct Outbox<'d> {
    deliverer: &'d Deliverer,
    checkpointer: Checkpointer,
    pub progress: Progress,
    /// Messages for stdout, in order, written at the next checkpoint step.
    messages: Vec<Message>,
    /// Due when the stdout buffer may wait no longer: FLUSH_EVERY after the last flush. It
    /// lives for the whole loop and is re-armed, not rebuilt on every turn: a fresh timer per
    /// turn is a timer-wheel registration per finished request.
    pub flush_timer: Pin<Box<Sleep>>,
}

impl<'d> Outbox<'d> {
    pub fn new(deliverer: &'d Deliverer, checkpointer: Checkpointer) -> Self {
        Outbox {
            deliverer,
            checkpointer,
            progress: Progress::default(),
            messages: Vec::new(),
            flush_timer: Box::pin(tokio::time::sleep(FLUSH_EVERY)),
        }
    }

    pub fn warn(&mut self, text: &str) {
        self.messages.push(log(Level::Warn, text));
    }

    /// The settled prefix leaves the backlog and becomes checkpoints; they and whatever else
    /// is to be said go to stdout's buffer.
    pub fn checkpoint(&mut self, backlog: &mut Backlog, out: &mut Output) -> Result<(), Closed> {
        while let Some((entry, ack)) = backlog.pop_settled() {
            if let Entry::Record(_) = entry {
                self.progress.settled(&ack);
            }
            self.checkpointer.settled(entry, ack, &mut self.messages);
        }
        let notices = self.deliverer.take_notices();
        self.messages
            .extend(notices.into_iter().map(Notice::into_log));
        self.messages.drain(..).try_for_each(|m| out.emit(&m))
    }

    /// Flushes stdout when the loop is idle or the buffer has waited long enough.
    pub fn flush(&mut self, out: &mut Output, idle: bool) -> Result<(), Closed> {
        let now = tokio::time::Instant::now();
        if out.is_dirty() && (idle || self.flush_timer.deadline() <= now) {
            out.flush()?;
            self.flush_timer.as_mut().reset(now + FLUSH_EVERY);
        }
        Ok(())
    }

    fn snapshot(&self, in_flight: usize, waiting: usize) -> Snapshot {
        Snapshot {
            in_flight,
            limit: self.deliverer.limit.current(),
            why: self.deliverer.limit.why(),
            waiting,
            paused_for: self.deliverer.paused_until().map(|t| t - Instant::now()),
        }
    }

    /// The periodic progress LOG.
    pub fn report(&mut self, in_flight: usize, waiting: usize) {
        let now = self.snapshot(in_flight, waiting);
        let line = self.progress.tick(&self.deliverer.metrics, now);
        self.messages.push(line);
    }

    /// One sample of the limit trace.
    pub fn trace(&self, trace: &mut LimitTrace, in_flight: usize, waiting: usize) {
        trace.sample(&self.progress, self.snapshot(in_flight, waiting));
    }

    /// The live line on a terminal's stderr.
    pub fn redraw(&self, live: &LiveLine, in_flight: usize, waiting: usize) {
        let now = self.snapshot(in_flight, waiting);
        self.progress.redraw(live, &self.deliverer.metrics, now);
    }

    /// The last messages: the final checkpoint (or, for a stopped sync, the interrupted one)
    /// and the summary, written and flushed.
    pub fn finish(&mut self, stopped: Option<usize>, out: &mut Output) -> Result<(), Closed> {
        let metrics = &self.deliverer.metrics;
        if self.progress.already_delivered > 0 {
            self.messages.push(log(Level::Info, &format!(
                "resume: skipped {} records that the checkpoint (last_row_num) shows were delivered by an earlier attempt of this run",
                self.progress.already_delivered
            )));
        }
        let outcome = match stopped {
            None => {
                self.checkpointer.finish(&mut self.messages);
                "sync complete".to_string()
            }
            Some(abandoned) => {
                self.checkpointer.interrupted(&mut self.messages);
                format!("sync stopped ({abandoned} requests abandoned in flight)")
            }
        };
        let now = self.snapshot(stopped.unwrap_or(0), 0);
        self.messages
            .push(self.progress.summary(metrics, now, &outcome));
        self.messages.drain(..).try_for_each(|m| out.emit(&m))?;
        out.flush()
    }
}
