//! Security properties of the connector, end to end through the binary (spec sections 4, 5.5, 6,
//! 7, 10, 12): auth headers, header validation, Standard Webhooks signatures (checked by the
//! independent `standardwebhooks` crate inside the receiver), idempotency keys, TLS with a private
//! CA and mutual TLS (certificates made here with rcgen, served by a small tokio-rustls server),
//! secrets never printed, redirects never followed, huge response bodies not kept.

mod common;

use std::io::Write;
use std::net::TcpListener as StdListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use common::*;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use webhook_receiver::{Receiver, ReceiverOptions, RecordedRequest, Reply, Script};

/// The Standard Webhooks reference secret.
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

// ---------------------------------------------------------------------------------------------
// Running the connector.

/// The one CONNECTION_STATUS of a `check` run: (status, message).
#[track_caller]
fn status_of(run: &Run) -> (String, String) {
    let statuses = run.of_type("CONNECTION_STATUS");
    assert_eq!(statuses.len(), 1, "one CONNECTION_STATUS: {}", run.dump());
    assert_eq!(
        run.messages.len(),
        1,
        "check prints one message: {}",
        run.dump()
    );
    assert_eq!(run.code, Some(0), "{}", run.dump());
    let s = &statuses[0]["connectionStatus"];
    (
        s["status"].as_str().unwrap().to_string(),
        s["message"].as_str().unwrap().to_string(),
    )
}

/// The six fixture records written with `config` (Valmi dialect).
fn write_fixture(config: &Value) -> Run {
    write_valmi(config, valmi_messages().as_bytes())
}

/// [`write_fixture`] to `receiver`'s `/hook` under [`config`] with `extra`; the write must
/// complete.
#[track_caller]
fn completed_sync(receiver: &Receiver, extra: Value) -> Run {
    let run = write_fixture(&config(&receiver.url("/hook"), extra));
    assert_completed(&run);
    run
}

/// A write that must fail with some TRACE ERROR (how many is faults.rs's business: it is
/// printed twice today).
#[track_caller]
fn failed_write(config: &Value) -> Run {
    let run = write_fixture(config);
    assert_ne!(run.code, Some(0), "{}", run.dump());
    assert!(!run.errors().is_empty(), "{}", run.dump());
    run
}

fn signing_receiver(secret: &str, script: Script) -> Receiver {
    Receiver::start(ReceiverOptions {
        script,
        signing_secret: Some(secret.to_string()),
        ..ReceiverOptions::default()
    })
    .unwrap()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Standard Webhooks signature computed here, independently of the connector's signer.
fn expected_signature(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

fn whsec_key() -> Vec<u8> {
    B64.decode(WHSEC.trim_start_matches("whsec_")).unwrap()
}

// ---------------------------------------------------------------------------------------------
// A small HTTP/1.1 server, plain or TLS (tokio-rustls), that answers 200 to everything, counts
// requests and keeps the exact bytes of each one.

#[derive(Clone, Debug)]
struct Captured {
    /// Request line and header lines, as received.
    head: String,
    /// The body bytes exactly as they came over the wire.
    body: Vec<u8>,
}

impl Captured {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

#[derive(Default)]
struct ServerState {
    requests: AtomicUsize,
    handshake_failures: AtomicUsize,
    captured: Mutex<Vec<Captured>>,
}

struct TestServer {
    port: u16,
    state: Arc<ServerState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    fn start(tls: Option<Arc<rustls::ServerConfig>>) -> TestServer {
        let listener = StdListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(ServerState::default());
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server_state = state.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
                loop {
                    let tcp = tokio::select! {
                        _ = &mut stop_rx => return,
                        accepted = listener.accept() => match accepted {
                            Ok((tcp, _)) => tcp,
                            Err(_) => continue,
                        },
                    };
                    let state = server_state.clone();
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        match acceptor {
                            Some(acceptor) => match acceptor.accept(tcp).await {
                                Ok(stream) => serve_http(stream, state).await,
                                Err(_) => {
                                    state.handshake_failures.fetch_add(1, Ordering::SeqCst);
                                }
                            },
                            None => serve_http(tcp, state).await,
                        }
                    });
                }
            });
        });
        TestServer {
            port,
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    fn handshake_failures(&self) -> usize {
        self.state.handshake_failures.load(Ordering::SeqCst)
    }

    fn captured(&self) -> Vec<Captured> {
        self.state.captured.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve_http<S>(stream: S, state: Arc<ServerState>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::io::BufReader::new(stream);
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            match stream.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
            head.push_str(&line);
        }
        let length = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.trim().parse::<usize>().unwrap())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        state.requests.fetch_add(1, Ordering::SeqCst);
        state.captured.lock().unwrap().push(Captured { head, body });
        let out = stream.get_mut();
        if out
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await
            .is_err()
            || out.flush().await.is_err()
        {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Certificates: a server CA with a server certificate for 127.0.0.1 and localhost, and a client
// CA with a client certificate. Made once per test binary.

struct Pki {
    ca_pem: String,
    client_ca_pem: String,
    server_config: Arc<rustls::ServerConfig>,
    mtls_server_config: Arc<rustls::ServerConfig>,
    client_cert_pem: String,
    client_key_pem: String,
    /// A client certificate the mutual-TLS server refuses (signed by the server CA, not the
    /// client CA).
    rogue_cert_pem: String,
    rogue_key_pem: String,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(make_pki)
}

fn make_ca(name: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).unwrap();
    (cert, key)
}

fn make_pki() -> Pki {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    let (ca, ca_key) = make_ca("security-test server CA");
    let server_key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "127.0.0.1");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = params.signed_by(&server_key, &ca, &ca_key).unwrap();

    let (client_ca, client_ca_key) = make_ca("security-test client CA");
    let client_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "connector");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = params
        .signed_by(&client_key, &client_ca, &client_ca_key)
        .unwrap();

    let rogue_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "rogue");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let rogue_cert = params.signed_by(&rogue_key, &ca, &ca_key).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> = vec![server_cert.der().clone()];
    let key = || PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain.clone(), key())
        .unwrap();
    let mut client_roots = rustls::RootCertStore::empty();
    client_roots.add(client_ca.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(client_roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let mtls_server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key())
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        client_ca_pem: client_ca.pem(),
        server_config: Arc::new(server_config),
        mtls_server_config: Arc::new(mtls_server_config),
        client_cert_pem: client_cert.pem(),
        client_key_pem: client_key.serialize_pem(),
        rogue_cert_pem: rogue_cert.pem(),
        rogue_key_pem: rogue_key.serialize_pem(),
    }
}

