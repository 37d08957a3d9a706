//! Any bytes as one stdin line: parsing, then both dialects' preparation (POST and GET), must
//! never panic, and a record is either prepared or refused with a reason.
#![no_main]

use destination_webhook::catalog::{AirbyteStream, MappingEntry, ValmiCatalog};
use destination_webhook::config::Method;
use destination_webhook::dialect::{airbyte::Airbyte, valmi::Valmi, Dialect, Wire};
use destination_webhook::protocol::{parse_line, Parsed};
use libfuzzer_sys::fuzz_target;

fn dialects() -> Vec<Dialect> {
    let mut out = Vec::new();
    for method in [Method::Post, Method::Get] {
        let wire = || Wire { method, url: "http://127.0.0.1:1/hook?x=1".into() };
        let catalog = ValmiCatalog {
            sync_mode: "mirror".into(),
            mapping: vec![MappingEntry { stream: "id".into(), sink: "id".into() }, MappingEntry { stream: "a".into(), sink: "b".into() }],
            id_key: Some("id".into()),
        };
        out.push(Dialect::Valmi(Valmi::new(wire(), catalog, Some("run".into()), Some(3))));
        let stream = AirbyteStream { name: "s".into(), namespace: None, sync_mode: "append_dedup".into(), primary_key: vec![vec!["id".into()], vec!["o".into(), "k".into()]] };
        out.push(Dialect::Airbyte(Airbyte::new(wire(), vec![stream])));
    }
    out
}

fuzz_target!(|line: &[u8]| {
    for mut dialect in dialects() {
        match parse_line(line) {
            Ok(Parsed::Record(record)) => {
                let _ = dialect.prepare(&record, 1);
            }
            Ok(Parsed::State(state)) => {
                let _ = dialect.state_scope(state);
            }
            Ok(Parsed::Ignored) | Err(_) => {}
        }
    }
});
