//! OAuth2 client credentials (RFC 6749 §4.4): the token is fetched with one form POST on a
//! reqwest client (TLS and proxy as the endpoint's), cached, renewed ahead of `expires_in` and
//! once when the endpoint answers 401, one renewal at a time however many requests wait for it.
//! The token endpoint's 429/5xx and network failures are retried by the same policy as any
//! request ([`crate::policy::decide`]). Tokens, the client secret and token responses are never
//! shown: a token is registered as a secret the moment it arrives, and a refusal is told by its
//! `error` and `error_description` only.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{HeaderValue, AUTHORIZATION, RETRY_AFTER};
use url::form_urlencoded;
use url::Url;

use crate::config::{ClientAuth, Config, OAuth2, OnClientError};
use crate::policy::{self, Decision, Limits, Outcome};

/// Bytes of a token response read at most: a token response is small, a hostile one is not.
const ANSWER_KEEP: usize = 64 * 1024;
/// The longest a token is renewed ahead of its expiry; shorter-lived tokens are renewed when a
/// fifth of their lifetime is left.
const RENEW_AHEAD_MAX: Duration = Duration::from_secs(60);

/// Why no token could be had; never shows the token, the secret or the response body.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("auth.token_url: {0}")]
    BadUrl(String),
    #[error("auth.extra_params[{0}]: expected \"name=value\"")]
    BadParam(usize),
    #[error("the token endpoint {url} gave no token (HTTP {status}): {detail}")]
    Refused {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("the token endpoint {url} answered HTTP {status} {what}; expected JSON with an access_token")]
    Malformed {
        url: String,
        status: u16,
        what: &'static str,
    },
    #[error("could not get a token from {url}: {reason}")]
    Unreachable { url: String, reason: String },
}

impl TokenError {
    /// Whether the settings are wrong (not worth retrying later), rather than the token
    /// endpoint down or overloaded.
    pub fn is_config(&self) -> bool {
        match self {
            TokenError::Refused { status, .. } => *status < 500 && *status != 429,
            TokenError::Unreachable { .. } => false,
            _ => true,
        }
    }
}

/// `base64(urlencode(id):urlencode(secret))`: HTTP Basic client authentication as RFC 6749
/// §2.3.1 says (each part form-encoded first), a secret like the client secret.
pub fn client_credential(oauth: &OAuth2) -> String {
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    crate::endpoint::basic_credential(&encode(&oauth.client_id), &encode(&oauth.client_secret))
}

/// The token URL, if it is one a token can be fetched from.
pub fn token_url(oauth: &OAuth2) -> Result<Url, TokenError> {
    let url = Url::parse(oauth.token_url.trim()).map_err(|e| TokenError::BadUrl(e.to_string()))?;
    // An http(s) URL always has a host: the parser refuses one without.
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(TokenError::BadUrl(format!(
            "the scheme '{other}' is not supported; use http:// or https://"
        ))),
    }
}

/// The form the token request posts (`application/x-www-form-urlencoded`).
fn form(oauth: &OAuth2) -> Result<String, TokenError> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials");
    if let Some(scope) = &oauth.scope {
        form.append_pair("scope", scope);
    }
    if let Some(audience) = &oauth.audience {
        form.append_pair("audience", audience);
    }
    for (index, param) in oauth.extra_params.iter().enumerate() {
        let (name, value) = param.split_once('=').ok_or(TokenError::BadParam(index))?;
        form.append_pair(name.trim(), value.trim());
    }
    if oauth.client_auth == ClientAuth::Form {
        form.append_pair("client_id", &oauth.client_id);
        form.append_pair("client_secret", &oauth.client_secret);
    }
    Ok(form.finish())
}

/// Checks the settings as `check` and `write` do before anything is sent.
pub fn validate(oauth: &OAuth2) -> Result<(), TokenError> {
    token_url(oauth)?;
    form(oauth).map(drop)
}

/// A token as requests send it, and when to renew it.
#[derive(Clone)]
struct Token {
    header: HeaderValue,
    renew_at: Option<Instant>,
}

