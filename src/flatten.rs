//! GET requests: the envelope (minus `_type`) flattened into query parameters, exactly as the
//! original connector did it: nested keys joined with `_`, array indexes as key segments,
//! `null`/`[]`/`{}` dropped, booleans as `True`/`False`, numbers as their JSON text, strings
//! form-encoded.

use serde_json::Value;
use url::Url;

/// Flattens `value` under `prefix` into `(name, value)` pairs, in document order.
pub fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    let join = |segment: &str| {
        if prefix.is_empty() {
            segment.to_string()
        } else {
            format!("{prefix}_{segment}")
        }
    };
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push((
            prefix.to_string(),
            if *b { "True" } else { "False" }.to_string(),
        )),
        Value::Number(n) => out.push((prefix.to_string(), n.to_string())),
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten(&join(&i.to_string()), item, out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                flatten(&join(k), v, out);
            }
        }
    }
}

/// Appends one record's parameters to the endpoint's own query: payload fields, then
/// `_message_id`, `_sync_mode` and (Airbyte) `_stream`.
pub fn append_envelope_query(
    url: &mut Url,
    payload: &Value,
    message_id: u64,
    sync_mode: &str,
    stream: Option<&str>,
) {
    let mut pairs = Vec::new();
    flatten("", payload, &mut pairs);
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
    use serde_json::json;

    /// The parameters alone, as appended to an endpoint without a query of its own.
    fn envelope_query(payload: &Value, id: u64, sync_mode: &str, stream: Option<&str>) -> String {
        let mut url = Url::parse("http://h/x").unwrap();
        append_envelope_query(&mut url, payload, id, sync_mode, stream);
        url.query().unwrap().to_string()
    }

    #[test]
    fn follows_the_original_rules() {
        let payload = json!({"_valmi_meta": {"_valmi_row_num": 1, "_valmi_sync_op": "delete"},
            "obj": {"a": 1, "b": {"c": [1, 2, {"d": null}]}}, "flag": true, "no": false, "nul": null,
            "f": 1.5, "arr": [], "emptyobj": {}, "uni": "é ü &=?+/ #"});
        let q = envelope_query(&payload, 1, "mirror", None);
        assert_eq!(q, "_valmi_meta__valmi_row_num=1&_valmi_meta__valmi_sync_op=delete&obj_a=1&obj_b_c_0=1&obj_b_c_1=2&flag=True&no=False&f=1.5&uni=%C3%A9+%C3%BC+%26%3D%3F%2B%2F+%23&_message_id=1&_sync_mode=mirror");
        let q = envelope_query(&json!({"o": [{"d": 5}]}), 2, "append", Some("ns.s"));
        assert_eq!(q, "o_0_d=5&_message_id=2&_sync_mode=append&_stream=ns.s");
    }

    #[test]
    fn numbers_keep_their_text() {
        let v: Value =
            serde_json::from_str(r#"{"big": 123456789012345678901234567890, "f": 1.50}"#).unwrap();
        let mut out = Vec::new();
        flatten("", &v, &mut out);
        assert_eq!(out[0].1, "123456789012345678901234567890");
        assert_eq!(out[1].1, "1.50");
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
            let mut expected = Vec::new();
            flatten("", &payload, &mut expected);
            expected.push(("_message_id".to_string(), id.to_string()));
            expected.push(("_sync_mode".to_string(), "upsert".to_string()));
            let query = envelope_query(&payload, id, "upsert", None);
            let decoded: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
            proptest::prop_assert_eq!(decoded, expected);
        }
    }
}
