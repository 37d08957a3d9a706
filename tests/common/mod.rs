//! Shared by the integration tests: run the connector binary as a process, read fixtures, write
//! temporary config files. Every test talks to real servers on 127.0.0.1.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use webhook_receiver::{Receiver, RecordedRequest, Reply, Rule, Script};

pub const BIN: &str = env!("CARGO_BIN_EXE_destination-webhook");

/// `../shared/fixtures/<rel>` as the repository sees it; the fixtures are also copied under
/// `integration_tests/` where a test needs them to exist in a clean clone.
pub fn fixture(rel: &str) -> PathBuf {
    let local = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    assert!(local.exists(), "missing fixture {}", local.display());
    local
}

pub fn read_fixture(rel: &str) -> String {
    std::fs::read_to_string(fixture(rel)).unwrap()
}

pub fn fixture_json(rel: &str) -> Value {
    serde_json::from_str(&read_fixture(rel)).unwrap()
}

pub fn jsonl(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// A temporary directory holding files for one run.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Self {
        Workdir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    pub fn write_json(&self, name: &str, value: &Value) -> PathBuf {
        self.write(name, &value.to_string())
    }
}

/// What a finished run of the binary printed.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub messages: Vec<Value>,
    pub elapsed: Duration,
}

impl Run {
    pub fn of_type(&self, kind: &str) -> Vec<&Value> {
        self.messages.iter().filter(|m| m["type"] == kind).collect()
    }

    pub fn states(&self) -> Vec<&Value> {
        self.of_type("STATE")
    }

    /// `state.<key>` of every STATE, in order.
    pub fn state_fields(&self, key: &str) -> Vec<Value> {
        self.states()
            .iter()
            .map(|s| s["state"][key].clone())
            .collect()
    }

    pub fn traces(&self) -> Vec<&Value> {
        self.of_type("TRACE")
    }

    pub fn logs(&self, level: &str) -> Vec<String> {
        self.of_type("LOG")
            .into_iter()
            .filter(|m| m["log"]["level"] == level)
            .map(|m| m["log"]["message"].as_str().unwrap().to_string())
            .collect()
    }
}

/// One stdout line as a protocol message: JSON, an object, with a string `type`.
fn protocol_message(line: &str) -> Value {
    let m = serde_json::from_str::<Value>(line)
        .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line:?}"));
    assert!(
        m.is_object() && m["type"].is_string(),
        "stdout line is not a protocol message: {m}"
    );
    m
}

fn finish(child: Child, started: Instant, parse: fn(&str) -> Value) -> Run {
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(output.stdout).expect("stdout is UTF-8");
    let messages = stdout.lines().map(parse).collect::<Vec<_>>();
    Run {
        code: output.status.code(),
        stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        messages,
        elapsed: started.elapsed(),
    }
}

/// Runs the connector with `args`, feeding `stdin`, and waits for it.
pub fn run(args: &[&str], stdin: &[u8]) -> Run {
    run_parsing(args, stdin, protocol_message)
}

/// [`run`], with each stdout line read into `messages` by `parse` (which checks what it needs).
pub fn run_parsing(args: &[&str], stdin: &[u8], parse: fn(&str) -> Value) -> Run {
    let started = Instant::now();
    run_with(started, spawn(args), stdin, parse)
}

/// [`run`] with these environment variables set (`Some`) or removed (`None`).
pub fn run_env(args: &[&str], stdin: &[u8], env: &[(&str, Option<&str>)]) -> Run {
    let started = Instant::now();
    run_with(started, spawn_env(args, env), stdin, protocol_message)
}

/// Feeds `stdin` to a started child and waits for it; `started` is when it was started.
fn run_with(started: Instant, mut child: Child, stdin: &[u8], parse: fn(&str) -> Value) -> Run {
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let run = finish(child, started, parse);
    writer.join().unwrap();
    run
}

pub fn spawn(args: &[&str]) -> Child {
    spawn_env(args, &[])
}

