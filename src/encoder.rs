//! Records into payloads, on the reader thread: the envelope written as JSON into an arena, or
//! for GET flattened into the endpoint's query (and refused when that URL would be too long).
//! Which of the two is the [`Shape`]'s decision, made once. A configured body template
//! replaces the envelope with its rendering; without one nothing of it is touched.

use bytes::{Bytes, BytesMut};
use reqwest::header::HeaderValue;
use url::Url;

use crate::envelope::{Envelope, WriteJson};
use crate::flatten::{self, FlattenError};
use crate::header_template::HeaderTemplates;
use crate::path_template::PathTemplate;
use crate::rejection::Rejection;
use crate::shape::{Payload, Shape, Templated};
use crate::template::{BodyTemplate, CompileError, Facts};

/// URLs longer than this are refused by many servers or silently truncated.
pub const MAX_GET_URL: usize = 16 * 1024;

/// Bytes the arena allocates at a time. Records are written into it back to back and handed
/// on as slices of it, so a record costs no allocation of its own, and the delivery thread
/// frees one block per few hundred records instead of one buffer per record.
const ARENA_BLOCK: usize = 64 * 1024;
/// Room made for a body beyond its payload's size (the envelope's own fields), so a body is
/// written in one place and never moved mid-write.
const ENVELOPE_ROOM: usize = 1024;

/// How records become payloads: the part both dialects share.
/// The request templates, compiled at start-up; none configured sends the envelope to the
/// endpoint.
#[derive(Default)]
pub struct Templates {
    pub body: Option<BodyTemplate>,
    pub path: Option<PathTemplate>,
    pub headers: Option<HeaderTemplates>,
}

impl Templates {
    pub fn compile(config: &crate::config::Config) -> Result<Self, CompileError> {
        let body = config.body_template();
        Ok(Templates {
            body: body
                .map(|(body, content_type)| BodyTemplate::compile(body, content_type))
                .transpose()?,
            path: config
                .path_template()
                .map(PathTemplate::compile)
                .transpose()?,
            headers: config
                .header_templates()
                .map(HeaderTemplates::compile)
                .transpose()?,
        })
    }

    fn any(&self) -> bool {
        self.body.is_some() || self.path.is_some() || self.headers.is_some()
    }
}

pub struct Encoder {
    shape: Shape,
    /// The endpoint a GET's query is appended to.
    url: Url,
    templates: Templates,
    arena: BytesMut,
}

impl Encoder {
    /// A trailing `&` of the endpoint's own query is dropped: the parameters are joined to it
    /// with one.
    pub fn new(shape: Shape, mut url: Url, templates: Templates) -> Self {
        if let Some(own) = url.query().filter(|q| q.ends_with('&')) {
            let own = own.trim_end_matches('&').to_string();
            url.set_query(Some(&own));
        }
        Encoder {
            shape,
            url,
            templates,
            arena: BytesMut::with_capacity(ARENA_BLOCK),
        }
    }

    /// A copy of `text` that lives as long as the record needs it.
    pub fn keep(&mut self, text: &str) -> Bytes {
        self.room(text.len());
        self.arena.extend_from_slice(text.as_bytes());
        self.arena.split().freeze()
    }

    /// The idempotency key as a header value.
    pub fn key_header(&mut self, key: crate::idempotency::Key) -> HeaderValue {
        HeaderValue::from_maybe_shared(self.keep(key.as_str()))
            .expect("idempotency keys are URL-safe base64")
    }

    /// Makes room for `needed` bytes. A block too small is replaced, never grown: growing a
    /// block whose records are all gone would keep their bytes in it, so large records would
    /// grow it again and again.
    fn room(&mut self, needed: usize) {
        if self.arena.capacity() < needed {
            self.arena = BytesMut::with_capacity(needed.max(ARENA_BLOCK));
        }
    }

    /// The envelope as JSON (or the body template's rendering), or for GET the endpoint with
    /// its query; `Err` when a GET record cannot be flattened or its URL would be over the
    /// limit, or the template cannot be rendered for it. `payload_size`: about how long the
    /// payload's JSON is (the record's data is an upper bound); `facts`: what a template sees
    /// besides the record; `flatten_payload`: the payload's GET parameters, which only GET
    /// needs.
    pub fn encode<P: WriteJson>(
        &mut self,
        envelope: Envelope<'_, P>,
        payload_size: usize,
        facts: &Facts<'_>,
        flatten_payload: impl FnOnce(&mut Vec<(String, String)>) -> Result<(), FlattenError>,
    ) -> Result<Payload, Rejection> {
        if let Shape::Json { .. } = self.shape {
            self.room(payload_size + ENVELOPE_ROOM);
            envelope.write_json(&mut self.arena);
            let body = self.arena.split().freeze();
            if !self.templates.any() {
                return Ok(Payload::Json(body));
            }
            let texts = Texts {
                record: json_text(&envelope.payload),
                envelope: String::from_utf8_lossy(&body).into_owned(),
            };
            let body = match &self.templates.body {
                None => body,
                Some(template) => Bytes::from(
                    template
                        .render(&texts.record, &texts.envelope, facts)
                        .map_err(Rejection::Template)?,
                ),
            };
            return self.templated(&texts, body, None, facts);
        }
        let texts = self.templates.any().then(|| Texts {
            record: json_text(&envelope.payload),
            envelope: json_text(&envelope),
        });
        let mut url = match (&self.templates.path, &texts) {
            (Some(path), Some(texts)) => path
                .url(&self.url, &texts.record, &texts.envelope, facts)
                .map_err(Rejection::Template)?,
            _ => self.url.clone(),
        };
        let mut pairs = Vec::new();
        flatten_payload(&mut pairs).map_err(Rejection::NotFlattenable)?;
        flatten::append_envelope_query(
            &mut url,
            pairs,
            envelope.message_id,
            envelope.sync_mode,
            envelope.stream,
        );
        let length = url.as_str().len();
        if length > MAX_GET_URL {
            return Err(Rejection::UrlTooLong {
                length,
                limit: MAX_GET_URL,
            });
        }
        match texts {
            None => Ok(Payload::Query(url)),
            Some(texts) => self.templated(&texts, Bytes::new(), Some(url), facts),
        }
    }

