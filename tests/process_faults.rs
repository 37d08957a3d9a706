//! Process-level faults (spec sections 6, 8, 9, 11): a silent or absent endpoint, a server that
//! dies mid-run, connections cut before or after the answer, odd answers, SIGTERM and SIGINT, a
//! closed stdout, truncated and hostile input, and resuming after a kill.
//!
//! Every test ends with [`check_invariants`], which holds the connector to the promises that
//! matter to an orchestrator whatever went wrong:
//!
//! - (a) every record the last STATE covers reached the receiver with a 2xx or was echoed as a
//!   rejected RECORD, and the STATE counts add up to exactly those records;
//! - (b) the STATEs never count more delivered records than rows the receiver answered 2xx;
//! - (c) every request of one `_valmi_row_num` carries the same `Idempotency-Key` (and
//!   `webhook-id`);
//! - (d) stdout is protocol JSON only;
//! - (e) the exit code and the TRACE ERROR's `failure_type` match the cause, and nothing but
//!   TRACEs follows the first TRACE ERROR;
//! - (f) the run ends within a bound derived from the config.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{ChildStdin, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use webhook_receiver::{Close, Receiver, ReceiverOptions, RecordedRequest, Reply, Rule, Script};

// ---------------------------------------------------------------------------------------------
// Inputs and configuration.

const CHUNK_SIZE: u64 = 10;
const RECORDS_PER_METRIC: u64 = 5;
const CONCURRENCY: u64 = 4;

/// One RECORD line of row `row` (compact JSON, so a body contains `"_valmi_row_num":N,`).
fn record_line(row: u64) -> String {
    format!("{}\n", record_with(row, ""))
}

/// The RECORD of row `row`, without its newline, with `extra` (raw JSON text such as
/// `,"blob":"x"`) after the last data field: for values `json!` cannot build or would refuse.
fn record_with(row: u64, extra: &str) -> String {
    format!(
        r#"{{"type":"RECORD","record":{{"stream":"users","data":{{"_valmi_meta":{{"_valmi_row_num":{row},"_valmi_sync_op":"upsert"}},"id":{row},"email":"u{row}@x.io"{extra}}},"emitted_at":1}}}}"#
    )
}

fn records(rows: impl IntoIterator<Item = u64>) -> String {
    rows.into_iter().map(record_line).collect()
}

fn rows(range: std::ops::RangeInclusive<u64>) -> BTreeSet<u64> {
    range.collect()
}

fn source_catalog() -> Value {
    json!({"streams": [{"id_key": "id", "stream": {"name": "users"}}]})
}

/// `id` and `email` mapped to themselves, plus `extra` fields mapped to themselves.
fn destination_catalog(extra: &[&str]) -> Value {
    let mut mapping = vec![
        json!({"stream": "id", "sink": "id"}),
        json!({"stream": "email", "sink": "email"}),
    ];
    mapping.extend(extra.iter().map(|f| json!({"stream": f, "sink": f})));
    json!({"sinks": [{"mapping": mapping, "destination_sync_mode": "upsert"}]})
}

/// The config of the brief, overlaid with the top-level fields of `extra`.
fn config(url: &str, extra: Value) -> Value {
    let config = json!({
        "url": url,
        "concurrency": CONCURRENCY,
        "max_retries": 2,
        "timeout_seconds": 1,
        "run_time_args": {
            "chunk_size": CHUNK_SIZE,
            "records_per_metric": RECORDS_PER_METRIC,
            "run_id": "r1",
        },
    });
    overlay(config, &extra)
}

/// The longest one record can take to fail for good: every attempt times out and every backoff
/// draws its ceiling (spec section 6: base 1 s, doubling, cap 60 s).
fn retry_budget(config: &Value) -> Duration {
    let timeout = config["timeout_seconds"].as_f64().unwrap();
    let retries = config["max_retries"].as_u64().unwrap() as u32;
    let backoff: f64 = (0..retries).map(|a| 2f64.powi(a as i32).min(60.0)).sum();
    Duration::from_secs_f64(timeout * f64::from(retries + 1) + backoff)
}

/// The config and catalogs of one run, on disk for as long as the run lasts.
struct Files {
    _dir: Workdir,
    args: Vec<String>,
}

impl Files {
    fn new(config: &Value, destination: &Value, state: Option<&Value>) -> Files {
        let dir = Workdir::new();
        let config_path = dir.write_json("config.json", config);
        let source_path = dir.write_json("source_catalog.json", &source_catalog());
        let dest_path = dir.write_json("destination_catalog.json", destination);
        let state_path = state.map(|s| dir.write_json("state.json", s));
        let args = write_args(
            &config_path,
            &source_path,
            Some(&dest_path),
            state_path.as_deref(),
        );
        Files { _dir: dir, args }
    }

    /// `id` and `email` mapped, no checkpoint.
    fn plain(config: &Value) -> Files {
        Files::new(config, &destination_catalog(&[]), None)
    }

    fn args(&self) -> Vec<&str> {
        str_args(&self.args)
    }

    fn run(&self, stdin: &[u8]) -> Run {
        run(&self.args(), stdin)
    }
}

fn receiver_on(port: u16, script: Script) -> Receiver {
    Receiver::start(ReceiverOptions {
        port,
        script,
        ..ReceiverOptions::default()
    })
    .unwrap_or_else(|e| panic!("cannot start the receiver on port {port}: {e}"))
}

/// Every request answered 200 after `delay_ms`.
fn slow(delay_ms: u64) -> Script {
    Script {
        rules: Vec::new(),
        default: Reply::status(200).with_delay_ms(delay_ms),
    }
}

/// A TCP endpoint that is not a well-behaved HTTP server: it reads the request head, writes
/// `reply` verbatim, then holds the connection open (`hang`) or closes it. Returns the port
/// and a count of connections. The accept thread lives as long as the test process.
fn raw_endpoint(reply: &'static [u8], hang: bool) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            thread::spawn(move || {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(reply);
                let _ = stream.flush();
                if hang {
                    // Hold the socket until the client gives up on it.
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                    while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
                }
            });
        }
    });
    (port, connections)
}

// ---------------------------------------------------------------------------------------------
// A connector process running in the background.

struct Running {
    pid: u32,
    feeder: JoinHandle<Option<ChildStdin>>,
    waiter: JoinHandle<(Run, Instant)>,
    peak_rss: JoinHandle<u64>,
}

impl Running {
    /// Starts the connector and feeds it `input` from a thread. With `keep_open`, stdin stays
    /// open after the input, so the run can only end by a signal or a fatal error.
    fn start(files: &Files, input: Vec<u8>, keep_open: bool) -> Running {
        let mut child = spawn(&files.args());
        let pid = child.id();
        let mut stdin = child.stdin.take().unwrap();
        let feeder = thread::spawn(move || {
            let written = stdin.write_all(&input).is_ok();
            (keep_open && written).then_some(stdin)
        });
        // Drains stdout and stderr while the test does other things, so the child never blocks
        // on a full pipe; notes the moment it exited.
        let waiter = thread::spawn(move || {
            let run = wait(child);
            (run, Instant::now())
        });
        let peak_rss = thread::spawn(move || {
            let mut peak = 0;
            while let Some(kb) = vm_hwm_kb(pid) {
                peak = peak.max(kb);
                thread::sleep(Duration::from_millis(10));
            }
            peak
        });
        Running {
            pid,
            feeder,
            waiter,
            peak_rss,
        }
    }

    /// Sends `SIG<name>` and waits for the exit; the run's `elapsed` is the time from the signal
    /// to the exit.
    fn interrupt(self, name: &str) -> Run {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {} failed", self.pid);
        let signalled = Instant::now();
        let (mut run, exited, _) = self.finish();
        run.elapsed = exited.duration_since(signalled);
        run
    }

