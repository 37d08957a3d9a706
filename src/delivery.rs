//! Sending requests: one attempt after another until the endpoint gives an answer the policy
//! settles on, with backoff, `Retry-After`, an endpoint-wide pause on 429/503, an optional rate
//! limit, and batch splitting to isolate the records an endpoint refuses.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderValue, CONTENT_ENCODING, LOCATION, RETRY_AFTER};

use crate::ack::{Ack, Acks};
use crate::config::{Compression, Config, Method, OnClientError};
use crate::dialect::Request;
use crate::headers::{IDEMPOTENCY_KEY, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP};
use crate::metrics::Metrics;
use crate::ordering::Group;
use crate::policy::{self, Class};
use crate::protocol::{log, FailureType, Fatal, Level, Message};
use crate::redact::Scrubber;
use crate::rejection::Rejection;
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

pub struct Deliverer {
    client: reqwest::Client,
    method: reqwest::Method,
    get: bool,
    /// The endpoint without credentials (they travel as the auth header); also what messages
    /// show.
    url: reqwest::Url,
    signer: Option<Signer>,
    gzip: bool,
    /// `batch_size` > 1: bodies are always JSON arrays.
    batched: bool,
    max_retries: u32,
    timeout: Duration,
    on_client_error: OnClientError,
    scrubber: Scrubber,
    limiter: Option<DefaultDirectRateLimiter>,
    paused_until: Cell<Option<Instant>>,
    dry_run: bool,
    /// The static headers as a dry run shows them, credentials redacted.
    shown_headers: String,
    /// Messages produced while delivering (retries, dry-run requests), drained by the write loop.
    logs: RefCell<Vec<Message>>,
    pub metrics: Metrics,
}

/// A record's request with its place in the write loop's window.
#[derive(Debug)]
pub struct Job {
    pub seq: u64,
    pub order_key: Option<u64>,
    pub request: Request,
}

/// A group of records and what became of them, or a reason to stop.
pub struct Settled {
    pub jobs: Group<Job>,
    pub result: Result<Acks, Fatal>,
}

/// One request as every attempt sends it.
struct Outgoing {
    /// GET only: the endpoint with the record's query; other methods send to the endpoint.
    url: Option<reqwest::Url>,
    /// The bytes on the wire (gzip-compressed when configured).
    body: Bytes,
    /// The bytes the signature covers: the uncompressed body; empty for GET.
    signed: Bytes,
    key: HeaderValue,
}

/// How one attempt ended.
enum Attempt {
    Answered {
        status: u16,
        retry_after: Option<Duration>,
        location: Option<String>,
        excerpt: String,
    },
    Failed(String),
    /// The TLS handshake failed for a reason that will not pass by retrying (untrusted
    /// certificate, client certificate refused).
    Tls(String),
}

/// What a whole request (all its attempts) came to, short of a fatal stop.
enum Answer {
    Delivered,
    Refused { status: u16, excerpt: String },
}

impl Deliverer {
    pub fn new(config: &Config, dry_run: bool) -> Result<Self, String> {
        let tls = crate::tls::client_config(config.tls.as_ref()).map_err(|e| e.to_string())?;
        let headers = crate::headers::static_headers(config).map_err(|e| e.to_string())?;
        let shown_headers = crate::headers::shown(&headers);
        let concurrency = config.concurrency as usize;
        // Credentials in the URL become the auth header (headers.rs); left in the URL, the
        // client would send them as a second, competing Authorization header.
        let url = config.url.url().clone();
        let mut client = reqwest::Client::builder();
        if !proxied(&url) {
            client = client.no_proxy();
        }
        let client = client
            .use_preconfigured_tls((*tls).clone())
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .pool_max_idle_per_host(concurrency.max(1))
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .http1_only()
            .build()
            .map_err(|e| format!("could not build the HTTP client: {}", e.without_url()))?;
        let limiter = config
            .rate_limit_per_second
            .filter(|r| *r > 0.0)
            .and_then(|r| Quota::with_period(Duration::from_secs_f64(1.0 / r)))
            .map(RateLimiter::direct);
        Ok(Deliverer {
            client,
            method: reqwest::Method::from_bytes(config.method.as_str().as_bytes())
                .expect("known method"),
            get: config.method == Method::Get,
            url,
            signer: config.signing_secret.as_deref().map(Signer::new),
            gzip: config.compression == Compression::Gzip && config.method != Method::Get,
            batched: config.batch_size > 1 && config.method != Method::Get,
            max_retries: config.max_retries(),
            timeout: config.timeout(),
            on_client_error: config.on_client_error,
            scrubber: Scrubber::new(config.secrets()),
            limiter,
            paused_until: Cell::new(None),
            dry_run,
            shown_headers,
            logs: RefCell::new(Vec::new()),
            metrics: Metrics::default(),
        })
    }

