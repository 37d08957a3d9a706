//! Reading a Valmi `--state` checkpoint in any of the three shapes the engine has used.
//!
//! Anything else is refused rather than ignored: an ignored checkpoint restarts the run at
//! chunk 1, so every row already delivered is sent and counted again.

use std::path::Path;

use anyhow::Context;
use serde_json::{Map, Value};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resume {
    /// The last committed chunk; this run's first chunk is the next one.
    pub chunk_id: Option<u64>,
    /// Rows up to this `_valmi_row_num` were delivered by an earlier attempt of this run.
    pub last_row_num: Option<u64>,
}

/// A `--state` that is neither empty nor a checkpoint shape the contract lists.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{problem}; expected an empty file, null or {{}} (start from the first chunk) or a Valmi checkpoint: {{\"_valmi_meta\":{{\"chunk_id\":N}}}}, {{\"type\":\"STREAM\",\"data\":{{\"chunk_id\":N,...}}}} or {{\"type\":\"STATE\",\"state\":{{\"type\":\"STREAM\",\"data\":{{\"chunk_id\":N,...}}}}}}, where N (and last_row_num, when given) is a whole number >= 0")]
pub struct StateError {
    problem: String,
}

fn refuse(problem: impl Into<String>) -> StateError {
    StateError {
        problem: problem.into(),
    }
}

/// The checkpoint in the `--state` file; an empty file starts fresh.
pub fn read(path: &Path) -> anyhow::Result<Resume> {
    let text = crate::files::read_text(path, "state")?;
    if text.trim().is_empty() {
        return Ok(Resume::default());
    }
    let value = crate::files::parse_json(&text, path, "state")?;
    parse(&value).with_context(|| format!("the state file {}", path.display()))
}

/// `{"_valmi_meta":{"chunk_id":N}}`, `{"type":"STREAM","data":{...}}` or a whole
/// `{"type":"STATE","state":{...}}` message; `null` and `{}` start fresh.
pub fn parse(state: &Value) -> Result<Resume, StateError> {
    let object = match state {
        Value::Null => return Ok(Resume::default()),
        Value::Object(object) if object.is_empty() => return Ok(Resume::default()),
        Value::Object(object) => object,
        other => return Err(refuse(format!("holds {}, not an object", kind(other)))),
    };
    let inner = object.get("state").and_then(Value::as_object);
    let candidates = [
        ("_valmi_meta", object.get("_valmi_meta")),
        ("data", object.get("data")),
        ("state.data", inner.and_then(|s| s.get("data"))),
        (
            "state._valmi_meta",
            inner.and_then(|s| s.get("_valmi_meta")),
        ),
    ];
    let Some((place, checkpoint)) = candidates
        .into_iter()
        .find_map(|(place, found)| found.map(|c| (place, c)))
    else {
        return Err(refuse(if object.contains_key("chunk_id") {
            "has chunk_id at its top level, outside any checkpoint shape"
        } else {
            "has no _valmi_meta, data or state.data holding a chunk_id"
        }));
    };
    let Value::Object(checkpoint) = checkpoint else {
        return Err(refuse(format!(
            "'{place}' is {}, not an object",
            kind(checkpoint)
        )));
    };
    Ok(Resume {
        chunk_id: Some(
            whole_number(checkpoint, place, "chunk_id")?
                .ok_or_else(|| refuse(format!("'{place}' has no chunk_id")))?,
        ),
        last_row_num: whole_number(checkpoint, place, "last_row_num")?,
    })
}

/// The field `name` of the checkpoint at `place`: absent, or a whole number >= 0.
fn whole_number(
    checkpoint: &Map<String, Value>,
    place: &str,
    name: &str,
) -> Result<Option<u64>, StateError> {
    match checkpoint.get(name) {
        None => Ok(None),
        Some(value) => value.as_u64().map(Some).ok_or_else(|| {
            refuse(format!(
                "'{place}.{name}' is {}, not a whole number >= 0",
                kind(value)
            ))
        }),
    }
}

/// How a value is described in a message: numbers as themselves, other values by kind.
fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(n) => n.to_string(),
        Value::String(_) => "a string".into(),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The `--state` file as given: a checkpoint in it is where the run resumes; an empty
    /// file starts fresh.
    #[test]
    fn reads_the_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, r#"{"_valmi_meta":{"chunk_id":3}}"#).unwrap();
        assert_eq!(read(&path).unwrap().chunk_id, Some(3));
        std::fs::write(&path, "\n").unwrap();
        assert_eq!(read(&path).unwrap(), Resume::default());
    }

    #[test]
    fn reads_all_three_shapes() {
        assert_eq!(
            parse(&json!({"_valmi_meta": {"chunk_id": 5}}))
                .unwrap()
                .chunk_id,
            Some(5)
        );
        let stream = json!({"type": "STREAM", "data": {"chunk_id": 2, "last_row_num": 8}});
        assert_eq!(
            parse(&stream).unwrap(),
            Resume {
                chunk_id: Some(2),
                last_row_num: Some(8)
            }
        );
        let msg = json!({"type": "STATE", "state": {"type": "STREAM", "data": {"chunk_id": 255}}, "emitted_at": 1});
        assert_eq!(parse(&msg).unwrap().chunk_id, Some(255));
        assert_eq!(parse(&json!({})).unwrap(), Resume::default());
        assert_eq!(parse(&Value::Null).unwrap(), Resume::default());
    }

    #[test]
    fn refuses_every_other_shape_and_says_what_is_wrong() {
        for (state, says) in [
            (json!([{"chunk_id": 3}]), "holds an array"),
            (json!("chunk 3"), "holds a string"),
            (json!(3), "holds 3"),
            (json!({"chunk_id": 3}), "chunk_id at its top level"),
            (
                json!({"cursor": "x"}),
                "has no _valmi_meta, data or state.data",
            ),
            (json!({"_valmi_meta": null}), "'_valmi_meta' is null"),
            (
                json!({"data": {"chunk_id": null}}),
                "'data.chunk_id' is null",
            ),
            (json!({"data": {"chunk_id": -1}}), "'data.chunk_id' is -1"),
            (
                json!({"data": {"chunk_id": "3"}}),
                "'data.chunk_id' is a string",
            ),
            (json!({"data": {"chunk_id": 2.5}}), "is 2.5"),
            (
                json!({"data": {"last_row_num": 4}}),
                "'data' has no chunk_id",
            ),
            (
                json!({"type": "STATE", "state": {"data": {"chunk_id": 1, "last_row_num": -4}}}),
                "'state.data.last_row_num' is -4",
            ),
        ] {
            let message = parse(&state).unwrap_err().to_string();
            assert!(message.contains(says), "{state}: {message}");
            assert!(message.contains("expected an empty file"), "{message}");
        }
    }
}
