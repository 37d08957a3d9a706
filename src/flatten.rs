//! GET requests: the envelope (minus `_type`) flattened into query parameters, exactly as the
//! original connector did it: nested keys joined with `_`, array indexes as key segments,
//! `null`/`[]`/`{}` dropped, booleans as `True`/`False`, numbers as their JSON text, strings
//! form-encoded.
//!
//! The payload is walked as raw JSON text, one level at a time, rather than parsed into a
//! `serde_json::Value`: a parsed number forgets how it was written (`1E+2` comes back as
//! `1e+2`), and the contract says numbers keep their text.

use std::borrow::Cow;

use indexmap::IndexMap;
use serde_json::value::RawValue;
use url::Url;

use crate::protocol::RawObject;

/// Levels of objects and arrays a payload may have, its own included: the limit of a
/// `serde_json` parse, which GET flattening had before it walked raw text.
pub const MAX_DEPTH: usize = 128;

/// Why a record cannot become GET parameters; the record is rejected with [`Self::code`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FlattenError {
    #[error("it is nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// The parser's own words ("unexpected end of hex escape") would not tell a person what
    /// is wrong, and the only string valid JSON can hold that is not Unicode is one with an
    /// unpaired surrogate escape.
    #[error("{place} is not a valid Unicode string: it has an unpaired UTF-16 surrogate escape (such as \\ud800), which has no UTF-8 form to put in a URL; POST sends it as it came")]
    InvalidString { place: String },
}

impl FlattenError {
    pub fn code(&self) -> &'static str {
        match self {
            FlattenError::TooDeep => "too_deep",
            FlattenError::InvalidString { .. } => "invalid_string",
        }
    }
}

/// The `(name, value)` pairs of an object's fields under `prefix`, in document order.
/// `depth` counts the object itself. A repeated key keeps its first position and takes the
/// last value, as a parsed JSON map does.
pub fn flatten_fields<'a>(
    prefix: &str,
    fields: impl IntoIterator<Item = (Cow<'a, str>, &'a RawValue)>,
    depth: usize,
    out: &mut Vec<(String, String)>,
) -> Result<(), FlattenError> {
    if depth > MAX_DEPTH {
        return Err(FlattenError::TooDeep);
    }
    let mut unique: IndexMap<Cow<'a, str>, &'a RawValue> = IndexMap::new();
    for (key, value) in fields {
        unique.insert(key, value);
    }
    for (key, value) in unique {
        flatten_value(&join(prefix, &key), value, depth, out)?;
    }
    Ok(())
}

/// One value named `name`; `depth` is the depth of the object or array holding it.
fn flatten_value(
    name: &str,
    raw: &RawValue,
    depth: usize,
    out: &mut Vec<(String, String)>,
) -> Result<(), FlattenError> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'n') => {}
        Some(b't') => out.push((name.to_string(), "True".to_string())),
        Some(b'f') => out.push((name.to_string(), "False".to_string())),
        Some(b'"') => {
            let value: String = serde_json::from_str(text)
                .map_err(|_| invalid_string(format!("the value of '{name}'")))?;
            out.push((name.to_string(), value));
        }
        Some(b'{') => {
            // Valid JSON text, so only a key that is no string of Unicode can fail here.
            let object = RawObject::parse(raw)
                .map_err(|_| invalid_string(format!("a key inside '{name}'")))?;
            flatten_fields(name, object.0, depth + 1, out)?;
        }
        Some(b'[') => {
            if depth + 1 > MAX_DEPTH {
                return Err(FlattenError::TooDeep);
            }
            let items: Vec<&RawValue> = serde_json::from_str(text)
                .map_err(|_| invalid_string(format!("an item of '{name}'")))?;
            for (i, item) in items.into_iter().enumerate() {
                flatten_value(&join(name, &i.to_string()), item, depth + 1, out)?;
            }
        }
        _ => out.push((name.to_string(), text.to_string())),
    }
    Ok(())
}

fn invalid_string(place: String) -> FlattenError {
    FlattenError::InvalidString { place }
}

fn join(prefix: &str, segment: &str) -> String {
    if prefix.is_empty() {
        segment.to_string()
    } else {
        format!("{prefix}_{segment}")
    }
}

