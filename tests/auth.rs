//! Signing for receivers that rotate secrets or follow another HMAC convention (issue #19), end
//! to end through the binary: Standard Webhooks signatures with several secrets, verified by the
//! receiver's independent `standardwebhooks` library with each secret alone; GitHub-, Shopify-
//! and Stripe-style HMAC headers checked by verifiers written here from each convention's public
//! documentation, over the bytes captured off the wire.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use common::*;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use webhook_receiver::{
    HmacConvention, Receiver, ReceiverOptions, Reply, Script, Tls, TokenEndpoint,
};

const OLD: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NEW: &str = "a new raw secret";

fn signing_receiver(secret: &str) -> Receiver {
    Receiver::start(ReceiverOptions {
        signing_secret: Some(secret.to_string()),
        ..ReceiverOptions::default()
    })
    .unwrap()
}

/// The fixture's six records written to `receiver` with `extra` config; the sync completes.
fn sync_to(receiver: &Receiver, extra: Value) -> Run {
    let run = write_valmi(
        &config(&receiver.url("/hook"), extra),
        valmi_messages().as_bytes(),
    );
    assert_completed(&run);
    run
}

/// Whether each request to a receiver verifying with `secret` alone passed.
fn verified_with(secret: &str, extra: Value) -> Vec<Option<bool>> {
    let receiver = signing_receiver(secret);
    sync_to(&receiver, extra);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 6);
    requests.iter().map(|r| r.signature_valid).collect()
}

// =============================================================================================
// 1. Signing-secret rotation

#[test]
fn with_two_secrets_a_receiver_holding_either_one_alone_verifies_every_request() {
    let rotating = json!({"signing_secret": OLD, "signing_secrets": [NEW]});
    assert_eq!(verified_with(OLD, rotating.clone()), vec![Some(true); 6]);
    assert_eq!(verified_with(NEW, rotating.clone()), vec![Some(true); 6]);
    // Only the configured secrets verify.
    assert_eq!(
        verified_with("a third secret", rotating),
        vec![Some(false); 6]
    );
}

#[test]
fn signing_secrets_alone_sign_and_each_secret_adds_one_v1_signature() {
    let receiver = signing_receiver(NEW);
    sync_to(&receiver, json!({"signing_secrets": [OLD, NEW]}));
    for r in receiver.requests() {
        assert_eq!(r.signature_valid, Some(true));
        let signatures: Vec<&str> = r.header("webhook-signature").unwrap().split(' ').collect();
        assert_eq!(signatures.len(), 2, "{signatures:?}");
        assert!(signatures.iter().all(|s| s.starts_with("v1,")));
    }
}

#[test]
fn a_malformed_rotated_secret_fails_check_and_write_naming_it_before_any_record() {
    let receiver = Receiver::start_default();
    let bad = json!({"signing_secret": OLD, "signing_secrets": [NEW, "whsec_not*base64"]});
    let config = config(&receiver.url("/hook"), bad);
    let check = run_check(&config);
    let status = &check.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "FAILED", "{}", check.dump());
    let message = status["message"].as_str().unwrap();
    assert!(
        message.contains("signing_secrets[1]: starts with 'whsec_'"),
        "{message}"
    );
    let run = write_valmi(&config, valmi_messages().as_bytes());
    let said = assert_fatal(&run, "config_error");
    assert!(said.contains("signing_secrets[1]"), "{said}");
    assert!(!run.dump().contains("not*base64"), "{}", run.dump());
    assert_eq!(receiver.request_count(), 0);
}

// =============================================================================================
// 2. HMAC conventions, verified over the exact bytes received

/// One request as it arrived: lowercased header names with values, and the raw body.
struct Captured {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Captured {
    fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A loopback HTTP/1.1 server that answers 200 and keeps every request's body byte for byte.
struct Capture {
    url: String,
    requests: Arc<Mutex<Vec<Captured>>>,
}

impl Capture {
    fn start() -> Capture {
        Capture::serving(None)
    }

    /// Over TLS with a certificate for 127.0.0.1 from a CA made here; returns the CA's PEM.
    fn start_tls() -> (Capture, String) {
        let (server_config, ca_pem) = tls_server_config();
        (Capture::serving(Some(server_config)), ca_pem)
    }

    fn serving(tls: Option<Arc<rustls::ServerConfig>>) -> Capture {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}/hook", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let kept = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (kept, tls) = (kept.clone(), tls.clone());
                std::thread::spawn(move || match tls {
                    None => serve(stream, &kept),
                    Some(config) => {
                        let session = rustls::ServerConnection::new(config).unwrap();
                        serve(rustls::StreamOwned::new(session, stream), &kept)
                    }
                });
            }
        });
        Capture { url, requests }
    }

    fn take(&self) -> Vec<Captured> {
        std::mem::take(&mut self.requests.lock().unwrap())
    }
}

