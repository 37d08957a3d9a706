//! The binary as an orchestrator sees it: `spec`, `check`, `discover` and the usage errors, the
//! Airbyte acceptance-test inputs shipped in `integration_tests/`, and the Dockerfile that packages
//! it. Every endpoint is a real server on 127.0.0.1.

mod common;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{
    closed_port, messages_of_type, path_str, run, run_check, str_args, write_args, Run, Workdir,
};
use serde_json::{json, Value};
use webhook_receiver::Receiver;

const AIRBYTE_SYNC_MODES: [&str; 5] = [
    "append",
    "append_dedup",
    "overwrite",
    "update",
    "soft_delete",
];

/// A file of the repository (not a test fixture), e.g. `spec/spec.json`.
fn repo(rel: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    assert!(path.exists(), "missing {}", path.display());
    path
}

fn repo_text(rel: &str) -> String {
    std::fs::read_to_string(repo(rel)).unwrap()
}

fn repo_json(rel: &str) -> Value {
    let text = repo_text(rel);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"))
}

/// The message of a run that printed exactly one stdout line.
fn only_message(run: &Run) -> &Value {
    assert_eq!(
        run.stdout.lines().count(),
        1,
        "expected exactly one stdout line\nstdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    &run.messages[0]
}

/// The one answer of `spec`/`check`/`discover`: exactly one stdout line, exit 0, no panic.
fn only_answer<'a>(run: &'a Run, kind: &str) -> &'a Value {
    assert_eq!(only_message(run)["type"], kind, "stdout: {}", run.stdout);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "stderr: {}", run.stderr);
    &run.messages[0]
}

/// The only answer of a `check` run: (status, message).
fn status_of(run: &Run) -> (String, String) {
    let status = &only_answer(run, "CONNECTION_STATUS")["connectionStatus"];
    (
        status["status"].as_str().unwrap().to_string(),
        status["message"].as_str().unwrap_or_default().to_string(),
    )
}

/// Runs `check` with `config` written to a temporary file; returns (status, message).
fn check(config: &Value) -> (String, String) {
    status_of(&run_check(config))
}

fn check_file(path: &Path) -> (String, String) {
    status_of(&run(&["check", "--config", path_str(path)], b""))
}

/// The one TRACE ERROR of a failed command, with a non-zero exit and no panic; returns `error`.
fn only_trace_error(run: &Run) -> &Value {
    let trace = only_message(run);
    assert_eq!(trace["type"], "TRACE", "stdout: {}", run.stdout);
    assert_eq!(trace["trace"]["type"], "ERROR", "stdout: {}", run.stdout);
    // Milliseconds since the epoch, now: after 2020-09-13 (1.6e12 ms) and before 2100.
    let emitted_at = trace["trace"]["emitted_at"].as_f64().unwrap_or(0.0);
    assert!((1.6e12..4.1e12).contains(&emitted_at), "{trace}");
    let error = &trace["trace"]["error"];
    let message = error["message"]
        .as_str()
        .expect("error.message is a string");
    assert!(!message.trim().is_empty(), "empty message: {trace}");
    assert!(
        !message.contains('\n'),
        "message is not one line: {message:?}"
    );
    assert!(
        ["config_error", "transient_error", "system_error"]
            .contains(&error["failure_type"].as_str().unwrap_or_default()),
        "{trace}"
    );
    assert!(
        matches!(run.code, Some(c) if c != 0),
        "exit code {:?}",
        run.code
    );
    assert!(!run.stderr.contains("panicked"), "stderr: {}", run.stderr);
    error
}

fn with_url(mut config: Value, url: &str) -> Value {
    config["url"] = Value::String(url.to_string());
    config
}

