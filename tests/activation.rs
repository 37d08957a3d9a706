//! Airbyte data activation: `discover` answering Airbyte's platform with a DESTINATION_CATALOG
//! while Valmi's engine keeps its CATALOG, and `write` honouring each configured stream's
//! `destination_object_name` and refresh fields (`generation_id`, `minimum_generation_id`,
//! `sync_id`) and each record's `meta.changes`.

mod common;

use common::*;
use serde_json::{json, Value};
use webhook_receiver::Reply;

/// Airbyte's launcher sets this in every connector container; Valmi's engine does not.
const AIRBYTE_ENV: (&str, Option<&str>) = ("WORKER_JOB_ID", Some("42"));
const NOT_AIRBYTE_ENV: (&str, Option<&str>) = ("WORKER_JOB_ID", None);

fn discover(config: &Value, env: (&str, Option<&str>)) -> Run {
    let dir = Workdir::new();
    let path = dir.write_json("config.json", config);
    run_env(&["discover", "--config", path_str(&path)], b"", &[env])
}

#[test]
fn valmi_gets_one_document_it_can_parse_whole() {
    let run = discover(
        &json!({"url": "http://127.0.0.1:9/hook", "method": "POST"}),
        NOT_AIRBYTE_ENV,
    );
    assert_eq!(run.code, Some(0));
    // Valmi's engine joins the non-LOG lines and its backend parses them as one document.
    let joined: String = run
        .stdout
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).unwrap()["type"] != "LOG")
        .collect();
    let document: Value = serde_json::from_str(&joined).expect("one JSON document");
    assert_eq!(document["type"], "CATALOG");
    assert_eq!(document["catalog"]["sinks"][0]["name"], "Webhook");
    let valmi_config = read_fixture("valmi/observed/config_post.json");
    let run = discover(
        &serde_json::from_str(&valmi_config).unwrap(),
        NOT_AIRBYTE_ENV,
    );
    assert_eq!(run.messages.len(), 1, "{}", run.stdout);
    assert_eq!(run.messages[0]["type"], "CATALOG");
}