fn serve<S: Read + Write>(stream: S, kept: &Mutex<Vec<Captured>>) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut headers = Vec::new();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap_or(0); // request line
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            match line.trim_end().split_once(':') {
                Some((n, v)) => headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string())),
                None => break,
            }
        }
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        kept.lock().unwrap().push(Captured { headers, body });
        let out = reader.get_mut();
        if out
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
    }
}

/// The six fixture records sent to a capture server with `extra` config.
fn captured_sync(extra: Value) -> Vec<Captured> {
    let server = Capture::start();
    let run = write_valmi(&config(&server.url, extra), valmi_messages().as_bytes());
    assert_completed(&run);
    let requests = server.take();
    assert_eq!(requests.len(), 6);
    requests
}

fn hmac_sha256(key: &[u8], text: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(text);
    mac.finalize().into_bytes().to_vec()
}

/// GitHub, "Validating webhook deliveries": `X-Hub-Signature-256` is `sha256=` followed by the
/// lowercase hex HMAC-SHA256 of the raw payload, keyed with the webhook secret.
fn github_accepts(secret: &str, request: &Captured) -> bool {
    let digest: String = hmac_sha256(secret.as_bytes(), &request.body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    request.header("X-Hub-Signature-256") == Some(format!("sha256={digest}").as_str())
}

/// Shopify, "Verify webhooks": `X-Shopify-Hmac-Sha256` is the base64 HMAC-SHA256 of the raw
/// request body, keyed with the app's client secret.
fn shopify_accepts(secret: &str, request: &Captured) -> bool {
    let digest = B64.encode(hmac_sha256(secret.as_bytes(), &request.body));
    request.header("X-Shopify-Hmac-Sha256") == Some(digest.as_str())
}

const HMAC_SECRET: &str = "It's a Secret to Everybody";

#[test]
fn a_github_style_signature_verifies_by_githubs_recipe() {
    let requests = captured_sync(json!({"hmac_signature": {
        "header_name": "X-Hub-Signature-256", "secret": HMAC_SECRET, "prefix": "sha256="}}));
    assert!(requests.iter().all(|r| github_accepts(HMAC_SECRET, r)));
    assert!(requests
        .iter()
        .all(|r| !github_accepts("another secret", r)));
    // Nothing else changes: no Standard Webhooks headers without signing_secret.
    assert!(requests
        .iter()
        .all(|r| r.header("webhook-signature").is_none()));
}

/// What the receiver's HMAC mode (`--secret` with `--hmac-header`) says of each request the
/// connector signs with `hmac`, the receiver verifying with `secret` and `convention`.
fn receiver_verdicts(hmac: Value, secret: &str, convention: HmacConvention) -> Vec<Option<bool>> {
    let receiver = Receiver::start(ReceiverOptions {
        signing_secret: Some(secret.to_string()),
        hmac: Some(convention),
        ..ReceiverOptions::default()
    })
    .unwrap();
    sync_to(
        &receiver,
        json!({ "compression": "gzip", "hmac_signature": hmac }),
    );
    receiver
        .requests()
        .iter()
        .map(|r| r.signature_valid)
        .collect()
}

#[test]
fn the_receivers_hmac_mode_verifies_every_convention() {
    for (hmac, convention) in [
        (
            json!({"header_name": "X-Hub-Signature-256", "secret": HMAC_SECRET, "prefix": "sha256="}),
            HmacConvention {
                header: "x-hub-signature-256".into(),
                prefix: "sha256=".into(),
                ..HmacConvention::default()
            },
        ),
        (
            json!({"header_name": "X-Sig", "secret": HMAC_SECRET, "encoding": "base64",
                "timestamp_header": "X-Ts"}),
            HmacConvention {
                header: "x-sig".into(),
                base64: true,
                timestamp_header: Some("x-ts".into()),
                ..HmacConvention::default()
            },
        ),
    ] {
        let verdicts = receiver_verdicts(hmac.clone(), HMAC_SECRET, convention.clone());
        assert_eq!(verdicts, vec![Some(true); 6], "{hmac}");
        let verdicts = receiver_verdicts(hmac.clone(), "another secret", convention);
        assert_eq!(verdicts, vec![Some(false); 6], "{hmac}");
    }
}

#[test]
fn a_shopify_style_signature_covers_the_gzip_bytes_sent() {
    let requests = captured_sync(json!({"compression": "gzip", "hmac_signature": {
        "header_name": "X-Shopify-Hmac-Sha256", "secret": HMAC_SECRET, "encoding": "base64"}}));
    for r in &requests {
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(&r.body[..2], &[0x1f, 0x8b], "a gzip body");
        assert!(shopify_accepts(HMAC_SECRET, r));
    }
}

#[test]
fn a_timestamped_signature_verifies_by_stripes_signed_payload_recipe() {
    let requests = captured_sync(json!({"hmac_signature": {
        "header_name": "X-Signature", "secret": HMAC_SECRET, "timestamp_header": "X-Timestamp"}}));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for r in &requests {
        // Stripe, "Verify the signature manually": signed_payload = timestamp + "." + body,
        // HMAC-SHA256 with the endpoint secret, hex.
        let timestamp = r.header("X-Timestamp").expect("a timestamp header");
        assert!(timestamp.parse::<u64>().unwrap().abs_diff(now) < 300);
        let mut signed = format!("{timestamp}.").into_bytes();
        signed.extend_from_slice(&r.body);
        let expected: String = hmac_sha256(HMAC_SECRET.as_bytes(), &signed)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(r.header("X-Signature"), Some(expected.as_str()));
    }
}

#[test]
fn both_signatures_at_once_each_verify() {
    let receiver = signing_receiver(OLD);
    sync_to(
        &receiver,
        json!({"signing_secret": OLD, "hmac_signature": {
            "header_name": "X-Hub-Signature-256", "secret": HMAC_SECRET, "prefix": "sha256="}}),
    );
    for r in receiver.requests() {
        assert_eq!(r.signature_valid, Some(true));
        let request = Captured {
            headers: vec![(
                "x-hub-signature-256".into(),
                r.header("x-hub-signature-256").unwrap().into(),
            )],
            body: r.body.into_bytes(),
        };
        assert!(github_accepts(HMAC_SECRET, &request));
    }
}

#[test]
fn an_hmac_signature_without_a_usable_secret_is_a_config_error_and_nothing_is_sent() {
    let server = Capture::start();
    for hmac in [
        json!({"header_name": "X-Hub-Signature-256"}),
        json!({"header_name": "X-Hub-Signature-256", "secret": ""}),
    ] {
        let config = config(&server.url, json!({"hmac_signature": hmac}));
        let check = run_check(&config);
        let status = &check.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
        assert_eq!(status["status"], "FAILED", "{}", check.dump());
        assert!(
            status["message"]
                .as_str()
                .unwrap()
                .contains("hmac_signature"),
            "{}",
            check.dump()
        );
        let run = write_valmi(&config, valmi_messages().as_bytes());
        assert_fatal(&run, "config_error");
    }
    assert!(server.take().is_empty());
}

#[test]
fn a_dry_run_shows_every_signature_header_without_a_secret() {
    let server = Capture::start();
    let config = config(
        &server.url,
        json!({"signing_secret": OLD, "signing_secrets": [NEW], "hmac_signature": {
            "header_name": "X-Hub-Signature-256", "secret": HMAC_SECRET, "prefix": "sha256="}}),
    );
    let dir = Workdir::new();
    let mut args = valmi_args(&dir, &config, None, None);
    args.push("--dry-run".into());
    let run = run(&str_args(&args), valmi_messages().as_bytes());
    assert_completed(&run);
    let shown = run.logs("INFO").join("\n");
    assert!(
        shown
            .contains("webhook-signature: v1,<hmac> v1,<hmac>, x-hub-signature-256: sha256=<hmac>"),
        "{shown}"
    );
    for secret in [OLD, NEW, HMAC_SECRET, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] {
        assert!(!run.dump().contains(secret), "{secret}");
    }
    assert!(server.take().is_empty());
}

// =============================================================================================
// 3. A proxy in the config

/// A CA made here: its certificate and key.
fn make_ca() -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    (params.self_signed(&key).unwrap(), key)
}