fn walk<'a>(v: &'a Value, path: String, out: &mut Vec<(String, &'a Value)>) {
    out.push((path.clone(), v));
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, v)| walk(v, format!("{path}/{k}"), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| walk(v, format!("{path}/{i}"), out)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// spec

#[test]
fn spec_prints_one_message_equal_to_the_checked_in_spec() {
    let run = run(&["spec"], b"");
    let message = only_answer(&run, "SPEC");
    assert_eq!(message["spec"], repo_json("spec/spec.json"));
    assert_eq!(
        run.stdout.trim_end(),
        serde_json::to_string(message).unwrap(),
        "spec is one compact JSON line"
    );
}

#[test]
fn spec_follows_the_airbyte_acceptance_rules() {
    let run = run(&["spec"], b"");
    let spec = &only_answer(&run, "SPEC")["spec"];

    let doc = spec["documentationUrl"].as_str().expect("documentationUrl");
    let doc = url::Url::parse(doc).unwrap_or_else(|e| panic!("documentationUrl {doc}: {e}"));
    assert!(["http", "https"].contains(&doc.scheme()), "{doc}");

    let modes = spec["supported_destination_sync_modes"].as_array().unwrap();
    assert!(!modes.is_empty());
    for mode in modes {
        assert!(
            AIRBYTE_SYNC_MODES.contains(&mode.as_str().unwrap_or_default()),
            "not an Airbyte destination sync mode: {mode}"
        );
    }

    let schema = &spec["connectionSpecification"];
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["additionalProperties"], true);

    let mut nodes = Vec::new();
    walk(schema, String::new(), &mut nodes);
    let secretish = [
        "token",
        "password",
        "secret",
        "key",
        "credential",
        "certificate",
        "passphrase",
        "private",
    ];
    let forbidden = [
        "anyOf",
        "allOf",
        "not",
        "patternProperties",
        "prefixItems",
        "if",
        "then",
        "else",
        "dependentSchemas",
        "dependentRequired",
    ];
    for (path, node) in &nodes {
        let Some(map) = node.as_object() else {
            continue;
        };
        let is_property_map = path.ends_with("/properties");
        for key in map.keys() {
            assert_ne!(key, "$ref", "$ref at {path}");
            if !is_property_map {
                assert!(!forbidden.contains(&key.as_str()), "{key} at {path}");
            }
        }
        if let Some(value) = map.get("additionalProperties") {
            if !is_property_map {
                assert_eq!(value, true, "additionalProperties at {path}");
            }
        }
        if let Some(props) = map.get("properties").and_then(Value::as_object) {
            for (name, prop) in props {
                let lower = name.to_lowercase();
                if secretish.iter().any(|w| lower.contains(w)) {
                    assert_eq!(
                        prop["airbyte_secret"], true,
                        "{path}/properties/{name} looks like a secret but is not airbyte_secret"
                    );
                }
                if let Some(types) = prop["type"].as_array() {
                    assert!(
                        types.len() == 1 || (types.len() == 2 && types[1] == "null"),
                        "{path}/properties/{name}: type {types:?}"
                    );
                }
            }
        }
        if let Some(options) = map.get("enum").and_then(Value::as_array) {
            let distinct: BTreeSet<String> = options.iter().map(Value::to_string).collect();
            assert_eq!(
                distinct.len(),
                options.len(),
                "{path}: duplicate enum values"
            );
        }
        if let Some(branches) = map.get("oneOf").and_then(Value::as_array) {
            assert!(!branches.is_empty(), "{path}: empty oneOf");
            let shared: Vec<&String> = branches[0]["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("{path}: oneOf branch without properties"))
                .keys()
                .filter(|k| {
                    branches
                        .iter()
                        .all(|b| b["properties"][k.as_str()]["const"].is_string())
                })
                .collect();
            assert_eq!(
                shared.len(),
                1,
                "{path}: oneOf needs exactly one const discriminator shared by all branches"
            );
            let discriminator = shared[0].as_str();
            let mut consts = BTreeSet::new();
            for (i, b) in branches.iter().enumerate() {
                assert_eq!(b["type"], "object", "{path}/oneOf/{i}");
                let prop = &b["properties"][discriminator];
                assert!(prop.get("default").is_none(), "{path}/oneOf/{i}: default");
                assert!(prop.get("enum").is_none(), "{path}/oneOf/{i}: enum");
                assert!(
                    b["required"]
                        .as_array()
                        .is_some_and(|r| r.contains(&json!(discriminator))),
                    "{path}/oneOf/{i}: discriminator {discriminator} not required"
                );
                assert!(
                    consts.insert(prop["const"].to_string()),
                    "{path}/oneOf/{i}: const repeated"
                );
            }
        }
        if map.get("type") == Some(&json!("array")) {
            let items = &map["items"];
            assert!(
                ["object", "string", "number", "integer"]
                    .contains(&items["type"].as_str().unwrap_or_default())
                    || items.get("enum").is_some(),
                "{path}: array items must be object, string, number or an enum"
            );
        }
    }
}

/// Airbyte CAT `test_oneof_usage` also requires the node holding a `oneOf` to be
/// `"type": "object"`; the `auth` property has no `type` at all.
#[test]

fn spec_oneof_holders_are_objects() {
    let run = run(&["spec"], b"");
    let schema = &only_answer(&run, "SPEC")["spec"]["connectionSpecification"];
    let mut nodes = Vec::new();
    walk(schema, String::new(), &mut nodes);
    for (path, node) in nodes {
        if node.get("oneOf").is_some() {
            assert_eq!(
                node["type"], "object",
                "{path} holds a oneOf but is not an object"
            );
        }
    }
}

/// The Airbyte protocol YAML, read by indentation: the lines of one top-level definition.
fn yaml_definition<'a>(yaml: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!("  {name}:");
    let mut lines = yaml.lines().skip_while(|l| l.trim_end() != header);
    assert!(
        lines.next().is_some(),
        "{name} not found in the protocol YAML"
    );
    lines
        .take_while(|l| l.trim().is_empty() || l.starts_with("   "))
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect()
}

