//! Records into payloads, on the reader thread: the envelope written as JSON into an arena, or
//! for GET flattened into the endpoint's query (and refused when that URL would be too long).
//! Which of the two is the [`Shape`]'s decision, made once. A record whose operation's route
//! (or the top-level request) has templates gets what they render instead; without any,
//! nothing of that is touched.

use bytes::{Bytes, BytesMut};
use reqwest::header::HeaderValue;
use url::Url;

use crate::envelope::{Envelope, WriteJson};
use crate::flatten::{self, FlattenError};
use crate::rejection::Rejection;
use crate::routes::{Carrier, Definition, Routes};
use crate::shape::{Payload, Shape, Templated};
use crate::template::{self, Facts};

/// URLs longer than this (16 KiB) are refused by many servers or silently truncated.
pub const MAX_GET_URL: usize = 16_384;

/// Bytes the arena allocates at a time. Records are written into it back to back and handed
/// on as slices of it, so a record costs no allocation of its own, and the delivery thread
/// frees one block per few hundred records instead of one buffer per record.
const ARENA_BLOCK: usize = 64 * 1024;
/// Room made for a body beyond its payload's size (the envelope's own fields), so a body is
/// written in one place and never moved mid-write.
const ENVELOPE_ROOM: usize = 1024;

pub struct Encoder {
    shape: Shape,
    /// The endpoint a GET's query is appended to.
    url: Url,
    /// The request definitions of each destination object, the top-level request's first;
    /// `object` is the one the records being encoded go to.
    objects: Vec<Routes>,
    object: usize,
    arena: BytesMut,
}

impl Encoder {
    /// A trailing `&` of the endpoint's own query is dropped: the parameters are joined to it
    /// with one.
    pub fn new(shape: Shape, mut url: Url, routes: Routes) -> Self {
        if let Some(own) = url.query().filter(|q| q.ends_with('&')) {
            let own = own.trim_end_matches('&').to_string();
            url.set_query(Some(&own));
        }
        Encoder {
            shape,
            url,
            objects: vec![routes],
            object: 0,
            arena: BytesMut::with_capacity(ARENA_BLOCK),
        }
    }

    /// The named destination objects' definitions, after the top-level request's.
    pub fn with_objects(mut self, objects: impl IntoIterator<Item = Routes>) -> Self {
        self.objects.extend(objects);
        self
    }

    /// Encodes the next records for destination object `object` (an index into the objects).
    pub fn select(&mut self, object: usize) {
        self.object = object;
    }

