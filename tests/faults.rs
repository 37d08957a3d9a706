//! What each kind of answer does to a sync (spec sections 6 and 8): retries, Retry-After,
//! giving up, rejected records, redirects, bad credentials, and bad input lines.

mod common;

use std::io::Write;
use std::time::{Duration, SystemTime};

use common::*;
use serde_json::{json, Value};
use webhook_receiver::{Close, Receiver, RecordedRequest, Reply, Rule, Script};

fn requests_for_row(receiver: &Receiver, row: u64) -> Vec<RecordedRequest> {
    receiver
        .requests()
        .into_iter()
        .filter(|r| r.body.contains(&row_needle(row)))
        .collect()
}

/// One record through an endpoint answering `first`, then 200: the sync completes after
/// exactly two attempts, recorded with `statuses`; returns the run and the requests.
#[track_caller]
fn one_record_retried(first: Reply, statuses: [u16; 2]) -> (Run, Vec<RecordedRequest>) {
    let receiver = Receiver::with_script(Script::sequence(vec![first]));
    let run = write_valmi_to(&receiver, json!({}), valmi_records(1..=1).as_bytes());
    assert_eq!(run.code, Some(0), "{}", run.dump());
    let requests = receiver.requests();
    assert_eq!(
        requests.iter().map(|r| r.status).collect::<Vec<_>>(),
        statuses
    );
    (run, requests)
}

/// 503 with `Retry-After: 0`: a transient failure retried at once.
fn unavailable() -> Reply {
    Reply::status(503).with_header("Retry-After", "0")
}

