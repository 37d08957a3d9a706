//! Reading the JSON files named on the command line, with messages that say which file and why.

use std::path::Path;

use serde_json::Value;

pub fn read_json(path: &Path, what: &str) -> Result<Value, String> {
    parse_json(&read_text(path, what)?, path, what)
}

pub fn read_text(path: &Path, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("could not read the {what} file {}: {e}", path.display()))
}

/// `text`, read from the `what` file at `path`, as JSON.
pub fn parse_json(text: &str, path: &Path, what: &str) -> Result<Value, String> {
    serde_json::from_str(text)
        .map_err(|e| format!("the {what} file {} is not valid JSON: {e}", path.display()))
}
