//! The HTTP side: accept loop, per-request handling and scripted faults.

use std::borrow::Cow;
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_ENCODING};
use hyper::http::request::Parts;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::{HeaderMap, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;

use crate::capacity::{Endpoint, Turn};
use crate::hangup::{is_hangup, BrokenBody, Hangup};
use crate::log::{self, LogFormat};
use crate::record::{Journal, RecordedRequest};
use crate::script::{Close, Reply, Script};
use crate::tls::Identity;
use crate::token::Tokens;
use crate::verify::Verifier;

/// State every connection task reads, and the `Receiver` handle inspects.
pub(crate) struct Shared {
    started: Instant,
    next_seq: AtomicU64,
    script: Mutex<Script>,
    pub(crate) journal: Journal,
    record: bool,
    verifier: Option<Verifier>,
    reject_invalid_signatures: bool,
    log: Option<LogFormat>,
    pub(crate) tokens: Option<Tokens>,
    /// A remote-like endpoint's latency and capacity, when it plays one.
    pub(crate) remote: Option<Endpoint>,
    /// Serve HTTPS with this certificate.
    pub(crate) tls: Option<Identity>,
    pub(crate) connections: AtomicU64,
}

impl Shared {
    pub(crate) fn new(
        script: Script,
        record: bool,
        verifier: Option<Verifier>,
        reject_invalid_signatures: bool,
        log: Option<LogFormat>,
        tokens: Option<Tokens>,
        remote: Option<Endpoint>,
    ) -> Shared {
        Shared {
            started: Instant::now(),
            next_seq: AtomicU64::new(0),
            script: Mutex::new(script),
            journal: Journal::default(),
            record,
            verifier,
            reject_invalid_signatures,
            log,
            tokens,
            remote,
            tls: None,
            connections: AtomicU64::new(0),
        }
    }

    pub(crate) fn set_script(&self, script: Script) {
        *self.script() = script;
    }

    fn script(&self) -> MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// Runs on the receiver's own thread until `stop` fires. Sends the bound
/// address (or the reason there is none) through `ready` first.
pub(crate) fn run(
    shared: Arc<Shared>,
    port: u16,
    ready: std::sync::mpsc::SyncSender<io::Result<SocketAddr>>,
    stop: oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("webhook-receiver-worker")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    runtime.block_on(async move {
        let listener = match bind(port) {
            Ok(listener) => listener,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        match listener.local_addr() {
            Ok(addr) => {
                let _ = ready.send(Ok(addr));
            }
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        }
        serve(listener, shared, stop).await;
    });
    // Dropping the runtime cancels every connection task, which closes their
    // sockets: after `stop` the server is gone, not draining.
    drop(runtime);
}

/// SO_REUSEADDR lets a fault test restart the server on the same port while
/// the previous incarnation's connections sit in TIME_WAIT.
fn bind(port: u16) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
    socket.listen(1024)
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let mut http = http1::Builder::new();
    // Idle keep-alive connections of the connector's pool must stay usable for
    // as long as the client wants; closing them is a fault tests script.
    http.keep_alive(true).header_read_timeout(None);
    loop {
        let stream = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Typically EMFILE; retrying at once would spin.
                    eprintln!("webhook-receiver: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        if let Err(e) = stream.set_nodelay(true) {
            eprintln!("webhook-receiver: cannot set TCP_NODELAY: {e}");
        }
        shared.connections.fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        let http = http.clone();
        tokio::spawn(async move {
            let Some(identity) = &shared.tls else {
                return serve_http1(&http, stream, shared.clone()).await;
            };
            match identity.acceptor.accept(stream).await {
                Ok(tls) if tls.get_ref().1.alpn_protocol() == Some(b"h2") => {
                    serve_http2(tls, shared.clone()).await
                }
                Ok(tls) => serve_http1(&http, tls, shared.clone()).await,
                Err(e) => eprintln!("webhook-receiver: TLS handshake failed: {e}"),
            }
        });
    }
}

async fn serve_http1<S>(http: &http1::Builder, stream: S, shared: Arc<Shared>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let connection = http.serve_connection(
        TokioIo::new(stream),
        service_fn(move |req| handle(shared.clone(), req)),
    );
    report(connection.await);
}

async fn serve_http2<S>(stream: S, shared: Arc<Shared>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let connection = http2::Builder::new(TokioExecutor::new()).serve_connection(
        TokioIo::new(stream),
        service_fn(move |req| handle(shared.clone(), req)),
    );
    report(connection.await);
}

fn report(result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        if !is_hangup(&e) {
            eprintln!("webhook-receiver: connection error: {e}");
        }
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Answer>, Hangup> {
    let seq = shared.next_seq.fetch_add(1, Ordering::Relaxed);
    let arrived = Instant::now();
    let received_at_ms = shared.elapsed_ms();
    let (parts, body) = req.into_parts();
    let wire = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            eprintln!("webhook-receiver: request #{seq}: body not received: {e}");
            return Err(Hangup);
        }
    };
    let decoded = decode(seq, &parts.headers, &wire);
    let text = String::from_utf8_lossy(&decoded);
    let arrival = Arrival {
        seq,
        received_at_ms,
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.to_string(), |pq| pq.as_str().to_owned()),
        signature_valid: shared
            .verifier
            .as_ref()
            .map(|v| v.is_valid(&parts.headers, &wire, &decoded)),
    };

    // A rejected request does not use up a scripted rule, so a script written
    // for valid traffic plays out the same with forged requests mixed in.
    let token_reply = shared
        .tokens
        .as_ref()
        .and_then(|t| t.intercept(&arrival.path, &parts.headers, &decoded));
    // A token request is not the remote endpoint's work: it takes no turn.
    let turn = match (&shared.remote, &token_reply) {
        (Some(endpoint), None) => Some(endpoint.turn().await),
        _ => None,
    };
    let reply = if let Some(reply) = token_reply {
        reply
    } else if arrival.signature_valid == Some(false) && shared.reject_invalid_signatures {
        Reply::status(401)
    } else if let Some(Turn::Refused(refusal)) = &turn {
        refusal.clone()
    } else {
        shared.script().answer(&arrival.path, &text)
    };
    if reply.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(reply.delay_ms)).await;
    }
    if let (Some(endpoint), Some(Turn::Served { .. })) = (&shared.remote, &turn) {
        endpoint.served(arrived.elapsed());
    }
    // The slot is given back only now, with the answer.
    drop(turn);
    let outcome = match reply.close {
        Some(Close::BeforeResponse) => Err(Hangup),
        _ => Ok(response(seq, reply)),
    };
    let status = outcome.as_ref().map_or(0, |r| r.status().as_u16());
    journal(&shared, arrival, &parts, text, status);
    outcome
}