// =============================================================================================
// 1. Auth and configured headers

fn all_requests_carry(receiver: &Receiver, name: &str, value: &str) {
    let requests = receiver.requests();
    assert_eq!(requests.len(), 6, "one request per record");
    for r in &requests {
        assert_eq!(r.header(name), Some(value), "{name} on {:?}", r.headers);
    }
}

#[test]
fn bearer_auth_sends_the_token_as_an_authorization_header() {
    let receiver = Receiver::start_default();
    completed_sync(
        &receiver,
        json!({"auth": {"type": "bearer", "token": "tok-123.abc"}}),
    );
    all_requests_carry(&receiver, "authorization", "Bearer tok-123.abc");
    for r in receiver.requests() {
        let agent = r.header("user-agent").unwrap_or_default();
        assert!(agent.starts_with("destination-webhook/"), "{agent}");
    }
}

#[test]
fn basic_auth_sends_base64_of_user_colon_password() {
    let receiver = Receiver::start_default();
    // A password with colons: only the first colon of user:pass separates them on the server.
    completed_sync(
        &receiver,
        json!({"auth": {"type": "basic", "username": "alice", "password": "p:a:ss wörd"}}),
    );
    let expected = format!("Basic {}", B64.encode("alice:p:a:ss wörd"));
    all_requests_carry(&receiver, "authorization", &expected);
}

#[test]
fn api_key_auth_puts_the_key_in_the_named_header() {
    let receiver = Receiver::start_default();
    completed_sync(
        &receiver,
        json!({"auth": {"type": "api_key", "header_name": "X-Partner-Key", "api_key": "k-42"}}),
    );
    all_requests_carry(&receiver, "x-partner-key", "k-42");
    assert!(receiver
        .requests()
        .iter()
        .all(|r| r.header("authorization").is_none()));
}

#[test]
fn a_configured_header_value_with_colons_is_sent_whole() {
    let receiver = Receiver::start_default();
    completed_sync(
        &receiver,
        json!({"headers": ["Authorization: Bearer abc:def", "X-Trace:   t:1:2  "]}),
    );
    all_requests_carry(&receiver, "authorization", "Bearer abc:def");
    all_requests_carry(&receiver, "x-trace", "t:1:2");
}

/// `check` FAILED and `write` config_error, both naming the header by `needle` and never showing
/// `hidden`, with nothing sent.
#[track_caller]
fn assert_refused_config(headers: Value, needles: &[&str], hidden: &str) {
    let receiver = Receiver::start_default();
    let config = config(&receiver.url("/hook"), json!({ "headers": headers }));

    let checked = run_check(&config);
    let (status, message) = status_of(&checked);
    assert_eq!(status, "FAILED", "{}", checked.dump());
    assert!(
        needles.iter().any(|n| message.contains(n)),
        "check names none of {needles:?}: {message}"
    );
    assert!(!checked.stdout.contains(hidden), "{}", checked.dump());
    assert!(!checked.stderr.contains(hidden), "{}", checked.dump());

    let written = write_fixture(&config);
    let message = assert_fatal(&written, "config_error");
    assert!(
        needles.iter().any(|n| message.contains(n)),
        "write names none of {needles:?}: {message}"
    );
    assert!(!written.stdout.contains(hidden), "{}", written.dump());
    assert!(!written.stderr.contains(hidden), "{}", written.dump());
    assert!(written.states().is_empty(), "{}", written.dump());

    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(receiver.request_count(), 0, "a request was sent");
}

#[test]
fn a_header_with_an_invalid_name_is_a_config_error_that_hides_the_value() {
    assert_refused_config(
        json!(["X-Fine: 1", "Bad Header: v-HIDDEN-1"]),
        &["headers[1]", "Bad Header"],
        "v-HIDDEN-1",
    );
}

#[test]
fn a_header_value_with_a_newline_is_a_config_error_that_hides_the_value() {
    // Header injection: a newline would start a second header on the wire.
    assert_refused_config(
        json!(["X-Note: v-HIDDEN-2\r\nX-Injected: yes"]),
        &["headers[0]", "X-Note"],
        "v-HIDDEN-2",
    );
    assert_refused_config(
        json!(["X-Ok: 1", "X-Note: a\nv-HIDDEN-3"]),
        &["headers[1]", "X-Note"],
        "v-HIDDEN-3",
    );
}

