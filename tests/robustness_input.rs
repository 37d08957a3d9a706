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

/// A stream the catalog lacks (`s` in namespace `ap`) takes no part in matching a record
/// without a namespace: `s` alone is still the catalog's one `s`, and where the catalog has
/// two, the ambiguity names only theirs.
#[test]
fn an_unknown_namespace_does_not_change_how_a_record_without_one_is_matched() {
    let receiver = Receiver::start_default();
    let config = config(&receiver.url("/hook"), json!({}));
    let input = [
        airbyte_record(Some("ap"), r#"{"x":1}"#),
        airbyte_record(None, r#"{"x":2}"#),
    ]
    .concat();
    let one = airbyte_catalog(&[(Some("eu"), "s", &[])]);
    let run = write_airbyte(&config, &one, input.as_bytes());
    assert_completed(&run);
    let sent = receiver.requests();
    assert_eq!(sent.len(), 1, "{}", run.dump());
    assert!(sent[0].body.contains(r#""x":2"#), "{}", sent[0].body);
    let two = airbyte_catalog(&[(Some("eu"), "s", &[]), (Some("us"), "s", &[])]);
    let run = write_airbyte(&config, &two, input.as_bytes());
    assert_completed(&run);
    let warnings = run.logs("WARN");
    let ambiguous: Vec<&String> = warnings
        .iter()
        .filter(|w| w.contains("ambiguous"))
        .collect();
    assert_eq!(ambiguous.len(), 1, "{warnings:?}");
    assert!(
        ambiguous[0].contains("namespaces 'eu', 'us'") && !ambiguous[0].contains("'ap'"),
        "{warnings:?}"
    );
}

/// Identical records without a key are told apart by their occurrence since the last STATE
/// that covers their stream: another stream's STATE does not restart the count (the third copy
/// would get the first's key, and a de-duplicating receiver would drop it), a GLOBAL one does.
#[test]
fn only_a_state_covering_the_stream_restarts_the_count_of_identical_records() {
    let receiver = Receiver::start_default();
    let config = config(&receiver.url("/hook"), json!({}));
    let catalog = airbyte_catalog(&[(Some("a"), "s", &[]), (Some("b"), "s", &[])]);
    let other_stream = r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"s","namespace":"a"},"stream_state":{"c":1}}}}"#;
    let global = r#"{"type":"STATE","state":{"type":"GLOBAL","global":{"shared_state":{"c":2},"stream_states":[]}}}"#;
    let twin = airbyte_record(Some("b"), r#"{"x":1}"#);
    let input = [&twin, other_stream, "\n", &twin, global, "\n", &twin].concat();
    let run = write_airbyte(&config, &catalog, input.as_bytes());
    assert_completed(&run);
    let mut keys: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.header("idempotency-key").unwrap().to_string())
        .collect();
    assert_eq!(keys.len(), 3, "{}", run.dump());
    keys.sort();
    keys.dedup();
    assert_eq!(
        keys.len(),
        2,
        "the first and the third copy share a key, the second has its own"
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

/// A blank line is skipped with a WARN that names it, and reading goes on: only the end of
/// stdin ends the input (a reader that took a blank line for the end lost what followed).
#[test]
fn a_blank_line_mid_input_is_skipped_and_what_follows_is_sent() {
    let receiver = Receiver::start_default();
    let config = config(&receiver.url("/hook"), json!({}));
    let input = valmi_records(1..=2) + "\n" + &valmi_records(3..=4);
    let run = write_valmi(&config, input.as_bytes());
    assert_completed(&run);
    assert_eq!(receiver.requests().len(), 4);
    let warns = run.logs("WARN");
    assert!(
        warns
            .iter()
            .any(|w| w.starts_with("skipped input line 3 (empty line)")),
        "{warns:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Item 12: Valmi row numbers out of order: resume never skips an unacknowledged row, and two
// different records never share an idempotency key.

/// Upsert records with these row numbers; `id` is the row number times 100 plus how many
/// times the row number came before, so a repeated row is a different record.
fn rows_input(rows: &[u64]) -> String {
    let mut seen = std::collections::HashMap::new();
    rows.iter()
        .map(|row| {
            let repeat: &mut u64 = seen.entry(*row).or_default();
            let id = row * 100 + *repeat;
            *repeat += 1;
            valmi_record(*row, "upsert", json!(id))
        })
        .collect()
}

fn request_id(request: &RecordedRequest) -> u64 {
    request.json()["payload"]["id"].as_u64().unwrap()
}

/// How the orchestrator resumes a stopped Valmi run.
#[derive(Clone, Copy, Debug)]
enum Resumed {
    /// From the last STATE, with the whole input fed again (what Valmi's wrapper does today).
    FromLastStateWithEverything,
    /// From the last committed STATE, without the chunks it committed (what the wrapper does
    /// when it can read its checkpoint).
    FromCommittedChunks,
}

/// `rows` (see [`rows_input`]) written in chunks of `chunk_size` until the endpoint refuses
/// record `refused_id` with a 401, then resumed as `resumed` says: every record the first
/// run did not acknowledge must reach the endpoint in the second. Returns whether the first
/// run warned about the row order.
#[track_caller]
fn assert_resume_loses_nothing(
    rows: &[u64],
    refused_id: u64,
    chunk_size: u64,
    resumed: Resumed,
) -> bool {
    let input = rows_input(rows);
    let extra = json!({"concurrency": 1, "run_time_args":
        {"run_id": "r", "chunk_size": chunk_size, "records_per_metric": 1}});
    let first = receiver_with_rule(webhook_receiver::Rule::when_body_contains(
        format!(r#""id":{refused_id},"#),
        webhook_receiver::Reply::status(401),
    ));
    let run = write_valmi_to(&first, extra.clone(), input.as_bytes());
    assert_fatal_stop(&run, "config_error");
    let acknowledged: std::collections::BTreeSet<u64> = first
        .requests()
        .iter()
        .filter(|r| r.status == 200)
        .map(request_id)
        .collect();
    let (checkpoint, input_again) = match resumed {
        Resumed::FromLastStateWithEverything => {
            (run.states().last().unwrap()["state"].clone(), input.clone())
        }
        Resumed::FromCommittedChunks => {
            let committed = run
                .states()
                .into_iter()
                .rfind(|s| state_data(s)["commit_state"] == true)
                .expect("a committed chunk")["state"]
                .clone();
            let chunks = state_data(&json!({ "state": committed }))["chunk_id"]
                .as_u64()
                .unwrap();
            let rest: Vec<&str> = input.lines().skip((chunks * chunk_size) as usize).collect();
            (committed, rest.join("\n") + "\n")
        }
    };
    let second = Receiver::start_default();
    let config = config(&second.url("/hook"), extra);
    let resumed_run = write_valmi_with(&config, None, Some(&checkpoint), input_again.as_bytes());
    assert_completed(&resumed_run);
    let sent: std::collections::BTreeSet<u64> = second.requests().iter().map(request_id).collect();
    let lost: Vec<u64> = jsonl(&input)
        .iter()
        .map(|m| m["record"]["data"]["id"].as_u64().unwrap())
        .filter(|id| !acknowledged.contains(id) && !sent.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{rows:?} {resumed:?}: records never delivered: {lost:?} (checkpoint {checkpoint})"
    );
    run.logs("WARN")
        .iter()
        .any(|w| w.contains("_valmi_row_num"))
}

/// With row numbers 1, 2, 3, 10, 4… and row 10 acknowledged, the STATE used to say
/// `last_row_num` 10, and a resume skipped rows 4 to 9 though they were never acknowledged.
/// Now it says 3 until row 4 is acknowledged (and the first run warns).
#[test]
fn a_resume_never_skips_rows_below_an_earlier_higher_row() {
    let rows = [1, 2, 3, 10, 4, 5, 6, 7, 8, 9];
    for resumed in [
        Resumed::FromLastStateWithEverything,
        Resumed::FromCommittedChunks,
    ] {
        assert!(assert_resume_loses_nothing(&rows, 500, 4, resumed));
    }
}

/// With 1, 2, 3, 2′, 4 and the second row 2 refused, the checkpoint says `last_row_num` 3;
/// the resumed run skipped the second row 2 as if it were the first. Now skipping stops at
/// the first row number that does not rise.
#[test]
fn a_resume_never_skips_a_repeated_row_number() {
    assert!(!assert_resume_loses_nothing(
        &[1, 2, 3, 2, 4, 5],
        201,
        100,
        Resumed::FromLastStateWithEverything
    ));
}

/// Keys of one write of `input` under `run_time_args`, by the record's `id`.
fn keys_by_id(run_time_args: Value, input: &str) -> std::collections::BTreeMap<u64, String> {
    let receiver = Receiver::start_default();
    let run = write_valmi_to(
        &receiver,
        json!({ "run_time_args": run_time_args }),
        input.as_bytes(),
    );
    assert_completed(&run);
    idempotency_keys(&receiver.requests(), request_id)
}

/// A repeated `_valmi_row_num` (a different record each time) gets its own key, and the keys
/// are the same when the same run is written again.
#[test]
fn records_sharing_a_row_number_get_their_own_stable_keys() {
    let input = rows_input(&[1, 2, 2, 3, 2, 1]);
    for args in [json!({"run_id": "r"}), json!({"sync_id": "s"}), json!({})] {
        let keys = keys_by_id(args.clone(), &input);
        assert_eq!(keys.len(), 6, "{args}");
        let distinct: std::collections::HashSet<&String> = keys.values().collect();
        assert_eq!(distinct.len(), 6, "{args}: {keys:?}");
        assert_eq!(
            keys,
            keys_by_id(args.clone(), &input),
            "{args}: a re-run keeps them"
        );
    }
}

/// With a `sync_id` and no `run_id`, a later run's changed row N does not get the key row N
/// had in an earlier run (it used to: the key was the sync and the row number).
#[test]
fn without_a_run_id_a_later_runs_new_data_is_no_replay() {
    let monday = valmi_record(1, "upsert", json!(1));
    let tuesday = valmi_record(1, "upsert", json!(2));
    let args = json!({"sync_id": "sync-7"});
    let monday_key = keys_by_id(args.clone(), &monday)[&1].clone();
    let tuesday_key = keys_by_id(args, &tuesday)[&2].clone();
    assert_ne!(monday_key, tuesday_key);
}

// ---------------------------------------------------------------------------------------------
// Item 13: identical Airbyte records without a primary key.

/// Three identical keyless records get three keys (an endpoint that de-duplicates used to
/// keep one while the STATE counted three). Counting restarts after each STATE, the point a
/// source resumes from, so a re-run gives the same keys.
#[test]
fn identical_records_without_a_primary_key_get_their_own_keys() {
    let record = airbyte_record(None, r#"{"x":1}"#);
    let state =
        r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"s"}}}}"#;
    let input = [&record, &record, &record, state, "\n", &record].concat();
    let keys = || {
        let receiver = Receiver::start_default();
        let config = config(&receiver.url("/hook"), json!({"concurrency": 1}));
        let run = write_airbyte(
            &config,
            &airbyte_catalog(&[(None, "s", &[])]),
            input.as_bytes(),
        );
        assert_completed(&run);
        let counts = &run.states()[0]["state"]["destinationStats"]["recordCount"];
        assert_eq!(counts, &json!(3.0), "{}", run.dump());
        idempotency_keys(&receiver.requests(), |r| {
            r.json()["_message_id"].as_u64().unwrap()
        })
    };
    let first = keys();
    let distinct: std::collections::HashSet<&String> = first.values().take(3).collect();
    assert_eq!(distinct.len(), 3, "{first:?}");
    assert_eq!(
        first[&4], first[&1],
        "the first copy after a STATE: {first:?}"
    );
    assert_eq!(first, keys(), "a re-run of the same input keeps the keys");
}

/// A line that cannot be read may have been the missing row: it will never be a record, so
/// `last_row_num` goes on past it. A row number missing with no such line stops it (and is
/// warned about), since that row may still come.
#[test]
fn last_row_num_passes_unreadable_lines_but_not_missing_rows() {
    let unreadable = valmi_record(4, "upsert", json!(4)).replace(r#""id":4"#, r#""id":NaN"#);
    for (input, last_row_num, warns) in [
        (
            valmi_records(1..=3) + &unreadable + &valmi_records(5..=6),
            6,
            false,
        ),
        (valmi_records(1..=3) + &valmi_records(5..=6), 3, true),
    ] {
        let receiver = Receiver::start_default();
        let run = write_valmi_to(&receiver, json!({}), input.as_bytes());
        assert_completed(&run);
        let last = state_data(run.states().last().unwrap());
        assert_eq!(last["finished"], true, "{}", run.dump());
        assert_eq!(last["last_row_num"], last_row_num, "{}", run.dump());
        let warned = run
            .logs("WARN")
            .iter()
            .any(|w| w.contains("_valmi_row_num 5 was settled while row 4 was not"));
        assert_eq!(warned, warns, "{}", run.dump());
    }
}
