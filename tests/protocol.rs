//! Every message the connector prints in the Airbyte dialect is an AirbyteMessage of the
//! protocol (`airbyte/airbyte_protocol_v0.yaml`, v0.18), checked with a JSON Schema validator
//! against the YAML itself: `spec`, `check` (both answers), `discover` under Airbyte's platform
//! and `write`
//! (LOG, STATE, TRACE) on a run that delivers, rejects and fails. Airbyte's platform drops or
//! fails on a message that does not validate, so a field of the wrong type here is a lost STATE
//! there.

mod common;

use common::*;
use serde_json::{json, Value};
use webhook_receiver::{Reply, Rule};

/// The validator of one `AirbyteMessage`, with the YAML's definitions as they are.
fn airbyte_message_validator() -> jsonschema::Validator {
    let yaml: Value = serde_norway::from_str(&read_fixture("airbyte/airbyte_protocol_v0.yaml"))
        .expect("the protocol YAML parses");
    assert!(
        yaml["definitions"]["DestinationCatalog"].is_object(),
        "not the v0.18 protocol"
    );
    let schema = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": yaml["definitions"],
        "$ref": "#/definitions/AirbyteMessage",
    });
    jsonschema::draft7::new(&schema).expect("the protocol YAML is a JSON Schema")
}

/// Every stdout line of `run` validates; returns the lines' message types.
#[track_caller]
fn assert_valid(validator: &jsonschema::Validator, run: &Run) -> Vec<String> {
    assert!(!run.messages.is_empty(), "no output: {}", run.stderr);
    for message in &run.messages {
        let problems: Vec<String> = validator
            .iter_errors(message)
            .map(|e| format!("{} ({})", e, e.instance_path().as_str()))
            .collect();
        assert!(
            problems.is_empty(),
            "{message}\n does not validate: {problems:?}"
        );
    }
    run.messages
        .iter()
        .map(|m| m["type"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_validator_refuses_what_the_protocol_refuses() {
    let validator = airbyte_message_validator();
    for bad in [
        json!({"type": "LOG", "log": {"level": "NOTICE", "message": "x"}}),
        json!({"type": "STATE", "state": {"type": "STREAM", "stream": {}}}),
        json!({"type": "DESTINATION_CATALOG", "destination_catalog": {"operations": [{"object_name": "a", "sync_mode": "upsert", "json_schema": {}}]}}),
        json!({"type": "CATALOG", "catalog": {"sinks": []}}),
    ] {
        assert!(!validator.is_valid(&bad), "{bad} validated");
    }
}

#[test]
fn spec_and_check_answers_are_protocol_messages() {
    let validator = airbyte_message_validator();
    assert_eq!(assert_valid(&validator, &run(&["spec"], b"")), ["SPEC"]);
    let receiver = receiver_answering(Reply::default());
    let good = config(&receiver.url("/hook"), json!({}));
    let bad = json!({"url": "ftp://nowhere"});
    for config in [&good, &bad] {
        let answer = assert_valid(&validator, &run_check(config));
        assert_eq!(answer, ["CONNECTION_STATUS"]);
    }
}

#[test]
fn discover_under_airbyte_is_one_destination_catalog() {
    let validator = airbyte_message_validator();
    let dir = Workdir::new();
    let templated = json!({"request": {"body": "{\"email\": \"{{ record.email }}\"}"}});
    let objects = json!({"objects": [
        {"name": "contacts", "matching_fields": ["email"], "request": {"body": "{\"e\": \"{{ record.email }}\"}"}},
        {"name": "companies", "json_schema": {"type": "object"}, "routes": {"update": {"method": "PATCH"}}},
    ]});
    for extra in [json!({}), templated, objects] {
        let path = dir.write_json("config.json", &config("http://127.0.0.1:9/hook", extra));
        let discover = run_env(
            &["discover", "--config", path_str(&path)],
            b"",
            &[("WORKER_JOB_ID", Some("1"))],
        );
        assert_eq!(assert_valid(&validator, &discover), ["DESTINATION_CATALOG"]);
    }
}

/// Records and STREAM states that are themselves valid protocol messages.
fn valid_input(validator: &jsonschema::Validator) -> String {
    let record = |id: u64| json!({"type": "RECORD", "record": {"stream": "users", "emitted_at": 1, "data": {"id": id, "name": format!("user {id}")}}});
    let state = |n: u64| json!({"type": "STATE", "state": {"type": "STREAM", "stream": {"stream_descriptor": {"name": "users"}, "stream_state": {"cursor": n}}}});
    let messages = [record(1), state(1), record(2), record(3), state(3)];
    for m in &messages {
        assert!(validator.is_valid(m), "test input {m} is not valid");
    }
    messages.iter().map(|m| format!("{m}\n")).collect()
}

fn users_catalog() -> Value {
    json!({"streams": [{
        "stream": {"name": "users", "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
        "sync_mode": "full_refresh",
        "destination_sync_mode": "append_dedup",
        "primary_key": [["id"]],
    }]})
}

#[test]
fn write_messages_are_protocol_messages_when_records_are_delivered_and_rejected() {
    let validator = airbyte_message_validator();
    let receiver = receiver_with_rule(Rule {
        body_contains: Some("user 2".into()),
        ..Rule::any(Reply::status(422))
    });
    let run = write_airbyte(
        &config(&receiver.url("/hook"), json!({})),
        &users_catalog(),
        valid_input(&validator).as_bytes(),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let types = assert_valid(&validator, &run);
    assert_eq!(
        types.iter().filter(|t| *t == "STATE").count(),
        2,
        "{types:?}"
    );
    assert!(
        run.logs("WARN").iter().any(|l| l.contains("422")),
        "{types:?}"
    );
}

#[test]
fn write_messages_are_protocol_messages_when_the_sync_fails() {
    let validator = airbyte_message_validator();
    let receiver = receiver_answering(Reply::status(401));
    let run = write_airbyte(
        &config(&receiver.url("/hook"), json!({})),
        &users_catalog(),
        valid_input(&validator).as_bytes(),
    );
    assert_ne!(run.code, Some(0));
    let types = assert_valid(&validator, &run);
    assert_eq!(types.last().map(String::as_str), Some("TRACE"), "{types:?}");
}
