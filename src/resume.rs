//! Reading a Valmi `--state` checkpoint in any of the three shapes the engine has used.

use serde_json::Value;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resume {
    /// The last committed chunk; this run's first chunk is the next one.
    pub chunk_id: Option<u64>,
    /// Rows up to this `_valmi_row_num` were delivered by an earlier attempt of this run.
    pub last_row_num: Option<u64>,
}

/// `{"_valmi_meta":{"chunk_id":N}}`, `{"type":"STREAM","data":{...}}` or a whole
/// `{"type":"STATE","state":{...}}` message.
pub fn parse(state: &Value) -> Resume {
    let candidates = [
        state.get("_valmi_meta"),
        state.get("data"),
        state.get("state").and_then(|s| s.get("data")),
        state.get("state").and_then(|s| s.get("_valmi_meta")),
    ];
    let field = |name: &str| {
        candidates
            .iter()
            .flatten()
            .find_map(|c| c.get(name).and_then(Value::as_u64))
    };
    Resume {
        chunk_id: field("chunk_id"),
        last_row_num: field("last_row_num"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_all_three_shapes() {
        assert_eq!(
            parse(&json!({"_valmi_meta": {"chunk_id": 5}})).chunk_id,
            Some(5)
        );
        let stream = json!({"type": "STREAM", "data": {"chunk_id": 2, "last_row_num": 8}});
        assert_eq!(
            parse(&stream),
            Resume {
                chunk_id: Some(2),
                last_row_num: Some(8)
            }
        );
        let msg = json!({"type": "STATE", "state": {"type": "STREAM", "data": {"chunk_id": 255}}, "emitted_at": 1});
        assert_eq!(parse(&msg).chunk_id, Some(255));
        assert_eq!(parse(&json!({})), Resume::default());
    }
}
