//! Destination objects, as Airbyte's data activation names them: what `discover` offers in its
//! DESTINATION_CATALOG and what a configured stream's `destination_object_name` picks in
//! `write`. The top-level request is the object named [`DEFAULT_OBJECT`], so a config without
//! `objects` offers exactly one, and a stream that names none goes there. A named object is the
//! connection (url, auth, method...) with its own request and routes in place of the top-level
//! ones, so everything a request definition can do, an object can.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use crate::catalog::AirbyteStream;
use crate::config::{Config, ContentType, DestinationObject};
use crate::routes::Routes;
use crate::template::CompileError;

/// The name of the object the top-level request defines. A name rather than an empty string:
/// Airbyte's mapping screen shows it and sends it back as `destination_object_name`.
pub const DEFAULT_OBJECT: &str = "default";

/// Airbyte's destination sync modes, as routes can be keyed by them.
const AIRBYTE_MODES: [&str; 5] = [
    "append",
    "append_dedup",
    "overwrite",
    "update",
    "soft_delete",
];

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
    let default = describe(DEFAULT_OBJECT, config, None, &[]);
    let named = config.objects.iter().map(|o| {
        describe(
            &o.name,
            &object_config(config, o),
            o.json_schema.as_ref(),
            &o.matching_fields,
        )
    });
    std::iter::once(default).chain(named).collect()
}

/// The connection as `object`'s records are sent: its request and routes, where it has them,
/// in place of the top-level ones.
pub fn object_config(config: &Config, object: &DestinationObject) -> Config {
    let mut own = config.clone();
    if object.request.is_some() {
        own.request = object.request.clone();
    }
    if !object.routes.is_empty() {
        own.routes = object.routes.clone();
    }
    own.objects = Vec::new();
    own
}

/// The named objects' request definitions, in config order (the top-level request's are
/// compiled by the caller, as without objects).
pub fn routes(config: &Config) -> Result<Vec<Routes>, CompileError> {
    config
        .objects
        .iter()
        .map(|o| Routes::compile(&object_config(config, o)))
        .collect()
}

/// Points each stream at its object (by `destination_object_name`) and gives a stream without a
/// primary key its object's first matching key. Refuses, before any record is read, a stream
/// naming an object the config does not have: a contact sent to the companies endpoint is
/// worse than none sent.
pub fn resolve(config: &Config, streams: &mut [AirbyteStream]) -> Result<(), String> {
    for stream in streams {
        let Some(name) = stream.destination_object_name.as_deref() else {
            continue;
        };
        let index = match name {
            DEFAULT_OBJECT => 0,
            _ => match config.objects.iter().position(|o| o.name == name) {
                Some(at) => at + 1,
                None => return Err(unknown(config, &stream.name, name)),
            },
        };
        stream.object = index;
        if let (Some(object), true) = (index.checked_sub(1), stream.primary_key.is_empty()) {
            stream.primary_key = key_paths(&config.objects[object].matching_fields)
                .into_iter()
                .take(1)
                .collect();
        }
    }
    Ok(())
}

fn unknown(config: &Config, stream: &str, name: &str) -> String {
    let names: Vec<String> = of(config).iter().map(|o| format!("'{}'", o.name)).collect();
    format!(
        "stream '{stream}' is mapped to destination object '{name}', which this config does not define; its objects are {} ('{DEFAULT_OBJECT}' is the top-level request)",
        names.join(", ")
    )
}

/// What is wrong with the `objects` entries: names missing, repeated or reserved, a request
/// definition that does not compile or cannot be sent, a matching key the object cannot have,
/// batching (a batch would mix objects in one request).
pub fn problems(config: &Config) -> Vec<String> {
    if config.objects.is_empty() {
        return Vec::new();
    }
    let mut problems = Vec::new();
    if config.batch_size > 1 {
        problems.push(format!("objects: records of different objects cannot share a request; batch_size is {}, it must be 1", config.batch_size));
    }
    let mut seen = BTreeSet::new();
    for (i, object) in config.objects.iter().enumerate() {
        let at = format!("objects[{i}]");
        match object.name.trim() {
            "" => problems.push(format!("{at}.name is empty")),
            DEFAULT_OBJECT => problems.push(format!(
                "{at}.name: '{DEFAULT_OBJECT}' is the top-level request's name; choose another"
            )),
            name if !seen.insert(name) => {
                problems.push(format!("{at}.name: '{name}' names another object too"))
            }
            _ => {}
        }
        problems.extend(definition_problems(config, object).map(|p| format!("{at}: {p}")));
        problems.extend(
            crate::refresh::problem(config, object).map(|p| format!("{at}.on_refresh: {p}")),
        );
    }
    problems
}

fn definition_problems<'a>(
    config: &'a Config,
    object: &'a DestinationObject,
) -> impl Iterator<Item = String> + 'a {
    let top_type = config
        .request
        .as_ref()
        .map_or(ContentType::Json, |r| r.content_type);
    let content_type = object
        .request
        .as_ref()
        .filter(|r| r.content_type != top_type)
        .map(|r| format!("request.content_type is {}, the top-level request's is {}: one connection sends one content type", r.content_type.as_str(), top_type.as_str()));
    let own = object_config(config, object);
    let definitions = match object.request.is_some() || !object.routes.is_empty() {
        true => crate::routes::problems(&own),
        false => Vec::new(),
    };
    let keys = object
        .matching_fields
        .iter()
        .filter(move |key| !may_have(object, &own, key))
        .map(|key| format!("matching_fields: '{key}' is neither a property of json_schema nor a record field its templates read"));
    content_type.into_iter().chain(definitions).chain(keys)
}

