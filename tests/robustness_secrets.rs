//! Issue 15, the secrets and config items: stdout's protocol JSON is never rewritten by the
//! secret scrubber, no config crashes the connector, framing headers cannot be configured,
//! tokens in the URL's query stay hidden, and `check` takes the same route (proxy) as `write`.
//! Every test runs the binary against a receiver on 127.0.0.1.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use webhook_receiver::{Receiver, Reply, Rule, Script};

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

// ---------------------------------------------------------------------------------------------
// Item 1: the scrubber never rewrites protocol JSON

/// The STATE lines and rejected-RECORD data of a run, as printed, for comparing two runs.
fn protocol_lines(run: &Run) -> Vec<String> {
    run.stdout
        .lines()
        .filter(|l| l.starts_with(r#"{"type":"STATE""#))
        .map(String::from)
        .chain(
            run.rejected_records()
                .iter()
                .map(|r| r["record"]["data"].to_string()),
        )
        .collect()
}

/// Secrets that are also words and numbers of the protocol: `true` (every Valmi STATE's
/// `commit_metric`), `upsert` (the counts' key), `1234` (a row number), as a bearer token and
/// credential-like header values. A refused row is echoed with its data as it came.
#[test]
fn valmi_states_and_echoed_data_are_never_scrubbed() {
    let receiver = receiver_with_rule(Rule::when_body_contains(
        row_needle(1234),
        Reply::status(422).with_body("row upsert 1234 refused, token true"),
    ));
    // Rows from 1, since last_row_num only covers rows with none missing before them.
    let input = valmi_records(1..=1238);
    let cadence = json!({"chunk_size": 1234, "records_per_metric": 617});
    let plain = write_valmi_to(
        &receiver,
        json!({"run_time_args": cadence}),
        input.as_bytes(),
    );
    let with_secrets = write_valmi_to(
        &receiver,
        json!({"auth": {"type": "bearer", "token": "true"},
               "headers": ["X-Api-Key: upsert", "X-Auth-Token: 1234"],
               "run_time_args": cadence}),
        input.as_bytes(),
    );
    assert_completed(&with_secrets);
    assert_eq!(plain.states().len(), 3, "{}", plain.dump());
    assert!(
        plain.stdout.contains(r#""last_row_num":1234"#),
        "{}",
        plain.dump()
    );
    assert_eq!(protocol_lines(&with_secrets), protocol_lines(&plain));
    let rejected = with_secrets.rejected_records();
    assert_eq!(rejected.len(), 1, "{}", with_secrets.dump());
    let reason = rejected[0]["record"]["rejection_message"].as_str().unwrap();
    assert!(
        !reason.contains("true") && !reason.contains("1234") && reason.contains("<redacted>"),
        "the reason quoting the answer is still scrubbed: {reason}"
    );
}

/// An api key `2024` and an Airbyte cursor `"2024-05-01T00:00:00Z"`: the STATE is echoed as it
/// came (plus `destinationStats`).
#[test]
fn airbyte_states_are_echoed_unchanged_whatever_the_secrets() {
    let receiver = Receiver::start_default();
    let catalog = exchange_rate_catalog();
    let stream = catalog["streams"][0]["stream"]["name"].clone();
    let record = json!({"type": "RECORD", "record": {"stream": stream, "data": {"date": "2024-05-01"}, "emitted_at": 1}});
    let state = json!({"type": "STATE", "state": {"type": "STREAM", "stream": {
        "stream_descriptor": {"name": stream}, "stream_state": {"cursor": "2024-05-01T00:00:00Z"}}}});
    let input = format!("{record}\n{state}\n");
    let config = config(
        &receiver.url("/hook"),
        json!({"auth": {"type": "api_key", "header_name": "X-Api-Key", "api_key": "2024"}}),
    );
    let run = write_airbyte(&config, &catalog, input.as_bytes());
    assert_completed(&run);
    let mut expected = state.clone();
    expected["state"]["destinationStats"] = json!({"recordCount": 1.0, "rejectedRecordCount": 0.0});
    assert_eq!(run.states(), [&expected], "{}", run.dump());
}

// ---------------------------------------------------------------------------------------------
// Item 9: tokens in the URL's query, and secrets echoed JSON-escaped or percent-encoded

/// Distinct pieces of each secret: whichever way a secret is printed (as is, `\/` for `/`,
/// `%2F`, `%2f`), these pieces of it show.
const SECRET_PIECES: [&str; 4] = ["qT0kenAA", "ZZq9Wxyz", "bEarer11", "bbQ7yy"];

/// A config with a token in the URL's query (`/` and `+` percent-encoded, as a URL must carry
/// them) and a bearer token with a `/`.
fn config_with_query_token(receiver: &Receiver, extra: Value) -> Value {
    let url = receiver.url("/hook?x=1&token=qT0kenAA%2FZZq9Wxyz");
    let auth = json!({"auth": {"type": "bearer", "token": "bEarer11/bbQ7yy"}});
    overlay(config(&url, auth), &extra)
}

/// What an endpoint that echoes the request in JSON (PHP escapes `/`) and in URLs sends back.
fn echo_reply(status: u16) -> Reply {
    Reply::status(status).with_body(
        r#"{"auth":"Bearer bEarer11\/bbQ7yy","q":"token=qT0kenAA\/ZZq9Wxyz","u":"qT0kenAA%2FZZq9Wxyz","p":"bEarer11%2FbbQ7yy","l":"bEarer11%2fbbQ7yy"}"#,
    )
}

#[track_caller]
fn assert_no_secret_piece(run: &Run) {
    for piece in SECRET_PIECES {
        assert!(!run.stdout.contains(piece), "{piece}: {}", run.dump());
        assert!(!run.stderr.contains(piece), "{piece}: {}", run.dump());
    }
}

#[test]
fn a_query_token_and_encoded_echoes_of_secrets_are_never_printed() {
    let receiver = Receiver::with_script(Script {
        rules: vec![
            Rule::when_body_contains(row_needle(1), echo_reply(500)).times(1),
            Rule::when_body_contains(row_needle(2), echo_reply(400)),
        ],
        ..Script::default()
    });
    let run = write_valmi(
        &config_with_query_token(&receiver, json!({})),
        valmi_records(1..=2).as_bytes(),
    );
    assert_completed(&run);
    assert_no_secret_piece(&run);
    let infos = run.logs("INFO");
    assert!(
        infos[0].contains("/hook?x=1&token=<redacted> "),
        "the start line shows the query, its token redacted: {}",
        infos[0]
    );
    assert!(
        infos
            .iter()
            .any(|l| l.starts_with("retrying") && l.contains("<redacted>")),
        "{}",
        run.dump()
    );
    let rejected = run.rejected_records();
    assert_eq!(rejected.len(), 1, "{}", run.dump());
    assert!(
        rejected[0]["record"]["rejection_message"]
            .as_str()
            .unwrap()
            .contains("<redacted>"),
        "{}",
        run.dump()
    );
}

#[test]
fn a_trace_names_the_url_without_its_query_token() {
    let receiver = receiver_answering(echo_reply(500));
    let run = write_valmi(
        &config_with_query_token(&receiver, json!({"max_retries": 1})),
        valmi_records(1..=1).as_bytes(),
    );
    let message = assert_fatal(&run, "transient_error");
    assert!(message.contains("/hook?x=1&token=<redacted>"), "{message}");
    assert_no_secret_piece(&run);
}

// ---------------------------------------------------------------------------------------------
// Item 11: `check` takes `write`'s route through a proxy

/// Proxy credentials, which no message may show.
const PROXY_PASSWORD: &str = "pr0xyPw-S3cr3t";

#[track_caller]
fn assert_no_proxy_credentials(run: &Run) {
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains(PROXY_PASSWORD), "{}", run.dump());
        assert!(!text.contains("puser"), "{}", run.dump());
    }
}

#[test]
fn behind_a_dead_proxy_check_and_write_both_fail_naming_the_proxy() {
    let receiver = Receiver::start_default();
    let port = closed_port();
    let proxy = format!("http://puser:{PROXY_PASSWORD}@127.0.0.1:{port}");
    let env = proxy_env(&proxy);
    let config = config(&receiver.url("/hook"), json!({"max_retries": 0}));
    let named = format!("proxy http://127.0.0.1:{port}");

    let checked = check_env(&config, &env);
    let (status, message) = status_of(&checked);
    assert_eq!(
        status, "FAILED",
        "check took another route than write: {message}"
    );
    assert!(
        message.contains(&named) && message.contains("refused"),
        "{message}"
    );
    assert_no_proxy_credentials(&checked);

    let dir = Workdir::new();
    let args = valmi_args(&dir, &config, None, None);
    let written = run_env(&str_args(&args), valmi_records(1..=1).as_bytes(), &env);
    let message = assert_fatal(&written, "transient_error");
    assert!(message.contains(&named), "{message}");
    assert_no_proxy_credentials(&written);
    assert_eq!(receiver.request_count(), 0);
}

#[test]
fn behind_a_live_proxy_check_reaches_the_proxy_not_the_endpoint() {
    // The receiver stands in for the proxy; nothing listens at the endpoint itself, which `write`
    // never connects to either (operator::requests_go_through_the_proxy_that_http_proxy_names).
    let proxy = Receiver::start_default();
    let config = config(
        &format!("http://127.0.0.1:{}/hook", closed_port()),
        json!({}),
    );
    let (status, message) = status_of(&check_env(&config, &proxy_env(&proxy.url(""))));
    assert_eq!(status, "SUCCEEDED", "{message}");
    assert!(
        message.contains(&format!("proxy http://{}", proxy.addr())),
        "{message}"
    );
    assert_eq!(proxy.request_count(), 0, "check sends no request");
}

#[test]
fn an_https_check_goes_through_the_proxys_tunnel() {
    // Refused: the proxy is named as what failed.
    let endpoint = Receiver::start_default();
    let target = endpoint.addr().to_string();
    let config = config(&format!("https://{target}/hook"), json!({}));
    let (port, heads) = connect_proxy(403);
    let proxy = format!("http://puser:{PROXY_PASSWORD}@127.0.0.1:{port}");
    let checked = check_env(&config, &proxy_env(&proxy));
    let (status, message) = status_of(&checked);
    assert_eq!(status, "FAILED", "{message}");
    assert!(
        message.contains(&format!(
            "the proxy http://127.0.0.1:{port} refused a tunnel to {target}"
        )),
        "{message}"
    );
    assert_no_proxy_credentials(&checked);
    let head = heads.lock().unwrap()[0].clone();
    assert!(
        head.starts_with(&format!("CONNECT {target} HTTP/1.1\r\n")),
        "{head}"
    );
    assert!(head.contains("Proxy-Authorization: Basic "), "{head}");

    // Opened: the TLS handshake runs through the tunnel and meets the endpoint (plain http here,
    // so it fails as TLS, not as the proxy).
    let (port, heads) = connect_proxy(200);
    let (status, message) = status_of(&check_env(
        &config,
        &proxy_env(&format!("http://127.0.0.1:{port}")),
    ));
    assert_eq!(status, "FAILED", "{message}");
    assert!(
        message.contains("TLS") && !message.contains("proxy"),
        "{message}"
    );
    assert_eq!(heads.lock().unwrap().len(), 1);
    assert_eq!(endpoint.request_count(), 0, "check sends no request");
}

/// A dry run by GET shows the endpoint's query token redacted, and the record's own parameters
/// (record data, whatever their names) as they would be sent.
#[test]
fn a_get_dry_run_redacts_the_endpoints_token_not_the_records_fields() {
    let receiver = Receiver::start_default();
    let config = config_with_query_token(&receiver, json!({"method": "GET"}));
    let catalog = exchange_rate_catalog();
    let stream = catalog["streams"][0]["stream"]["name"].clone();
    let record = json!({"type": "RECORD", "record": {"stream": stream, "emitted_at": 1,
        "data": {"session_key": "visible-data"}}});
    let dir = Workdir::new();
    let (config_path, catalog_path) = (
        dir.write_json("config.json", &config),
        dir.write_json("catalog.json", &catalog),
    );
    let mut args = write_args(&config_path, &catalog_path, None, None);
    args.push("--dry-run".into());
    let run = run(&str_args(&args), format!("{record}\n").as_bytes());
    assert_completed(&run);
    assert_no_secret_piece(&run);
    let shown = run
        .logs("INFO")
        .into_iter()
        .find(|l| l.starts_with("dry run: GET"));
    let shown = shown.expect("a dry-run line");
    assert!(shown.contains("/hook?x=1&token=<redacted>&"), "{shown}");
    assert!(shown.contains("session_key=visible-data"), "{shown}");
    assert_eq!(receiver.request_count(), 0);
}