    pub fn take_logs(&self) -> Vec<Message> {
        std::mem::take(&mut self.logs.borrow_mut())
    }

    /// When the endpoint asked everyone to wait (429/503), until when.
    pub fn paused_until(&self) -> Option<Instant> {
        self.paused_until.get().filter(|t| *t > Instant::now())
    }

    pub async fn deliver(&self, jobs: Group<Job>) -> Settled {
        let result = self.deliver_group(&jobs).await;
        Settled { jobs, result }
    }

    /// Only a split batch recurses, so only a split batch pays for boxing its halves.
    async fn deliver_group(&self, jobs: &[Job]) -> Result<Acks, Fatal> {
        match self.send(jobs).await? {
            Answer::Delivered => Ok(Acks::All(Ack::Delivered)),
            Answer::Refused { status, .. } if jobs.len() > 1 && policy::splits_batch(status) => {
                let (left, right) = jobs.split_at(jobs.len() / 2);
                let mut acks = Box::pin(self.deliver_group(left))
                    .await?
                    .into_vec(left.len());
                acks.extend(
                    Box::pin(self.deliver_group(right))
                        .await?
                        .into_vec(right.len()),
                );
                Ok(Acks::Each(acks))
            }
            Answer::Refused { status, excerpt } => match self.on_client_error {
                OnClientError::Reject => {
                    Ok(Acks::All(Ack::Rejected(Rejection::Refused { status, excerpt })))
                }
                OnClientError::Fail => Err(Fatal::new(
                    FailureType::ConfigError,
                    format!("{} was refused by {} with HTTP {status} (on_client_error is \"fail\"): {excerpt}", jobs[0].request.label, self.url),
                    format!("status={status} records={}", jobs.len()),
                )),
            },
        }
    }

    /// The request for a group: one envelope (`batch_size` 1), or an array of them (even of one,
    /// when batching: a receiver expecting arrays gets arrays); GET carries its query.
    fn request_parts(&self, jobs: &[Job]) -> (Bytes, HeaderValue) {
        if let ([job], false) = (jobs, self.batched) {
            return (
                job.request.body.clone(),
                job.request.idempotency_key.clone(),
            );
        }
        let body = crate::envelope::batch_body(jobs.iter().map(|j| &j.request.body[..]));
        let key =
            crate::idempotency::batch(jobs.iter().map(|j| j.request.idempotency_key.as_bytes()));
        (
            Bytes::from(body),
            HeaderValue::from_str(key.as_str()).expect("idempotency keys are URL-safe base64"),
        )
    }

    /// Everything an attempt sends, built once per request and reused by its retries.
    fn outgoing(&self, jobs: &[Job]) -> Result<Outgoing, Fatal> {
        let (payload, key) = self.request_parts(jobs);
        if self.get {
            let full =
                crate::flatten::append_query(self.url.as_str(), &String::from_utf8_lossy(&payload));
            let url = reqwest::Url::parse(&full).map_err(|e| {
                Fatal::new(
                    FailureType::SystemError,
                    format!("{}: could not build the GET URL", jobs[0].request.label),
                    e.to_string(),
                )
            })?;
            return Ok(Outgoing {
                url: Some(url),
                body: Bytes::new(),
                signed: Bytes::new(),
                key,
            });
        }
        // A gzip body is signed uncompressed: receivers verify the body their framework hands
        // them, which is decompressed, and Standard Webhooks libraries require UTF-8.
        let body = if self.gzip {
            gzip(&payload)
        } else {
            payload.clone()
        };
        Ok(Outgoing {
            url: None,
            body,
            signed: payload,
            key,
        })
    }

