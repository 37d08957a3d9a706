//! `request.path`: path and query appended to the endpoint per record
//! (`/contacts/{{ record.id }}?source=sync`). A record's value can never change where the
//! request goes beyond its own place: every inserted value is percent-encoded down to the
//! unreserved characters, so it cannot add a path segment (`/`), a parameter (`?`, `&`, `=`),
//! a fragment (`#`) or an escape of its own (`%`), and a value of only dots (which URL parsers
//! read as `.`/`..` segments even percent-encoded) is refused. The scheme, host and port are the
//! endpoint's: only the path and query of a copy of it are set.

use minijinja::{AutoEscape, Value};
use url::Url;

use crate::template::{CompileError, Compiled, RenderError, RECORD_CONTEXT};

/// A compiled path template.
pub struct PathTemplate(Compiled);

impl PathTemplate {
    pub fn compile(name: &str, source: &str) -> Result<Self, CompileError> {
        Compiled::new(name, source, AutoEscape::Custom("url"), RECORD_CONTEXT).map(PathTemplate)
    }

    pub fn reads(&self, name: &str) -> bool {
        self.0.reads(name)
    }

    pub(crate) fn compiled(&self) -> &Compiled {
        &self.0
    }

    /// `endpoint` with the rendered path appended to its path and the rendered query to its
    /// query (the endpoint's own parameters first).
    pub fn url(&self, endpoint: &Url, context: &Value) -> Result<Url, RenderError> {
        let rendered = self.0.render(context)?;
        join(endpoint, &rendered).map_err(|problem| self.0.failed(problem))
    }
}

/// `endpoint` with `rendered` (`/path?query`) appended.
fn join(endpoint: &Url, rendered: &str) -> Result<Url, &'static str> {
    if rendered.contains('#') {
        return Err("a path cannot carry a fragment ('#')");
    }
    let (path, query) = match rendered.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rendered, None),
    };
    if !path.is_empty() && !path.starts_with('/') {
        return Err("the rendered path must start with '/' or '?'");
    }
    let mut url = endpoint.clone();
    let joined = format!("{}{path}", endpoint.path().trim_end_matches('/'));
    url.set_path(&joined);
    let query = match (endpoint.query().filter(|q| !q.is_empty()), query) {
        (Some(own), Some(added)) if !added.is_empty() => Some(format!("{own}&{added}")),
        (own, added) => own.or(added).map(str::to_string),
    };
    url.set_query(query.as_deref());
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{context, Facts};
    use proptest::prelude::*;

    const TEMPLATE: &str = "/contacts/{{ record.id }}/notes?source=sync&id={{ record.id }}";

    fn url_for(id: &str) -> Result<Url, RenderError> {
        let record = serde_json::json!({ "id": id }).to_string();
        let endpoint = Url::parse("http://h.example:8080/api/?x=1").unwrap();
        PathTemplate::compile("request.path", TEMPLATE)
            .unwrap()
            .url(
                &endpoint,
                &context(record.to_string(), None, &Facts::sample()),
            )
    }

    fn query_keys(url: &Url) -> Vec<String> {
        url.query_pairs().map(|(k, _)| k.into_owned()).collect()
    }

    #[test]
    fn a_value_cannot_climb_add_parameters_or_a_fragment() {
        let url = url_for("../admin?x=1#").unwrap();
        assert_eq!(
            url.as_str(),
            "http://h.example:8080/api/contacts/..%2Fadmin%3Fx%3D1%23/notes?x=1&source=sync&id=..%2Fadmin%3Fx%3D1%23"
        );
        assert!(matches!(url_for(".."), Err(RenderError::Failed { .. })));
        assert!(matches!(url_for("."), Err(RenderError::Failed { .. })));
        assert_eq!(url_for("a.b").unwrap().path(), "/api/contacts/a.b/notes");
    }

    #[test]
    fn the_endpoints_query_comes_first_and_a_fragment_is_refused() {
        let endpoint = Url::parse("http://h/x?own=1").unwrap();
        assert_eq!(
            join(&endpoint, "/y").unwrap().as_str(),
            "http://h/x/y?own=1"
        );
        assert_eq!(
            join(&endpoint, "?a=b").unwrap().as_str(),
            "http://h/x?own=1&a=b"
        );
        // A rendered `?` with nothing after it adds nothing, not a dangling `&`.
        assert_eq!(
            join(&endpoint, "/y?").unwrap().as_str(),
            "http://h/x/y?own=1"
        );
        let bare = Url::parse("http://h").unwrap();
        assert_eq!(join(&bare, "/c?d=1").unwrap().as_str(), "http://h/c?d=1");
        assert!(join(&endpoint, "/y#f").is_err());
        assert!(join(&endpoint, "y").is_err());
    }

    proptest! {
        /// No record value changes the URL's scheme, host, port, path segment count, query
        /// keys or fragment: it is either in its place, encoded, or the record is rejected.
        #[test]
        fn no_value_changes_where_the_request_goes(id in any::<String>()) {
            if let Ok(url) = url_for(&id) {
                prop_assert_eq!(url.scheme(), "http");
                prop_assert_eq!(url.host_str(), Some("h.example"));
                prop_assert_eq!(url.port(), Some(8080));
                prop_assert_eq!(url.path_segments().unwrap().count(), 4, "{}", url);
                prop_assert_eq!(query_keys(&url), ["x", "source", "id"]);
                prop_assert_eq!(url.fragment(), None);
                let id_back = url.query_pairs().find(|(k, _)| k == "id").unwrap().1;
                prop_assert_eq!(id_back, id);
            } else {
                prop_assert!(id.bytes().all(|b| b == b'.'), "{:?}", id);
            }
        }
    }
}
