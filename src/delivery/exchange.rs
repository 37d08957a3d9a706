//! One attempt: the request built with this attempt's headers (identity, signature), sent, and
//! its answer read (status, `Retry-After`, `Location`, the start of the body) within the
//! attempt's deadline. What the answer means is the policy's business, not this file's.

use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{
    HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_ENCODING, LOCATION, RETRY_AFTER,
};

use crate::headers::{IDEMPOTENCY_KEY, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP};
use crate::hmac_header::HeaderSigner;
use crate::oauth::TokenSource;
use crate::policy::{self, Outcome};
use crate::shape::Content;
use crate::signing::Signer;

/// Bytes of a response body kept for messages; the rest is read and dropped so the connection
/// can be reused without a hostile endpoint filling memory.
pub const RESPONSE_KEEP: usize = 64 * 1024;
/// Headers a usual request carries: its own (idempotency key and id; signature, timestamp and
/// content encoding when configured) and the client's defaults (user agent, content type, accept,
/// auth), with room for three configured ones. Reserving up front saves regrowing the map per
/// request; a request with more configured headers only pays for one regrowth.
const HEADER_ROOM: usize = 12;
/// Bytes of a response body quoted in a message.
const EXCERPT: usize = 200;

/// One request as every attempt sends it.
pub struct Outgoing {
    pub content: Content,
    pub key: HeaderValue,
}

/// What every attempt of the run sends besides the request's own content, and how long it may
/// take.
pub struct Sender {
    pub client: reqwest::Client,
    pub method: reqwest::Method,
    /// Without credentials (they travel as the auth header).
    pub endpoint: reqwest::Url,
    pub signer: Option<Signer>,
    pub hmac: Option<HeaderSigner>,
    /// OAuth2's token, set per attempt.
    pub oauth: Option<TokenSource>,
    pub content_encoding: Option<HeaderValue>,
    pub timeout: Duration,
    /// The proxy requests go through, as messages name it.
    pub proxy: Option<String>,
}

/// How an attempt ended, with the words for messages: a scrubbed excerpt of the answer's body
/// (empty for 2xx), or why there was no answer.
pub struct Exchange {
    pub outcome: Outcome,
    pub location: Option<String>,
    pub text: String,
}

impl Exchange {
    /// The answer's status; 0 when there was none.
    pub fn status(&self) -> u16 {
        match self.outcome {
            Outcome::Answered { status, .. } => status,
            _ => 0,
        }
    }
}

impl Sender {
    /// One attempt, given up on `timeout` after `started` (the same clock reading the latency
    /// metric starts from).
    pub async fn attempt(&self, outgoing: &Outgoing, started: Instant) -> Exchange {
        let Some(tokens) = &self.oauth else {
            return self.timed(self.request(outgoing, None), started).await;
        };
        let token = match tokens.header().await {
            Ok(token) => token,
            Err(e) => return no_answer(e.to_string()),
        };
        let answer = self
            .timed(self.request(outgoing, Some(token.clone())), started)
            .await;
        if answer.status() != 401 {
            return answer;
        }
        // Revoked or expired early: one new token (shared with every request answered 401 with
        // the same one) and one more try; a second 401 is the endpoint's word on the credentials.
        match tokens.after_401(&token).await {
            Ok(renewed) => {
                self.timed(self.request(outgoing, Some(renewed)), Instant::now())
                    .await
            }
            Err(e) => no_answer(e.to_string()),
        }
    }

    /// One exchange, given up on `timeout` after `started`.
    async fn timed(&self, request: reqwest::Request, started: Instant) -> Exchange {
        let deadline = tokio::time::Instant::from_std(started + self.timeout);
        match tokio::time::timeout_at(deadline, self.exchange(request)).await {
            Err(_) => no_answer(format!(
                "no complete answer within {}s",
                self.timeout.as_secs_f64()
            )),
            Ok(Err(e)) => match crate::tls::explain(&e) {
                Some(reason) => Exchange {
                    outcome: Outcome::TlsRefused,
                    location: None,
                    text: reason,
                },
                None => no_answer(describe_error(&e, self.proxy.as_deref())),
            },
            Ok(Ok(answer)) => answer,
        }
    }

    /// The request, with `token` (OAuth2's `Authorization`) when there is one.
    fn request(&self, outgoing: &Outgoing, token: Option<HeaderValue>) -> reqwest::Request {
        let url = outgoing.content.url.as_ref().unwrap_or(&self.endpoint);
        let method = outgoing.content.method.as_ref().unwrap_or(&self.method);
        let mut request = reqwest::Request::new(method.clone(), url.clone());
        // Room for these and the client's default headers, merged in when it is sent, so the
        // map is allocated once.
        let headers = request.headers_mut();
        headers.reserve(HEADER_ROOM);
        for (name, value) in &outgoing.content.headers {
            headers.insert(name.clone(), value.clone());
        }
        headers.insert(IDEMPOTENCY_KEY, outgoing.key.clone());
        headers.insert(WEBHOOK_ID, outgoing.key.clone());
        if let Some(token) = token {
            headers.insert(AUTHORIZATION, token);
        }
        if self.signer.is_some() || self.hmac.is_some() {
            self.sign(headers, outgoing);
        }
        let body = &outgoing.content.body;
        if let Some(encoding) = self.content_encoding.as_ref().filter(|_| !body.is_empty()) {
            headers.insert(CONTENT_ENCODING, encoding.clone());
        }
        // GET never has a body; DELETE only when a template gave it one.
        let carries = match *method {
            reqwest::Method::GET => false,
            reqwest::Method::DELETE => !body.is_empty(),
            _ => true,
        };
        if carries {
            *request.body_mut() = Some(body.clone().into());
        }
        request
    }

