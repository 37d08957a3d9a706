//! Keeping secrets out of every byte the connector prints.

use std::borrow::Cow;
use std::fmt;
use std::sync::{PoisonError, RwLock};

use serde::Serialize;

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

/// Query parameter names whose values are credentials by convention (`?token=`, `api_key`,
/// `access_token`, `sig`, `X-Amz-Signature`, `auth`, `passwd`, `session_id`, `jwt`).
fn is_sensitive_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    is_sensitive_header(&name)
        || ["sig", "auth", "pass", "pwd", "credential", "session", "jwt"]
            .iter()
            .any(|word| name.contains(word))
}

/// The `name=value` pairs of a query whose name is credential-like: the name and value as
/// written (still percent-encoded), and the value decoded.
fn sensitive_pairs(query: &str) -> impl Iterator<Item = (&str, &str, String)> {
    query.split('&').filter_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        let mut decoded = form_urlencoded::parse(pair.as_bytes());
        let (decoded_name, decoded_value) = decoded.next()?;
        is_sensitive_param(&decoded_name).then(|| (name, value, decoded_value.into_owned()))
    })
}

/// The values of the URL's credential-like query parameters, as written and decoded: secrets
/// like any other, scrubbed wherever they are echoed.
pub fn sensitive_query_values(url: &url::Url) -> Vec<String> {
    sensitive_pairs(url.query().unwrap_or_default())
        .filter(|(_, written, _)| !written.is_empty())
        .flat_map(|(_, written, decoded)| [written.to_string(), decoded])
        .collect()
}

/// The URL as the connector prints it anywhere: no `user:password@`, and the value of every
/// credential-like query parameter replaced by `<redacted>`; scheme, host, port, path, the
/// other parameters and the fragment as they are.
pub fn shown_url(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        return "<invalid url>".to_string();
    };
    if !url.username().is_empty() || url.password().is_some() {
        let _ = url.set_username("");
        let _ = url.set_password(None);
    }
    let text = url.to_string();
    let Some(query) = url.query().filter(|q| !q.is_empty()) else {
        return text;
    };
    let shown: Vec<String> = query
        .split('&')
        .map(|pair| match sensitive_pairs(pair).next() {
            Some((name, written, _)) if !written.is_empty() => format!("{name}=<redacted>"),
            _ => pair.to_string(),
        })
        .collect();
    // `set_query` would percent-encode the brackets of `<redacted>`.
    text.replacen(&format!("?{query}"), &format!("?{}", shown.join("&")), 1)
}

/// Replaces every known secret value in text that may have come from outside (an endpoint's
/// response body echoing the Authorization header, an error naming the URL), in each form it
/// could be printed in there.
#[derive(Default)]
struct Scrubber {
    /// The printed forms of every secret, longest first, so a secret that contains another is
    /// removed whole.
    forms: Vec<String>,
}

impl Scrubber {
    fn add(&mut self, secrets: impl IntoIterator<Item = String>) {
        self.forms.extend(
            secrets
                .into_iter()
                .filter(|s| !s.is_empty())
                .flat_map(|s| printed_forms(&s)),
        );
        self.forms
            .sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        self.forms.dedup();
    }

    /// The text with every secret replaced; borrowed, not copied, when it holds none.
    fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for form in &self.forms {
            if out.contains(form.as_str()) {
                out = Cow::Owned(out.replace(form.as_str(), "<redacted>"));
            }
        }
        out
    }
}

/// A secret as an endpoint or a library may echo it: as is, JSON-escaped (with `\/` for `/` as
/// PHP writes it, with `\uXXXX` for non-ASCII as Python writes it), and percent-encoded (every
/// reserved byte, with upper- or lower-case hex, or form-encoded with `+` for a space).
fn printed_forms(secret: &str) -> Vec<String> {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const RESERVED: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let json = serde_json::to_string(secret).expect("a string serialises");
    let json = json[1..json.len() - 1].to_string();
    let ascii = json_ascii(&json);
    let percent = utf8_percent_encode(secret, RESERVED).to_string();
    vec![
        secret.to_string(),
        json.replace('/', "\\/"),
        ascii.replace('/', "\\/"),
        json,
        ascii,
        lowercase_hex(&percent),
        percent,
        form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
    ]
}

/// JSON text with every non-ASCII character as a `\uXXXX` escape (a surrogate pair beyond the
/// BMP), lower-case hex as Python's `json.dumps` writes it.
fn json_ascii(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// Percent-encoded text with its hex digits in lower case (`%2f`), as some encoders write it.
fn lowercase_hex(percent: &str) -> String {
    let mut out = String::with_capacity(percent.len());
    let mut hex_left = 0u8;
    for c in percent.chars() {
        out.push(if hex_left > 0 {
            c.to_ascii_lowercase()
        } else {
            c
        });
        hex_left = if c == '%' {
            2
        } else {
            hex_left.saturating_sub(1)
        };
    }
    out
}

/// The secrets of this process's config, registered once it is read: every LOG, TRACE,
/// CONNECTION_STATUS and rejection reason is scrubbed of them as it is made ([`FreeText`]).
/// One config per process, so one set; secrets are only ever added.
static SECRETS: RwLock<Scrubber> = RwLock::new(Scrubber { forms: Vec::new() });

/// Adds secrets that free text made from now on must not show.
pub fn register(secrets: impl IntoIterator<Item = String>) {
    SECRETS
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .add(secrets);
}

/// `text` without any registered secret.
pub fn scrub(text: &str) -> Cow<'_, str> {
    SECRETS
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .scrub(text)
}

