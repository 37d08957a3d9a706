//! Body templates (`request.body`, `request.content_type`) through the binary against the
//! project's receiver: what arrives is the rendering, a record the template cannot render is
//! rejected with the reason and the others still go, and a template that does not compile stops
//! `check` and `write` before anything is read or sent.

mod common;

use common::*;
use serde_json::{json, Value};
use webhook_receiver::{Receiver, RecordedRequest};

/// A Valmi RECORD line with this data (besides `_valmi_meta`), compact like [`valmi_record`].
fn record_with(row: u64, data: Value) -> String {
    let mut data = data;
    data["_valmi_meta"] = json!({"_valmi_row_num": row, "_valmi_sync_op": "upsert"});
    let message = json!({"type": "RECORD", "record": {
        "stream": "\"valmi_app\".\"public\".\"test_user\"", "data": data,
        "emitted_at": 1685013701000u64,
    }});
    format!("{message}\n")
}

/// `write` (Valmi, one request at a time) to a fresh receiver with `request` configured (the
/// observed mapping: `id`, `email` as `em`, `uni`, ...).
fn write_templated(request: Value, stdin: &str) -> (Run, Vec<RecordedRequest>) {
    let receiver = Receiver::start_default();
    let mut extra = json!({"concurrency": 1});
    if !request.is_null() {
        extra["request"] = request;
    }
    let run = write_valmi_to(&receiver, extra, stdin.as_bytes());
    let mut requests = receiver.requests();
    requests.sort_by_key(|r| r.seq);
    (run, requests)
}

#[test]
fn a_chat_webhook_gets_its_own_text_message() {
    let body = r#"{"text": "New user {{ record.em }} ({{ op }}, row {{ row_num }})"}"#;
    let (run, requests) = write_templated(json!({"body": body}), &valmi_records(1..=3));
    assert_completed(&run);
    let texts: Vec<Value> = requests.iter().map(RecordedRequest::json).collect();
    let expected: Vec<Value> = (1..=3)
        .map(|row| json!({"text": format!("New user u{row}@x.io (upsert, row {row})")}))
        .collect();
    assert_eq!(texts, expected, "{}", run.dump());
    for request in &requests {
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert!(request.header("idempotency-key").is_some());
    }
}

#[test]
fn a_form_encoded_body_has_every_value_encoded() {
    let note = "é ü &=?+/ #";
    let body = "email={{ record.em }}&id={{ record.id }}&note={{ record.uni }}";
    let input = record_with(1, json!({"id": 1, "email": "a+b@x.io", "uni": note}));
    let (run, requests) = write_templated(
        json!({"body": body, "content_type": "application/x-www-form-urlencoded"}),
        &input,
    );
    assert_completed(&run);
    assert_eq!(requests.len(), 1, "{}", run.dump());
    let request = &requests[0];
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let pairs: Vec<(String, String)> = form_urlencoded::parse(request.body.as_bytes())
        .into_owned()
        .collect();
    let expected = [("email", "a+b@x.io"), ("id", "1"), ("note", note)];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(pairs, expected, "{}", request.body);
}

#[test]
fn a_record_missing_a_field_is_rejected_by_name_and_the_others_are_delivered() {
    let input = [
        record_with(1, json!({"id": 1, "email": "u1@x.io"})),
        record_with(2, json!({"id": 2})),
        record_with(3, json!({"id": 3, "email": "u3@x.io"})),
    ]
    .concat();
    let body = r#"{"e": "{{ record.em }}", "id": {{ record.id }}}"#;
    let (run, requests) = write_templated(json!({"body": body}), &input);
    assert_completed(&run);
    let ids: Vec<Value> = requests.iter().map(|r| r.json()["id"].clone()).collect();
    assert_eq!(ids, [json!(1), json!(3)], "{}", run.dump());
    let echo = run.rejected_records();
    assert_eq!(echo.len(), 1, "{}", run.dump());
    let record = &echo[0]["record"];
    assert_eq!(record["rejection_code"], "template_undefined", "{record}");
    let message = record["rejection_message"].as_str().unwrap_or_default();
    assert!(
        message.contains("request.body") && message.contains("'record.em'"),
        "{message}"
    );
    let finished = run
        .states()
        .last()
        .map(|s| state_data(s)["finished"].clone());
    assert_eq!(finished, Some(json!(true)), "{}", run.dump());
}

