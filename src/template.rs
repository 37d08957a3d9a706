//! Request bodies of the receiver's own shape: a Jinja template (minijinja) compiled once at
//! start-up and rendered per record on the reader thread. Nothing here reads the environment,
//! files or the network: the only data a template sees is the record and its facts.
//!
//! Two decisions shape what a template can produce:
//! - **Strict undefined.** A variable the record lacks is an error, so a record missing a field
//!   is rejected with the field's name instead of being sent half-rendered; `default(...)` and
//!   `is defined` allow absence where the template says so.
//! - **Escaping by content type.** In a JSON body a string is inserted as the *contents* of a
//!   JSON string (quotes, backslashes and control characters escaped, no quotes added), so
//!   `{"name": "{{ record.name }}"}` stays valid JSON whatever the name holds; numbers,
//!   booleans, null, lists and maps are inserted as JSON. minijinja's own `AutoEscape::Json`
//!   adds the quotes, which would turn that common template into `""O'Brien""`. In a form body
//!   every value is form-urlencoded; text bodies are not escaped. `| safe` opts out.

use std::sync::Arc;

use bytes::Bytes;
use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::Digest;

use crate::json_value::{from_json, lazy_object};

use crate::config::ContentType;

/// Where a template comes from in the config, as messages name it (`request.body`,
/// `routes.delete.path`).
pub type Name = std::sync::Arc<str>;

/// The key a template is stored under in its own environment (each holds one).
const KEY: &str = "template";

/// What a record's templates can read ([`context`]).
pub const RECORD_CONTEXT: &[&str] = &[
    "record",
    "envelope",
    "op",
    "stream",
    "namespace",
    "row_num",
    "message_id",
    "sync_mode",
    "idempotency_key",
    "primary_key",
    "run_id",
    "sync_id",
    "generation_id",
    "minimum_generation_id",
    "changes",
];

/// What a batch body template can read.
const BATCH_CONTEXT: &[&str] = &["records"];

/// A template that does not compile: a config error, with where in the template.
#[derive(Debug, thiserror::Error)]
#[error("{template}: {problem} (line {line}, column {column})")]
pub struct CompileError {
    pub template: Name,
    pub problem: String,
    pub line: usize,
    pub column: usize,
}

/// Why a record could not be rendered; the record is rejected, never sent half-rendered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error(
        "{template}: the record has no value for '{field}' (use default(...) to allow its absence)"
    )]
    Undefined { template: Name, field: String },
    #[error("{template}: {problem}")]
    Failed { template: Name, problem: String },
    #[error("{template}: the rendered body is not JSON: {problem}")]
    NotJson { template: Name, problem: String },
}

impl RenderError {
    pub fn code(&self) -> &'static str {
        match self {
            RenderError::Undefined { .. } => "template_undefined",
            RenderError::Failed { .. } => "template_error",
            RenderError::NotJson { .. } => "template_not_json",
        }
    }
}

/// What a record's template sees besides the record itself.
pub struct Facts<'a> {
    pub op: &'a str,
    pub stream: &'a str,
    pub namespace: Option<&'a str>,
    pub row_num: Option<u64>,
    pub message_id: u64,
    pub sync_mode: &'a str,
    /// A header value already (what the request carries); read as text only when rendering.
    pub idempotency_key: &'a reqwest::header::HeaderValue,
    /// The key's value as JSON text (an array for a key of several fields), when the stream
    /// has a key.
    pub primary_key: Option<&'a str>,
    /// What identifies the run and the sync, as the orchestrator gave them.
    /// Template values already: made once per run (or stream), not per record.
    pub run_id: Option<&'a Value>,
    pub sync_id: Option<&'a Value>,
    pub activation: Activation<'a>,
}

/// What Airbyte says of the record beyond its data: its stream's refresh fields and its
/// `meta.changes` (JSON text). Empty in the Valmi dialect and from older Airbyte platforms.
#[derive(Clone, Copy, Default)]
pub struct Activation<'a> {
    pub refresh: crate::catalog::Refresh,
    pub changes: Option<&'a str>,
}