    /// The headers set per attempt (OAuth2 token, signatures) as a dry run shows them, without
    /// their values.
    pub fn shown_per_attempt(&self) -> String {
        let mut out = String::new();
        if self.oauth.is_some() {
            out.push_str(", authorization: Bearer <oauth2 token>");
        }
        if let Some(signer) = &self.signer {
            out.push_str(&signer.shown());
        }
        if let Some(hmac) = &self.hmac {
            out.push_str(&hmac.shown());
        }
        out
    }

    /// This attempt's signatures, all at one timestamp: Standard Webhooks over the uncompressed
    /// body, the HMAC header over the bytes sent.
    fn sign(&self, headers: &mut HeaderMap, outgoing: &Outgoing) {
        let timestamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if let Some(signer) = &self.signer {
            headers.insert(WEBHOOK_TIMESTAMP, HeaderValue::from(timestamp));
            headers.insert(
                WEBHOOK_SIGNATURE,
                HeaderValue::try_from(signer.sign(
                    key_text(&outgoing.key),
                    timestamp,
                    &outgoing.content.signed,
                ))
                .expect("a signature is base64"),
            );
        }
        if let Some(hmac) = &self.hmac {
            hmac.apply(headers, timestamp, &outgoing.content.body);
        }
    }

    async fn exchange(&self, request: reqwest::Request) -> Result<Exchange, reqwest::Error> {
        let mut response = self.client.execute(request).await?;
        let status = response.status().as_u16();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let retry_after =
            header(RETRY_AFTER).and_then(|v| policy::retry_after(&v, SystemTime::now()));
        let location = header(LOCATION);
        let mut kept = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            let room = RESPONSE_KEEP.saturating_sub(kept.len());
            kept.extend_from_slice(&chunk[..room.min(chunk.len())]);
        }
        let text = if (200..300).contains(&status) {
            String::new()
        } else {
            excerpt(&crate::redact::scrub(&String::from_utf8_lossy(&kept)))
        };
        Ok(Exchange {
            outcome: Outcome::Answered {
                status,
                retry_after,
            },
            location,
            text,
        })
    }
}

fn no_answer(reason: String) -> Exchange {
    Exchange {
        outcome: Outcome::NoAnswer,
        location: None,
        text: reason,
    }
}

/// An idempotency key is URL-safe base64 behind `msg_`, so always visible ASCII.
pub fn key_text(key: &HeaderValue) -> &str {
    key.to_str().expect("idempotency keys are URL-safe base64")
}

/// The start of a response body for a message; the body is scrubbed of secrets before it is
/// cut, so a cut never leaves part of a secret behind.
fn excerpt(body: &str) -> String {
    let mut end = body.len().min(EXCERPT);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    let text = body[..end].replace(['\n', '\r'], " ");
    if text.trim().is_empty() {
        "(empty body)".into()
    } else if body.len() > end {
        format!("{text}…")
    } else {
        text
    }
}

/// A network failure in words, without the URL (it may carry credentials); a failure to connect
/// through a proxy names the proxy, which may be what is down.
fn describe_error(e: &reqwest::Error, proxy: Option<&str>) -> String {
    let mut text = if e.is_connect() {
        match proxy {
            Some(proxy) => format!("could not connect through the proxy {proxy}"),
            None => "could not connect".to_string(),
        }
    } else if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_body() || e.is_decode() {
        "the connection broke while reading the answer".to_string()
    } else {
        "the request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_is_one_line_cut_on_a_character_and_says_when_it_was_cut() {
        assert_eq!(excerpt("bad\r\nrequest"), "bad  request");
        assert_eq!(excerpt(" \n "), "(empty body)");
        assert_eq!(excerpt(""), "(empty body)");
        let exact = "x".repeat(EXCERPT);
        assert_eq!(excerpt(&exact), exact);
        assert_eq!(excerpt(&format!("{exact}y")), format!("{exact}…"));
        // 'é' is two bytes; the cut at 200 bytes would fall inside the hundredth.
        let accents = "é".repeat(150);
        assert_eq!(excerpt(&accents), format!("{}…", "é".repeat(100)));
        let shifted = format!("x{accents}");
        assert_eq!(excerpt(&shifted), format!("x{}…", "é".repeat(99)));
    }

    #[test]
    fn an_exchange_without_an_answer_has_status_0() {
        let answered = |status| Exchange {
            outcome: Outcome::Answered {
                status,
                retry_after: None,
            },
            location: None,
            text: String::new(),
        };
        assert_eq!(answered(503).status(), 503);
        assert_eq!(no_answer("timed out".into()).status(), 0);
    }
}
