//! `write` in the Valmi dialect against a recording receiver: the wire format compared with what
//! the original Python connector sent (tests/fixtures/valmi/observed), STATE cadence, resume,
//! per-key ordering and batching.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{json, Value};
use webhook_receiver::{Receiver, RecordedRequest, Reply, Rule};

/// `config_post.json` / `config_get.json` pointed at `receiver` (same path and query).
fn observed_config(name: &str, receiver: &Receiver, extra: Value) -> Value {
    let mut config = fixture_json(&format!("valmi/observed/{name}"));
    assert_eq!(
        config["url"], "http://127.0.0.1:18081/hook?x=1",
        "fixture changed"
    );
    config["url"] = json!(receiver.url("/hook?x=1"));
    overlay(config, &extra)
}

/// The six observed input records written with `config`; the run must exit 0.
#[track_caller]
fn write_observed_input(config: &Value) -> Run {
    let run = write_valmi(config, valmi_messages().as_bytes());
    assert_eq!(run.code, Some(0), "{}", run.dump());
    run
}

fn message_id(request: &RecordedRequest) -> u64 {
    request.json()["_message_id"].as_u64().unwrap()
}

fn check_post_requests_match_capture(received: &[RecordedRequest]) {
    let captured = jsonl(&read_fixture("valmi/observed/captured_post_requests.jsonl"));
    assert_eq!(received.len(), captured.len(), "request count");
    for (got, want) in received.iter().zip(&captured) {
        let context = format!("request {}", want["body"]);
        assert_eq!(got.method, want["method"].as_str().unwrap(), "{context}");
        assert_eq!(got.path, want["path"].as_str().unwrap(), "{context}");
        let want_body: Value = serde_json::from_str(want["body"].as_str().unwrap()).unwrap();
        assert_json_same(&got.json(), &want_body, &context);
        // The original truncated "Bearer abc:def" to "Bearer abc" (split on every colon).
        assert_eq!(
            got.header("authorization"),
            Some("Bearer abc:def"),
            "{context}"
        );
        assert_eq!(got.header("x-test"), Some("spaced"), "{context}");
        assert_eq!(
            got.header("content-type"),
            Some("application/json"),
            "{context}"
        );
        let agent = got.header("user-agent").unwrap_or_default();
        assert!(agent.starts_with("destination-webhook/"), "{agent}");
        assert!(got.header("idempotency-key").is_some(), "{context}");
    }
}

#[test]
fn golden_post_in_input_order_with_concurrency_1() {
    let receiver = Receiver::start_default();
    let config = observed_config("config_post.json", &receiver, json!({"concurrency": 1}));
    write_observed_input(&config);
    check_post_requests_match_capture(&receiver.requests());
}

#[test]
fn golden_post_with_default_concurrency() {
    let receiver = Receiver::start_default();
    let config = observed_config("config_post.json", &receiver, json!({}));
    assert!(config.get("concurrency").is_none());
    write_observed_input(&config);
    let mut requests = receiver.requests();
    requests.sort_by_key(message_id);
    check_post_requests_match_capture(&requests);
}

fn query_pairs(path: &str) -> (String, Vec<(String, String)>) {
    let (base, query) = path.split_once('?').expect("a query string");
    let pairs = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    (base.to_string(), pairs)
}

#[test]
fn golden_get_query_parameters() {
    let receiver = Receiver::start_default();
    let config = observed_config("config_get.json", &receiver, json!({}));
    write_observed_input(&config);
    let captured = jsonl(&read_fixture("valmi/observed/captured_get_requests.jsonl"));
    let mut received: Vec<(String, Vec<(String, String)>)> = receiver
        .requests()
        .iter()
        .map(|r| {
            assert_eq!(r.method, "GET");
            assert_eq!(r.body, "", "GET carries no body");
            query_pairs(&r.path)
        })
        .collect();
    let id_of = |pairs: &[(String, String)]| -> u64 {
        pairs
            .iter()
            .find(|(k, _)| k == "_message_id")
            .map(|(_, v)| v.parse().unwrap())
            .expect("_message_id parameter")
    };
    received.sort_by_key(|(_, pairs)| id_of(pairs));
    assert_eq!(received.len(), captured.len(), "request count");
    for ((base, pairs), want) in received.iter().zip(&captured) {
        let (want_base, want_pairs) = query_pairs(want["path"].as_str().unwrap());
        assert_eq!(base, &want_base);
        assert_eq!(pairs, &want_pairs, "parameters of {}", want["path"]);
    }
}

