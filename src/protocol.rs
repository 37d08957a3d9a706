//! The protocol messages this connector reads (RECORD, STATE; everything else is ignored) and
//! writes (SPEC, CONNECTION_STATUS, CATALOG, STATE, LOG, TRACE, rejected-RECORD echoes).
//!
//! Input is parsed leniently and without copying: a record's `data` and a state's payload stay
//! raw JSON text borrowed from the input line, so a payload is forwarded byte-for-byte and only
//! the fields the connector needs are ever decoded.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::redact::FreeText;

/// One input line, decoded only as far as the envelope; `D` is how the record's `data` is read.
#[derive(Deserialize)]
#[serde(bound(deserialize = "D: Deserialize<'de>"))]
struct InputMessage<'a, D> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    record: Option<RecordIn<'a, D>>,
    #[serde(default, borrow)]
    state: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "D: Deserialize<'de>"))]
struct RecordIn<'a, D> {
    #[serde(borrow)]
    stream: Cow<'a, str>,
    #[serde(default, borrow)]
    namespace: Option<Cow<'a, str>>,
    data: D,
    #[serde(default, borrow)]
    meta: Option<Meta<'a>>,
}

/// A record's `meta` (Airbyte v0.16+): only its `changes`, kept as JSON text for templates.
#[derive(Deserialize)]
struct Meta<'a> {
    #[serde(default, borrow)]
    changes: Option<&'a RawValue>,
}

/// An input record: `data` as the raw JSON text it was sent as, and its top-level fields when
/// it is an object.
pub struct InputRecord<'a> {
    pub stream: Cow<'a, str>,
    pub namespace: Option<Cow<'a, str>>,
    pub data: RawJson<'a>,
    pub fields: Option<RawObject<'a>>,
    /// `meta.changes` as JSON text: what the platform nulled or truncated in `data`.
    pub changes: Option<&'a str>,
}

/// JSON text exactly as it appeared in the input; always one complete, valid value.
#[derive(Clone, Copy)]
pub struct RawJson<'a>(&'a str);

impl<'a> RawJson<'a> {
    pub fn get(&self) -> &'a str {
        self.0
    }
}

/// What a line of stdin turned out to be.
pub enum Parsed<'a> {
    Record(InputRecord<'a>),
    State(&'a RawValue),
    /// A valid protocol message this connector has no use for (LOG, TRACE, ...).
    Ignored,
}

/// Why a line was skipped; the text is shown to the user in a WARN LOG.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("not valid UTF-8")]
    Utf8,
    #[error("empty line")]
    Empty,
    #[error("not a JSON protocol message: {0}")]
    Json(String),
    #[error("{0} message without a '{1}' object")]
    MissingBody(&'static str, &'static str),
}

pub fn parse_line(line: &[u8]) -> Result<Parsed<'_>, LineError> {
    let text = std::str::from_utf8(line).map_err(|_| LineError::Utf8)?;
    let text = text.trim_end_matches(['\r', '\n']);
    if text.trim().is_empty() {
        return Err(LineError::Empty);
    }
    // The usual record in one pass: its data's fields are collected as the line is read, and
    // the data's raw text is the span they cover. Anything else (data that is not an object or
    // has no fields, a first key with escapes, any error) is read the general way, so both
    // ways give the same result and the same messages.
    if let Ok(InputMessage {
        kind,
        record: Some(record),
        ..
    }) = serde_json::from_str::<InputMessage<RawObject>>(text)
    {
        if kind == "RECORD" {
            if let Some(data) = object_span(text, &record.data) {
                return Ok(Parsed::Record(InputRecord {
                    stream: record.stream,
                    namespace: record.namespace,
                    data: RawJson(data),
                    changes: record.meta.and_then(|m| m.changes).map(RawValue::get),
                    fields: Some(record.data),
                }));
            }
        }
    }
    let msg: InputMessage<&RawValue> =
        serde_json::from_str(text).map_err(|e| LineError::Json(e.to_string()))?;
    match msg.kind.as_ref() {
        "RECORD" => msg
            .record
            .map(|r| {
                Parsed::Record(InputRecord {
                    stream: r.stream,
                    namespace: r.namespace,
                    data: RawJson(r.data.get()),
                    fields: RawObject::parse(r.data).ok(),
                    changes: r.meta.and_then(|m| m.changes).map(RawValue::get),
                })
            })
            .ok_or(LineError::MissingBody("RECORD", "record")),
        "STATE" => msg
            .state
            .filter(|raw| raw.get().starts_with('{'))
            .map(Parsed::State)
            .ok_or(LineError::MissingBody("STATE", "state")),
        _ => Ok(Parsed::Ignored),
    }
}

