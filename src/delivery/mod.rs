//! Sending requests: one attempt after another (`exchange.rs`) until the [`policy`] settles on
//! the answer, paced by the endpoint's pauses and the rate limit (`pacing.rs`), with batches split
//! to isolate the records an endpoint refuses. Stops become a [`Failure`]; what is worth telling
//! on the way becomes a [`Notice`].
//!
//! [`policy`]: crate::policy

mod client;
mod exchange;
mod limit;
mod notice;
mod pacing;

use std::cell::RefCell;
use std::time::{Duration, Instant};

use reqwest::header::HeaderValue;

pub use client::{build as build_client, proxy_for, Proxy};
pub use notice::Notice;

use crate::ack::{Ack, Acks};
use crate::config::{Config, OnClientError};
use crate::dialect::RecordLabel;
use crate::dialect::Request;
use crate::failure::Failure;
use crate::hmac_header::HeaderSigner;
use crate::metrics::Metrics;
use crate::oauth::{TokenError, TokenSource};
use crate::ordering::Group;
use crate::policy::{self, Decision, Limits, Outcome, Stop};
use crate::rejection::Rejection;
use crate::shape::Shape;
use crate::signals::Signals;
use crate::signing::Signer;
use crate::template::{BatchTemplate, RenderError};
use exchange::{key_text, Exchange, Outgoing, Sender};
use limit::Limit;
use pacing::Pacing;

/// A record's request with its place in the write loop's window.
#[derive(Debug)]
pub struct Job {
    pub seq: u64,
    pub order_key: Option<u64>,
    pub request: Request,
}

/// A group of records and what became of them, or why the sync must stop.
pub struct Settled {
    pub jobs: Group<Job>,
    pub result: Result<Acks, Failure>,
}

/// What a whole request (all its attempts) came to, short of a stop.
enum Answer {
    Delivered,
    Split,
    Rejected(Rejection),
}

pub struct Deliverer {
    sender: Sender,
    /// The endpoint as messages show it (`redact::shown_url`): no credential-like query values.
    shown_endpoint: String,
    shape: Shape,
    /// `request.batch_body`, which frames a batch instead of the JSON array.
    batch_template: Option<BatchTemplate>,
    limits: Limits,
    pacing: Pacing,
    /// Requests in flight at most, adapted to the endpoint's answers (`concurrency` is its cap).
    pub limit: Limit,
    /// A dry run: the static headers as it shows them, credentials redacted.
    dry_run: Option<String>,
    notices: RefCell<Vec<Notice>>,
    pub metrics: Metrics,
}

impl Deliverer {
    pub fn new(config: &Config, dry_run: bool) -> Result<Self, String> {
        let shape = Shape::of(config);
        let shown_headers = crate::headers::static_headers(config, shape)
            .map(|headers| crate::headers::shown(&headers))
            .map_err(|e| e.to_string())?;
        let proxy = proxy_for(config).map_err(|e| e.to_string())?;
        let sender = Sender {
            client: build_client(config, shape, proxy.as_ref())?,
            proxy: proxy.map(|p| p.shown),
            method: reqwest::Method::from_bytes(config.method.as_str().as_bytes())
                .expect("known method"),
            endpoint: config.url.url().clone(),
            signer: Signer::from_config(config).map_err(|e| e.to_string())?,
            hmac: config
                .hmac_signature
                .as_ref()
                .map(HeaderSigner::new)
                .transpose()
                .map_err(|e| e.to_string())?,
            oauth: TokenSource::from_config(config)?,
            content_encoding: shape.content_encoding(),
            timeout: config.timeout(),
        };
        Ok(Deliverer {
            shown_endpoint: crate::redact::shown_url(config.url.url().as_str()),
            sender,
            shape,
            batch_template: config
                .request
                .as_ref()
                .and_then(|r| r.batch_body.as_deref())
                .map(BatchTemplate::compile)
                .transpose()
                .map_err(|e| e.to_string())?,
            limits: Limits {
                max_retries: config.max_retries(),
                on_client_error: config.on_client_error,
            },
            pacing: Pacing::new(config.rate_limit_per_second),
            limit: Limit::new(config.concurrency, config.url.url().scheme() == "https"),
            dry_run: dry_run.then_some(shown_headers),
            notices: RefCell::new(Vec::new()),
            metrics: Metrics::default(),
        })
    }

    /// Gets the OAuth2 token (when configured) before the first record, so settings the token
    /// endpoint refuses stop the sync before anything is sent. A dry run sends nothing, to the
    /// token endpoint either.
    pub async fn authorize(&self) -> Result<(), TokenError> {
        match (&self.sender.oauth, &self.dry_run) {
            (Some(tokens), None) => tokens.header().await.map(drop),
            _ => Ok(()),
        }
    }