    fn routes(&self) -> &Routes {
        &self.objects[self.object]
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

    /// Whether the records of operation `op` are acknowledged without being sent.
    pub fn skips(&self, op: &str) -> bool {
        self.routes().definition(op).is_none()
    }

    /// Whether records are routed by their operation.
    pub fn routes_by_operation(&self) -> bool {
        self.routes().by_operation()
    }

    /// Whether a record's templates need its facts beyond the envelope's (its key's value).
    pub fn templated(&self) -> bool {
        !self.routes().is_plain()
    }

    /// Makes room for `needed` bytes. A block too small is replaced, never grown: growing a
    /// block whose records are all gone would keep their bytes in it, so large records would
    /// grow it again and again.
    fn room(&mut self, needed: usize) {
        if self.arena.capacity() < needed {
            self.arena = BytesMut::with_capacity(needed.max(ARENA_BLOCK));
        }
    }

    /// The record's request as its operation's route defines it: the envelope as JSON, or for
    /// GET the endpoint with the record in its query, or what the templates make of it. `Err`
    /// when a GET record cannot be flattened or its URL would be over the limit, or a template
    /// cannot be rendered for it. `payload_size`: about how long the payload's JSON is (the
    /// record's data is an upper bound); `facts`: what a template sees besides the record;
    /// `flatten_payload`: the payload's GET parameters, which only GET needs. A skipped
    /// operation ([`Encoder::skips`]) is the caller's to handle before.
    pub fn encode<P: WriteJson>(
        &mut self,
        envelope: Envelope<'_, P>,
        payload_size: usize,
        facts: &Facts<'_>,
        flatten_payload: impl FnOnce(&mut Vec<(String, String)>) -> Result<(), FlattenError>,
    ) -> Result<Payload, Rejection> {
        let definition = self
            .routes()
            .definition(facts.op)
            .expect("skips are handled before");
        if !definition.is_plain() {
            return templated(definition, &self.url, &envelope, facts, flatten_payload);
        }
        match self.shape {
            Shape::Json { .. } => {
                self.room(payload_size + ENVELOPE_ROOM);
                envelope.write_json(&mut self.arena);
                Ok(Payload::Json(self.arena.split().freeze()))
            }
            Shape::Query => {
                query_url(self.url.clone(), &envelope, flatten_payload).map(Payload::Query)
            }
        }
    }
}

/// The record through a route's templates: rendered from one context, with the route's own
/// method.
fn templated<P: WriteJson>(
    definition: &Definition,
    endpoint: &Url,
    envelope: &Envelope<'_, P>,
    facts: &Facts<'_>,
    flatten_payload: impl FnOnce(&mut Vec<(String, String)>) -> Result<(), FlattenError>,
) -> Result<Payload, Rejection> {
    let envelope_text = definition.needs_envelope().then(|| json_text(envelope));
    let context = template::context(
        json_text(&envelope.payload),
        envelope_text.as_deref(),
        facts,
    );
    let url = match &definition.path {
        Some(path) => Some(path.url(endpoint, &context).map_err(Rejection::Template)?),
        None => None,
    };
    let (url, body) = match (definition.carrier, &definition.body) {
        (Carrier::Query, _) => {
            let base = url.unwrap_or_else(|| endpoint.clone());
            (
                Some(query_url(base, envelope, flatten_payload)?),
                Bytes::new(),
            )
        }
        (Carrier::Nothing, _) => (url, Bytes::new()),
        (Carrier::Body, None) => (url, Bytes::from(envelope_text.unwrap_or_default())),
        (Carrier::Body, Some(body)) => (
            url,
            Bytes::from(body.render(&context).map_err(Rejection::Template)?),
        ),
    };
    let headers = match &definition.headers {
        Some(headers) => headers.render(&context).map_err(Rejection::Template)?,
        None => Vec::new(),
    };
    if definition.method.is_none() && url.is_none() && headers.is_empty() {
        return Ok(Payload::Json(body));
    }
    Ok(Payload::Templated(Box::new(Templated {
        method: definition.method.clone(),
        url,
        body,
        headers,
    })))
}

/// `url` with the record's parameters appended to its query, or why it cannot be sent so.
fn query_url<P>(
    mut url: Url,
    envelope: &Envelope<'_, P>,
    flatten_payload: impl FnOnce(&mut Vec<(String, String)>) -> Result<(), FlattenError>,
) -> Result<Url, Rejection> {
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
    Ok(url)
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

    fn plain() -> Routes {
        let config = serde_json::from_value(serde_json::json!({"url": "http://h/x"})).unwrap();
        Routes::compile(&config).unwrap()
    }

    /// A GET of one field `a` with `value` to `endpoint`.
    fn encode_get(endpoint: &str, value: &str) -> Result<Payload, Rejection> {
        let mut encoder = Encoder::new(Shape::Query, Url::parse(endpoint).unwrap(), plain());
        let data = serde_json::json!({ "a": value }).to_string();
        let envelope = Envelope {
            message_id: 1,
            sync_mode: "append",
            stream: None,
            payload: &*serde_json::value::RawValue::from_string(data.clone()).unwrap(),
        };
        let flatten = |out: &mut Vec<(String, String)>| {
            out.push(("a".into(), value.into()));
            Ok(())
        };
        encoder.encode(envelope, data.len(), &Facts::sample(), flatten)
    }

    fn get_url(endpoint: &str) -> String {
        match encode_get(endpoint, "b") {
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
    fn a_get_url_of_16_kib_is_sent_and_one_byte_more_refused() {
        let overhead = get_url("http://h/x").len() - 1;
        let of_length = |n: usize| encode_get("http://h/x", &"x".repeat(n - overhead));
        assert!(
            matches!(of_length(16_384), Ok(Payload::Query(url)) if url.as_str().len() == 16_384)
        );
        assert!(matches!(
            of_length(16_385),
            Err(Rejection::UrlTooLong {
                length: 16_385,
                limit: 16_384
            })
        ));
    }
}