#[test]
fn configured_signature_and_idempotency_headers_are_refused() {
    for (entry, name) in [
        ("Idempotency-Key: mine", "Idempotency-Key"),
        ("webhook-signature: v1,forged", "webhook-signature"),
        ("Webhook-Id: msg_forged", "Webhook-Id"),
        ("webhook-timestamp: 1", "webhook-timestamp"),
    ] {
        assert_refused_config(json!([entry]), &["headers[0]", name], "forged");
    }
    // Nor can the api_key header name take one of them.
    let receiver = Receiver::start_default();
    let config = config(
        &receiver.url("/hook"),
        json!({"auth": {"type": "api_key", "header_name": "Idempotency-Key", "api_key": "k-HIDDEN"}}),
    );
    let (status, message) = status_of(&run_check(&config));
    assert_eq!(status, "FAILED");
    assert!(message.contains("Idempotency-Key"), "{message}");
    let written = write_fixture(&config);
    assert_fatal(&written, "config_error");
    assert!(!written.stdout.contains("k-HIDDEN"), "{}", written.dump());
    assert_eq!(receiver.request_count(), 0);
}

// =============================================================================================
// 2. Signing (Standard Webhooks), verified by the receiver's independent library

#[track_caller]
fn assert_signed_and_valid(requests: &[RecordedRequest]) {
    let now = now_secs();
    for r in requests {
        assert_eq!(
            r.signature_valid,
            Some(true),
            "request #{} does not verify: {:?} body {:?}",
            r.seq,
            r.headers,
            r.body
        );
        let id = r.header("webhook-id").expect("webhook-id");
        assert_eq!(r.header("idempotency-key"), Some(id));
        let ts: u64 = r.header("webhook-timestamp").unwrap().parse().unwrap();
        assert!(ts.abs_diff(now) < 300, "timestamp {ts} vs now {now}");
        assert!(r.header("webhook-signature").unwrap().starts_with("v1,"));
    }
}

/// The six requests of a sync of the fixture, each signed and verified by the receiver.
#[track_caller]
fn six_signed_requests(receiver: &Receiver) -> Vec<RecordedRequest> {
    let requests = receiver.requests();
    assert_eq!(requests.len(), 6);
    assert_signed_and_valid(&requests);
    requests
}

#[test]
fn every_request_of_a_post_sync_is_signed_and_verifies() {
    let receiver = signing_receiver(WHSEC, Script::default());
    completed_sync(&receiver, json!({"signing_secret": WHSEC}));
    let requests = six_signed_requests(&receiver);
    // Also by the signature computed here from the received body.
    for r in &requests {
        let expected = expected_signature(
            &whsec_key(),
            r.header("webhook-id").unwrap(),
            r.header("webhook-timestamp").unwrap(),
            r.body.as_bytes(),
        );
        assert_eq!(r.header("webhook-signature"), Some(expected.as_str()));
    }
}

#[test]
fn a_retried_request_is_signed_again_under_the_same_webhook_id() {
    let receiver = signing_receiver(
        WHSEC,
        Script::sequence(vec![Reply::status(500), Reply::status(200)]),
    );
    completed_sync(
        &receiver,
        json!({"signing_secret": WHSEC, "max_retries": 2, "concurrency": 1}),
    );
    let requests = receiver.requests();
    assert_eq!(requests.len(), 7, "6 records + 1 retry");
    assert_signed_and_valid(&requests);
    assert_eq!(requests[0].status, 500);
    let retried: Vec<&RecordedRequest> = requests
        .iter()
        .filter(|r| r.body == requests[0].body)
        .collect();
    assert_eq!(retried.len(), 2, "the refused request is sent again");
    assert_eq!(retried[1].status, 200);
    assert_eq!(
        retried[0].header("webhook-id"),
        retried[1].header("webhook-id")
    );
    assert_eq!(
        retried[0].header("idempotency-key"),
        retried[1].header("idempotency-key")
    );
}

#[test]
fn a_batch_is_signed_over_its_array_body() {
    let receiver = signing_receiver(WHSEC, Script::default());
    completed_sync(&receiver, json!({"signing_secret": WHSEC, "batch_size": 3}));
    let requests = receiver.requests();
    assert_signed_and_valid(&requests);
    let mut rows: Vec<u64> = requests.iter().flat_map(|r| body_rows(&r.json())).collect();
    rows.sort_unstable();
    assert_eq!(rows, [1, 2, 3, 4, 5, 6]);
    assert!(
        requests.iter().any(|r| r.json().is_array()),
        "no batch was sent: {:?}",
        requests.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    let ids: std::collections::HashSet<_> =
        requests.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), requests.len(), "each batch has its own id");
}