    /// A record its templates cannot render: rejected, or under `on_client_error: fail` the
    /// sync's stop (it is never sent half-rendered either way).
    pub fn unrenderable(
        &self,
        label: RecordLabel,
        reason: RenderError,
    ) -> Result<Rejection, Failure> {
        match self.limits.on_client_error {
            OnClientError::Reject => Ok(Rejection::Template(reason)),
            OnClientError::Fail => Err(Failure::Unrenderable { label, reason }),
        }
    }

    /// What happened since the last call that is worth a LOG line.
    pub fn take_notices(&self) -> Vec<Notice> {
        std::mem::take(&mut self.notices.borrow_mut())
    }

    /// When the endpoint asked everyone to wait (429/503), until when.
    pub fn paused_until(&self) -> Option<Instant> {
        self.pacing.paused_until()
    }

    /// Sends a group of records, unless a signal came first: a request launched just before a
    /// signal but not yet on its way (the loop was blocked writing stdout) is not sent at all,
    /// and its records stay unsettled.
    pub async fn deliver(&self, jobs: Group<Job>, signals: &Signals) -> Settled {
        let result = match signals.received() {
            Some(_) => Err(Failure::Unsent),
            None => self.deliver_group(&jobs).await,
        };
        Settled { jobs, result }
    }

