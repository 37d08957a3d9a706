//! The request's shape, decided once from the config: a record travels in a GET's query, or in a
//! JSON body (alone or in a batch array, gzip-compressed or not). Every other stage asks the shape
//! instead of looking at the method, so what GET means is written here and in
//! [`encoder`](crate::encoder) (which builds its URL), nowhere else. Modelled on Vector's
//! `ValidatedHttp`, where content type and encoding are resolved once at validation.

use bytes::Bytes;
use reqwest::header::{HeaderName, HeaderValue};
use url::Url;

use crate::config::{Compression, Config, ContentType, Method};
use crate::template::{BatchTemplate, RenderError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// GET: the envelope flattened into the URL's query; one record per request, no body.
    Query,
    /// POST/PUT/PATCH: the envelope (or the body template's text) as the body; `batched` sends
    /// an array (even of one), `gzip` compresses it, `content_type` is what the body is
    /// (JSON unless a body template says otherwise).
    Json {
        batched: bool,
        gzip: bool,
        content_type: ContentType,
    },
}

/// One record as it is sent.
#[derive(Debug)]
pub enum Payload {
    /// The envelope's JSON text.
    Json(Bytes),
    /// The endpoint with the record's query appended.
    Query(Url),
    /// A record through request templates that give it its own URL or headers.
    Templated(Box<Templated>),
}

/// What request templates made of one record.
#[derive(Debug)]
pub struct Templated {
    /// Its route's method, when not the configured one.
    pub method: Option<reqwest::Method>,
    /// A path template's URL (with a GET's query), or `None` for the endpoint.
    pub url: Option<Url>,
    /// The body (empty for GET).
    pub body: Bytes,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Payload {
    /// Bytes it holds, as the window counts them.
    pub fn size(&self) -> usize {
        match self {
            Payload::Json(body) => body.len(),
            Payload::Query(url) => url.as_str().len(),
            Payload::Templated(t) => t.url.as_ref().map_or(0, |u| u.as_str().len()) + t.body.len(),
        }
    }

    /// The body it sends (empty for GET).
    pub fn body(&self) -> Bytes {
        match self {
            Payload::Json(body) => body.clone(),
            Payload::Query(_) => Bytes::new(),
            Payload::Templated(t) => t.body.clone(),
        }
    }
}

/// What one request carries, built once and sent by every attempt.
pub struct Content {
    /// A route's method, when not the configured one.
    pub method: Option<reqwest::Method>,
    /// GET: the endpoint with the record's query; a path template's URL; else the endpoint.
    pub url: Option<Url>,
    /// The bytes on the wire (gzip-compressed when configured).
    pub body: Bytes,
    /// The bytes the signature covers and a dry run shows: the uncompressed body (a receiver
    /// verifies the body its framework hands it, which is decompressed); empty for GET.
    pub signed: Bytes,
    /// Header templates' headers for this record.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Shape {
    pub fn of(config: &Config) -> Shape {
        match config.method {
            Method::Get => Shape::Query,
            _ => Shape::Json {
                batched: config.batch_size > 1,
                gzip: config.compression == Compression::Gzip,
                content_type: config.body_template().map_or(ContentType::Json, |r| r.1),
            },
        }
    }

    /// Records per request: a GET carries one.
    pub fn batch_size(self, configured: u32) -> usize {
        match self {
            Shape::Query => 1,
            Shape::Json { .. } => configured.max(1) as usize,
        }
    }

    /// The Content-Type every request says, if it has a body.
    pub fn content_type(self) -> Option<HeaderValue> {
        match self {
            Shape::Json { content_type, .. } => {
                Some(HeaderValue::from_static(content_type.as_str()))
            }
            Shape::Query => None,
        }
    }

    /// The Content-Encoding every request says, if its body is compressed.
    pub fn content_encoding(self) -> Option<HeaderValue> {
        matches!(self, Shape::Json { gzip: true, .. }).then(|| HeaderValue::from_static("gzip"))
    }

    /// The request for a group of records (in input order): one envelope, or an array of them
    /// when batching (even of one: a receiver expecting arrays gets arrays); GET carries its
    /// record's URL, and so does a record with a path template.
    /// A batch's body is `batch_template`'s rendering when one is configured.
    pub fn content<'a>(
        self,
        mut payloads: impl ExactSizeIterator<Item = &'a Payload>,
        batch_template: Option<&BatchTemplate>,
    ) -> Result<Content, RenderError> {
        let mut content = Content {
            method: None,
            url: None,
            body: Bytes::new(),
            signed: Bytes::new(),
            headers: Vec::new(),
        };
        match (self, payloads.len()) {
            (Shape::Json { batched: false, .. }, 1) | (Shape::Query, _) => match payloads.next() {
                Some(Payload::Query(url)) => content.url = Some(url.clone()),
                Some(Payload::Templated(t)) => {
                    content.method = t.method.clone();
                    content.url = t.url.clone();
                    content.signed = t.body.clone();
                    content.headers = t.headers.clone();
                }
                Some(Payload::Json(body)) => content.signed = body.clone(),
                None => {}
            },
            (Shape::Json { .. }, _) => {
                content.signed = match batch_template {
                    None => Bytes::from(batch_body(payloads)),
                    Some(template) => Bytes::from(template.render(payloads.map(Payload::body))?),
                }
            }
        };
        content.body = match self {
            Shape::Json { gzip: true, .. } if !content.signed.is_empty() => gzip(&content.signed),
            _ => content.signed.clone(),
        };
        Ok(content)
    }
}