#[cfg(test)]
impl Facts<'static> {
    /// The facts of a record in tests: row 7 of an upsert in mirror mode.
    pub fn sample() -> Self {
        static KEY: reqwest::header::HeaderValue = reqwest::header::HeaderValue::from_static("k");
        Facts {
            op: "upsert",
            stream: "users",
            namespace: None,
            row_num: Some(7),
            message_id: 3,
            sync_mode: "mirror",
            idempotency_key: &KEY,
            primary_key: None,
            run_id: None,
            sync_id: None,
            activation: Activation::default(),
        }
    }
}

/// One compiled template and its name.
pub(crate) struct Compiled {
    env: Environment<'static>,
    pub name: Name,
    /// The context's names it reads, so a record pays only for those.
    reads: Vec<String>,
}

impl Compiled {
    /// The template `source`, strict about undefined values, escaping inserted values with
    /// `escape`, with this module's filters. A name it reads that is not in `known` (a typo
    /// such as `recrod`) is refused here, once, rather than rejecting every record.
    pub fn new(
        name: &str,
        source: &str,
        escape: AutoEscape,
        known: &[&str],
    ) -> Result<Self, CompileError> {
        let name: Name = name.into();
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(move |_| escape);
        env.set_formatter(format_value);
        env.add_filter("tojson", tojson);
        env.add_filter("b64encode", b64encode);
        env.add_filter("sha256", sha256);
        // Dates of ISO strings and epoch seconds; only the filters: `now()` would read the clock.
        env.add_filter("datetimeformat", minijinja_contrib::filters::datetimeformat);
        env.add_filter("dateformat", minijinja_contrib::filters::dateformat);
        env.add_filter("timeformat", minijinja_contrib::filters::timeformat);
        env.add_template_owned(KEY, source.to_string())
            .map_err(|e| compile_error(&name, source, &e))?;
        let mut compiled = Compiled {
            env,
            name,
            reads: Vec::new(),
        };
        compiled.reads = compiled
            .env
            .get_template(KEY)
            .expect("added just before")
            .undeclared_variables(false)
            .into_iter()
            .collect();
        compiled.refuse_unknown_names(source, known)?;
        Ok(compiled)
    }

    /// Whether it reads `name` from the context.
    pub fn reads(&self, name: &str) -> bool {
        self.reads.iter().any(|r| r == name)
    }

    /// The record fields it reads, as dotted paths (`address.city`), each with whether a date
    /// filter formats it: what a sample record for it must hold.
    pub fn record_fields(&self) -> Vec<RecordField> {
        let template = self.env.get_template(KEY).expect("added at compile time");
        let source = template.source();
        template
            .undeclared_variables(true)
            .into_iter()
            .filter_map(|name| Some(name.strip_prefix("record.")?.to_string()))
            .map(|path| RecordField {
                dated: date_formatted(source, &path),
                path,
            })
            .collect()
    }

    fn refuse_unknown_names(&self, source: &str, known: &[&str]) -> Result<(), CompileError> {
        let mut unknown: Vec<&String> = self
            .reads
            .iter()
            .filter(|v| !known.contains(&v.as_str()))
            .filter(|v| !self.env.globals().any(|(global, _)| global == v.as_str()))
            .collect();
        unknown.sort();
        let Some(first) = unknown.first() else {
            return Ok(());
        };
        let (line, column) = source
            .find(first.as_str())
            .map_or((1, 1), |at| line_column(source, at));
        Err(CompileError {
            template: self.name.clone(),
            problem: format!(
                "'{first}' is not defined: a template can read {}",
                known.join(", ")
            ),
            line,
            column,
        })
    }

    /// The template rendered in `context`; a failure names what the template asked for.
    pub fn render(&self, context: &Value) -> Result<String, RenderError> {
        let template = self.env.get_template(KEY).expect("added at compile time");
        template
            .render(context)
            .map_err(|e| render_error(&self.name, template.source(), &e))
    }

