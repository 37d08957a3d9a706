//! Input the connector must take as it comes or refuse in words that say what is wrong (issue
//! #15): exponent numbers sent by GET, lone surrogates, ambiguous stream names, deeply nested
//! Airbyte STATEs, malformed signing secrets and resume checkpoints, row numbers out of order
//! and records that only differ by their place in the input.

mod common;

use common::*;
use serde_json::{json, Value};
use webhook_receiver::{Receiver, RecordedRequest};

/// A ConfiguredAirbyteCatalog of `(namespace, name, primary key)` streams in append mode.
fn airbyte_catalog(streams: &[(Option<&str>, &str, &[&str])]) -> Value {
    let streams: Vec<Value> = streams
        .iter()
        .map(|(namespace, name, key)| {
            let primary_key: Vec<Vec<&str>> = key.iter().map(|k| vec![*k]).collect();
            json!({
                "stream": {"name": name, "namespace": namespace, "json_schema": {},
                           "supported_sync_modes": ["full_refresh"]},
                "sync_mode": "full_refresh",
                "destination_sync_mode": "append",
                "primary_key": primary_key,
            })
        })
        .collect();
    json!({ "streams": streams })
}

/// One Airbyte RECORD line of stream `s` whose data is `data` (JSON text, sent as it is).
fn airbyte_record(namespace: Option<&str>, data: &str) -> String {
    let namespace = namespace.map_or(String::new(), |ns| format!(r#","namespace":"{ns}""#));
    format!(
        r#"{{"type":"RECORD","record":{{"stream":"s"{namespace},"data":{data},"emitted_at":1}}}}"#
    ) + "\n"
}

/// The decoded query parameters of a GET request.
fn query_params(request: &RecordedRequest) -> Vec<(String, String)> {
    let query = request.path.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

// ---------------------------------------------------------------------------------------------
// Item 6: GET keeps the text of numbers.

/// Numbers in exponent form reach the endpoint as written, nested or not; a parse into a
/// `Value` used to send `1E+2` as `1e+2` and `1e400` as `1e+400`.
#[test]
fn get_parameters_keep_the_text_of_exponent_numbers() {
    let receiver = Receiver::start_default();
    let config = config(&receiver.url("/hook"), json!({"method": "GET"}));
    let input = airbyte_record(
        None,
        r#"{"a":1E+2,"b":1e400,"c":-2.5E-3,"d":[1e5],"e":{"f":0E0},"g":12345678901234567890123}"#,
    );
    let run = write_airbyte(
        &config,
        &airbyte_catalog(&[(None, "s", &[])]),
        input.as_bytes(),
    );
    assert_completed(&run);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1, "{}", run.dump());
    let params = query_params(&requests[0]);
    for (name, text) in [
        ("a", "1E+2"),
        ("b", "1e400"),
        ("c", "-2.5E-3"),
        ("d_0", "1e5"),
        ("e_f", "0E0"),
        ("g", "12345678901234567890123"),
    ] {
        assert_eq!(param(&params, name), Some(text), "{params:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Item 15: messages that say what is wrong.

/// A GET record with a lone surrogate escape cannot become UTF-8 query text: it is rejected as
/// an invalid string (it used to be `too_deep`, "unexpected end of hex escape"); the others go.
#[test]
fn a_get_record_with_a_lone_surrogate_is_rejected_as_an_invalid_string() {
    let receiver = Receiver::start_default();
    let config = config(&receiver.url("/hook"), json!({"method": "GET"}));
    let mut input = valmi_record(1, "upsert", json!(1));
    input.push_str(&valmi_record(2, "upsert", json!(2)).replace(r#""id":2"#, r#""id":"a\ud800""#));
    input.push_str(&valmi_record(3, "upsert", json!(3)));
    let dir = Workdir::new();
    let args = valmi_args(&dir, &config, None, None);
    // The rejected record is echoed with its data as it came, lone surrogate included, which
    // a strict parser refuses.
    let run = run_parsing(&str_args(&args), input.as_bytes(), |line| {
        serde_json::from_str(&line.replace(r"\ud800", r"\ufffd")).unwrap()
    });
    assert_completed(&run);
    assert_eq!(receiver.requests().len(), 2, "{}", run.dump());
    let rejected = run.rejected_records();
    assert_eq!(rejected.len(), 1, "{}", run.dump());
    let record = &rejected[0]["record"];
    assert_eq!(record["rejection_code"], "invalid_string", "{record}");
    let message = record["rejection_message"].as_str().unwrap();
    assert!(
        message.contains("'id' is not a valid Unicode string")
            && message.contains("unpaired UTF-16 surrogate")
            && !message.contains("hex escape"),
        "{message}"
    );
}

/// A record without a namespace whose stream name two namespaces of the catalog share is
/// ambiguous, and the WARN and the rejection say so and name both namespaces.
#[test]
fn a_stream_name_shared_by_two_namespaces_is_reported_as_ambiguous() {
    let receiver = Receiver::start_default();
    let config = config(&receiver.url("/hook"), json!({}));
    let catalog = airbyte_catalog(&[(Some("eu"), "s", &[]), (Some("us"), "s", &[])]);
    let input = [
        airbyte_record(None, r#"{"x":1}"#),
        airbyte_record(None, r#"{"x":2}"#),
        airbyte_record(Some("eu"), r#"{"x":3}"#),
    ]
    .concat();
    let run = write_airbyte(&config, &catalog, input.as_bytes());
    assert_completed(&run);
    assert_eq!(receiver.requests().len(), 1, "{}", run.dump());
    let warnings = run.logs("WARN");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("ambiguous")
            && warnings[0].contains("'eu', 'us'")
            && !warnings[0].contains("not in the configured catalog"),
        "{warnings:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Item 2: an Airbyte STATE is echoed as it came, however deep.

/// The arguments of `write` in the Airbyte dialect, files written into `dir`.
fn airbyte_args(dir: &Workdir, config: &Value, catalog: &Value) -> Vec<String> {
    let config_path = dir.write_json("config.json", config);
    let catalog_path = dir.write_json("catalog.json", catalog);
    write_args(&config_path, &catalog_path, None, None)
}

/// A state nested 200 and 10,000 levels deep (past the parser's 128) comes back as its own
/// text plus `destinationStats`; it used to come back as `{"destinationStats":…}` alone.
#[test]
fn a_deeply_nested_airbyte_state_is_echoed_whole() {
    let receiver = Receiver::start_default();
    let config = config(&receiver.url("/hook"), json!({}));
    let dir = Workdir::new();
    let args = airbyte_args(&dir, &config, &airbyte_catalog(&[(None, "s", &[])]));
    for depth in [200, 10_000] {
        let nested = format!("{}7{}", "[".repeat(depth), "]".repeat(depth));
        let state = format!(r#"{{"type":"LEGACY","data":{{"cursor":{nested}}}}}"#);
        let input = airbyte_record(None, r#"{"x":1}"#)
            + &format!(r#"{{"type":"STATE","state":{state}}}"#)
            + "\n";
        // Lines too deep for the test's own parser are read as what they must be: STATEs.
        let run = run_parsing(&str_args(&args), input.as_bytes(), |line| {
            serde_json::from_str(line).unwrap_or_else(|_| json!({"type": "STATE"}))
        });
        assert_completed(&run);
        let expected = format!(
            r#"{{"type":"STATE","state":{}{}}}"#,
            &state[..state.len() - 1],
            r#","destinationStats":{"recordCount":1.0,"rejectedRecordCount":0.0}}"#
        );
        let states: Vec<&str> = run
            .stdout
            .lines()
            .filter(|l| l.starts_with(r#"{"type":"STATE""#))
            .collect();
        assert_eq!(states, [expected.as_str()], "depth {depth}");
    }
}

// ---------------------------------------------------------------------------------------------
// Item 10: a malformed `whsec_` signing secret is refused, not used as raw bytes.

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// `check` answers FAILED and `write` stops with a `config_error` before sending anything,
/// naming `signing_secret` and not showing it.
#[test]
fn a_malformed_whsec_signing_secret_is_a_config_error() {
    let receiver = Receiver::start_default();
    for secret in [
        "whsec_not*base64!",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",
        "whsec_",
    ] {
        let config = config(&receiver.url("/hook"), json!({"signing_secret": secret}));
        let check = run_check(&config);
        let status = &check.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
        assert_eq!(status["status"], "FAILED", "{secret}: {}", check.dump());
        let write = write_valmi(&config, valmi_records(1..=3).as_bytes());
        let message = assert_fatal(&write, "config_error");
        assert!(write.states().is_empty(), "{}", write.dump());
        for said in [status["message"].as_str().unwrap(), &message] {
            assert!(said.contains("signing_secret: "), "{secret}: {said}");
            let value = secret.trim_start_matches("whsec_");
            assert!(value.is_empty() || !said.contains(value), "{said}");
        }
    }
    assert_eq!(receiver.requests().len(), 0);
}

/// A newline pasted with the secret is not part of it: the requests verify under the secret.
#[test]
fn a_whsec_secret_with_a_trailing_newline_signs_verifiably() {
    let receiver = Receiver::start(webhook_receiver::ReceiverOptions {
        signing_secret: Some(WHSEC.to_string()),
        ..Default::default()
    })
    .unwrap();
    let secret = format!("{WHSEC}\n");
    let run = write_valmi_to(
        &receiver,
        json!({"signing_secret": secret}),
        valmi_records(1..=3).as_bytes(),
    );
    assert_completed(&run);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3, "{}", run.dump());
    assert!(
        requests.iter().all(|r| r.signature_valid == Some(true)),
        "{:?}",
        requests
            .iter()
            .map(|r| r.signature_valid)
            .collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------------------------
// Item 14: a `--state` in no shape the contract lists is refused, not ignored.

/// `write` in the Valmi dialect with `state` (the file's text) as `--state`.
fn write_valmi_with_state_text(config: &Value, state: &str, stdin: &[u8]) -> Run {
    let dir = Workdir::new();
    let mut args = valmi_args(&dir, config, None, None);
    args.push("--state".into());
    args.push(path_str(&dir.write("state.json", state)).into());
    run(&str_args(&args), stdin)
}

/// Each of these used to be ignored, and the run started again at chunk 1.
#[test]
fn an_unrecognised_state_is_a_config_error_naming_the_shapes_expected() {
    let receiver = Receiver::start_default();
    let config = config(&receiver.url("/hook"), json!({}));
    for state in [
        r#"[{"type":"STREAM","data":{"chunk_id":5}}]"#,
        r#"{"_valmi_meta":null}"#,
        r#"{"type":"STREAM","data":{"chunk_id":null}}"#,
        r#"{"chunk_id":5}"#,
        r#""5""#,
        r#"{"type":"STREAM","data":{"chunk_id":-5}}"#,
        r#"{"type":"STREAM","data":{"chunk_id":5,"last_row_num":"7"}}"#,
    ] {
        let run = write_valmi_with_state_text(&config, state, valmi_records(1..=3).as_bytes());
        let message = assert_fatal(&run, "config_error");
        assert!(
            message.contains("the state file")
                && message.contains(r#"{"_valmi_meta":{"chunk_id":N}}"#),
            "{state}: {message}"
        );
        assert!(run.states().is_empty(), "{state}: {}", run.dump());
    }
    assert_eq!(receiver.requests().len(), 0);
}

/// An empty file, `null` or `{}` is no checkpoint: the run starts at chunk 1 and sends every row.
#[test]
fn an_empty_state_starts_fresh() {
    for state in ["", " \n", "null", "{}"] {
        let receiver = Receiver::start_default();
        let config = config(&receiver.url("/hook"), json!({}));
        let run = write_valmi_with_state_text(&config, state, valmi_records(1..=3).as_bytes());
        assert_completed(&run);
        assert_eq!(state_data(run.states()[0])["chunk_id"], 1, "{state:?}");
        assert_eq!(receiver.requests().len(), 3, "{state:?}");
    }
}