/// [`spawn`] with these environment variables set (`Some`) or removed (`None`).
pub fn spawn_env(args: &[&str], env: &[(&str, Option<&str>)]) -> Child {
    let mut command = Command::new(BIN);
    for (name, value) in env {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

pub fn wait(child: Child) -> Run {
    finish(child, Instant::now(), protocol_message)
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Borrowed views of owned arguments, for [`run`] and [`spawn`].
pub fn str_args(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// `write --config C --catalog S [--destination_catalog D] [--state T]`: the Valmi dialect
/// with a destination catalog, the Airbyte dialect without.
pub fn write_args(
    config: &Path,
    catalog: &Path,
    destination_catalog: Option<&Path>,
    state: Option<&Path>,
) -> Vec<String> {
    let mut args = vec![
        "write".to_string(),
        "--config".into(),
        path_str(config).into(),
        "--catalog".into(),
        path_str(catalog).into(),
    ];
    if let Some(dest) = destination_catalog {
        args.push("--destination_catalog".into());
        args.push(path_str(dest).into());
    }
    if let Some(state) = state {
        args.push("--state".into());
        args.push(path_str(state).into());
    }
    args
}

/// `check --config`, with the config written to a temporary file.
pub fn run_check(config: &Value) -> Run {
    let dir = Workdir::new();
    let path = dir.write_json("config.json", config);
    run(&["check", "--config", path_str(&path)], b"")
}

/// [`run_check`] with these environment variables set (`Some`) or removed (`None`).
pub fn check_env(config: &Value, env: &[(&str, Option<&str>)]) -> Run {
    let dir = Workdir::new();
    let path = dir.write_json("config.json", config);
    run_env(&["check", "--config", path_str(&path)], b"", env)
}

/// A loopback port nothing listens on (bound, then closed), until a test starts a server there.
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

/// `VmHWM` (peak resident set) of a live process, in KiB; `None` once it is gone.
pub fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The number right after the first `needle` in `text`.
pub fn number_after(text: &str, needle: &str) -> Option<u64> {
    let at = text.find(needle)? + needle.len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The messages of a JSONL input of one `type`.
pub fn messages_of_type(text: &str, kind: &str) -> Vec<Value> {
    jsonl(text)
        .into_iter()
        .filter(|m| m["type"] == kind)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Scripted receivers.

/// A receiver answering `reply` to every request.
pub fn receiver_answering(reply: Reply) -> Receiver {
    Receiver::with_script(Script {
        default: reply,
        ..Script::default()
    })
}

/// A receiver answering by `rule` where it applies and 200 otherwise.
pub fn receiver_with_rule(rule: Rule) -> Receiver {
    Receiver::with_script(Script {
        rules: vec![rule],
        ..Script::default()
    })
}

/// A receiver that answers row 1's first request 429 + `Retry-After: seconds`, and 200 after.
pub fn refusing_row_1_once(seconds: u32) -> Receiver {
    receiver_with_rule(
        Rule::when_body_contains(
            row_needle(1),
            Reply::status(429).with_header("Retry-After", seconds.to_string()),
        )
        .times(1),
    )
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by write_valmi.rs, write_airbyte.rs and faults.rs.

pub const VALMI_SOURCE_CATALOG: &str = "valmi/observed/source_catalog.json";
pub const VALMI_DEST_CATALOG: &str = "valmi/observed/dest_catalog.json";
pub const AIRBYTE_EXCHANGE_CATALOG: &str =
    "airbyte/constructed.exchange_rate.configured_catalog.json";

/// The six observed Valmi input records (rows 1..=6).
pub fn valmi_messages() -> String {
    read_fixture("valmi/observed/messages.jsonl")
}

/// Airbyte's exchange-rate acceptance messages (5 records, 3 STATEs, a TRACE).
pub fn exchange_rate_messages() -> String {
    read_fixture("airbyte/dat_exchange_rate_messages.v0.jsonl")
}

pub fn exchange_rate_catalog() -> Value {
    fixture_json(AIRBYTE_EXCHANGE_CATALOG)
}

/// `base` with the top-level fields of `extra` (an object) set over it.
pub fn overlay(mut base: Value, extra: &Value) -> Value {
    for (k, v) in extra.as_object().expect("extra config is an object") {
        base[k.as_str()] = v.clone();
    }
    base
}

/// A config for `url` with small timeouts, overlaid with the fields of `extra` (an object).
pub fn config(url: &str, extra: Value) -> Value {
    let config = serde_json::json!({
        "url": url,
        "method": "POST",
        "run_time_args": {"chunk_size": 4, "records_per_metric": 2},
        "max_retries": 2,
        "timeout_seconds": 2,
    });
    overlay(config, &extra)
}

/// The arguments of `write` in the Valmi dialect, files written into `dir`: the observed
/// destination catalog, `source_catalog` (the observed one when `None`) and an optional
/// `--state` checkpoint.
pub fn valmi_args(
    dir: &Workdir,
    config: &Value,
    source_catalog: Option<&Value>,
    state: Option<&Value>,
) -> Vec<String> {
    let config_path = dir.write_json("config.json", config);
    let catalog_path = match source_catalog {
        Some(c) => dir.write_json("source_catalog.json", c),
        None => fixture(VALMI_SOURCE_CATALOG),
    };
    let state_path = state.map(|s| dir.write_json("state.json", s));
    write_args(
        &config_path,
        &catalog_path,
        Some(&fixture(VALMI_DEST_CATALOG)),
        state_path.as_deref(),
    )
}

/// `write` in the Valmi dialect (see [`valmi_args`]).
pub fn write_valmi_with(
    config: &Value,
    source_catalog: Option<&Value>,
    state: Option<&Value>,
    stdin: &[u8],
) -> Run {
    let dir = Workdir::new();
    let args = valmi_args(&dir, config, source_catalog, state);
    run(&str_args(&args), stdin)
}

pub fn write_valmi(config: &Value, stdin: &[u8]) -> Run {
    write_valmi_with(config, None, None, stdin)
}

/// [`write_valmi`] with these environment variables set (`Some`) or removed (`None`).
pub fn write_valmi_with_env(config: &Value, stdin: &[u8], env: &[(&str, Option<&str>)]) -> Run {
    let dir = Workdir::new();
    let args = valmi_args(&dir, config, None, None);
    run_env(&str_args(&args), stdin, env)
}

/// [`write_valmi`] to `receiver`'s `/hook` under [`config`] with `extra`.
pub fn write_valmi_to(receiver: &Receiver, extra: Value, stdin: &[u8]) -> Run {
    write_valmi(&config(&receiver.url("/hook"), extra), stdin)
}

/// `write` in the Airbyte dialect (no `--destination_catalog`).
pub fn write_airbyte(config: &Value, catalog: &Value, stdin: &[u8]) -> Run {
    let dir = Workdir::new();
    let config_path = dir.write_json("config.json", config);
    let catalog_path = dir.write_json("catalog.json", catalog);
    run(
        &str_args(&write_args(&config_path, &catalog_path, None, None)),
        stdin,
    )
}

/// One Valmi RECORD line (compact JSON, so a body contains `"_valmi_row_num":N,`).
pub fn valmi_record(row: u64, op: &str, id: Value) -> String {
    let message = serde_json::json!({"type": "RECORD", "record": {
        "stream": "\"valmi_app\".\"public\".\"test_user\"",
        "data": {"_valmi_meta": {"_valmi_row_num": row, "_valmi_sync_op": op}, "id": id, "email": format!("u{row}@x.io")},
        "emitted_at": 1685013701000u64,
    }});
    let mut line = message.to_string();
    line.push('\n');
    line
}

/// Upsert records of `rows`, each with `id` = its row number.
pub fn valmi_records(rows: std::ops::RangeInclusive<u64>) -> String {
    rows.map(|row| valmi_record(row, "upsert", serde_json::json!(row)))
        .collect()
}

/// The body needle that matches exactly the record of row `row` built by [`valmi_record`].
pub fn row_needle(row: u64) -> String {
    format!("\"_valmi_row_num\":{row},")
}

/// The `_valmi_row_num` of every envelope in a request body (one for an object, several for a
/// batch array), in body order.
pub fn body_rows(body: &Value) -> Vec<u64> {
    let envelopes = match body {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    envelopes
        .iter()
        .map(|e| {
            e["payload"]["_valmi_meta"]["_valmi_row_num"]
                .as_u64()
                .unwrap_or_else(|| panic!("envelope without a row number: {e}"))
        })
        .collect()
}

pub fn request_row(request: &RecordedRequest) -> u64 {
    let rows = body_rows(&request.json());
    assert_eq!(rows.len(), 1, "expected one envelope: {}", request.body);
    rows[0]
}

/// The `Idempotency-Key` of each request by `id_of` the request; every key must equal the
/// request's `webhook-id`.
#[track_caller]
pub fn idempotency_keys(
    requests: &[RecordedRequest],
    id_of: impl Fn(&RecordedRequest) -> u64,
) -> BTreeMap<u64, String> {
    requests
        .iter()
        .map(|r| {
            let key = r.header("idempotency-key").expect("Idempotency-Key");
            assert_eq!(r.header("webhook-id"), Some(key), "{:?}", r.headers);
            (id_of(r), key.to_string())
        })
        .collect()
}

/// `state.data` of a Valmi STATE message.
pub fn state_data(state: &Value) -> &Value {
    &state["state"]["data"]
}

/// Equal in value and in key order (serde_json keeps insertion order in this crate).
#[track_caller]
pub fn assert_json_same(actual: &Value, expected: &Value, context: &str) {
    assert_eq!(actual, expected, "{context}: values differ");
    assert_eq!(
        serde_json::to_string(actual).unwrap(),
        serde_json::to_string(expected).unwrap(),
        "{context}: key order differs"
    );
}

impl Run {
    /// Everything printed, for assertion messages.
    pub fn dump(&self) -> String {
        format!(
            "exit {:?} after {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.elapsed, self.stdout, self.stderr
        )
    }

    /// The TRACE ERROR messages.
    pub fn errors(&self) -> Vec<&Value> {
        self.traces()
            .into_iter()
            .filter(|t| t["trace"]["type"] == "ERROR")
            .collect()
    }

    /// Whether no STATE says `finished: true` (as after any failure).
    pub fn never_finished(&self) -> bool {
        self.states()
            .iter()
            .all(|s| state_data(s)["finished"] == false)
    }

    /// RECORD echoes of rejected records.
    pub fn rejected_records(&self) -> Vec<&Value> {
        self.of_type("RECORD")
            .into_iter()
            .filter(|m| m["record"]["rejected"] == true)
            .collect()
    }
}

/// A successful write: exit 0 and no TRACE ERROR.
#[track_caller]
pub fn assert_completed(run: &Run) {
    assert_eq!(run.code, Some(0), "{}", run.dump());
    assert!(run.errors().is_empty(), "{}", run.dump());
}

/// A failed write: non-zero exit (not a signal) and a TRACE ERROR of `failure_type` as the last
/// message; returns its message.
#[track_caller]
pub fn assert_fatal(run: &Run, failure_type: &str) -> String {
    assert_ne!(run.code, Some(0), "{}", run.dump());
    assert!(run.code.is_some(), "killed by a signal: {}", run.dump());
    let last = run.messages.last().expect("something on stdout");
    assert_eq!(last["type"], "TRACE", "{}", run.dump());
    assert_eq!(last["trace"]["type"], "ERROR", "{}", run.dump());
    assert_eq!(
        last["trace"]["error"]["failure_type"],
        failure_type,
        "{}",
        run.dump()
    );
    last["trace"]["error"]["message"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Everything a fatal stop must look like on stdout: [`assert_fatal`], and besides no STATE after
/// the first TRACE and never `finished: true`.
#[track_caller]
pub fn assert_fatal_stop(run: &Run, failure_type: &str) -> String {
    let message = assert_fatal(run, failure_type);
    let first_trace = run
        .messages
        .iter()
        .position(|m| m["type"] == "TRACE")
        .unwrap();
    assert!(
        run.messages[first_trace..]
            .iter()
            .all(|m| m["type"] != "STATE"),
        "a STATE follows the TRACE ERROR: {}",
        run.dump()
    );
    assert!(
        run.never_finished(),
        "finished STATE after a fatal error: {}",
        run.dump()
    );
    message
}

/// A CONNECT proxy on 127.0.0.1 answering every tunnel request with `status`; with 200 it pipes
/// the tunnel to the requested target. Returns its port and the request heads it was sent.
pub fn connect_proxy(status: u16) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = heads.clone();
    std::thread::spawn(move || {
        for mut client in listener.incoming().flatten() {
            let mut reader = BufReader::new(client.try_clone().unwrap());
            let mut head = String::new();
            while reader.read_line(&mut head).unwrap_or(0) > 2 && !head.ends_with("\r\n\r\n") {}
            seen.lock().unwrap().push(head.clone());
            let _ = write!(client, "HTTP/1.1 {status} Status\r\n\r\n");
            let target = head
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_string();
            if status != 200 {
                continue;
            }
            let Ok(upstream) = std::net::TcpStream::connect(target) else {
                continue;
            };
            let (mut up_read, mut up_write) = (upstream.try_clone().unwrap(), upstream);
            let mut down_write = client;
            std::thread::spawn(move || std::io::copy(&mut reader, &mut up_write));
            std::thread::spawn(move || std::io::copy(&mut up_read, &mut down_write));
        }
    });
    (port, heads)
}

/// The proxy variables of the child process only: `HTTP_PROXY` and `HTTPS_PROXY` set to
/// `proxy`, every other spelling removed so the test machine's settings do not leak in.
pub fn proxy_env(proxy: &str) -> Vec<(&'static str, Option<&str>)> {
    let mut env: Vec<(&'static str, Option<&str>)> = [
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
    ]
    .into_iter()
    .map(|name| (name, None))
    .collect();
    env.extend([
        ("HTTP_PROXY", Some(proxy)),
        ("HTTPS_PROXY", Some(proxy)),
        ("NO_PROXY", Some("")),
    ]);
    env
}