/// The sum of the counts of every STATE, for checking what a STATE covers.
fn counted(state: &Value) -> u64 {
    state_data(state)["records_delivered"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum()
}

#[test]
fn a_5xx_then_2xx_delivers_the_record_once() {
    let (run, requests) = one_record_retried(Reply::status(500), [500, 200]);
    let key = requests[0].header("idempotency-key").unwrap();
    assert_eq!(requests[1].header("idempotency-key"), Some(key));
    assert_eq!(requests[0].header("webhook-id"), Some(key));
    assert_eq!(requests[1].header("webhook-id"), Some(key));
    assert_eq!(requests[0].body, requests[1].body);
    let last = *run.states().last().unwrap();
    assert_eq!(state_data(last)["finished"], true);
    assert_eq!(state_data(last)["records_delivered"], json!({"upsert": 1}));
    assert!(run.errors().is_empty(), "{}", run.dump());
}

#[test]
fn a_connection_dropped_before_the_answer_is_retried() {
    let (run, requests) =
        one_record_retried(Reply::status(200).closing(Close::BeforeResponse), [0, 200]);
    assert_eq!(
        requests[0].header("idempotency-key"),
        requests[1].header("idempotency-key")
    );
    assert_eq!(state_data(run.states().last().unwrap())["finished"], true);
}

/// An answer whose body breaks after its headers is no answer: the record is sent again with the
/// same key, and the retry LOG says the answer broke rather than that the request failed.
#[test]
fn an_answer_broken_off_mid_body_is_retried_and_said_so() {
    let broken = Reply::status(200)
        .with_body("accepted: row 1")
        .closing(Close::MidBody);
    let (run, requests) = one_record_retried(broken, [200, 200]);
    assert_eq!(
        requests[0].header("idempotency-key"),
        requests[1].header("idempotency-key")
    );
    let info = run.logs("INFO");
    assert!(
        info.iter().any(|m| m.starts_with("retrying ")
            && m.contains("(attempt 2 of 3): the connection broke while reading the answer")),
        "{info:#?}"
    );
    assert_eq!(state_data(run.states().last().unwrap())["finished"], true);
}

#[test]
fn retry_after_in_seconds_is_honoured() {
    let (run, requests) = one_record_retried(
        Reply::status(429).with_header("Retry-After", "1"),
        [429, 200],
    );
    let waited = requests[1].received_at_ms - requests[0].answered_at_ms;
    assert!(waited >= 900, "retried after {waited} ms");
    // The second attempt of three (the tests' configs allow 2 retries).
    let info = run.logs("INFO");
    assert!(
        info.iter().any(|m| m.starts_with("retrying ")
            && m.contains(" in 1.0s (attempt 2 of 3): HTTP 429 (empty body)")),
        "{info:#?}"
    );
}

#[test]
fn retry_after_as_an_http_date_is_honoured() {
    // A whole second 2..3 s ahead, so the date's one-second resolution loses nothing and the
    // wait is longer than any first backoff (at most 1 s).
    let before_start = SystemTime::now();
    let since_epoch = before_start.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    let retry_at = SystemTime::UNIX_EPOCH + Duration::from_secs(since_epoch.as_secs() + 3);
    let (_, requests) = one_record_retried(
        Reply::status(503).with_header("Retry-After", httpdate::fmt_http_date(retry_at)),
        [503, 200],
    );
    // `before_start` is no later than the receiver's clock origin, so this is an underestimate.
    let second_at = before_start + Duration::from_millis(requests[1].received_at_ms);
    assert!(
        second_at + Duration::from_millis(100) >= retry_at,
        "retried {:?} before the Retry-After date",
        retry_at.duration_since(second_at).unwrap_or_default()
    );
    let waited = requests[1].received_at_ms - requests[0].answered_at_ms;
    assert!(waited >= 1500, "retried after {waited} ms");
}

#[test]
fn a_429_pauses_the_whole_endpoint_not_one_worker() {
    // Row 1 gets 429 + Retry-After: 1. Rows 2 and 3 (other keys) are only written to stdin once
    // that answer is out, so their first attempts fall inside the pause.
    let receiver = refusing_row_1_once(1);
    let dir = Workdir::new();
    let args = valmi_args(&dir, &config(&receiver.url("/hook"), json!({})), None, None);
    let mut child = spawn(&str_args(&args));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(valmi_records(1..=1).as_bytes()).unwrap();
    stdin.flush().unwrap();
    assert!(receiver.wait_for_requests(1, Duration::from_secs(5)));
    // The receiver journals a request just before its answer is written: give the connector
    // time to read the 429.
    std::thread::sleep(Duration::from_millis(200));
    stdin.write_all(valmi_records(2..=3).as_bytes()).unwrap();
    drop(stdin);
    let run = wait(child);
    assert_eq!(run.code, Some(0), "{}", run.dump());
    let requests = receiver.requests();
    assert_eq!(requests.len(), 4, "{requests:#?}");
    let paused_at = requests[0].answered_at_ms;
    assert_eq!(requests[0].status, 429);
    for r in &requests[1..] {
        assert!(
            r.received_at_ms >= paused_at + 900,
            "row {} sent {} ms into the endpoint's 1 s pause",
            request_row(r),
            r.received_at_ms - paused_at
        );
    }
}

#[test]
fn an_attempt_that_times_out_is_retried() {
    let receiver =
        Receiver::with_script(Script::sequence(
            vec![Reply::status(200).with_delay_ms(800)],
        ));
    let run = write_valmi_to(
        &receiver,
        json!({"timeout_seconds": 0.3}),
        valmi_records(1..=1).as_bytes(),
    );
    assert_eq!(run.code, Some(0), "{}", run.dump());
    // The abandoned first attempt may never be journaled (the receiver drops a request whose
    // client hung up during the delay); the retry is.
    let answered: Vec<RecordedRequest> = receiver
        .requests()
        .into_iter()
        .filter(|r| r.status == 200 && r.answered_at_ms - r.received_at_ms < 700)
        .collect();
    assert_eq!(answered.len(), 1, "{:#?}", receiver.requests());
    assert!(
        run.elapsed >= Duration::from_millis(300),
        "{:?}",
        run.elapsed
    );
    assert_eq!(state_data(run.states().last().unwrap())["finished"], true);
    assert!(
        run.logs("INFO")
            .iter()
            .any(|m| m.contains("retrying") && m.contains("0.3s")),
        "{}",
        run.dump()
    );
}

#[test]
fn exhausted_retries_fail_the_sync_without_a_state_for_the_failed_record() {
    let receiver = receiver_answering(unavailable());
    let run = write_valmi_to(
        &receiver,
        json!({"max_retries": 2}),
        valmi_records(1..=1).as_bytes(),
    );
    assert_eq!(receiver.requests().len(), 3, "1 attempt + 2 retries");
    let message = assert_fatal_stop(&run, "transient_error");
    assert!(!message.contains('\n'), "{message}");
    assert!(message.contains(&receiver.url("/hook")), "{message}");
    assert!(run.states().is_empty(), "{}", run.dump());
}

#[test]
fn a_failing_first_record_blocks_every_state_even_when_later_ones_are_delivered() {
    let receiver = receiver_with_rule(Rule::when_body_contains(row_needle(1), unavailable()));
    let run = write_valmi_to(
        &receiver,
        json!({"max_retries": 2}),
        valmi_records(1..=4).as_bytes(),
    );
    assert_eq!(requests_for_row(&receiver, 1).len(), 3);
    assert_fatal_stop(&run, "transient_error");
    assert!(
        run.states().is_empty(),
        "a STATE while row 1 is unacknowledged: {}",
        run.dump()
    );
}

#[test]
fn a_fatal_error_keeps_the_acknowledged_prefix_and_nothing_past_it() {
    // Rows 1, 2 delivered; row 3 never; rows 4..6 delivered but after the gap.
    let receiver = receiver_with_rule(Rule::when_body_contains(
        "\"_valmi_row_num\": 3,",
        unavailable(),
    ));
    let run = write_valmi_to(
        &receiver,
        json!({"max_retries": 2}),
        valmi_messages().as_bytes(),
    );
    assert_fatal_stop(&run, "transient_error");
    let states = run.states();
    assert!(
        !states.is_empty(),
        "the prefix (rows 1, 2) was not reported: {}",
        run.dump()
    );
    for s in &states {
        assert!(counted(s) <= 2, "STATE counts the failed row: {s}");
        assert_eq!(state_data(s)["commit_state"], false, "{s}");
        assert!(state_data(s)["last_row_num"].as_u64().unwrap() <= 2, "{s}");
    }
    let last = *states.last().unwrap();
    assert_eq!(state_data(last)["records_delivered"], json!({"delete": 2}));
    assert_eq!(state_data(last)["last_row_num"], 2);
}

#[test]

fn a_fatal_error_is_reported_by_exactly_one_trace() {
    let receiver = receiver_answering(unavailable());
    let run = write_valmi_to(
        &receiver,
        json!({"max_retries": 0}),
        valmi_records(1..=1).as_bytes(),
    );
    assert_ne!(run.code, Some(0));
    assert_eq!(run.errors().len(), 1, "{}", run.dump());
}

fn rejects_row_3() -> Receiver {
    receiver_with_rule(Rule::when_body_contains(
        "\"_valmi_row_num\": 3,",
        Reply::status(400).with_body("field em is invalid"),
    ))
}

#[test]
fn a_400_rejects_the_record_and_the_sync_goes_on() {
    let receiver = rejects_row_3();
    let input = valmi_messages();
    let run = write_valmi_to(
        &receiver,
        json!({"run_time_args": {"chunk_size": 300, "records_per_metric": 10}}),
        input.as_bytes(),
    );
    assert_eq!(run.code, Some(0), "{}", run.dump());
    assert!(run.errors().is_empty(), "{}", run.dump());
    assert_eq!(receiver.requests().len(), 6, "a 400 is not retried");
    let rejected = run.rejected_records();
    assert_eq!(rejected.len(), 1, "{}", run.dump());
    let record = &rejected[0]["record"];
    assert_eq!(record["rejected"], true);
    assert_eq!(record["rejection_code"], "400");
    assert_eq!(record["metric_type"], "rejected");
    assert!(
        record["rejection_message"]
            .as_str()
            .unwrap()
            .contains("field em is invalid"),
        "{record}"
    );
    let row3 = &messages_of_type(&input, "RECORD")[2]["record"]["data"];
    assert_json_same(&record["data"], row3, "echoed data");
    let last = *run.states().last().unwrap();
    assert_eq!(state_data(last)["finished"], true);
    assert_eq!(
        state_data(last)["records_delivered"],
        json!({"delete": 2, "rejected": 1, "upsert": 3})
    );
}

#[test]
fn a_400_with_on_client_error_fail_stops_the_sync() {
    let receiver = rejects_row_3();
    let run = write_valmi_to(
        &receiver,
        json!({"on_client_error": "fail", "concurrency": 1}),
        valmi_messages().as_bytes(),
    );
    let message = assert_fatal_stop(&run, "config_error");
    assert!(message.contains("400"), "{message}");
    assert_eq!(receiver.requests().len(), 3, "nothing after the refusal");
    assert!(run.rejected_records().is_empty(), "{}", run.dump());
    for s in run.states() {
        assert!(counted(s) <= 2, "STATE counts the refused row: {s}");
    }
}

#[test]
fn a_redirect_is_not_followed_and_names_the_location() {
    let receiver = Receiver::start_default();
    let location = receiver.url("/moved/here");
    receiver.set_script(Script::sequence(vec![
        Reply::status(302).with_header("Location", location.clone())
    ]));
    let run = write_valmi_to(
        &receiver,
        json!({"concurrency": 1}),
        valmi_records(1..=3).as_bytes(),
    );
    let message = assert_fatal_stop(&run, "config_error");
    assert_eq!(receiver.requests().len(), 1, "{:#?}", receiver.requests());
    assert!(message.contains(&location), "{message}");
}

#[test]

fn a_relative_redirect_location_is_named_too() {
    let receiver = Receiver::with_script(Script::sequence(vec![
        Reply::status(301).with_header("Location", "/v2/hook")
    ]));
    let run = write_valmi_to(
        &receiver,
        json!({"concurrency": 1}),
        valmi_records(1..=1).as_bytes(),
    );
    let message = assert_fatal_stop(&run, "config_error");
    assert_eq!(receiver.requests().len(), 1);
    assert!(message.contains("/v2/hook"), "{message}");
}

#[test]
fn a_401_fails_at_once_without_leaking_the_token() {
    let token = "tok-s3cr3t-value";
    let receiver = receiver_answering(Reply::status(401).with_body(format!("bad token {token}")));
    let run = write_valmi_to(
        &receiver,
        json!({"concurrency": 1, "auth": {"type": "bearer", "token": token}}),
        valmi_records(1..=3).as_bytes(),
    );
    let message = assert_fatal_stop(&run, "config_error");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1, "a 401 is not retried and stops the sync");
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert!(message.contains("401"), "{message}");
    assert!(!run.stdout.contains(token), "{}", run.stdout);
    assert!(run.states().is_empty(), "{}", run.dump());
}

