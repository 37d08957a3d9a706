//! `discover`: Valmi's sink catalog or Airbyte's DESTINATION_CATALOG, one per run, because
//! neither client takes both. Valmi's engine joins every stdout line that is not a LOG and its
//! backend parses the whole as one JSON document, so a second message breaks it ("Extra data").
//! Airbyte's platform reads a destination's DESTINATION_CATALOG and holds every message to the
//! protocol, which Valmi's CATALOG (no `streams`) fails. So the answer is Airbyte's when the
//! run is under Airbyte's platform, whose launcher sets [`AIRBYTE_LAUNCHER_ENV`] in every
//! connector container (Valmi's engine sets nothing), or when the config has `objects` (only
//! Airbyte's data activation has a use for them), and Valmi's otherwise, as it always was.

use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::objects;

/// Set by Airbyte's connector launcher (legacy and workload launcher alike) for every command.
pub const AIRBYTE_LAUNCHER_ENV: &str = "WORKER_JOB_ID";

/// Whether `discover` answers Airbyte's platform rather than Valmi's engine.
pub fn for_airbyte(raw_config: &Value) -> bool {
    let has_objects = raw_config["objects"]
        .as_array()
        .is_some_and(|o| !o.is_empty());
    has_objects || std::env::var_os(AIRBYTE_LAUNCHER_ENV).is_some()
}

/// Airbyte's DESTINATION_CATALOG: one operation per object and sync mode it supports.
pub fn destination_catalog(config: &Config) -> Value {
    let operations: Vec<Value> = objects::of(config)
        .iter()
        .flat_map(|object| {
            object.sync_modes.iter().map(move |mode| {
                let mut operation = json!({
                    "object_name": object.name,
                    "sync_mode": mode,
                    "json_schema": object.json_schema,
                });
                if !object.matching_keys.is_empty() {
                    operation["matching_keys"] = json!(object.matching_keys);
                }
                operation
            })
        })
        .collect();
    json!({"type": "DESTINATION_CATALOG", "destination_catalog": {"operations": operations}})
}

pub const VALMI_SYNC_MODES: [&str; 5] = ["upsert", "mirror", "append", "update", "create"];

/// Valmi's sink catalog. The webhook accepts any fields, so every mode offers a free-form
/// schema.
pub fn catalog() -> Value {
    let field_catalog: Map<String, Value> = VALMI_SYNC_MODES
        .iter()
        .map(|mode| {
            let entry = json!({
                "json_schema": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": {}},
                "allow_freeform_fields": true,
                "supported_destination_ids": []
            });
            (mode.to_string(), entry)
        })
        .collect();
    json!({"type": "CATALOG", "catalog": {"sinks": [{
        "name": "Webhook",
        "label": "Webhook",
        "supported_destination_sync_modes": VALMI_SYNC_MODES,
        "field_catalog": field_catalog
    }]}})
}
