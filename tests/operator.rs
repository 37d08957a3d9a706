//! What an operator trying a config sees: the dry run shows each request and runs the same
//! STATE logic as a real sync, without sending anything.

mod common;

use common::*;
use serde_json::{json, Value};
use webhook_receiver::Receiver;

#[test]
fn a_dry_run_shows_each_request_and_emits_the_same_states_as_a_real_run() {
    let receiver = Receiver::start_default();
    let config = config(
        &receiver.url("/hook"),
        json!({"headers": ["X-Test: shown"]}),
    );
    let input = read_fixture("valmi/observed/messages8.jsonl");

    let dir = Workdir::new();
    let mut args = valmi_args(&dir, &config, None, None);
    args.push("--dry-run".into());
    let dry = run(&str_args(&args), input.as_bytes());
    assert_completed(&dry);
    assert_eq!(receiver.request_count(), 0, "a dry run sends nothing");

    let shown: Vec<String> = dry
        .logs("INFO")
        .into_iter()
        .filter(|m| m.starts_with("dry run: POST"))
        .collect();
    assert_eq!(shown.len(), 8, "{}", dry.dump());
    for (i, line) in shown.iter().enumerate() {
        assert!(line.contains(&receiver.url("/hook")), "{line}");
        assert!(
            line.contains("x-test: shown") && line.contains("idempotency-key: msg_"),
            "{line}"
        );
        let body: Value =
            serde_json::from_str(line.split_once(" body: ").expect("a body").1).unwrap();
        assert_eq!(body["_message_id"], i as u64 + 1, "{line}");
        assert_eq!(body["_sync_mode"], "mirror");
    }

    let real = write_valmi(&config, input.as_bytes());
    assert_completed(&real);
    assert_eq!(receiver.request_count(), 8);
    let states = |run: &Run| run.states().into_iter().cloned().collect::<Vec<Value>>();
    assert_eq!(states(&dry), states(&real));
    assert_eq!(states(&dry).len(), 5);
}
