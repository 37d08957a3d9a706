//! Adaptive concurrency: how many requests may be in flight, learnt from the endpoint's answers.
//! Pure: every input (outcome, round-trip time, instants) is passed in, so every rule is
//! unit-tested by feeding a sequence of answers.
//!
//! The shape is Vector's adaptive request concurrency (AIMD: one more request per round trip
//! while answers are fast and healthy, a multiplicative cut on back-pressure or when the
//! round-trip time rises clearly above its baseline), with three changes measured against the
//! receiver's remote-like endpoint (BENCHMARKS.md):
//! - **slow start** (TCP's): until the first cut, every fast success adds one, which doubles the
//!   limit each round trip. Vector starts at 1 and adds one per round trip: 512 requests in
//!   flight at 20 ms would take ten seconds to reach.
//! - **a remembered ceiling**: a 429/503 names how many requests were on the wire when the
//!   endpoint refused; the limit stays below that count and probes above it only after a long
//!   calm (doubling each time it is refused again). An endpoint that answers 429 with
//!   `Retry-After` pauses the whole sync, so every probe into it costs a pause.
//! - **a cut to the endpoint's knee on queueing**: when the round-trip time rises, the limit
//!   becomes the attempts on the wire × baseline ÷ measured (what an endpoint that queues
//!   beyond K serves without queueing is K = in flight × its base latency ÷ the latency seen),
//!   taking the queue out in one step instead of ×0.9 once per round trip.
//! - **growth that starts slow after a cut and accelerates** (BIC TCP's max probing): one, then
//!   two, four... per round trip, at most √limit. Vector's +1 keeps a queueing endpoint near its
//!   knee but takes seconds to win back a cut from hundreds; √limit from the first round trip
//!   overshoots a queueing endpoint between two detections (measured: a sawtooth between 73 and
//!   150 against K 64, the endpoint's median latency at 1.9 × its base).
//!
//! A window lasts a measured round trip (its median answer, as Envoy's gradient controller
//! samples the 50th percentile), not the baseline: growth once per baseline while answers take
//! twice as long grows twice as fast as the endpoint can show its effect.

use std::time::{Duration, Instant};

/// The limit before anything is known: a burst this size (the fixed concurrency every config
/// had by default before) is harmless to any endpoint.
pub const START: u32 = 16;
/// The cut on a 429/503 (Vector's `decrease_ratio`).
const BACKPRESSURE_CUT: f64 = 0.9;
/// The cut on a timeout or a lost connection: the endpoint may be down or drowning.
const TIMEOUT_CUT: f64 = 0.5;
/// A round trip counts as queueing when it exceeds baseline × this + [`RTT_SLACK`], and the
/// baseline by [`RTT_MIN_RISE`] at least.
const RTT_RISE: f64 = 1.1;
const RTT_SLACK: Duration = Duration::from_millis(3);
/// Rises smaller than this are not queueing worth backing off for: on loopback a round trip is
/// a fraction of a millisecond and grows to several with CPU contention alone (a 3 ms margin let
/// a busy 2-core machine cut the limit of a loopback sync to 1).
const RTT_MIN_RISE: Duration = Duration::from_millis(10);
/// Consecutive windows whose median answer queued before a cut: one slow window is noise.
const QUEUED_WINDOWS: u32 = 2;
/// The same during slow start, which opens connections by the hundred: on a busy machine that
/// slows every answer for a round trip or two (measured against K 512 at 20 ms: a cut from 234
/// to 131 at 200 ms, and 650 ms to win it back, with 2).
const QUEUED_WINDOWS_IN_RAMP: u32 = 3;
/// A queueing cut removes at most this share of the limit at once.
const MAX_GRADIENT_CUT: f64 = 0.5;
/// How fast the baseline may drift up towards the measured round trip per window, so that an
/// endpoint that became slower for good is not taken for a queue forever.
const BASELINE_DRIFT: f64 = 0.005;
/// Calm windows (round trips) before the limit probes above a remembered ceiling; doubles after
/// each refusal, up to [`MAX_PROBE_AFTER`].
const PROBE_AFTER: u32 = 256;
/// The limit stays a 1/64 (at least one) below a remembered ceiling.
const CEILING_MARGIN: u32 = 64;
const MAX_PROBE_AFTER: u32 = 8192;

