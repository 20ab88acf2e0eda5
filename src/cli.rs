//! Command-line interface: argument definitions and dispatch to the commands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::commands;

/// Sluice: a Kubernetes log pipeline that never loses a line and finds incidents by itself.
///
/// Embedded mode runs everything in one process (tail → parse → detect → tantivy).
/// Try `sluice demo` for a live, self-contained tour.
#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Log filter for Sluice's own diagnostics (tracing's EnvFilter syntax), e.g. `info`,
    /// `sluice=debug`. Also read from SLUICE_LOG. The default keeps tantivy's per-commit
    /// chatter out.
    #[arg(
        long,
        global = true,
        env = "SLUICE_LOG",
        default_value = "info,tantivy=warn"
    )]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a deterministic, realistic Kubernetes workload (pod log tree + incidents.json).
    Generate(GenerateArgs),
    /// Run the embedded pipeline: tail pod logs, parse, detect, index, serve the API.
    Run(RunArgs),
    /// Search an embedded index: NDJSON events, newest first, or a count.
    Search(SearchArgs),
    /// Generate live traffic into a temp dir and run the whole pipeline on it.
    Demo(DemoArgs),
    /// Show what Sluice makes of log lines: one NDJSON event per record.
    Parse(ParseArgs),
    /// Backtest detection rules over NDJSON events (the output of `sluice parse`).
    Detect(DetectArgs),
    /// Mine log templates from lines of text.
    Patterns(PatternsArgs),
    /// Work with configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Elasticsearch administration.
    #[command(subcommand)]
    Es(EsCommand),
}

#[derive(Debug, Subcommand)]
pub enum EsCommand {
    /// Create (idempotently) the ILM policy (hot, rollover at 1 day or 50 GB, delete at
    /// `retention_days`), the component and index templates generated from the event schema,
    /// and the `logs-sluice-<namespace>` data stream, from the `[elasticsearch]` section.
    Setup {
        /// Configuration file with an `[elasticsearch]` section (urls, auth, namespace, ...).
        #[arg(long, short)]
        config: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Output directory (created); receives `<ns>_<pod>_<uid>/<container>/0.log` trees and
    /// `incidents.json`.
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the pseudo-random generator: the same seed and --start give the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of log records to write (a multi-line traceback counts as one).
    #[arg(long, conflicts_with = "duration")]
    pub lines: Option<u64>,
    /// Records per second of event time.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Span of event time to cover (e.g. 30m, 2h), at --rate; alternative to --lines.
    #[arg(long, value_parser = crate::util::parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Incidents to inject: `all`, `none`, or a comma-separated list of error_burst,
    /// latency_spike, db_connection_errors, llm_upstream_failure, brute_force,
    /// injection_probe, secret_leak.
    #[arg(long, default_value = "all")]
    pub incidents: String,
    /// Event time of the first record (RFC 3339). Default: now minus the span.
    #[arg(long, value_parser = crate::util::parse_time)]
    pub start: Option<chrono::DateTime<chrono::Utc>>,
    /// Rotate `0.log` kubelet-style when it passes this many bytes.
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    pub rotate_bytes: u64,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Configuration file (TOML). Flags below override it.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Root of the pod log tree (default /var/log/pods).
    #[arg(long)]
    pub pods_dir: Option<PathBuf>,
    /// Where the index, checkpoints and detector state live (default ./sluice-data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Serve the HTTP API here (default 127.0.0.1:7280).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Backfill mode: exit 0 once every file is read to EOF and everything read is indexed
    /// and checkpointed. The API is served only if --listen is given.
    #[arg(long)]
    pub until_idle: bool,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Data dir of the embedded pipeline (the one given to `sluice run`).
    #[arg(long, default_value = crate::config::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Only events at or after this time (RFC 3339, or an age such as 15m, 2h).
    #[arg(long, value_parser = crate::util::parse_time)]
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Only events before this time (RFC 3339, or an age).
    #[arg(long, value_parser = crate::util::parse_time)]
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Maximum events to print.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Print only the number of matching events.
    #[arg(long)]
    pub count: bool,
    /// Days of data the store keeps; older partitions are never searched.
    #[arg(long, default_value_t = 90)]
    pub retention_days: u32,
    /// Query in tantivy syntax over ECS field names, e.g. `log.level:error`,
    /// `service.name:api AND http.response.status_code:[500 TO 599]`, `"connection refused"`.
    /// Empty matches everything.
    pub query: Option<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Stop after this long (e.g. 2m); default: run until Ctrl-C.
    #[arg(long, value_parser = crate::util::parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Records per second written by the live workload.
    #[arg(long, default_value_t = 500.0)]
    pub rate: f64,
    /// Serve the HTTP API here.
    #[arg(long, default_value = crate::config::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Seconds between status lines.
    #[arg(long, default_value_t = 5)]
    pub status_every_s: u64,
}

#[derive(Debug, Args)]
pub struct ParseArgs {
    /// Input file; `-` or absent reads standard input. Lines may be raw application output
    /// or container runtime lines (CRI or docker json-file), detected per line.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Parser configuration (a file with a `[parse]` section, like `sluice run --config`).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Rules file (TOML, the `[detect]` section's format); default: the built-in runbook rules.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// NDJSON events; `-` or absent reads standard input.
    #[arg(long)]
    pub input: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PatternsArgs {
    /// Input lines (plain text, or NDJSON events whose `message` is used); default stdin.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Print one `{"pattern_id":..,"template":..}` line per input line, in order, instead of
    /// the template summary.
    #[arg(long)]
    pub assign: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file and print every problem with its field path.
    Check {
        /// The file to check.
        file: PathBuf,
    },
    /// Print the default configuration as TOML.
    Default,
}

/// Parses arguments, sets up diagnostics and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.log);
    let result = match cli.command {
        Command::Generate(args) => commands::generate::run(&args),
        Command::Run(args) => commands::run::run(&args),
        Command::Search(args) => commands::search::run(&args),
        Command::Demo(args) => commands::demo::run(&args),
        Command::Parse(args) => commands::parse::run(&args),
        Command::Detect(args) => commands::detect::run(&args),
        Command::Patterns(args) => commands::patterns::run(&args),
        Command::Config(ConfigCommand::Check { file }) => commands::config::check(&file),
        Command::Config(ConfigCommand::Default) => commands::config::print_default(),
        Command::Es(EsCommand::Setup { config }) => commands::es::setup(&config),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
