//! Routes per operation (`routes.<op>`) and batch bodies (`request.batch_body`) through the
//! binary against the project's receiver: each operation gets its own method, URL and body,
//! a skipped operation sends nothing and is counted, per-key order holds across routes, and a
//! route the config cannot carry stops `check` and `write` before anything is sent.

mod common;

use common::*;
use serde_json::{json, Value};
use webhook_receiver::{Receiver, RecordedRequest};

/// `write` (Valmi) to a fresh receiver under [`config`] with `extra`; requests in arrival order.
fn write_routed(extra: Value, stdin: &str) -> (Run, Vec<RecordedRequest>) {
    let receiver = Receiver::start_default();
    let run = write_valmi_to(&receiver, extra, stdin.as_bytes());
    let mut requests = receiver.requests();
    requests.sort_by_key(|r| r.seq);
    (run, requests)
}

/// A REST resource: upserts PUT the contact at its own URL, deletes DELETE it there (no body).
fn rest_routes() -> Value {
    json!({
        "upsert": {"method": "PUT", "path": "/contacts/{{ record.id }}",
                   "body": r#"{"email": "{{ record.em }}", "key": {{ primary_key }}}"#},
        "delete": {"method": "DELETE", "path": "/contacts/{{ record.id }}"},
    })
}

#[test]
fn each_operation_gets_its_method_url_and_body() {
    let input = [
        valmi_record(1, "delete", json!(1)),
        valmi_record(2, "upsert", json!(2)),
    ]
    .concat();
    let (run, requests) = write_routed(json!({"routes": rest_routes()}), &input);
    assert_completed(&run);
    assert_eq!(requests.len(), 2, "{}", run.dump());
    let delete = requests
        .iter()
        .find(|r| r.method == "DELETE")
        .expect("a DELETE");
    assert_eq!(delete.path, "/hook/contacts/1");
    assert_eq!(delete.body, "", "DELETE sends no body");
    assert!(delete.header("content-length").is_none_or(|l| l == "0"));
    let put = requests.iter().find(|r| r.method == "PUT").expect("a PUT");
    assert_eq!(put.path, "/hook/contacts/2");
    assert_eq!(put.json(), json!({"email": "u2@x.io", "key": 2}));
    let keys: Vec<&str> = requests
        .iter()
        .filter_map(|r| r.header("idempotency-key"))
        .collect();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1], "the idempotency key stays per record");
}

/// Mirror mode removes a row and adds it again: the delete lands before the upsert of the same
/// id even though they go to different routes (and the endpoint answers the delete slowly).
#[test]
fn per_key_order_holds_across_routes() {
    let slow = webhook_receiver::Reply::status(200).with_delay_ms(300);
    let receiver = receiver_with_rule(webhook_receiver::Rule::when_path_contains(
        "/contacts/7",
        slow,
    ));
    let input = [
        valmi_record(1, "delete", json!(7)),
        valmi_record(2, "upsert", json!(7)),
        valmi_record(3, "upsert", json!(8)),
    ]
    .concat();
    let extra = json!({"routes": rest_routes(), "concurrency": 8});
    let run = write_valmi_to(&receiver, extra, input.as_bytes());
    assert_completed(&run);
    let requests = receiver.requests();
    let delete = requests.iter().find(|r| r.method == "DELETE").unwrap();
    let upsert_7 = requests
        .iter()
        .find(|r| r.path == "/hook/contacts/7" && r.method == "PUT")
        .unwrap();
    assert!(
        upsert_7.received_at_ms >= delete.answered_at_ms,
        "the upsert of 7 overlapped its delete: {}",
        run.dump()
    );
}

#[test]
fn a_skipped_operation_sends_nothing_and_is_counted() {
    let input = [
        valmi_record(1, "delete", json!(1)),
        valmi_record(2, "upsert", json!(2)),
        valmi_record(3, "delete", json!(3)),
    ]
    .concat();
    let (run, requests) = write_routed(json!({"routes": {"delete": {"skip": true}}}), &input);
    assert_completed(&run);
    assert_eq!(requests.len(), 1, "{}", run.dump());
    assert_eq!(request_row(&requests[0]), 2);
    let last = run.states().last().map(|s| state_data(s).clone()).unwrap();
    assert_eq!(last["finished"], true, "{}", run.dump());
    assert_eq!(
        last["records_delivered"],
        json!({"skipped": 2, "upsert": 1}),
        "the chunk's counts: {}",
        run.dump()
    );
    let summary = run.logs("INFO").join("\n");
    assert!(
        summary.contains("2 records skipped by their operation's route"),
        "{summary}"
    );
}

fn cdc_catalog() -> Value {
    json!({"streams": [{
        "stream": {"name": "users", "json_schema": {}, "supported_sync_modes": ["incremental"]},
        "sync_mode": "incremental", "destination_sync_mode": "append_dedup",
        "primary_key": [["id"]],
    }]})
}

/// Two Airbyte records of `users`, the second deleted at the source (`_ab_cdc_deleted_at`).
fn cdc_input() -> String {
    let record = |id: u64, deleted: Value| {
        let message = json!({"type": "RECORD", "record": {"stream": "users",
            "data": {"id": id, "_ab_cdc_deleted_at": deleted}, "emitted_at": 1}});
        format!("{message}\n")
    };
    [
        record(1, Value::Null),
        record(2, json!("2026-01-01T00:00:00Z")),
    ]
    .concat()
}