/// A server config for 127.0.0.1 signed by a CA made here, and the CA's PEM; with
/// `client_ca`, only clients with a certificate from that CA are let in (mutual TLS).
fn server_config(client_ca: Option<&rcgen::Certificate>) -> (Arc<rustls::ServerConfig>, String) {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let (ca, ca_key) = make_ca();
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(client_ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(client_ca.der().clone()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    (Arc::new(config), ca.pem())
}

fn tls_server_config() -> (Arc<rustls::ServerConfig>, String) {
    server_config(None)
}

const PROXY_USER: &str = "proxy-user";
const PROXY_PASSWORD: &str = "pr0xy-S3cr3t";

fn write_env(config: &Value, env: &[(&str, Option<&str>)]) -> Run {
    write_valmi_with_env(config, valmi_messages().as_bytes(), env)
}

/// The CONNECTION_STATUS of a check: (status, message).
fn status(run: &Run) -> (String, String) {
    let s = &run.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    let text = |k: &str| s[k].as_str().unwrap().to_string();
    (text("status"), text("message"))
}

fn dead_proxy() -> String {
    format!("http://127.0.0.1:{}", closed_port())
}

#[test]
fn an_https_endpoint_is_reached_through_the_configured_proxys_tunnel_with_tls_end_to_end() {
    let (endpoint, ca_pem) = Capture::start_tls();
    let (port, heads) = connect_proxy(200);
    let config = config(
        &endpoint.url,
        json!({"tls": {"ca_certificate": ca_pem}, "proxy": {
            "url": format!("http://127.0.0.1:{port}"),
            "username": PROXY_USER, "password": PROXY_PASSWORD}}),
    );
    // The environment names a dead proxy: the config's wins.
    let dead = dead_proxy();
    let env = proxy_env(&dead);
    let (checked, said) = status(&check_env(&config, &env));
    assert_eq!(checked, "SUCCEEDED", "{said}");
    assert!(
        said.contains(&format!("through the proxy http://127.0.0.1:{port}")),
        "{said}"
    );
    let run = write_env(&config, &env);
    assert_completed(&run);
    assert_eq!(
        endpoint.take().len(),
        6,
        "every record reached the endpoint over TLS"
    );
    let heads = heads.lock().unwrap().clone();
    let credential = B64.encode(format!("{PROXY_USER}:{PROXY_PASSWORD}"));
    assert!(!heads.is_empty());
    for head in &heads {
        let target = endpoint
            .url
            .trim_start_matches("https://")
            .trim_end_matches("/hook");
        assert!(head.starts_with(&format!("CONNECT {target} ")), "{head}");
        assert!(
            head.to_ascii_lowercase().contains(&format!(
                "proxy-authorization: basic {}",
                credential.to_ascii_lowercase()
            )),
            "{head}"
        );
    }
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains(PROXY_PASSWORD) && !text.contains(&credential));
    }
}

