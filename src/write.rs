//! `write`: reads the config, catalogs and checkpoint, picks the dialect, and runs the sink.

use std::path::PathBuf;

use tokio::sync::mpsc;

use crate::catalog::{self, ValmiCatalog};
use crate::checkpoint::airbyte::AirbyteCheckpoints;
use crate::checkpoint::valmi::ValmiCheckpoints;
use crate::checkpoint::Checkpointer;
use crate::config::Config;
use crate::delivery::Deliverer;
use crate::dialect::{airbyte::Airbyte, valmi::Valmi, Dialect};
use crate::encoder::Encoder;
use crate::output::Output;
use crate::protocol::{log, FailureType, Fatal, Level};
use crate::refresh::Cleanup;
use crate::routes::Routes;
use crate::shape::Shape;
use crate::signals::Signals;
use crate::sink::{Ending, Sink};
use crate::{files, reader, resume, validate};

#[derive(Debug, clap::Args)]
pub struct WriteArgs {
    /// Connector config (JSON)
    #[arg(long)]
    pub config: PathBuf,
    /// Valmi: the source catalog (with id_key); Airbyte: the ConfiguredAirbyteCatalog
    #[arg(long)]
    pub catalog: PathBuf,
    /// Valmi's destination catalog; its presence selects the Valmi dialect
    #[arg(long = "destination_catalog")]
    pub destination_catalog: Option<PathBuf>,
    /// Valmi checkpoint to resume from
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Print every request that would be sent (as LOG messages) and send nothing
    #[arg(long = "dry-run")]
    pub dry_run: bool,
}

/// Everything `write` needs, read and checked before the first record.
struct Plan {
    config: Config,
    dialect: Dialect,
    checkpointer: Checkpointer,
    description: String,
    /// INFO lines that follow the description (what a refresh leaves in place).
    notes: Vec<String>,
    /// Requests of truncating refreshes, sent before any record.
    cleanups: Vec<Cleanup>,
}

fn plan(args: &WriteArgs) -> Result<Plan, Fatal> {
    let raw = files::read_json(&args.config, "config").map_err(Fatal::config)?;
    crate::redact::register(crate::redact::secrets_in_raw_config(&raw));
    let config = validate::load_config(&raw).map_err(Fatal::config)?;
    crate::redact::register(config.secrets());
    let catalog = files::read_json(&args.catalog, "catalog").map_err(Fatal::config)?;
    let encoder = encoder(&config).map_err(|e| Fatal::config(e.to_string()))?;
    let (mut cleanups, mut notes) = (Vec::new(), Vec::new());
    let (dialect, checkpointer, dialect_name) = match &args.destination_catalog {
        Some(path) => {
            let destination =
                files::read_json(path, "destination catalog").map_err(Fatal::config)?;
            let valmi = ValmiCatalog::parse(&destination, &catalog).map_err(Fatal::config)?;
            let resume = match &args.state {
                Some(path) => resume::read(path).map_err(Fatal::config)?,
                None => resume::Resume::default(),
            };
            let checkpoints = ValmiCheckpoints::new(
                config.chunk_size(),
                config.records_per_metric(),
                resume.chunk_id,
                resume.last_row_num,
            );
            let dialect = Valmi::new(encoder, valmi, &config, resume.last_row_num);
            (
                Dialect::Valmi(dialect),
                Checkpointer::Valmi(checkpoints),
                "Valmi",
            )
        }
        None => {
            let dialect;
            (dialect, cleanups, notes) = airbyte(&config, &catalog, encoder)?;
            (
                dialect,
                Checkpointer::Airbyte(AirbyteCheckpoints::default()),
                "Airbyte",
            )
        }
    };
    let description = format!(
        "{}writing to {} with {} ({dialect_name} dialect), concurrency adaptive up to {}, batch size {}, timeout {}s, max retries {}",
        if args.dry_run { "dry run (nothing is sent): " } else { "" },
        crate::redact::shown_url(config.url.url().as_str()),
        config.method.as_str(),
        config.concurrency,
        config.batch_size,
        config.timeout().as_secs_f64(),
        config.max_retries()
    );
    Ok(Plan {
        config,
        dialect,
        checkpointer,
        description,
        notes,
        cleanups,
    })
}

