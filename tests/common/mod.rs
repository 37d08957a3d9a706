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
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel);
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
        Workdir { dir: tempfile::tempdir().unwrap() }
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
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l:?}")))
        .collect::<Vec<_>>();
    for m in &messages {
        assert!(m.is_object() && m["type"].is_string(), "stdout line is not a protocol message: {m}");
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
