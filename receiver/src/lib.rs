//! A loopback HTTP/1.1 (or, over TLS, HTTP/2) webhook endpoint that records every request and plays
//! back scripted statuses and connection faults.
//!
//! The connector's integration tests use it in-process; the `webhook-receiver`
//! binary serves the demo, benchmarks and users trying a config. It runs on its
//! own thread with its own runtime so plain `#[test]` functions and async tests
//! alike can start one, and it is built to never be the bottleneck of a
//! benchmark (multi-threaded, keep-alive, `TCP_NODELAY`, nothing kept when
//! recording is off).
//!
//! ```no_run
//! use std::time::Duration;
//! use webhook_receiver::{Receiver, Reply, Script};
//!
//! let receiver = Receiver::with_script(Script::sequence(vec![
//!     Reply::status(503).with_header("Retry-After", "1"),
//! ]));
//! let endpoint = receiver.url("/hook");
//! // ... run the connector against `endpoint` ...
//! assert!(receiver.wait_for_requests(2, Duration::from_secs(5)));
//! assert_eq!(receiver.requests()[1].status, 200);
//! ```

mod capacity;
mod hangup;
mod log;
mod record;
mod script;
mod server;
mod tls;
mod token;
mod verify;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

pub use capacity::{Beyond, Remote};
pub use log::LogFormat;
pub use record::RecordedRequest;
pub use script::{Close, Reply, Rule, Script};

use capacity::Endpoint;
use server::Shared;
pub use tls::Tls;
pub use token::TokenEndpoint;
use token::Tokens;
pub use verify::HmacConvention;
use verify::Verifier;

#[derive(Debug)]
pub struct ReceiverOptions {
    pub script: Script,
    /// Off for benchmarks, so memory stays flat; `request_count` still counts.
    pub record: bool,
    /// Enables Standard Webhooks verification (`whsec_<base64>`, or raw bytes).
    pub signing_secret: Option<String>,
    /// Serve OAuth2 client-credentials tokens at `/token` and answer 401 elsewhere to requests
    /// without a valid bearer token.
    pub token_endpoint: Option<TokenEndpoint>,
    /// Verify `signing_secret` as this HMAC header convention instead of Standard Webhooks.
    pub hmac: Option<HmacConvention>,
    /// Answer 401 to badly signed requests instead of only recording the verdict.
    pub reject_invalid_signatures: bool,
    /// 0 lets the OS choose; a fixed port lets fault tests stop and restart
    /// "the same" endpoint.
    pub port: u16,
    /// Print each request to stdout (meant for the CLI).
    pub log: Option<LogFormat>,
    /// Play a remote endpoint: latency and a capacity (applies before the script).
    pub remote: Option<Remote>,
    /// Serve HTTPS with a certificate made at start-up ([`Receiver::ca_pem`] trusts it).
    pub tls: Option<Tls>,
}

impl Default for ReceiverOptions {
    fn default() -> Self {
        ReceiverOptions {
            script: Script::default(),
            record: true,
            signing_secret: None,
            hmac: None,
            token_endpoint: None,
            reject_invalid_signatures: false,
            port: 0,
            log: None,
            remote: None,
            tls: None,
        }
    }
}

/// A running server on 127.0.0.1. Dropping it stops it like [`Receiver::stop`].
pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Returns once the port is listening, so a request sent right after
    /// cannot be refused.
    pub fn start(opts: ReceiverOptions) -> io::Result<Receiver> {
        let verifier = opts
            .signing_secret
            .as_deref()
            .map(|secret| Verifier::new(secret, opts.hmac.as_ref()))
            .transpose()?;
        let mut shared = Shared::new(
            opts.script,
            opts.record,
            verifier,
            opts.reject_invalid_signatures,
            opts.log,
            opts.token_endpoint.map(Tokens::new),
            opts.remote.map(Endpoint::new),
        );
        shared.tls = opts.tls.map(tls::Identity::new).transpose()?;
        let shared = Arc::new(shared);
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let (stop_tx, stop_rx) = oneshot::channel();
        let server_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("webhook-receiver".to_owned())
            .spawn(move || server::run(server_shared, opts.port, ready_tx, stop_rx))?;
        let ready = ready_rx
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("receiver thread exited before listening")));
        match ready {
            Ok(addr) => Ok(Receiver {
                addr,
                shared,
                stop: Some(stop_tx),
                thread: Some(thread),
            }),
            Err(e) => {
                let _ = thread.join();
                Err(e)
            }
        }
    }

    /// Records everything and answers 200.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub fn start_default() -> Receiver {
        Receiver::with_script(Script::default())
    }

    /// # Panics
    /// If no loopback port can be bound.
    pub fn with_script(script: Script) -> Receiver {
        Receiver::start(ReceiverOptions {
            script,
            ..ReceiverOptions::default()
        })
        .unwrap_or_else(|e| panic!("webhook-receiver: cannot start: {e}"))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (`https` with TLS) followed by `path_and_query` (a missing
    /// leading `/` is added).
    pub fn url(&self, path_and_query: &str) -> String {
        let slash = if path_and_query.starts_with('/') {
            ""
        } else {
            "/"
        };
        let scheme = match self.shared.tls {
            Some(_) => "https",
            None => "http",
        };
        format!("{scheme}://{}{slash}{path_and_query}", self.addr)
    }

    /// Answered requests in arrival order. A request still being delayed is
    /// not in it yet.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.journal.snapshot()
    }

    /// Requests answered (or hung up on) so far, recorded or not.
    pub fn request_count(&self) -> u64 {
        self.shared.journal.count()
    }

    /// Every token the token endpoint issued so far stops holding (no effect without one).
    pub fn revoke_tokens(&self) {
        if let Some(tokens) = &self.shared.tokens {
            tokens.revoke_all();
        }
    }

    /// The PEM of the CA that signed the receiver's TLS certificate, when it serves TLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.shared.tls.as_ref().map(|t| t.ca_pem.as_str())
    }

    /// TCP connections accepted so far: how many a client opened.
    pub fn connection_count(&self) -> u64 {
        self.shared
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Requests a remote-like endpoint refused for being beyond its capacity.
    pub fn refused_count(&self) -> u64 {
        self.shared.remote.as_ref().map_or(0, Endpoint::refused)
    }

    /// The `q` quantile of a remote-like endpoint's latency (arrival to answer, queueing
    /// included) over the requests it served, in milliseconds.
    pub fn latency_ms(&self, q: f64) -> Option<u64> {
        self.shared.remote.as_ref()?.latency_ms(q)
    }

    /// Takes effect for the next request; rule counters start afresh.
    pub fn set_script(&self, script: Script) {
        self.shared.set_script(script);
    }

    /// Whether `n` requests were answered within `timeout`.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        self.shared.journal.wait_for(n as u64, timeout)
    }

    /// Closes the listener and every open connection (in-flight requests are
    /// abandoned, like a crashed endpoint) and joins the server thread.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
