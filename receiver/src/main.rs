//! `webhook-receiver`: the recording endpoint as a standalone process, for the
//! demo, benchmarks, and users checking what a config sends.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use webhook_receiver::{
    Beyond, HmacConvention, LogFormat, Receiver, ReceiverOptions, Remote, Script, Tls,
};

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Port on 127.0.0.1; 0 lets the OS choose (see --port-file).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Write the bound port here once listening, so scripts can use --port 0.
    #[arg(long, value_name = "PATH")]
    port_file: Option<PathBuf>,
    /// Per-request output on stdout; `none` for benchmarks.
    #[arg(long, value_enum, default_value_t = Log::Pretty)]
    log: Log,
    /// JSON script of scripted replies (rules and default).
    #[arg(long, value_name = "FILE.json")]
    script: Option<PathBuf>,
    /// Signing secret to verify requests with: Standard Webhooks, or with --hmac-header that
    /// header's HMAC-SHA256 convention.
    #[arg(long)]
    secret: Option<String>,
    /// Verify an HMAC-SHA256 signature in this header (e.g. X-Hub-Signature-256) instead of
    /// Standard Webhooks.
    #[arg(long, requires = "secret", value_name = "NAME")]
    hmac_header: Option<String>,
    /// Text before the digest in the HMAC header (e.g. sha256=).
    #[arg(long, requires = "hmac_header", default_value = "")]
    hmac_prefix: String,
    /// The HMAC digest is base64 (Shopify) rather than hex (GitHub).
    #[arg(long, requires = "hmac_header")]
    hmac_base64: bool,
    /// The HMAC covers "<timestamp>.<body>", the timestamp read from this header.
    #[arg(long, requires = "hmac_header", value_name = "NAME")]
    hmac_timestamp_header: Option<String>,
    /// Answer 401 to requests whose signature does not verify.
    #[arg(long, requires = "secret")]
    reject_invalid_signatures: bool,
    /// Keep nothing in memory (pair with --log none for long benchmarks).
    #[arg(long)]
    no_record: bool,
    /// Play a remote endpoint: every answer comes this many milliseconds after the request.
    #[arg(long, value_name = "MS")]
    latency_ms: Option<u64>,
    /// Play an endpoint that serves at most this many requests at once (see --beyond).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    capacity: Option<u32>,
    /// What a request beyond --capacity gets: a 429 with Retry-After, or a wait in a queue.
    #[arg(long, value_enum, default_value_t = BeyondArg::Refuse, requires = "capacity")]
    beyond: BeyondArg,
    /// The Retry-After (seconds) of a refusal beyond --capacity.
    #[arg(long, value_name = "S", default_value_t = 1, requires = "capacity")]
    retry_after: u32,
    /// Serve HTTPS with a certificate made at start-up, signed by a CA written to this file
    /// (a client trusts the receiver by it).
    #[arg(long, value_name = "CA.pem")]
    tls_ca_file: Option<PathBuf>,
    /// Offer HTTP/2 by ALPN over TLS (without it only HTTP/1.1 is offered).
    #[arg(long, requires = "tls_ca_file")]
    http2: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum BeyondArg {
    Refuse,
    Queue,
}

impl Cli {
    /// The remote-like endpoint the options describe, if any.
    fn remote(&self) -> Option<Remote> {
        if self.latency_ms.is_none() && self.capacity.is_none() {
            return None;
        }
        Some(Remote {
            latency_ms: self.latency_ms.unwrap_or(0),
            limit: self.capacity.unwrap_or(u32::MAX >> 3),
            beyond: match self.beyond {
                BeyondArg::Refuse => Beyond::Refuse {
                    retry_after_s: self.retry_after,
                },
                BeyondArg::Queue => Beyond::Queue,
            },
        })
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Log {
    Jsonl,
    Pretty,
    None,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("webhook-receiver: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let script = match &cli.script {
        Some(path) => read_script(path)?,
        None => Script::default(),
    };
    let remote = cli.remote();
    let receiver = Receiver::start(ReceiverOptions {
        remote,
        tls: cli.tls_ca_file.as_ref().map(|_| Tls { http2: cli.http2 }),
        script,
        record: !cli.no_record,
        signing_secret: cli.secret,
        hmac: cli.hmac_header.map(|header| HmacConvention {
            header,
            prefix: cli.hmac_prefix,
            base64: cli.hmac_base64,
            timestamp_header: cli.hmac_timestamp_header,
        }),
        reject_invalid_signatures: cli.reject_invalid_signatures,
        token_endpoint: None,
        port: cli.port,
        log: match cli.log {
            Log::Jsonl => Some(LogFormat::Jsonl),
            Log::Pretty => Some(LogFormat::Pretty),
            Log::None => None,
        },
    })
    .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", cli.port))?;
    eprintln!("webhook-receiver listening on {}", receiver.url("/"));
    if let (Some(path), Some(pem)) = (&cli.tls_ca_file, receiver.ca_pem()) {
        std::fs::write(path, pem).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(path) = &cli.port_file {
        write_port_file(path, receiver.addr().port())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    wait_for_termination().map_err(|e| format!("cannot wait for signals: {e}"))?;
    let count = receiver.request_count();
    let summary = match remote {
        Some(_) => format!(
            ", {} refused beyond capacity, latency p50 {} ms",
            receiver.refused_count(),
            receiver
                .latency_ms(0.5)
                .map_or_else(|| "n/a".into(), |ms| ms.to_string())
        ),
        None => String::new(),
    };
    let connections = receiver.connection_count();
    receiver.stop();
    eprintln!("webhook-receiver: {count} requests received{summary}, {connections} connections");
    Ok(())
}

fn read_script(path: &Path) -> Result<Script, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("bad script {}: {e}", path.display()))
}

/// Written under a temporary name and renamed, so a script polling for the
/// file never reads it half-written.
fn write_port_file(path: &Path, port: u16) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, format!("{port}\n"))?;
    std::fs::rename(&tmp, path)
}

fn wait_for_termination() -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let mut terminate = signal(SignalKind::terminate())?;
            tokio::select! {
                result = tokio::signal::ctrl_c() => result,
                _ = terminate.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c().await
    })
}