#[test]
fn a_plain_http_endpoint_goes_through_the_configured_proxy() {
    // The receiver stands in for the proxy (it answers whatever it is sent); nothing listens at
    // the endpoint, so a request that bypassed the proxy would fail the run.
    let proxy = Receiver::start_default();
    let endpoint = format!("http://127.0.0.1:{}/hook", closed_port());
    let config = config(
        &endpoint,
        json!({"proxy": {"url": proxy.url(""), "username": PROXY_USER, "password": PROXY_PASSWORD}}),
    );
    assert_completed(&write_env(&config, &proxy_env(&dead_proxy())));
    let requests = proxy.requests();
    assert_eq!(requests.len(), 6);
    let credential = format!(
        "Basic {}",
        B64.encode(format!("{PROXY_USER}:{PROXY_PASSWORD}"))
    );
    assert!(requests
        .iter()
        .all(|r| r.header("proxy-authorization") == Some(credential.as_str())));
}

#[test]
fn a_bypassed_host_is_reached_directly() {
    let receiver = Receiver::start_default();
    let config = config(
        &receiver.url("/hook"),
        json!({"proxy": {"url": dead_proxy(), "bypass": ["example.com", "127.0.0.1"]}}),
    );
    let dead = dead_proxy();
    let env = proxy_env(&dead);
    let (checked, said) = status(&check_env(&config, &env));
    assert_eq!(checked, "SUCCEEDED", "{said}");
    assert!(!said.contains("proxy"), "{said}");
    assert_completed(&write_env(&config, &env));
    assert_eq!(receiver.request_count(), 6);
}

#[test]
fn a_dead_configured_proxy_is_named_by_check_and_write_without_its_credentials() {
    let receiver = Receiver::start_default();
    let proxy = dead_proxy();
    let config = config(
        &receiver.url("/hook"),
        json!({"proxy": {"url": proxy, "username": PROXY_USER, "password": PROXY_PASSWORD}}),
    );
    let env = proxy_env("");
    let checked = check_env(&config, &env);
    let (result, said) = status(&checked);
    assert_eq!(result, "FAILED");
    assert!(said.contains(&format!("proxy {proxy}")), "{said}");
    let written = write_env(&config, &env);
    assert!(!written.errors().is_empty(), "{}", written.dump());
    assert!(
        written.dump().contains(&format!("proxy {proxy}")),
        "{}",
        written.dump()
    );
    for run in [&checked, &written] {
        assert!(!run.dump().contains(PROXY_PASSWORD), "{}", run.dump());
    }
    assert_eq!(receiver.request_count(), 0);
}

