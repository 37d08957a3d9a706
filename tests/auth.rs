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
use webhook_receiver::{Receiver, ReceiverOptions};

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
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let kept = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let kept = kept.clone();
                std::thread::spawn(move || serve(stream, &kept));
            }
        });
        Capture { url, requests }
    }

    fn take(&self) -> Vec<Captured> {
        std::mem::take(&mut self.requests.lock().unwrap())
    }
}

fn serve(stream: std::net::TcpStream, kept: &Mutex<Vec<Captured>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
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
        if out
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
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
