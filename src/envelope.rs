//! The JSON envelope of POST/PUT/PATCH bodies. Key order is part of the wire format:
//! `_message_id`, `_sync_mode`, `_type`, (`_stream`,) `payload`.
//!
//! Bodies are written as bytes rather than through a serializer: payload values are raw JSON
//! text copied as they are, and names rarely need escaping, so a body is mostly a few copies.
//! The output is byte-for-byte what `serde_json` writes for the same object.

use bytes::BufMut;
use serde_json::value::RawValue;

pub struct Envelope<'a, P> {
    /// 1-based position of the record among this run's RECORD messages (not an identity).
    pub message_id: u64,
    pub sync_mode: &'a str,
    /// Airbyte dialect only: the stream, `namespace.name` when namespaced.
    pub stream: Option<&'a str>,
    pub payload: P,
}

/// A JSON value an envelope can carry as its payload.
pub trait WriteJson {
    fn write_json(&self, out: &mut impl BufMut);
}

impl WriteJson for RawValue {
    fn write_json(&self, out: &mut impl BufMut) {
        out.put_slice(self.get().as_bytes());
    }
}

impl WriteJson for crate::protocol::RawJson<'_> {
    fn write_json(&self, out: &mut impl BufMut) {
        out.put_slice(self.get().as_bytes());
    }
}

impl<P: WriteJson + ?Sized> WriteJson for &P {
    fn write_json(&self, out: &mut impl BufMut) {
        (**self).write_json(out);
    }
}

impl<P: WriteJson> WriteJson for Envelope<'_, P> {
    fn write_json(&self, out: &mut impl BufMut) {
        out.put_slice(b"{\"_message_id\":");
        out.put_slice(itoa::Buffer::new().format(self.message_id).as_bytes());
        out.put_slice(b",\"_sync_mode\":");
        write_str(out, self.sync_mode);
        out.put_slice(b",\"_type\":\"object\"");
        if let Some(stream) = self.stream {
            out.put_slice(b",\"_stream\":");
            write_str(out, stream);
        }
        out.put_slice(b",\"payload\":");
        self.payload.write_json(out);
        out.put_u8(b'}');
    }
}

/// The bytes `serde_json` escapes in a string.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// A field name as the JSON string literal [`RawFields`] holds.
pub fn json_name(name: &str) -> String {
    let mut out = Vec::with_capacity(name.len() + 2);
    write_str(&mut out, name);
    String::from_utf8(out).expect("JSON text is UTF-8")
}

/// Whether `s` goes into a JSON string as it is (nothing to escape).
pub fn is_plain(s: &str) -> bool {
    !s.bytes().any(|b| NEEDS_ESCAPE[b as usize])
}

/// A JSON string. `serde_json` escapes exactly the control characters, `"` and `\`; text
/// without them is copied as it is.
fn write_str(out: &mut impl BufMut, s: &str) {
    if is_plain(s) {
        out.put_u8(b'"');
        out.put_slice(s.as_bytes());
        out.put_u8(b'"');
    } else {
        serde_json::to_writer(out.writer(), s).expect("a string always serialises");
    }
}

/// An object assembled from raw JSON values, in insertion order; values are copied as text, so
/// numbers beyond f64 and any nesting pass through unchanged. Names are held as JSON string
/// literals (quoted, escaped): they come from the catalog, so they are escaped once per run,
/// not once per record.
#[derive(Default)]
pub struct RawFields<'a>(pub Vec<(&'a str, &'a RawValue)>);

impl<'a> RawFields<'a> {
    /// A repeated name keeps its first position and takes the last value, like a dict.
    /// `name` is a JSON string literal, see [`json_name`].
    pub fn set(&mut self, name: &'a str, value: &'a RawValue) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    /// The GET parameters of these fields (see [`crate::flatten::flatten_fields`]).
    pub fn flatten(
        &self,
        out: &mut Vec<(String, String)>,
    ) -> Result<(), crate::flatten::FlattenError> {
        let fields = self.0.iter().map(|(name, value)| {
            let name: String =
                serde_json::from_str(name).expect("json_name writes a valid JSON string");
            (std::borrow::Cow::Owned(name), *value)
        });
        crate::flatten::flatten_fields("", fields, 1, out)
    }
}

