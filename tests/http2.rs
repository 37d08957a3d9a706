//! HTTP/2 (issue #17): an endpoint that offers it over TLS (ALPN) gets every request of a sync on
//! one connection; one that offers only HTTP/1.1 gets HTTP/1.1, as before.

mod common;

use common::*;
use serde_json::json;
use webhook_receiver::{Beyond, Receiver, ReceiverOptions, Remote, Tls};

fn tls_receiver(http2: bool) -> Receiver {
    Receiver::start(ReceiverOptions {
        tls: Some(Tls { http2 }),
        // Answers take 20 ms, so requests overlap: over HTTP/1.1 each needs its own connection.
        remote: Some(Remote {
            latency_ms: 20,
            limit: 1000,
            beyond: Beyond::Queue,
        }),
        ..ReceiverOptions::default()
    })
    .unwrap()
}

/// Delivers `rows` records trusting the receiver's CA, and returns the HTTP versions they came in.
fn deliver(receiver: &Receiver, rows: u64) -> Vec<String> {
    let ca = receiver.ca_pem().unwrap();
    let extra = json!({"concurrency": 32, "tls": {"ca_certificate": ca}});
    let run = write_valmi_to(receiver, extra, valmi_records(1..=rows).as_bytes());
    assert_completed(&run);
    let requests = receiver.requests();
    assert_eq!(requests.len() as u64, rows);
    assert!(requests.iter().all(|r| r.status == 200));
    requests.into_iter().map(|r| r.version).collect()
}

#[test]
fn an_endpoint_offering_http2_gets_every_request_on_one_connection() {
    let receiver = tls_receiver(true);
    let versions = deliver(&receiver, 200);
    assert!(versions.iter().all(|v| v == "HTTP/2.0"), "{versions:?}");
    assert_eq!(receiver.connection_count(), 1);
}

#[test]
fn an_endpoint_offering_only_http1_gets_http1_on_a_connection_per_request_in_flight() {
    let receiver = tls_receiver(false);
    let versions = deliver(&receiver, 200);
    assert!(versions.iter().all(|v| v == "HTTP/1.1"), "{versions:?}");
    // After the first answer, 16 requests go out at once: one connection each.
    assert!(
        receiver.connection_count() >= 16,
        "{}",
        receiver.connection_count()
    );
}
