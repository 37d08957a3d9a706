//! JSON text straight into a template value, in one pass: a record's templates read it once
//! per record, so going through `serde_json::Value` (an index map per object, then a second
//! conversion) cost more than rendering the template. Key order is kept, and numbers are kept
//! exactly (the narrowest template number that holds them).

use std::fmt;

use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// How serde_json (with `arbitrary_precision`) hands a number over: as a map of this one key
/// to the number's text. serde_json's own `Value` reads it the same way.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// The value of JSON `text`; undefined for text that is not JSON (never the case for what the
/// connector itself wrote).
pub fn from_json(text: &str) -> Value {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    TemplateValue
        .deserialize(&mut deserializer)
        .unwrap_or_default()
}

/// A JSON object whose fields are parsed only when a template reads them: a template usually
/// reads a few fields of a record, and parsing one scalar costs little next to building the
/// whole record. Not an object (or not JSON): the whole value, parsed.
pub fn lazy_object(text: String) -> Value {
    match field_spans(&text) {
        Some(fields) => Value::from_object(LazyObject { text, fields }),
        None => from_json(&text),
    }
}

/// Where each field's value stands in the object's text, in order.
type FieldSpans = Vec<(String, std::ops::Range<usize>)>;

/// The spans of an object's fields; `None` when `text` is not a JSON object.
fn field_spans(text: &str) -> Option<FieldSpans> {
    let fields = serde_json::from_str::<crate::protocol::RawObject<'_>>(text)
        .ok()?
        .0;
    let start = text.as_ptr() as usize;
    let spans = fields.into_iter().map(|(name, value)| {
        let at = value.get().as_ptr() as usize - start;
        (name.into_owned(), at..at + value.get().len())
    });
    Some(spans.collect())
}

#[derive(Debug)]
struct LazyObject {
    text: String,
    fields: FieldSpans,
}

impl LazyObject {
    /// A field's text; with repeated names the last one, as JSON libraries that build a map do.
    fn field(&self, name: &str) -> Option<&str> {
        let (_, span) = self.fields.iter().rev().find(|(n, _)| n == name)?;
        Some(&self.text[span.clone()])
    }
}

impl Object for LazyObject {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.field(key.as_str()?).map(from_json)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut names: Vec<Value> = Vec::with_capacity(self.fields.len());
        for (name, _) in &self.fields {
            if !names.iter().any(|n| n.as_str() == Some(name)) {
                names.push(Value::from(name.as_str()));
            }
        }
        Enumerator::Values(names)
    }
}

/// A `serde_json::Value` (from a config) as a template value.
pub fn from_serde(value: &serde_json::Value) -> Value {
    from_json(&value.to_string())
}

/// A JSON number as the narrowest template number that holds it exactly.
fn number(text: &str) -> Value {
    if let Ok(i) = text.parse::<i64>() {
        Value::from(i)
    } else if let Ok(u) = text.parse::<u64>() {
        Value::from(u)
    } else if let Ok(i) = text.parse::<i128>() {
        Value::from(i)
    } else {
        Value::from(text.parse::<f64>().unwrap_or(f64::NAN))
    }
}

struct TemplateValue;

impl<'de> DeserializeSeed<'de> for TemplateValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TemplateValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::from(()))
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::from(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::from(n))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::from(n))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::from(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(TemplateValue)? {
            items.push(item);
        }
        Ok(Value::from(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            return Ok(Value::from_iter(std::iter::empty::<(String, Value)>()));
        };
        if first == NUMBER_TOKEN {
            return Ok(number(&map.next_value::<String>()?));
        }
        let mut fields = vec![(first, map.next_value_seed(TemplateValue)?)];
        while let Some(key) = map.next_key::<String>()? {
            fields.push((key, map.next_value_seed(TemplateValue)?));
        }
        Ok(Value::from_iter(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_stay_exact_and_keys_keep_their_order() {
        let value = from_json(
            r#"{"z": 1, "a": [true, null, "s\u00e9"], "big": 123456789012345678901234567890, "neg": -5, "u": 18446744073709551615, "f": 1.5, "e": {}}"#,
        );
        assert_eq!(
            serde_json::to_string(&value).unwrap(),
            r#"{"z":1,"a":[true,null,"sé"],"big":123456789012345678901234567890,"neg":-5,"u":18446744073709551615,"f":1.5,"e":{}}"#
        );
        assert_eq!(value.get_attr("neg").unwrap(), Value::from(-5));
        assert!(from_json("not json").is_undefined());
        let null = from_json("null");
        assert!(null.is_none() && !null.is_undefined(), "null is a value");
        assert_eq!(from_serde(&serde_json::json!("r1")), Value::from("r1"));
    }

    #[test]
    fn a_lazy_object_reads_like_the_parsed_one() {
        let text = r#"{"b": {"c": [1, "x"]}, "a": "s\"q", "n": 12345678901234567890123, "a": 2}"#;
        let lazy = lazy_object(text.to_string());
        assert_eq!(
            serde_json::to_string(&lazy).unwrap(),
            r#"{"b":{"c":[1,"x"]},"a":2,"n":12345678901234567890123}"#
        );
        assert_eq!(lazy.get_attr("a").unwrap(), Value::from(2));
        assert!(lazy.get_attr("missing").unwrap().is_undefined());
        assert_eq!(lazy_object("[1]".into()), from_json("[1]"));
    }
}