fn without_last_row(state: &Value) -> Value {
    let mut state = state.clone();
    state["state"]["data"]
        .as_object_mut()
        .unwrap()
        .remove("last_row_num");
    state
}

#[test]
fn state_cadence_matches_the_original() {
    let receiver = Receiver::start_default();
    let config = config(&receiver.url("/hook"), json!({}));
    let run = write_valmi(
        &config,
        read_fixture("valmi/observed/messages8.jsonl").as_bytes(),
    );
    assert_eq!(run.code, Some(0), "{}", run.dump());
    assert_eq!(receiver.requests().len(), 8);
    let golden = jsonl(&read_fixture(
        "valmi/observed/states_8records_chunk4_rpm2.jsonl",
    ));
    let states = run.states();
    let last_rows: Vec<Value> = states
        .iter()
        .map(|s| state_data(s)["last_row_num"].clone())
        .collect();
    assert_eq!(
        last_rows,
        [2, 4, 6, 8, 8].map(|n| json!(n)),
        "{}",
        run.dump()
    );
    let stripped: Vec<Value> = states.iter().map(|s| without_last_row(s)).collect();
    assert_eq!(stripped.len(), golden.len(), "{}", run.dump());
    for (got, want) in stripped.iter().zip(&golden) {
        assert_json_same(got, want, "STATE");
    }
    // Delivered records are not echoed.
    assert!(run.of_type("RECORD").is_empty(), "{}", run.dump());
}

#[test]
fn resume_chunk_id_from_every_checkpoint_shape() {
    let shapes = [
        fixture_json("valmi/observed/state_new.json"),
        json!({"type": "STREAM", "data": {"chunk_id": 5}}),
        json!({"type": "STATE", "state": {"type": "STREAM", "data": {"chunk_id": 5}}}),
    ];
    assert_eq!(shapes[0], json!({"_valmi_meta": {"chunk_id": 5}}));
    for state in &shapes {
        let receiver = Receiver::start_default();
        let config = config(&receiver.url("/hook"), json!({}));
        let run = write_valmi_with(&config, None, Some(state), valmi_messages().as_bytes());
        assert_eq!(run.code, Some(0), "{state}: {}", run.dump());
        let states = run.states();
        assert!(!states.is_empty(), "{}", run.dump());
        assert_eq!(
            state_data(states[0])["chunk_id"],
            6,
            "{state}: {}",
            run.dump()
        );
        // No last_row_num in the checkpoint: nothing is skipped.
        assert_eq!(receiver.requests().len(), 6, "{state}");
    }
}

