//! An OAuth2 client-credentials token endpoint (RFC 6749 §4.4) at `/token`, and bearer-token
//! checking on every other path: what a connector that fetches, caches and refreshes tokens is
//! tested against.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hyper::header::AUTHORIZATION;
use hyper::HeaderMap;

use crate::script::Reply;

/// How the token endpoint behaves.
#[derive(Clone, Debug)]
pub struct TokenEndpoint {
    pub client_id: String,
    pub client_secret: String,
    /// Each token's lifetime, sent as `expires_in`; `None` leaves `expires_in` out and tokens
    /// never expire.
    pub lifetime: Option<Duration>,
    /// The first this-many token requests are answered 503 (the endpoint is having trouble).
    pub fail_first: usize,
    /// How long tokens really hold when it is shorter than `lifetime` says (a server whose
    /// tokens expire early, or whose clock runs ahead).
    pub expire_after: Option<Duration>,
}

/// The tokens issued so far and which of them still hold.
pub(crate) struct Tokens {
    endpoint: TokenEndpoint,
    state: Mutex<Issued>,
}

#[derive(Default)]
struct Issued {
    /// Each token with when it stops holding (`None`: never).
    tokens: Vec<(String, Option<Instant>)>,
    /// Tokens before this index were revoked.
    revoked_before: usize,
    requests: usize,
}

impl Tokens {
    pub(crate) fn new(endpoint: TokenEndpoint) -> Tokens {
        Tokens {
            endpoint,
            state: Mutex::new(Issued::default()),
        }
    }

    /// The answer to a request to `/token`, or to one elsewhere without a valid bearer token;
    /// `None` lets the request through to the script.
    pub(crate) fn intercept(&self, path: &str, headers: &HeaderMap, body: &[u8]) -> Option<Reply> {
        if path.split('?').next() == Some("/token") {
            return Some(self.token_request(headers, body));
        }
        let sent = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let valid = state.tokens[state.revoked_before..]
            .iter()
            .any(|(token, until)| {
                Some(token.as_str()) == sent && until.is_none_or(|u| Instant::now() < u)
            });
        (!valid).then(|| {
            let mut reply = json_reply(401, r#"{"error":"invalid_token"}"#);
            reply.headers.push((
                "www-authenticate".into(),
                r#"Bearer error="invalid_token""#.into(),
            ));
            reply
        })
    }

    /// Every token issued so far stops holding, as when an authorization server revokes them.
    pub(crate) fn revoke_all(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.revoked_before = state.tokens.len();
    }

    fn token_request(&self, headers: &HeaderMap, body: &[u8]) -> Reply {
        let form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.requests += 1;
        if state.requests <= self.endpoint.fail_first {
            return json_reply(503, r#"{"error":"temporarily_unavailable"}"#);
        }
        if field("grant_type") != Some("client_credentials") {
            return json_reply(400, r#"{"error":"unsupported_grant_type"}"#);
        }
        let client = basic_client(headers).or_else(|| {
            Some((
                field("client_id")?.to_string(),
                field("client_secret")?.to_string(),
            ))
        });
        let expected = (
            self.endpoint.client_id.clone(),
            self.endpoint.client_secret.clone(),
        );
        if client != Some(expected) {
            return json_reply(
                401,
                r#"{"error":"invalid_client","error_description":"Client authentication failed"}"#,
            );
        }
        let token = format!("receiver-token-{}", state.tokens.len() + 1);
        let holds = self.endpoint.expire_after.or(self.endpoint.lifetime);
        let until = holds.map(|l| Instant::now() + l);
        state.tokens.push((token.clone(), until));
        let mut answer = serde_json::json!({"access_token": token, "token_type": "Bearer"});
        if let Some(lifetime) = self.endpoint.lifetime {
            answer["expires_in"] = lifetime.as_secs().into();
        }
        json_reply(200, &answer.to_string())
    }
}

/// Client credentials in HTTP Basic, form-urlencoded before base64 as RFC 6749 §2.3.1 says.
fn basic_client(headers: &HeaderMap) -> Option<(String, String)> {
    let encoded = headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

fn json_reply(status: u16, body: &str) -> Reply {
    let mut reply = Reply::status(status);
    reply.body = body.to_string();
    reply
        .headers
        .push(("content-type".into(), "application/json".into()));
    reply
}