/// Whether records of `object` can have the field `key` names: its declared schema lists it, or
/// its templates read it, or (no schema, records sent whole) any field can be there.
fn may_have(object: &DestinationObject, own: &Config, key: &str) -> bool {
    let top = key.split('.').next().unwrap_or(key);
    match &object.json_schema {
        Some(schema) => schema
            .get("properties")
            .and_then(Value::as_object)
            .is_some_and(|p| p.contains_key(top)),
        None => match fields_taken(own) {
            Some(fields) => fields.contains(top),
            None => true,
        },
    }
}

fn key_paths(keys: &[String]) -> Vec<Vec<String>> {
    keys.iter()
        .map(|k| k.split('.').map(str::to_string).collect())
        .collect()
}

fn describe(
    name: &str,
    config: &Config,
    declared: Option<&Map<String, Value>>,
    matching_keys: &[String],
) -> Object {
    Object {
        name: name.to_string(),
        sync_modes: sync_modes(config),
        json_schema: match declared {
            Some(schema) => Value::Object(schema.clone()),
            None => schema_of(config),
        },
        matching_keys: key_paths(matching_keys),
    }
}

/// Without routes one request serves every operation, so the modes `spec` advertises; with
/// routes, the Airbyte modes that have a route of their own that sends (an operation without
/// one would fall back to a request written for another).
fn sync_modes(config: &Config) -> Vec<&'static str> {
    if config.routes.is_empty() {
        return crate::spec::AIRBYTE_SYNC_MODES.to_vec();
    }
    config
        .routes
        .iter()
        .filter(|(op, route)| AIRBYTE_MODES.contains(op) && !route.skip)
        .map(|(op, _)| op)
        .collect()
}

fn free_form() -> Value {
    json!({"type": "object", "additionalProperties": true, "properties": {}})
}

/// The records an object takes: any fields when it sends them whole; else the record fields its
/// templates read, as strings (a template does not say what type it expects).
fn schema_of(config: &Config) -> Value {
    let fields = match fields_taken(config) {
        Some(fields) if !fields.is_empty() => fields,
        _ => return free_form(),
    };
    let properties: Map<String, Value> = fields
        .into_iter()
        .map(|f| (f, json!({"type": "string"})))
        .collect();
    json!({"type": "object", "additionalProperties": false, "properties": properties})
}

/// The record fields a request definition reads, or `None` when it takes the record whole:
/// no body template (the envelope carries the record), or a template reading `record` or
/// `envelope` as a value.
fn fields_taken(config: &Config) -> Option<BTreeSet<String>> {
    config.body_template()?;
    let request = config
        .request
        .iter()
        .flat_map(|r| r.body.iter().chain(&r.path).chain(&r.headers));
    let routes = config.routes.iter().flat_map(|(_, route)| {
        route
            .body
            .iter()
            .chain(&route.path)
            .chain(route.headers.iter().flatten())
    });
    let sources: Vec<&str> = request.chain(routes).map(String::as_str).collect();
    fields_read(&sources)
}

/// The top-level record fields the templates read, or `None` when one reads the record (or the
/// envelope, which holds it) as a whole.
fn fields_read(sources: &[&str]) -> Option<BTreeSet<String>> {
    let mut fields = BTreeSet::new();
    for source in sources {
        let mut env = minijinja::Environment::new();
        // A template that does not compile is refused by the config check before this.
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

    fn config(value: Value) -> Config {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_definition_reading_no_field_or_sending_the_envelope_takes_any_fields() {
        let only_facts = config(json!({"url": "http://h", "request": {"body": "{{ stream }}"}}));
        assert_eq!(schema_of(&only_facts), free_form());
        let path_only = config(json!({"url": "http://h", "request": {"path": "/{{ record.id }}"}}));
        assert_eq!(schema_of(&path_only), free_form());
        let body = config(
            json!({"url": "http://h", "request": {"body": "{\"n\": \"{{ record.name }}\"}"}}),
        );
        assert_eq!(
            schema_of(&body),
            json!({"type": "object", "additionalProperties": false, "properties": {"name": {"type": "string"}}})
        );
    }

    #[test]
    fn an_object_needs_a_name_the_connections_content_type_and_routes_that_compile() {
        let found = problems(&config(json!({"url": "http://h",
            "request": {"body": "{{ op }}", "content_type": "text/plain"},
            "objects": [
                {"name": " ", "request": {"body": "{{ op }}", "content_type": "text/plain"}},
                {"name": "forms", "request": {"body": "a={{ op }}", "content_type": "application/x-www-form-urlencoded"}},
                {"name": "routed", "routes": {"delete": {"method": "DELETE", "path": "/{{ recrod.id }}"}}}]})));
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(
            found[..2],
            [
                "objects[0].name is empty",
                "objects[1]: request.content_type is application/x-www-form-urlencoded, the top-level request's is text/plain: one connection sends one content type",
            ]
        );
        assert!(
            found[2].starts_with("objects[2]: routes.delete.path: 'recrod' is not defined"),
            "{found:?}"
        );
    }

    #[test]
    fn routes_offer_the_airbyte_modes_they_send() {
        let routed = config(json!({"url": "http://h", "routes": {
            "append": {"method": "POST"}, "update": {"method": "PATCH"},
            "soft_delete": {"skip": true}, "delete": {"method": "DELETE"}}}));
        assert_eq!(sync_modes(&routed), ["update", "append"]);
        assert_eq!(
            sync_modes(&config(json!({"url": "http://h"}))),
            crate::spec::AIRBYTE_SYNC_MODES
        );
    }
}