#[test]
fn resume_skips_rows_the_checkpoint_covers_and_keeps_idempotency_keys() {
    let input = read_fixture("valmi/observed/messages8.jsonl");
    let extra =
        json!({"run_time_args": {"chunk_size": 4, "records_per_metric": 2, "run_id": "run-42"}});

    let first = Receiver::start_default();
    let run = write_valmi_to(&first, extra.clone(), input.as_bytes());
    assert_eq!(run.code, Some(0), "{}", run.dump());
    let resume_logs = |run: &Run| {
        run.logs("INFO")
            .into_iter()
            .filter(|m| m.starts_with("resume: skipped"))
            .count()
    };
    assert_eq!(
        resume_logs(&run),
        0,
        "nothing skipped, nothing said: {}",
        run.dump()
    );
    let progress = run
        .logs("INFO")
        .into_iter()
        .filter(|m| m.starts_with("progress: "));
    assert_eq!(
        progress.count(),
        0,
        "the first progress LOG is due after 10 s"
    );
    let full_keys = idempotency_keys(&first.requests(), request_row);
    assert_eq!(full_keys.len(), 8);
    let distinct: std::collections::HashSet<_> = full_keys.values().collect();
    assert_eq!(distinct.len(), 8, "every row has its own key");

    let second = Receiver::start_default();
    let checkpoint = json!({"type": "STREAM", "data": {"chunk_id": 1, "last_row_num": 4}});
    let run = write_valmi_with(
        &config(&second.url("/hook"), extra),
        None,
        Some(&checkpoint),
        input.as_bytes(),
    );
    assert_eq!(run.code, Some(0), "{}", run.dump());
    let requests = second.requests();
    let resumed_keys = idempotency_keys(&requests, request_row);
    assert_eq!(
        resumed_keys.keys().copied().collect::<Vec<_>>(),
        [5, 6, 7, 8],
        "{}",
        run.dump()
    );
    for (row, key) in &resumed_keys {
        assert_eq!(key, &full_keys[row], "idempotency key of row {row}");
    }
    // _message_id counts skipped records too.
    for r in &requests {
        assert_eq!(r.json()["_message_id"].as_u64(), Some(request_row(r)));
    }
    assert_eq!(resume_logs(&run), 1, "{}", run.dump());
    assert!(run
        .logs("INFO")
        .iter()
        .any(|m| m.starts_with("resume: skipped 4 records")));

    // Skipped rows are in no chunk: chunk 2 holds rows 5..8, and the final STATE opens chunk 3.
    let summary: Vec<(Value, Value, Value, Value)> = run
        .states()
        .iter()
        .map(|s| {
            let d = state_data(s);
            (
                d["chunk_id"].clone(),
                d["records_delivered"].clone(),
                d["commit_state"].clone(),
                d["last_row_num"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (json!(2), json!({"upsert": 2}), json!(false), json!(6)),
            (
                json!(2),
                json!({"upsert": 2, "delete": 2}),
                json!(true),
                json!(8)
            ),
            (json!(3), json!({}), json!(true), json!(8)),
        ],
        "{}",
        run.dump()
    );
}

/// A row out of order gets a key of its own; the rows around it keep the keys they have in an
/// ordered run (a receiver de-duplicating by key sees the same rows as the same).
#[test]
fn only_a_row_out_of_order_changes_its_key() {
    let keys = |rows: &[u64]| {
        let receiver = Receiver::start_default();
        let input: String = rows
            .iter()
            .map(|row| valmi_record(*row, "upsert", json!(row)))
            .collect();
        let run = write_valmi_to(&receiver, json!({}), input.as_bytes());
        assert_eq!(run.code, Some(0), "{}", run.dump());
        idempotency_keys(&receiver.requests(), request_row)
    };
    let ordered = keys(&[1, 2, 3]);
    let shuffled = keys(&[1, 3, 2]);
    assert_eq!(ordered[&1], shuffled[&1]);
    assert_eq!(ordered[&3], shuffled[&3]);
    assert_ne!(ordered[&2], shuffled[&2], "row 2 came after row 3");
}

#[test]
fn same_key_records_are_never_in_flight_together() {
    // Row 1 (delete id=1) is held 400 ms; row 2 (upsert id=1) must wait for it, row 3 (id=2)
    // must not.
    let receiver = receiver_with_rule(Rule::when_body_contains(
        row_needle(1),
        Reply::status(200).with_delay_ms(400),
    ));
    let input = [
        valmi_record(1, "delete", json!(1)),
        valmi_record(2, "upsert", json!(1)),
        valmi_record(3, "upsert", json!(2)),
    ]
    .concat();
    let run = write_valmi_to(&receiver, json!({}), input.as_bytes());
    assert_eq!(run.code, Some(0), "{}", run.dump());
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);
    let by_row: BTreeMap<u64, &RecordedRequest> =
        requests.iter().map(|r| (request_row(r), r)).collect();
    let (r1, r2, r3) = (by_row[&1], by_row[&2], by_row[&3]);
    assert!(
        r2.received_at_ms >= r1.answered_at_ms,
        "the upsert of id=1 overtook its delete: {r1:?} {r2:?}"
    );
    assert!(
        r3.received_at_ms < r1.answered_at_ms,
        "id=2 waited for id=1: no concurrency ({r1:?} {r3:?})"
    );
}

#[test]
fn records_go_on_past_a_slow_request() {
    // The loop takes little input ahead of what it sends, but the window's room is still there
    // for the records after a slow one: all of them go out while row 1 is held.
    let receiver = receiver_with_rule(Rule::when_body_contains(
        row_needle(1),
        Reply::status(200).with_delay_ms(3_000),
    ));
    let input = valmi_records(1..=500);
    let run = write_valmi_to(
        &receiver,
        json!({"concurrency": 8, "timeout_seconds": 30}),
        input.as_bytes(),
    );
    assert_eq!(run.code, Some(0), "{}", run.dump());
    let requests = receiver.requests();
    assert_eq!(requests.len(), 500);
    let held = requests
        .iter()
        .find(|r| request_row(r) == 1)
        .expect("row 1 was sent");
    let waited: Vec<u64> = requests
        .iter()
        .filter(|r| r.received_at_ms >= held.answered_at_ms)
        .map(request_row)
        .collect();
    assert!(
        waited.is_empty(),
        "{} rows waited for row 1's answer, e.g. {:?}",
        waited.len(),
        &waited[..waited.len().min(5)]
    );
}

/// Five records of a stream without an id key, in destination sync mode `mode`, to an
/// endpoint answering in 60 ms; the requests as received.
fn keyless_requests(mode: &str) -> Vec<RecordedRequest> {
    let receiver = receiver_answering(Reply::status(200).with_delay_ms(60));
    let mut source = fixture_json(VALMI_SOURCE_CATALOG);
    source["streams"][0]
        .as_object_mut()
        .unwrap()
        .remove("id_key")
        .expect("the fixture has an id_key");
    let mut destination = fixture_json(VALMI_DEST_CATALOG);
    destination["sinks"][0]["destination_sync_mode"] = json!(mode);
    let dir = Workdir::new();
    let args = write_args(
        &dir.write_json("config.json", &config(&receiver.url("/hook"), json!({}))),
        &dir.write_json("source.json", &source),
        Some(&dir.write_json("destination.json", &destination)),
        None,
    );
    let run = run(&str_args(&args), valmi_records(1..=5).as_bytes());
    assert_eq!(run.code, Some(0), "{}", run.dump());
    let requests = receiver.requests();
    assert_eq!(requests.len(), 5);
    requests
}

#[test]
fn mirror_without_id_key_sends_one_record_at_a_time() {
    let requests = keyless_requests("mirror");
    for pair in requests.windows(2) {
        assert!(
            pair[1].received_at_ms >= pair[0].answered_at_ms,
            "requests overlap: {:?} / {:?}",
            pair[0],
            pair[1]
        );
    }
    let rows: Vec<u64> = requests.iter().map(request_row).collect();
    assert_eq!(rows, [1, 2, 3, 4, 5]);
}

/// Without an id key only a mode that changes rows needs one record at a time: `append` only
/// adds rows, so its records go concurrently.
#[test]
fn append_without_id_key_sends_concurrently() {
    let requests = keyless_requests("append");
    assert!(
        requests
            .windows(2)
            .any(|pair| pair[1].received_at_ms < pair[0].answered_at_ms),
        "one at a time: {requests:#?}"
    );
}

#[test]
fn record_without_valmi_meta_is_rejected_and_not_sent() {
    let receiver = Receiver::start_default();
    let bad_data = json!({"id": 7, "email": "nometa@x.io"});
    let bad =
        json!({"type": "RECORD", "record": {"stream": "s", "data": bad_data, "emitted_at": 1}});
    let input = format!(
        "{}{}\n{}",
        valmi_record(1, "upsert", json!(1)),
        bad,
        valmi_record(3, "upsert", json!(3))
    );
    let run = write_valmi_to(
        &receiver,
        json!({"run_time_args": {"chunk_size": 300, "records_per_metric": 10}}),
        input.as_bytes(),
    );
    assert_eq!(run.code, Some(0), "{}", run.dump());
    let requests = receiver.requests();
    let mut rows: Vec<u64> = requests.iter().map(request_row).collect();
    rows.sort();
    assert_eq!(rows, [1, 3], "the record without _valmi_meta was sent");
    assert!(requests.iter().all(|r| !r.body.contains("nometa")));
    let rejected = run.rejected_records();
    assert_eq!(rejected.len(), 1, "{}", run.dump());
    assert_eq!(rejected[0]["record"]["data"], bad_data);
    assert_eq!(rejected[0]["record"]["metric_type"], "rejected");
    assert!(rejected[0]["record"]["rejection_message"]
        .as_str()
        .unwrap()
        .contains("_valmi_meta"));
    let last = *run.states().last().unwrap();
    assert_eq!(
        state_data(last)["records_delivered"],
        json!({"upsert": 2, "rejected": 1})
    );
    assert_eq!(state_data(last)["finished"], true);
}

/// Rows 1..=7 written to `receiver` with `extra` config (which sets a `batch_size`); the run
/// must exit 0.
#[track_caller]
fn write_seven_batched(receiver: &Receiver, extra: Value) -> Run {
    let run = write_valmi_to(receiver, extra, valmi_records(1..=7).as_bytes());
    assert_eq!(run.code, Some(0), "{}", run.dump());
    run
}

/// Every request body as the list of rows it carries; a body that is a single object counts as
/// a batch of one.
fn batches(receiver: &Receiver) -> Vec<Vec<u64>> {
    receiver
        .requests()
        .iter()
        .filter(|r| (200..300).contains(&r.status))
        .map(|r| body_rows(&r.json()))
        .collect()
}

#[test]
fn batches_carry_records_in_input_order() {
    let receiver = Receiver::start_default();
    let run = write_seven_batched(&receiver, json!({"batch_size": 3}));
    let batches = batches(&receiver);
    assert!(batches.iter().all(|b| b.len() <= 3), "{batches:?}");
    assert!(
        batches.iter().any(|b| b.len() > 1),
        "nothing was batched: {batches:?}"
    );
    for b in &batches {
        assert!(b.windows(2).all(|w| w[0] < w[1]), "out of order: {b:?}");
    }
    let mut all: Vec<u64> = batches.concat();
    assert_eq!(all.len(), 7, "{batches:?}");
    all.sort();
    assert_eq!(all, (1..=7).collect::<Vec<_>>());
    let last = *run.states().last().unwrap();
    assert_eq!(state_data(last)["finished"], true);
    assert_eq!(state_data(last)["last_row_num"], 7);
}

#[test]

fn every_batch_body_is_a_json_array() {
    let receiver = Receiver::start_default();
    write_seven_batched(&receiver, json!({"batch_size": 3}));
    let requests = receiver.requests();
    let sizes: Vec<usize> = requests
        .iter()
        .map(|r| match r.json() {
            Value::Array(items) => items.len(),
            other => panic!("batch_size 3 but the body is not an array: {other}"),
        })
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), 7, "{sizes:?}");
}