/// What one attempt came to, as far as the limit cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// A 2xx answer.
    Success,
    /// 429 or 503: the endpoint says it has too much.
    Backpressure,
    /// No answer in time, or the connection failed.
    Timeout,
    /// Anything else (a refusal of the record, a redirect): says nothing about capacity.
    Other,
}

/// One finished attempt.
#[derive(Clone, Copy, Debug)]
pub struct Attempt {
    pub started: Instant,
    pub finished: Instant,
    /// Attempts on the wire when this one started, itself included.
    pub on_wire: u32,
    /// Attempts on the wire when this one finished, itself included.
    pub on_wire_after: u32,
    pub signal: Signal,
}

/// Why the limit last changed, for the progress LOG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Start,
    /// Slow start: every fast answer adds one.
    Ramp,
    /// A round trip of fast, healthy answers with the limit in use added one.
    Healthy,
    /// A 429/503 answer.
    Backpressure,
    Timeout,
    /// The round-trip time rose above its baseline: requests queue at the endpoint.
    Queueing,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Start => "start",
            Change::Ramp => "ramping up",
            Change::Healthy => "fast healthy answers",
            Change::Backpressure => "429/503 from the endpoint",
            Change::Timeout => "timeouts",
            Change::Queueing => "round trips rising (queueing)",
        }
    }
}

/// The round-trip window being measured: about one round trip of successes.
#[derive(Clone, Debug)]
struct Window {
    start: Instant,
    /// Every answer's round trip, and the attempts on the wire when it started. Judged by the
    /// median: queueing delays most answers, while the noise of a busy machine (or network)
    /// delays some. (The fastest answer misses queueing that an endpoint's synchronised workers
    /// spread unevenly: against 64 workers of 50 ms, 100 in flight came back as a steady mix of
    /// 50 and 100 ms answers, the fastest always 50.)
    answers: Vec<(Duration, u32)>,
    /// The most attempts on the wire that any of its attempts started or finished with.
    peak: u32,
}

#[derive(Clone, Debug)]
pub struct Controller {
    cap: u32,
    limit: f64,
    slow_start: bool,
    /// On-wire count at which the endpoint last refused; the limit stays below it.
    ceiling: Option<u32>,
    calm_windows: u32,
    /// Consecutive windows that queued, up to [`QUEUED_WINDOWS`] ([`QUEUED_WINDOWS_IN_RAMP`]).
    queued_windows: u32,
    probe_after: u32,
    baseline: Option<Duration>,
    /// The previous window's median answer: how long a round trip takes now.
    round_trip: Duration,
    /// What the next healthy round trip after a cut adds (doubles each time, at most √limit).
    step: f64,
    window: Window,
    /// The previous window's peak: the first answers of a window judge use by it.
    last_peak: u32,
    /// When the limit was last cut: answers to attempts started before it reflect the old limit
    /// and cut nothing more.
    cut_at: Instant,
    why: Change,
}

impl Controller {
    pub fn new(cap: u32, now: Instant) -> Self {
        let cap = cap.max(1);
        Controller {
            cap,
            limit: f64::from(START.min(cap)),
            slow_start: true,
            ceiling: None,
            calm_windows: 0,
            queued_windows: 0,
            probe_after: PROBE_AFTER,
            baseline: None,
            round_trip: Duration::ZERO,
            step: 1.0,
            window: Window::starting(now),
            last_peak: 0,
            cut_at: now,
            why: Change::Start,
        }
    }

    /// Requests that may be in flight now, between 1 and the cap.
    pub fn limit(&self) -> u32 {
        self.limit as u32
    }

    pub fn why(&self) -> Change {
        self.why
    }

    /// Takes one finished attempt into account.
    pub fn observe(&mut self, attempt: Attempt) {
        let fresh = attempt.started >= self.cut_at;
        match attempt.signal {
            Signal::Success => self.success(attempt, fresh),
            Signal::Backpressure => {
                // The endpoint had fewer than the attempts on the wire when this one started
                // (not when it came back: in a ramp that is twice as many). Every refusal
                // narrows the ceiling, even one the last cut already answered.
                let seen = attempt.on_wire.saturating_sub(1).max(1);
                self.ceiling = Some(self.ceiling.map_or(seen, |c| c.min(seen)));
                if fresh {
                    self.probe_after = (self.probe_after * 2).min(MAX_PROBE_AFTER);
                    self.cut(
                        self.limit * BACKPRESSURE_CUT,
                        Change::Backpressure,
                        attempt.finished,
                    );
                }
                self.clamp();
            }
            Signal::Timeout if fresh => {
                self.cut(self.limit * TIMEOUT_CUT, Change::Timeout, attempt.finished)
            }
            Signal::Timeout | Signal::Other => {}
        }
    }