    /// A failure of what the template rendered, which its caller found.
    pub fn failed(&self, problem: impl Into<String>) -> RenderError {
        RenderError::Failed {
            template: self.name.clone(),
            problem: problem.into(),
        }
    }
}

/// A record field a template reads.
#[derive(Debug, PartialEq, Eq)]
pub struct RecordField {
    pub path: String,
    /// Formatted by `datetimeformat`, `dateformat` or `timeformat` somewhere in the template.
    pub dated: bool,
}

/// Whether `record.<path>` is piped into a date filter somewhere in `source`.
fn date_formatted(source: &str, path: &str) -> bool {
    let reference = format!("record.{path}");
    // `record.at2 | dateformat` is not `record.at`'s: the pipe must follow the path.
    source.match_indices(&reference).any(|(at, _)| {
        let after = &source[at + reference.len()..];
        let filter = after.trim_start().strip_prefix('|').map(str::trim_start);
        filter.is_some_and(|f| {
            ["datetimeformat", "dateformat", "timeformat"]
                .iter()
                .any(|d| f.starts_with(d))
        })
    })
}

/// A compiled body template.
pub struct BodyTemplate {
    template: Compiled,
    content_type: ContentType,
}

impl BodyTemplate {
    pub fn compile(
        name: &str,
        source: &str,
        content_type: ContentType,
    ) -> Result<Self, CompileError> {
        let escape = match content_type {
            ContentType::Json => AutoEscape::Custom("json"),
            ContentType::Form => AutoEscape::Custom("form"),
            ContentType::Text => AutoEscape::None,
        };
        Ok(BodyTemplate {
            template: Compiled::new(name, source, escape, RECORD_CONTEXT)?,
            content_type,
        })
    }

    pub fn reads(&self, name: &str) -> bool {
        self.template.reads(name)
    }

    pub(crate) fn compiled(&self) -> &Compiled {
        &self.template
    }

    /// The body for one record, from its [`context`].
    pub fn render(&self, context: &Value) -> Result<String, RenderError> {
        let body = self.template.render(context)?;
        if self.content_type == ContentType::Json {
            serde_json::from_str::<serde::de::IgnoredAny>(&body).map_err(|e| {
                RenderError::NotJson {
                    template: self.template.name.clone(),
                    problem: e.to_string(),
                }
            })?;
        }
        Ok(body)
    }
}

/// The context a record's templates see: `record` is its payload and `envelope` the default
/// body, both as JSON text (`envelope` only when a template reads it). Made once per record,
/// whatever number of templates read it.
pub fn context(record: String, envelope: Option<&str>, facts: &Facts<'_>) -> Value {
    minijinja::context! {
        record => lazy_object(record),
        envelope => envelope.map(from_json),
        op => facts.op,
        stream => facts.stream,
        namespace => facts.namespace,
        row_num => facts.row_num,
        message_id => facts.message_id,
        sync_mode => facts.sync_mode,
        idempotency_key => facts.idempotency_key.to_str().unwrap_or_default(),
        primary_key => facts.primary_key.map(from_json),
        run_id => facts.run_id.cloned(),
        sync_id => facts.sync_id.cloned(),
        generation_id => facts.activation.refresh.generation_id,
        minimum_generation_id => facts.activation.refresh.minimum_generation_id,
        // A list whatever came, so `{% for change in changes %}` needs no guard.
        changes => facts.activation.changes.map_or_else(|| Value::from(Vec::<Value>::new()), from_json),
    }
}

/// `request.batch_body`: the body of a batch, rendered from its records' bodies.
pub struct BatchTemplate(Compiled);

impl BatchTemplate {
    pub fn compile(source: &str) -> Result<Self, CompileError> {
        Compiled::new(
            "request.batch_body",
            source,
            AutoEscape::Custom("json"),
            BATCH_CONTEXT,
        )
        .map(BatchTemplate)
    }

