//! The catalogs `write` is given: Valmi's destination catalog (sink mode and field mapping) and
//! source catalog (the key column), or an Airbyte ConfiguredAirbyteCatalog. Parsed leniently:
//! only the fields used here are read, everything else is ignored.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{file}: {problem}")]
    Invalid { file: &'static str, problem: String },
}

fn invalid(file: &'static str, problem: impl Into<String>) -> CatalogError {
    CatalogError::Invalid {
        file,
        problem: problem.into(),
    }
}

/// One `{"stream": SOURCE_FIELD, "sink": DEST_FIELD}` entry of a Valmi mapping.
#[derive(Clone, Debug, Deserialize)]
pub struct MappingEntry {
    pub stream: String,
    pub sink: String,
}

/// What the Valmi dialect needs from `--destination_catalog` and `--catalog`.
#[derive(Clone, Debug)]
pub struct ValmiCatalog {
    pub sync_mode: String,
    pub mapping: Vec<MappingEntry>,
    /// The key column, from the source catalog's `id_key`.
    pub id_key: Option<String>,
}

#[derive(Deserialize)]
struct DestinationCatalog {
    sinks: Vec<Sink>,
}

#[derive(Deserialize)]
struct Sink {
    #[serde(default)]
    mapping: Vec<MappingEntry>,
    destination_sync_mode: String,
}

#[derive(Deserialize)]
struct SourceCatalog {
    #[serde(default)]
    streams: Vec<SourceStream>,
}

#[derive(Deserialize)]
struct SourceStream {
    #[serde(default)]
    id_key: Option<String>,
}

impl ValmiCatalog {
    pub fn parse(destination: &Value, source: &Value) -> Result<Self, CatalogError> {
        let dest: DestinationCatalog = serde_json::from_value(destination.clone())
            .map_err(|e| invalid("destination catalog", format!("expected {{\"sinks\": [{{\"mapping\": [...], \"destination_sync_mode\": ...}}]}}: {e}")))?;
        let sink = dest
            .sinks
            .into_iter()
            .next()
            .ok_or_else(|| invalid("destination catalog", "'sinks' is empty"))?;
        let source: SourceCatalog = serde_json::from_value(source.clone())
            .map_err(|e| invalid("catalog", format!("expected {{\"streams\": [...]}}: {e}")))?;
        let id_key = source
            .streams
            .into_iter()
            .find_map(|s| s.id_key)
            .filter(|k| !k.is_empty());
        Ok(ValmiCatalog {
            sync_mode: sink.destination_sync_mode,
            mapping: sink.mapping,
            id_key,
        })
    }
}

/// One stream of a ConfiguredAirbyteCatalog.
#[derive(Clone, Debug)]
pub struct AirbyteStream {
    pub name: String,
    pub namespace: Option<String>,
    pub sync_mode: String,
    pub primary_key: Vec<Vec<String>>,
    /// The destination object (Airbyte data activation) the stream's records go to.
    pub destination_object_name: Option<String>,
    /// Its index among the config's objects (0: the top-level request), once resolved.
    pub object: usize,
    pub refresh: Refresh,
}

/// What Airbyte says of a stream's refreshes (protocol v0.16+; absent from older platforms).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refresh {
    /// Grows with each refresh of the stream; shared by the syncs in between.
    pub generation_id: Option<i64>,
    /// Equal to `generation_id` (and > 0) when older generations are to be removed.
    pub minimum_generation_id: Option<i64>,
    pub sync_id: Option<i64>,
}

impl Refresh {
    /// A refresh that truncates: data of older generations is to go.
    pub fn truncates(&self) -> bool {
        matches!((self.generation_id, self.minimum_generation_id), (Some(g), Some(m)) if g > 0 && m == g)
    }
}

#[derive(Deserialize)]
struct ConfiguredCatalog {
    streams: Vec<ConfiguredStream>,
}

#[derive(Deserialize)]
struct ConfiguredStream {
    stream: StreamDescriptor,
    destination_sync_mode: String,
    #[serde(default)]
    primary_key: Option<Vec<Vec<String>>>,
    #[serde(default)]
    destination_object_name: Option<String>,
    // Not a flattened `Refresh`: with `arbitrary_precision`, serde's flatten cannot read numbers.
    #[serde(default)]
    generation_id: Option<i64>,
    #[serde(default)]
    minimum_generation_id: Option<i64>,
    #[serde(default)]
    sync_id: Option<i64>,
}

#[derive(Deserialize)]
struct StreamDescriptor {
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    source_defined_primary_key: Option<Vec<Vec<String>>>,
}

pub fn parse_airbyte(catalog: &Value) -> Result<Vec<AirbyteStream>, CatalogError> {
    let parsed: ConfiguredCatalog = serde_json::from_value(catalog.clone()).map_err(|e| {
        invalid("catalog", format!("expected a ConfiguredAirbyteCatalog {{\"streams\": [{{\"stream\": {{\"name\": ...}}, \"destination_sync_mode\": ...}}]}}: {e}"))
    })?;
    Ok(parsed
        .streams
        .into_iter()
        .map(|s| AirbyteStream {
            primary_key: s
                .primary_key
                .filter(|k| !k.is_empty())
                .or(s.stream.source_defined_primary_key)
                .unwrap_or_default()
                .into_iter()
                .filter(|path| !path.is_empty())
                .collect(),
            name: s.stream.name,
            namespace: s.stream.namespace,
            sync_mode: s.destination_sync_mode,
            destination_object_name: s.destination_object_name,
            object: 0,
            refresh: Refresh {
                generation_id: s.generation_id,
                minimum_generation_id: s.minimum_generation_id,
                sync_id: s.sync_id,
            },
        })
        .collect())
}

/// Modes in which two writes of the same row must not race: without a key, records go one at a
/// time.
pub fn mode_needs_order(mode: &str) -> bool {
    matches!(
        mode,
        "mirror" | "upsert" | "update" | "append_dedup" | "overwrite" | "soft_delete"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> Value {
        let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&full).unwrap()).unwrap()
    }

    #[test]
    fn reads_the_valmi_fixtures() {
        let c = ValmiCatalog::parse(
            &fixture("valmi/observed/dest_catalog.json"),
            &fixture("valmi/observed/source_catalog.json"),
        )
        .unwrap();
        assert_eq!(c.sync_mode, "mirror");
        assert_eq!(c.id_key.as_deref(), Some("id"));
        assert_eq!(c.mapping[1].stream, "email");
        assert_eq!(c.mapping[1].sink, "em");
    }

    #[test]
    fn reads_the_airbyte_fixture() {
        let s = parse_airbyte(&fixture(
            "airbyte/constructed.exchange_rate.configured_catalog.json",
        ))
        .unwrap();
        assert_eq!(s[0].name, "exchange_rate");
        assert_eq!(s[0].sync_mode, "overwrite");
        assert!(s[0].primary_key.is_empty());
        assert!(parse_airbyte(&serde_json::json!({"sinks": []})).is_err());
    }
}