/// Text the connector writes or quotes as prose (LOG and TRACE messages, CONNECTION_STATUS,
/// rejection reasons): the only way to make one is through [`scrub`], so no message can forget
/// it. Protocol structure (STATE, record data, codes) is never free text and is never scrubbed:
/// a password `1234` must not turn a row count into `<redacted>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct FreeText(String);

impl FreeText {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FreeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for FreeText {
    fn from(text: &str) -> Self {
        FreeText(scrub(text).into_owned())
    }
}

impl From<String> for FreeText {
    fn from(text: String) -> Self {
        match scrub(&text) {
            Cow::Borrowed(_) => FreeText(text),
            Cow::Owned(scrubbed) => FreeText(scrubbed),
        }
    }
}

/// Secret values in a config that has not been validated yet, found by field name, so even the
/// messages about an invalid config cannot echo them.
pub fn secrets_in_raw_config(raw: &serde_json::Value) -> Vec<String> {
    const SECRET_FIELDS: [&str; 8] = [
        "token",
        "client_secret",
        "password",
        "api_key",
        "signing_secret",
        "signing_secrets",
        "secret",
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
                        serde_json::Value::Array(items)
                            if SECRET_FIELDS.contains(&key.as_str()) =>
                        {
                            found.extend(items.iter().filter_map(|i| i.as_str().map(String::from)))
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

    fn scrubber(secrets: &[&str]) -> Scrubber {
        let mut scrubber = Scrubber::default();
        scrubber.add(secrets.iter().map(|s| s.to_string()));
        scrubber
    }

    /// Config types print their secrets as `<redacted>` in `Debug` output.
    #[test]
    fn redacted_debug_shows_the_placeholder_only() {
        assert_eq!(format!("{:?}", Redacted("hunter2")), "<redacted>");
    }

    /// An unvalidated config's secrets are found by field name at any depth, in strings and
    /// arrays of strings, and nothing else is taken for one.
    #[test]
    fn a_raw_configs_secrets_are_found_wherever_they_sit_and_only_they() {
        let raw = serde_json::json!({
            "url": "http://h", "auth": {"token": "t1", "id": "i"},
            "signing_secrets": ["s1", "s2"], "headers": [{"password": "p", "x": "y"}],
            "other": ["o"], "secret": 5
        });
        let mut found = secrets_in_raw_config(&raw);
        found.sort();
        assert_eq!(found, ["p", "s1", "s2", "t1"]);
        assert_eq!(FreeText::from("plain").to_string(), "plain");
    }

    #[test]
    fn scrubs_every_secret_and_keeps_the_rest() {
        let s = scrubber(&["abc", "abcdef"]);
        assert_eq!(s.scrub("x abcdef y abc"), "x <redacted> y <redacted>");
    }

    #[test]
    fn scrubs_the_json_escaped_and_percent_encoded_forms() {
        let s = scrubber(&["a/b c\"é+😀"]);
        for echoed in [
            r#"a\/b c\"\u00e9+\ud83d\ude00"#,
            r#"a/b c\"é+😀"#,
            "a%2Fb%20c%22%C3%A9%2B%F0%9F%98%80",
            "a%2fb%20c%22%c3%a9%2b%f0%9f%98%80",
            "a%2Fb+c%22%C3%A9%2B%F0%9F%98%80",
        ] {
            assert_eq!(s.scrub(&format!("<{echoed}>")), "<<redacted>>", "{echoed}");
        }
        // Lower-case hex lowers the escapes' digits only, not the secret's own letters.
        let s = scrubber(&["Key/Z"]);
        assert_eq!(s.scrub("<Key%2fZ>"), "<<redacted>>");
    }

    #[test]
    fn free_text_is_scrubbed_of_registered_secrets() {
        register(["unit-free-text-s3cr3t".to_string()]);
        let text = FreeText::from("got unit-free-text-s3cr3t back");
        assert_eq!(text.as_str(), "got <redacted> back");
        assert_eq!(FreeText::from("nothing secret").as_str(), "nothing secret");
    }

    #[test]
    fn a_shown_url_has_no_credentials_nor_credential_like_query_values() {
        assert_eq!(
            shown_url("https://u:p@host:8443/a?b=1"),
            "https://host:8443/a?b=1"
        );
        assert_eq!(
            shown_url("https://h/a?x=1&token=t0k&Access_Token=a%2Fb&sig=s&flag&empty=&X-Amz-Signature=z#f"),
            "https://h/a?x=1&token=<redacted>&Access_Token=<redacted>&sig=<redacted>&flag&empty=&X-Amz-Signature=<redacted>#f"
        );
        assert_eq!(shown_url("http://h/"), "http://h/");
        // An empty credential-like value is no secret: shown as it is, not as if one were set.
        assert_eq!(shown_url("http://h/?token=&a=1"), "http://h/?token=&a=1");
        // A user name alone is a credential too (an API key as the user name).
        assert_eq!(shown_url("https://sk_live_x@h/a"), "https://h/a");
        let url = url::Url::parse("https://h/?api_key=a%2Fb+c&page=2&sig=").unwrap();
        assert_eq!(sensitive_query_values(&url), ["a%2Fb+c", "a/b c"]);
        assert!(is_sensitive_header("X-Api-Key"));
        assert!(!is_sensitive_header("X-Test"));
    }
}
