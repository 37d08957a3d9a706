//! The README's configuration reference is generated from spec/spec.json; this test fails when
//! the two drift apart. `UPDATE_README=1 cargo test --test docs` rewrites the section.

use serde_json::Value;

const BEGIN: &str = "<!-- config-reference:begin -->";
const END: &str = "<!-- config-reference:end -->";

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn type_of(prop: &Value) -> String {
    if let Some(options) = prop["enum"].as_array() {
        return options
            .iter()
            .map(|o| format!("`{}`", o.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(" · ");
    }
    if let Some(branches) = prop["oneOf"].as_array() {
        let names: Vec<String> = branches
            .iter()
            .map(|b| {
                let kind = b["properties"]["type"]["const"]
                    .as_str()
                    .unwrap_or_default();
                let fields: Vec<&str> = b["properties"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(String::as_str)
                    .filter(|k| *k != "type")
                    .collect();
                if fields.is_empty() {
                    format!("`{kind}`")
                } else {
                    format!("`{kind}` {{{}}}", fields.join(", "))
                }
            })
            .collect();
        return format!("one of (on `type`): {}", names.join(" · "));
    }
    match prop["type"].as_str() {
        Some("array") => format!(
            "array of {}",
            prop["items"]["type"].as_str().unwrap_or("any")
        ),
        Some("object") => {
            let keys: Vec<&str> = prop["properties"]
                .as_object()
                .map(|p| p.keys().map(String::as_str).collect())
                .unwrap_or_default();
            format!("object: {}", keys.join(", "))
        }
        Some(t) => t.to_string(),
        None => "any".to_string(),
    }
}

fn render(spec: &Value) -> String {
    let schema = &spec["connectionSpecification"];
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut props: Vec<(&String, &Value)> =
        schema["properties"].as_object().unwrap().iter().collect();
    props.sort_by_key(|(_, p)| p["order"].as_i64().unwrap_or(99));
    let mut out =
        String::from("| field | type | default | secret | meaning |\n|---|---|---|---|---|\n");
    for (name, prop) in props {
        let default = if required.contains(&name.as_str()) {
            "required".to_string()
        } else {
            prop.get("default")
                .map(|d| format!("`{d}`"))
                .unwrap_or_else(|| "—".into())
        };
        let secret = if prop["airbyte_secret"] == true
            || prop.to_string().contains("\"airbyte_secret\":true")
        {
            "yes"
        } else {
            ""
        };
        let meaning = format!(
            "**{}**. {}",
            prop["title"].as_str().unwrap_or(name),
            prop["description"].as_str().unwrap_or("")
        );
        out.push_str(&format!(
            "| `{name}` | {} | {} | {secret} | {} |\n",
            cell(&type_of(prop)),
            cell(&default),
            cell(meaning.trim())
        ));
    }
    out
}

#[test]
fn readme_configuration_reference_matches_the_spec() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let spec: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("spec/spec.json")).unwrap())
            .unwrap();
    let readme_path = root.join("README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let (head, rest) = readme
        .split_once(BEGIN)
        .expect("README has the config-reference begin marker");
    let (current, tail) = rest
        .split_once(END)
        .expect("README has the config-reference end marker");
    let wanted = format!("\n{}", render(&spec));
    if current != wanted {
        if std::env::var_os("UPDATE_README").is_some() {
            std::fs::write(&readme_path, format!("{head}{BEGIN}{wanted}{END}{tail}")).unwrap();
        } else {
            panic!("the README's configuration reference is out of date with spec/spec.json; run UPDATE_README=1 cargo test --test docs");
        }
    }
}