    async fn send(&self, jobs: &[Job]) -> Result<Answer, Fatal> {
        let outgoing = self.outgoing(jobs)?;
        if self.dry_run {
            self.log_dry_run(&outgoing);
            return Ok(Answer::Delivered);
        }
        let label = jobs[0].request.label;
        let mut attempt = 0u32;
        loop {
            self.wait_turn().await;
            let started = Instant::now();
            let outcome = self.attempt(&outgoing, started).await;
            self.metrics.record_request(started.elapsed());
            let (reason, retry_after, pause) = match outcome {
                Attempt::Answered { status, retry_after, location, excerpt } => match policy::classify(status) {
                    Class::Delivered => return Ok(Answer::Delivered),
                    Class::ClientError => return Ok(Answer::Refused { status, excerpt }),
                    Class::Redirect => {
                        let to = location
                            .map(|l| match self.url.join(&l) {
                                Ok(absolute) => crate::redact::url_without_credentials(absolute.as_str()),
                                Err(_) => format!("{l:?} (not a valid URL)"),
                            })
                            .unwrap_or_else(|| "nowhere (no Location header)".into());
                        return Err(Fatal::new(
                            FailureType::ConfigError,
                            format!("{} answered HTTP {status} to {label}, redirecting to {to}; redirects are not followed (a POST would turn into a GET, credentials would travel): set url to the final address", self.url),
                            format!("{label} status={status}"),
                        ));
                    }
                    Class::Unauthorized => {
                        return Err(Fatal::new(
                            FailureType::ConfigError,
                            format!("{} refused the credentials with HTTP {status} for {label}: check auth and headers. Response: {excerpt}", self.url),
                            format!("status={status}"),
                        ))
                    }
                    Class::Retry { pause_endpoint } => (format!("HTTP {status} {excerpt}"), retry_after, pause_endpoint),
                },
                Attempt::Failed(reason) => (reason, None, false),
                Attempt::Tls(reason) => {
                    return Err(Fatal::new(
                        FailureType::ConfigError,
                        format!("{}: {reason}", self.url),
                        format!("{label}"),
                    ))
                }
            };
            if attempt >= self.max_retries {
                return Err(Fatal::new(
                    FailureType::TransientError,
                    format!(
                        "gave up on {label} after {} attempts to {}: {}",
                        attempt + 1,
                        self.url,
                        reason.trim()
                    ),
                    format!("max_retries={}", self.max_retries),
                ));
            }
            let delay =
                retry_after.unwrap_or_else(|| policy::backoff(attempt, rand::random::<f64>()));
            if pause {
                let until = Instant::now() + delay;
                if self.paused_until.get().is_none_or(|t| t < until) {
                    self.paused_until.set(Some(until));
                }
            }
            self.metrics.record_retry();
            self.logs.borrow_mut().push(log(
                Level::Info,
                &format!(
                    "retrying {label} in {:.1}s (attempt {} of {}): {}",
                    delay.as_secs_f64(),
                    attempt + 2,
                    self.max_retries + 1,
                    reason.trim()
                ),
            ));
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// Waits out an endpoint-wide pause and the rate limit before an attempt starts.
    async fn wait_turn(&self) {
        while let Some(until) = self.paused_until() {
            tokio::time::sleep_until(until.into()).await;
        }
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
    }

    /// One request, given up on `timeout` after `started` (the same clock reading the latency
    /// metric starts from).
    async fn attempt(&self, outgoing: &Outgoing, started: Instant) -> Attempt {
        let url = outgoing.url.as_ref().unwrap_or(&self.url);
        let mut request = reqwest::Request::new(self.method.clone(), url.clone());
        // Room for these and the client's default headers, merged in when it is sent, so the
        // map is allocated once.
        let headers = request.headers_mut();
        headers.reserve(HEADER_ROOM);
        headers.insert(IDEMPOTENCY_KEY, outgoing.key.clone());
        headers.insert(WEBHOOK_ID, outgoing.key.clone());
        if let Some(signer) = &self.signer {
            let timestamp = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            headers.insert(WEBHOOK_TIMESTAMP, HeaderValue::from(timestamp));
            headers.insert(
                WEBHOOK_SIGNATURE,
                HeaderValue::try_from(signer.sign(
                    key_text(&outgoing.key),
                    timestamp,
                    &outgoing.signed,
                ))
                .expect("a signature is base64"),
            );
        }
        if self.gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        if !self.get {
            *request.body_mut() = Some(outgoing.body.clone().into());
        }
        let exchange = async {
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
            Ok::<_, reqwest::Error>((status, retry_after, location, kept))
        };
        let deadline = tokio::time::Instant::from_std(started + self.timeout);
        match tokio::time::timeout_at(deadline, exchange).await {
            Err(_) => Attempt::Failed(format!(
                "no complete answer within {}s",
                self.timeout.as_secs_f64()
            )),
            Ok(Err(e)) => match crate::tls::explain(&e) {
                Some(reason) => Attempt::Tls(reason),
                None => Attempt::Failed(self.scrubber.scrub(&describe_error(&e)).into_owned()),
            },
            Ok(Ok((status, retry_after, location, kept))) => {
                let excerpt = if (200..300).contains(&status) {
                    String::new()
                } else {
                    excerpt(&self.scrubber.scrub(&String::from_utf8_lossy(&kept)))
                };
                Attempt::Answered {
                    status,
                    retry_after,
                    location,
                    excerpt,
                }
            }
        }
    }

    fn log_dry_run(&self, outgoing: &Outgoing) {
        let url = crate::redact::url_without_credentials(
            outgoing.url.as_ref().unwrap_or(&self.url).as_str(),
        );
        let signature = if self.signer.is_some() {
            ", webhook-timestamp: <now>, webhook-signature: v1,<hmac>"
        } else {
            ""
        };
        let encoding = if self.gzip {
            ", content-encoding: gzip (body shown uncompressed)"
        } else {
            ""
        };
        let message = format!(
            "dry run: {} {url} headers: {}, idempotency-key: {key}, webhook-id: {key}{signature}{encoding} body: {}",
            self.method,
            self.shown_headers,
            String::from_utf8_lossy(&outgoing.signed),
            key = key_text(&outgoing.key),
        );
        self.logs
            .borrow_mut()
            .push(log(Level::Info, &self.scrubber.scrub(&message)));
    }
}

/// Whether the environment's proxy settings (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`,
/// read by the matcher reqwest itself uses) send requests for `url` through a proxy. The
/// endpoint's scheme and host are the same for every request of a run, so when they do not, the
/// client is built without proxy support: the same requests, without matching each one against
/// the environment's proxies twice (a per-request cost of the default client).
fn proxied(url: &reqwest::Url) -> bool {
    url.as_str().parse::<http::Uri>().map_or(true, |uri| {
        hyper_util::client::proxy::matcher::Matcher::from_system()
            .intercept(&uri)
            .is_some()
    })
}

/// An idempotency key is URL-safe base64 behind `msg_`, so always visible ASCII.
fn key_text(key: &HeaderValue) -> &str {
    key.to_str().expect("idempotency keys are URL-safe base64")
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

/// A network failure in words, without the URL (it may carry credentials).
fn describe_error(e: &reqwest::Error) -> String {
    let mut text = if e.is_connect() {
        "could not connect".to_string()
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
