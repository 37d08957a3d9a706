//! The `spec` answer: the JSON Schema of [`Config`], shaped to pass Airbyte's acceptance rules
//! (draft-07, no `$ref`, no `null` branches, `additionalProperties: true` at the top).

use schemars::generate::SchemaSettings;
use serde_json::{json, Value};

use crate::config::Config;

pub const DOCUMENTATION_URL: &str = "https://docs.valmi.io/integrations/destinations/webhook";

/// Airbyte destination sync modes this connector honours (Valmi's own modes come from `discover`).
pub const AIRBYTE_SYNC_MODES: [&str; 3] = ["append", "append_dedup", "overwrite"];

const NUMERIC_FORMATS: [&str; 8] = [
    "double", "float", "int32", "int64", "uint", "uint8", "uint32", "uint64",
];

/// The connection specification (the JSON Schema of the config).
pub fn connection_specification() -> Value {
    let generator = SchemaSettings::draft07()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let mut schema = generator.into_root_schema_for::<Config>().to_value();
    tidy(&mut schema);
    if let Value::Object(top) = &mut schema {
        top.insert("additionalProperties".into(), Value::Bool(true));
    }
    schema
}

/// The full `spec` message body.
pub fn spec() -> Value {
    json!({
        "documentationUrl": DOCUMENTATION_URL,
        "connectionSpecification": connection_specification(),
        "supportsIncremental": true,
        "supportsNormalization": false,
        "supportsDBT": false,
        "supported_destination_sync_modes": AIRBYTE_SYNC_MODES,
    })
}

/// Shapes schemars' output the way Airbyte's UI and checks read it: an optional field is left
/// out rather than `null` (one plain type per field), a doc comment's first paragraph is the
/// title, a `oneOf` holder says it is an object (Airbyte's `test_oneof_usage`), and Rust's
/// numeric formats (`uint32`, `double`) are not JSON Schema formats.
fn tidy(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(doc)) = map.get("description") {
                if let Some((title, rest)) = doc.split_once("\n\n") {
                    let (title, rest) = (
                        title.trim().to_string(),
                        rest.split_whitespace().collect::<Vec<_>>().join(" "),
                    );
                    map.insert("title".into(), Value::String(title));
                    map.insert("description".into(), Value::String(rest));
                } else if !map.contains_key("title") && !map.contains_key("properties") {
                    let title = doc.clone();
                    map.remove("description");
                    map.insert("title".into(), Value::String(title));
                }
            }
            if map.contains_key("oneOf") && !map.contains_key("type") {
                map.insert("type".into(), Value::String("object".into()));
            }
            if map
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| NUMERIC_FORMATS.contains(&f))
            {
                map.remove("format");
            }
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(options)) = map.get_mut("enum") {
                options.retain(|o| !o.is_null());
            }
            map.values_mut().for_each(tidy);
        }
        Value::Array(items) => items.iter_mut().for_each(tidy),
        _ => {}
    }
}