#[test]
fn a_403_fails_at_once() {
    let receiver = receiver_answering(Reply::status(403));
    let run = write_valmi_to(
        &receiver,
        json!({"concurrency": 1}),
        valmi_records(1..=3).as_bytes(),
    );
    assert_fatal_stop(&run, "config_error");
    assert_eq!(receiver.requests().len(), 1);
}

#[test]
fn malformed_input_lines_are_skipped_with_one_warn_each() {
    let receiver = Receiver::start_default();
    let mut input = Vec::new();
    input.extend_from_slice(valmi_record(1, "upsert", json!(1)).as_bytes());
    input.extend_from_slice(b"\n");
    input.extend_from_slice(b"{\"unparseable\n");
    input.extend_from_slice(valmi_record(2, "upsert", json!(2)).as_bytes());
    input.extend_from_slice(b"[1,2]\n");
    input.extend_from_slice(b"\xff\xfe{\"type\":\"RECORD\"}\n");
    input
        .extend_from_slice(b"{\"type\":\"LOG\",\"log\":{\"level\":\"INFO\",\"message\":\"hi\"}}\n");
    input.extend_from_slice(
        b"{\"type\":\"TRACE\",\"trace\":{\"type\":\"STREAM_STATUS\",\"emitted_at\":1}}\n",
    );
    input.extend_from_slice(valmi_record(3, "upsert", json!(3)).as_bytes());
    let run = write_valmi_to(
        &receiver,
        json!({"run_time_args": {"chunk_size": 300, "records_per_metric": 10}}),
        &input,
    );
    assert_eq!(run.code, Some(0), "{}", run.dump());
    let mut rows: Vec<u64> = receiver.requests().iter().map(request_row).collect();
    rows.sort();
    assert_eq!(rows, [1, 2, 3]);
    let warns = run.logs("WARN");
    assert_eq!(warns.len(), 4, "{warns:#?}");
    assert!(
        warns.iter().any(|w| w.contains("unparseable")),
        "{warns:#?}"
    );
    assert!(warns.iter().any(|w| w.contains("[1,2]")), "{warns:#?}");
    assert!(warns.iter().any(|w| w.contains("UTF-8")), "{warns:#?}");
    let last = *run.states().last().unwrap();
    assert_eq!(state_data(last)["records_delivered"], json!({"upsert": 3}));
    assert_eq!(state_data(last)["finished"], true);
    // Input LOG/TRACE messages are consumed, not passed through.
    assert!(run.traces().is_empty(), "{}", run.dump());
    assert!(
        !run.logs("INFO").iter().any(|m| m == "hi"),
        "{}",
        run.dump()
    );
}

