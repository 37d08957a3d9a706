//! The JSON envelope of POST/PUT/PATCH bodies. Key order is part of the wire format:
//! `_message_id`, `_sync_mode`, `_type`, (`_stream`,) `payload`.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;

pub struct Envelope<'a, P> {
    /// 1-based position of the record among this run's RECORD messages (not an identity).
    pub message_id: u64,
    pub sync_mode: &'a str,
    /// Airbyte dialect only: the stream, `namespace.name` when namespaced.
    pub stream: Option<&'a str>,
    pub payload: P,
}

impl<P: Serialize> Serialize for Envelope<'_, P> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("_message_id", &self.message_id)?;
        map.serialize_entry("_sync_mode", self.sync_mode)?;
        map.serialize_entry("_type", "object")?;
        if let Some(stream) = self.stream {
            map.serialize_entry("_stream", stream)?;
        }
        map.serialize_entry("payload", &self.payload)?;
        map.end()
    }
}

/// An object assembled from raw JSON values, in insertion order; values are copied as text, so
/// numbers beyond f64 and any nesting pass through unchanged.
#[derive(Default)]
pub struct RawFields<'a>(pub Vec<(&'a str, &'a RawValue)>);

impl<'a> RawFields<'a> {
    /// A repeated name keeps its first position and takes the last value, like a dict.
    pub fn set(&mut self, name: &'a str, value: &'a RawValue) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    /// The same fields as a `serde_json` object, for GET flattening; fails on values nested
    /// deeper than the parser allows.
    pub fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        let mut map = serde_json::Map::with_capacity(self.0.len());
        for (k, v) in &self.0 {
            map.insert(k.to_string(), serde_json::from_str(v.get())?);
        }
        Ok(serde_json::Value::Object(map))
    }
}

impl Serialize for RawFields<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// A batch body: the envelopes (already serialised) as one JSON array, in input order.
pub fn batch_body<'a>(envelopes: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut body = Vec::with_capacity(4096);
    body.push(b'[');
    for (i, envelope) in envelopes.enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(envelope);
    }
    body.push(b']');
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn key_order_is_the_wire_format() {
        let (meta, name) = (
            raw(r#"{"_valmi_row_num":7,"_valmi_sync_op":"upsert"}"#),
            raw(r#""Jason""#),
        );
        let mut payload = RawFields::default();
        payload.set("_valmi_meta", &meta);
        payload.set("my_first_name", &name);
        let env = Envelope {
            message_id: 6,
            sync_mode: "upsert",
            stream: None,
            payload,
        };
        assert_eq!(
            serde_json::to_string(&env).unwrap(),
            r#"{"_message_id":6,"_sync_mode":"upsert","_type":"object","payload":{"_valmi_meta":{"_valmi_row_num":7,"_valmi_sync_op":"upsert"},"my_first_name":"Jason"}}"#
        );
        let data = raw(r#"{"b":1,"a":123456789012345678901234567890}"#);
        let env = Envelope {
            message_id: 1,
            sync_mode: "append",
            stream: Some("ns.s"),
            payload: &*data,
        };
        assert_eq!(
            serde_json::to_string(&env).unwrap(),
            r#"{"_message_id":1,"_sync_mode":"append","_type":"object","_stream":"ns.s","payload":{"b":1,"a":123456789012345678901234567890}}"#
        );
    }

    #[test]
    fn repeated_sink_keeps_first_position_last_value() {
        let (a, b, c) = (raw("1"), raw("2"), raw("3"));
        let mut f = RawFields::default();
        f.set("x", &a);
        f.set("y", &b);
        f.set("x", &c);
        assert_eq!(serde_json::to_string(&f).unwrap(), r#"{"x":3,"y":2}"#);
    }

    proptest::proptest! {
        /// Any field names and values: the envelope parses back with the wire-format key order
        /// and the payload's fields in insertion order, last value winning.
        #[test]
        fn envelope_round_trips(fields in proptest::collection::vec((".*", proptest::num::i64::ANY), 0..8), id in proptest::num::u64::ANY) {
            let raws: Vec<(String, Box<RawValue>)> = fields.iter().map(|(k, v)| (k.clone(), raw(&v.to_string()))).collect();
            let mut payload = RawFields::default();
            let mut expected = serde_json::Map::new();
            for (k, v) in &raws {
                payload.set(k, v);
                expected.insert(k.clone(), serde_json::from_str(v.get()).unwrap());
            }
            let text = serde_json::to_string(&Envelope { message_id: id, sync_mode: "mirror", stream: Some("s"), payload }).unwrap();
            let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
            let keys: Vec<&String> = parsed.as_object().unwrap().keys().collect();
            proptest::prop_assert_eq!(keys, ["_message_id", "_sync_mode", "_type", "_stream", "payload"]);
            proptest::prop_assert_eq!(&parsed["_message_id"], &serde_json::json!(id));
            proptest::prop_assert_eq!(parsed["payload"].as_object().unwrap(), &expected);
        }
    }

    #[test]
    fn batch_is_an_array_in_order() {
        let body = batch_body([&b"{\"a\":1}"[..], b"{\"a\":2}"].into_iter());
        assert_eq!(body, b"[{\"a\":1},{\"a\":2}]");
    }
}
