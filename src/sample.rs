//! `check`'s sample rendering: every request definition of every object rendered with a sample
//! record, so a template that cannot make a request fails the check instead of rejecting the
//! first sync's records one by one.
//!
//! The sample record is the object's `json_schema` when it declares one: a value of each declared
//! type, and a template that reads a field the schema lacks fails (Airbyte maps only declared
//! fields). Without a schema it holds the fields the templates read, each the text "1", which a
//! JSON template may write bare (a number) or quoted (a string), or an ISO date when a date
//! filter formats it. Such a guess can be wrong where a real record is right (a field added to a
//! number), so what fails with it is a note in the check's message, not a failure; a body that
//! is not JSON fails either way, since no value makes a broken template's text parse.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::routes::{Carrier, Definition, Routes};
use crate::template::{context, Activation, BatchTemplate, Facts, RenderError};

/// What the sample rendering found.
#[derive(Debug, Default, PartialEq)]
pub struct Findings {
    /// The config cannot send a record: `check` fails.
    pub failures: Vec<String>,
    /// A sample without a schema did not render: `check` passes and says so.
    pub notes: Vec<String>,
}

/// Renders every definition of the top-level request and of each object. A config whose
/// templates do not compile has no findings: its validation already refused it.
pub fn render_samples(config: &Config) -> Findings {
    let mut findings = Findings::default();
    let top = std::iter::once((None, config.clone(), None));
    let objects = config.objects.iter().map(|o| {
        let own = crate::objects::object_config(config, o);
        (Some(o.name.as_str()), own, o.json_schema.as_ref())
    });
    for (name, own, schema) in top.chain(objects) {
        let Ok(routes) = Routes::compile(&own) else {
            continue;
        };
        for (op, definition) in routes.definitions() {
            let record = match schema {
                Some(schema) => of_schema(&Value::Object(schema.clone())),
                None => of_fields(definition),
            };
            let Err(e) = render(&own, definition, op.unwrap_or("upsert"), &record) else {
                continue;
            };
            let problem = match name {
                Some(name) => format!("object '{name}': {e}"),
                None => e.to_string(),
            };
            match schema.is_some() || matches!(e, RenderError::NotJson { .. }) {
                true => findings.failures.push(problem),
                false => findings.notes.push(problem),
            }
        }
    }
    findings
}

/// One request of `definition` for `record`: its body (and a batch of two), URL and headers.
fn render(
    config: &Config,
    definition: &Definition,
    op: &str,
    record: &Value,
) -> Result<(), RenderError> {
    let envelope =
        json!({"_message_id": 1, "_sync_mode": "mirror", "_type": op, "payload": record});
    let key = reqwest::header::HeaderValue::from_static("sample-idempotency-key");
    let facts = Facts {
        op,
        stream: "sample",
        namespace: None,
        row_num: Some(1),
        message_id: 1,
        sync_mode: "mirror",
        idempotency_key: &key,
        primary_key: Some("1"),
        run_id: None,
        sync_id: None,
        activation: Activation::default(),
    };
    let context = context(record.to_string(), Some(&envelope.to_string()), &facts);
    let body = match (&definition.body, definition.carrier) {
        (Some(template), Carrier::Body) => template.render(&context)?,
        _ => envelope.to_string(),
    };
    let batch = config
        .request
        .as_ref()
        .and_then(|r| r.batch_body.as_deref());
    if let Some(template) = batch.and_then(|source| BatchTemplate::compile(source).ok()) {
        template.render([Bytes::from(body.clone()), Bytes::from(body)].into_iter())?;
    }
    if let Some(path) = &definition.path {
        path.url(config.url.url(), &context)?;
    }
    if let Some(headers) = &definition.headers {
        headers.render(&context)?;
    }
    Ok(())
}

/// A value of each type `schema` declares (the first that is not null, when it lists several).
fn of_schema(schema: &Value) -> Value {
    let types = match schema.get("type") {
        Some(Value::Array(types)) => types.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(one)) => vec![one.as_str()],
        _ if schema.get("properties").is_some() => vec!["object"],
        _ => vec!["string"],
    };
    let format = schema.get("format").and_then(Value::as_str);
    match types.into_iter().find(|t| *t != "null").unwrap_or("null") {
        "object" => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let fields = properties.into_iter().flatten();
            Value::Object(fields.map(|(k, v)| (k.clone(), of_schema(v))).collect())
        }
        "array" => json!([schema.get("items").map_or(json!("1"), of_schema)]),
        "integer" => json!(1),
        "number" => json!(1.5),
        "boolean" => json!(true),
        "null" => Value::Null,
        _ if format == Some("date") => json!("2024-01-02"),
        _ if format.is_some_and(|f| f.starts_with("date-time")) => json!(DATE_TIME),
        _ => json!("1"),
    }
}

const DATE_TIME: &str = "2024-01-02T03:04:05Z";