#[test]
fn a_long_malformed_line_is_quoted_cut_short() {
    let receiver = Receiver::start_default();
    let mut input = "x".repeat(5000).into_bytes();
    input.push(b'\n');
    input.extend_from_slice(valmi_records(1..=1).as_bytes());
    let run = write_valmi_to(&receiver, json!({}), &input);
    assert_eq!(run.code, Some(0), "{}", run.dump());
    assert_eq!(receiver.requests().len(), 1);
    let warns = run.logs("WARN");
    assert_eq!(warns.len(), 1, "{warns:#?}");
    let quoted = warns[0]
        .split(|c| c != 'x')
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(
        (1..=200).contains(&quoted),
        "{quoted} bytes quoted: {}",
        warns[0]
    );
}

/// stdin that cannot be read (here a directory: read fails with EISDIR) is not the end of the
/// input: the run fails instead of claiming a finished sync.
#[test]
fn an_unreadable_stdin_fails_the_sync_instead_of_finishing_it() {
    let receiver = Receiver::start_default();
    let dir = Workdir::new();
    let args = valmi_args(&dir, &config(&receiver.url("/hook"), json!({})), None, None);
    let child = std::process::Command::new(BIN)
        .args(&args)
        .stdin(std::fs::File::open(dir.dir.path()).unwrap())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let run = wait(child);
    let message = assert_fatal_stop(&run, "system_error");
    assert!(message.contains("could not read stdin"), "{message}");
    assert!(run.never_finished(), "{}", run.dump());
}