    /// Waits for the exit; returns the run, when it exited, and its peak RSS in KiB. A stdin
    /// kept open stays open until the process has exited (it must end for another reason).
    fn finish(self) -> (Run, Instant, u64) {
        let stdin = self.feeder.join().unwrap();
        let (run, exited) = self.waiter.join().unwrap();
        drop(stdin);
        let peak = self.peak_rss.join().unwrap();
        (run, exited, peak)
    }
}

// ---------------------------------------------------------------------------------------------
// The invariant checker.

/// How a run must end.
#[derive(Clone, Copy, Debug)]
enum Ending {
    /// Exit 0, no TRACE ERROR, the last STATE is `finished` and covers every input row.
    Completed,
    /// A TRACE ERROR of this `failure_type`; exit `code`, or any non-zero code when `None`.
    Failed {
        failure_type: &'static str,
        code: Option<i32>,
    },
    /// The connector had no way left to report (stdout closed): a non-zero exit is all.
    Unreported,
}

struct Expect {
    ending: Ending,
    /// Bound on the run's wall time (f).
    within: Duration,
    /// Rows of the input that must be acknowledged once the prefix reaches them.
    rows: BTreeSet<u64>,
    /// Rows the connector may skip with a WARN (hostile input) instead of acknowledging.
    optional_rows: BTreeSet<u64>,
    /// `last_row_num` of the `--state` checkpoint: rows up to it are not this run's to send.
    resumed_after: u64,
}

impl Expect {
    fn completed(rows: BTreeSet<u64>, within: Duration) -> Expect {
        Expect {
            ending: Ending::Completed,
            within,
            rows,
            optional_rows: BTreeSet::new(),
            resumed_after: 0,
        }
    }

    fn failed(
        failure_type: &'static str,
        code: Option<i32>,
        rows: BTreeSet<u64>,
        within: Duration,
    ) -> Expect {
        Expect {
            ending: Ending::Failed { failure_type, code },
            ..Expect::completed(rows, within)
        }
    }

    /// Completed within the retry budget of `config`, plus 5 s.
    fn completed_in_budget(rows: BTreeSet<u64>, config: &Value) -> Expect {
        Expect::completed(rows, retry_budget(config) + Duration::from_secs(5))
    }

    /// Stopped by a signal: `transient_error`, exit `code`, within the 1 s grace
    /// (`timeout_seconds`) plus 2 s of the signal.
    fn interrupted(code: i32, rows: BTreeSet<u64>) -> Expect {
        Expect::failed(
            "transient_error",
            Some(code),
            rows,
            Duration::from_secs(1 + 2),
        )
    }

    fn optional(mut self, rows: BTreeSet<u64>) -> Expect {
        self.optional_rows = rows;
        self
    }

    fn resumed_after(mut self, row: u64) -> Expect {
        self.resumed_after = row;
        self
    }
}

/// What the receiver and the STATEs say, for the tests' own assertions.
struct Outcome {
    by_row: BTreeMap<u64, Vec<RecordedRequest>>,
    ok_rows: BTreeSet<u64>,
    rejected_rows: BTreeSet<u64>,
    /// Records the STATEs cover (sum over chunks), rejected ones included.
    covered: u64,
}

impl Outcome {
    fn statuses(&self, row: u64) -> Vec<u16> {
        self.by_row
            .get(&row)
            .map(|rs| rs.iter().map(|r| r.status).collect())
            .unwrap_or_default()
    }
}

/// The `_valmi_row_num` of a request: from a POST body, read as text (hostile bodies need not
/// parse with a recursion limit), or from a GET query (`_valmi_meta__valmi_row_num=N`).
fn row_of(request: &RecordedRequest) -> Option<u64> {
    number_after(&request.body, "\"_valmi_row_num\":")
        .or_else(|| number_after(&request.path, "_valmi_meta__valmi_row_num="))
}

/// Like `common::run`, for runs whose stdout may hold JSON nested deeper than serde_json's
/// recursion limit (the echo of a deeply nested rejected record): such values are validated and
/// kept as `"<deep>"` (see [`shallow_json`]).
fn run_deep(files: &Files, stdin: &[u8]) -> Run {
    run_parsing(&files.args(), stdin, |l| {
        shallow_json(l, 4).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l:.300}"))
    })
}

/// `text` as a Value, except that values nested too deep for serde_json's recursion limit are
/// validated as JSON and kept as the string `"<deep>"` below `depth` levels of objects/arrays.
fn shallow_json(text: &str, depth: usize) -> Result<Value, serde_json::Error> {
    use serde_json::value::RawValue;
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return Ok(value);
    }
    // Valid JSON at all? (RawValue skips values without the recursion limit.)
    serde_json::from_str::<&RawValue>(text)?;
    if depth == 0 {
        return Ok(Value::String("<deep>".into()));
    }
    if let Ok(map) = serde_json::from_str::<BTreeMap<String, Box<RawValue>>>(text) {
        let mut object = serde_json::Map::new();
        for (k, v) in map {
            object.insert(k, shallow_json(v.get(), depth - 1)?);
        }
        return Ok(Value::Object(object));
    }
    let items: Vec<Box<RawValue>> = serde_json::from_str(text)?;
    items
        .iter()
        .map(|v| shallow_json(v.get(), depth - 1))
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn is_trace_error(m: &Value) -> bool {
    m["type"] == "TRACE" && m["trace"]["type"] == "ERROR"
}

