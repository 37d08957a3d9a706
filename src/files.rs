//! Reading the JSON files named on the command line, with messages that say which file and why.

use std::path::Path;

use anyhow::Context;
use serde_json::Value;

pub fn read_json(path: &Path, what: &str) -> anyhow::Result<Value> {
    parse_json(&read_text(path, what)?, path, what)
}

pub fn read_text(path: &Path, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("could not read the {what} file {}", path.display()))
}

/// `text`, read from the `what` file at `path`, as JSON.
pub fn parse_json(text: &str, path: &Path, what: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text)
        .with_context(|| format!("the {what} file {} is not valid JSON", path.display()))
}
