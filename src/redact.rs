//! Keeping secrets out of every byte the connector prints.

use std::borrow::Cow;
use std::fmt;

/// Prints `<redacted>` whatever it wraps; used by the `Debug` impls of config types.
pub struct Redacted<T>(pub T);

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Header names whose values are credentials by convention.
pub fn is_sensitive_header(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    [
        "authorization",
        "cookie",
        "key",
        "token",
        "secret",
        "password",
        "signature",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// The URL with any `user:password@` removed, for messages.
pub fn url_without_credentials(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) => {
            if !url.username().is_empty() || url.password().is_some() {
                let _ = url.set_username("");
                let _ = url.set_password(None);
            }
            url.to_string()
        }
        Err(_) => "<invalid url>".to_string(),
    }
}

/// Replaces every known secret value in text that may have come from outside (an endpoint's
/// response body echoing the Authorization header, an error naming the URL).
#[derive(Clone, Default)]
pub struct Scrubber {
    secrets: Vec<String>,
}

impl Scrubber {
    pub fn new(mut secrets: Vec<String>) -> Self {
        secrets.retain(|s| !s.is_empty());
        // Longest first, so a secret that contains another is removed whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Scrubber { secrets }
    }

    /// The text with every secret replaced; borrowed, not copied, when it holds none (every
    /// stdout line goes through here).
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), "<redacted>"));
            }
        }
        out
    }
}

/// Secret values in a config that has not been validated yet, found by field name, so even the
/// messages about an invalid config cannot echo them.
pub fn secrets_in_raw_config(raw: &serde_json::Value) -> Vec<String> {
    const SECRET_FIELDS: [&str; 5] = [
        "token",
        "password",
        "api_key",
        "signing_secret",
        "client_key",
    ];
    let mut found = Vec::new();
    let mut stack = vec![raw];
    while let Some(value) = stack.pop() {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    match v {
                        serde_json::Value::String(s) if SECRET_FIELDS.contains(&key.as_str()) => {
                            found.push(s.clone())
                        }
                        other => stack.push(other),
                    }
                }
            }
            serde_json::Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_every_secret_and_keeps_the_rest() {
        let s = Scrubber::new(vec!["abc".into(), "abcdef".into()]);
        assert_eq!(s.scrub("x abcdef y abc"), "x <redacted> y <redacted>");
    }

    #[test]
    fn url_credentials_are_removed() {
        assert_eq!(
            url_without_credentials("https://u:p@host:8443/a?b=1"),
            "https://host:8443/a?b=1"
        );
        assert!(is_sensitive_header("X-Api-Key"));
        assert!(!is_sensitive_header("X-Test"));
    }
}