#[test]
fn an_unsupported_proxy_is_a_config_error_before_any_record() {
    let receiver = Receiver::start_default();
    for (proxy, says) in [
        (
            json!({"url": "socks5://127.0.0.1:1080"}),
            "proxy.url: the scheme 'socks5' is not supported",
        ),
        (
            json!({"url": format!("http://u:{PROXY_PASSWORD}@127.0.0.1:1")}),
            "proxy.url: carries credentials",
        ),
    ] {
        let config = config(&receiver.url("/hook"), json!({ "proxy": proxy }));
        let checked = check_env(&config, &proxy_env(""));
        let (result, said) = status(&checked);
        assert_eq!(result, "FAILED");
        assert!(said.contains(says), "{said}");
        let run = write_env(&config, &proxy_env(""));
        let message = assert_fatal(&run, "config_error");
        assert!(message.contains(says), "{message}");
        for run in [&checked, &run] {
            assert!(!run.dump().contains(PROXY_PASSWORD), "{}", run.dump());
        }
    }
    assert_eq!(receiver.request_count(), 0);
}

/// A CONNECT proxy spoken to over TLS (an `https://` proxy) with `tls`: each tunnel is piped to
/// its target once the proxy answers 200. Returns its port and the request heads it was sent.
fn tls_connect_proxy(tls: Arc<rustls::ServerConfig>) -> (u16, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let acceptor = tokio_rustls::TlsAcceptor::from(tls);
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, seen) = (acceptor.clone(), seen.clone());
                tokio::spawn(async move {
                    let Ok(mut client) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut head = Vec::new();
                    while !head.ends_with(b"\r\n\r\n") {
                        match client.read_u8().await {
                            Ok(byte) => head.push(byte),
                            Err(_) => return,
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    seen.lock().unwrap().push(head.clone());
                    let target = head.split_whitespace().nth(1).unwrap_or_default();
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let answer = b"HTTP/1.1 200 Connection established\r\n\r\n";
                    if client.write_all(answer).await.is_ok() && client.flush().await.is_ok() {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
            }
        });
    });
    (port, heads)
}

#[test]
fn an_https_proxy_is_spoken_to_over_tls_by_check_and_write() {
    let (tls, ca_pem) = tls_server_config();
    let endpoint = Capture::serving(Some(tls.clone()));
    let (port, heads) = tls_connect_proxy(tls);
    let config = config(
        &endpoint.url,
        json!({"tls": {"ca_certificate": ca_pem},
            "proxy": {"url": format!("https://127.0.0.1:{port}"), "username": PROXY_USER}}),
    );
    let env = proxy_env("");
    let (checked, said) = status(&check_env(&config, &env));
    assert_eq!(checked, "SUCCEEDED", "{said}");
    assert!(
        said.contains(&format!("through the proxy https://127.0.0.1:{port}")),
        "{said}"
    );
    assert_completed(&write_env(&config, &env));
    assert_eq!(endpoint.take().len(), 6);
    let heads = heads.lock().unwrap();
    // One tunnel for check, at least one for write; each with the proxy's credentials.
    assert!(heads.len() >= 2, "{heads:?}");
    assert!(heads.iter().all(|h| h
        .to_ascii_lowercase()
        .contains("proxy-authorization: basic ")));
}

// =============================================================================================
// 4. OAuth2 client credentials, against the receiver's token endpoint mode

const CLIENT_ID: &str = "connector-client";
const CLIENT_SECRET: &str = "cl1ent-S3cr3t";

/// A receiver serving tokens of `lifetime` at `/token` (the first `fail_first` token requests
/// answered 503) and answering 401 elsewhere without a valid one; `/hook` answers `hook`.
fn token_receiver(lifetime: Option<u64>, fail_first: usize, hook: Reply) -> Receiver {
    token_receiver_with(
        TokenEndpoint {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            lifetime: lifetime.map(std::time::Duration::from_secs),
            fail_first,
            expire_after: None,
        },
        hook,
    )
}

fn token_receiver_with(endpoint: TokenEndpoint, hook: Reply) -> Receiver {
    Receiver::start(ReceiverOptions {
        token_endpoint: Some(endpoint),
        script: Script {
            default: hook,
            ..Script::default()
        },
        ..ReceiverOptions::default()
    })
    .unwrap()
}

fn oauth_config(receiver: &Receiver, oauth: Value, extra: Value) -> Value {
    let mut auth = json!({"type": "oauth2_client_credentials", "token_url": receiver.url("/token"),
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET});
    auth.as_object_mut()
        .unwrap()
        .extend(oauth.as_object().unwrap().clone());
    overlay(
        config(&receiver.url("/hook"), extra),
        &json!({ "auth": auth }),
    )
}

/// (token requests, /hook requests answered 200, /hook requests answered 401).
fn token_traffic(receiver: &Receiver) -> (usize, usize, usize) {
    let requests = receiver.requests();
    let token = requests.iter().filter(|r| r.path == "/token").count();
    let hook = |status| {
        requests
            .iter()
            .filter(|r| r.path == "/hook" && r.status == status)
            .count()
    };
    (token, hook(200), hook(401))
}

