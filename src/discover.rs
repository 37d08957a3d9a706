//! `discover`: the Valmi sink catalog. The webhook accepts any fields, so every mode offers a
//! free-form schema.

use serde_json::{json, Map, Value};

pub const VALMI_SYNC_MODES: [&str; 5] = ["upsert", "mirror", "append", "update", "create"];

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