/// Airbyte: the stream's sync mode is the operation, and a record whose `_ab_cdc_deleted_at`
/// is set is a delete.
#[test]
fn airbyte_cdc_deletes_take_the_delete_route() {
    let receiver = Receiver::start_default();
    let catalog = cdc_catalog();
    let input = cdc_input();
    let routes = json!({
        "append_dedup": {"method": "PATCH", "path": "/users/{{ primary_key }}",
                         "body": r#"{"id": {{ record.id }}}"#},
        "delete": {"method": "DELETE", "path": "/users/{{ primary_key }}"},
    });
    let run = write_airbyte(
        &config(&receiver.url("/api"), json!({"routes": routes})),
        &catalog,
        input.as_bytes(),
    );
    assert_completed(&run);
    let mut seen: Vec<(String, String, String)> = receiver
        .requests()
        .into_iter()
        .map(|r| (r.method.clone(), r.path.clone(), r.body.clone()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("DELETE".into(), "/api/users/2".into(), String::new()),
            ("PATCH".into(), "/api/users/1".into(), r#"{"id": 1}"#.into()),
        ],
        "{}",
        run.dump()
    );
}

/// A DELETE goes without a body unless its route's template gives it one, and a GET never has
/// one: no `Content-Length: 0` on either.
#[test]
fn a_delete_carries_a_body_only_when_its_template_gives_one() {
    for (delete, body) in [
        (
            json!({"method": "DELETE", "path": "/users/{{ primary_key }}"}),
            "",
        ),
        (
            json!({"method": "DELETE", "path": "/users/{{ primary_key }}",
                   "body": r#"{"gone": {{ record.id }}}"#}),
            r#"{"gone": 2}"#,
        ),
    ] {
        let receiver = Receiver::start_default();
        let routes = json!({"append_dedup": {"method": "GET", "path": "/users/{{ primary_key }}"},
                            "delete": delete});
        let run = write_airbyte(
            &config(&receiver.url("/api"), json!({"routes": routes})),
            &cdc_catalog(),
            cdc_input().as_bytes(),
        );
        assert_completed(&run);
        for request in receiver.requests() {
            let (expected, length) = match request.method.as_str() {
                "DELETE" if !body.is_empty() => (body, Some(body.len().to_string())),
                _ => ("", None),
            };
            assert_eq!(request.body, expected, "{}", request.method);
            assert_eq!(
                request.header("content-length").map(str::to_string),
                length,
                "{}",
                request.method
            );
        }
    }
}

/// Without routes there is no delete route to take: a deleted record's operation stays its
/// stream's sync mode, as a template reading `op` sees.
#[test]
fn without_routes_a_cdc_delete_keeps_its_streams_sync_mode() {
    let receiver = Receiver::start_default();
    let request = json!({"body": r#"{"id": {{ record.id }}, "op": "{{ op }}"}"#});
    let run = write_airbyte(
        &config(&receiver.url("/api"), json!({"request": request})),
        &cdc_catalog(),
        cdc_input().as_bytes(),
    );
    assert_completed(&run);
    let mut ops: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.json()["op"].as_str().unwrap().to_string())
        .collect();
    ops.sort();
    assert_eq!(ops, ["append_dedup", "append_dedup"], "{}", run.dump());
}

#[test]
fn a_batch_is_framed_by_the_batch_body_template() {
    let request = json!({
        "body": r#"{"id": {{ record.id }}}"#,
        "batch_body": r#"{"count": {{ records | length }}, "events": {{ records | tojson }}}"#,
    });
    let extra = json!({"request": request, "batch_size": 3, "concurrency": 1});
    let (run, requests) = write_routed(extra, &valmi_records(1..=4));
    assert_completed(&run);
    let bodies: Vec<Value> = requests.iter().map(RecordedRequest::json).collect();
    assert_eq!(
        bodies,
        [
            json!({"count": 3, "events": [{"id": 1}, {"id": 2}, {"id": 3}]}),
            json!({"count": 1, "events": [{"id": 4}]}),
        ],
        "{}",
        run.dump()
    );
}

/// A config whose routes cannot be sent as written fails `check` and `write` with the field.
#[test]
fn routes_the_config_cannot_carry_are_refused_before_anything_is_sent() {
    let cases = [
        (json!({"routes": {"delte": {"skip": true}}}), "routes.delte"),
        (
            json!({"routes": {"delete": {"skip": true, "method": "DELETE"}}}),
            "routes.delete: skip sends nothing",
        ),
        (
            json!({"routes": rest_routes(), "batch_size": 10}),
            "batch_size is 10",
        ),
        (
            json!({"routes": {"upsert": {"method": "GET", "body": "{}"}}}),
            "GET sends the record in its query",
        ),
        (
            json!({"method": "GET", "routes": {"upsert": {"body": "{}"}}}),
            "routes.upsert: GET sends the record in its query",
        ),
        (
            json!({"routes": {"upsert": {"path": "/x/{{ record.id }"}}}),
            "routes.upsert.path",
        ),
        (
            json!({"request": {"batch_body": "[]"}}),
            "request.batch_body",
        ),
    ];
    for (extra, needle) in cases {
        let receiver = Receiver::start_default();
        let config = config(&receiver.url("/hook"), extra.clone());
        let check = run_check(&config);
        let status = &check.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
        assert_eq!(status["status"], "FAILED", "{extra}");
        let message = status["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{extra}: {message}");
        let run = write_valmi(&config, valmi_records(1..=2).as_bytes());
        let text = assert_fatal(&run, "config_error");
        assert!(text.contains(needle), "{extra}: {text}");
        assert!(receiver.requests().is_empty(), "{extra}");
    }
}