#[track_caller]
fn assert_no_oauth_secret(run: &Run) {
    let dump = run.dump();
    assert!(!dump.contains(CLIENT_SECRET), "{dump}");
    assert!(!dump.contains("receiver-token-"), "{dump}");
}

#[test]
fn a_sync_with_two_second_tokens_renews_them_ahead_a_handful_of_times() {
    let receiver = token_receiver(Some(2), 0, Reply::status(200).with_delay_ms(10));
    let config = oauth_config(&receiver, json!({}), json!({"concurrency": 8}));
    let rows = 3000;
    let run = write_valmi(&config, valmi_records(1..=rows).as_bytes());
    assert_completed(&run);
    assert_no_oauth_secret(&run);
    let (tokens, delivered, refused) = token_traffic(&receiver);
    assert_eq!(delivered, rows as usize);
    assert!(
        run.elapsed.as_secs_f64() > 3.0,
        "the sync outlives a token: {:?}",
        run.elapsed
    );
    // Renewed ahead of expiry: no request went out with an expired token.
    assert_eq!(refused, 0);
    let lifetimes = run.elapsed.as_secs_f64() / 2.0;
    assert!(
        tokens >= 2 && (tokens as f64) <= lifetimes * 1.25 + 2.0,
        "{tokens} token requests in {:?}",
        run.elapsed
    );
}

#[test]
fn revoked_tokens_are_renewed_once_for_all_requests_answered_401() {
    // No expires_in: the token is used until it is refused.
    let receiver = token_receiver(None, 0, Reply::status(200).with_delay_ms(20));
    let config = oauth_config(
        &receiver,
        json!({"client_auth": "form"}),
        json!({"concurrency": 8}),
    );
    let dir = Workdir::new();
    let args = valmi_args(&dir, &config, None, None);
    let mut child = spawn(&str_args(&args));
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || stdin.write_all(valmi_records(1..=400).as_bytes()));
    assert!(receiver.wait_for_requests(50, std::time::Duration::from_secs(20)));
    receiver.revoke_tokens();
    let run = wait(child);
    feeder.join().unwrap().unwrap();
    assert_completed(&run);
    assert_no_oauth_secret(&run);
    let (tokens, delivered, refused) = token_traffic(&receiver);
    assert_eq!(
        delivered, 400,
        "every request refused with the revoked token was sent again"
    );
    assert!(refused >= 1, "the revocation was seen");
    assert_eq!(
        tokens, 2,
        "one renewal however many requests were refused at once"
    );
}

#[test]
fn tokens_that_expire_earlier_than_said_are_renewed_on_401_once_per_expiry() {
    let receiver = token_receiver_with(
        TokenEndpoint {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            lifetime: Some(std::time::Duration::from_secs(3600)),
            fail_first: 0,
            expire_after: Some(std::time::Duration::from_millis(700)),
        },
        Reply::status(200).with_delay_ms(10),
    );
    let config = oauth_config(&receiver, json!({}), json!({"concurrency": 8}));
    let run = write_valmi(&config, valmi_records(1..=1200).as_bytes());
    assert_completed(&run);
    let (tokens, delivered, refused) = token_traffic(&receiver);
    assert_eq!(delivered, 1200);
    let expiries = run.elapsed.as_secs_f64() / 0.7;
    assert!(
        refused >= 1 && tokens >= 2,
        "{tokens} tokens, {refused} refused"
    );
    assert!(
        (tokens as f64) <= expiries + 2.0,
        "{tokens} token requests for {expiries:.1} expiries"
    );
}

#[test]
fn a_second_401_with_a_fresh_token_is_a_config_error() {
    let receiver = token_receiver(Some(3600), 0, Reply::status(401));
    let run = write_valmi(
        &oauth_config(&receiver, json!({}), json!({"concurrency": 1})),
        valmi_messages().as_bytes(),
    );
    assert_fatal(&run, "config_error");
    assert_no_oauth_secret(&run);
    let (tokens, delivered, refused) = token_traffic(&receiver);
    assert_eq!((tokens, delivered, refused), (2, 0, 2));
}

#[test]
fn the_token_endpoints_503s_are_retried() {
    let receiver = token_receiver(Some(3600), 2, Reply::status(200));
    let run = write_valmi(
        &oauth_config(&receiver, json!({}), json!({})),
        valmi_messages().as_bytes(),
    );
    assert_completed(&run);
    assert_eq!(token_traffic(&receiver), (3, 6, 0));
}