#[track_caller]
fn check_invariants(run: &Run, requests: &[RecordedRequest], expect: &Expect) -> Outcome {
    let dump = || {
        let mut text = run.dump();
        if text.len() > 20_000 {
            let mut cut = 20_000;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str("…(cut)");
        }
        text
    };

    // (d) stdout carries protocol messages only (common::wait checks it too; runs built by hand
    // come through here).
    for line in run.stdout.lines() {
        let message = shallow_json(line, 4)
            .unwrap_or_else(|e| panic!("(d) stdout line is not JSON ({e}): {line:.300}"));
        assert!(
            message.is_object() && message["type"].is_string(),
            "(d) stdout line is not a protocol message: {line}"
        );
    }

    // (e) exit code and TRACE ERROR.
    let first_error = run.messages.iter().position(is_trace_error);
    match expect.ending {
        Ending::Completed => {
            assert_eq!(run.code, Some(0), "(e) exit code\n{}", dump());
            assert!(
                first_error.is_none(),
                "(e) TRACE ERROR in a completed run\n{}",
                dump()
            );
        }
        Ending::Failed { failure_type, code } => {
            match code {
                Some(code) => assert_eq!(run.code, Some(code), "(e) exit code\n{}", dump()),
                None => assert!(
                    matches!(run.code, Some(c) if c != 0),
                    "(e) expected a non-zero exit\n{}",
                    dump()
                ),
            }
            let at = first_error.unwrap_or_else(|| panic!("(e) no TRACE ERROR\n{}", dump()));
            assert_eq!(
                at + 1,
                run.messages.len(),
                "(e) the TRACE ERROR must be the last message, and the only one\n{}",
                dump()
            );
            let error = &run.messages[at]["trace"]["error"];
            assert_eq!(
                error["failure_type"],
                failure_type,
                "(e) failure_type\n{}",
                dump()
            );
            let message = error["message"].as_str().unwrap_or("");
            assert!(
                !message.is_empty() && !message.contains('\n'),
                "(e) the TRACE message is not one line a person can act on: {message:?}"
            );
            assert!(
                run.never_finished(),
                "(e) a finished STATE in a failed run\n{}",
                dump()
            );
        }
        Ending::Unreported => assert!(
            matches!(run.code, Some(c) if c != 0),
            "(e) expected a non-zero exit, not a kill by signal\n{}",
            dump()
        ),
    }

    // (f) wall time.
    assert!(
        run.elapsed < expect.within,
        "(f) the run took {:?}, more than {:?}\n{}",
        run.elapsed,
        expect.within,
        dump()
    );

    // (c) one idempotency key per row, across every attempt.
    let mut by_row: BTreeMap<u64, Vec<RecordedRequest>> = BTreeMap::new();
    for request in requests {
        let row = row_of(request).unwrap_or_else(|| {
            panic!(
                "request #{} has no _valmi_row_num: {:.300} {:.300}",
                request.seq, request.path, request.body
            )
        });
        by_row.entry(row).or_default().push(request.clone());
    }
    for (row, attempts) in &by_row {
        let key = attempts[0]
            .header("idempotency-key")
            .unwrap_or_else(|| panic!("(c) row {row} was sent without Idempotency-Key"));
        for attempt in attempts {
            assert_eq!(
                attempt.header("idempotency-key"),
                Some(key),
                "(c) row {row}: attempts carry different idempotency keys"
            );
            assert_eq!(
                attempt.header("webhook-id"),
                Some(key),
                "(c) row {row}: webhook-id differs from Idempotency-Key"
            );
        }
    }
    let ok_rows: BTreeSet<u64> = by_row
        .iter()
        .filter(|(_, attempts)| attempts.iter().any(|r| (200..300).contains(&r.status)))
        .map(|(row, _)| *row)
        .collect();
    let rejected_rows: BTreeSet<u64> = run
        .rejected_records()
        .iter()
        .map(|m| {
            // The data's row number, else the label in the message ("record _valmi_row_num=N").
            m["record"]["data"]["_valmi_meta"]["_valmi_row_num"]
                .as_u64()
                .or_else(|| {
                    number_after(
                        m["record"]["rejection_message"].as_str()?,
                        "_valmi_row_num=",
                    )
                })
                .unwrap_or_else(|| panic!("rejected echo without a row number: {m}"))
        })
        .collect();

    // The STATEs: every one has the five keys, only whole chunks are committed, and after a
    // commit the next chunk starts. Counts are cumulative within a chunk, so the last STATE of
    // each chunk holds that chunk's total.
    let states = run.states();
    let mut chunks: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut expected_chunk: Option<u64> = None;
    for state in &states {
        let data = state_data(state);
        for key in [
            "records_delivered",
            "chunk_id",
            "finished",
            "commit_state",
            "commit_metric",
        ] {
            assert!(data.get(key).is_some(), "STATE without {key}: {state}");
        }
        let chunk = data["chunk_id"].as_u64().unwrap();
        if let Some(expected) = expected_chunk {
            assert_eq!(chunk, expected, "chunk ids out of order\n{}", dump());
        }
        let counts = data["records_delivered"].as_object().unwrap();
        let total: u64 = counts.values().map(|v| v.as_u64().unwrap()).sum();
        let rejected = counts.get("rejected").and_then(Value::as_u64).unwrap_or(0);
        let committed = data["commit_state"] == true;
        if committed && data["finished"] == false {
            assert_eq!(total, CHUNK_SIZE, "a partial chunk was committed: {state}");
        }
        chunks.insert(chunk, (total, total - rejected));
        expected_chunk = Some(if committed { chunk + 1 } else { chunk });
    }
    let covered: u64 = chunks.values().map(|c| c.0).sum();
    let delivered: u64 = chunks.values().map(|c| c.1).sum();
    let last_row_num = states
        .last()
        .and_then(|s| state_data(s)["last_row_num"].as_u64());
    let upto = last_row_num.unwrap_or(expect.resumed_after);
    let in_prefix = (expect.resumed_after + 1)..=upto;

    // (a) what the last STATE covers was answered 2xx or rejected, and the counts add up.
    let required: Vec<u64> = if upto > expect.resumed_after {
        expect.rows.range(in_prefix.clone()).copied().collect()
    } else {
        Vec::new()
    };
    for row in &required {
        assert!(
            ok_rows.contains(row) || rejected_rows.contains(row),
            "(a) row {row} is covered by the last STATE (last_row_num {upto}) but the receiver \
             never answered it 2xx and it was not echoed as rejected; statuses: {:?}\n{}",
            by_row
                .get(row)
                .map(|rs| rs.iter().map(|r| r.status).collect::<Vec<_>>()),
            dump()
        );
    }
    let optional_acked = if upto > expect.resumed_after {
        expect
            .optional_rows
            .range(in_prefix)
            .filter(|r| ok_rows.contains(r) || rejected_rows.contains(r))
            .count() as u64
    } else {
        0
    };
    let required_n = required.len() as u64;
    assert!(
        covered >= required_n && covered <= required_n + optional_acked,
        "(a) the STATEs count {covered} records but {required_n} (+ up to {optional_acked} \
         optional) input rows lie in ({}, {upto}]\n{}",
        expect.resumed_after,
        dump()
    );

    // (b) nothing counted delivered that the receiver did not answer 2xx.
    let ok_in_run = ok_rows.range(expect.resumed_after + 1..).count() as u64;
    assert!(
        delivered <= ok_in_run,
        "(b) the STATEs count {delivered} delivered records, the receiver answered only \
         {ok_in_run} rows with 2xx\n{}",
        dump()
    );

    if let Ending::Completed = expect.ending {
        let last = states
            .last()
            .unwrap_or_else(|| panic!("no STATE in a completed run\n{}", dump()));
        assert_eq!(state_data(last)["finished"], true, "{}", dump());
        assert_eq!(state_data(last)["commit_state"], true, "{}", dump());
        let max_row = expect.rows.iter().chain(&expect.optional_rows).max();
        if let Some(max_row) = max_row {
            assert!(
                upto >= *max_row,
                "the final STATE stops at row {upto}, the input goes to {max_row}\n{}",
                dump()
            );
        }
    }

    Outcome {
        by_row,
        ok_rows,
        rejected_rows,
        covered,
    }
}

/// `input` written to `receiver` under the default config: the run completes within the retry
/// budget and the invariants hold for `rows`.
#[track_caller]
fn completed_run(receiver: &Receiver, input: &[u8], rows: BTreeSet<u64>) -> (Run, Outcome) {
    let config = config(&receiver.url("/hook"), json!({}));
    let run = Files::plain(&config).run(input);
    let outcome = check_invariants(
        &run,
        &receiver.requests(),
        &Expect::completed_in_budget(rows, &config),
    );
    (run, outcome)
}

// ---------------------------------------------------------------------------------------------
// 1. An endpoint that never answers.

#[test]
fn a_silent_endpoint_fails_the_sync_within_the_retry_budget() {
    let receiver = Receiver::with_script(slow(5_000));
    let config = config(&receiver.url("/hook"), json!({}));
    let run = Files::plain(&config).run(records(1..=3).as_bytes());
    // 3 attempts x (1 s + backoff <= 4 s in all) + the 1 s grace for the other workers.
    let bound = Duration::from_secs(20);
    assert!(retry_budget(&config) + Duration::from_secs(1) < bound);
    check_invariants(
        &run,
        &receiver.requests(),
        &Expect::failed("transient_error", Some(1), rows(1..=3), bound),
    );
    let error = &run.errors()[0]["trace"]["error"];
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("after 3 attempts") && message.contains("no complete answer within 1s"),
        "{message}"
    );
    assert!(
        run.states().is_empty(),
        "nothing was acknowledged\n{}",
        run.dump()
    );
}

// ---------------------------------------------------------------------------------------------
// 2. The endpoint is down when the sync starts and comes up later.