/// The text of an object whose fields were parsed out of `text`: from the `{` before its
/// first key to the `}` after its last value (only whitespace can stand between). `None` when
/// that cannot be told from where the fields lie: no fields, or a first key with escapes,
/// which is not borrowed from `text`.
fn object_span<'a>(text: &'a str, object: &RawObject<'a>) -> Option<&'a str> {
    let (Cow::Borrowed(first_key), _) = object.0.first()? else {
        return None;
    };
    let last_value = object.0.last()?.1.get();
    let base = text.as_ptr() as usize;
    let key_at = (first_key.as_ptr() as usize).checked_sub(base)?;
    let value_end = (last_value.as_ptr() as usize).checked_sub(base)? + last_value.len();
    let bytes = text.as_bytes();
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let quote = key_at.checked_sub(1)?;
    let open = bytes.get(..quote)?.iter().rposition(|b| !is_space(b))?;
    let close = value_end + bytes.get(value_end..)?.iter().position(|b| !is_space(b))?;
    (bytes[quote] == b'"' && bytes[open] == b'{' && bytes[close] == b'}')
        .then(|| &text[open..=close])
}

/// The top-level fields of a JSON object, in order, values left as raw text. Keys are borrowed
/// unless they contain escapes.
pub struct RawObject<'a>(pub Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> RawObject<'a> {
    pub fn parse(raw: &'a RawValue) -> Result<Self, String> {
        serde_json::from_str(raw.get()).map_err(|e| e.to_string())
    }

    /// The value of a field; with duplicate keys the last one wins, as in every JSON library
    /// that builds a map.
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawObject<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    fields.push((key.0, map.next_value::<&'de RawValue>()?));
                }
                Ok(RawObject(fields))
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// A JSON string borrowed from the input unless it has escapes. (`#[serde(borrow)]` does not
/// reach a `Cow` inside an `Option`, which would allocate for every record.)
pub struct Text<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// Milliseconds since the Unix epoch, as the protocol's `emitted_at` wants.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Level {
    Info,
    Warn,
    Error,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureType {
    ConfigError,
    TransientError,
    SystemError,
}

/// One message for stdout. Most are built as `Value`s; a rejected-record echo carries the
/// record's data as raw text, which is never parsed again (it may be nested deeper than any
/// parser allows).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Message {
    Json(Value),
    Raw(Box<RawValue>),
}

impl From<Value> for Message {
    fn from(value: Value) -> Self {
        Message::Json(value)
    }
}

impl Message {
    /// The message as a `Value`, for tests and inspection.
    pub fn to_value(&self) -> Value {
        match self {
            Message::Json(v) => v.clone(),
            Message::Raw(raw) => serde_json::from_str(raw.get()).unwrap_or(Value::Null),
        }
    }
}

/// Messages written to stdout, each serialised as one compact JSON line. The prose in them is
/// [`FreeText`], scrubbed of secrets as it is made; the rest is never scrubbed.
pub fn log(level: Level, message: &str) -> Message {
    let message = FreeText::from(message);
    Message::Json(json!({"type": "LOG", "log": {"level": level, "message": message}}))
}

fn trace_error(failure_type: FailureType, message: &FreeText, internal: &FreeText) -> Value {
    json!({"type": "TRACE", "trace": {
        "type": "ERROR",
        "emitted_at": now_millis() as f64,
        "error": {"message": message, "internal_message": internal, "failure_type": failure_type}
    }})
}

/// A reason to stop the sync, reported as one TRACE ERROR.
#[derive(Clone, Debug)]
pub struct Fatal {
    pub failure_type: FailureType,
    pub message: FreeText,
    pub internal: FreeText,
}

impl Fatal {
    pub fn new(
        failure_type: FailureType,
        message: impl Into<FreeText>,
        internal: impl Into<FreeText>,
    ) -> Self {
        Fatal {
            failure_type,
            message: message.into(),
            internal: internal.into(),
        }
    }

    /// A `config_error` stop with the whole chain of `problem` as its message (an `anyhow`
    /// error's contexts, outermost first).
    pub fn config(problem: impl std::fmt::Display) -> Self {
        Fatal::new(
            FailureType::ConfigError,
            format!("{problem:#}"),
            String::new(),
        )
    }