#[test]
fn a_get_request_is_signed_over_the_empty_body() {
    let receiver = signing_receiver(WHSEC, Script::default());
    let config = config(
        &receiver.url("/hook?fixed=1"),
        json!({"signing_secret": WHSEC, "method": "GET"}),
    );
    assert_completed(&write_fixture(&config));
    let requests = six_signed_requests(&receiver);
    for r in &requests {
        assert_eq!(r.method, "GET");
        assert!(r.body.is_empty());
        assert!(r.path.contains("_valmi_meta__valmi_row_num="), "{}", r.path);
        let expected = expected_signature(
            &whsec_key(),
            r.header("webhook-id").unwrap(),
            r.header("webhook-timestamp").unwrap(),
            b"",
        );
        assert_eq!(r.header("webhook-signature"), Some(expected.as_str()));
    }
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn a_gzip_request_is_signed_over_an_exact_form_of_its_body() {
    // Against the raw bytes a server captured off the wire: the signature covers either the
    // compressed bytes sent or the JSON they decode to, nothing else.
    let server = TestServer::start(None);
    let config = common::config(
        &format!("http://127.0.0.1:{}/hook", server.port),
        json!({"signing_secret": WHSEC, "compression": "gzip"}),
    );
    assert_completed(&write_fixture(&config));
    let captured = server.captured();
    assert_eq!(captured.len(), 6);
    for c in &captured {
        assert_eq!(c.header("content-encoding").as_deref(), Some("gzip"));
        assert_eq!(&c.body[..2], &[0x1f, 0x8b], "not gzip on the wire");
        let decoded = gunzip(&c.body);
        assert!(serde_json::from_slice::<Value>(&decoded).is_ok());
        let id = c.header("webhook-id").unwrap();
        let ts = c.header("webhook-timestamp").unwrap();
        let over_wire = expected_signature(&whsec_key(), &id, &ts, &c.body);
        let over_json = expected_signature(&whsec_key(), &id, &ts, &decoded);
        let sent = c.header("webhook-signature").unwrap();
        assert!(sent == over_wire || sent == over_json, "{}", c.head);
    }
}

#[test]
fn a_gzip_request_verifies_with_a_standard_webhooks_library() {
    let receiver = signing_receiver(WHSEC, Script::default());
    completed_sync(
        &receiver,
        json!({"signing_secret": WHSEC, "compression": "gzip"}),
    );
    let requests = six_signed_requests(&receiver);
    assert!(requests
        .iter()
        .all(|r| r.header("content-encoding") == Some("gzip")));
}

#[test]
fn a_raw_secret_is_used_as_its_bytes() {
    let secret = "a plain shared secret";
    let receiver = signing_receiver(secret, Script::default());
    completed_sync(&receiver, json!({"signing_secret": secret}));
    six_signed_requests(&receiver);
}

#[test]
fn a_receiver_with_another_secret_rejects_every_signature() {
    let other = format!("whsec_{}", B64.encode("a different secret key"));
    let receiver = signing_receiver(&other, Script::default());
    completed_sync(&receiver, json!({"signing_secret": WHSEC}));
    let requests = receiver.requests();
    assert_eq!(requests.len(), 6);
    assert!(
        requests.iter().all(|r| r.signature_valid == Some(false)),
        "{:?}",
        requests
            .iter()
            .map(|r| r.signature_valid)
            .collect::<Vec<_>>()
    );
    // Unsigned requests do not verify either.
    let receiver = signing_receiver(WHSEC, Script::default());
    completed_sync(&receiver, json!({}));
    let requests = receiver.requests();
    assert!(requests.iter().all(|r| r.signature_valid == Some(false)));
    assert!(requests
        .iter()
        .all(|r| r.header("webhook-signature").is_none()));
}

// =============================================================================================
// 3. Idempotency keys

/// `_valmi_row_num` → idempotency key for one Valmi run; every request's key equals its
/// webhook-id.
fn valmi_keys(run_time_args: Value) -> std::collections::BTreeMap<u64, String> {
    let receiver = Receiver::start_default();
    completed_sync(&receiver, json!({ "run_time_args": run_time_args }));
    let requests = receiver.requests();
    assert_eq!(requests.len(), 6);
    idempotency_keys(&requests, request_row)
}

#[test]
fn idempotency_keys_equal_webhook_ids_and_differ_per_record() {
    let keys = valmi_keys(json!({"run_id": "run-42", "chunk_size": 4, "records_per_metric": 2}));
    let distinct: std::collections::HashSet<_> = keys.values().collect();
    assert_eq!(distinct.len(), 6, "{keys:?}");
}

#[test]
fn idempotency_keys_repeat_on_a_rerun_of_the_same_run_only() {
    let first = valmi_keys(json!({"run_id": "run-42", "chunk_size": 4, "records_per_metric": 2}));
    let again = valmi_keys(json!({"run_id": "run-42", "chunk_size": 4, "records_per_metric": 2}));
    assert_eq!(first, again, "same run_id, same keys");
    let other = valmi_keys(json!({"run_id": "run-43", "chunk_size": 4, "records_per_metric": 2}));
    for (row, key) in &other {
        assert!(
            !first.values().any(|k| k == key),
            "row {row} of another run reuses a key"
        );
    }
}

#[test]
fn airbyte_idempotency_keys_repeat_across_runs_of_the_same_input() {
    let keys = || {
        let receiver = Receiver::start_default();
        let cfg = config(&receiver.url("/hook"), json!({}));
        assert_completed(&write_airbyte(
            &cfg,
            &exchange_rate_catalog(),
            exchange_rate_messages().as_bytes(),
        ));
        let requests = receiver.requests();
        assert_eq!(requests.len(), 5);
        idempotency_keys(&requests, |r| r.json()["_message_id"].as_u64().unwrap())
    };
    let first = keys();
    assert_eq!(first, keys());
    let distinct: std::collections::HashSet<_> = first.values().collect();
    assert_eq!(distinct.len(), 5, "five different records: {first:?}");
}

// =============================================================================================
// 4. TLS: private CA, untrusted certificate, mutual TLS; `check` and `write` agree

/// The PKI and a TLS server presenting its server certificate; with `mutual`, the server also
/// demands a client certificate signed by the client CA.
fn tls_server(mutual: bool) -> (&'static Pki, TestServer) {
    let pki = pki();
    let config = if mutual {
        &pki.mtls_server_config
    } else {
        &pki.server_config
    };
    (pki, TestServer::start(Some(config.clone())))
}

fn tls_config(port: u16, tls: Value) -> Value {
    config(
        &format!("https://127.0.0.1:{port}/hook"),
        json!({"tls": tls, "max_retries": 1}),
    )
}

#[test]
fn tls_with_the_private_ca_checks_and_delivers() {
    let (pki, server) = tls_server(false);
    let config = tls_config(server.port, json!({"ca_certificate": pki.ca_pem}));
    let (status, message) = status_of(&run_check(&config));
    assert_eq!(status, "SUCCEEDED", "{message}");
    assert_eq!(server.requests(), 0, "check sends no request");
    // By name too (SNI and a DNS SAN), whichever address localhost resolves to first.
    let mut by_name = config.clone();
    by_name["url"] = json!(format!("https://localhost:{}/hook", server.port));
    let (status, message) = status_of(&run_check(&by_name));
    assert_eq!(status, "SUCCEEDED", "{message}");

    let run = write_fixture(&config);
    assert_completed(&run);
    assert_eq!(server.requests(), 6, "{}", run.dump());
    assert_eq!(server.handshake_failures(), 0);
}

#[test]
fn tls_without_the_ca_fails_check_as_not_trusted() {
    let (pki, server) = tls_server(false);
    let config = tls_config(server.port, json!({}));
    let (status, message) = status_of(&run_check(&config));
    assert_eq!(status, "FAILED", "{message}");
    let lower = message.to_lowercase();
    assert!(
        lower.contains("certificate") && lower.contains("not trusted"),
        "{message}"
    );
    // A CA that is not the server's is not enough either.
    let config = tls_config(server.port, json!({"ca_certificate": pki.client_ca_pem}));
    let (status, message) = status_of(&run_check(&config));
    assert_eq!(status, "FAILED", "{message}");
    assert!(message.to_lowercase().contains("not trusted"), "{message}");
}

#[test]
fn tls_without_the_ca_fails_write_without_delivering() {
    let (_, server) = tls_server(false);
    failed_write(&tls_config(server.port, json!({})));
    assert_eq!(server.requests(), 0);
}

#[test]
fn tls_without_the_ca_fails_write_at_once_as_a_config_error() {
    let (_, server) = tls_server(false);
    let config = tls_config(server.port, json!({}));
    let run = write_fixture(&config);
    let message = assert_fatal(&run, "config_error");
    assert!(
        message.to_lowercase().contains("certificate"),
        "names the certificate problem: {message}"
    );
    // Records already in flight each fail once; none is tried a second time.
    assert!(
        server.handshake_failures() <= 6,
        "not retried: {}",
        run.dump()
    );
    assert_eq!(server.requests(), 0);
}

#[test]
fn mutual_tls_with_the_client_certificate_checks_and_delivers() {
    let (pki, server) = tls_server(true);
    let config = tls_config(
        server.port,
        json!({
            "ca_certificate": pki.ca_pem,
            "client_certificate": pki.client_cert_pem,
            "client_key": pki.client_key_pem,
        }),
    );
    let (status, message) = status_of(&run_check(&config));
    assert_eq!(status, "SUCCEEDED", "{message}");
    let run = write_fixture(&config);
    assert_completed(&run);
    assert_eq!(server.requests(), 6, "{}", run.dump());
}

#[test]
fn mutual_tls_without_a_client_certificate_delivers_nothing() {
    let (pki, server) = tls_server(true);
    let run = failed_write(&tls_config(
        server.port,
        json!({"ca_certificate": pki.ca_pem}),
    ));
    assert!(run.never_finished(), "{}", run.dump());
    assert_eq!(server.requests(), 0);
    assert!(server.handshake_failures() >= 1);
}

#[test]
fn mutual_tls_without_a_client_certificate_fails_check() {
    let (pki, server) = tls_server(true);
    let config = tls_config(server.port, json!({"ca_certificate": pki.ca_pem}));
    let (status, message) = status_of(&run_check(&config));
    assert_eq!(status, "FAILED", "{message}");
    assert!(message.contains("client certificate"), "{message}");
}

// =============================================================================================
// 5. Secrets never appear on stdout or stderr

const TOKEN: &str = "tok-SECRET-1";
const PASSWORD: &str = "pw-SECRET-2";
const API_KEY: &str = "key-SECRET-3";
const SIGNING_RAW: &str = "sig-SECRET-4";
const URL_PASSWORD: &str = "pw-SECRET-5";
const HEADER_SECRET: &str = "hdr-SECRET-6";

fn signing_secret() -> String {
    format!("whsec_{}", B64.encode(SIGNING_RAW))
}

/// What `Authorization: Basic` carries for a password.
fn basic_credentials(password: &str) -> String {
    B64.encode(format!("user:{password}"))
}

/// Every form of every secret that must never be printed.
fn forbidden() -> Vec<String> {
    let mut out: Vec<String> = [
        TOKEN,
        PASSWORD,
        API_KEY,
        SIGNING_RAW,
        URL_PASSWORD,
        HEADER_SECRET,
        "SECRET",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    out.push(signing_secret());
    out.push(B64.encode(SIGNING_RAW));
    out.push(basic_credentials(PASSWORD));
    out.push(basic_credentials(URL_PASSWORD));
    for key in [&pki().client_key_pem, &pki().rogue_key_pem] {
        out.push(key.clone());
        // Every base64 line of the key's PEM body.
        out.extend(
            key.lines()
                .filter(|l| !l.starts_with("-----") && l.len() >= 16)
                .map(str::to_string),
        );
    }
    out
}

#[track_caller]
fn assert_no_secret(run: &Run, context: &str) {
    for secret in forbidden() {
        for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            assert!(
                !text.contains(&secret),
                "{context}: {stream} contains the secret {secret:?}:\n{}",
                run.dump()
            );
        }
    }
}

/// The ways a credential reaches the endpoint.
const BEARER: &str = "bearer";
const BASIC: &str = "basic";
const API_KEY_AUTH: &str = "api_key";
const URL_USERINFO: &str = "url userinfo";

/// One config per credential kind; each also has the signing secret, a secret header and a
/// client key (the TLS material is loaded for an http:// URL too, just not used; the mutual-TLS
/// server refuses this certificate).
fn secret_configs(host_port: &str, extra: Value) -> Vec<(&'static str, Value)> {
    let pki = pki();
    let plain_url = format!("http://{host_port}/hook");
    let userinfo_url = format!("http://user:{URL_PASSWORD}@{host_port}/hook");
    let variants = [
        (
            BEARER,
            &plain_url,
            json!({"type": "bearer", "token": TOKEN}),
        ),
        (
            BASIC,
            &plain_url,
            json!({"type": "basic", "username": "user", "password": PASSWORD}),
        ),
        (
            API_KEY_AUTH,
            &plain_url,
            json!({"type": "api_key", "header_name": "X-Partner-Key", "api_key": API_KEY}),
        ),
        (URL_USERINFO, &userinfo_url, json!({"type": "none"})),
    ];
    variants
        .into_iter()
        .map(|(name, url, auth)| {
            let c = config(
                url,
                json!({
                    "auth": auth,
                    "signing_secret": signing_secret(),
                    "headers": [format!("X-Api-Key: {HEADER_SECRET}")],
                    "tls": {
                        "client_certificate": pki.rogue_cert_pem,
                        "client_key": pki.rogue_key_pem,
                    },
                    "max_retries": 1,
                }),
            );
            (name, overlay(c, &extra))
        })
        .collect()
}

/// What a careless endpoint echoes back: the credentials this variant sent, as they were on the
/// wire, plus the other configured secrets.
fn echo_for(variant: &str) -> String {
    let credential = match variant {
        BEARER => format!("Authorization: Bearer {TOKEN}"),
        BASIC => format!("Authorization: Basic {}", basic_credentials(PASSWORD)),
        API_KEY_AUTH => format!("X-Partner-Key: {API_KEY}"),
        URL_USERINFO => format!("Authorization: Basic {}", basic_credentials(URL_PASSWORD)),
        other => panic!("unknown variant {other}"),
    };
    format!(
        "unauthorized; you sent {credential} and X-Api-Key: {HEADER_SECRET} (signing secret {})",
        signing_secret()
    )
}

/// The header that carries this variant's credential, as the connector must send it.
fn sent_credential(variant: &str) -> (&'static str, String) {
    match variant {
        BEARER => ("authorization", format!("Bearer {TOKEN}")),
        BASIC => (
            "authorization",
            format!("Basic {}", basic_credentials(PASSWORD)),
        ),
        API_KEY_AUTH => ("x-partner-key", API_KEY.to_string()),
        URL_USERINFO => (
            "authorization",
            format!("Basic {}", basic_credentials(URL_PASSWORD)),
        ),
        other => panic!("unknown variant {other}"),
    }
}

#[test]
fn a_successful_sync_prints_no_secret() {
    let receiver = Receiver::start_default();
    for (variant, config) in secret_configs(&receiver.addr().to_string(), json!({})) {
        let before = receiver.requests().len();
        let run = write_fixture(&config);
        assert_completed(&run);
        assert_no_secret(&run, variant);
        // The secrets really were sent, so their absence from the output means something.
        let requests = receiver.requests();
        assert_eq!(requests.len(), before + 6);
        let (name, value) = sent_credential(variant);
        for r in &requests[before..] {
            assert_eq!(r.header(name), Some(value.as_str()), "{variant}");
            assert_eq!(r.header("x-api-key"), Some(HEADER_SECRET));
        }
    }
}

/// Endpoint answers `reply` with `body` to everything; for each variant in `variants` the sync
/// fails with `failure_type`, names the endpoint and the status, and prints no secret.
fn assert_echo_is_redacted(status: u16, variants: &[&str], body: impl Fn(&str) -> String) {
    let receiver = Receiver::start_default();
    let host_port = receiver.addr().to_string();
    for (variant, mut config) in secret_configs(&host_port, json!({})) {
        if !variants.contains(&variant) {
            continue;
        }
        receiver.set_script(Script {
            default: Reply::status(status).with_body(body(variant)),
            ..Script::default()
        });
        config["concurrency"] = json!(1);
        let run = write_fixture(&config);
        let failure_type = if status == 401 {
            "config_error"
        } else {
            "transient_error"
        };
        let message = assert_fatal(&run, failure_type);
        assert!(
            message.contains(&status.to_string()),
            "{variant}: {message}"
        );
        assert!(
            message.contains(&format!("{host_port}/hook")),
            "{variant}: names the endpoint: {message}"
        );
        assert!(
            message.contains("unauthorized"),
            "{variant}: quotes the answer: {message}"
        );
        assert_no_secret(&run, variant);
    }
}

#[test]
fn a_401_that_echoes_a_bearer_token_or_api_key_prints_no_secret() {
    assert_echo_is_redacted(401, &[BEARER, API_KEY_AUTH], echo_for);
}

#[test]
fn exhausted_retries_on_answers_that_echo_secrets_print_no_secret() {
    assert_echo_is_redacted(500, &[BEARER, API_KEY_AUTH], echo_for);
}

#[test]
fn a_401_or_500_that_echoes_basic_credentials_prints_no_secret() {
    assert_echo_is_redacted(401, &[BASIC, URL_USERINFO], echo_for);
    assert_echo_is_redacted(500, &[BASIC, URL_USERINFO], echo_for);
}

#[test]
fn a_secret_cut_by_the_response_excerpt_is_not_printed_in_part() {
    // Padding that puts byte 200 of the body right after "tok-SECRET", inside the token.
    let body = |variant: &str| {
        let echo = echo_for(variant);
        let at = echo.find(TOKEN).unwrap();
        format!("unauthorized {}{}", "p".repeat(200 - 13 - at - 10), echo)
    };
    assert_echo_is_redacted(401, &[BEARER], body);
}

#[test]
fn a_refused_connection_prints_no_secret() {
    let port = closed_port();
    for (variant, config) in secret_configs(&format!("127.0.0.1:{port}"), json!({})) {
        let run = write_fixture(&config);
        let message = assert_fatal(&run, "transient_error");
        assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
        assert_no_secret(&run, variant);

        let checked = run_check(&config);
        let (status, message) = status_of(&checked);
        assert_eq!(status, "FAILED");
        assert!(message.contains("refused"), "{message}");
        assert_no_secret(&checked, variant);
    }
}

#[test]
fn an_invalid_config_prints_no_secret() {
    let receiver = Receiver::start_default();
    let host_port = receiver.addr().to_string();
    let mut broken = Vec::new();
    for (variant, config) in secret_configs(&host_port, json!({"concurrency": 0})) {
        broken.push((format!("{variant} + concurrency 0"), config));
    }
    let base = secret_configs(&host_port, json!({})).remove(0).1;
    let mut c = base.clone();
    c["auth"] = json!({"type": "bearer", "tok": TOKEN});
    broken.push(("a misspelt token field".into(), c));
    let mut c = base.clone();
    c["auth"] = json!({"type": "bearer", "token": format!("{TOKEN}\nX")});
    broken.push(("a token with a newline".into(), c));
    let mut c = base.clone();
    c["url"] = json!(format!("http://user:{URL_PASSWORD}@127.0.0.1:99999/hook"));
    broken.push(("a userinfo URL with an invalid port".into(), c));
    let mut c = base.clone();
    c["url"] = json!(format!("ftp://user:{URL_PASSWORD}@127.0.0.1/hook"));
    broken.push(("a userinfo URL with a wrong scheme".into(), c));
    let mut c = base.clone();
    c["headers"] = json!([format!("X-Api-Key: {HEADER_SECRET}\nmore")]);
    broken.push(("a secret header with a newline".into(), c));
    let mut c = base.clone();
    c["tls"]["client_key"] = json!(format!(
        "-----BEGIN PRIVATE KEY-----\n{PASSWORD}\n-----END PRIVATE KEY-----\n"
    ));
    broken.push(("an unreadable client key".into(), c));
    let mut c = base.clone();
    c["timeout_seconds"] = json!(TOKEN);
    broken.push(("a secret in a number field".into(), c));
    let mut c = base.clone();
    c["signing_secret"] = json!(12345);
    broken.push(("a number as the signing secret".into(), c));
    let mut c = base.clone();
    c["auth"] = json!({"type": "Bearer", "token": TOKEN});
    broken.push(("an unknown auth type".into(), c));

    for (what, config) in broken {
        let run = write_fixture(&config);
        assert_fatal(&run, "config_error");
        assert_no_secret(&run, &what);
        let checked = run_check(&config);
        let (status, _) = status_of(&checked);
        assert_eq!(status, "FAILED", "{what}");
        assert_no_secret(&checked, &what);
    }
    assert_eq!(receiver.request_count(), 0);
}

#[test]
fn failing_checks_and_tls_failures_print_no_secret() {
    let (pki, server) = tls_server(true);
    for (variant, mut config) in secret_configs(&format!("127.0.0.1:{}", server.port), json!({})) {
        // https (with userinfo in one variant): untrusted, since no CA is configured.
        let url = config["url"]
            .as_str()
            .unwrap()
            .replace("http://", "https://");
        config["url"] = json!(url);
        let checked = run_check(&config);
        assert_eq!(status_of(&checked).0, "FAILED");
        assert_no_secret(&checked, variant);
        let written = write_fixture(&config);
        assert_ne!(written.code, Some(0));
        assert_no_secret(&written, variant);
        // Trusted, but the server refuses the client certificate (signed by another CA).
        config["tls"]["ca_certificate"] = json!(pki.ca_pem);
        let written = write_fixture(&config);
        assert_ne!(written.code, Some(0));
        assert_no_secret(&written, variant);

        // Credentials in the URL stand in for `auth`; a config with both is refused.
        config["auth"] = json!({"type": "none"});
        config["url"] = json!(format!(
            "http://user:{URL_PASSWORD}@nonexistent.invalid/hook"
        ));
        let checked = run_check(&config);
        let (status, message) = status_of(&checked);
        assert_eq!(status, "FAILED");
        assert!(message.contains("nonexistent.invalid"), "{message}");
        assert_no_secret(&checked, variant);
    }
    assert_eq!(server.requests(), 0);
}

#[test]
fn a_dry_run_prints_requests_without_secrets() {
    let receiver = Receiver::start_default();
    let endpoint = format!("{}/hook", receiver.addr());
    for method in ["POST", "GET"] {
        for (variant, config) in
            secret_configs(&receiver.addr().to_string(), json!({"method": method}))
        {
            let dir = Workdir::new();
            let mut args = valmi_args(&dir, &config, None, None);
            args.push("--dry-run".into());
            let run = run(&str_args(&args), valmi_messages().as_bytes());
            assert_completed(&run);
            let shown: Vec<String> = run
                .logs("INFO")
                .into_iter()
                .filter(|m| m.contains(&endpoint) && m.contains(method))
                .collect();
            assert!(shown.len() >= 6, "{variant} {method}: {}", run.dump());
            assert_no_secret(&run, &format!("{variant} {method} dry run"));
        }
    }
    assert_eq!(receiver.request_count(), 0, "a dry run sends nothing");
}

#[test]
fn url_userinfo_does_not_silently_replace_the_configured_auth() {
    let receiver = Receiver::start_default();
    let url = format!("http://user:{URL_PASSWORD}@{}/hook", receiver.addr());
    let config = config(&url, json!({"auth": {"type": "bearer", "token": TOKEN}}));
    let run = write_fixture(&config);
    if run.code == Some(0) {
        for r in receiver.requests() {
            assert_eq!(
                r.header("authorization"),
                Some(format!("Bearer {TOKEN}").as_str()),
                "the configured bearer token was replaced"
            );
        }
    } else {
        assert_fatal(&run, "config_error");
        assert_eq!(receiver.request_count(), 0);
    }
}

// =============================================================================================
// 6. Redirects are never followed

#[test]
fn a_redirect_is_not_followed_and_is_reported_with_its_location() {
    for status in [302u16, 307] {
        let elsewhere = Receiver::start_default();
        let location = format!(
            "http://mallory:pw-REDIRECT-7@{}/elsewhere?x=1",
            elsewhere.addr()
        );
        let receiver = receiver_answering(Reply::status(status).with_header("Location", location));
        let config = config(
            &receiver.url("/hook"),
            json!({"concurrency": 1, "auth": {"type": "bearer", "token": TOKEN}}),
        );
        let run = write_fixture(&config);
        let message = assert_fatal(&run, "config_error");
        assert!(
            message.contains(&format!("{}/elsewhere", elsewhere.addr())),
            "{status}: names the Location: {message}"
        );
        assert!(message.contains(&status.to_string()), "{message}");
        assert!(!run.stdout.contains("pw-REDIRECT-7"), "{}", run.dump());
        assert!(!run.stdout.contains("mallory"), "{}", run.dump());
        assert_no_secret(&run, "redirect");
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(receiver.request_count(), 1, "{status}: {}", run.dump());
        assert_eq!(
            elsewhere.request_count(),
            0,
            "{status}: the redirect was followed"
        );
    }
}

// =============================================================================================
// 7. A huge response body is not kept

/// A 6-record Valmi sync against an endpoint answering 200 with `body_bytes` bytes to every
/// request: the run, the request count and the child's peak RSS (kB) seen while it ran.
fn sync_with_answers_of(body_bytes: usize) -> (Run, u64, u64) {
    let receiver = receiver_answering(Reply::status(200).with_body_bytes(body_bytes));
    let config = config(
        &receiver.url("/hook"),
        json!({"timeout_seconds": 20, "concurrency": 6}),
    );
    let dir = Workdir::new();
    let mut child = spawn(&str_args(&valmi_args(&dir, &config, None, None)));
    let pid = child.id();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(valmi_messages().as_bytes())
        .unwrap();
    let mut peak = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "write did not finish");
        if let Some(kb) = vm_hwm_kb(pid) {
            peak = peak.max(kb);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let run = wait(child);
    (run, receiver.request_count(), peak)
}

#[test]
fn ten_megabyte_answers_are_read_and_dropped() {
    const MB10: usize = 10 * 1024 * 1024;
    let (run, requests, peak) = sync_with_answers_of(MB10);
    assert_completed(&run);
    assert_eq!(requests, 6);
    assert!(
        run.states()
            .last()
            .is_some_and(|s| state_data(s)["finished"] == true),
        "{}",
        run.dump()
    );
    // Against the same sync with empty answers: keeping the six 10 MiB answers (all in flight
    // at once) whole would add 60 MiB; reading in chunks and keeping 64 KiB adds only what the
    // allocator caches of the freed chunks (mimalloc keeps freed pages a few milliseconds).
    let (baseline_run, _, baseline) = sync_with_answers_of(0);
    assert_completed(&baseline_run);
    assert!(peak > 0 && baseline > 0, "VmHWM not read");
    assert!(
        peak < baseline + 20 * 1024,
        "peak RSS {peak} kB with 10 MiB answers vs {baseline} kB with empty ones"
    );
}

/// An API key given as the URL's user name (`https://sk_live_…@host/`) is sent as Basic auth and
/// is a secret like any other: a 400 that echoes the key and the Authorization header it came in
/// prints neither (issue 15, item 4).
#[test]
fn an_api_key_given_as_the_urls_user_name_is_never_printed() {
    const KEY: &str = "sk_live_userinfo-key-51Hx";
    let sent = B64.encode(format!("{KEY}:"));
    let receiver = Receiver::start_default();
    receiver.set_script(Script {
        default: Reply::status(400).with_body(format!(
            "bad request; you sent Authorization: Basic {sent} (key {KEY})"
        )),
        ..Script::default()
    });
    let url = format!("http://{KEY}@{}/hook", receiver.addr());
    let run = write_fixture(&config(&url, json!({})));
    assert_completed(&run);
    assert_eq!(run.rejected_records().len(), 6, "{}", run.dump());
    let requests = receiver.requests();
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Basic {sent}").as_str())
    );
    for secret in [KEY, sent.as_str()] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "{secret} printed:\n{}",
            run.dump()
        );
    }
}

/// A config that fails validation still has its secrets kept out of the messages about it, found
/// by field name wherever they sit: in an object (`auth.token`) or in an array inside one. Here
/// the same value is also, by mistake, the `method`, which the message quotes.
#[test]
fn an_invalid_configs_secrets_are_kept_out_of_its_messages_wherever_they_sit() {
    for (secret, placed) in [
        (
            "tok-in-object-51",
            json!({"auth": {"type": "bearer", "token": "tok-in-object-51"}}),
        ),
        (
            "pw-in-array-52",
            json!({"run_time_args": {"extra": [{"password": "pw-in-array-52"}]}}),
        ),
    ] {
        let mut config = overlay(json!({"url": "http://127.0.0.1:9/hook"}), &placed);
        config["method"] = json!(secret);
        let run = run_check(&config);
        let (status, message) = status_of(&run);
        assert_eq!(status, "FAILED", "{}", run.dump());
        assert!(message.contains("method: '<redacted>'"), "{message}");
        assert!(!run.stdout.contains(secret), "{}", run.dump());
    }
}
