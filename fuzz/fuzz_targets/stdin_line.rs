//! Any bytes as one stdin line: parsing, then both dialects' preparation (POST and GET), must
//! never panic, and a record comes to events (sent, or refused with a reason). A record's data is
//! exactly one JSON value whose fields are what parsing that text again gives, whichever way
//! (one pass or two) the line was read.
#![no_main]

use destination_webhook::catalog::{AirbyteStream, MappingEntry, ValmiCatalog};
use destination_webhook::dialect::{airbyte::Airbyte, valmi::Valmi, Dialect};
use destination_webhook::config::{Config, ContentType};
use destination_webhook::encoder::Encoder;
use destination_webhook::routes::Routes;
use destination_webhook::shape::Shape;
use destination_webhook::protocol::{parse_line, Parsed, RawObject};
use serde_json::value::RawValue;
use libfuzzer_sys::fuzz_target;

fn dialects() -> Vec<Dialect> {
    let mut out = Vec::new();
    let config: Config = serde_json::from_value(serde_json::json!({
        "url": "http://127.0.0.1:1/hook?x=1", "run_time_args": {"run_id": "run"}})).unwrap();
    for shape in [Shape::Json { batched: false, gzip: false, content_type: ContentType::Json }, Shape::Query] {
        let wire = || Encoder::new(shape, config.url.url().clone(), Routes::compile(&config).unwrap());
        let catalog = ValmiCatalog {
            sync_mode: "mirror".into(),
            mapping: vec![MappingEntry { stream: "id".into(), sink: "id".into() }, MappingEntry { stream: "a".into(), sink: "b".into() }],
            id_key: Some("id".into()),
        };
        out.push(Dialect::Valmi(Valmi::new(wire(), catalog, &config, Some(3))));
        let stream = AirbyteStream { name: "s".into(), namespace: None, sync_mode: "append_dedup".into(), primary_key: vec![vec!["id".into()], vec!["o".into(), "k".into()]], destination_object_name: None, object: 0, refresh: Default::default() };
        out.push(Dialect::Airbyte(Airbyte::new(wire(), vec![stream])));
    }
    out
}

fn fields(object: &Option<RawObject>) -> Option<Vec<(String, String)>> {
    object.as_ref().map(|o| o.0.iter().map(|(k, v)| (k.to_string(), v.get().to_string())).collect())
}

fuzz_target!(|line: &[u8]| {
    if let Ok(Parsed::Record(record)) = parse_line(line) {
        let raw: Box<RawValue> = serde_json::from_str(record.data.get()).expect("data is one JSON value");
        assert_eq!(fields(&record.fields), fields(&RawObject::parse(&raw).ok()));
    }
    for mut dialect in dialects() {
        match parse_line(line) {
            Ok(Parsed::Record(record)) => {
                let mut events = Vec::new();
                dialect.read(&record, 1, &mut events);
            }
            Ok(Parsed::State(state)) => {
                let _ = dialect.state_scope(state);
            }
            Ok(Parsed::Ignored) | Err(_) => {}
        }
    }
});