/// `- item` lines directly under `key:` at `indent` spaces.
fn yaml_list(lines: &[&str], key: &str, indent: usize) -> Vec<String> {
    let header = format!("{}{key}:", " ".repeat(indent));
    lines
        .iter()
        .skip_while(|l| l.trim_end() != header)
        .skip(1)
        .take_while(|l| l.len() - l.trim_start().len() > indent)
        .filter_map(|l| l.trim().strip_prefix("- "))
        .map(|s| s.trim().trim_matches('"').to_string())
        .collect()
}

/// For each property at `indent` spaces under `properties:`, its `type:` (if it declares one).
fn yaml_property_types(lines: &[&str], indent: usize) -> Vec<(String, Option<String>)> {
    let header = format!("{}properties:", " ".repeat(indent - 2));
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for line in lines
        .iter()
        .skip_while(|l| l.trim_end() != header)
        .skip(1)
        .take_while(|l| l.len() - l.trim_start().len() >= indent)
    {
        let depth = line.len() - line.trim_start().len();
        let text = line.trim();
        if depth == indent {
            out.push((text.trim_end_matches(':').to_string(), None));
        } else if depth == indent + 2 {
            if let (Some(last), Some(t)) = (out.last_mut(), text.strip_prefix("type:")) {
                last.1 = Some(t.trim().to_string());
            }
        }
    }
    out
}

fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[test]
fn spec_is_a_connector_specification_of_the_airbyte_protocol() {
    let yaml = common::read_fixture("airbyte/airbyte_protocol_v0.yaml");
    let definition = yaml_definition(&yaml, "ConnectorSpecification");
    let required = yaml_list(&definition, "required", 4);
    assert_eq!(
        required,
        ["connectionSpecification"],
        "protocol YAML read wrongly"
    );
    let declared = yaml_property_types(&definition, 6);
    for (name, t) in [
        ("documentationUrl", "string"),
        ("connectionSpecification", "object"),
        ("supportsIncremental", "boolean"),
        ("supported_destination_sync_modes", "array"),
    ] {
        assert!(
            declared
                .iter()
                .any(|(n, d)| n == name && d.as_deref() == Some(t)),
            "protocol YAML read wrongly: {declared:?}"
        );
    }
    let sync_modes = yaml_list(&yaml_definition(&yaml, "DestinationSyncMode"), "enum", 4);
    assert!(
        sync_modes.contains(&"append".to_string()),
        "protocol YAML read wrongly: {sync_modes:?}"
    );
    let mut expected_modes = sync_modes.clone();
    expected_modes.sort();
    let mut contract_modes = AIRBYTE_SYNC_MODES.map(String::from).to_vec();
    contract_modes.sort();
    assert_eq!(
        expected_modes, contract_modes,
        "CONNECTOR.md and the protocol disagree"
    );

    let run = run(&["spec"], b"");
    let spec = only_answer(&run, "SPEC")["spec"].as_object().unwrap();
    for key in &required {
        assert!(spec.contains_key(key), "spec lacks required {key}");
    }
    for (key, value) in spec {
        let (_, declared_type) = declared
            .iter()
            .find(|(name, _)| name == key)
            .unwrap_or_else(|| panic!("{key} is not a ConnectorSpecification property"));
        if let Some(t) = declared_type {
            assert_eq!(json_type_name(value), t, "{key}");
        }
    }
    assert!(spec["connectionSpecification"].is_object());
    assert!(spec["documentationUrl"].is_string());
    for mode in spec["supported_destination_sync_modes"].as_array().unwrap() {
        assert!(
            sync_modes.iter().any(|m| mode == m),
            "{mode} is not a DestinationSyncMode of the protocol ({sync_modes:?})"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The acceptance-test config and the integration_tests inputs

/// `connector_image` and the (config_path, status) pairs of the connection tests, by line scan.
fn acceptance_config() -> (String, Vec<(String, String)>) {
    let text = repo_text("acceptance-test-config.yml");
    let value = |line: &str, key: &str| {
        line.trim()
            .trim_start_matches("- ")
            .strip_prefix(key)
            .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_string())
    };
    let image = text
        .lines()
        .find_map(|l| value(l, "connector_image:"))
        .expect("connector_image");
    let mut tests: Vec<(String, String)> = Vec::new();
    let connection = text
        .lines()
        .skip_while(|l| l.trim() != "connection:")
        .skip(1)
        .take_while(|l| l.starts_with("    ") || l.trim().is_empty());
    for line in connection {
        if let Some(path) = value(line, "config_path:") {
            tests.push((path, "succeed".to_string()));
        } else if let Some(status) = value(line, "status:") {
            tests.last_mut().expect("status before config_path").1 = status;
        }
    }
    (image, tests)
}

#[test]
fn acceptance_connection_tests_pass() {
    let (image, tests) = acceptance_config();
    assert_eq!(image, "valmi/destination-webhook:dev");
    assert_eq!(
        tests.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(),
        ["succeed", "failed"],
        "{tests:?}"
    );
    for (path, status) in &tests {
        let config = repo_json(path);
        match status.as_str() {
            "succeed" => {
                assert_eq!(
                    config,
                    json!({"url": "http://127.0.0.1:8000/hook", "method": "POST"}),
                    "integration_tests/README.md documents this endpoint"
                );
                let receiver = Receiver::start_default();
                let (status, message) = check(&with_url(config, &receiver.url("/hook")));
                assert_eq!(status, "SUCCEEDED", "{path}: {message}");
                std::thread::sleep(Duration::from_millis(200));
                assert_eq!(receiver.request_count(), 0, "check delivered something");
                assert!(receiver.requests().is_empty());
            }
            "failed" => {
                let (status, message) = check_file(&repo(path));
                assert_eq!(status, "FAILED", "{path}: {message}");
                assert!(message.contains("method"), "{message}");
                assert!(message.contains("url"), "{message}");
            }
            other => panic!("unexpected status {other}"),
        }
    }
}

#[test]
fn acceptance_spec_test_points_at_the_checked_in_spec_and_a_valid_config() {
    let text = repo_text("acceptance-test-config.yml");
    let spec_section: Vec<&str> = text
        .lines()
        .skip_while(|l| l.trim() != "spec:")
        .take_while(|l| l.trim() != "connection:")
        .collect();
    assert!(
        spec_section
            .iter()
            .any(|l| l.trim().trim_start_matches("- ") == "spec_path: spec/spec.json"),
        "{spec_section:?}"
    );
    // CAT's spec tests also validate a config against the spec; without `config_path` they read
    // secrets/config.json, which a clean clone does not have.
    assert!(
        spec_section
            .iter()
            .any(|l| l.trim().trim_start_matches("- ")
                == "config_path: integration_tests/config.json"),
        "{spec_section:?}"
    );
}

#[test]
fn integration_tests_inputs_are_well_formed() {
    let catalog = repo_json("integration_tests/configured_catalog.json");
    let streams = catalog["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1);
    let stream = &streams[0];
    assert_eq!(stream["stream"]["name"], "users");
    assert!(stream["stream"]["json_schema"].is_object());
    assert!(!stream["stream"]["supported_sync_modes"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(stream["sync_mode"].is_string());
    assert_eq!(stream["destination_sync_mode"], "append_dedup");
    assert_eq!(stream["primary_key"], json!([["id"]]));

    let messages = common::jsonl(&repo_text("integration_tests/messages.jsonl"));
    assert!(messages
        .iter()
        .filter(|m| m["type"] == "RECORD")
        .all(|m| m["record"]["stream"] == "users" && m["record"]["data"]["id"].is_number()));
    assert!(messages.iter().filter(|m| m["type"] == "RECORD").count() >= 3);
    assert!(messages.iter().any(|m| m["type"] == "STATE"));

    assert_eq!(
        repo_json("integration_tests/valmi_destination_catalog.json"),
        common::fixture_json("valmi/observed/dest_catalog.json")
    );
    assert_eq!(
        repo_json("integration_tests/valmi_source_catalog.json"),
        common::fixture_json("valmi/observed/source_catalog.json")
    );
    assert_eq!(
        common::jsonl(&repo_text("integration_tests/valmi_messages.jsonl")),
        common::jsonl(&common::read_fixture("valmi/observed/messages8.jsonl"))
    );
    assert!(repo_text("integration_tests/README.md")
        .contains("cargo run -p webhook-receiver -- --port 8000"));
}

/// `write` of `input` with integration_tests/config.json pointed at `receiver` and the repository
/// files `catalog` (and `destination_catalog` for Valmi): exit 0 and no TRACE.
fn write_integration_tests_inputs(
    receiver: &Receiver,
    catalog: &str,
    destination_catalog: Option<&str>,
    input: &str,
) -> Run {
    let work = Workdir::new();
    let config = work.write_json(
        "config.json",
        &with_url(
            repo_json("integration_tests/config.json"),
            &receiver.url("/hook"),
        ),
    );
    let destination_catalog = destination_catalog.map(repo);
    let args = write_args(
        &config,
        &repo(catalog),
        destination_catalog.as_deref(),
        None,
    );
    let run = run(&str_args(&args), input.as_bytes());
    assert_eq!(
        run.code,
        Some(0),
        "stdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    assert!(run.traces().is_empty(), "{}", run.stdout);
    run
}

#[test]
fn integration_tests_inputs_drive_an_airbyte_write() {
    let receiver = Receiver::start_default();
    let input = repo_text("integration_tests/messages.jsonl");
    let run = write_integration_tests_inputs(
        &receiver,
        "integration_tests/configured_catalog.json",
        None,
        &input,
    );
    let records = messages_of_type(&input, "RECORD").len();
    assert_eq!(receiver.requests().len(), records);
    let input_states: Vec<Value> = messages_of_type(&input, "STATE")
        .iter()
        .map(|m| m["state"]["stream"].clone())
        .collect();
    assert_eq!(
        run.state_fields("stream"),
        input_states,
        "every input STATE is echoed once delivered"
    );
}

#[test]
fn integration_tests_inputs_drive_a_valmi_write() {
    let receiver = Receiver::start_default();
    let input = repo_text("integration_tests/valmi_messages.jsonl");
    let run = write_integration_tests_inputs(
        &receiver,
        "integration_tests/valmi_source_catalog.json",
        Some("integration_tests/valmi_destination_catalog.json"),
        &input,
    );
    assert_eq!(receiver.requests().len(), common::jsonl(&input).len());
    let last = run.states().last().copied().expect("a final STATE").clone();
    assert_eq!(last["state"]["data"]["finished"], true, "{last}");
}

// ---------------------------------------------------------------------------------------------
// check

#[test]
fn check_against_a_closed_port_says_connection_refused() {
    let port = closed_port();
    let (status, message) = check(&json!({
        "url": format!("http://127.0.0.1:{port}/hook"), "timeout_seconds": 5
    }));
    assert_eq!(status, "FAILED");
    assert!(
        message.to_lowercase().contains("connection refused"),
        "{message}"
    );
    assert!(message.contains(&port.to_string()), "{message}");
}

#[test]
fn check_against_an_unresolvable_host_says_so() {
    let (status, message) = check(&json!({
        "url": "http://nonexistent.invalid/", "timeout_seconds": 10
    }));
    assert_eq!(status, "FAILED");
    assert!(
        message.to_lowercase().contains("could not resolve host"),
        "{message}"
    );
    assert!(message.contains("nonexistent.invalid"), "{message}");
}

#[test]
fn check_with_https_against_plain_http_reports_tls() {
    let receiver = Receiver::start_default();
    let url = receiver.url("/hook").replacen("http://", "https://", 1);
    let (status, message) = check(&json!({"url": url, "timeout_seconds": 5}));
    assert_eq!(status, "FAILED");
    assert!(message.contains("TLS"), "{message}");
    assert!(
        receiver.requests().iter().all(|r| r.status != 200),
        "nothing can have been delivered"
    );
}

#[test]
fn check_gives_up_on_a_silent_tls_server_within_the_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and holds every connection without ever answering the ClientHello.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let run = run_check(&json!({
        "url": format!("https://127.0.0.1:{port}/hook"), "timeout_seconds": 1
    }));
    let (status, message) = status_of(&run);
    assert_eq!(status, "FAILED");
    assert!(
        message.contains("TLS") && message.contains("timed out"),
        "{message}"
    );
    assert!(
        run.elapsed < Duration::from_secs(5),
        "took {:?}",
        run.elapsed
    );
}

#[test]
fn check_failures_never_show_credentials() {
    let port = closed_port();
    for url in [
        format!("http://alice:pw-s3cr3t@127.0.0.1:{port}/hook"),
        "http://alice:pw-s3cr3t@nonexistent.invalid/".to_string(),
    ] {
        let (status, message) = check(&json!({
            "url": url, "timeout_seconds": 5,
            "auth": {"type": "bearer", "token": "tok-s3cr3t"},
            "signing_secret": "whsec-s3cr3t"
        }));
        assert_eq!(status, "FAILED");
        assert!(!message.contains("s3cr3t"), "{message}");
    }
}

#[test]
fn check_accepts_old_valmi_configs() {
    let receiver = Receiver::start_default();
    for fixture in [
        "valmi/upstream/secrets/config.json",
        "valmi/observed/config_post.json",
        "valmi/observed/config_get.json",
    ] {
        let config = with_url(common::fixture_json(fixture), &receiver.url("/hook"));
        let (status, message) = check(&config);
        assert_eq!(status, "SUCCEEDED", "{fixture}: {message}");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(receiver.request_count(), 0, "check delivered something");
}

// ---------------------------------------------------------------------------------------------
// discover

#[test]
fn discover_prints_the_valmi_sink_catalog() {
    let modes = ["upsert", "mirror", "append", "update", "create"];
    let entry = json!({
        "json_schema": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": {}},
        "allow_freeform_fields": true,
        "supported_destination_ids": []
    });
    let field_catalog: serde_json::Map<String, Value> = modes
        .iter()
        .map(|m| (m.to_string(), entry.clone()))
        .collect();
    let expected = json!({"type": "CATALOG", "catalog": {"sinks": [{
        "name": "Webhook",
        "label": "Webhook",
        "supported_destination_sync_modes": modes,
        "field_catalog": field_catalog
    }]}});
    let run = run(
        &[
            "discover",
            "--config",
            path_str(&repo("integration_tests/config.json")),
        ],
        b"",
    );
    assert_eq!(only_answer(&run, "CATALOG"), &expected);
}

// ---------------------------------------------------------------------------------------------
// Usage errors and config errors

#[test]
fn usage_errors_are_one_trace_error_and_a_nonzero_exit() {
    let work = Workdir::new();
    let config = work.write_json("config.json", &json!({"url": "http://127.0.0.1:9/hook"}));
    let missing = work.dir.path().join("no-such-catalog.json");
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("no subcommand", vec![]),
        ("unknown subcommand", vec!["frobnicate"]),
        ("check without --config", vec!["check"]),
        ("discover without --config", vec!["discover"]),
        (
            "write with a missing catalog file",
            vec![
                "write",
                "--config",
                path_str(&config),
                "--catalog",
                path_str(&missing),
            ],
        ),
        (
            "check with a missing config file",
            vec!["check", "--config", path_str(&missing)],
        ),
    ];
    for (what, args) in cases {
        let run = run(&args, b"");
        let error = only_trace_error(&run);
        if what == "unknown subcommand" {
            assert!(
                error["message"].as_str().unwrap().contains("frobnicate"),
                "{what}: {error}"
            );
        }
        if what.contains("missing") {
            assert!(
                error["message"]
                    .as_str()
                    .unwrap()
                    .contains("no-such-catalog.json"),
                "{what}: {error}"
            );
        }
    }
}

/// CONNECTOR.md section 2: the `message` of a usage error is one line "a person can act on".
#[test]
fn usage_error_messages_say_what_is_missing() {
    let message = |args: &[&str]| {
        only_trace_error(&run(args, b""))["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let no_subcommand = message(&[]);
    assert!(
        no_subcommand.contains("subcommand") || no_subcommand.contains("spec, check"),
        "{no_subcommand}"
    );
    // clap's own words, without its usage block and its pointer to --help.
    assert_eq!(
        message(&["check"]),
        "usage: the following required arguments were not provided: --config <CONFIG>"
    );
    assert_eq!(
        message(&["spec", "--bogus"]),
        "usage: unexpected argument '--bogus' found"
    );
}

/// Help and the version are answers a person asked for, not usage errors: on stderr, nothing on
/// stdout (where an orchestrator reads protocol messages), exit 0.
#[test]
fn help_and_version_go_to_stderr_and_exit_0() {
    for (args, says) in [
        (
            ["--help"],
            "Usage: destination-webhook <COMMAND>".to_string(),
        ),
        (
            ["--version"],
            format!("destination-webhook {}", env!("CARGO_PKG_VERSION")),
        ),
    ] {
        let run = run(&args, b"");
        assert_eq!(run.code, Some(0), "{}", run.dump());
        assert_eq!(run.stdout, "", "{args:?}");
        assert!(run.stderr.contains(&says), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn write_with_the_invalid_acceptance_config_is_a_config_error() {
    let args = write_args(
        &repo("integration_tests/invalid_config.json"),
        &repo("integration_tests/configured_catalog.json"),
        None,
        None,
    );
    let run = run(
        &str_args(&args),
        repo_text("integration_tests/messages.jsonl").as_bytes(),
    );
    let error = only_trace_error(&run);
    assert_eq!(error["failure_type"], "config_error", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("method") && message.contains("url"),
        "{message}"
    );
}

// ---------------------------------------------------------------------------------------------
// Dockerfile

/// Dockerfile instructions with continuation lines joined and comments dropped.
fn dockerfile_instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (keyword, rest) = current
            .split_once(char::is_whitespace)
            .unwrap_or((&current, ""));
        out.push((keyword.to_uppercase(), rest.trim().to_string()));
        current.clear();
    }
    out
}

/// `KEY=VALUE` pairs of an ENV or LABEL instruction (values without spaces, quotes stripped).
fn key_values(rest: &str) -> Vec<(String, String)> {
    rest.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

#[test]
fn dockerfile_follows_the_airbyte_image_conventions() {
    let dockerfile = repo_text("Dockerfile");
    let instructions = dockerfile_instructions(&dockerfile);
    let all = |kw: &str| -> Vec<&str> {
        instructions
            .iter()
            .filter(|(k, _)| k == kw)
            .map(|(_, r)| r.as_str())
            .collect()
    };

    let args = all("ARG");
    assert!(
        args.contains(&"BUILD_IMAGE=rust:1.95-slim-bookworm"),
        "{args:?}"
    );
    assert!(
        args.contains(&"RUNTIME_IMAGE=debian:bookworm-slim"),
        "{args:?}"
    );
    assert_eq!(all("FROM").len(), 2, "multi-stage build");

    let entrypoint: Vec<String> =
        serde_json::from_str(all("ENTRYPOINT").last().expect("an ENTRYPOINT").trim())
            .expect("ENTRYPOINT in exec (JSON array) form");
    let env: Vec<(String, String)> = all("ENV").into_iter().flat_map(key_values).collect();
    let airbyte_entrypoint = env
        .iter()
        .rev()
        .find(|(k, _)| k == "AIRBYTE_ENTRYPOINT")
        .map(|(_, v)| v.clone())
        .expect("ENV AIRBYTE_ENTRYPOINT");
    assert_eq!(airbyte_entrypoint, entrypoint.join(" "));
    assert_eq!(entrypoint, ["/usr/local/bin/destination-webhook"]);

    let labels: Vec<(String, String)> = all("LABEL").into_iter().flat_map(key_values).collect();
    let label = |name: &str| {
        labels
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("LABEL {name}"))
    };
    assert_eq!(label("io.airbyte.version"), env!("CARGO_PKG_VERSION"));
    let (image, _) = acceptance_config();
    let (image_name, _tag) = image.rsplit_once(':').expect("connector_image has a tag");
    assert_eq!(label("io.airbyte.name"), image_name);

    let user = all("USER").last().expect("a USER instruction").to_string();
    let who = user.split(':').next().unwrap();
    assert!(!["root", "0", ""].contains(&who), "runs as {user}");

    let runs = all("RUN");
    let builds: Vec<&&str> = runs
        .iter()
        .filter(|r| r.contains("cargo build --release --locked"))
        .collect();
    assert!(
        builds.len() >= 2,
        "a cached dependency build and the real one"
    );
    assert!(runs
        .iter()
        .any(|r| r.contains("ca-certificates") && r.contains("--no-install-recommends")));
    let copies = all("COPY");
    assert!(
        copies.iter().any(|c| c.starts_with("--from=")
            && c.contains("/app/target/release/destination-webhook /usr/local/bin/")),
        "{copies:?}"
    );

    // Every file the build copies from the context exists and is not excluded by .dockerignore.
    let ignored: Vec<String> = repo_text(".dockerignore")
        .lines()
        .map(|l| l.trim().trim_end_matches('/').to_string())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for required in ["target", ".git"] {
        assert!(
            ignored.iter().any(|i| i == required),
            ".dockerignore: {ignored:?}"
        );
    }
    for copy in copies.iter().filter(|c| !c.starts_with("--")) {
        let parts: Vec<&str> = copy.split_whitespace().collect();
        for source in &parts[..parts.len() - 1] {
            repo(source);
            let top = source.split('/').next().unwrap();
            assert!(
                !ignored.iter().any(|i| i == source || i == top),
                "COPY {source} is excluded by .dockerignore"
            );
        }
    }
    for member in [
        "Cargo.toml",
        "Cargo.lock",
        "receiver/Cargo.toml",
        "src",
        "receiver/src",
    ] {
        assert!(
            copies.iter().any(|c| c
                .split_whitespace()
                .any(|p| p == member || p == format!("{member}/"))),
            "the build never copies {member}: {copies:?}"
        );
    }
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/main.rs")
            .exists()
            && Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("src/lib.rs")
                .exists(),
        "the Dockerfile stubs src/main.rs and src/lib.rs"
    );
}
