//! Shared by the integration tests: run the connector binary as a process, read fixtures, write
//! temporary config files. Every test talks to real servers on 127.0.0.1.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

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

fn finish(child: Child, started: Instant) -> Run {
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(output.stdout).expect("stdout is UTF-8");
    let messages = stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l:?}"))
        })
        .collect::<Vec<_>>();
    for m in &messages {
        assert!(
            m.is_object() && m["type"].is_string(),
            "stdout line is not a protocol message: {m}"
        );
    }
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
    let started = Instant::now();
    let mut child = spawn(args);
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let run = finish(child, started);
    writer.join().unwrap();
    run
}

pub fn spawn(args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

pub fn wait(child: Child) -> Run {
    finish(child, Instant::now())
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by write_valmi.rs, write_airbyte.rs and faults.rs.

pub const VALMI_SOURCE_CATALOG: &str = "valmi/observed/source_catalog.json";
pub const VALMI_DEST_CATALOG: &str = "valmi/observed/dest_catalog.json";
pub const AIRBYTE_EXCHANGE_CATALOG: &str =
    "airbyte/constructed.exchange_rate.configured_catalog.json";

/// A config for `url` with small timeouts, overlaid with the fields of `extra` (an object).
pub fn config(url: &str, extra: Value) -> Value {
    let mut config = serde_json::json!({
        "url": url,
        "method": "POST",
        "run_time_args": {"chunk_size": 4, "records_per_metric": 2},
        "max_retries": 2,
        "timeout_seconds": 2,
    });
    for (k, v) in extra.as_object().expect("extra config is an object") {
        config[k.as_str()] = v.clone();
    }
    config
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
    let dest_path = fixture(VALMI_DEST_CATALOG);
    let mut args = vec![
        "write".to_string(),
        "--config".into(),
        path_str(&config_path).into(),
        "--catalog".into(),
        path_str(&catalog_path).into(),
        "--destination_catalog".into(),
        path_str(&dest_path).into(),
    ];
    if let Some(state) = state {
        let state_path = dir.write_json("state.json", state);
        args.push("--state".into());
        args.push(path_str(&state_path).into());
    }
    args
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
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&args, stdin)
}

pub fn write_valmi(config: &Value, stdin: &[u8]) -> Run {
    write_valmi_with(config, None, None, stdin)
}

/// `write` in the Airbyte dialect (no `--destination_catalog`).
pub fn write_airbyte(config: &Value, catalog: &Value, stdin: &[u8]) -> Run {
    let dir = Workdir::new();
    let config_path = dir.write_json("config.json", config);
    let catalog_path = dir.write_json("catalog.json", catalog);
    run(
        &[
            "write",
            "--config",
            path_str(&config_path),
            "--catalog",
            path_str(&catalog_path),
        ],
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

pub fn request_row(request: &webhook_receiver::RecordedRequest) -> u64 {
    let rows = body_rows(&request.json());
    assert_eq!(rows.len(), 1, "expected one envelope: {}", request.body);
    rows[0]
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

    /// RECORD echoes of rejected records.
    pub fn rejected_records(&self) -> Vec<&Value> {
        self.of_type("RECORD")
            .into_iter()
            .filter(|m| m["record"]["rejected"] == true)
            .collect()
    }
}