impl Token {
    fn fresh(&self, now: Instant) -> bool {
        self.renew_at.is_none_or(|at| now < at)
    }
}

/// When a token that lives `lifetime` from `now` is renewed: a fifth of its life (at most a
/// minute) before it expires, so no request goes out with a token about to lapse.
fn renew_at(now: Instant, lifetime: Duration) -> Instant {
    now + lifetime - (lifetime / 5).min(RENEW_AHEAD_MAX)
}

/// The run's token: fetched when needed, shared by every request.
pub struct TokenSource {
    client: reqwest::Client,
    url: Url,
    /// The URL as messages show it.
    shown: String,
    form: String,
    basic: Option<HeaderValue>,
    limits: Limits,
    timeout: Duration,
    cached: Mutex<Option<Token>>,
    /// Held while a token is fetched: one fetch at a time, the others wait for its token.
    renewal: tokio::sync::Mutex<()>,
}

impl TokenSource {
    /// `None` when the config's auth is not OAuth2.
    pub fn from_config(config: &Config) -> Result<Option<TokenSource>, String> {
        let crate::config::Auth::Oauth2ClientCredentials(oauth) = &config.auth else {
            return Ok(None);
        };
        let url = token_url(oauth).map_err(|e| e.to_string())?;
        let basic = (oauth.client_auth == ClientAuth::Basic)
            .then(|| crate::endpoint::basic_header(&client_credential(oauth)));
        Ok(Some(TokenSource {
            client: client(config)?,
            shown: crate::redact::shown_url(url.as_str()),
            url,
            form: form(oauth).map_err(|e| e.to_string())?,
            basic,
            limits: Limits {
                max_retries: config.max_retries(),
                on_client_error: OnClientError::Fail,
            },
            timeout: config.timeout(),
            cached: Mutex::new(None),
            renewal: tokio::sync::Mutex::new(()),
        }))
    }

    fn cached(&self) -> Option<Token> {
        self.cached
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The `Authorization` value to send now: the cached token while it is fresh, else a new one.
    pub async fn header(&self) -> Result<HeaderValue, TokenError> {
        match self.cached() {
            Some(token) if token.fresh(Instant::now()) => Ok(token.header),
            _ => self.renew(|token| !token.fresh(Instant::now())).await,
        }
    }

    /// A new token after `stale` was answered 401, unless another request already renewed it.
    pub async fn after_401(&self, stale: &HeaderValue) -> Result<HeaderValue, TokenError> {
        self.renew(|token| token.header == stale).await
    }

    /// Fetches a token if the cached one (if any) is `outdated`, one fetch at a time: who waited
    /// for the lock takes the token the fetch before it got.
    async fn renew(&self, outdated: impl Fn(&Token) -> bool) -> Result<HeaderValue, TokenError> {
        let _turn = self.renewal.lock().await;
        if let Some(token) = self.cached().filter(|t| !outdated(t)) {
            return Ok(token.header);
        }
        let token = self.fetch().await?;
        *self.cached.lock().unwrap_or_else(PoisonError::into_inner) = Some(token.clone());
        Ok(token.header)
    }

    /// Token requests until one is answered for good, retried as any request is.
    async fn fetch(&self) -> Result<Token, TokenError> {
        let mut attempt = 0;
        loop {
            let (outcome, answer) = match self.post().await {
                Ok((status, retry_after, body)) => (
                    Outcome::Answered {
                        status,
                        retry_after,
                    },
                    Ok((status, body)),
                ),
                Err(reason) => (Outcome::NoAnswer, Err(reason)),
            };
            match policy::decide(outcome, attempt, 1, self.limits, rand::random::<f64>) {
                Decision::Retry { after, .. } => tokio::time::sleep(after).await,
                _ => return self.read(answer),
            }
            attempt += 1;
        }
    }

    /// One token request: the status, `Retry-After` and the start of the body, or why there was
    /// no answer.
    async fn post(&self) -> Result<(u16, Option<Duration>, Vec<u8>), String> {
        let mut request = self
            .client
            .post(self.url.clone())
            .timeout(self.timeout)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(self.form.clone());
        if let Some(basic) = &self.basic {
            request = request.header(AUTHORIZATION, basic.clone());
        }
        let failed = |e: reqwest::Error| e.without_url().to_string();
        let mut response = request.send().await.map_err(failed)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| policy::retry_after(v, SystemTime::now()));
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            let room = ANSWER_KEEP.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..room.min(chunk.len())]);
        }
        Ok((status, retry_after, body))
    }

    /// The token in a final answer, or why there is none.
    fn read(&self, answer: Result<(u16, Vec<u8>), String>) -> Result<Token, TokenError> {
        let url = self.shown.clone();
        let (status, body) = answer.map_err(|reason| TokenError::Unreachable {
            url: url.clone(),
            reason,
        })?;
        let parsed = serde_json::from_slice::<serde_json::Value>(&body).ok();
        if !(200..300).contains(&status) {
            return Err(refusal(url, status, parsed.as_ref()));
        }
        let malformed = |what| TokenError::Malformed {
            url: url.clone(),
            status,
            what,
        };
        let parsed = parsed.ok_or_else(|| malformed("with a body that is not JSON"))?;
        let access_token = parsed["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| malformed("without an access_token"))?;
        crate::redact::register([access_token.to_string()]);
        let mut header = HeaderValue::try_from(format!("Bearer {access_token}"))
            .map_err(|_| malformed("with an access_token that cannot be sent in a header"))?;
        header.set_sensitive(true);
        let now = Instant::now();
        Ok(Token {
            header,
            renew_at: expires_in(&parsed).map(|lifetime| renew_at(now, lifetime)),
        })
    }
}

