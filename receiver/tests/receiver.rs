//! Drives the receiver with hand-written HTTP/1.1 over `std::net::TcpStream`,
//! so what is tested is the bytes on the wire, not a client library's view.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use standardwebhooks::Webhook;
use webhook_receiver::{Beyond, Close, Receiver, ReceiverOptions, Remote, Reply, Rule, Script};

const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream
}

fn write_request(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
}

/// Reads exactly one Content-Length framed response, leaving the connection
/// usable for the next one.
fn read_response(reader: &mut BufReader<TcpStream>) -> Response {
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    // 204 and friends carry no Content-Length and no body.
    let len: usize = response
        .header("content-length")
        .map_or(0, |v| v.parse().unwrap());
    response.body = vec![0; len];
    reader.read_exact(&mut response.body).unwrap();
    response
}

/// One request on a fresh connection.
fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = connect(addr);
    write_request(&mut stream, method, path, headers, body);
    read_response(&mut BufReader::new(stream))
}

fn post(addr: SocketAddr, body: &str) -> Response {
    send(addr, "POST", "/", &[], body.as_bytes())
}

fn signed_headers(secret: &Webhook, id: &str, body: &[u8]) -> Vec<(String, String)> {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    vec![
        ("webhook-id".to_owned(), id.to_owned()),
        ("webhook-timestamp".to_owned(), ts.to_string()),
        (
            "webhook-signature".to_owned(),
            secret.sign(id, ts, body).unwrap(),
        ),
    ]
}

fn as_refs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

#[test]
fn records_method_path_headers_and_body() {
    let receiver = Receiver::start_default();
    let response = send(
        receiver.addr(),
        "POST",
        "/hook/a%20b?x=1&y=%2F",
        &[("Content-Type", "application/json"), ("X-Custom", "One")],
        br#"{"id":7}"#,
    );
    assert_eq!(response.status, 200);
    assert!(response.body.is_empty());

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.seq, 0);
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/hook/a%20b?x=1&y=%2F");
    assert_eq!(r.header("x-custom"), Some("One"));
    assert_eq!(r.header("CONTENT-TYPE"), Some("application/json"));
    let names: Vec<&str> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["host", "content-length", "content-type", "x-custom"]
    );
    assert_eq!(r.body, r#"{"id":7}"#);
    assert_eq!(r.json()["id"], 7);
    assert_eq!(r.status, 200);
    assert_eq!(r.signature_valid, None);
    assert!(r.answered_at_ms >= r.received_at_ms);
    assert_eq!(receiver.request_count(), 1);
}

#[test]
#[should_panic(expected = "body is not JSON")]
fn json_panics_with_a_clear_message() {
    let receiver = Receiver::start_default();
    post(receiver.addr(), "not json");
    receiver.requests()[0].json();
}

#[test]
fn sequence_answers_503_with_retry_after_then_200() {
    let receiver = Receiver::with_script(Script::sequence(vec![Reply::status(503)
        .with_header("Retry-After", "2")
        .with_body("busy")]));
    let first = post(receiver.addr(), "a");
    assert_eq!(first.status, 503);
    assert_eq!(first.header("retry-after"), Some("2"));
    assert_eq!(first.body, b"busy");
    assert_eq!(post(receiver.addr(), "a").status, 200);
    assert_eq!(post(receiver.addr(), "a").status, 200);
    let statuses: Vec<u16> = receiver.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 200, 200]);
}