    fn success(&mut self, attempt: Attempt, fresh: bool) {
        if !fresh {
            return;
        }
        let rtt = attempt.finished.saturating_duration_since(attempt.started);
        self.window.add(rtt, attempt.on_wire, attempt.on_wire_after);
        if self.slow_start && self.is_used() && !self.is_queueing(rtt) {
            self.grow(1.0, Change::Ramp);
        }
        let length = self.baseline.unwrap_or(rtt).max(self.round_trip);
        if attempt
            .finished
            .saturating_duration_since(self.window.start)
            >= length
        {
            self.close_window(attempt.finished);
        }
    }

    /// A round trip's worth of answers: cut if they queued, else grow by one if the limit was
    /// in use; the baseline follows the fastest windows.
    fn close_window(&mut self, now: Instant) {
        let used = self.is_used();
        self.last_peak = self.window.peak;
        let median = self.window.median();
        self.window.restart(now);
        let Some((rtt, on_wire)) = median else {
            return;
        };
        self.round_trip = rtt;
        let baseline = match self.baseline {
            None => rtt,
            Some(b) if rtt < b => rtt,
            Some(b) => b + (rtt - b).mul_f64(BASELINE_DRIFT),
        };
        let queued = self.is_queueing(rtt);
        let old = self.baseline.replace(baseline).unwrap_or(rtt);
        if queued {
            self.queued_windows += 1;
            let needed = match self.slow_start {
                true => QUEUED_WINDOWS_IN_RAMP,
                false => QUEUED_WINDOWS,
            };
            if self.queued_windows >= needed {
                let knee = f64::from(on_wire) * old.as_secs_f64() / rtt.as_secs_f64();
                let to = knee.clamp(self.limit * (1.0 - MAX_GRADIENT_CUT), self.limit);
                return self.cut(to, Change::Queueing, now);
            }
            return;
        }
        self.queued_windows = 0;
        self.calm_windows += 1;
        if let Some(ceiling) = self.ceiling {
            if self.calm_windows >= self.probe_after {
                self.ceiling = Some(ceiling + 1);
                self.calm_windows = 0;
            }
        }
        if used && !self.slow_start {
            self.grow(self.step.min(self.limit.sqrt().floor()), Change::Healthy);
            self.step = (self.step * 2.0).min(f64::from(self.cap));
        }
    }

    /// Whether the limit is in use: at least half of it was on the wire lately. A limit nobody
    /// uses says nothing about the endpoint and must not grow.
    fn is_used(&self) -> bool {
        f64::from(self.window.peak.max(self.last_peak)) * 2.0 >= self.limit
    }

    fn is_queueing(&self, rtt: Duration) -> bool {
        self.baseline
            .is_some_and(|b| rtt > (b.mul_f64(RTT_RISE) + RTT_SLACK).max(b + RTT_MIN_RISE))
    }

    fn grow(&mut self, by: f64, why: Change) {
        let before = self.limit();
        self.limit += by;
        self.clamp();
        if self.limit() > before {
            self.why = why;
        }
    }

    fn cut(&mut self, to: f64, why: Change, now: Instant) {
        self.limit = to;
        self.clamp();
        self.slow_start = false;
        self.step = 1.0;
        self.calm_windows = 0;
        self.queued_windows = 0;
        self.cut_at = now;
        self.window.restart(now);
        self.why = why;
    }

    /// Between 1 and the cap, and a margin below a remembered ceiling: the count on the wire
    /// overstates the endpoint's own by the answers not yet read, and being one over costs a
    /// `Retry-After` pause (measured: a ceiling of 65 against K 64 paid a second one).
    fn clamp(&mut self) {
        let below = |c: u32| c.saturating_sub((c / CEILING_MARGIN).max(1)).max(1);
        let top = self.ceiling.map_or(self.cap, |c| below(c).min(self.cap));
        self.limit = self.limit.clamp(1.0, f64::from(top));
    }
}