#[test]
fn a_refused_batch_is_split_until_only_the_bad_record_is_rejected() {
    let receiver = receiver_with_rule(Rule::when_body_contains(
        row_needle(5),
        Reply::status(400).with_body("row 5 is invalid"),
    ));
    let run = write_seven_batched(
        &receiver,
        json!({"batch_size": 3, "run_time_args": {"chunk_size": 300, "records_per_metric": 10}}),
    );
    let mut delivered: Vec<u64> = batches(&receiver).concat();
    delivered.sort();
    assert_eq!(delivered, [1, 2, 3, 4, 6, 7], "{}", run.dump());
    // Row 5 was isolated: the last refused request carried it alone.
    let refused: Vec<Vec<u64>> = receiver
        .requests()
        .iter()
        .filter(|r| r.status == 400)
        .map(|r| body_rows(&r.json()))
        .collect();
    assert_eq!(refused.last(), Some(&vec![5]), "{refused:?}");
    let rejected = run.rejected_records();
    assert_eq!(rejected.len(), 1, "{}", run.dump());
    assert_eq!(
        rejected[0]["record"]["data"]["_valmi_meta"]["_valmi_row_num"],
        5
    );
    assert_eq!(rejected[0]["record"]["rejection_code"], "400");
    let last = *run.states().last().unwrap();
    assert_eq!(
        state_data(last)["records_delivered"],
        json!({"upsert": 6, "rejected": 1}),
        "{}",
        run.dump()
    );
}