impl WriteJson for RawFields<'_> {
    fn write_json(&self, out: &mut impl BufMut) {
        out.put_u8(b'{');
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.put_u8(b',');
            }
            out.put_slice(k.as_bytes());
            out.put_u8(b':');
            out.put_slice(v.get().as_bytes());
        }
        out.put_u8(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        serde_json::from_str(s).unwrap()
    }

    fn text(payload: &impl WriteJson) -> String {
        let mut out = Vec::new();
        payload.write_json(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn key_order_is_the_wire_format() {
        let (meta, name) = (
            raw(r#"{"_valmi_row_num":7,"_valmi_sync_op":"upsert"}"#),
            raw(r#""Jason""#),
        );
        let (meta_name, first_name) = (json_name("_valmi_meta"), json_name("my_first_name"));
        let mut payload = RawFields::default();
        payload.set(&meta_name, &meta);
        payload.set(&first_name, &name);
        let env = Envelope {
            message_id: 6,
            sync_mode: "upsert",
            stream: None,
            payload,
        };
        assert_eq!(
            text(&env),
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
            text(&env),
            r#"{"_message_id":1,"_sync_mode":"append","_type":"object","_stream":"ns.s","payload":{"b":1,"a":123456789012345678901234567890}}"#
        );
    }

    #[test]
    fn repeated_sink_keeps_first_position_last_value() {
        let (a, b, c) = (raw("1"), raw("2"), raw("3"));
        let (x, y) = (json_name("x"), json_name("y"));
        let mut f = RawFields::default();
        f.set(&x, &a);
        f.set(&y, &b);
        f.set(&x, &c);
        assert_eq!(text(&f), r#"{"x":3,"y":2}"#);
    }

    /// A record's `data` as it came (the Airbyte dialect's payload) is copied as it was written,
    /// and fields set one by one flatten to the same GET parameters as the object they make.
    #[test]
    fn input_data_is_copied_and_fields_flatten_as_their_object() {
        let line = br#"{"type":"RECORD","record":{"stream":"s","data":{"a":1E+2,"b":[true]}}}"#;
        let Ok(crate::protocol::Parsed::Record(record)) = crate::protocol::parse_line(line) else {
            panic!("a RECORD line");
        };
        assert_eq!(text(&record.data), r#"{"a":1E+2,"b":[true]}"#);
        let (a, b) = (raw("1E+2"), raw("[true]"));
        let (name_a, name_b) = (json_name("a"), json_name("b"));
        let mut fields = RawFields::default();
        fields.set(&name_a, &a);
        fields.set(&name_b, &b);
        let mut out = Vec::new();
        fields.flatten(&mut out).unwrap();
        let pairs = [("a", "1E+2"), ("b_0", "True")].map(|(k, v)| (k.to_string(), v.to_string()));
        assert_eq!(out, pairs);
    }

    proptest::proptest! {
        /// Any field names and values: the envelope parses back with the wire-format key order
        /// and the payload's fields in insertion order, last value winning; and its bytes are
        /// what `serde_json` writes for the same object.
        #[test]
        fn envelope_round_trips(fields in proptest::collection::vec((".*", proptest::num::i64::ANY), 0..8), id in proptest::num::u64::ANY, mode in ".*") {
            let raws: Vec<(String, String, Box<RawValue>)> = fields.iter().map(|(k, v)| (k.clone(), json_name(k), raw(&v.to_string()))).collect();
            let mut payload = RawFields::default();
            let mut expected = serde_json::Map::new();
            for (k, name, v) in &raws {
                payload.set(name, v);
                expected.insert(k.clone(), serde_json::from_str(v.get()).unwrap());
            }
            let json = text(&Envelope { message_id: id, sync_mode: &mode, stream: Some(&mode), payload });
            let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
            let keys: Vec<&String> = parsed.as_object().unwrap().keys().collect();
            proptest::prop_assert_eq!(keys, ["_message_id", "_sync_mode", "_type", "_stream", "payload"]);
            proptest::prop_assert_eq!(&parsed["_message_id"], &serde_json::json!(id));
            proptest::prop_assert_eq!(&parsed["_sync_mode"], &serde_json::json!(mode));
            proptest::prop_assert_eq!(parsed["payload"].as_object().unwrap(), &expected);
            proptest::prop_assert_eq!(json, serde_json::to_string(&parsed).unwrap());
        }
    }
}