/// What is known of a request before its answer, kept for the journal and the log.
struct Arrival {
    seq: u64,
    received_at_ms: u64,
    path: String,
    signature_valid: Option<bool>,
}

/// Counts the answered request, and keeps it (and prints it) when the receiver records or logs:
/// a benchmark's receiver builds nothing per request.
fn journal(shared: &Shared, arrival: Arrival, parts: &Parts, text: Cow<'_, str>, status: u16) {
    if !shared.record && shared.log.is_none() {
        shared.journal.add(None);
        return;
    }
    let request = RecordedRequest {
        seq: arrival.seq,
        method: parts.method.as_str().to_owned(),
        version: format!("{:?}", parts.version),
        path: arrival.path,
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (n.as_str().to_owned(), value)
            })
            .collect(),
        body: text.into_owned(),
        status,
        signature_valid: arrival.signature_valid,
        received_at_ms: arrival.received_at_ms,
        answered_at_ms: shared.elapsed_ms(),
    };
    if let Some(format) = shared.log {
        log::print(format, &request);
    }
    shared.journal.add(shared.record.then_some(request));
}

/// Gunzips when asked to; a body that fails to decode is kept as received so
/// the test still sees what arrived.
fn decode<'a>(seq: u64, headers: &HeaderMap, wire: &'a [u8]) -> Cow<'a, [u8]> {
    let gzip = headers
        .get(CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    if !gzip {
        return Cow::Borrowed(wire);
    }
    let mut out = Vec::new();
    match flate2::read::MultiGzDecoder::new(wire).read_to_end(&mut out) {
        Ok(_) => Cow::Owned(out),
        Err(e) => {
            eprintln!("webhook-receiver: request #{seq}: gzip body does not decode: {e}");
            Cow::Borrowed(wire)
        }
    }
}

/// An answer's body: whole, or broken off half-way by the script.
type Answer = Either<Full<Bytes>, BrokenBody>;

/// Bad script entries (an impossible status, a header that cannot be sent)
/// are reported and worked around rather than killing the connection.
fn response(seq: u64, reply: Reply) -> Response<Answer> {
    let body = match reply.body_bytes {
        Some(len) => Bytes::from(vec![b'x'; len]),
        None => Bytes::from(reply.body),
    };
    let body = match reply.close {
        Some(Close::MidBody) => Either::Right(BrokenBody::new(body)),
        _ => Either::Left(Full::new(body)),
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap_or_else(|_| {
        eprintln!(
            "webhook-receiver: request #{seq}: scripted status {} is not valid, answering 500",
            reply.status
        );
        StatusCode::INTERNAL_SERVER_ERROR
    });
    let headers = response.headers_mut();
    for (name, value) in &reply.headers {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => eprintln!(
                "webhook-receiver: request #{seq}: skipping invalid scripted header {name:?}: {value:?}"
            ),
        }
    }
    if reply.close == Some(Close::AfterResponse) {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