/// Under `on_client_error: fail` a record the template cannot render stops the sync: nothing of
/// it is sent, the records before it are delivered and checkpointed, none after it is sent.
#[test]
fn on_client_error_fail_stops_at_a_record_the_template_cannot_render() {
    let input = [
        record_with(1, json!({"id": 1, "email": "u1@x.io"})),
        record_with(2, json!({"id": 2})),
        record_with(3, json!({"id": 3, "email": "u3@x.io"})),
    ]
    .concat();
    let receiver = Receiver::start_default();
    let extra = json!({"concurrency": 1, "on_client_error": "fail",
        "request": {"body": r#"{"e": "{{ record.em }}", "id": {{ record.id }}}"#}});
    let run = write_valmi_to(&receiver, extra, input.as_bytes());
    let message = assert_fatal(&run, "config_error");
    assert!(
        message.contains("_valmi_row_num=2") && message.contains("'record.em'"),
        "{message}"
    );
    let ids: Vec<Value> = receiver
        .requests()
        .iter()
        .map(|r| r.json()["id"].clone())
        .collect();
    assert!(
        !ids.contains(&json!(2)) && !ids.contains(&json!(3)),
        "{ids:?}"
    );
    assert!(run.rejected_records().is_empty(), "{}", run.dump());
}

/// Ad platforms take audience members as the SHA-256 of the normalised e-mail.
#[test]
fn a_hashed_email_for_an_ads_api() {
    let input = [
        record_with(1, json!({"id": 1, "email": "  Ada@Example.COM "})),
        valmi_record(2, "delete", json!(2)),
    ]
    .concat();
    let hashed = "{{ record.em | trim | lower | sha256 }}";
    let receiver = Receiver::start_default();
    let extra = json!({"concurrency": 1,
        "request": {"body": format!(r#"{{"email_sha256": "{hashed}"}}"#)},
        "routes": {"delete": {"method": "DELETE", "path": format!("/{hashed}")}}});
    let run = write_valmi_to(&receiver, extra, input.as_bytes());
    assert_completed(&run);
    let mut requests = receiver.requests();
    requests.sort_by_key(|r| r.seq);
    let sha = |text: &str| {
        use sha2::Digest;
        sha2::Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(requests.len(), 2, "{}", run.dump());
    assert_eq!(
        requests[0].json(),
        json!({"email_sha256": sha("ada@example.com")})
    );
    assert_eq!(requests[1].method, "DELETE");
    assert_eq!(requests[1].path, format!("/hook/{}", sha("u2@x.io")));
}

#[test]
fn default_allows_absence() {
    let input = record_with(1, json!({"id": 1}));
    let body = r#"{"e": "{{ record.em | default('unknown') }}"}"#;
    let (run, requests) = write_templated(json!({"body": body}), &input);
    assert_completed(&run);
    assert_eq!(requests.len(), 1, "{}", run.dump());
    assert_eq!(requests[0].json(), json!({"e": "unknown"}));
}

#[test]
fn a_body_that_is_not_json_is_rejected_never_sent() {
    let input = valmi_records(1..=2);
    let (run, requests) = write_templated(json!({"body": r#"{"e": {{ record.em }}}"#}), &input);
    assert_completed(&run);
    assert!(requests.is_empty(), "sent: {:?}", requests[0].body);
    let echo = run.rejected_records();
    assert_eq!(echo.len(), 2, "{}", run.dump());
    assert_eq!(echo[0]["record"]["rejection_code"], "template_not_json");
}

#[test]
fn quotes_and_backslashes_in_values_stay_valid_json() {
    let name = "O\"Brien \\ \n <b>&'";
    let input = record_with(1, json!({"id": 1, "email": name}));
    let body = r#"{"name": "{{ record.em }}", "upper": "{{ record.em | upper }}"}"#;
    let (run, requests) = write_templated(json!({"body": body}), &input);
    assert_completed(&run);
    assert_eq!(requests.len(), 1, "{}", run.dump());
    let sent = requests[0].json();
    assert_eq!(sent["name"], name);
    assert_eq!(sent["upper"], name.to_uppercase());
}

#[test]
fn the_envelope_through_tojson_is_the_default_body_byte_for_byte() {
    let input = valmi_records(1..=4);
    let (plain, default_requests) = write_templated(Value::Null, &input);
    let (templated, templated_requests) =
        write_templated(json!({"body": "{{ envelope | tojson }}"}), &input);
    assert_completed(&plain);
    assert_completed(&templated);
    let bodies = |requests: &[RecordedRequest]| -> Vec<String> {
        requests.iter().map(|r| r.body.clone()).collect()
    };
    assert_eq!(default_requests.len(), 4);
    assert_eq!(bodies(&templated_requests), bodies(&default_requests));
    assert_eq!(
        templated_requests[0].header("idempotency-key"),
        default_requests[0].header("idempotency-key")
    );
}

#[test]
fn a_template_that_does_not_compile_fails_check_and_write_with_its_line_and_column() {
    let receiver = Receiver::start_default();
    let request = json!({"body": "{\n  \"a\": {{ record.a }\n}"});
    let config = config(&receiver.url("/hook"), json!({ "request": request }));
    let checked = run_check(&config);
    let status = &checked.messages[0]["connectionStatus"];
    assert_eq!(status["status"], "FAILED", "{}", checked.dump());
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("request.body") && message.contains("(line 2, column"),
        "{message}"
    );
    let run = write_valmi(&config, valmi_records(1..=2).as_bytes());
    let said = assert_fatal(&run, "config_error");
    assert!(
        said.contains("request.body") && said.contains("line 2"),
        "{said}"
    );
    assert_eq!(receiver.request_count(), 0);
}

#[test]
fn check_renders_a_sample_record_and_fails_a_body_that_is_not_json() {
    let receiver = Receiver::start_default();
    let check = |request: serde_json::Value| {
        let config = config(&receiver.url("/hook"), json!({ "request": request }));
        let checked = run_check(&config);
        checked.messages[0]["connectionStatus"].clone()
    };
    let broken = check(json!({"body": r#"{"id": {{ record.id }}, "e": "{{ record.em }}""#}));
    assert_eq!(broken["status"], "FAILED", "{broken}");
    let message = broken["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("a sample record cannot be sent: request.body"),
        "{message}"
    );
    let good =
        check(json!({"body": r#"{"id": {{ record.id }}, "at": "{{ record.at | dateformat }}"}"#}));
    assert_eq!(good["status"], "SUCCEEDED", "{good}");
    assert!(
        !good["message"].as_str().unwrap().contains("note"),
        "{good}"
    );
    let guessed = check(json!({"body": r#"{"n": {{ record.n + 1 }}}"#}));
    assert_eq!(guessed["status"], "SUCCEEDED", "{guessed}");
    let message = guessed["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("no record was sent; note: a sample record")
            && message.contains("record.n"),
        "{message}"
    );
    assert_eq!(receiver.request_count(), 0);
}

#[test]
fn a_dry_run_shows_the_rendered_request() {
    let receiver = Receiver::start_default();
    let request = json!({"body": r#"{"text": "hello {{ record.em }}"}"#,
        "headers": ["X-Row: {{ row_num }}", "Authorization: Bearer {{ record.em }}"]});
    let routes = json!({"delete": {"method": "DELETE", "path": "/c/{{ record.id }}"}});
    let config = config(
        &receiver.url("/hook"),
        json!({ "request": request, "routes": routes }),
    );
    let dir = Workdir::new();
    let mut args = valmi_args(&dir, &config, None, None);
    args.push("--dry-run".into());
    let input = [
        valmi_record(1, "upsert", json!(1)),
        valmi_record(2, "delete", json!(2)),
    ]
    .concat();
    let run = run(&str_args(&args), input.as_bytes());
    assert_completed(&run);
    let shown = run.logs("INFO").join("\n");
    assert!(shown.contains(r#"{"text": "hello u1@x.io"}"#), "{shown}");
    assert!(
        shown.contains("x-row: 1"),
        "templated headers are shown: {shown}"
    );
    assert!(shown.contains("authorization: <redacted>"), "{shown}");
    assert!(!shown.contains("Bearer u1@x.io"), "{shown}");
    assert!(shown.contains("DELETE http://127.0.0.1:"), "{shown}");
    assert!(shown.contains("/hook/c/2"), "{shown}");
    assert_eq!(receiver.request_count(), 0);
}

#[test]
fn a_path_template_sends_each_record_to_its_own_url_and_a_value_cannot_escape_its_segment() {
    let input = [
        record_with(1, json!({"id": 7, "email": "a@x.io"})),
        record_with(2, json!({"id": "../admin?x=1#", "email": "b@x.io"})),
        record_with(3, json!({"id": "..", "email": "c@x.io"})),
    ]
    .concat();
    let request = json!({"path": "/contacts/{{ record.id }}?source=sync", "body": r#"{"e": "{{ record.em }}"}"#});
    let (run, requests) = write_templated(request, &input);
    assert_completed(&run);
    let sent: Vec<(String, String, Value)> = requests
        .iter()
        .map(|r| (r.method.clone(), r.path.clone(), r.json()))
        .collect();
    assert_eq!(
        sent,
        [
            (
                "POST".into(),
                "/hook/contacts/7?source=sync".into(),
                json!({"e": "a@x.io"})
            ),
            (
                "POST".into(),
                "/hook/contacts/..%2Fadmin%3Fx%3D1%23?source=sync".into(),
                json!({"e": "b@x.io"})
            ),
        ],
        "{}",
        run.dump()
    );
    let echo = run.rejected_records();
    assert_eq!(echo.len(), 1, "{}", run.dump());
    assert_eq!(echo[0]["record"]["rejection_code"], "template_error");
    let message = echo[0]["record"]["rejection_message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("request.path: the value '..'"),
        "{message}"
    );
}

#[test]
fn a_get_with_a_path_template_keeps_its_parameters_after_the_templates() {
    let receiver = Receiver::start_default();
    let extra = json!({"method": "GET", "request": {"path": "/users/{{ record.id }}"}});
    let run = write_valmi_to(&receiver, extra, valmi_records(1..=1).as_bytes());
    assert_completed(&run);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1, "{}", run.dump());
    assert!(
        requests[0].path.starts_with("/hook/users/1?"),
        "{}",
        requests[0].path
    );
    assert!(requests[0].path.contains("&id=1&"), "{}", requests[0].path);
}

#[test]
fn a_path_template_with_batching_is_a_config_error() {
    let receiver = Receiver::start_default();
    let config = config(
        &receiver.url("/hook"),
        json!({"batch_size": 10, "request": {"path": "/x/{{ record.id }}"}}),
    );
    let run = write_valmi(&config, valmi_records(1..=2).as_bytes());
    let said = assert_fatal(&run, "config_error");
    assert!(
        said.contains("request.path") && said.contains("batch_size"),
        "{said}"
    );
    assert_eq!(receiver.request_count(), 0);
}

#[test]
fn header_templates_are_rendered_per_record_and_a_line_break_rejects_the_record() {
    let input = [
        record_with(1, json!({"id": 1, "email": "acme"})),
        record_with(2, json!({"id": 2, "email": "evil\r\nX-Admin: 1"})),
        record_with(3, json!({"id": 3, "email": "globex"})),
    ]
    .concat();
    let request = json!({"headers": ["X-Tenant: t-{{ record.em }}"]});
    let (run, requests) = write_templated(request, &input);
    assert_completed(&run);
    let tenants: Vec<Option<&str>> = requests.iter().map(|r| r.header("x-tenant")).collect();
    assert_eq!(
        tenants,
        [Some("t-acme"), Some("t-globex")],
        "{}",
        run.dump()
    );
    assert!(requests.iter().all(|r| r.header("x-admin").is_none()));
    // Without a body template the body is still the envelope.
    assert_eq!(body_rows(&requests[1].json()), [3]);
    let echo = run.rejected_records();
    assert_eq!(echo.len(), 1, "{}", run.dump());
    let message = echo[0]["record"]["rejection_message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("request.headers") && message.contains("'x-tenant'"),
        "{message}"
    );
}

#[test]
fn a_header_template_for_a_header_the_connector_sets_is_refused() {
    let receiver = Receiver::start_default();
    let request = json!({"headers": ["Idempotency-Key: {{ record.id }}"]});
    let config = config(&receiver.url("/hook"), json!({ "request": request }));
    let run = write_valmi(&config, valmi_records(1..=1).as_bytes());
    let said = assert_fatal(&run, "config_error");
    assert!(
        said.contains("request.headers: [0]") && said.contains("Idempotency-Key"),
        "{said}"
    );
    assert_eq!(receiver.request_count(), 0);
}

#[test]
fn each_record_sees_its_own_stream() {
    let in_stream = |row: u64, stream: &str| {
        record_with(row, json!({"id": row}))
            .replace(r#"\"valmi_app\".\"public\".\"test_user\""#, stream)
    };
    let input = [in_stream(1, "a"), in_stream(2, "b"), in_stream(3, "a")].concat();
    let (run, requests) = write_templated(json!({"body": r#"{"s": "{{ stream }}"}"#}), &input);
    assert_completed(&run);
    let streams: Vec<String> = requests
        .iter()
        .map(|r| r.json()["s"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(streams, ["a", "b", "a"], "{}", run.dump());
}
