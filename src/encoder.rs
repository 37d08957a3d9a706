//! Records into payloads, on the reader thread: the envelope written as JSON into an arena, or
//! for GET flattened into the endpoint's query (and refused when that URL would be too long).
//! Which of the two is the [`Shape`]'s decision, made once. A configured body template
//! replaces the envelope with its rendering; without one nothing of it is touched.

use bytes::{Bytes, BytesMut};
use reqwest::header::HeaderValue;
use url::Url;

use crate::envelope::{Envelope, WriteJson};
use crate::flatten::{self, FlattenError};
use crate::rejection::Rejection;
use crate::shape::{Payload, Shape};
use crate::template::{BodyTemplate, Facts};

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
pub struct Encoder {
    shape: Shape,
    /// The endpoint a GET's query is appended to.
    url: Url,
    /// The body template, compiled at start-up; `None` sends the envelope.
    template: Option<BodyTemplate>,
    arena: BytesMut,
}

impl Encoder {
    /// A trailing `&` of the endpoint's own query is dropped: the parameters are joined to it
    /// with one.
    pub fn new(shape: Shape, mut url: Url, template: Option<BodyTemplate>) -> Self {
        if let Some(own) = url.query().filter(|q| q.ends_with('&')) {
            let own = own.trim_end_matches('&').to_string();
            url.set_query(Some(&own));
        }
        Encoder {
            shape,
            url,
            template,
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
            return match &self.template {
                None => Ok(Payload::Json(body)),
                Some(template) => render(template, &envelope.payload, &body, facts),
            };
        }
        let mut pairs = Vec::new();
        flatten_payload(&mut pairs).map_err(Rejection::NotFlattenable)?;
        let mut url = self.url.clone();
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
        Ok(Payload::Query(url))
    }
}

/// The template's body for a record whose envelope is `envelope` (JSON text).
fn render(
    template: &BodyTemplate,
    payload: &impl WriteJson,
    envelope: &[u8],
    facts: &Facts<'_>,
) -> Result<Payload, Rejection> {
    let mut record = Vec::with_capacity(envelope.len());
    payload.write_json(&mut record);
    let text = String::from_utf8_lossy;
    template
        .render(&text(&record), &text(envelope), facts)
        .map(|body| Payload::Json(Bytes::from(body)))
        .map_err(Rejection::Template)
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
        let mut encoder = Encoder::new(Shape::Query, Url::parse(endpoint).unwrap(), None);
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
        let mut encoder = Encoder::new(Shape::Query, Url::parse("http://h/x").unwrap(), None);
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