#[test]
fn body_contains_rule_applies_the_given_number_of_times() {
    let receiver = Receiver::with_script(Script {
        rules: vec![Rule::when_body_contains(r#""id":3"#, Reply::status(500)).times(2)],
        default: Reply::status(202),
    });
    let statuses: Vec<u16> = [r#"{"id":3}"#, r#"{"id":4}"#, r#"{"id":3}"#, r#"{"id":3}"#]
        .iter()
        .map(|body| post(receiver.addr(), body).status)
        .collect();
    assert_eq!(statuses, [500, 202, 500, 202]);
}

#[test]
fn script_from_json_and_replaced_at_runtime() {
    let script: Script = serde_json::from_str(
        r#"{"rules":[{"path_contains":"/fail","reply":{"status":418}}],"default":{"status":201}}"#,
    )
    .unwrap();
    let receiver = Receiver::with_script(script);
    assert_eq!(send(receiver.addr(), "GET", "/fail", &[], b"").status, 418);
    assert_eq!(send(receiver.addr(), "GET", "/ok", &[], b"").status, 201);
    receiver.set_script(Script::default());
    assert_eq!(send(receiver.addr(), "GET", "/fail", &[], b"").status, 200);
}

#[test]
fn delay_holds_only_its_own_request() {
    let receiver = Receiver::with_script(Script {
        rules: vec![Rule::when_body_contains(
            "slow",
            Reply::status(200).with_delay_ms(600),
        )],
        ..Script::default()
    });
    let addr = receiver.addr();
    let started = Instant::now();
    let slow = std::thread::spawn(move || {
        post(addr, "slow");
        started.elapsed()
    });
    // Let the slow request arrive first.
    std::thread::sleep(Duration::from_millis(100));
    post(addr, "fast");
    let fast_done = started.elapsed();
    let slow_done = slow.join().unwrap();
    assert!(
        fast_done < Duration::from_millis(500),
        "fast took {fast_done:?}"
    );
    assert!(
        slow_done >= Duration::from_millis(600),
        "slow took {slow_done:?}"
    );

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, "slow", "requests() is in arrival order");
    assert!(requests[0].answered_at_ms - requests[0].received_at_ms >= 600);
    assert!(requests[1].received_at_ms < requests[0].answered_at_ms);
}

#[test]
fn close_before_response_hangs_up_without_answering() {
    let receiver = Receiver::with_script(Script::sequence(vec![
        Reply::status(200).closing(Close::BeforeResponse)
    ]));
    let mut stream = connect(receiver.addr());
    write_request(&mut stream, "POST", "/", &[], b"lost?");
    let mut received = Vec::new();
    match stream.read_to_end(&mut received) {
        Ok(_) => assert!(
            received.is_empty(),
            "got {:?}",
            String::from_utf8_lossy(&received)
        ),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
    }
    assert!(receiver.wait_for_requests(1, TIMEOUT));
    let requests = receiver.requests();
    assert_eq!(requests[0].status, 0);
    assert_eq!(requests[0].body, "lost?");
    assert_eq!(post(receiver.addr(), "again").status, 200);
}

#[test]
fn keep_alive_serves_several_requests_per_connection() {
    let receiver = Receiver::start_default();
    let mut stream = connect(receiver.addr());
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for i in 0..3 {
        write_request(&mut stream, "POST", &format!("/{i}"), &[], b"x");
        assert_eq!(read_response(&mut reader).status, 200);
    }
    assert_eq!(receiver.request_count(), 3);
}

#[test]
fn close_after_response_answers_then_closes() {
    let receiver = Receiver::with_script(Script::sequence(vec![
        Reply::status(204).closing(Close::AfterResponse)
    ]));
    let mut stream = connect(receiver.addr());
    write_request(&mut stream, "POST", "/", &[], b"x");
    let mut reader = BufReader::new(stream);
    let response = read_response(&mut reader);
    assert_eq!(response.status, 204);
    assert_eq!(response.header("connection"), Some("close"));
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

#[test]
fn close_mid_body_sends_the_headers_and_half_the_body_then_hangs_up() {
    let receiver = Receiver::with_script(Script::sequence(vec![Reply::status(200)
        .with_body("0123456789")
        .closing(Close::MidBody)]));
    let mut stream = connect(receiver.addr());
    write_request(&mut stream, "POST", "/", &[], b"x");
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    let received = String::from_utf8_lossy(&received);
    assert!(received.starts_with("HTTP/1.1 200 OK\r\n"), "{received:?}");
    assert!(received.contains("content-length: 10\r\n"), "{received:?}");
    assert!(received.ends_with("\r\n\r\n01234"), "{received:?}");
    assert_eq!(post(receiver.addr(), "again").status, 200);
}

#[test]
fn large_scripted_body() {
    let receiver = Receiver::with_script(Script::sequence(vec![
        Reply::status(200).with_body_bytes(10 * 1024 * 1024)
    ]));
    let response = post(receiver.addr(), "x");
    assert_eq!(response.body.len(), 10 * 1024 * 1024);
    assert!(response.body.iter().all(|&b| b == b'x'));
}

#[test]
fn gzip_body_is_recorded_decoded() {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(br#"{"zipped":true}"#).unwrap();
    let gz = encoder.finish().unwrap();
    let receiver = Receiver::start_default();
    send(
        receiver.addr(),
        "POST",
        "/",
        &[("Content-Encoding", "gzip")],
        &gz,
    );
    assert_eq!(receiver.requests()[0].json()["zipped"], true);
}

#[test]
fn signatures_are_verified_but_do_not_change_the_answer_by_default() {
    let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let receiver = Receiver::start(ReceiverOptions {
        signing_secret: Some(secret.to_owned()),
        ..ReceiverOptions::default()
    })
    .unwrap();
    let signer = Webhook::new(secret).unwrap();
    let body = br#"{"id":1}"#;
    let headers = signed_headers(&signer, "msg_1", body);
    let good = send(receiver.addr(), "POST", "/", &as_refs(&headers), body);
    let tampered = send(
        receiver.addr(),
        "POST",
        "/",
        &as_refs(&headers),
        br#"{"id":2}"#,
    );
    let unsigned = post(receiver.addr(), "{}");
    assert_eq!([good.status, tampered.status, unsigned.status], [200; 3]);
    let verdicts: Vec<Option<bool>> = receiver
        .requests()
        .iter()
        .map(|r| r.signature_valid)
        .collect();
    assert_eq!(verdicts, [Some(true), Some(false), Some(false)]);
}

#[test]
fn raw_secret_is_used_as_key_bytes_and_rejection_answers_401() {
    let secret = "plain-secret";
    let receiver = Receiver::start(ReceiverOptions {
        signing_secret: Some(secret.to_owned()),
        reject_invalid_signatures: true,
        script: Script::sequence(vec![Reply::status(503)]),
        ..ReceiverOptions::default()
    })
    .unwrap();
    let signer = Webhook::from_bytes(secret.as_bytes().to_vec()).unwrap();
    let body = b"hello";
    let headers = signed_headers(&signer, "msg_2", body);
    let forged = send(receiver.addr(), "POST", "/", &as_refs(&headers), b"hellO");
    assert_eq!(forged.status, 401);
    let good = send(receiver.addr(), "POST", "/", &as_refs(&headers), body);
    assert_eq!(
        good.status, 503,
        "the rejected request did not use up the script"
    );
}

#[test]
fn bad_whsec_secret_is_an_error() {
    let result = Receiver::start(ReceiverOptions {
        signing_secret: Some("whsec_not base64!".to_owned()),
        ..ReceiverOptions::default()
    });
    assert_eq!(
        result.err().map(|e| e.kind()),
        Some(std::io::ErrorKind::InvalidInput)
    );
}

#[test]
fn stop_refuses_connections_and_restart_on_the_same_port_works() {
    let first = Receiver::start_default();
    let addr = first.addr();
    // Leave an idle keep-alive connection open: stop must close it too.
    let mut idle = connect(addr);
    write_request(&mut idle, "POST", "/", &[], b"1");
    let mut idle = BufReader::new(idle);
    assert_eq!(read_response(&mut idle).status, 200);
    first.stop();

    let mut rest = Vec::new();
    assert!(matches!(idle.read_to_end(&mut rest), Ok(0) | Err(_)));
    assert!(TcpStream::connect(addr).is_err(), "port still accepts");

    let second = Receiver::start(ReceiverOptions {
        port: addr.port(),
        ..ReceiverOptions::default()
    })
    .unwrap();
    assert_eq!(second.addr(), addr);
    assert_eq!(post(addr, "2").status, 200);
    assert_eq!(second.requests().len(), 1);
}

#[test]
fn no_record_still_counts() {
    let receiver = Receiver::start(ReceiverOptions {
        record: false,
        ..ReceiverOptions::default()
    })
    .unwrap();
    post(receiver.addr(), "a");
    post(receiver.addr(), "b");
    assert_eq!(receiver.request_count(), 2);
    assert!(receiver.requests().is_empty());
    assert!(!receiver.wait_for_requests(3, Duration::from_millis(50)));
}

#[test]
fn url_joins_the_path() {
    let receiver = Receiver::start_default();
    let port = receiver.addr().port();
    assert_eq!(
        receiver.url("/a?b=1"),
        format!("http://127.0.0.1:{port}/a?b=1")
    );
    assert_eq!(receiver.url("a"), format!("http://127.0.0.1:{port}/a"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usable_from_inside_a_tokio_runtime() {
    let receiver = Receiver::start_default();
    let addr = receiver.addr();
    let response = tokio::task::spawn_blocking(move || post(addr, "from async"))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    drop(receiver);
}

#[tokio::test]
async fn usable_from_a_current_thread_runtime() {
    let receiver = Receiver::start_default();
    assert_eq!(post(receiver.addr(), "x").status, 200);
    receiver.stop();
}

/// A receiver playing a remote endpoint of capacity `limit`, and `n` requests sent to it at
/// once, each on its own connection; their answers in the order they came back.
fn remote_burst(limit: u32, beyond: Beyond, n: usize) -> (Receiver, Vec<Response>, Duration) {
    let receiver = Receiver::start(ReceiverOptions {
        remote: Some(Remote {
            latency_ms: 1000,
            limit,
            beyond,
        }),
        ..ReceiverOptions::default()
    })
    .unwrap();
    let addr = receiver.addr();
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(n));
    for i in 0..n {
        let (tx, barrier) = (tx.clone(), barrier.clone());
        std::thread::spawn(move || {
            let mut stream = connect(addr);
            barrier.wait();
            write_request(
                &mut stream,
                "POST",
                "/",
                &[],
                format!("{{\"i\":{i}}}").as_bytes(),
            );
            tx.send(read_response(&mut BufReader::new(stream))).unwrap();
        });
    }
    drop(tx);
    let answers: Vec<Response> = rx.iter().collect();
    (receiver, answers, started.elapsed())
}

#[test]
fn a_remote_endpoint_refuses_beyond_its_capacity_after_its_latency() {
    let (receiver, answers, took) = remote_burst(2, Beyond::Refuse { retry_after_s: 7 }, 3);
    let mut statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 200, 429]);
    let refusal = answers.iter().find(|a| a.status == 429).unwrap();
    assert_eq!(refusal.header("retry-after"), Some("7"));
    assert_eq!(receiver.refused_count(), 1);
    // Every answer, the refusal too, waited out the latency.
    assert!(took >= Duration::from_millis(1000), "{took:?}");
    assert!(receiver.latency_ms(0.5).unwrap() >= 1000);
}

#[test]
fn a_remote_endpoint_queues_beyond_its_capacity() {
    let (receiver, answers, took) = remote_burst(1, Beyond::Queue, 2);
    assert!(answers.iter().all(|a| a.status == 200));
    assert_eq!(receiver.refused_count(), 0);
    // One at a time: the second waited for the first's whole latency, then had its own.
    assert!(took >= Duration::from_millis(2000), "{took:?}");
    assert!(receiver.latency_ms(0.0).unwrap() >= 1000);
}
