//! The command line: `spec`, `check`, `discover`, `write`. stdout only ever carries protocol
//! messages, so usage errors become a TRACE ERROR there, and help goes to stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::output::Output;
use crate::protocol::{connection_status, FailureType, Fatal};
use crate::sink::Ending;
use crate::write::WriteArgs;
use crate::{check, discover, files, spec, validate};

#[derive(Debug, Parser)]
#[command(
    name = "destination-webhook",
    version,
    about = "Delivers sync records to an HTTP endpoint (Valmi and Airbyte protocol)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the connector specification
    Spec,
    /// Check that the endpoint is reachable (nothing is sent)
    Check {
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the Valmi sink catalog (Airbyte's DESTINATION_CATALOG under Airbyte's platform)
    Discover {
        #[arg(long)]
        config: PathBuf,
    },
    /// Deliver the records read from stdin
    Write(WriteArgs),
}

pub fn main() -> ExitCode {
    let mut out = Output::stdout();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            eprint!("{e}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let fatal = Fatal::new(FailureType::ConfigError, usage_message(&e), e.to_string());
            return finish(&mut out, Some(fatal), 2);
        }
    };
    match cli.command {
        Command::Spec => answer(
            &mut out,
            &serde_json::json!({"type": "SPEC", "spec": spec::spec()}),
        ),
        Command::Discover { config } => match files::read_json(&config, "config") {
            Ok(raw) if !discover::for_airbyte(&raw) => answer(&mut out, &discover::catalog()),
            Ok(raw) => match loaded(&raw) {
                Ok(config) => answer(&mut out, &discover::destination_catalog(&config)),
                Err(fatal) => finish(&mut out, Some(fatal), 1),
            },
            Err(e) => finish(&mut out, Some(Fatal::config(e)), 1),
        },
        Command::Check { config } => {
            let raw = match files::read_json(&config, "config") {
                Ok(raw) => raw,
                Err(e) => return finish(&mut out, Some(Fatal::config(e)), 1),
            };
            crate::redact::register(crate::redact::secrets_in_raw_config(&raw));
            let status = match validate::load_config(&raw) {
                Err(e) => connection_status(false, e.to_string()),
                Ok(config) => {
                    crate::redact::register(config.secrets());
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("start the runtime");
                    match runtime.block_on(check::check(&config)) {
                        Ok(message) => connection_status(true, message),
                        Err(message) => connection_status(false, message),
                    }
                }
            };
            answer(&mut out, &status)
        }
        Command::Write(args) => match crate::write::run(&args, &mut out) {
            Err(_closed) => stdout_closed(),
            Ok(Ending::Completed) => ExitCode::SUCCESS,
            Ok(Ending::Stopped { fatal, exit_code }) => finish(&mut out, Some(fatal), exit_code),
        },
    }
}

/// The config of `discover` under Airbyte, checked as `write` checks it (templates included),
/// since the catalog is made from it.
fn loaded(raw: &serde_json::Value) -> Result<crate::config::Config, Fatal> {
    crate::redact::register(crate::redact::secrets_in_raw_config(raw));
    let config = validate::load_config(raw).map_err(Fatal::config)?;
    crate::redact::register(config.secrets());
    Ok(config)
}

/// clap's error as one line: what is wrong and, for missing pieces, which ones.
fn usage_message(e: &clap::Error) -> String {
    if e.kind() == clap::error::ErrorKind::MissingSubcommand
        || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    {
        return "usage: a command is required: spec, check --config CONFIG, discover --config CONFIG, or write --config CONFIG --catalog CATALOG [--destination_catalog DEST] [--state STATE]".into();
    }
    let text = e.to_string();
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .collect();
    format!("usage: {}", parts.join(" ").trim_start_matches("error: "))
}

/// Prints the one answer of `spec`, `check` or `discover`; exit 0 once it is out.
fn answer(out: &mut Output, message: &serde_json::Value) -> ExitCode {
    match out.emit(message).and_then(|_| out.flush()) {
        Ok(()) => exit_now(0),
        Err(_) => stdout_closed(),
    }
}

fn finish(out: &mut Output, fatal: Option<Fatal>, code: u8) -> ExitCode {
    if let Some(fatal) = fatal {
        if out.emit(&fatal.trace()).and_then(|_| out.flush()).is_err() {
            return stdout_closed();
        }
    }
    exit_now(code)
}

fn stdout_closed() -> ExitCode {
    eprintln!(
        "destination-webhook: stdout was closed by the reader (the orchestrator stopped); exiting"
    );
    exit_now(1)
}

/// Exits without waiting for the stdin reader thread, which may be blocked on a read that
/// never returns.
fn exit_now(code: u8) -> ExitCode {
    std::process::exit(i32::from(code))
}