    /// Only a split batch recurses, so only a split batch pays for boxing its halves.
    async fn deliver_group(&self, jobs: &[Job]) -> Result<Acks, Failure> {
        match self.send(jobs).await? {
            Answer::Delivered => Ok(Acks::All(Ack::Delivered)),
            Answer::Rejected(reason) => Ok(Acks::All(Ack::Rejected(reason))),
            Answer::Split => {
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
        }
    }

    /// Everything an attempt sends, built once per request and reused by its retries; `Err`
    /// when the batch template cannot be rendered for these records.
    fn outgoing(&self, jobs: &[Job]) -> Result<Outgoing, RenderError> {
        let content = self.shape.content(
            jobs.iter().map(|j| &j.request.payload),
            self.batch_template.as_ref(),
        )?;
        let key = match (jobs, self.shape) {
            ([job], Shape::Json { batched: false, .. } | Shape::Query) => {
                job.request.idempotency_key.clone()
            }
            _ => {
                let key = crate::idempotency::batch(
                    jobs.iter().map(|j| j.request.idempotency_key.as_bytes()),
                );
                HeaderValue::from_str(key.as_str()).expect("idempotency keys are URL-safe base64")
            }
        };
        Ok(Outgoing { content, key })
    }

    /// Attempts until the policy settles; only the mechanics are here.
    async fn send(&self, jobs: &[Job]) -> Result<Answer, Failure> {
        let outgoing = match self.outgoing(jobs) {
            Ok(outgoing) => outgoing,
            Err(e) => {
                return self
                    .unrenderable(jobs[0].request.label, e)
                    .map(Answer::Rejected)
            }
        };
        if let Some(headers) = &self.dry_run {
            self.show(&outgoing, headers);
            return Ok(Answer::Delivered);
        }
        let mut attempt = 0u32;
        // First attempts and those resuming after a pause keep to the limit; a retry after a
        // timeout or an error does not wait for room, so a sync against an endpoint that never
        // answers gives up no later than its retries and backoffs add up to.
        let mut keeps_to_limit = true;
        loop {
            self.pacing.wait_turn().await;
            if keeps_to_limit {
                self.limit.room().await;
            }
            let on_wire = self.limit.start();
            let started = Instant::now();
            let exchange = self.sender.attempt(&outgoing, started).await;
            let finished = Instant::now();
            self.metrics.record_request(finished - started);
            self.limit
                .finish(started, finished, on_wire, exchange.outcome);
            let decision = policy::decide(
                exchange.outcome,
                attempt,
                jobs.len(),
                self.limits,
                rand::random::<f64>,
            );
            match decision {
                Decision::Deliver => return Ok(Answer::Delivered),
                Decision::Split => return Ok(Answer::Split),
                Decision::Reject => return Ok(Answer::Rejected(refusal(exchange))),
                Decision::Fail(stop) => return Err(self.failure(stop, exchange, jobs, attempt)),
                Decision::Retry { after, pause } => {
                    keeps_to_limit = pause;
                    self.retry_later(after, pause, jobs, attempt, exchange)
                        .await
                }
            }
            attempt += 1;
        }
    }

    /// Waits before the next attempt, or pauses the whole endpoint when the answer asked for it.
    async fn retry_later(
        &self,
        after: Duration,
        pause: bool,
        jobs: &[Job],
        attempt: u32,
        exchange: Exchange,
    ) {
        self.metrics.record_retry();
        self.notices.borrow_mut().push(Notice::Retrying {
            label: jobs[0].request.label,
            after,
            attempt: attempt + 2,
            attempts: self.limits.max_retries + 1,
            reason: reason(&exchange),
        });
        // A paused endpoint's retry waits out the pause in the next attempt's turn, which
        // spreads the release of everything the pause held.
        if pause {
            self.pacing.pause(after);
        } else {
            tokio::time::sleep(after).await;
        }
    }

    /// Why the sync stops, in the words of its TRACE.
    fn failure(&self, stop: Stop, exchange: Exchange, jobs: &[Job], attempt: u32) -> Failure {
        let endpoint = self.shown_endpoint.clone();
        let label = jobs[0].request.label;
        let status = exchange.status();
        match stop {
            Stop::Redirect => Failure::Redirect {
                to: self.redirect_target(exchange.location),
                endpoint,
                status,
                label,
            },
            Stop::Unauthorized => Failure::Unauthorized {
                endpoint,
                status,
                label,
                excerpt: exchange.text,
            },
            Stop::TlsRefused => Failure::TlsRefused {
                endpoint,
                label,
                reason: exchange.text,
            },
            Stop::GaveUp => Failure::GaveUp {
                endpoint,
                label,
                attempts: attempt + 1,
                max_retries: self.limits.max_retries,
                reason: reason(&exchange),
            },
            Stop::Refused => Failure::Refused {
                endpoint,
                status,
                label,
                records: jobs.len(),
                excerpt: exchange.text,
            },
        }
    }

    /// A redirect's `Location` as it may be printed: absolute, without credentials.
    fn redirect_target(&self, location: Option<String>) -> String {
        location
            .map(|l| match self.sender.endpoint.join(&l) {
                Ok(absolute) => crate::redact::shown_url(absolute.as_str()),
                Err(_) => format!("{l:?} (not a valid URL)"),
            })
            .unwrap_or_else(|| "nowhere (no Location header)".into())
    }

    fn show(&self, outgoing: &Outgoing, headers: &str) {
        // A GET record's own parameters are record data, shown as sent like a POST body; only
        // the endpoint's part of the URL is the configured one, shown redacted.
        let url = match &outgoing.content.url {
            None => self.shown_endpoint.clone(),
            Some(full) => match full.as_str().strip_prefix(self.sender.endpoint.as_str()) {
                Some(params) => format!("{}{params}", self.shown_endpoint),
                None => crate::redact::shown_url(full.as_str()),
            },
        };
        let templated: reqwest::header::HeaderMap =
            outgoing.content.headers.iter().cloned().collect();
        let headers = match templated.is_empty() {
            true => headers.to_string(),
            false => format!("{headers}, {}", crate::headers::shown(&templated)),
        };
        self.notices.borrow_mut().push(Notice::DryRun {
            method: outgoing
                .content
                .method
                .clone()
                .unwrap_or_else(|| self.sender.method.clone()),
            url,
            headers,
            key: key_text(&outgoing.key).to_string(),
            per_attempt: self.sender.shown_per_attempt(),
            gzip: self.sender.content_encoding.is_some(),
            body: String::from_utf8_lossy(&outgoing.content.signed).into_owned(),
        });
    }
}

/// An endpoint's refusal of the records, as their rejection.
fn refusal(exchange: Exchange) -> Rejection {
    Rejection::Refused {
        status: exchange.status(),
        excerpt: exchange.text,
    }
}

/// What went wrong with an attempt worth retrying, in words.
fn reason(exchange: &Exchange) -> String {
    match exchange.outcome {
        Outcome::Answered { status, .. } => format!("HTTP {status} {}", exchange.text),
        _ => exchange.text.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::Payload;

    fn deliverer(config: serde_json::Value) -> Deliverer {
        Deliverer::new(&serde_json::from_value(config).unwrap(), false).unwrap()
    }

    fn job(key: &'static str) -> Job {
        Job {
            seq: 0,
            order_key: None,
            request: Request {
                payload: Payload::Json(bytes::Bytes::from_static(b"{}")),
                idempotency_key: HeaderValue::from_static(key),
                label: RecordLabel {
                    message_id: 1,
                    row_num: None,
                },
            },
        }
    }

    /// A record sent alone carries its own key, which a retry or a later run repeats; a batch
    /// carries one made of its members' keys, even a batch of one (its body is an array).
    #[test]
    fn a_lone_record_keeps_its_key_and_a_batch_gets_its_own() {
        let url = "http://127.0.0.1:9/hook";
        let single = deliverer(serde_json::json!({ "url": url }));
        assert_eq!(single.outgoing(&[job("msg_a")]).unwrap().key, "msg_a");
        let batching = deliverer(serde_json::json!({ "url": url, "batch_size": 2 }));
        let batch_key = |keys: &[&str]| {
            crate::idempotency::batch(keys.iter().map(|k| k.as_bytes()))
                .as_str()
                .to_string()
        };
        let two = batching.outgoing(&[job("msg_a"), job("msg_b")]).unwrap();
        assert_eq!(two.key, batch_key(&["msg_a", "msg_b"]).as_str());
        let one = batching.outgoing(&[job("msg_a")]).unwrap();
        assert_eq!(one.key, batch_key(&["msg_a"]).as_str());
        assert_ne!(one.key, "msg_a");
    }
}