    /// A record's `body` with the path template's URL (unless `url`, a GET's, is given) and the
    /// header templates' headers; a plain JSON payload when neither applies.
    fn templated(
        &self,
        texts: &Texts,
        body: Bytes,
        url: Option<Url>,
        facts: &Facts<'_>,
    ) -> Result<Payload, Rejection> {
        let url = match (url, &self.templates.path) {
            (Some(url), _) => Some(url),
            (None, Some(path)) => Some(
                path.url(&self.url, &texts.record, &texts.envelope, facts)
                    .map_err(Rejection::Template)?,
            ),
            (None, None) => None,
        };
        let headers = match &self.templates.headers {
            Some(headers) => headers
                .render(&texts.record, &texts.envelope, facts)
                .map_err(Rejection::Template)?,
            None => Vec::new(),
        };
        if url.is_none() && headers.is_empty() {
            return Ok(Payload::Json(body));
        }
        Ok(Payload::Templated(Box::new(Templated {
            url,
            body,
            headers,
        })))
    }
}

/// A record's payload and envelope as JSON text, what its templates read.
struct Texts {
    record: String,
    envelope: String,
}

/// A value's JSON text, for a template to read.
fn json_text(value: &impl WriteJson) -> String {
    let mut text = Vec::new();
    value.write_json(&mut text);
    String::from_utf8(text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    static KEY: HeaderValue = HeaderValue::from_static("k");

    fn facts() -> Facts<'static> {
        Facts {
            op: "",
            stream: "s",
            namespace: None,
            row_num: None,
            message_id: 1,
            sync_mode: "append",
            idempotency_key: &KEY,
        }
    }

    fn get_url(endpoint: &str) -> String {
        let mut encoder = Encoder::new(
            Shape::Query,
            Url::parse(endpoint).unwrap(),
            Templates::default(),
        );
        let envelope = Envelope {
            message_id: 1,
            sync_mode: "append",
            stream: None,
            payload: &*serde_json::value::RawValue::from_string(r#"{"a":"b"}"#.into()).unwrap(),
        };
        let flatten = |out: &mut Vec<(String, String)>| {
            out.push(("a".into(), "b".into()));
            Ok(())
        };
        match encoder.encode(envelope, 9, &facts(), flatten) {
            Ok(Payload::Query(url)) => url.to_string(),
            _ => panic!("not a GET URL"),
        }
    }

    #[test]
    fn get_parameters_join_the_endpoints_own_query() {
        let own = "a=b&_message_id=1&_sync_mode=append";
        assert_eq!(get_url("http://h/hook"), format!("http://h/hook?{own}"));
        assert_eq!(
            get_url("http://h/hook?x=1"),
            format!("http://h/hook?x=1&{own}")
        );
        assert_eq!(
            get_url("http://h/hook?x=1&"),
            format!("http://h/hook?x=1&{own}")
        );
        assert_eq!(get_url("http://h/hook?"), format!("http://h/hook?{own}"));
        assert_eq!(get_url("http://h/p#frag"), format!("http://h/p?{own}#frag"));
    }

    #[test]
    fn a_get_url_over_the_limit_is_refused() {
        let mut encoder = Encoder::new(
            Shape::Query,
            Url::parse("http://h/x").unwrap(),
            Templates::default(),
        );
        let long = format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_GET_URL));
        let envelope = Envelope {
            message_id: 1,
            sync_mode: "append",
            stream: None,
            payload: &*serde_json::value::RawValue::from_string(long.clone()).unwrap(),
        };
        let flatten = |out: &mut Vec<(String, String)>| {
            out.push(("a".into(), "x".repeat(MAX_GET_URL)));
            Ok(())
        };
        let refused = encoder.encode(envelope, long.len(), &facts(), flatten);
        assert!(matches!(refused, Err(Rejection::UrlTooLong { .. })));
    }
}