/// A token endpoint that keeps answering 503 is down, not misconfigured: once retries are
/// spent the sync stops as a `transient_error` (run again later), before any record.
#[test]
fn a_token_endpoint_that_stays_overloaded_is_a_transient_error() {
    let receiver = token_receiver(Some(3600), 100, Reply::status(200));
    let config = oauth_config(&receiver, json!({}), json!({"max_retries": 1}));
    let run = write_valmi(&config, valmi_messages().as_bytes());
    let message = assert_fatal(&run, "transient_error");
    assert!(message.contains("HTTP 503"), "{message}");
    assert_eq!(token_traffic(&receiver), (2, 0, 0));
}

#[test]
fn a_refusing_token_endpoint_fails_check_and_write_in_its_own_words_before_any_record() {
    let receiver = token_receiver(Some(3600), 0, Reply::status(200));
    let mut config = oauth_config(&receiver, json!({}), json!({}));
    let wrong = "wr0ng-S3cr3t";
    config["auth"]["client_secret"] = json!(wrong);
    let checked = check_env(&config, &proxy_env(""));
    let (result, said) = status(&checked);
    assert_eq!(result, "FAILED");
    let words = "(HTTP 401): invalid_client: Client authentication failed";
    assert!(said.contains(words), "{said}");
    let run = write_valmi(&config, valmi_messages().as_bytes());
    let message = assert_fatal(&run, "config_error");
    assert!(message.contains(words), "{message}");
    for run in [&checked, &run] {
        assert!(!run.dump().contains(wrong), "{}", run.dump());
    }
    assert_eq!(
        token_traffic(&receiver),
        (2, 0, 0),
        "only the two token requests"
    );
}

#[test]
fn a_token_endpoint_that_is_down_fails_check_and_write_naming_it() {
    let receiver = Receiver::start_default();
    let token_url = format!("http://127.0.0.1:{}/token", closed_port());
    let config = overlay(
        config(&receiver.url("/hook"), json!({"max_retries": 1})),
        &json!({"auth": {"type": "oauth2_client_credentials", "token_url": token_url,
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}}),
    );
    let (result, said) = status(&check_env(&config, &proxy_env("")));
    assert_eq!(result, "FAILED");
    assert!(
        said.contains(&format!("could not get a token from {token_url}")),
        "{said}"
    );
    let run = write_valmi(&config, valmi_messages().as_bytes());
    let message = assert_fatal(&run, "transient_error");
    assert!(message.contains(&token_url), "{message}");
    assert_eq!(receiver.request_count(), 0);
}

/// A receiver whose token endpoint (`/token`) answers 200 with `body`; the hook answers 200.
fn token_answering(body: impl Into<String>) -> Receiver {
    Receiver::with_script(Script {
        rules: vec![webhook_receiver::Rule::when_path_contains(
            "/token",
            Reply::status(200).with_body(body),
        )],
        ..Script::default()
    })
}

#[test]
fn a_token_answer_that_is_not_json_or_lacks_access_token_is_a_config_error() {
    for (body, says) in [
        ("<html>login</html>", "with a body that is not JSON"),
        (r#"{"token_type":"Bearer"}"#, "without an access_token"),
    ] {
        let receiver = token_answering(body);
        let config = oauth_config(&receiver, json!({}), json!({}));
        let (result, said) = status(&check_env(&config, &proxy_env("")));
        assert_eq!(result, "FAILED");
        assert!(said.contains(says), "{said}");
        let message = assert_fatal(
            &write_valmi(&config, valmi_messages().as_bytes()),
            "config_error",
        );
        assert!(message.contains(says), "{message}");
        assert!(receiver.requests().iter().all(|r| r.path == "/token"));
    }
}

/// Token answers are read up to 64 KiB, not cut at the first kilobyte: a long token (a JWT with
/// many claims) beside a large `id_token` is taken whole and sent whole.
#[test]
fn a_large_token_answer_is_read_whole_and_its_token_sent_whole() {
    let token: String = (0..3000).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    let body = json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600,
        "id_token": "x".repeat(20_000)})
    .to_string();
    let receiver = token_answering(body);
    let config = oauth_config(&receiver, json!({}), json!({}));
    let run = write_valmi(&config, valmi_messages().as_bytes());
    assert_completed(&run);
    assert!(!run.dump().contains(&token), "the token is never shown");
    let requests = receiver.requests();
    let hooks: Vec<_> = requests.iter().filter(|r| r.path == "/hook").collect();
    assert!(!hooks.is_empty());
    let bearer = format!("Bearer {token}");
    for request in hooks {
        let sent = request.headers.iter().find(|(n, _)| n == "authorization");
        assert_eq!(sent.map(|(_, v)| v.as_str()), Some(bearer.as_str()));
    }
}

