//! `request.headers`: headers rendered per record (`X-Tenant: {{ record.tenant }}`). The names
//! are fixed in the config and checked once like the static `headers` (reserved and framing
//! headers stay refused); a rendered value with CR, LF or another byte invalid in a header
//! rejects its record instead of being sent, so a record can never inject a header line.

use minijinja::{AutoEscape, Environment};
use reqwest::header::{HeaderName, HeaderValue};

use crate::template::{context, environment, render_error, CompileError, Facts, RenderError};

/// The config field header templates come from, as messages name it.
pub const HEADERS: &str = "request.headers";

/// Compiled header templates, in config order.
pub struct HeaderTemplates(Vec<(HeaderName, Environment<'static>)>);

impl HeaderTemplates {
    /// Each entry is "Name: template", split on the first colon like `headers`.
    pub fn compile(entries: &[String]) -> Result<Self, CompileError> {
        let problem = |index: usize, problem: String| CompileError {
            template: HEADERS,
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
            let env = environment(HEADERS, source, AutoEscape::None).map_err(|e| CompileError {
                problem: format!("[{index}] {name}: {}", e.problem),
                ..e
            })?;
            compiled.push((header, env));
        }
        Ok(HeaderTemplates(compiled))
    }

    /// The headers for one record, or why it cannot have them.
    pub fn render(
        &self,
        record: &str,
        envelope: &str,
        facts: &Facts<'_>,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, RenderError> {
        let context = context(record, envelope, facts);
        self.0
            .iter()
            .map(|(name, env)| {
                let template = env.get_template(HEADERS).expect("compiled at start-up");
                let text = template
                    .render(&context)
                    .map_err(|e| render_error(HEADERS, template.source(), &e))?;
                let mut value = HeaderValue::from_str(&text).map_err(|_| RenderError::Failed {
                    template: HEADERS,
                    problem: format!(
                        "the value of '{name}' has CR, LF or another byte a header cannot carry"
                    ),
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

    static KEY: HeaderValue = HeaderValue::from_static("k");

    fn render(entry: &str, record: &str) -> Result<Vec<(HeaderName, HeaderValue)>, RenderError> {
        let facts = Facts {
            op: "upsert",
            stream: "s",
            namespace: None,
            row_num: Some(1),
            message_id: 1,
            sync_mode: "mirror",
            idempotency_key: &KEY,
        };
        HeaderTemplates::compile(&[entry.to_string()])
            .unwrap()
            .render(record, "{}", &facts)
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
            let refused = HeaderTemplates::compile(&[entry.to_string()]);
            assert!(refused.is_err(), "{entry}");
        }
        let syntax = HeaderTemplates::compile(&["X-A: {{ record.a ".to_string()])
            .err()
            .unwrap();
        assert!(
            syntax.to_string().starts_with("request.headers: [0] X-A: "),
            "{syntax}"
        );
    }
}