    /// The body of a batch whose records' bodies (JSON text, in input order) are `bodies`;
    /// it must be JSON, as batches are.
    pub fn render(&self, bodies: impl Iterator<Item = Bytes>) -> Result<String, RenderError> {
        let records = Value::from_object(Records(bodies.collect()));
        let body = self.0.render(&minijinja::context! { records => records })?;
        serde_json::from_str::<serde::de::IgnoredAny>(&body).map_err(|e| RenderError::NotJson {
            template: self.0.name.clone(),
            problem: e.to_string(),
        })?;
        Ok(body)
    }
}

/// A batch's records as its template sees them: a list whose items are parsed only when the
/// template reads one, and which `tojson` writes as the bodies' own bytes, so the usual
/// `{"events": {{ records | tojson }}}` costs a copy, not a parse and a serialisation per record.
#[derive(Debug)]
struct Records(Vec<Bytes>);

impl Records {
    fn json_array(&self) -> String {
        let mut out = String::from("[");
        for (i, body) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(std::str::from_utf8(body).unwrap_or("null"));
        }
        out.push(']');
        out
    }
}

impl Object for Records {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let body = self.0.get(key.as_usize()?)?;
        Some(from_json(std::str::from_utf8(body).unwrap_or_default()))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.len())
    }
}

/// Everything but RFC 3986's unreserved characters is encoded.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A value inserted into a URL (`request.path`, see [`crate::path_template`]): percent-encoded,
/// or an error when it is only dots.
fn url_value(value: &str) -> Result<String, Error> {
    if !value.is_empty() && value.bytes().all(|b| b == b'.') {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("the value '{value}' would be a '.' or '..' path segment"),
        ));
    }
    Ok(utf8_percent_encode(value, VALUE).to_string())
}

/// Writes a value as the template's content type requires (see the module's doc).
fn format_value(out: &mut Output, state: &State, value: &Value) -> Result<(), Error> {
    let json = state.auto_escape() == AutoEscape::Custom("json");
    if let Some(s) = value.as_str().filter(|_| json && !value.is_safe()) {
        // Most values have nothing to escape and are written as they are.
        return match crate::envelope::is_plain(s) {
            true => out.write_str(s),
            false => {
                let quoted = crate::envelope::json_name(s);
                out.write_str(&quoted[1..quoted.len() - 1])
            }
        }
        .map_err(Error::from);
    }
    let text = match state.auto_escape() {
        _ if value.is_safe() => value.to_string(),
        AutoEscape::Custom("json") => json_text(value)?,
        AutoEscape::Custom("url") => url_value(&value.to_string())?,
        AutoEscape::Custom("form") => {
            form_urlencoded::byte_serialize(value.to_string().as_bytes()).collect()
        }
        _ => value.to_string(),
    };
    out.write_str(&text).map_err(Error::from)
}

fn json_text(value: &Value) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()))
}

/// `tojson`: the value as compact JSON, as `serde_json` writes it (so `{{ envelope | tojson }}`
/// is the default body). Unlike minijinja's own, it does not escape `<`, `>`, `&` and `'`,
/// which a JSON receiver never needs and which would change those bytes.
fn tojson(value: &Value) -> Result<Value, Error> {
    if let Some(records) = value.downcast_object_ref::<Records>() {
        return Ok(Value::from_safe_string(records.json_array()));
    }
    json_text(value).map(Value::from_safe_string)
}

/// `b64encode`: standard base64 (with padding) of the text's UTF-8 bytes.
fn b64encode(value: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(value)
}

/// `sha256`: lowercase hex SHA-256 of the text's UTF-8 bytes (hashed e-mails for ad APIs).
fn sha256(value: &str) -> String {
    let mut hex = [0u8; 64];
    hex::encode_to_slice(sha2::Sha256::digest(value.as_bytes()), &mut hex)
        .expect("64 hex digits for 32 bytes");
    String::from_utf8_lossy(&hex).into_owned()
}

