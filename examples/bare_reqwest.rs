//! The baseline `scripts/bench.sh` compares the connector with: a bare reqwest loop that POSTs
//! the same body with the same headers N times with C requests in flight, on the same kind of
//! runtime the connector uses (one current-thread tokio runtime) and the same client settings,
//! and nothing else (no parsing, mapping, ordering, retries or acknowledgement). `bench.sh`
//! passes the body and headers the connector itself sent, so both do the same HTTP work.
//!
//! ```text
//! cargo run --release --example bare_reqwest -- --url URL --concurrency C --requests N \
//!     --body-file F [--header "Name: value"]...
//! ```
//!
//! Prints a summary on stderr and the requests/s, as one number, on the last line of stdout.
//! Exits non-zero if any request fails or answers a non-2xx status.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};

struct Args {
    url: String,
    concurrency: usize,
    requests: u64,
    body_file: String,
    headers: Vec<(String, String)>,
}

const USAGE: &str = "usage: bare_reqwest --url URL --concurrency C --requests N --body-file F \
                     [--header \"Name: value\"]...";

fn parse_args() -> Result<Args, String> {
    let mut url = None;
    let mut concurrency = 16usize;
    let mut requests = 100_000u64;
    let mut body_file = None;
    let mut headers = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--url" => url = Some(value()?),
            "--concurrency" => {
                concurrency = value()?
                    .parse()
                    .map_err(|e| format!("--concurrency: {e}"))?
            }
            "--requests" => requests = value()?.parse().map_err(|e| format!("--requests: {e}"))?,
            "--body-file" => body_file = Some(value()?),
            "--header" => {
                let h = value()?;
                let (name, v) = h
                    .split_once(':')
                    .ok_or_else(|| format!("--header {h:?}: expected \"Name: value\""))?;
                headers.push((name.trim().to_string(), v.trim().to_string()));
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(Args {
        url: url.ok_or_else(|| format!("--url is required\n{USAGE}"))?,
        concurrency: concurrency.max(1),
        requests,
        body_file: body_file.ok_or_else(|| format!("--body-file is required\n{USAGE}"))?,
        headers,
    })
}

pub fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("bare_reqwest: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bare_reqwest: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare_reqwest: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let body = bytes::Bytes::from(
        std::fs::read(&args.body_file).map_err(|e| format!("{}: {e}", args.body_file))?,
    );
    // Headers are parsed once and sent as the client's defaults: the cheapest way reqwest has to
    // send the same headers on every request.
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::CONTENT_TYPE,
        reqwest::header::HeaderValue::from_static("application/json"),
    );
    for (name, value) in &args.headers {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| format!("--header {name:?}: {e}"))?;
        let value = reqwest::header::HeaderValue::from_str(value)
            .map_err(|e| format!("--header {name}: {e}"))?;
        headers.insert(name, value);
    }
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(args.concurrency)
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .http1_only()
        .build()
        .map_err(|e| format!("cannot build the client: {e}"))?;
    let url = reqwest::Url::parse(&args.url).map_err(|e| format!("--url: {e}"))?;

    let started = Instant::now();
    let results: Vec<Result<Duration, String>> = stream::iter(0..args.requests)
        .map(|_| {
            let request = client.post(url.clone()).body(body.clone());
            async move {
                let sent = Instant::now();
                let response = request.send().await.map_err(|e| e.to_string())?;
                let status = response.status();
                // Drain the body so the connection goes back to the pool.
                response.bytes().await.map_err(|e| e.to_string())?;
                if !status.is_success() {
                    return Err(format!("status {status}"));
                }
                Ok(sent.elapsed())
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let secs = started.elapsed().as_secs_f64();

    let mut latencies = Vec::with_capacity(results.len());
    let mut failures = 0u64;
    let mut first_error = None;
    for r in results {
        match r {
            Ok(d) => latencies.push(d),
            Err(e) => {
                failures += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    latencies.sort_unstable();
    let quantile = |q: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() - 1) as f64 * q).round() as usize;
        latencies[i].as_secs_f64() * 1000.0
    };
    let rate = args.requests as f64 / secs.max(1e-9);
    eprintln!(
        "bare_reqwest: {} requests of {} bytes, concurrency {}, in {secs:.2}s: {rate:.0} requests/s; \
         latency p50 {:.2} ms, p99 {:.2} ms; {failures} failed",
        args.requests,
        body.len(),
        args.concurrency,
        quantile(0.5),
        quantile(0.99),
    );
    if let Some(e) = first_error {
        return Err(format!("{failures} requests failed, the first: {e}"));
    }
    println!("{rate:.0}");
    Ok(())
}