#[test]
fn an_endpoint_that_comes_up_late_gets_every_record() {
    let port = closed_port();
    let config = config(
        &format!("http://127.0.0.1:{port}/hook"),
        json!({"max_retries": 5}),
    );
    let files = Files::plain(&config);
    let running = Running::start(&files, records(1..=20).into_bytes(), false);
    thread::sleep(Duration::from_millis(1_500));
    let receiver = receiver_on(port, Script::default());
    let (run, _, _) = running.finish();
    let outcome = check_invariants(
        &run,
        &receiver.requests(),
        &Expect::completed_in_budget(rows(1..=20), &config),
    );
    assert_eq!(outcome.ok_rows, rows(1..=20));
    assert!(
        run.logs("INFO")
            .iter()
            .any(|l| l.starts_with("retrying") && l.contains("could not connect")),
        "no retry after a refused connection\n{}",
        run.dump()
    );
}

// ---------------------------------------------------------------------------------------------
// 3. The endpoint crashes mid-run and comes back on the same port.

#[test]
fn an_endpoint_killed_and_restarted_mid_run_gets_every_record() {
    let port = closed_port();
    let first = receiver_on(port, slow(20));
    let config = config(&first.url("/hook"), json!({"max_retries": 5}));
    let files = Files::plain(&config);
    let running = Running::start(&files, records(1..=200).into_bytes(), false);
    assert!(first.wait_for_requests(40, Duration::from_secs(20)));
    // Freeze the endpoint (new requests hang), let the answers already decided go out, then
    // crash it: what it recorded is exactly what it answered.
    first.set_script(slow(60_000));
    thread::sleep(Duration::from_millis(200));
    let mut requests = first.requests();
    first.stop();
    thread::sleep(Duration::from_secs(1));
    let second = receiver_on(port, slow(20));
    let (run, _, _) = running.finish();
    requests.extend(second.requests());

    let outcome = check_invariants(
        &run,
        &requests,
        &Expect::completed(
            rows(1..=200),
            retry_budget(&config) + Duration::from_secs(10),
        ),
    );
    assert_eq!(outcome.ok_rows, rows(1..=200));
    // A row answered 2xx twice can only be one whose answer the crash swallowed: at most one
    // per worker, and (c) already showed the copies share one idempotency key.
    let twice: Vec<u64> = outcome
        .by_row
        .iter()
        .filter(|(_, rs)| rs.iter().filter(|r| (200..300).contains(&r.status)).count() > 1)
        .map(|(row, _)| *row)
        .collect();
    assert!(
        twice.len() as u64 <= CONCURRENCY,
        "rows delivered twice: {twice:?}"
    );
    assert_eq!(outcome.covered, 200);
}

// ---------------------------------------------------------------------------------------------
// 4. Connections closed around the answer.

#[test]
fn a_connection_closed_before_the_answer_is_retried_with_the_same_key() {
    let receiver = receiver_with_rule(
        Rule::when_body_contains(
            row_needle(3),
            Reply::status(200).closing(Close::BeforeResponse),
        )
        .times(2),
    );
    let (_, outcome) = completed_run(&receiver, records(1..=10).as_bytes(), rows(1..=10));
    assert_eq!(outcome.statuses(3), [0, 0, 200]);
    let attempts = &outcome.by_row[&3];
    assert!(attempts.iter().all(|r| r.body == attempts[0].body));
    for row in (1..=10).filter(|r| *r != 3) {
        assert_eq!(outcome.statuses(row), [200], "row {row}");
    }
}

