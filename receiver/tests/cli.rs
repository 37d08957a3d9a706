//! The `webhook-receiver` binary as a user runs it: it finds a free port, writes it to the port
//! file, logs each request as JSONL, answers by the script, plays a remote endpoint of limited
//! capacity, serves HTTPS, and stops on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A scratch directory of its own for each test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("webhook-receiver-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts the binary with `args` (and a port file in `dir`); returns it and its port.
fn spawn(dir: &Path, args: &[&str]) -> (Child, u16) {
    let port_file = dir.join("port");
    let child = Command::new(env!("CARGO_BIN_EXE_webhook-receiver"))
        .args(["--port", "0", "--port-file"])
        .arg(&port_file)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let port = loop {
        if let Ok(text) = std::fs::read_to_string(&port_file) {
            if let Ok(port) = text.trim().parse::<u16>() {
                break port;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no port file");
        std::thread::sleep(Duration::from_millis(20));
    };
    (child, port)
}

/// Stops the binary as a user would and returns what it printed on stderr.
fn terminate(mut child: Child) -> String {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    stderr
}

/// Sends a POST on a connection of its own and returns the whole answer.
fn post(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let body = r#"{"a":1}"#;
    write!(stream, "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn logs_requests_as_jsonl_and_answers_by_the_script() {
    let dir = scratch("cli");
    let script = dir.join("script.json");
    std::fs::write(
        &script,
        r#"{"rules": [{"path_contains": "/fail", "reply": {"status": 503}}]}"#,
    )
    .unwrap();
    let (mut child, port) = spawn(&dir, &["--log", "jsonl", "--script", path_str(&script)]);

    let status_of = |path: &str| status(&post(port, path));
    assert_eq!(status_of("/hook"), 200);
    assert_eq!(status_of("/fail"), 503);

    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], "/hook");
    assert_eq!(first["body"], r#"{"a":1}"#);
    let second: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(second["status"], 503);

    let stderr = terminate(child);
    assert!(stderr.contains("2 requests received"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn status(answer: &str) -> u16 {
    answer.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn plays_a_remote_endpoint_that_refuses_beyond_its_capacity() {
    let dir = scratch("remote");
    // One request at a time, each answered after 2 s: of two sent together, one is refused.
    let args = ["--log", "none", "--latency-ms", "2000", "--capacity", "1"];
    let (child, port) = spawn(&dir, &[&args[..], &["--retry-after", "7"]].concat());
    let sent: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || post(port, "/hook")))
        .collect();
    let answers: Vec<String> = sent.into_iter().map(|t| t.join().unwrap()).collect();
    let mut statuses: Vec<u16> = answers.iter().map(|a| status(a)).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 429], "{answers:?}");
    let refusal = answers.iter().find(|a| status(a) == 429).unwrap();
    assert!(
        refusal.to_ascii_lowercase().contains("retry-after: 7"),
        "{refusal}"
    );
    let stderr = terminate(child);
    let summary = "2 requests received, 1 refused beyond capacity, latency p50 ";
    let p50: u64 = stderr
        .split(summary)
        .nth(1)
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{stderr}"));
    // The latency is a floor: a busy machine adds to it.
    assert!(p50 >= 2000, "{stderr}");
    assert!(stderr.contains(", 2 connections"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serves_https_with_a_ca_it_writes_out() {
    let dir = scratch("tls");
    let ca = dir.join("ca.pem");
    let (child, _) = spawn(&dir, &["--tls-ca-file", path_str(&ca), "--http2"]);
    let pem = std::fs::read_to_string(&ca).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    let stderr = terminate(child);
    assert!(
        stderr.contains("listening on https://127.0.0.1:"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn http2_needs_tls() {
    let refused = Command::new(env!("CARGO_BIN_EXE_webhook-receiver"))
        .arg("--http2")
        .output()
        .unwrap();
    assert!(!refused.status.success());
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}
