//! `request.headers`: headers rendered per record (`X-Tenant: {{ record.tenant }}`). The names
//! are fixed in the config and checked once like the static `headers` (reserved and framing
//! headers stay refused); a rendered value with CR, LF or another byte invalid in a header
//! rejects its record instead of being sent, so a record can never inject a header line.

use minijinja::{AutoEscape, Value};
use reqwest::header::{HeaderName, HeaderValue};

use crate::template::{CompileError, Compiled, RenderError, RECORD_CONTEXT};

/// Compiled header templates, in config order.
pub struct HeaderTemplates(Vec<(HeaderName, Compiled)>);

impl HeaderTemplates {
    /// Each entry is "Name: template", split on the first colon like `headers`; `field` is
    /// where they are in the config.
    pub fn compile(field: &str, entries: &[String]) -> Result<Self, CompileError> {
        let problem = |index: usize, problem: String| CompileError {
            template: field.into(),
            problem: format!("[{index}]: {problem}"),
            line: 1,
            column: 1,
        };
        let mut compiled = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            let (name, source) = crate::headers::split_header(entry)
                .ok_or_else(|| problem(index, "expected \"Name: template\"".into()))?;
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| problem(index, format!("'{name}' is not a valid header name")))?;
            if let Some(why) = crate::headers::refusal(&header) {
                return Err(problem(index, format!("'{name}' {why}")));
            }
            let template =
                Compiled::new(field, source, AutoEscape::None, RECORD_CONTEXT).map_err(|e| {
                    CompileError {
                        problem: format!("[{index}] {name}: {}", e.problem),
                        ..e
                    }
                })?;
            compiled.push((header, template));
        }
        Ok(HeaderTemplates(compiled))
    }

    pub fn reads(&self, name: &str) -> bool {
        self.0.iter().any(|(_, template)| template.reads(name))
    }

    pub(crate) fn compiled(&self) -> impl Iterator<Item = &Compiled> {
        self.0.iter().map(|(_, template)| template)
    }

    /// The headers for one record, or why it cannot have them.
    pub fn render(&self, context: &Value) -> Result<Vec<(HeaderName, HeaderValue)>, RenderError> {
        self.0
            .iter()
            .map(|(name, template)| {
                let text = template.render(context)?;
                let mut value = HeaderValue::from_str(&text).map_err(|_| {
                    template.failed(format!(
                        "the value of '{name}' has CR, LF or another byte a header cannot carry"
                    ))
                })?;
                value.set_sensitive(crate::redact::is_sensitive_header(name.as_str()));
                Ok((name.clone(), value))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{context, Facts};

    fn render(entry: &str, record: &str) -> Result<Vec<(HeaderName, HeaderValue)>, RenderError> {
        HeaderTemplates::compile("request.headers", &[entry.to_string()])
            .unwrap()
            .render(&context(record.to_string(), None, &Facts::sample()))
    }

    #[test]
    fn a_value_is_rendered_per_record() {
        let headers = render("X-Tenant: t-{{ record.tenant }}", r#"{"tenant": "acme"}"#).unwrap();
        assert_eq!(
            headers,
            [(
                HeaderName::from_static("x-tenant"),
                HeaderValue::from_static("t-acme")
            )]
        );
    }

    #[test]
    fn a_value_with_a_line_break_rejects_the_record() {
        let injected = render("X-Tenant: {{ record.t }}", r#"{"t": "a\r\nX-Admin: 1"}"#);
        assert!(
            matches!(&injected, Err(RenderError::Failed { problem, .. }) if problem.contains("'x-tenant'")),
            "{injected:?}"
        );
        let missing = render("X-Tenant: {{ record.t }}", "{}");
        assert!(
            matches!(missing, Err(RenderError::Undefined { .. })),
            "{missing:?}"
        );
    }

    #[test]
    fn reserved_and_framing_headers_stay_refused() {
        for entry in [
            "Idempotency-Key: {{ record.id }}",
            "Content-Length: 1",
            "Bad Name: x",
            "no colon",
        ] {
            let refused = HeaderTemplates::compile("request.headers", &[entry.to_string()]);
            assert!(refused.is_err(), "{entry}");
        }
        let syntax =
            HeaderTemplates::compile("request.headers", &["X-A: {{ record.a ".to_string()])
                .err()
                .unwrap();
        assert!(
            syntax.to_string().starts_with("request.headers: [0] X-A: "),
            "{syntax}"
        );
    }
}