#[test]
fn a_token_url_that_is_not_http_is_a_config_error_and_nothing_is_sent() {
    let receiver = Receiver::start_default();
    let config = overlay(
        config(&receiver.url("/hook"), json!({})),
        &json!({"auth": {"type": "oauth2_client_credentials", "token_url": "ftp://127.0.0.1/token",
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}}),
    );
    let says = "auth.token_url: the scheme 'ftp' is not supported";
    let (result, said) = status(&check_env(&config, &proxy_env("")));
    assert_eq!(result, "FAILED");
    assert!(said.contains(says), "{said}");
    let message = assert_fatal(
        &write_valmi(&config, valmi_messages().as_bytes()),
        "config_error",
    );
    assert!(message.contains(says), "{message}");
    assert_eq!(receiver.request_count(), 0);
}

/// The token is fetched with the same TLS settings as the webhooks: a token endpoint behind the
/// config's private CA is trusted by it, for `check` and for `write`.
#[test]
fn a_token_endpoint_behind_the_private_ca_is_trusted_by_the_configs_ca() {
    let receiver = Receiver::start(ReceiverOptions {
        token_endpoint: Some(TokenEndpoint {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            lifetime: Some(std::time::Duration::from_secs(3600)),
            fail_first: 0,
            expire_after: None,
        }),
        tls: Some(Tls { http2: false }),
        ..ReceiverOptions::default()
    })
    .unwrap();
    let ca = receiver.ca_pem().unwrap();
    let config = oauth_config(&receiver, json!({}), json!({"tls": {"ca_certificate": ca}}));
    assert!(config["auth"]["token_url"]
        .as_str()
        .unwrap()
        .starts_with("https://"));
    let (result, said) = status(&check_env(&config, &proxy_env("")));
    assert_eq!(result, "SUCCEEDED", "{said}");
    let run = write_valmi(&config, valmi_messages().as_bytes());
    assert_completed(&run);
    assert_eq!(token_traffic(&receiver), (2, 6, 0));
}

#[test]
fn check_gets_a_token() {
    let receiver = token_receiver(Some(3600), 0, Reply::status(200));
    let checked = check_env(
        &oauth_config(&receiver, json!({}), json!({})),
        &proxy_env(""),
    );
    let (result, said) = status(&checked);
    assert_eq!(result, "SUCCEEDED", "{said}");
    assert!(said.contains("got an OAuth2 token"), "{said}");
    assert_no_oauth_secret(&checked);
    assert_eq!(token_traffic(&receiver), (1, 0, 0));
}

#[test]
fn a_dry_run_fetches_no_token_and_shows_where_it_would_go() {
    let receiver = token_receiver(Some(3600), 0, Reply::status(200));
    let config = oauth_config(&receiver, json!({}), json!({}));
    let dir = Workdir::new();
    let mut args = valmi_args(&dir, &config, None, None);
    args.push("--dry-run".into());
    let run = run(&str_args(&args), valmi_messages().as_bytes());
    assert_completed(&run);
    assert_no_oauth_secret(&run);
    let shown = run.logs("INFO").join("\n");
    assert!(
        shown.contains("authorization: Bearer <oauth2 token>"),
        "{shown}"
    );
    assert_eq!(
        receiver.request_count(),
        0,
        "a dry run sends nothing, tokens included"
    );
}

#[test]
fn mutual_tls_runs_end_to_end_through_the_configured_proxys_tunnel() {
    let (client_ca, client_ca_key) = make_ca();
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client_cert = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .signed_by(&client_key, &client_ca, &client_ca_key)
        .unwrap();
    let (tls, ca_pem) = server_config(Some(&client_ca));
    let endpoint = Capture::serving(Some(tls));
    let (port, heads) = connect_proxy(200);
    let proxy = json!({"url": format!("http://127.0.0.1:{port}")});
    let with_certificate = config(
        &endpoint.url,
        json!({"proxy": proxy, "tls": {"ca_certificate": ca_pem,
            "client_certificate": client_cert.pem(), "client_key": client_key.serialize_pem()}}),
    );
    let env = proxy_env("");
    assert_eq!(status(&check_env(&with_certificate, &env)).0, "SUCCEEDED");
    assert_completed(&write_env(&with_certificate, &env));
    assert_eq!(endpoint.take().len(), 6);
    let heads = heads.lock().unwrap().clone();
    assert!(!heads.is_empty() && heads.iter().all(|h| h.starts_with("CONNECT 127.0.0.1:")));
    // The proxy only pipes bytes: without the client certificate the endpoint refuses.
    let without = config(
        &endpoint.url,
        json!({"proxy": proxy, "tls": {"ca_certificate": ca_pem}}),
    );
    assert_eq!(status(&check_env(&without, &env)).0, "FAILED");
    assert_fatal(&write_env(&without, &env), "config_error");
    assert!(endpoint.take().is_empty());
}
