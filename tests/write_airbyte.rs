//! `write` in the Airbyte dialect (no `--destination_catalog`), with the message fixtures of
//! Airbyte's own destination acceptance tests.

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::{json, Value};
use webhook_receiver::{Receiver, RecordedRequest, Reply, Rule};

/// `write` of `input` with `catalog` to `receiver`'s `/hook` under the default [`config`]; the
/// run must exit 0.
#[track_caller]
fn write_ok(receiver: &Receiver, catalog: &Value, input: &str) -> Run {
    let run = write_airbyte(
        &config(&receiver.url("/hook"), json!({})),
        catalog,
        input.as_bytes(),
    );
    assert_eq!(run.code, Some(0), "{}", run.dump());
    run
}

/// The exchange-rate catalog with its stream in namespace `fx`.
fn fx_catalog() -> Value {
    let mut catalog = exchange_rate_catalog();
    catalog["streams"][0]["stream"]["namespace"] = json!("fx");
    catalog
}

fn object_keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

/// The STATE lines of stdout as printed (to check how numbers are written).
fn state_lines(run: &Run) -> Vec<&str> {
    run.stdout
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).unwrap()["type"] == "STATE")
        .collect()
}

#[test]
fn exchange_rate_records_and_states() {
    let receiver = Receiver::start_default();
    let input = exchange_rate_messages();
    let run = write_ok(&receiver, &exchange_rate_catalog(), &input);
    assert!(run.errors().is_empty(), "{}", run.dump());

    let records = messages_of_type(&input, "RECORD");
    let requests = receiver.requests();
    assert_eq!(requests.len(), 5, "{}", run.dump());
    // overwrite without a primary key: one at a time, so in input order.
    for (i, (request, record)) in requests.iter().zip(&records).enumerate() {
        let body = request.json();
        assert_eq!(
            object_keys(&body),
            ["_message_id", "_sync_mode", "_type", "_stream", "payload"]
        );
        assert_eq!(body["_message_id"], i as u64 + 1);
        assert_eq!(body["_sync_mode"], "overwrite");
        assert_eq!(body["_type"], "object");
        assert_eq!(body["_stream"], "exchange_rate");
        assert_json_same(&body["payload"], &record["record"]["data"], "payload");
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert!(request.header("idempotency-key").is_some());
    }

    let input_states = messages_of_type(&input, "STATE");
    assert_eq!(input_states.len(), 3);
    let states = run.states();
    assert_eq!(states.len(), 3, "{}", run.dump());
    for ((got, input_state), count) in states.iter().zip(&input_states).zip([1, 1, 3]) {
        let mut expected = input_state["state"].clone();
        expected["destinationStats"] =
            json!({"recordCount": count as f64, "rejectedRecordCount": 0.0});
        assert_json_same(&got["state"], &expected, "STATE");
    }
    let lines = state_lines(&run);
    for (line, count) in lines.iter().zip(["1.0", "1.0", "3.0"]) {
        let stats =
            format!("\"destinationStats\":{{\"recordCount\":{count},\"rejectedRecordCount\":0.0}}");
        assert!(line.contains(&stats), "{line}");
    }
    // Airbyte's own check: the last state, stats removed, is the last state the source sent.
    let mut last = states.last().unwrap()["state"].clone();
    last.as_object_mut().unwrap().remove("destinationStats");
    assert_eq!(&last, &input_states.last().unwrap()["state"]);
    // Delivered records are not echoed, input TRACE/STATE messages are not passed through raw.
    assert!(run.of_type("RECORD").is_empty(), "{}", run.dump());
    assert!(run.traces().is_empty(), "{}", run.dump());
}

fn edge_case_input() -> (String, usize, BTreeSet<String>) {
    let input = read_fixture("airbyte/dat_edge_case_messages.v0.jsonl");
    let records = messages_of_type(&input, "RECORD");
    let streams: BTreeSet<String> = records
        .iter()
        .map(|r| r["record"]["stream"].as_str().unwrap().to_string())
        .collect();
    assert_eq!((records.len(), streams.len()), (17, 11), "fixture changed");
    (input, records.len(), streams)
}