/// `expires_in` as a number of seconds, or as its text (some servers quote it); `None` when it is
/// absent (the token is then used until it is answered 401).
fn expires_in(answer: &serde_json::Value) -> Option<Duration> {
    let seconds = match &answer["expires_in"] {
        serde_json::Value::String(text) => text.trim().parse::<f64>().ok(),
        other => other.as_f64(),
    }?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(1e9)))
}

/// A refusal in the token endpoint's own words (`error`, `error_description`, RFC 6749 §5.2).
fn refusal(url: String, status: u16, answer: Option<&serde_json::Value>) -> TokenError {
    let field = |name: &str| {
        answer
            .and_then(|a| a[name].as_str())
            .map(|s| crate::redact::scrub(s).into_owned())
    };
    let detail = match (field("error"), field("error_description")) {
        (Some(error), Some(description)) => format!("{error}: {description}"),
        (Some(error), None) => error,
        _ => "no OAuth2 error in the answer".to_string(),
    };
    TokenError::Refused {
        url,
        status,
        detail,
    }
}

/// The token endpoint's client: the endpoint's TLS settings, no redirects, and the configured
/// proxy (or the environment's), since a corporate proxy is usually in the way of both.
fn client(config: &Config) -> Result<reqwest::Client, String> {
    let tls = crate::tls::client_config(config.tls.as_ref()).map_err(|e| e.to_string())?;
    let mut client = reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(crate::headers::user_agent());
    if let Some(proxy) = &config.proxy {
        client = client.proxy(proxy.for_client()?);
    }
    client
        .build()
        .map_err(|e| format!("could not build the token client: {}", e.without_url()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn oauth(extra: serde_json::Value) -> OAuth2 {
        let mut v = json!({"token_url": "https://auth.example/token", "client_id": "id:1",
            "client_secret": "s&cret"});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_form_carries_the_grant_and_what_is_configured() {
        let basic = oauth(
            json!({"scope": "a b", "audience": "https://api", "extra_params": ["resource = r"]}),
        );
        assert_eq!(
            form(&basic).unwrap(),
            "grant_type=client_credentials&scope=a+b&audience=https%3A%2F%2Fapi&resource=r"
        );
        let in_form = oauth(json!({"client_auth": "form"}));
        assert_eq!(
            form(&in_form).unwrap(),
            "grant_type=client_credentials&client_id=id%3A1&client_secret=s%26cret"
        );
        assert_eq!(
            form(&oauth(json!({"extra_params": ["x=1", "nothing"]}))),
            Err(TokenError::BadParam(1))
        );
    }

    #[test]
    fn basic_client_authentication_form_encodes_each_part_first() {
        // RFC 6749 §2.3.1: "id:1" and "s&cret" are form-encoded, then joined by ':'.
        assert_eq!(client_credential(&oauth(json!({}))), "aWQlM0ExOnMlMjZjcmV0");
    }

    #[test]
    fn only_http_and_https_token_urls() {
        assert!(token_url(&oauth(json!({}))).is_ok());
        for (url, says) in [
            ("ftp://auth/token", "scheme 'ftp'"),
            ("not a url", "relative URL"),
            ("https://", "empty host"),
        ] {
            let e = token_url(&oauth(json!({ "token_url": url })))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("auth.token_url: ") && e.contains(says), "{e}");
        }
    }

    #[test]
    fn tokens_are_renewed_a_fifth_of_their_life_early_at_most_a_minute() {
        let now = Instant::now();
        assert_eq!(
            renew_at(now, Duration::from_secs(10)),
            now + Duration::from_secs(8)
        );
        assert_eq!(
            renew_at(now, Duration::from_secs(3600)),
            now + Duration::from_secs(3540)
        );
        assert_eq!(
            expires_in(&json!({"expires_in": "30"})),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            expires_in(&json!({"expires_in": 2})),
            Some(Duration::from_secs(2))
        );
        assert_eq!(expires_in(&json!({})), None);
        // A negative or non-finite lifetime is no lifetime: the token is used until a 401.
        assert_eq!(expires_in(&json!({"expires_in": -5})), None);
        assert_eq!(expires_in(&json!({"expires_in": "NaN"})), None);
    }

    #[test]
    fn a_refusal_is_told_in_the_endpoints_words() {
        let e = refusal(
            "https://auth/token".into(),
            401,
            Some(
                &json!({"error": "invalid_client", "error_description": "Client authentication failed"}),
            ),
        );
        assert_eq!(
            e.to_string(),
            "the token endpoint https://auth/token gave no token (HTTP 401): invalid_client: Client authentication failed"
        );
        assert!(refusal("u".into(), 400, None)
            .to_string()
            .contains("no OAuth2 error"));
        assert!(
            refusal("u".into(), 400, Some(&json!({"error": "invalid_scope"})))
                .to_string()
                .ends_with("(HTTP 400): invalid_scope")
        );
    }

    #[test]
    fn a_refusal_below_500_other_than_429_is_the_settings_fault() {
        let refused = |status| TokenError::Refused {
            url: "u".into(),
            status,
            detail: String::new(),
        };
        for status in [400, 401, 403, 404, 499] {
            assert!(refused(status).is_config(), "{status}");
        }
        for status in [429, 500, 502, 503] {
            assert!(!refused(status).is_config(), "{status}");
        }
        let unreachable = TokenError::Unreachable {
            url: "u".into(),
            reason: "refused".into(),
        };
        assert!(!unreachable.is_config());
        let malformed = TokenError::Malformed {
            url: "u".into(),
            status: 200,
            what: "with a body that is not JSON",
        };
        assert!(malformed.is_config());
        assert!(TokenError::BadUrl(String::new()).is_config());
    }

    #[test]
    fn a_token_is_fresh_until_its_renewal_time() {
        let now = Instant::now();
        let token = |renew_at| Token {
            header: HeaderValue::from_static("Bearer t"),
            renew_at,
        };
        assert!(token(None).fresh(now + Duration::from_secs(86_400)));
        let due = token(Some(now + Duration::from_secs(1)));
        assert!(due.fresh(now));
        assert!(!due.fresh(now + Duration::from_secs(1)));
        assert!(!due.fresh(now + Duration::from_secs(2)));
    }
}
