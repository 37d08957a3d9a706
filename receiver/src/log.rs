//! Per-request output for the CLI, so a user trying a config sees what the
//! connector actually sent.

use std::fmt::Write as _;
use std::io::Write as _;

use crate::RecordedRequest;

/// How the CLI prints each request to stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One `RecordedRequest` JSON object per line, for piping into `jq`.
    Jsonl,
    /// A readable block per request, body pretty-printed when it is JSON.
    Pretty,
}

/// Write errors (say, stdout piped into `head`) are ignored: the server must
/// keep answering the connector regardless of who reads the log.
pub(crate) fn print(format: LogFormat, request: &RecordedRequest) {
    let text = match format {
        LogFormat::Jsonl => match serde_json::to_string(request) {
            Ok(line) => line + "\n",
            Err(e) => format!("{{\"error\":\"cannot serialize request: {e}\"}}\n"),
        },
        LogFormat::Pretty => pretty(request),
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn pretty(r: &RecordedRequest) -> String {
    let mut s = format!("#{} {} {} -> {}\n", r.seq, r.method, r.path, r.status);
    for (name, value) in &r.headers {
        let _ = writeln!(s, "  {name}: {value}");
    }
    if let Some(valid) = r.signature_valid {
        let _ = writeln!(
            s,
            "  signature: {}",
            if valid { "valid" } else { "INVALID" }
        );
    }
    if !r.body.is_empty() {
        let body = serde_json::from_str::<serde_json::Value>(&r.body)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| r.body.clone());
        for line in body.lines() {
            let _ = writeln!(s, "  {line}");
        }
    }
    s.push('\n');
    s
}