#[test]
fn a_connection_closed_after_the_answer_is_not_retried() {
    let receiver = receiver_answering(Reply::status(200).closing(Close::AfterResponse));
    let (run, outcome) = completed_run(&receiver, records(1..=10).as_bytes(), rows(1..=10));
    for row in 1..=10 {
        assert_eq!(outcome.statuses(row), [200], "row {row}");
    }
    assert!(
        !run.logs("INFO").iter().any(|l| l.starts_with("retrying")),
        "{}",
        run.dump()
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Odd answers.

#[test]
fn a_2xx_with_a_non_json_body_is_delivered() {
    let receiver = receiver_answering(Reply::status(200).with_body("<html>not json {"));
    let (_, outcome) = completed_run(&receiver, records(1..=10).as_bytes(), rows(1..=10));
    assert_eq!(outcome.ok_rows, rows(1..=10));
    assert_eq!(receiver.requests().len(), 10);
}

#[test]
fn ten_megabyte_answers_are_read_without_growing_memory() {
    const TEN_MB: usize = 10 * 1024 * 1024;
    let receiver = Receiver::with_script(Script {
        rules: vec![Rule::when_body_contains(
            row_needle(3),
            Reply::status(422).with_body_bytes(TEN_MB),
        )],
        default: Reply::status(200).with_body_bytes(TEN_MB),
    });
    let config = config(&receiver.url("/hook"), json!({"timeout_seconds": 5}));
    let files = Files::plain(&config);
    let running = Running::start(&files, records(1..=8).into_bytes(), false);
    let (run, _, peak_kb) = running.finish();
    let outcome = check_invariants(
        &run,
        &receiver.requests(),
        &Expect::completed_in_budget(rows(1..=8), &config),
    );
    assert_eq!(outcome.rejected_rows, BTreeSet::from([3]));
    for row in (1..=8).filter(|r| *r != 3) {
        assert_eq!(outcome.statuses(row), [200], "row {row}");
    }
    let echo = run.rejected_records()[0];
    let message = echo["record"]["rejection_message"].as_str().unwrap();
    assert!(
        message.len() < 1024,
        "rejection message of {} bytes",
        message.len()
    );
    assert!(message.contains("422"), "{message}");
    eprintln!("peak RSS with 10 MB answers: {peak_kb} KiB");
    // 8 answers of 10 MB each, 4 at a time: kept bytes are capped at 64 KiB per answer.
    assert!(
        peak_kb > 0 && peak_kb < 100 * 1024,
        "peak RSS {peak_kb} KiB"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. A first attempt that outlives the timeout.

#[test]
fn an_answer_slower_than_the_timeout_is_retried_and_delivered() {
    let receiver = receiver_with_rule(
        Rule::when_body_contains(row_needle(2), Reply::status(200).with_delay_ms(2_500)).times(1),
    );
    let (run, outcome) = completed_run(&receiver, records(1..=5).as_bytes(), rows(1..=5));
    assert_eq!(outcome.ok_rows, rows(1..=5));
    let retries: Vec<String> = run
        .logs("INFO")
        .into_iter()
        .filter(|l| l.starts_with("retrying"))
        .collect();
    assert_eq!(retries.len(), 1, "{retries:?}");
    assert!(
        retries[0].contains("_valmi_row_num=2")
            && retries[0].contains("no complete answer within 1s"),
        "{}",
        retries[0]
    );
    // The retry went out after the timeout, not after the slow answer.
    assert!(run.elapsed >= Duration::from_secs(1));
}

// ---------------------------------------------------------------------------------------------
// 6b. Endpoints that do not speak HTTP properly.

/// One record sent to a [`raw_endpoint`] answering `reply`: the sync fails as transient after
/// 1 attempt + 2 retries, with no STATE.
#[track_caller]
fn fails_against_raw_endpoint(reply: &'static [u8], hang: bool) -> Run {
    let (port, connections) = raw_endpoint(reply, hang);
    let config = config(&format!("http://127.0.0.1:{port}/hook"), json!({}));
    let run = Files::plain(&config).run(records(1..=1).as_bytes());
    check_invariants(
        &run,
        &[],
        &Expect::failed(
            "transient_error",
            Some(1),
            rows(1..=1),
            retry_budget(&config) + Duration::from_secs(5),
        ),
    );
    assert!(run.states().is_empty(), "{}", run.dump());
    assert_eq!(
        connections.load(Ordering::SeqCst),
        3,
        "1 attempt + 2 retries"
    );
    run
}

#[test]
fn an_endpoint_answering_garbage_fails_the_sync_as_transient() {
    fails_against_raw_endpoint(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", false);
}

/// The status line says 200 but the body never completes. `timeout_seconds` bounds the whole
/// exchange, so the connector cannot tell this from a lost answer: it retries with the same
/// key and, when every attempt stalls, fails the sync without counting the record delivered.
#[test]
fn a_2xx_whose_body_never_completes_is_not_counted_delivered() {
    let run = fails_against_raw_endpoint(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"partial\":",
        true,
    );
    let message = run.errors()[0]["trace"]["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("no complete answer within 1s"),
        "{message}"
    );
}

// ---------------------------------------------------------------------------------------------
// 7. SIGTERM and SIGINT mid-run.

fn interrupted_mid_run(signal: &str, exit_code: i32) {
    let receiver = Receiver::with_script(slow(50));
    let config = config(&receiver.url("/hook"), json!({}));
    let files = Files::plain(&config);
    let running = Running::start(&files, records(1..=1000).into_bytes(), false);
    assert!(receiver.wait_for_requests(40, Duration::from_secs(20)));
    let run = running.interrupt(signal);
    let outcome = check_invariants(
        &run,
        &receiver.requests(),
        &Expect::interrupted(exit_code, rows(1..=1000)),
    );
    let trace = run.messages.iter().position(is_trace_error).unwrap();
    let last_state = run.messages[..trace]
        .iter()
        .rev()
        .find(|m| m["type"] == "STATE")
        .unwrap_or_else(|| panic!("no STATE before the TRACE\n{}", run.dump()));
    assert_eq!(
        state_data(last_state)["commit_state"],
        false,
        "{last_state}"
    );
    assert_eq!(state_data(last_state)["finished"], false, "{last_state}");
    assert!(
        run.errors()[0]["trace"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains(signal),
        "{}",
        run.dump()
    );
    assert!(
        outcome.covered > 0 && outcome.covered < 1000,
        "covered {}",
        outcome.covered
    );
    // The requests in flight had the grace (timeout_seconds) to settle, and did in 50 ms.
    let summary = run.logs("INFO").pop().unwrap_or_default();
    assert!(
        summary.contains("sync stopped (0 requests abandoned in flight)"),
        "{summary}"
    );
    // The connector started no new request after the signal: everything it sent was answered.
    assert!(
        outcome.by_row.len() as u64 <= outcome.covered + CONCURRENCY,
        "{} rows sent, {} covered",
        outcome.by_row.len(),
        outcome.covered
    );
}

#[test]
fn sigterm_mid_run_reports_the_acknowledged_prefix_and_exits_143() {
    interrupted_mid_run("TERM", 143);
}

#[test]
fn sigint_mid_run_reports_the_acknowledged_prefix_and_exits_130() {
    interrupted_mid_run("INT", 130);
}

#[test]
fn sighup_mid_run_is_a_stop_like_sigterm_and_exits_129() {
    interrupted_mid_run("HUP", 129);
}

/// A connector whose stdout nobody reads: a STATE per record fills the pipe, so the write loop
/// blocks writing it. Returns the child (its stdout still unread, stdin open) and how many
/// requests the endpoint got by then. Blocked means the loop's thread (the main thread) sleeps in
/// a pipe write, as the kernel tells, and no request came for half a second.
/// `extra` is laid over a config that writes a STATE per record; the files must outlive the
/// child.
#[allow(clippy::zombie_processes, reason = "the caller waits for the child")]
fn blocked_on_stdout(receiver: &Receiver, extra: Value) -> (std::process::Child, usize, Files) {
    let per_record = json!({"run_time_args": {"records_per_metric": 1, "chunk_size": 1000000}});
    let files = Files::plain(&overlay(config(&receiver.url("/hook"), per_record), &extra));
    let mut child = spawn(&files.args());
    let mut stdin = child.stdin.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    thread::spawn(move || std::io::copy(&mut { stderr }, &mut std::io::sink()));
    thread::spawn(move || stdin.write_all(records(1..=20_000).as_bytes()));
    let wchan = format!("/proc/{0}/task/{0}/wchan", child.id());
    let started = Instant::now();
    let mut seen = usize::MAX;
    loop {
        thread::sleep(Duration::from_millis(500));
        let now = receiver.requests().len();
        let writing = std::fs::read_to_string(&wchan).is_ok_and(|w| w.contains("pipe_write"));
        if writing && now == seen {
            return (child, now, files);
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "stdout never blocked"
        );
        seen = now;
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// After a signal, the process ends within the grace even when stdout stays blocked: it can
/// print nothing more, but it does not hang (issue 15, item 7).
#[test]
fn a_signal_ends_the_run_within_the_grace_even_with_stdout_blocked() {
    let receiver = Receiver::start_default();
    let (mut child, sent, _files) = blocked_on_stdout(&receiver, json!({"timeout_seconds": 1}));
    assert!(sent < 20_000, "stdout never blocked: {sent} records sent");
    let signalled = Instant::now();
    signal(child.id(), "TERM");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if signalled.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("still running 10 s after SIGTERM with stdout blocked");
        }
        thread::sleep(Duration::from_millis(50));
    };
    assert!(
        signalled.elapsed() < Duration::from_secs(1 + 2),
        "exited {:?} after the signal",
        signalled.elapsed()
    );
    assert_eq!(status.code(), Some(143));
}

/// A signal that comes while the loop is blocked on stdout is acted on before anything else
/// once stdout drains: no request starts after it, and the run ends with its STATE and TRACE
/// (issue 15, item 7). At concurrency 1 the loop blocks writing the STATE of one record right
/// after launching the next: that request is not on its way yet, and must never be.
#[test]
fn no_request_starts_after_a_signal_that_came_while_stdout_was_blocked() {
    let receiver = Receiver::start_default();
    let (mut child, sent, _files) = blocked_on_stdout(&receiver, json!({"concurrency": 1}));
    signal(child.id(), "TERM");
    thread::sleep(Duration::from_millis(300));
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    assert_eq!(
        receiver.requests().len(),
        sent,
        "a request started after the signal"
    );
    let traces = messages_of_type(&stdout, "TRACE");
    let message = traces.last().unwrap()["trace"]["error"]["message"].to_string();
    assert!(message.contains("SIGTERM"), "{message}");
    assert!(!messages_of_type(&stdout, "STATE").is_empty());
}

/// stdin still open, nothing in flight: the signal alone ends the run.
#[test]
fn sigterm_while_waiting_for_input_reports_the_prefix() {
    let receiver = Receiver::start_default();
    let config = config(&receiver.url("/hook"), json!({}));
    let files = Files::plain(&config);
    let running = Running::start(&files, records(1..=7).into_bytes(), true);
    assert!(receiver.wait_for_requests(7, Duration::from_secs(20)));
    thread::sleep(Duration::from_millis(200));
    let run = running.interrupt("TERM");
    let outcome = check_invariants(
        &run,
        &receiver.requests(),
        &Expect::interrupted(143, rows(1..=7)),
    );
    assert_eq!(outcome.covered, 7);
    let last = *run.states().last().unwrap();
    assert_json_same(
        &state_data(last).clone(),
        &json!({"records_delivered": {"upsert": 7}, "chunk_id": 1, "finished": false,
                "commit_state": false, "commit_metric": true, "last_row_num": 7}),
        "the STATE of the interrupted run",
    );
}

/// A 503 with `Retry-After: 600` pauses the whole endpoint for ten minutes; a SIGTERM during the
/// pause must not wait for it.
#[test]
fn sigterm_during_a_retry_after_pause_exits_within_the_grace() {
    let receiver = receiver_answering(Reply::status(503).with_header("Retry-After", "600"));
    let config = config(&receiver.url("/hook"), json!({}));
    let files = Files::plain(&config);
    let running = Running::start(&files, records(1..=3).into_bytes(), false);
    assert!(receiver.wait_for_requests(1, Duration::from_secs(20)));
    thread::sleep(Duration::from_millis(300));
    let run = running.interrupt("TERM");
    check_invariants(
        &run,
        &receiver.requests(),
        &Expect::interrupted(143, rows(1..=3)),
    );
    assert!(run.states().is_empty(), "{}", run.dump());
    // The pause held: no attempt after the first round.
    assert!(
        receiver.requests().len() <= 3,
        "{:?}",
        receiver.requests().len()
    );
}

// ---------------------------------------------------------------------------------------------
// 8. The reader of stdout goes away.

#[test]
fn a_closed_stdout_stops_the_connector_promptly_and_quietly() {
    let receiver = Receiver::start_default();
    let config = config(&receiver.url("/hook"), json!({}));
    let files = Files::plain(&config);
    let mut child = spawn(&files.args());
    let mut stdin = child.stdin.take().unwrap();
    let feeder = thread::spawn(move || {
        for row in 1.. {
            if stdin.write_all(record_line(row).as_bytes()).is_err() {
                return row - 1;
            }
        }
        unreachable!()
    });
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr_reader = thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr_pipe.read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first_line = String::new();
    stdout.read_line(&mut first_line).unwrap();
    drop(stdout);
    let closed = Instant::now();

    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if closed.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("the connector still runs 15 s after its stdout was closed");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let exit_took = closed.elapsed();
    let fed = feeder.join().unwrap();
    let stderr = stderr_reader.join().unwrap();

    let run = Run {
        code: status.code(),
        messages: vec![serde_json::from_str(&first_line).expect("first line is JSON")],
        stdout: first_line,
        stderr: stderr.clone(),
        elapsed: exit_took,
    };
    check_invariants(
        &run,
        &receiver.requests(),
        &Expect {
            ending: Ending::Unreported,
            ..Expect::completed(rows(1..=fed.max(1)), Duration::from_secs(5))
        },
    );
    assert!(
        stderr.len() < 2048,
        "stderr of {} bytes: {stderr}",
        stderr.len()
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// 9. Input that ends in the middle of a line.

#[test]
fn input_cut_in_the_middle_of_the_last_line_warns_and_delivers_the_rest() {
    let receiver = Receiver::start_default();
    let mut input = records(1..=10);
    let last = record_line(11);
    input.push_str(&last[..last.len() / 2]);
    let (run, outcome) = completed_run(&receiver, input.as_bytes(), rows(1..=10));
    assert_eq!(outcome.ok_rows, rows(1..=10));
    let warns = run.logs("WARN");
    assert_eq!(warns.len(), 1, "{warns:?}");
    assert!(warns[0].contains("line 11"), "{}", warns[0]);
}

#[test]
fn a_complete_last_line_without_newline_is_delivered() {
    let receiver = Receiver::start_default();
    let input = records(1..=10);
    let (run, outcome) = completed_run(&receiver, input.trim_end().as_bytes(), rows(1..=10));
    assert_eq!(outcome.ok_rows, rows(1..=10));
    assert!(run.logs("WARN").is_empty(), "{}", run.dump());
}

// ---------------------------------------------------------------------------------------------
// 10. Killed, then resumed from the last committed checkpoint.

#[test]
fn a_run_killed_mid_way_resumes_after_its_last_committed_chunk() {
    let input = records(1..=100);

    // Row 35 hangs, so the acknowledged prefix stops at 34 while rows after it are delivered:
    // run 1 ends with chunk 3 (rows 1..=30) committed and rows 31..=34, 36.. delivered but not
    // committed, which run 2 sends again.
    let first_receiver = Receiver::with_script(Script {
        rules: vec![Rule::when_body_contains(
            row_needle(35),
            Reply::status(200).with_delay_ms(60_000),
        )],
        default: Reply::status(200).with_delay_ms(50),
    });
    let first_config = config(&first_receiver.url("/hook"), json!({"max_retries": 5}));
    let first_files = Files::plain(&first_config);
    let running = Running::start(&first_files, input.clone().into_bytes(), false);
    assert!(first_receiver.wait_for_requests(45, Duration::from_secs(20)));
    let first = running.interrupt("TERM");
    let first_requests = first_receiver.requests();
    check_invariants(
        &first,
        &first_requests,
        &Expect::interrupted(143, rows(1..=100)),
    );

    // Valmi's wrapper keeps only committed STATEs as the checkpoint.
    let committed = *first
        .states()
        .iter()
        .rev()
        .find(|s| state_data(s)["commit_state"] == true)
        .unwrap_or_else(|| panic!("run 1 committed no chunk\n{}", first.dump()));
    let chunk = state_data(committed)["chunk_id"].as_u64().unwrap();
    let resume_row = state_data(committed)["last_row_num"].as_u64().unwrap();
    assert_eq!((chunk, resume_row), (3, 30), "{committed}");
    let last = *first.states().last().unwrap();
    assert_eq!(state_data(last)["last_row_num"], 34, "{last}");

    let second_receiver = Receiver::start_default();
    let second_config = config(&second_receiver.url("/hook"), json!({}));
    let second_files = Files::new(
        &second_config,
        &destination_catalog(&[]),
        Some(&committed["state"]),
    );
    let second = second_files.run(input.as_bytes());
    let second_requests = second_receiver.requests();
    let resumed = check_invariants(
        &second,
        &second_requests,
        &Expect::completed_in_budget(rows(1..=100), &second_config).resumed_after(resume_row),
    );

    assert_eq!(
        resumed.by_row.keys().next().copied(),
        Some(resume_row + 1),
        "run 2 must send no row <= {resume_row}"
    );
    assert_eq!(resumed.covered, 100 - resume_row);
    let first_state = second.states()[0];
    assert_eq!(
        state_data(first_state)["chunk_id"],
        chunk + 1,
        "{first_state}"
    );
    assert!(
        second
            .logs("INFO")
            .iter()
            .any(|l| l.contains(&format!("skipped {resume_row} records"))),
        "{}",
        second.dump()
    );

    // Together the two runs delivered every row, and a row sent by both kept its key.
    let first_by_row: BTreeMap<u64, String> = first_requests
        .iter()
        .map(|r| {
            let row = row_of(r).unwrap();
            (row, r.header("idempotency-key").unwrap().to_string())
        })
        .collect();
    let first_ok: BTreeSet<u64> = first_requests
        .iter()
        .filter(|r| (200..300).contains(&r.status))
        .map(|r| row_of(r).unwrap())
        .collect();
    let union: BTreeSet<u64> = first_ok.union(&resumed.ok_rows).copied().collect();
    assert_eq!(union, rows(1..=100));
    let mut resent = 0;
    for (row, attempts) in &resumed.by_row {
        if let Some(key) = first_by_row.get(row) {
            resent += 1;
            assert_eq!(
                attempts[0].header("idempotency-key"),
                Some(key.as_str()),
                "row {row} changed its idempotency key between runs"
            );
        }
    }
    assert!(
        resent >= 4,
        "run 1 delivered rows 31..=34 past its committed chunk, only {resent} were sent again"
    );
}

// ---------------------------------------------------------------------------------------------
// 11. Hostile input.

#[test]
fn a_40_mb_line_is_skipped_with_a_warn_and_bounded_memory() {
    let receiver = Receiver::start_default();
    let config = config(&receiver.url("/hook"), json!({}));
    let files = Files::new(&config, &destination_catalog(&["blob"]), None);
    let mut input = records(1..=5).into_bytes();
    let huge = record_with(6, &format!(r#","blob":"{}""#, "x".repeat(40 * 1024 * 1024)));
    input.extend_from_slice(huge.as_bytes());
    input.push(b'\n');
    drop(huge);
    input.extend_from_slice(records(7..=20).as_bytes());
    let running = Running::start(&files, input, false);
    let (run, _, peak_kb) = running.finish();
    let mut expected: BTreeSet<u64> = rows(1..=20);
    expected.remove(&6);
    let outcome = check_invariants(
        &run,
        &receiver.requests(),
        &Expect::completed(
            expected.clone(),
            retry_budget(&config) + Duration::from_secs(10),
        ),
    );
    assert_eq!(outcome.ok_rows, expected);
    let warns = run.logs("WARN");
    assert_eq!(warns.len(), 1, "{warns:?}");
    assert!(
        warns[0].contains("line 6") && warns[0].contains("longer than"),
        "{}",
        warns[0]
    );
    assert!(
        warns[0].len() < 1024,
        "the WARN quotes {} bytes",
        warns[0].len()
    );
    eprintln!("peak RSS with a 40 MB line: {peak_kb} KiB");
    assert!(
        peak_kb > 0 && peak_kb < 100 * 1024,
        "peak RSS {peak_kb} KiB with a 40 MB line"
    );
}

#[test]
fn hostile_values_are_delivered_faithfully_or_skipped_with_a_warn() {
    const DEPTH: usize = 10_000;
    let nested = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let big = "1234567890123456789012345678901234567890";
    let line = |row: u64, extra: &str| record_with(row, extra).into_bytes();
    // Row -> line; rows 1 and 9..=12 are ordinary.
    let hostile: Vec<(u64, Vec<u8>)> = vec![
        (2, line(2, &format!(r#","nested":{nested}"#))),
        (3, line(3, &format!(r#","big":{big}"#))),
        (4, {
            let mut l = line(4, "");
            let text = String::from_utf8(l).unwrap();
            l = text
                .replace(
                    r#""email":"u4@x.io""#,
                    r#""email":"first@x.io","email":"second@x.io""#,
                )
                .into_bytes();
            l
        }),
        (5, line(5, r#","score":NaN"#)),
        (6, line(6, r#","big":1e400"#)),
        (7, line(7, r#","big":"\ud800 lone surrogate""#)),
        (8, {
            let mut l = line(8, r#","big":"bad utf-8: X""#);
            let at = l.iter().position(|b| *b == b'X').unwrap();
            l[at] = 0xff;
            l
        }),
    ];
    let mut input = record_line(1).into_bytes();
    for (_, bytes) in &hostile {
        input.extend_from_slice(bytes);
        input.push(b'\n');
    }
    input.extend_from_slice(records(9..=12).as_bytes());

    let receiver = Receiver::start_default();
    let config = config(&receiver.url("/hook"), json!({}));
    let files = Files::new(
        &config,
        &destination_catalog(&["nested", "big", "score"]),
        None,
    );
    let run = files.run(&input);
    let hostile_rows: BTreeSet<u64> = hostile.iter().map(|(row, _)| *row).collect();
    let mut ordinary = rows(1..=12);
    ordinary.retain(|r| !hostile_rows.contains(r));
    let outcome = check_invariants(
        &run,
        &receiver.requests(),
        &Expect::completed_in_budget(ordinary.clone(), &config).optional(hostile_rows.clone()),
    );
    assert!(ordinary.is_subset(&outcome.ok_rows));
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);

    let warns = run.logs("WARN");
    let skipped = warns
        .iter()
        .filter(|w| w.starts_with("skipped input line "))
        .count();
    let summary = run.logs("INFO").pop().unwrap_or_default();
    assert!(
        skipped > 0 && summary.contains(&format!(", {skipped} input lines skipped,")),
        "{skipped} skipped, but: {summary}"
    );
    let mut fates = Vec::new();
    for row in &hostile_rows {
        let delivered = outcome.ok_rows.contains(row);
        let rejected = outcome.rejected_rows.contains(row);
        // Each row sits on line `row` of the input.
        let warned = warns
            .iter()
            .any(|w| w.starts_with(&format!("skipped input line {row} ")));
        assert_eq!(
            u8::from(delivered) + u8::from(rejected) + u8::from(warned),
            1,
            "row {row}: delivered {delivered}, rejected {rejected}, warned {warned}\n{}",
            run.dump()
        );
        fates.push(format!(
            "{row}:{}",
            if delivered {
                "delivered"
            } else if rejected {
                "rejected"
            } else {
                "skipped"
            }
        ));
        if !delivered {
            continue;
        }
        let body = &outcome.by_row[row]
            .iter()
            .find(|r| r.status == 200)
            .unwrap()
            .body;
        match row {
            2 => assert!(
                body.contains(&format!(r#""nested":{nested}"#)),
                "row 2 mangled"
            ),
            3 => assert!(body.contains(&format!(r#""big":{big}"#)), "{body}"),
            4 => {
                assert!(body.contains(r#""email":"second@x.io""#), "{body}");
                assert!(
                    !body.contains("first@x.io"),
                    "duplicate key forwarded: {body}"
                );
            }
            5 => panic!("NaN is not JSON, yet row 5 was sent: {body}"),
            6 => assert!(body.contains(r#""big":1e400"#), "{body}"),
            7 => assert!(body.contains(r#"\ud800"#), "{body}"),
            8 => panic!("invalid UTF-8 was sent: {body}"),
            _ => unreachable!(),
        }
    }
    eprintln!("hostile rows: {}", fates.join(" "));
}

/// GET flattens the payload into query parameters, which needs the value decoded: a value
/// nested 10,000 deep must be refused, not crash the connector. (Regression: before d6c0a5c the
/// rejected-RECORD echo re-parsed the data into a `Value` and panicked with "recursion limit
/// exceeded", exit 101 and no TRACE.)
/// Rows 1..=4 where row 2 has a field `nested`, arrays `depth` deep: (that value, the input).
fn nested_input(depth: usize) -> (String, String) {
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let mut input = record_line(1);
    input.push_str(&record_with(2, &format!(r#","nested":{nested}"#)));
    input.push('\n');
    input.push_str(&records(3..=4));
    (nested, input)
}

/// `input` sent to `receiver` with `extra` config and `nested` mapped, read as [`run_deep`]:
/// rows 1..=4 complete within the retry budget.
#[track_caller]
fn nested_run(receiver: &Receiver, extra: Value, input: &str) -> (Run, Outcome) {
    let config = config(&receiver.url("/hook"), extra);
    let files = Files::new(&config, &destination_catalog(&["nested"]), None);
    let run = run_deep(&files, input.as_bytes());
    let outcome = check_invariants(
        &run,
        &receiver.requests(),
        &Expect::completed_in_budget(rows(1..=4), &config),
    );
    (run, outcome)
}

#[test]
fn a_deeply_nested_value_sent_by_get_is_rejected_not_a_crash() {
    let (_, input) = nested_input(10_000);
    let receiver = Receiver::start_default();
    let (run, outcome) = nested_run(&receiver, json!({"method": "GET"}), &input);
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.contains("overflow"),
        "{}",
        run.stderr
    );
    assert_eq!(outcome.ok_rows, BTreeSet::from([1, 3, 4]));
    assert_eq!(outcome.rejected_rows, BTreeSet::from([2]));
    let echo = run.rejected_records()[0];
    assert_eq!(echo["record"]["rejection_code"], "too_deep", "{echo}");
}

/// The same without GET: an endpoint that refuses (4xx) a record whose data is nested 200
/// deep (legal JSON, deeper than serde_json's default limit of 128). Regression test, as above.
#[test]
fn a_refused_deeply_nested_record_is_echoed_not_a_crash() {
    let (nested, input) = nested_input(200);
    let receiver = receiver_with_rule(Rule::when_body_contains(row_needle(2), Reply::status(422)));
    let (run, outcome) = nested_run(&receiver, json!({}), &input);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_eq!(outcome.rejected_rows, BTreeSet::from([2]));
    let echo = run.rejected_records()[0];
    assert_eq!(echo["record"]["rejection_code"], "422", "{echo}");
    // The echo carries the data verbatim, or (when it cannot) says which row it was.
    assert!(
        run.stdout.contains(&format!(r#""nested":{nested}"#))
            || echo["record"]["rejection_message"]
                .as_str()
                .unwrap()
                .contains("_valmi_row_num=2"),
        "{echo}"
    );
}

/// A fatal answer while the orchestrator keeps stdin open: the connector must not wait for EOF.
#[test]
fn a_fatal_answer_ends_the_run_even_while_stdin_stays_open() {
    let receiver = receiver_answering(Reply::status(401));
    let config = config(&receiver.url("/hook"), json!({}));
    let files = Files::plain(&config);
    let started = Instant::now();
    let running = Running::start(&files, records(1..=3).into_bytes(), true);
    let (mut run, exited, _) = running.finish();
    run.elapsed = exited.duration_since(started);
    check_invariants(
        &run,
        &receiver.requests(),
        &Expect::failed("config_error", Some(1), rows(1..=3), Duration::from_secs(5)),
    );
    assert!(run.states().is_empty(), "{}", run.dump());
}

/// README's memory bound in records: the window holds at most `concurrency × batch_size × 4`
/// records, and at least 1,024. While the first record's request is held, the records after it
/// go out past it until the window is full, and no further: the endpoint sees at most 1,024
/// requests before it answers the first (a request sent after that answer arrives after it).
#[test]
fn a_held_record_lets_at_most_a_window_of_records_past_it() {
    const WINDOW: usize = 1024;
    let first = r#""_valmi_row_num":1,"#;
    let hold = Rule::when_body_contains(first, Reply::status(200).with_delay_ms(8000));
    let receiver = Receiver::with_script(Script {
        rules: vec![hold],
        default: Reply::status(200),
    });
    let config = config(
        &receiver.url("/hook"),
        json!({"concurrency": 16, "timeout_seconds": 60}),
    );
    let n = 2 * WINDOW as u64;
    let run = Files::plain(&config).run(records(1..=n).as_bytes());
    let requests = receiver.requests();
    let expect = Expect::completed(rows(1..=n), Duration::from_secs(120));
    let outcome = check_invariants(&run, &requests, &expect);
    assert_eq!(outcome.ok_rows, rows(1..=n));
    let held = requests.iter().find(|r| r.body.contains(first)).unwrap();
    let before = requests
        .iter()
        .filter(|r| r.received_at_ms < held.answered_at_ms)
        .count();
    assert!(
        before <= WINDOW,
        "{before} requests arrived while the first record's was held"
    );
}

/// Spec section 8: "Memory stays bounded whatever the input size". Regression: before d6c0a5c
/// the window was bounded in records only (at least 1024, plus 512 parsed records queued by the
/// reader) and each record was held twice (its data for a possible rejection echo, and its
/// body), so 30 records of 10 MiB against a slow endpoint peaked at 662 MiB.
#[test]
fn large_records_do_not_grow_memory_with_the_input() {
    const RECORD_MB: usize = 10;
    let receiver = Receiver::with_script(slow(500));
    let config = config(&receiver.url("/hook"), json!({"timeout_seconds": 10}));
    let files = Files::new(&config, &destination_catalog(&["blob"]), None);
    let n = 30u64;
    let blob = "x".repeat(RECORD_MB * 1024 * 1024);
    let mut input = Vec::new();
    for row in 1..=n {
        input.extend_from_slice(record_with(row, &format!(r#","blob":"{blob}""#)).as_bytes());
        input.push(b'\n');
    }
    drop(blob);
    let running = Running::start(&files, input, false);
    let (run, _, peak_kb) = running.finish();
    let outcome = check_invariants(
        &run,
        &receiver.requests(),
        &Expect::completed(rows(1..=n), Duration::from_secs(120)),
    );
    assert_eq!(outcome.ok_rows, rows(1..=n));
    assert_within_memory_budget(peak_kb, n as usize * RECORD_MB, RECORD_MB);
}

/// What delivery needs: `concurrency` bodies in flight (and reqwest's copy of each), the line
/// being read, and a read-ahead bounded in bytes; not the whole input.
#[track_caller]
fn assert_within_memory_budget(peak_kb: u64, input_mb: usize, record_mb: usize) {
    let needed_mb = CONCURRENCY as usize * 2 * record_mb + 32 + 64 + 30;
    eprintln!(
        "peak RSS {} MiB, input {input_mb} MiB, budget {needed_mb} MiB",
        peak_kb / 1024
    );
    assert!(
        (peak_kb as usize) < needed_mb * 1024,
        "peak RSS {} MiB for {input_mb} MiB of input: memory follows the input size",
        peak_kb / 1024
    );
}

/// The same bound in the Airbyte dialect, where the window holds only the request body of a
/// record (no data kept for a rejection echo), so its size is the body's alone.
#[test]
fn large_airbyte_records_do_not_grow_memory_with_the_input() {
    const RECORD_MB: usize = 10;
    let receiver = Receiver::with_script(slow(500));
    let config = config(&receiver.url("/hook"), json!({"timeout_seconds": 10}));
    let catalog = json!({"streams": [{"stream": {"name": "s", "json_schema": {},
        "supported_sync_modes": ["full_refresh"]}, "sync_mode": "full_refresh",
        "destination_sync_mode": "append"}]});
    let dir = Workdir::new();
    let args = write_args(
        &dir.write_json("config.json", &config),
        &dir.write_json("catalog.json", &catalog),
        None,
        None,
    );
    let files = Files { _dir: dir, args };
    let n = 30;
    let blob = "x".repeat(RECORD_MB * 1024 * 1024);
    let mut input = Vec::new();
    for row in 1..=n {
        let line = format!(
            r#"{{"type":"RECORD","record":{{"stream":"s","data":{{"row":{row},"blob":"{blob}"}},"emitted_at":1}}}}"#
        );
        input.extend_from_slice(line.as_bytes());
        input.push(b'\n');
    }
    drop(blob);
    let (run, _, peak_kb) = Running::start(&files, input, false).finish();
    assert_eq!(run.code, Some(0), "{}", run.dump());
    assert_eq!(receiver.requests().len(), n);
    assert_within_memory_budget(peak_kb, n * RECORD_MB, RECORD_MB);
}

/// The orchestrator checkpoints from what it reads: a STATE reaches stdout while the run still
/// waits for input, not only when it ends.
#[test]
fn checkpoints_reach_stdout_while_stdin_is_still_open() {
    let receiver = Receiver::start_default();
    let config = config(&receiver.url("/hook"), json!({}));
    let files = Files::plain(&config);
    let mut child = spawn(&files.args());
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(records(1..=7).as_bytes()).unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, seen) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut state = None;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match seen.recv_timeout(left) {
            Ok(line) if line.contains(r#""type":"STATE""#) => {
                state = Some(line);
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    drop(stdin);
    let _ = child.wait();
    assert!(state.is_some(), "no STATE while stdin was open");
}