impl Window {
    fn starting(now: Instant) -> Self {
        Window {
            start: now,
            answers: Vec::new(),
            peak: 0,
        }
    }

    /// A new window, keeping the old one's allocation.
    fn restart(&mut self, now: Instant) {
        self.start = now;
        self.answers.clear();
        self.peak = 0;
    }

    /// The lower median answer: with as many slow answers as fast ones, noise and not queueing.
    fn median(&mut self) -> Option<(Duration, u32)> {
        let middle = self.answers.len().checked_sub(1)? / 2;
        Some(*self.answers.select_nth_unstable(middle).1)
    }

    fn add(&mut self, rtt: Duration, on_wire: u32, on_wire_after: u32) {
        self.answers.push((rtt, on_wire));
        self.peak = self.peak.max(on_wire).max(on_wire_after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Drives a controller against a simulated endpoint, one round trip at a time: every
    /// request the limit allows is sent at once and answered after `rtt(in_flight)`, refused
    /// beyond `admits`.
    struct Sim {
        c: Controller,
        now: Instant,
    }

    impl Sim {
        fn new(cap: u32) -> Self {
            let now = Instant::now();
            Sim {
                c: Controller::new(cap, now),
                now,
            }
        }

        fn round(&mut self, admits: u32, rtt: impl Fn(u32) -> Duration) {
            let n = self.c.limit();
            let started = self.now;
            let took = rtt(n.min(admits));
            for i in 1..=n {
                let signal = if i > admits {
                    Signal::Backpressure
                } else {
                    Signal::Success
                };
                let finished = started + if i > admits { MS } else { took };
                self.c.observe(Attempt {
                    started,
                    finished,
                    on_wire: i,
                    on_wire_after: if i > admits { i } else { n - i + 1 },
                    signal,
                });
            }
            self.now = started + took + MS;
        }

        fn rounds(&mut self, k: usize, admits: u32, rtt: impl Fn(u32) -> Duration + Copy) {
            for _ in 0..k {
                self.round(admits, rtt);
            }
        }
    }

    /// An endpoint of `workers` that each serve a request in `service`, queueing the rest in
    /// arrival order, and a client that spends `cpu` on each answer on one core (answers wait
    /// their turn there, as on a busy machine): an attempt starts whenever the limit has room.
    struct Queue {
        workers: usize,
        service: Duration,
        cpu: Duration,
    }

    /// What the endpoint and the client saw over a run.
    struct Run {
        took: Duration,
        /// At the endpoint, arrival to answer, sorted.
        latencies: Vec<Duration>,
    }

    impl Queue {
        fn run(&self, c: &mut Controller, start: Instant, requests: usize) -> Run {
            use std::cmp::Reverse;
            use std::collections::BinaryHeap;
            let mut workers: BinaryHeap<_> = (0..self.workers).map(|_| Reverse(start)).collect();
            let mut pending = BinaryHeap::new();
            let (mut now, mut cpu_free, mut on_wire, mut sent) = (start, start, 0, 0);
            let mut latencies = Vec::new();
            loop {
                while on_wire < c.limit() && sent < requests {
                    (on_wire, sent) = (on_wire + 1, sent + 1);
                    let Reverse(free) = workers.pop().unwrap();
                    let served = free.max(now) + self.service;
                    workers.push(Reverse(served));
                    latencies.push(served - now);
                    // Served in arrival order, so answers reach the client in that order too.
                    cpu_free = served.max(cpu_free) + self.cpu;
                    pending.push(Reverse((cpu_free, now, on_wire)));
                }
                let Some(Reverse((finished, started, wire))) = pending.pop() else {
                    break;
                };
                now = finished;
                c.observe(Attempt {
                    started,
                    finished,
                    on_wire: wire,
                    on_wire_after: on_wire,
                    signal: Signal::Success,
                });
                on_wire -= 1;
            }
            latencies.sort();
            Run {
                took: now - start,
                latencies,
            }
        }
    }

    fn flat(ms: u64) -> impl Fn(u32) -> Duration + Copy {
        move |_| MS * ms as u32
    }

    #[test]
    fn starts_low_and_doubles_each_round_trip_while_fast() {
        let mut sim = Sim::new(1024);
        assert_eq!(sim.c.limit(), START);
        assert_eq!(sim.c.why(), Change::Start);
        sim.rounds(5, u32::MAX, flat(20));
        assert_eq!(sim.c.limit(), START << 5);
        assert_eq!(sim.c.why(), Change::Ramp);
    }

    #[test]
    fn never_above_the_cap_nor_below_one() {
        let mut sim = Sim::new(3);
        assert_eq!(sim.c.limit(), 3);
        sim.rounds(10, u32::MAX, flat(5));
        assert_eq!(sim.c.limit(), 3);
        for _ in 0..10 {
            let at = sim.now;
            sim.now += 100 * MS;
            sim.c.observe(Attempt {
                started: at,
                finished: sim.now,
                on_wire: 1,
                on_wire_after: 1,
                signal: Signal::Timeout,
            });
        }
        assert_eq!(sim.c.limit(), 1);
        assert_eq!(sim.c.why(), Change::Timeout);
    }

    #[test]
    fn settles_below_an_endpoint_that_refuses_beyond_its_capacity() {
        let mut sim = Sim::new(256);
        sim.rounds(200, 64, flat(50));
        assert_eq!(sim.c.why(), Change::Backpressure);
        let limit = sim.c.limit();
        assert!((58..=64).contains(&limit), "{limit}");
        // Long after, it has not probed again: each probe would cost a Retry-After pause.
        assert!(sim.c.ceiling.is_some_and(|c| c <= 64));
    }

    #[test]
    fn one_cut_per_round_trip_however_many_refusals_it_brings() {
        let mut sim = Sim::new(256);
        sim.rounds(4, u32::MAX, flat(50));
        let before = sim.c.limit();
        assert_eq!(before, 256);
        sim.round(128, flat(50));
        // Cut once (230 = 256 × 0.9), and below the 128 that were on the wire at the first
        // refusal, by the margin (128 / 64).
        assert_eq!(sim.c.limit(), 126);
    }

    #[test]
    fn a_ramp_rides_out_two_slow_round_trips_and_cuts_on_the_third() {
        let mut sim = Sim::new(1024);
        sim.rounds(3, u32::MAX, flat(20));
        let before = sim.c.limit();
        // Round trips twice as slow, as when hundreds of connections open at once. (A round's
        // first answer closes the window of the round before, so three rounds judge two
        // windows.) Growth stops, nothing is cut.
        sim.rounds(3, u32::MAX, flat(40));
        assert_eq!(sim.c.limit(), before);
        assert_eq!(sim.c.why(), Change::Ramp);
        sim.round(u32::MAX, flat(40));
        assert_eq!(sim.c.why(), Change::Queueing);
        assert!(sim.c.limit() < before);
        // Out of the ramp, two slow windows are enough.
        sim.rounds(10, u32::MAX, flat(20));
        let grown = sim.c.limit();
        sim.rounds(3, u32::MAX, flat(40));
        assert!(sim.c.limit() < grown, "{grown} → {}", sim.c.limit());
    }

    #[test]
    fn a_queueing_endpoint_is_held_near_its_capacity() {
        // 64 workers of 50 ms; more requests wait in a queue, so the round trip grows.
        let queue = |n: u32| MS * (50 * n.max(64) / 64);
        let mut sim = Sim::new(256);
        sim.rounds(50, u32::MAX, queue);
        let mut took = Vec::new();
        for _ in 0..100 {
            took.push(queue(sim.c.limit()));
            sim.round(u32::MAX, queue);
        }
        took.sort();
        // The endpoint is kept busy (64 or more in flight) and its median answer is at most
        // 1.3 × as slow as when nothing queues.
        assert!(took[0] >= MS * 50, "{:?}", took[0]);
        assert!(took[50] <= MS * 65, "{:?}", took[50]);
    }

    #[test]
    fn keeps_a_queueing_endpoint_busy_without_raising_its_latency_much() {
        // The bench's queueing row: 64 workers of 50 ms (1,280 requests/s at most), 10,000
        // requests from the default start.
        let queue = Queue {
            workers: 64,
            service: 50 * MS,
            cpu: Duration::from_micros(20),
        };
        let mut c = Controller::new(256, Instant::now());
        let run = queue.run(&mut c, Instant::now(), 10_000);
        let of_ideal = 10_000.0 / 1280.0 / run.took.as_secs_f64();
        let p50 = run.latencies[run.latencies.len() / 2];
        assert!(of_ideal >= 0.9, "{of_ideal:.2} of ideal");
        assert!(p50 <= MS * 65, "{p50:?}");
    }

    #[test]
    fn ramps_to_a_large_capacity_within_a_few_round_trips() {
        // The bench's K 512 row: 512 workers of 20 ms (25,600 requests/s), a client that can
        // handle 40,000 answers a second.
        let queue = Queue {
            workers: 512,
            service: 20 * MS,
            cpu: Duration::from_micros(25),
        };
        let mut c = Controller::new(512, Instant::now());
        let run = queue.run(&mut c, Instant::now(), 10_000);
        let of_ideal = 10_000.0 / 25_600.0 / run.took.as_secs_f64();
        assert!(of_ideal >= 0.8, "{of_ideal:.2} of ideal");
    }

    #[test]
    fn a_busy_client_is_held_where_its_cpu_keeps_up() {
        // The same endpoint, and a client that handles 12,500 answers a second at most (two
        // cores shared with other work): more in flight only queues on the client's CPU.
        let queue = Queue {
            workers: 512,
            service: 20 * MS,
            cpu: Duration::from_micros(80),
        };
        let mut c = Controller::new(512, Instant::now());
        let run = queue.run(&mut c, Instant::now(), 20_000);
        let of_cpu = 20_000.0 / 12_500.0 / run.took.as_secs_f64();
        assert!(of_cpu >= 0.9, "{of_cpu:.2} of what the CPU allows");
    }

    #[test]
    fn after_a_cut_grows_by_one_then_twice_as_much_each_round_trip_up_to_its_square_root() {
        let mut sim = Sim::new(1024);
        sim.rounds(3, u32::MAX, flat(20));
        let at = sim.now;
        sim.c.observe(Attempt {
            started: at,
            finished: at + MS,
            on_wire: 1,
            on_wire_after: 1,
            signal: Signal::Timeout,
        });
        sim.now = at + MS;
        let cut = sim.c.limit();
        assert_eq!(cut, START * 8 / 2);
        let mut limits = Vec::new();
        for _ in 0..6 {
            sim.round(u32::MAX, flat(20));
            limits.push(sim.c.limit());
        }
        // +1, +2, +4, +8, then √79 and √87 (8 and 9).
        assert_eq!(limits, [65, 67, 71, 79, 87, 96]);
        assert_eq!(sim.c.why(), Change::Healthy);
    }

    #[test]
    fn an_unused_limit_does_not_grow() {
        let mut sim = Sim::new(256);
        for _ in 0..50 {
            let at = sim.now;
            sim.now += 20 * MS;
            sim.c.observe(Attempt {
                started: at,
                finished: sim.now,
                on_wire: 1,
                on_wire_after: 1,
                signal: Signal::Success,
            });
        }
        assert_eq!(sim.c.limit(), START);
    }

    #[test]
    fn loopback_jitter_is_not_queueing() {
        // Round trips of a fraction of a millisecond that triple under CPU contention.
        let mut sim = Sim::new(64);
        sim.rounds(20, u32::MAX, |n| {
            Duration::from_micros(100 + 10 * u64::from(n))
        });
        assert_eq!(sim.c.limit(), 64);
    }

    #[test]
    fn slow_answers_among_fast_ones_are_noise_all_slow_is_queueing() {
        let mut sim = Sim::new(4096);
        sim.rounds(3, u32::MAX, flat(20));
        let before = sim.c.limit();
        // A noisy machine: every other answer comes late, for several round trips.
        for _ in 0..4 {
            let n = sim.c.limit();
            let started = sim.now;
            for i in 1..=n {
                let took = if i % 2 == 0 { 45 * MS } else { 20 * MS };
                sim.c.observe(Attempt {
                    started,
                    finished: started + took,
                    on_wire: i,
                    on_wire_after: n - i + 1,
                    signal: Signal::Success,
                });
            }
            sim.now = started + 46 * MS;
        }
        assert!(sim.c.limit() > before, "cut by noise: {:?}", sim.c.why());
        sim.rounds(3, u32::MAX, flat(45));
        assert_eq!(sim.c.why(), Change::Queueing);
    }

    #[test]
    fn probes_above_the_ceiling_only_after_a_long_calm() {
        let mut sim = Sim::new(256);
        sim.rounds(20, 64, flat(50));
        let ceiling = sim.c.ceiling.unwrap();
        let calm = sim.c.probe_after as usize;
        sim.rounds(calm / 2, u32::MAX, flat(50));
        assert_eq!(sim.c.ceiling, Some(ceiling));
        sim.rounds(calm / 2 + 1, u32::MAX, flat(50));
        assert!(sim.c.ceiling.unwrap() > ceiling);
    }

    /// `n` answers of `signal` to attempts started at `at` with `on_wire` on the wire, back
    /// `rtt` later; returns when they came back.
    fn answers(
        c: &mut Controller,
        at: Instant,
        n: u32,
        rtt: Duration,
        on_wire: u32,
        signal: Signal,
    ) -> Instant {
        for _ in 0..n {
            c.observe(Attempt {
                started: at,
                finished: at + rtt,
                on_wire,
                on_wire_after: on_wire,
                signal,
            });
        }
        at + rtt
    }

    /// Slow start at 50 ms up to 128, the baseline 50 ms.
    fn at_128() -> Sim {
        let mut sim = Sim::new(1024);
        sim.rounds(3, u32::MAX, flat(50));
        assert_eq!((sim.c.limit(), sim.c.baseline), (128, Some(50 * MS)));
        sim
    }

    #[test]
    fn a_refusal_cuts_a_tenth_once_and_doubles_the_calm_before_a_probe() {
        let mut sim = at_128();
        let at = sim.now;
        let back = answers(&mut sim.c, at, 1, MS, 128, Signal::Backpressure);
        assert_eq!(sim.c.limit(), 115);
        assert_eq!(sim.c.probe_after, PROBE_AFTER * 2);
        // The refusals of attempts started before that cut bring no second one.
        answers(&mut sim.c, at, 5, 2 * MS, 128, Signal::Backpressure);
        assert_eq!((sim.c.limit(), sim.c.probe_after), (115, PROBE_AFTER * 2));
        answers(&mut sim.c, back, 1, MS, 115, Signal::Backpressure);
        assert_eq!((sim.c.limit(), sim.c.probe_after), (103, PROBE_AFTER * 4));
    }

    #[test]
    fn timeouts_halve_the_limit_once_per_cut() {
        let mut sim = at_128();
        let at = sim.now;
        answers(&mut sim.c, at, 1, MS, 128, Signal::Timeout);
        answers(&mut sim.c, at, 5, 2 * MS, 128, Signal::Timeout);
        assert_eq!(sim.c.limit(), 64);
        assert_eq!(sim.c.why(), Change::Timeout);
    }

    #[test]
    fn the_baseline_drifts_up_a_two_hundredth_of_a_slower_window() {
        let mut sim = at_128();
        // A round's first answer closes the window of the round before: two rounds judge one
        // window of 60 ms answers, not slow enough to be queueing (60 ms is the threshold, so
        // the ramp goes on).
        sim.rounds(2, u32::MAX, flat(60));
        assert_eq!((sim.c.limit(), sim.c.why()), (512, Change::Ramp));
        let baseline = sim.c.baseline.unwrap();
        assert!(
            (Duration::from_micros(50_049)..=Duration::from_micros(50_051)).contains(&baseline),
            "{baseline:?}"
        );
    }

    #[test]
    fn queueing_cuts_to_the_knee_in_flight_times_baseline_over_round_trip() {
        let mut sim = at_128();
        // Out of slow start (a timeout halves to 64), then two windows of 80 ms answers with
        // 64 on the wire: an endpoint that serves 64 × 50 / 80 = 40 without queueing.
        let at = answers(&mut sim.c, sim.now, 1, MS, 128, Signal::Timeout);
        let at = answers(&mut sim.c, at, 64, 80 * MS, 64, Signal::Success);
        assert_eq!(sim.c.limit(), 64);
        answers(&mut sim.c, at, 64, 80 * MS, 64, Signal::Success);
        assert_eq!(sim.c.why(), Change::Queueing);
        // The first window moved the baseline to 50.15 ms: 64 × 50.15 / 80 = 40.1.
        assert_eq!(sim.c.limit(), 40);
    }
}