/// Every destination object's request definitions, the top-level request's first.
fn encoder(config: &Config) -> Result<Encoder, crate::template::CompileError> {
    let routes = Routes::compile(config)?;
    let encoder = Encoder::new(Shape::of(config), config.url.url().clone(), routes);
    Ok(encoder.with_objects(crate::objects::routes(config)?))
}

/// The Airbyte dialect with each stream pointed at its destination object, and what the
/// streams' truncating refreshes need: requests to send first, or a note each.
fn airbyte(
    config: &Config,
    catalog: &serde_json::Value,
    encoder: Encoder,
) -> Result<(Dialect, Vec<Cleanup>, Vec<String>), Fatal> {
    let mut streams = catalog::parse_airbyte(catalog).map_err(Fatal::config)?;
    crate::objects::resolve(config, &mut streams).map_err(Fatal::config)?;
    let (cleanups, notes) = crate::refresh::plan(config, &streams).map_err(Fatal::config)?;
    Ok((
        Dialect::Airbyte(Airbyte::new(encoder, streams)),
        cleanups,
        notes,
    ))
}

pub fn run(args: &WriteArgs, out: &mut Output) -> Result<Ending, crate::output::Closed> {
    let plan = match plan(args) {
        Ok(plan) => plan,
        Err(fatal) => return Ok(Ending::failed(fatal)),
    };
    out.emit(&log(Level::Info, &plan.description))?;
    for note in &plan.notes {
        out.emit(&log(Level::Info, note))?;
    }
    let deliverer = match Deliverer::new(&plan.config, args.dry_run) {
        Ok(d) => d,
        Err(message) => return Ok(Ending::failed(Fatal::config(message))),
    };
    let batch_size = Shape::of(&plan.config).batch_size(plan.config.batch_size);
    let sink = Sink {
        deliverer,
        checkpointer: plan.checkpointer,
        concurrency: plan.config.concurrency.max(1) as usize,
        batch_size,
        grace: plan.config.timeout(),
    };
    let signals = match Signals::listen(sink.grace) {
        Ok(signals) => signals,
        Err(e) => {
            return Ok(Ending::failed(Fatal::new(
                FailureType::SystemError,
                format!("could not listen for signals: {e}"),
                String::new(),
            )))
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("start the runtime");
    runtime.block_on(async {
        if let Err(fatal) = prepare(&sink.deliverer, plan.cleanups, &signals, out).await? {
            return Ok(Ending::failed(fatal));
        }
        // One chunk waiting, one being filled: a chunk of small records is far more than the
        // loop needs between two hand-overs, and with records of many megabytes (one per
        // chunk) every queued chunk is that much more memory.
        let (tx, rx) = mpsc::channel(1);
        reader::spawn(std::io::stdin(), plan.dialect, tx);
        sink.run(rx, &signals, out).await
    })
}

/// What must succeed before the first record: the OAuth2 token (settings the token endpoint
/// refuses stop the sync before anything is sent), then the truncating refreshes' requests.
async fn prepare(
    deliverer: &Deliverer,
    cleanups: Vec<Cleanup>,
    signals: &Signals,
    out: &mut Output,
) -> Result<Result<(), Fatal>, crate::output::Closed> {
    if let Err(e) = deliverer.authorize().await {
        let kind = match e.is_config() {
            true => FailureType::ConfigError,
            false => FailureType::TransientError,
        };
        return Ok(Err(Fatal::new(kind, e.to_string(), String::new())));
    }
    for cleanup in cleanups {
        let note = format!("stream '{}' is a truncating refresh: sending its destination object's on_refresh request before any record", cleanup.stream);
        out.emit(&log(Level::Info, &note))?;
        if let Err(fatal) = crate::refresh::send(cleanup, deliverer, signals).await {
            return Ok(Err(fatal));
        }
    }
    Ok(Ok(()))
}