fn compile_error(template: &Name, source: &str, error: &Error) -> CompileError {
    let (line, column) = match error.range() {
        Some(range) => line_column(source, range.start),
        None => (error.line().unwrap_or(1), 1),
    };
    CompileError {
        template: template.clone(),
        problem: error.detail().unwrap_or("syntax error").to_string(),
        line,
        column,
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// A render failure, with the expression that failed; an undefined value is named by it.
fn render_error(template: &Name, source: &str, error: &Error) -> RenderError {
    let expression = error.range().and_then(|r| source.get(r));
    match (error.kind(), expression) {
        (ErrorKind::UndefinedError, Some(field)) => RenderError::Undefined {
            template: template.clone(),
            field: field.trim().to_string(),
        },
        (_, expression) => {
            let detail = error.detail().unwrap_or("rendering failed");
            RenderError::Failed {
                template: template.clone(),
                problem: match expression.map(str::trim) {
                    Some(expression) => format!("{detail} (in `{expression}`)"),
                    None => detail.to_string(),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(
        source: &str,
        content_type: ContentType,
        record: &str,
    ) -> Result<String, RenderError> {
        BodyTemplate::compile("request.body", source, content_type)
            .unwrap()
            .render(&context(
                record.to_string(),
                Some(r#"{"payload":1}"#),
                &Facts::sample(),
            ))
    }

    #[test]
    fn strings_in_json_are_escaped_as_string_contents() {
        let body = render(
            r#"{"name": "{{ record.name }}", "age": {{ record.age }}, "tags": {{ record.tags }}}"#,
            ContentType::Json,
            r#"{"name": "O\"Brien \\ <b>\n", "age": 42, "tags": ["a", null]}"#,
        )
        .unwrap();
        assert_eq!(
            body,
            r#"{"name": "O\"Brien \\ <b>\n", "age": 42, "tags": ["a",null]}"#
        );
    }

    #[test]
    fn form_values_are_urlencoded_and_text_is_not_escaped() {
        let record = r#"{"name": "a&b=c d"}"#;
        let form = render("name={{ record.name }}", ContentType::Form, record).unwrap();
        assert_eq!(form, "name=a%26b%3Dc+d");
        let text = render("hi {{ record.name }}", ContentType::Text, record).unwrap();
        assert_eq!(text, "hi a&b=c d");
    }

    #[test]
    fn a_missing_field_is_named_and_default_allows_it() {
        let missing = render(r#"{"e": "{{ record.email }}"}"#, ContentType::Json, "{}");
        assert_eq!(
            missing,
            Err(RenderError::Undefined {
                template: "request.body".into(),
                field: "record.email".into()
            })
        );
        assert_eq!(missing.unwrap_err().code(), "template_undefined");
        let defaulted = render(
            r#"{"e": "{{ record.email | default('none') }}"}"#,
            ContentType::Json,
            "{}",
        );
        assert_eq!(defaulted.unwrap(), r#"{"e": "none"}"#);
    }

    #[test]
    fn a_json_body_that_does_not_parse_is_refused() {
        let broken = render(r#"{"n": {{ record.n }}"#, ContentType::Json, r#"{"n": 1}"#);
        assert!(
            matches!(broken, Err(RenderError::NotJson { .. })),
            "{broken:?}"
        );
    }

    #[test]
    fn facts_filters_and_tojson() {
        let body = render(
            "{{ op }} {{ stream }} {{ row_num }} {{ message_id }} {{ sync_mode }} \
             {{ idempotency_key }} {{ namespace is none }} {{ record.e | sha256 }} \
             {{ record.e | b64encode }} {{ record.e | urlencode }} {{ record | tojson }}",
            ContentType::Text,
            r#"{"e": "a@b.c", "big": 123456789012345678901234567890, "x": 1.5, "h": "<&'>"}"#,
        )
        .unwrap();
        let parts: Vec<&str> = body.splitn(10, ' ').collect();
        assert_eq!(&parts[..6], ["upsert", "users", "7", "3", "mirror", "k"]);
        assert_eq!(parts[6], "True", "Jinja's spelling outside JSON");
        let expected_sha: String = sha2::Sha256::digest(b"a@b.c")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(parts[7], expected_sha);
        assert_eq!(parts[8], "YUBiLmM=");
        assert_eq!(
            parts[9],
            r#"a%40b.c {"e":"a@b.c","big":123456789012345678901234567890,"x":1.5,"h":"<&'>"}"#
        );
    }

    #[test]
    fn dates_of_iso_strings_and_epoch_seconds_case_and_trim() {
        let body = render(
            r#"{{ record.at | datetimeformat(format="iso") }} {{ record.epoch | dateformat(format="[year]-[month]-[day]") }} {{ record.at | timeformat(format="[hour]:[minute]") }} {{ record.name | trim | upper }} {{ record.name | lower | trim }}"#,
            ContentType::Text,
            r#"{"at": "2026-01-02T03:04:05Z", "epoch": 1700000000, "name": "  Ada "}"#,
        )
        .unwrap();
        assert_eq!(body, "2026-01-02T03:04:05+00:00 2023-11-14 03:04 ADA ada");
    }

    #[test]
    fn a_syntax_error_names_the_template_line_and_column() {
        let error = BodyTemplate::compile(
            "request.body",
            "{\n  \"a\": {{ record.a }\n}",
            ContentType::Json,
        )
        .err()
        .unwrap();
        assert_eq!((&*error.template, error.line), ("request.body", 2));
        assert!(error.column > 1, "{error}");
        assert!(error.to_string().starts_with("request.body: "), "{error}");
    }

    #[test]
    fn a_name_outside_the_context_is_refused_where_it_stands() {
        let error = BodyTemplate::compile(
            "request.body",
            "{% set n = 1 %}{% for x in range(n) %}{{ x }}{% endfor %}\n{{ recrod.id }}",
            ContentType::Text,
        )
        .err()
        .unwrap();
        assert_eq!((error.line, error.column), (2, 4), "{error}");
        assert!(
            error.problem.starts_with("'recrod' is not defined"),
            "{error}"
        );
        let batch = BatchTemplate::compile("{{ record }}").err().unwrap();
        assert!(batch.problem.contains("can read records"), "{batch}");
    }

    #[test]
    fn a_batch_template_loops_over_its_records_or_writes_them_as_sent() {
        let bodies = || [Bytes::from(r#"{"a": 1}"#), Bytes::from(r#"{"a":"x\"y"}"#)].into_iter();
        let looped = BatchTemplate::compile(
            r#"[{% for r in records %}{{ r.a | tojson }}{% if not loop.last %},{% endif %}{% endfor %}]"#,
        )
        .unwrap();
        assert_eq!(looped.render(bodies()).unwrap(), r#"[1,"x\"y"]"#);
        let indexed = BatchTemplate::compile(
            r#"{"first": {{ records[0] | tojson }}, "all": {{ records | tojson }}}"#,
        )
        .unwrap();
        assert_eq!(
            indexed.render(bodies()).unwrap(),
            r#"{"first": {"a":1}, "all": [{"a": 1},{"a":"x\"y"}]}"#
        );
    }

    #[test]
    fn record_fields_are_paths_and_say_which_a_date_filter_formats() {
        let source = r#"{{ record.at }} {{ record.atx }} {{ record.a.b|timeformat(format="short") }} {{ record.at2 | dateformat }} {{ op }}"#;
        let template = Compiled::new("t", source, AutoEscape::None, RECORD_CONTEXT).unwrap();
        let mut fields = template.record_fields();
        fields.sort_by(|a, b| a.path.cmp(&b.path));
        let field = |path: &str, dated| RecordField {
            path: path.into(),
            dated,
        };
        assert_eq!(
            fields,
            [
                field("a.b", true),
                field("at", false),
                field("at2", true),
                field("atx", false)
            ]
        );
    }

    #[test]
    fn line_columns_count_characters() {
        assert_eq!(line_column("ab\ncé\nd", 6), (2, 3));
        assert_eq!(line_column("x", 0), (1, 1));
    }
}