/// Appends one record's parameters to the endpoint's own query: the payload's pairs (see
/// [`flatten_fields`]), then `_message_id`, `_sync_mode` and (Airbyte) `_stream`.
pub fn append_envelope_query(
    url: &mut Url,
    pairs: Vec<(String, String)>,
    message_id: u64,
    sync_mode: &str,
    stream: Option<&str>,
) {
    let mut query = url.query_pairs_mut();
    query.extend_pairs(pairs);
    query.append_pair("_message_id", itoa::Buffer::new().format(message_id));
    query.append_pair("_sync_mode", sync_mode);
    if let Some(stream) = stream {
        query.append_pair("_stream", stream);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn pairs(payload: &str) -> Result<Vec<(String, String)>, FlattenError> {
        let raw: Box<RawValue> = serde_json::from_str(payload).unwrap();
        let mut out = Vec::new();
        flatten_fields("", RawObject::parse(&raw).unwrap().0, 1, &mut out)?;
        Ok(out)
    }

    /// The parameters alone, as appended to an endpoint without a query of its own.
    fn query(payload: &str, id: u64, mode: &str, stream: Option<&str>) -> String {
        let mut url = Url::parse("http://h/x").unwrap();
        append_envelope_query(&mut url, pairs(payload).unwrap(), id, mode, stream);
        url.query().unwrap().to_string()
    }

    #[test]
    fn follows_the_original_rules() {
        let payload = r#"{"_valmi_meta": {"_valmi_row_num": 1, "_valmi_sync_op": "delete"},
            "obj": {"a": 1, "b": {"c": [1, 2, {"d": null}]}}, "flag": true, "no": false, "nul": null,
            "f": 1.5, "arr": [], "emptyobj": {}, "uni": "é ü &=?+/ #"}"#;
        let q = query(payload, 1, "mirror", None);
        assert_eq!(q, "_valmi_meta__valmi_row_num=1&_valmi_meta__valmi_sync_op=delete&obj_a=1&obj_b_c_0=1&obj_b_c_1=2&flag=True&no=False&f=1.5&uni=%C3%A9+%C3%BC+%26%3D%3F%2B%2F+%23&_message_id=1&_sync_mode=mirror");
        let q = query(r#"{"o": [{"d": 5}]}"#, 2, "append", Some("ns.s"));
        assert_eq!(q, "o_0_d=5&_message_id=2&_sync_mode=append&_stream=ns.s");
    }

    /// A parse into `Value` wrote `1E+2` as `1e+2` and `1e400` as `1e+400`.
    #[test]
    fn numbers_keep_their_text() {
        let out = pairs(
            r#"{"big": 123456789012345678901234567890, "f": 1.50, "e": 1E+2, "huge": 1e400,
                "small": -2.5e-3, "in": [1E5, {"x": 0E0}]}"#,
        )
        .unwrap();
        let values: Vec<&str> = out.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(
            values,
            [
                "123456789012345678901234567890",
                "1.50",
                "1E+2",
                "1e400",
                "-2.5e-3",
                "1E5",
                "0E0"
            ]
        );
    }

    #[test]
    fn a_repeated_key_keeps_its_first_place_and_last_value() {
        let out = pairs(r#"{"a": 1, "b": {"c": 1, "c": 2}, "a": 3}"#).unwrap();
        assert_eq!(
            out,
            [("a".into(), "3".into()), ("b_c".into(), "2".into())] as [(String, String); 2]
        );
    }

    #[test]
    fn nesting_past_the_limit_is_too_deep_whatever_its_depth() {
        let nested = |levels: usize| {
            format!(
                "{{\"a\":{}1{}}}",
                "[".repeat(levels - 1),
                "]".repeat(levels - 1)
            )
        };
        assert_eq!(pairs(&nested(MAX_DEPTH)).unwrap().len(), 1);
        for levels in [MAX_DEPTH + 1, 10_000] {
            let error = pairs(&nested(levels)).unwrap_err();
            assert_eq!(error.code(), "too_deep", "{levels}: {error}");
        }
    }

    /// The same limit for objects as for arrays: an object `MAX_DEPTH` levels deep (the
    /// payload's own included) is flattened, one level more is too deep.
    #[test]
    fn nested_objects_have_the_same_limit() {
        let nested = |levels: usize| format!("{}1{}", "{\"a\":".repeat(levels), "}".repeat(levels));
        let out = pairs(&nested(MAX_DEPTH)).unwrap();
        assert_eq!(out, [(vec!["a"; MAX_DEPTH].join("_"), "1".to_string())]);
        let error = pairs(&nested(MAX_DEPTH + 1)).unwrap_err();
        assert_eq!(error.code(), "too_deep");
    }

    #[test]
    fn a_lone_surrogate_is_an_invalid_string_not_too_deep() {
        for (payload, place) in [
            (r#"{"s": "\ud800"}"#, "the value of 's'"),
            (r#"{"o": {"t": ["x", "a\udc00b"]}}"#, "the value of 'o_t_1'"),
            (r#"{"o": {"\ud800": 1}}"#, "a key inside 'o'"),
        ] {
            let error = pairs(payload).unwrap_err();
            assert_eq!(error.code(), "invalid_string", "{payload}");
            let message = error.to_string();
            assert!(message.starts_with(place), "{message}");
            assert!(message.contains("surrogate"), "{message}");
        }
    }

    fn arbitrary_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::vec((any::<String>(), inner), 0..5)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Whatever the record, the query decodes back to exactly the flattened pairs, in
        /// order, followed by the envelope fields.
        #[test]
        fn query_decodes_to_the_flattened_values(payload in arbitrary_json(), id in 1u64..u64::MAX) {
            let payload = json!({"p": payload}).to_string();
            let mut expected = pairs(&payload).unwrap();
            expected.push(("_message_id".to_string(), id.to_string()));
            expected.push(("_sync_mode".to_string(), "upsert".to_string()));
            let query = query(&payload, id, "upsert", None);
            let decoded: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
            proptest::prop_assert_eq!(decoded, expected);
        }
    }
}
