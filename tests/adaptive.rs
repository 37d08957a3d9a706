//! Adaptive concurrency against the receiver playing a remote endpoint of limited capacity
//! (issue #17): the connector finds the capacity instead of stampeding it, and says what its
//! limit is. Speed is shown by `scripts/bench.sh --remote`, not here.

mod common;

use common::*;
use serde_json::json;
use webhook_receiver::{Beyond, Receiver, ReceiverOptions, Remote};

fn remote(latency_ms: u64, limit: u32, beyond: Beyond) -> Receiver {
    Receiver::start(ReceiverOptions {
        remote: Some(Remote {
            latency_ms,
            limit,
            beyond,
        }),
        ..ReceiverOptions::default()
    })
    .unwrap()
}

/// The summary LOG, the last message of a completed run.
fn summary(run: &Run) -> String {
    let last = run.messages.last().expect("some output");
    last["log"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn an_endpoint_refusing_beyond_its_capacity_is_not_stampeded() {
    // A cap of 64 against an endpoint that serves 4 at once and answers 429 + Retry-After: 1
    // beyond: at a fixed 64 in flight, every wave would be refused 60 times over.
    let receiver = remote(20, 4, Beyond::Refuse { retry_after_s: 1 });
    let rows = 200;
    let run = write_valmi_to(
        &receiver,
        json!({"concurrency": 64}),
        valmi_records(1..=rows).as_bytes(),
    );
    assert_completed(&run);
    let delivered = receiver
        .requests()
        .iter()
        .filter(|r| r.status == 200)
        .count();
    assert_eq!(delivered as u64, rows);
    let last = run.states().last().copied().unwrap();
    assert_eq!(state_data(last)["last_row_num"], rows);
    let refused = receiver.refused_count();
    assert!(refused >= 1, "the start never reached the capacity");
    assert!(refused <= 20, "{refused} refusals: {}", summary(&run));
}

#[test]
fn the_limit_never_exceeds_the_configured_concurrency() {
    // A queueing endpoint of ample capacity: the limit grows until it meets the cap.
    let receiver = remote(5, 1000, Beyond::Queue);
    let run = write_valmi_to(
        &receiver,
        json!({"concurrency": 3}),
        valmi_records(1..=300).as_bytes(),
    );
    assert_completed(&run);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 300);
    // At any arrival, the requests received before and answered after it are in flight with it.
    let most = requests
        .iter()
        .map(|r| {
            requests
                .iter()
                .filter(|o| {
                    o.received_at_ms <= r.received_at_ms && o.answered_at_ms > r.received_at_ms
                })
                .count()
        })
        .max()
        .unwrap();
    assert!(most <= 3, "{most} in flight at once");
    let limit = number_after(&summary(&run), "concurrency limit ").unwrap();
    assert!((1..=3).contains(&limit), "{}", summary(&run));
}

#[test]
fn the_limit_trace_samples_the_run_when_asked() {
    // What `scripts/bench.sh --remote` draws: a line per 50 ms of elapsed ms, limit, requests
    // in flight, records acknowledged and why the limit last changed.
    let receiver = remote(20, 1000, Beyond::Queue);
    let dir = Workdir::new();
    let trace = dir.dir.path().join("trace.tsv");
    let config = config(&receiver.url("/hook"), json!({"concurrency": 2}));
    let run = write_valmi_with_env(
        &config,
        valmi_records(1..=40).as_bytes(),
        &[("DESTINATION_WEBHOOK_LIMIT_TRACE", Some(path_str(&trace)))],
    );
    assert_completed(&run);
    let text = std::fs::read_to_string(&trace).expect("the trace file");
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    assert!(lines.len() >= 2, "40 answers of 20 ms, 2 at a time: {text}");
    let mut last_ms = 0;
    for fields in &lines {
        let [ms, limit, in_flight, acked, why] = fields[..] else {
            panic!("five fields: {text}");
        };
        let ms: u64 = ms.parse().unwrap();
        assert!(ms >= last_ms, "{text}");
        last_ms = ms;
        assert!((1..=2).contains(&limit.parse::<u32>().unwrap()), "{text}");
        assert!(in_flight.parse::<u32>().unwrap() <= 2, "{text}");
        assert!(acked.parse::<u64>().unwrap() <= 40, "{text}");
        assert!(!why.is_empty(), "{text}");
    }
}

#[test]
fn the_progress_log_every_ten_seconds_shows_the_limit_why_and_the_pause() {
    // One record, answered 429 + Retry-After: 11 once: the first progress LOG, at 10 s, falls
    // inside the pause.
    let receiver = refusing_row_1_once(11);
    let run = write_valmi_to(&receiver, json!({}), valmi_records(1..=1).as_bytes());
    assert_completed(&run);
    let progress: Vec<String> = run
        .logs("INFO")
        .into_iter()
        .filter(|m| m.starts_with("progress: "))
        .collect();
    assert!(!progress.is_empty(), "{}", run.dump());
    for says in [
        "requests in flight (limit 1: 429/503 from the endpoint)",
        "endpoint asked to wait ",
    ] {
        assert!(progress[0].contains(says), "{}", progress[0]);
    }
}