#[test]
fn streams_missing_from_the_catalog_are_not_sent_and_counted_as_rejected() {
    let receiver = Receiver::start_default();
    let (input, record_count, streams) = edge_case_input();
    let run = write_ok(&receiver, &exchange_rate_catalog(), &input);
    assert!(run.errors().is_empty(), "{}", run.dump());
    assert_eq!(receiver.requests().len(), 0, "nothing may be sent");
    let warns = run.logs("WARN");
    for stream in &streams {
        assert!(
            warns.iter().any(|w| w.contains(&format!("'{stream}'"))),
            "no WARN names stream {stream}: {warns:#?}"
        );
    }

    let states = run.states();
    assert_eq!(states.len(), 1, "{}", run.dump());
    let n = record_count as f64;
    assert_json_same(
        &states[0]["state"],
        &json!({"data": {"start_date": "2020-09-02"},
                "destinationStats": {"recordCount": n, "rejectedRecordCount": n}}),
        "LEGACY state",
    );
    assert!(
        state_lines(&run)[0].contains("\"recordCount\":17.0,\"rejectedRecordCount\":17.0"),
        "{}",
        run.dump()
    );
}

#[test]

fn a_stream_missing_from_the_catalog_gets_one_warn_not_one_per_record() {
    let receiver = Receiver::start_default();
    let (input, _, streams) = edge_case_input();
    let run = write_ok(&receiver, &exchange_rate_catalog(), &input);
    let warns = run.logs("WARN");
    for stream in &streams {
        let naming = warns
            .iter()
            .filter(|w| w.contains(&format!("'{stream}'")))
            .count();
        assert_eq!(naming, 1, "WARNs naming stream {stream}: {warns:#?}");
    }
    assert_eq!(warns.len(), streams.len(), "{warns:#?}");
}

fn overlaps(a: &RecordedRequest, b: &RecordedRequest) -> bool {
    a.received_at_ms < b.answered_at_ms && b.received_at_ms < a.answered_at_ms
}

#[test]
fn records_with_the_same_primary_key_are_never_in_flight_together() {
    let receiver = receiver_answering(Reply::status(200).with_delay_ms(80));
    let mut catalog = exchange_rate_catalog();
    catalog["streams"][0]["primary_key"] = json!([["id"]]);
    let input = exchange_rate_messages();
    let run = write_ok(&receiver, &catalog, &input);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 5);
    let id = |r: &RecordedRequest| r.json()["payload"]["id"].as_u64().unwrap();
    let message_id = |r: &RecordedRequest| r.json()["_message_id"].as_u64().unwrap();
    for (i, a) in requests.iter().enumerate() {
        for b in &requests[i + 1..] {
            if id(a) == id(b) {
                assert!(!overlaps(a, b), "same id in flight together: {a:?} {b:?}");
                assert!(
                    message_id(a) < message_id(b),
                    "same id out of input order: {a:?} {b:?}"
                );
            }
        }
    }
    // Different keys do go concurrently (id 1 and id 2 share the first round).
    assert!(
        requests
            .iter()
            .any(|a| requests.iter().any(|b| id(a) != id(b) && overlaps(a, b))),
        "no concurrency at all: {requests:#?}"
    );
    assert_eq!(run.states().len(), 3);
}

/// A keyless stream whose mode keeps order (`append_dedup`: the last write wins) sends one
/// record at a time, in input order; a keyless `append` stream sends concurrently.
#[test]
fn a_keyless_stream_is_serialised_only_when_its_mode_needs_order() {
    let in_flight_together = |mode: &str| {
        let receiver = receiver_answering(Reply::status(200).with_delay_ms(80));
        let mut catalog = exchange_rate_catalog();
        catalog["streams"][0]["primary_key"] = json!([]);
        catalog["streams"][0]["destination_sync_mode"] = json!(mode);
        write_ok(&receiver, &catalog, &exchange_rate_messages());
        let requests = receiver.requests();
        assert_eq!(requests.len(), 5);
        requests
            .iter()
            .enumerate()
            .any(|(i, a)| requests[i + 1..].iter().any(|b| overlaps(a, b)))
    };
    assert!(
        !in_flight_together("append_dedup"),
        "append_dedup without a key"
    );
    assert!(in_flight_together("append"), "append without a key");
}

