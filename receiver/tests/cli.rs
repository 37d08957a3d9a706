//! The `webhook-receiver` binary as a user runs it: it finds a free port, writes it to the port
//! file, logs each request as JSONL, answers by the script, and stops on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn logs_requests_as_jsonl_and_answers_by_the_script() {
    let dir = std::env::temp_dir().join(format!("webhook-receiver-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port_file = dir.join("port");
    let script = dir.join("script.json");
    std::fs::write(
        &script,
        r#"{"rules": [{"path_contains": "/fail", "reply": {"status": 503}}]}"#,
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_webhook-receiver"))
        .args(["--port", "0", "--log", "jsonl", "--port-file"])
        .arg(&port_file)
        .arg("--script")
        .arg(&script)
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

    let status_of = |path: &str| {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let body = r#"{"a":1}"#;
        write!(stream, "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u16>()
            .unwrap()
    };
    assert_eq!(status_of("/hook"), 200);
    assert_eq!(status_of("/fail"), 503);

    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], "/hook");
    assert_eq!(first["body"], r#"{"a":1}"#);
    let second: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(second["status"], 503);

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
    assert!(stderr.contains("2 requests received"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
