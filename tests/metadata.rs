//! `metadata.yaml`, the entry Airbyte's connector registry reads, against the registry's schema
//! (ConnectorMetadataDefinitionV0: its required fields, enums and closed set of properties), the
//! image the Dockerfile builds and what `spec` prints: a registry entry that names another image
//! or another documentation page than the connector's own is worse than none.

mod common;

use serde_json::{json, Value};

fn repo_text(rel: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

fn metadata() -> Value {
    serde_norway::from_str(&repo_text("metadata.yaml")).expect("metadata.yaml is YAML")
}

/// The `io.airbyte.*` labels of the Dockerfile's `LABEL` lines.
fn image_labels() -> Vec<(String, String)> {
    repo_text("Dockerfile")
        .lines()
        .filter_map(|l| l.strip_prefix("LABEL "))
        .flat_map(str::split_whitespace)
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

fn label(name: &str) -> String {
    image_labels()
        .into_iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("the Dockerfile has no {name} label"))
        .1
}

/// The part of Airbyte's ConnectorMetadataDefinitionV0 a destination's entry is held to: the
/// required fields, their types and enums, and no property the registry does not know.
fn registry_schema() -> Value {
    let known = [
        "name",
        "icon",
        "definitionId",
        "connectorBuildOptions",
        "connectorTestSuitesOptions",
        "connectorType",
        "dockerRepository",
        "dockerImageTag",
        "supportsDbt",
        "supportsNormalization",
        "license",
        "documentationUrl",
        "externalDocumentationUrls",
        "githubIssueLabel",
        "maxSecondsBetweenMessages",
        "releaseDate",
        "protocolVersion",
        "erdUrl",
        "connectorSubtype",
        "releaseStage",
        "supportLevel",
        "tags",
        "registryOverrides",
        "allowedHosts",
        "releases",
        "normalizationConfig",
        "suggestedStreams",
        "resourceRequirements",
        "ab_internal",
        "remoteRegistries",
        "supportsRefreshes",
        "generated",
        "supportsFileTransfer",
        "supportsDataActivation",
        "connectorIPCOptions",
    ];
    let mut properties: serde_json::Map<String, Value> =
        known.iter().map(|k| (k.to_string(), json!({}))).collect();
    for (key, schema) in [
        ("name", json!({"type": "string"})),
        (
            "definitionId",
            json!({"type": "string", "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"}),
        ),
        ("connectorType", json!({"enum": ["destination", "source"]})),
        ("dockerRepository", json!({"type": "string"})),
        ("dockerImageTag", json!({"type": "string"})),
        ("license", json!({"type": "string"})),
        (
            "documentationUrl",
            json!({"type": "string", "pattern": "^https://"}),
        ),
        ("githubIssueLabel", json!({"type": "string"})),
        (
            "connectorSubtype",
            json!({"enum": ["api", "database", "datalake", "file", "custom", "message_queue", "unknown", "vectorstore"]}),
        ),
        (
            "releaseStage",
            json!({"enum": ["alpha", "beta", "generally_available", "custom"]}),
        ),
        (
            "supportLevel",
            json!({"enum": ["community", "certified", "archived"]}),
        ),
        (
            "tags",
            json!({"type": "array", "items": {"type": "string"}}),
        ),
        ("supportsRefreshes", json!({"type": "boolean"})),
        ("supportsDataActivation", json!({"type": "boolean"})),
    ] {
        properties.insert(key.into(), schema);
    }
    json!({
        "type": "object",
        "required": ["metadataSpecVersion", "data"],
        "additionalProperties": false,
        "properties": {
            "metadataSpecVersion": {"type": "string"},
            "data": {
                "type": "object",
                "required": ["name", "definitionId", "connectorType", "dockerRepository",
                    "dockerImageTag", "license", "documentationUrl", "githubIssueLabel",
                    "connectorSubtype", "releaseStage"],
                "additionalProperties": false,
                "properties": properties,
            }
        }
    })
}

#[test]
fn metadata_is_a_registry_entry_for_a_data_activation_destination() {
    let metadata = metadata();
    let validator = jsonschema::draft7::new(&registry_schema()).unwrap();
    let problems: Vec<String> = validator
        .iter_errors(&metadata)
        .map(|e| format!("{}: {e}", e.instance_path().as_str()))
        .collect();
    assert!(problems.is_empty(), "metadata.yaml: {problems:?}");
    let data = &metadata["data"];
    assert_eq!(data["connectorType"], "destination");
    assert_eq!(data["supportsDataActivation"], true);
    assert_eq!(data["supportsRefreshes"], true);
    // The schema is not toothless: an entry missing a required field or with an unknown
    // property fails it.
    let mut broken = metadata.clone();
    broken["data"]
        .as_object_mut()
        .unwrap()
        .remove("releaseStage");
    broken["data"]["supportsRefresh"] = json!(true);
    assert_eq!(validator.iter_errors(&broken).count(), 2);
}

#[test]
fn metadata_names_the_image_the_dockerfile_builds_and_the_spec_documents() {
    let data = metadata()["data"].clone();
    assert_eq!(data["dockerRepository"], label("io.airbyte.name"));
    assert_eq!(data["dockerImageTag"], label("io.airbyte.version"));
    assert_eq!(data["dockerImageTag"], env!("CARGO_PKG_VERSION"));
    assert_eq!(data["license"], env!("CARGO_PKG_LICENSE"));
    let run = common::run(&["spec"], b"");
    let spec = &run.of_type("SPEC")[0]["spec"];
    assert_eq!(data["documentationUrl"], spec["documentationUrl"]);
}
