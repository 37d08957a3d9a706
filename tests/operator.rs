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

/// Proxy variables as an operator sets them: `HTTP_PROXY` and `NO_PROXY` set, every other
/// spelling removed, so that the test machine's own settings do not leak in.
fn proxy_env<'a>(http_proxy: &'a str, no_proxy: &'a str) -> Vec<(&'static str, Option<&'a str>)> {
    let mut env: Vec<(&'static str, Option<&'a str>)> = [
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ]
    .into_iter()
    .map(|name| (name, None))
    .collect();
    env.push(("HTTP_PROXY", Some(http_proxy)));
    env.push(("NO_PROXY", Some(no_proxy)));
    env
}

fn write_valmi_env(config: &Value, env: &[(&str, Option<&str>)]) -> Run {
    let input = read_fixture("valmi/observed/messages8.jsonl");
    write_valmi_with_env(config, input.as_bytes(), env)
}

#[test]
fn requests_go_through_the_proxy_that_http_proxy_names() {
    // The receiver stands in for the proxy (it answers whatever it is sent); nothing listens at
    // the endpoint itself, so a request that did not go through the proxy fails the run.
    let proxy = Receiver::start_default();
    let config = config(
        &format!("http://127.0.0.1:{}/hook", closed_port()),
        json!({}),
    );
    let proxy_url = format!("http://{}", proxy.addr());
    let run = write_valmi_env(&config, &proxy_env(&proxy_url, ""));
    assert_completed(&run);
    let requests = proxy.requests();
    assert_eq!(requests.len(), 8, "{}", run.dump());
    assert!(requests.iter().all(|r| r.path == "/hook"), "{requests:?}");
}

#[test]
fn no_proxy_sends_requests_to_the_endpoint_directly() {
    let receiver = Receiver::start_default();
    let config = config(&receiver.url("/hook"), json!({}));
    let proxy_url = format!("http://127.0.0.1:{}", closed_port());
    let run = write_valmi_env(&config, &proxy_env(&proxy_url, "127.0.0.1"));
    assert_completed(&run);
    assert_eq!(receiver.request_count(), 8, "{}", run.dump());
}
