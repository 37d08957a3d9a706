//! Destination objects, as Airbyte's data activation names them: what `discover` offers in its
//! DESTINATION_CATALOG and what a configured stream's `destination_object_name` picks in
//! `write`. The top-level request is the object named [`DEFAULT_OBJECT`], so a config written
//! before objects existed offers exactly one, and a stream that names none goes there.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use crate::catalog::AirbyteStream;
use crate::config::Config;

/// The name of the object the top-level request defines. A name rather than an empty string:
/// Airbyte's mapping screen shows it and sends it back as `destination_object_name`.
pub const DEFAULT_OBJECT: &str = "default";

/// One destination object with what Airbyte's mapping screen needs to offer it.
pub struct Object {
    pub name: String,
    /// Airbyte destination sync modes; one DESTINATION_CATALOG operation each.
    pub sync_modes: Vec<&'static str>,
    pub json_schema: Value,
    pub matching_keys: Vec<Vec<String>>,
}

/// The objects a config defines, the default one first.
pub fn of(config: &Config) -> Vec<Object> {
    vec![Object {
        name: DEFAULT_OBJECT.to_string(),
        // Without routes, one request serves every operation, so the default object takes
        // every mode `spec` advertises, no more.
        sync_modes: crate::spec::AIRBYTE_SYNC_MODES.to_vec(),
        json_schema: match config.body_template() {
            Some(_) => schema_of_templates(&template_sources(config)),
            // The body is the envelope with the record whole: any fields.
            None => free_form(),
        },
        matching_keys: Vec::new(),
    }]
}

/// Refuses, before any record is read, a catalog whose streams name an object the config does
/// not have: sending a contact to the companies endpoint is worse than not sending it.
pub fn check_streams(config: &Config, streams: &[AirbyteStream]) -> Result<(), String> {
    let objects = of(config);
    let known = |name: &str| objects.iter().any(|o| o.name == name);
    for stream in streams {
        if let Some(name) = stream.destination_object_name.as_deref() {
            if !known(name) {
                let names: Vec<String> = objects.iter().map(|o| format!("'{}'", o.name)).collect();
                return Err(format!(
                    "stream '{}' is mapped to destination object '{name}', which this config does not define; its objects are {} ('{DEFAULT_OBJECT}' is the top-level request)",
                    stream.name,
                    names.join(", ")
                ));
            }
        }
    }
    Ok(())
}

fn template_sources(config: &Config) -> Vec<&str> {
    let mut sources: Vec<&str> = Vec::new();
    sources.extend(config.body_template().map(|(body, _)| body));
    sources.extend(config.path_template());
    sources.extend(
        config
            .header_templates()
            .unwrap_or_default()
            .iter()
            .map(String::as_str),
    );
    sources
}

fn free_form() -> Value {
    json!({"type": "object", "additionalProperties": true, "properties": {}})
}

/// The JSON schema of the records an object with a body template takes: the record fields its
/// templates read, as strings (a template does not say what type it expects). A template that
/// reads the record or the envelope whole takes any fields.
fn schema_of_templates(sources: &[&str]) -> Value {
    let fields = match fields_read(sources) {
        Some(fields) if !fields.is_empty() => fields,
        _ => return free_form(),
    };
    let properties: Map<String, Value> = fields
        .into_iter()
        .map(|f| (f, json!({"type": "string"})))
        .collect();
    json!({"type": "object", "additionalProperties": false, "properties": properties})
}

/// The top-level record fields the templates read, or `None` when one reads the record (or the
/// envelope, which holds it) as a whole.
fn fields_read(sources: &[&str]) -> Option<BTreeSet<String>> {
    let mut fields = BTreeSet::new();
    for source in sources {
        let mut env = minijinja::Environment::new();
        // A template that does not compile is refused by the config check before discover.
        env.add_template("t", source).ok()?;
        for name in env.get_template("t").ok()?.undeclared_variables(true) {
            match name.split_once('.') {
                Some(("record", field)) => {
                    fields.insert(field.split('.').next().unwrap_or(field).to_string());
                }
                None if name == "record" || name == "envelope" => return None,
                _ => {}
            }
        }
    }
    Some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_are_the_top_level_record_fields() {
        let fields = fields_read(&[
            r#"{"e": "{{ record.email | lower }}", "c": {{ record.address.city }}, "s": "{{ stream }}"}"#,
            "/contacts/{{ record.id }}",
        ]);
        let expected: BTreeSet<String> = ["address", "email", "id"].map(String::from).into();
        assert_eq!(fields, Some(expected));
        assert_eq!(fields_read(&["{{ record | tojson }}"]), None);
        assert_eq!(fields_read(&["{{ envelope | tojson }}"]), None);
    }

    #[test]
    fn a_template_reading_no_field_takes_any_fields() {
        assert_eq!(schema_of_templates(&["{{ stream }}"]), free_form());
        let schema = schema_of_templates(&[r#"{"n": "{{ record.name }}"}"#]);
        assert_eq!(
            schema,
            json!({"type": "object", "additionalProperties": false, "properties": {"name": {"type": "string"}}})
        );
    }
}