#[test]
fn a_refused_record_is_a_warn_and_counted_in_the_next_state() {
    // The 4th record is the only one with "HKD": 7.99 (the payload is forwarded byte for byte).
    let receiver = receiver_with_rule(Rule::when_body_contains(
        "\"HKD\": 7.99",
        Reply::status(422).with_body("bad rate"),
    ));
    let input = exchange_rate_messages();
    let run = write_ok(&receiver, &exchange_rate_catalog(), &input);
    assert_eq!(receiver.requests().len(), 5);
    assert_eq!(
        run.state_fields("destinationStats"),
        [
            json!({"recordCount": 1.0, "rejectedRecordCount": 0.0}),
            json!({"recordCount": 1.0, "rejectedRecordCount": 0.0}),
            json!({"recordCount": 3.0, "rejectedRecordCount": 1.0}),
        ],
        "{}",
        run.dump()
    );
    let warns = run.logs("WARN");
    assert_eq!(warns.len(), 1, "{warns:#?}");
    assert!(warns[0].contains("422"), "{}", warns[0]);
    // RECORD echoes are not part of the Airbyte protocol.
    assert!(run.of_type("RECORD").is_empty(), "{}", run.dump());
}

#[test]
fn a_namespaced_stream_is_named_namespace_dot_name() {
    let receiver = Receiver::start_default();
    let catalog = fx_catalog();
    let input = concat!(
        r#"{"type":"RECORD","record":{"namespace":"fx","stream":"exchange_rate","emitted_at":1,"data":{"id":1}}}"#,
        "\n",
        r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"exchange_rate","namespace":"fx"},"stream_state":{"c":1}}}}"#,
        "\n"
    );
    let run = write_ok(&receiver, &catalog, input);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].json()["_stream"], "fx.exchange_rate");
    let states = run.states();
    assert_eq!(states.len(), 1);
    assert_eq!(
        states[0]["state"]["destinationStats"],
        json!({"recordCount": 1.0, "rejectedRecordCount": 0.0})
    );
    assert_eq!(
        states[0]["state"]["stream"]["stream_state"],
        json!({"c": 1})
    );
}

#[test]
fn input_ending_in_the_middle_of_a_line_warns_and_delivers_the_rest() {
    let receiver = Receiver::start_default();
    let full = exchange_rate_messages();
    let mut input: String = full
        .lines()
        .filter(|l| !l.contains("\"TRACE\""))
        .map(|l| format!("{l}\n"))
        .collect();
    input.push_str(r#"{"type": "RECORD", "record": {"stream": "exchange_rate", "emitted_at": 1, "data": {"id": 9, "curr"#);
    let run = write_ok(&receiver, &exchange_rate_catalog(), &input);
    assert_eq!(receiver.requests().len(), 5, "{}", run.dump());
    let warns = run.logs("WARN");
    assert_eq!(warns.len(), 1, "{warns:#?}");
    assert!(warns[0].contains("\"id\": 9"), "{}", warns[0]);
    assert_eq!(run.states().len(), 3, "{}", run.dump());
    assert!(run.errors().is_empty(), "{}", run.dump());
}

#[test]

fn a_record_without_namespace_matches_a_uniquely_named_namespaced_stream() {
    let receiver = Receiver::start_default();
    let catalog = fx_catalog();
    let input = concat!(
        r#"{"type":"RECORD","record":{"stream":"exchange_rate","emitted_at":1,"data":{"id":1}}}"#,
        "\n"
    );
    let run = write_ok(&receiver, &catalog, input);
    assert_eq!(receiver.requests().len(), 1, "{}", run.dump());
    assert_eq!(receiver.requests()[0].json()["_stream"], "fx.exchange_rate");
}