/// A record holding the fields `definition`'s templates read: "1", or a date where a date
/// filter formats the field; a field read whole and through its own fields is an object.
fn of_fields(definition: &Definition) -> Value {
    let mut record = Map::new();
    let mut fields: Vec<_> = definition
        .templates()
        .flat_map(|t| t.record_fields())
        .collect();
    // Deepest first, so `address` read whole does not hide `address.city`.
    fields.sort_by_key(|f| std::cmp::Reverse(f.path.matches('.').count()));
    for field in fields {
        let leaf = json!(if field.dated { DATE_TIME } else { "1" });
        insert(&mut record, &field.path, leaf);
    }
    Value::Object(record)
}

/// Sets `path` (dotted) in `record` to `leaf` unless something is there already.
fn insert(record: &mut Map<String, Value>, path: &str, leaf: Value) {
    let (first, rest) = match path.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (path, None),
    };
    match rest {
        None => {
            record.entry(first).or_insert(leaf);
        }
        Some(rest) => {
            let inner = record.entry(first).or_insert_with(|| json!({}));
            if let Value::Object(inner) = inner {
                insert(inner, rest, leaf);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(value: Value) -> Config {
        serde_json::from_value(value).unwrap()
    }

    fn findings(value: Value) -> Findings {
        render_samples(&config(value))
    }

    #[test]
    fn bare_and_quoted_fields_and_dates_render_from_the_fields_read() {
        let body = r#"{"id": {{ record.id }}, "name": "{{ record.name | lower }}", "at": "{{ record.at | dateformat }}", "city": "{{ record.address.city }}"}"#;
        let good = findings(json!({"url": "http://h", "request": {"body": body,
            "path": "/c/{{ record.id }}", "headers": ["X-T: {{ record.tenant }}"]}}));
        assert_eq!(good, Findings::default());
    }

    #[test]
    fn a_body_that_is_not_json_fails_and_a_sample_guess_is_a_note() {
        let broken =
            findings(json!({"url": "http://h", "request": {"body": "{\"id\": {{ record.id }}"}}));
        assert_eq!(broken.failures.len(), 1, "{broken:?}");
        assert!(broken.failures[0].starts_with("request.body"), "{broken:?}");
        let guess = findings(
            json!({"url": "http://h", "request": {"body": "{\"n\": {{ record.n + 1 }}}"}}),
        );
        assert_eq!(guess.failures, Vec::<String>::new());
        assert_eq!(guess.notes.len(), 1, "{guess:?}");
    }

    #[test]
    fn each_route_and_the_batch_template_is_rendered() {
        let routed = findings(json!({"url": "http://h", "routes": {
            "delete": {"method": "DELETE", "path": "/c/{{ record.id }}"},
            "update": {"body": "[{{ record.id }}"}}}));
        assert_eq!(routed.failures.len(), 1, "{routed:?}");
        assert!(
            routed.failures[0].starts_with("routes.update.body"),
            "{routed:?}"
        );
        let batch = findings(json!({"url": "http://h", "batch_size": 10,
            "request": {"batch_body": "[{{ records | length }}"}}));
        assert_eq!(batch.failures.len(), 1, "{batch:?}");
        assert!(
            batch.failures[0].starts_with("request.batch_body"),
            "{batch:?}"
        );
    }

    #[test]
    fn an_objects_schema_types_the_sample_and_bounds_what_it_may_read() {
        let object = |body: &str| {
            findings(json!({"url": "http://h", "objects": [{"name": "contacts",
                "json_schema": {"type": "object", "properties": {
                    "n": {"type": ["null", "integer"]}, "at": {"type": "string", "format": "date-time"},
                    "tags": {"type": "array", "items": {"type": "string"}}}},
                "request": {"body": body}}]}))
        };
        let typed = object(
            r#"{"n": {{ record.n + 1 }}, "at": "{{ record.at | datetimeformat }}", "t": {{ record.tags | tojson }}}"#,
        );
        assert_eq!(typed, Findings::default());
        let unknown = object(r#"{"e": "{{ record.email }}"}"#);
        assert_eq!(unknown.failures.len(), 1, "{unknown:?}");
        assert!(
            unknown.failures[0].starts_with("object 'contacts': request.body")
                && unknown.failures[0].contains("record.email"),
            "{unknown:?}"
        );
    }

    #[test]
    fn schema_samples_and_field_records() {
        assert_eq!(of_schema(&json!({"type": "boolean"})), json!(true));
        assert_eq!(of_schema(&json!({"type": "number"})), json!(1.5));
        assert_eq!(of_schema(&json!({"type": "null"})), Value::Null);
        assert_eq!(of_schema(&json!({"format": "date"})), json!("2024-01-02"));
        assert_eq!(of_schema(&json!({"type": "string"})), json!("1"));
        let stamp = json!({"type": "string", "format": "date-time"});
        assert_eq!(of_schema(&stamp), json!(DATE_TIME));
        assert_eq!(of_schema(&json!({"type": "array"})), json!(["1"]));
        assert_eq!(
            of_schema(&json!({"properties": {"a": {"type": "integer"}}})),
            json!({"a": 1})
        );
        let mut record = Map::new();
        insert(&mut record, "a.b", json!("1"));
        insert(&mut record, "a", json!("1"));
        insert(&mut record, "c", json!("1"));
        assert_eq!(Value::Object(record), json!({"a": {"b": "1"}, "c": "1"}));
    }
}