/// A batch body: the envelopes (already serialised) as one JSON array, in input order.
fn batch_body<'a>(payloads: impl Iterator<Item = &'a Payload>) -> Vec<u8> {
    let mut body = Vec::with_capacity(4096);
    body.push(b'[');
    for (i, payload) in payloads.enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&payload.body());
    }
    body.push(b']');
    body
}

fn gzip(body: &[u8]) -> Bytes {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 2),
        flate2::Compression::fast(),
    );
    encoder.write_all(body).expect("writing to memory");
    Bytes::from(encoder.finish().expect("writing to memory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Payload {
        Payload::Json(Bytes::from(text.to_string()))
    }

    #[test]
    fn get_is_one_record_without_a_body() {
        let config: Config =
            serde_json::from_value(serde_json::json!({"url": "http://h/x", "method": "GET",
                "batch_size": 50, "compression": "gzip"}))
            .unwrap();
        let shape = Shape::of(&config);
        assert_eq!(shape, Shape::Query);
        assert_eq!(shape.batch_size(50), 1);
        assert!(shape.content_type().is_none() && shape.content_encoding().is_none());
        let url = Url::parse("http://h/x?a=1").unwrap();
        let content = shape
            .content([Payload::Query(url.clone())].iter(), None)
            .unwrap();
        assert_eq!(content.url, Some(url));
        assert!(content.body.is_empty() && content.signed.is_empty());
    }

    #[test]
    fn json_bodies_alone_or_as_an_array() {
        let single = Shape::Json {
            batched: false,
            gzip: false,
            content_type: ContentType::Json,
        };
        let content = single.content([json(r#"{"a":1}"#)].iter(), None).unwrap();
        assert_eq!(&content.body[..], br#"{"a":1}"#);
        assert!(content.url.is_none());
        let batched = Shape::Json {
            batched: true,
            gzip: false,
            content_type: ContentType::Json,
        };
        let content = batched.content([json("1")].iter(), None).unwrap();
        assert_eq!(&content.body[..], b"[1]");
        let content = batched
            .content([json("1"), json("2")].iter(), None)
            .unwrap();
        assert_eq!(&content.body[..], b"[1,2]");
        let events = BatchTemplate::compile(
            r#"{"n": {{ records | length }}, "events": {{ records | tojson }}}"#,
        )
        .unwrap();
        let content = batched
            .content([json(r#"{"a":1}"#), json("2")].iter(), Some(&events))
            .unwrap();
        assert_eq!(&content.body[..], br#"{"n": 2, "events": [{"a":1},2]}"#);
        let broken = BatchTemplate::compile("{{ records }").err();
        assert!(broken.is_some());
        let not_json = BatchTemplate::compile("[{{ records | length }}").unwrap();
        let refused = batched.content([json("1")].iter(), Some(&not_json));
        assert!(matches!(refused, Err(RenderError::NotJson { .. })));
    }

    #[test]
    fn gzip_is_signed_uncompressed() {
        let shape = Shape::Json {
            batched: false,
            gzip: true,
            content_type: ContentType::Json,
        };
        let content = shape.content([json(r#"{"a":1}"#)].iter(), None).unwrap();
        assert_eq!(&content.signed[..], br#"{"a":1}"#);
        assert_eq!(&content.body[..2], &[0x1f, 0x8b]);
        assert_eq!(shape.content_encoding().unwrap(), "gzip");
    }

    #[test]
    fn a_payload_weighs_its_url_and_its_body() {
        let url = Url::parse("http://h/x?a=1").unwrap();
        let templated = |url: Option<Url>, body: &'static str| {
            Payload::Templated(Box::new(Templated {
                method: None,
                url,
                body: Bytes::from_static(body.as_bytes()),
                headers: Vec::new(),
            }))
        };
        assert_eq!(json(r#"{"a":1}"#).size(), 7);
        assert_eq!(Payload::Query(url.clone()).size(), 14);
        assert_eq!(templated(Some(url), "{}").size(), 14 + 2);
        assert_eq!(templated(None, "{}").size(), 2);
    }

    /// A route's GET, among POSTs that are compressed, goes without a body: gzip of nothing
    /// would still be twenty bytes.
    #[test]
    fn an_empty_body_is_not_compressed() {
        let shape = Shape::Json {
            batched: false,
            gzip: true,
            content_type: ContentType::Json,
        };
        let get = Payload::Templated(Box::new(Templated {
            method: Some(reqwest::Method::GET),
            url: Some(Url::parse("http://h/x?a=1").unwrap()),
            body: Bytes::new(),
            headers: Vec::new(),
        }));
        let content = shape.content([get].iter(), None).unwrap();
        assert!(content.body.is_empty() && content.signed.is_empty());
    }
}
