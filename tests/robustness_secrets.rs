//! Issue 15, the secrets and config items: stdout's protocol JSON is never rewritten by the
//! secret scrubber, no config crashes the connector, framing headers cannot be configured,
//! tokens in the URL's query stay hidden, and `check` takes the same route (proxy) as `write`.
//! Every test runs the binary against a receiver on 127.0.0.1.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use webhook_receiver::Receiver;

/// The one CONNECTION_STATUS of a `check` run, as (status, message); nothing else printed.
#[track_caller]
fn status_of(run: &Run) -> (String, String) {
    assert_eq!(run.code, Some(0), "{}", run.dump());
    assert_eq!(run.messages.len(), 1, "{}", run.dump());
    let status = &run.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    (
        status["status"].as_str().unwrap().to_string(),
        status["message"].as_str().unwrap_or_default().to_string(),
    )
}

/// `check` answers FAILED naming `needle`, and `write` (with no input at all) stops with a
/// `config_error` naming it too; nothing reaches the receiver.
#[track_caller]
fn assert_config_refused(receiver: &Receiver, config: &Value, needle: &str) {
    let (status, message) = status_of(&run_check(config));
    assert_eq!(status, "FAILED", "{message}");
    assert!(message.contains(needle), "check: {message}");
    let written = write_valmi(config, b"");
    let message = assert_fatal(&written, "config_error");
    assert!(message.contains(needle), "write: {message}");
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(receiver.request_count(), 0, "a request was sent");
}

// ---------------------------------------------------------------------------------------------
// Item 3: a huge run_time_args.http_timeout

#[test]
fn a_huge_http_timeout_is_a_config_error_not_a_crash() {
    let receiver = Receiver::start_default();
    for http_timeout in ["1e19", "1e20", "1e400"] {
        let config: Value = serde_json::from_str(&format!(
            r#"{{"url": "{}", "run_time_args": {{"http_timeout": {http_timeout}}}}}"#,
            receiver.url("/hook")
        ))
        .unwrap();
        assert_config_refused(&receiver, &config, "run_time_args.http_timeout");
    }
}

// ---------------------------------------------------------------------------------------------
// Item 5: framing and hop-by-hop headers

#[test]
fn framing_and_hop_by_hop_headers_are_config_errors() {
    let receiver = Receiver::start_default();
    for name in [
        "Content-Length",
        "Transfer-Encoding",
        "Host",
        "Connection",
        "Upgrade",
        "TE",
        "Trailer",
        "Keep-Alive",
    ] {
        let config = config(
            &receiver.url("/hook"),
            json!({"headers": [format!("{name}: 5")]}),
        );
        assert_config_refused(&receiver, &config, name);
        let config = config_with_api_key_header(&receiver, name);
        assert_config_refused(&receiver, &config, name);
    }
}

fn config_with_api_key_header(receiver: &Receiver, name: &str) -> Value {
    config(
        &receiver.url("/hook"),
        json!({"auth": {"type": "api_key", "header_name": name, "api_key": "k-123"}}),
    )
}
