//! No config can crash the connector: whatever JSON `--config` holds, validation either refuses
//! it with a message or accepts it, and an accepted config always turns into durations, limits
//! and an HTTP client without a panic. A huge `run_time_args.http_timeout` (1e19) once
//! overflowed `Duration` and exited 101 with no TRACE.
//!
//! Bounded for the normal `cargo test` run: 256 cases, a few seconds.

use std::time::Instant;

use destination_webhook::delivery::Deliverer;
use destination_webhook::validate::load_config;
use proptest::prelude::*;
use serde_json::{Map, Value};

/// JSON text of the values that break number handling, by kind: past what a `Duration` or an
/// `Instant` holds, below what a period can be, negative, and not numbers at all.
const HUGE: &[&str] = &[
    "1e19",
    "1e20",
    "1e300",
    "1.7976931348623157e308",
    "1e400",
    "18446744073709551615",
    "18446744073709551616",
    "4294967296",
];
const TINY: &[&str] = &["0", "-0", "0.0001", "1e-300", "5e-324", "1e-400"];
const NEGATIVE: &[&str] = &["-1", "-1e400", "-9223372036854775809", "-0.5"];
const NOT_NUMBERS: &[&str] = &[
    "\"30\"",
    "\"NaN\"",
    "\"Infinity\"",
    "true",
    "null",
    "[]",
    "{}",
];

fn json(texts: &'static [&'static str]) -> impl Strategy<Value = Value> {
    proptest::sample::select(texts)
        .prop_map(|text| serde_json::from_str::<Value>(text).expect("valid JSON"))
}

/// Mostly values a real config holds, so that whole configs pass validation often enough for
/// the extremes among them to reach what is built from a valid config.
fn number_or_junk() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (1u32..50).prop_map(Value::from),
        2 => (0.001f64..100.0).prop_map(Value::from),
        2 => json(HUGE),
        1 => json(TINY),
        1 => json(NEGATIVE),
        1 => json(NOT_NUMBERS),
        1 => any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
    ]
}

const URLS: &[&str] = &[
    "http://127.0.0.1:9/hook",
    "http://127.0.0.1:9/hook",
    "https://127.0.0.1:9/hook?token=abc&x=1",
    "http://user:pass@127.0.0.1:9/",
    "http://127.0.0.1:0/",
    "http://[::1]:9/",
    "HTTP://H",
    "http://h:99999/",
    "https://",
    "ftp://h/",
];

fn auth() -> impl Strategy<Value = Value> {
    let text = "[ -~]{0,12}";
    prop_oneof![
        Just(serde_json::json!({"type": "none"})),
        text.prop_map(|t| serde_json::json!({"type": "bearer", "token": t})),
        (text, text)
            .prop_map(|(u, p)| serde_json::json!({"type": "basic", "username": u, "password": p})),
        (text, text).prop_map(
            |(n, k)| serde_json::json!({"type": "api_key", "header_name": n, "api_key": k})
        ),
        number_or_junk(),
    ]
}

fn run_time_args() -> impl Strategy<Value = Value> {
    let field = proptest::sample::select(
        &[
            "http_timeout",
            "max_retries",
            "chunk_size",
            "records_per_metric",
            "run_id",
            "sync_id",
        ][..],
    );
    proptest::collection::btree_map(field, number_or_junk(), 0..6).prop_map(object)
}

fn config() -> impl Strategy<Value = Value> {
    let numeric = proptest::sample::select(
        &[
            "timeout_seconds",
            "max_retries",
            "concurrency",
            "rate_limit_per_second",
            "batch_size",
        ][..],
    );
    (
        proptest::sample::select(URLS),
        proptest::collection::btree_map(numeric, number_or_junk(), 0..5),
        proptest::option::weighted(0.75, run_time_args()),
        proptest::option::of(auth()),
        proptest::option::of(proptest::sample::select(
            &["GET", "POST", "PATCH", "get"][..],
        )),
    )
        .prop_map(|(url, fields, args, auth, method)| {
            let mut config = object(fields);
            let map = config.as_object_mut().expect("an object");
            map.insert("url".into(), url.into());
            map.extend(args.map(|a| ("run_time_args".to_string(), a)));
            map.extend(auth.map(|a| ("auth".to_string(), a)));
            map.extend(method.map(|m| ("method".to_string(), m.into())));
            config
        })
}

fn object(fields: std::collections::BTreeMap<&str, Value>) -> Value {
    Value::Object(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<Map<_, _>>(),
    )
}

/// Everything `check` and `write` derive from a valid config before the first request.
fn derive_everything(config: &destination_webhook::config::Config) {
    let timeout = config.timeout();
    let _ = Instant::now() + timeout;
    let _ = config.max_retries();
    let _ = config.chunk_size();
    let _ = config.records_per_metric();
    let _ = config.run_scope();
    let _ = config.secrets();
    let _ = Deliverer::new(config, false);
    let _ = Deliverer::new(config, true);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_config_panics_in_validation_or_in_what_is_built_from_it(raw in config()) {
        if let Ok(config) = load_config(&raw) {
            derive_everything(&config);
        }
    }
}