fn operations(run: &Run) -> Vec<Value> {
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert_eq!(run.messages.len(), 1, "{}", run.stdout);
    run.messages[0]["destination_catalog"]["operations"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn airbyte_gets_the_default_object_in_every_mode_the_spec_advertises() {
    let run = discover(&config("http://127.0.0.1:9/hook", json!({})), AIRBYTE_ENV);
    let ops = operations(&run);
    let modes: Vec<&str> = ops
        .iter()
        .map(|o| o["sync_mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["append", "append_dedup", "overwrite"]);
    for op in &ops {
        assert_eq!(op["object_name"], "default");
        assert_eq!(op["json_schema"]["additionalProperties"], true, "{op}");
    }
}

#[test]
fn an_object_with_a_body_template_takes_the_fields_its_templates_read() {
    let request = json!({
        "body": "{\"email\": \"{{ record.email | lower }}\", \"plan\": {{ record.plan.name }}, \"s\": \"{{ stream }}\"}",
        "path": "/contacts/{{ record.id }}",
    });
    let run = discover(
        &config("http://127.0.0.1:9/hook", json!({"request": request})),
        AIRBYTE_ENV,
    );
    let schema = &operations(&run)[0]["json_schema"];
    let fields: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
    assert_eq!(fields, ["email", "id", "plan"]);
    assert_eq!(schema["properties"]["email"], json!({"type": "string"}));
    assert_eq!(schema["additionalProperties"], false);
}

#[test]
fn discover_under_airbyte_refuses_a_config_that_write_would_refuse() {
    let broken = config(
        "http://127.0.0.1:9/hook",
        json!({"request": {"body": "{{ record.x "}}),
    );
    let run = discover(&broken, AIRBYTE_ENV);
    assert_ne!(run.code, Some(0));
    let trace = &run.traces()[0]["trace"]["error"];
    assert_eq!(trace["failure_type"], "config_error");
    assert!(
        trace["message"].as_str().unwrap().contains("request.body"),
        "{trace}"
    );
}

fn users_catalog(stream: Value) -> Value {
    let mut configured = json!({
        "stream": {"name": "users", "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
        "sync_mode": "full_refresh",
        "destination_sync_mode": "append",
    });
    for (k, v) in stream.as_object().unwrap() {
        configured[k.as_str()] = v.clone();
    }
    json!({"streams": [configured]})
}

fn user_record(id: u64) -> String {
    format!(
        "{}\n",
        json!({"type": "RECORD", "record": {"stream": "users", "emitted_at": 1, "data": {"id": id}}})
    )
}

#[test]
fn a_stream_mapped_to_an_unknown_object_fails_before_anything_is_sent() {
    let receiver = receiver_answering(Reply::default());
    let catalog = users_catalog(json!({"destination_object_name": "contacts"}));
    let run = write_airbyte(
        &config(&receiver.url("/hook"), json!({})),
        &catalog,
        user_record(1).as_bytes(),
    );
    assert_ne!(run.code, Some(0));
    let error = &run.traces()[0]["trace"]["error"];
    assert_eq!(error["failure_type"], "config_error");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("'contacts'") && message.contains("'users'"),
        "{message}"
    );
    assert!(
        message.contains("'default'"),
        "lists the objects: {message}"
    );
    assert_eq!(receiver.request_count(), 0);
}

#[test]
fn a_stream_mapped_to_the_default_object_goes_to_the_top_level_request() {
    let receiver = receiver_answering(Reply::default());
    let catalog = users_catalog(json!({"destination_object_name": "default"}));
    let run = write_airbyte(
        &config(&receiver.url("/hook"), json!({})),
        &catalog,
        user_record(1).as_bytes(),
    );
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert_eq!(receiver.request_count(), 1);
}

/// The `Idempotency-Key` of each request a `write` of three users sends under `stream` fields.
fn keys_under(stream: Value) -> Vec<String> {
    let receiver = receiver_answering(Reply::default());
    let mut catalog = users_catalog(stream);
    catalog["streams"][0]["primary_key"] = json!([["id"]]);
    let input: String = (1..=3).map(user_record).collect();
    let run = write_airbyte(
        &config(&receiver.url("/hook"), json!({})),
        &catalog,
        input.as_bytes(),
    );
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    let mut keys: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.header("idempotency-key").unwrap().to_string())
        .collect();
    keys.sort();
    keys
}

#[test]
fn a_new_generation_redelivers_under_new_keys_and_the_same_one_keeps_them() {
    let generation = |g: i64| json!({"generation_id": g, "minimum_generation_id": 0, "sync_id": 7});
    let before_refreshes = keys_under(json!({}));
    assert_eq!(
        keys_under(generation(0)),
        before_refreshes,
        "generation 0 is today's keys"
    );
    let first = keys_under(generation(1));
    assert_eq!(first.len(), 3);
    assert!(
        first.iter().all(|k| !before_refreshes.contains(k)),
        "{first:?}"
    );
    assert_eq!(keys_under(generation(1)), first, "a re-run of a generation");
    let second = keys_under(generation(2));
    assert!(second.iter().all(|k| !first.contains(k)), "{second:?}");
}

#[test]
fn templates_see_the_refresh_fields_and_the_record_changes() {
    let receiver = receiver_answering(Reply::default());
    let body = "{\"g\": {{ generation_id }}, \"m\": {{ minimum_generation_id }}, \"s\": {{ sync_id }}, \"c\": {{ changes | tojson }}}";
    let config = config(&receiver.url("/hook"), json!({"request": {"body": body}}));
    let catalog =
        users_catalog(json!({"generation_id": 3, "minimum_generation_id": 0, "sync_id": 12}));
    let change =
        json!({"field": "bio", "change": "TRUNCATED", "reason": "SOURCE_FIELD_SIZE_LIMITATION"});
    let changed = json!({"type": "RECORD", "record": {"stream": "users", "emitted_at": 1, "data": {"id": 1}, "meta": {"changes": [change]}}});
    let input = format!("{changed}\n{}", user_record(2));
    let run = write_airbyte(&config, &catalog, input.as_bytes());
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    let bodies: Vec<Value> = receiver
        .requests()
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert!(
        bodies.contains(&json!({"g": 3, "m": 0, "s": 12, "c": [change]})),
        "{bodies:?}"
    );
    assert!(
        bodies.contains(&json!({"g": 3, "m": 0, "s": 12, "c": []})),
        "{bodies:?}"
    );
}

#[test]
fn without_refresh_fields_templates_see_none() {
    let receiver = receiver_answering(Reply::default());
    let body = "{\"g\": {{ generation_id | tojson }}, \"c\": {{ changes | tojson }}}";
    let config = config(&receiver.url("/hook"), json!({"request": {"body": body}}));
    let run = write_airbyte(
        &config,
        &users_catalog(json!({})),
        user_record(1).as_bytes(),
    );
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert_eq!(receiver.requests()[0].body, r#"{"g": null, "c": []}"#);
}

#[test]
fn a_truncating_refresh_says_that_older_data_is_left_in_place() {
    let receiver = receiver_answering(Reply::default());
    let refresh =
        |min: i64| json!({"generation_id": 4, "minimum_generation_id": min, "sync_id": 9});
    let notes = |min: i64| {
        let run = write_airbyte(
            &config(&receiver.url("/hook"), json!({})),
            &users_catalog(refresh(min)),
            user_record(1).as_bytes(),
        );
        assert_eq!(run.code, Some(0), "{}", run.stdout);
        run.logs("INFO")
            .into_iter()
            .filter(|l| l.contains("left in place"))
            .collect::<Vec<_>>()
    };
    let truncating = notes(4);
    assert_eq!(truncating.len(), 1, "{truncating:?}");
    assert!(truncating[0].contains("'users'") && truncating[0].contains("generation 4"));
    assert!(
        notes(0).is_empty(),
        "a merging refresh leaves nothing to say"
    );
}

// ---------------------------------------------------------------------------------------------
// Named objects: the README's worked example, two streams to two objects of one API.

/// `objects` of the README's example: contacts through a body template, companies through
/// routes, and a refresh request for contacts.
fn crm_objects() -> Value {
    json!([
        {
            "name": "contacts",
            "matching_fields": ["email"],
            "request": {
                "path": "/contacts",
                "body": "{\"email\": \"{{ record.email }}\", \"name\": \"{{ record.name }}\", \"key\": {{ primary_key | tojson }}}"
            },
            "on_refresh": {"method": "DELETE", "path": "/lists/{{ stream }}/members"}
        },
        {
            "name": "companies",
            "json_schema": {"type": "object", "properties": {"id": {"type": "integer"}, "domain": {"type": "string"}}},
            "matching_fields": ["id"],
            "routes": {
                "append": {"method": "POST", "path": "/companies"},
                "update": {"method": "PATCH", "path": "/companies/{{ record.id }}"}
            }
        }
    ])
}

fn crm_config(url: &str) -> Value {
    config(url, json!({"objects": crm_objects()}))
}

fn configured(name: &str, mode: &str, object: &str, extra: Value) -> Value {
    let mut stream = json!({
        "stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
        "sync_mode": "full_refresh",
        "destination_sync_mode": mode,
        "destination_object_name": object,
    });
    for (k, v) in extra.as_object().unwrap() {
        stream[k.as_str()] = v.clone();
    }
    stream
}

fn record_of(stream: &str, data: Value) -> String {
    format!(
        "{}\n",
        json!({"type": "RECORD", "record": {"stream": stream, "emitted_at": 1, "data": data}})
    )
}

#[test]
fn two_streams_reach_their_own_objects_and_nothing_crosses() {
    let receiver = receiver_answering(Reply::default());
    let catalog = json!({"streams": [
        configured("users", "append", "contacts", json!({})),
        configured("orgs", "update", "companies", json!({"primary_key": [["id"]]})),
    ]});
    let input = [
        record_of(
            "users",
            json!({"email": "ada@x.io", "name": "Ada", "plan": "pro"}),
        ),
        record_of("orgs", json!({"id": 7, "domain": "x.io"})),
        record_of("users", json!({"email": "bob@x.io", "name": "Bob"})),
    ]
    .concat();
    let run = write_airbyte(
        &crm_config(&receiver.url("/api")),
        &catalog,
        input.as_bytes(),
    );
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    let mut seen: Vec<(String, String, String)> = receiver
        .requests()
        .iter()
        .map(|r| (r.method.clone(), r.path.clone(), r.body.clone()))
        .collect();
    seen.sort();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0].0, "PATCH");
    assert_eq!(seen[0].1, "/api/companies/7");
    assert!(
        seen[0].2.contains("\"domain\":\"x.io\""),
        "the envelope: {}",
        seen[0].2
    );
    for (i, who) in [(1, "ada"), (2, "bob")] {
        assert_eq!(
            (seen[i].0.as_str(), seen[i].1.as_str()),
            ("POST", "/api/contacts")
        );
        let body: Value = serde_json::from_str(&seen[i].2).unwrap();
        // users has no primary key: contacts' first matching field is its key.
        assert_eq!(body["key"], format!("{who}@x.io"), "{body}");
        assert!(body.get("plan").is_none());
    }
}

#[test]
fn discover_offers_every_object_with_its_modes_schema_and_matching_keys() {
    // No Airbyte environment: a config with objects is Airbyte's data activation anyway.
    let run = discover(&crm_config("http://127.0.0.1:9/api"), NOT_AIRBYTE_ENV);
    let ops = operations(&run);
    let of =
        |name: &str| -> Vec<&Value> { ops.iter().filter(|o| o["object_name"] == name).collect() };
    assert_eq!(of("default").len(), 3);
    let contacts = of("contacts");
    assert_eq!(
        contacts.len(),
        3,
        "one request serves every mode: {contacts:?}"
    );
    assert_eq!(contacts[0]["matching_keys"], json!([["email"]]));
    let fields: Vec<&String> = contacts[0]["json_schema"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(fields, ["email", "name"]);
    let companies = of("companies");
    let modes: Vec<&Value> = companies.iter().map(|o| &o["sync_mode"]).collect();
    assert_eq!(modes, ["update", "append"]);
    assert_eq!(
        companies[0]["json_schema"]["properties"]["id"],
        json!({"type": "integer"})
    );
}

#[test]
fn an_unknown_object_is_named_with_the_objects_there_are() {
    let receiver = receiver_answering(Reply::default());
    let catalog = json!({"streams": [configured("users", "append", "contact", json!({}))]});
    let run = write_airbyte(
        &crm_config(&receiver.url("/api")),
        &catalog,
        record_of("users", json!({"email": "a"})).as_bytes(),
    );
    assert_ne!(run.code, Some(0));
    let message = run.traces()[0]["trace"]["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("'contact'") && message.contains("'default', 'contacts', 'companies'"),
        "{message}"
    );
    assert_eq!(receiver.request_count(), 0);
}

#[test]
fn bad_objects_are_config_errors_for_check_and_write_before_stdin() {
    let with = |objects: Value, extra: Value| {
        let mut c = config("http://127.0.0.1:9/api", extra);
        c["objects"] = objects;
        c
    };
    let named = |name: &str| json!({"name": name});
    let cases = [
        (
            "no name",
            with(json!([{"matching_fields": ["id"]}]), json!({})),
            "name",
        ),
        (
            "twice",
            with(json!([named("a"), named("a")]), json!({})),
            "'a' names another object",
        ),
        (
            "reserved",
            with(json!([named("default")]), json!({})),
            "top-level request's name",
        ),
        (
            "key not in schema",
            with(
                json!([{"name": "a", "matching_fields": ["email"], "json_schema": {"properties": {"id": {}}}}]),
                json!({}),
            ),
            "'email' is neither",
        ),
        (
            "key not read",
            with(
                json!([{"name": "a", "matching_fields": ["email"], "request": {"body": "{\"id\": {{ record.id }}}"}}]),
                json!({}),
            ),
            "'email' is neither",
        ),
        (
            "batched",
            with(json!([named("a")]), json!({"batch_size": 10})),
            "batch_size is 10",
        ),
        (
            "body with GET",
            with(
                json!([{"name": "a", "request": {"body": "{}"}}]),
                json!({"method": "GET"}),
            ),
            "objects[0]: request.body: GET sends no body",
        ),
        (
            "refresh template",
            with(
                json!([{"name": "a", "on_refresh": {"method": "DELETE", "path": "/{{ stream "}}]),
                json!({}),
            ),
            "on_refresh",
        ),
    ];
    for (case, config, expected) in cases {
        let check = run_check(&config);
        let status = &check.messages[0]["connectionStatus"];
        assert_eq!(status["status"], "FAILED", "{case}");
        assert!(
            status["message"].as_str().unwrap().contains(expected),
            "{case}: {status}"
        );
        let write = write_airbyte(&config, &users_catalog(json!({})), b"not read\n");
        let error = &write.traces()[0]["trace"]["error"];
        assert_eq!(error["failure_type"], "config_error", "{case}");
        assert!(write.logs("WARN").is_empty(), "{case}: stdin was read");
    }
}

fn refreshing(generation: i64) -> Value {
    json!({"streams": [configured("users", "append", "contacts", json!({
        "generation_id": generation, "minimum_generation_id": generation, "sync_id": 3,
    }))]})
}

#[test]
fn a_truncating_refresh_sends_the_objects_refresh_request_once_before_any_record() {
    let receiver = receiver_answering(Reply::default());
    let input: String = ["ada", "bob"]
        .map(|n| record_of("users", json!({"email": format!("{n}@x.io"), "name": n})))
        .concat();
    let run = write_airbyte(
        &crm_config(&receiver.url("/api")),
        &refreshing(2),
        input.as_bytes(),
    );
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    let requests = receiver.requests();
    let calls: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        calls[0],
        ("DELETE", "/api/lists/users/members"),
        "{calls:?}"
    );
    assert_eq!(
        calls.iter().filter(|c| c.0 == "DELETE").count(),
        1,
        "{calls:?}"
    );
    assert_eq!(calls.len(), 3);
    assert!(requests[0].header("idempotency-key").is_some());
    // Not a truncating refresh: nothing is removed.
    let quiet = receiver_answering(Reply::default());
    let mut merging = refreshing(2);
    merging["streams"][0]["minimum_generation_id"] = json!(0);
    let run = write_airbyte(&crm_config(&quiet.url("/api")), &merging, input.as_bytes());
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert!(quiet.requests().iter().all(|r| r.method == "POST"));
}

#[test]
fn a_refused_refresh_request_fails_the_sync_before_any_record() {
    let receiver = receiver_with_rule(webhook_receiver::Rule {
        path_contains: Some("/lists/".into()),
        ..webhook_receiver::Rule::any(Reply::status(404))
    });
    let input = record_of("users", json!({"email": "ada@x.io", "name": "Ada"}));
    let run = write_airbyte(
        &crm_config(&receiver.url("/api")),
        &refreshing(5),
        input.as_bytes(),
    );
    assert_ne!(run.code, Some(0));
    let message = run.traces()[0]["trace"]["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("on_refresh") && message.contains("'users'") && message.contains("404"),
        "{message}"
    );
    assert_eq!(receiver.request_count(), 1, "only the refresh request");
    assert!(run.states().is_empty());
}