    pub fn trace(&self) -> Value {
        trace_error(self.failure_type, &self.message, &self.internal)
    }
}

pub fn connection_status(ok: bool, message: impl Into<FreeText>) -> Value {
    let message = message.into();
    json!({"type": "CONNECTION_STATUS", "connectionStatus": {
        "status": if ok { "SUCCEEDED" } else { "FAILED" },
        "message": message
    }})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records_states_and_ignores_others() {
        let line = br#"{"type":"RECORD","record":{"stream":"s","data":{"a":1},"emitted_at":1},"extra":true}"#;
        match parse_line(line).unwrap() {
            Parsed::Record(r) => {
                assert_eq!(r.stream, "s");
                assert_eq!(r.data.get(), r#"{"a":1}"#);
            }
            _ => panic!("not a record"),
        }
        let line = br#"{"type":"STATE","state":{"data":{"x":1}}}"#;
        assert!(
            matches!(parse_line(line).unwrap(), Parsed::State(s) if s.get() == r#"{"data":{"x":1}}"#)
        );
        assert!(matches!(
            parse_line(br#"{"type":"LOG","log":{}}"#).unwrap(),
            Parsed::Ignored
        ));
    }

    /// A record's data comes out as the exact text of the input, whichever way the line was
    /// read (one pass, or the general way for what one pass cannot place).
    #[test]
    fn data_is_the_input_text_whichever_way_it_was_read() {
        for data in [
            r#"{"a":1}"#,
            r#"{ "a" : 1 , "b":[1,{"c":"}"}] }"#,
            r#"{ "a" : {} }"#,
            "{\n\t\"a\":\"x\\\"y\"\r\n}",
            r#"{"a\"b":1,"c":2}"#,
            r#"{"\u0061":1}"#,
            r#"{}"#,
            r#"{"a":{},"a":2}"#,
            r#"[1,2]"#,
            r#""text""#,
            r#"123456789012345678901234567890"#,
            r#"null"#,
        ] {
            for line in [
                format!(r#"{{"type":"RECORD","record":{{"stream":"s","data":{data}}}}}"#),
                format!(
                    r#"{{"type":"RECORD","record":{{"data": {data} ,"stream":"s","emitted_at":1}}}}"#
                ),
            ] {
                let Ok(Parsed::Record(r)) = parse_line(line.as_bytes()) else {
                    panic!("not a record: {line}")
                };
                assert_eq!(r.data.get(), data, "{line}");
                let raw: Box<RawValue> = serde_json::from_str(data).unwrap();
                let expected = RawObject::parse(&raw).ok();
                let keys = |o: &Option<RawObject>| {
                    o.as_ref().map(|o| {
                        o.0.iter()
                            .map(|(k, v)| (k.to_string(), v.get().to_string()))
                            .collect::<Vec<_>>()
                    })
                };
                assert_eq!(keys(&r.fields), keys(&expected), "{line}");
            }
        }
    }

    /// Only a RECORD is a record, whatever other fields a message carries.
    #[test]
    fn a_state_with_a_record_field_is_a_state() {
        let line = br#"{"type":"STATE","state":{"a":1},"record":{"stream":"s","data":{"x":1}}}"#;
        assert!(matches!(parse_line(line), Ok(Parsed::State(_))));
    }

    #[test]
    fn rejects_what_is_not_a_message() {
        for bad in [
            &b""[..],
            b"   ",
            b"{\"unparseable",
            b"[1]",
            b"{\"type\":\"RECORD\"}",
            b"\xff\xfe",
            b"NaN",
        ] {
            assert!(
                parse_line(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn deep_nesting_passes_through_raw_without_a_crash() {
        let mut line = String::from(r#"{"type":"RECORD","record":{"stream":"s","data":{"a":"#);
        line.push_str(&"[".repeat(10_000));
        line.push_str(&"]".repeat(10_000));
        line.push_str("}}}");
        assert!(matches!(parse_line(line.as_bytes()), Ok(Parsed::Record(_))));
        let deep_type = format!("{{\"type\":{}1{}}}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse_line(deep_type.as_bytes()).is_err());
    }

    #[test]
    fn raw_object_keeps_order_and_last_duplicate_wins() {
        let raw: Box<RawValue> = serde_json::from_str(r#"{"b":1,"a\"x":[1],"b":2}"#).unwrap();
        let obj = RawObject::parse(&raw).unwrap();
        let keys: Vec<_> = obj.0.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["b", "a\"x", "b"]);
        assert_eq!(obj.get("b").unwrap().get(), "2");
        assert!(RawObject::parse(&serde_json::from_str::<Box<RawValue>>("[1]").unwrap()).is_err());
    }
}
