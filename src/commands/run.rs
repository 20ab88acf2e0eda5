//! `sluice run`: the embedded pipeline, live or as a backfill (`--until-idle`).

use std::process::ExitCode;
use std::time::Duration;

use crate::cli::RunArgs;
use crate::config::SluiceConfig;
use crate::delivery::Dispatcher;
use crate::pipeline::{EmbeddedPipeline, PipelineOptions};

/// How often `--until-idle` checks whether everything is read, indexed and checkpointed.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// How long a backfill waits for pending alerts to reach their targets before exiting; what
/// is not delivered stays in the outbox for the next run.
const ALERT_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Loads the config file (if any), applies the flags, resolves paths and validates.
/// Problems are printed; `Err(code)` is the exit code to return.
pub fn load_config(args: &RunArgs) -> Result<SluiceConfig, ExitCode> {
    let mut config = match &args.config {
        Some(path) => match SluiceConfig::load(path) {
            Ok(config) => config,
            Err(err) => {
                eprintln!("error: {err:#}");
                return Err(ExitCode::from(super::EXIT_BAD_CONFIG));
            }
        },
        None => SluiceConfig::default(),
    };
    if let Some(dir) = &args.pods_dir {
        config.ingest.pods_dir = Some(dir.clone());
    }
    if let Some(dir) = &args.data_dir {
        config.data_dir = Some(dir.clone());
    }
    if let Some(listen) = args.listen {
        config.api.listen = listen;
    }
    config.resolve_paths();
    let problems = config.validate();
    if !problems.is_empty() {
        for problem in problems {
            eprintln!("error: invalid configuration: {problem}");
        }
        return Err(ExitCode::from(super::EXIT_BAD_CONFIG));
    }
    Ok(config)
}

/// Runs the embedded pipeline.
///
/// # Errors
/// A stage fails to start or stops with an error.
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let config = match load_config(args) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    let rt = super::runtime()?;
    if config.role != crate::config::Role::All {
        // Distributed mode: one Kafka role per process (alerts go to the alerts topic).
        crate::distributed::run_role(&config, &rt, args.until_idle)?;
        return Ok(ExitCode::SUCCESS);
    }
    let dispatcher = rt.block_on(async { Dispatcher::start(&config.alerting) })?;
    let options = PipelineOptions {
        drain: args.until_idle,
        alerts: Some(dispatcher.sender()),
    };
    let mut pipeline = EmbeddedPipeline::start(&config, options)?;
    let serve_api = config.api.enabled && (!args.until_idle || args.listen.is_some());
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let api_task = if serve_api {
        let observed = pipeline.observer(Some(dispatcher.stats()));
        let router = crate::api::router(observed, pipeline.searcher(), config.api.bearer_token()?);
        let listen = config.api.listen;
        tracing::info!(%listen, "serving the API");
        Some(rt.spawn(crate::api::serve(listen, router, async {
            let _ = api_stopped.await;
        })))
    } else {
        None
    };

    let started = std::time::Instant::now();
    let outcome = if args.until_idle {
        pipeline.wait_idle(IDLE_POLL)
    } else {
        rt.block_on(wait_for_signal(&mut pipeline, config.rules_file.as_deref()))
    };
    let metrics = pipeline.metrics();
    let shutdown = pipeline.shutdown();
    let _ = stop_api.send(());
    if let Some(task) = api_task
        && let Ok(Err(err)) = rt.block_on(task)
    {
        tracing::error!(error = %err, "API server failed");
    }
    rt.block_on(async {
        if !dispatcher.flush(ALERT_FLUSH_TIMEOUT).await {
            tracing::warn!("some alerts are not delivered yet; they stay in the outbox");
        }
        dispatcher.shutdown().await;
    });
    outcome?;
    shutdown?;
    use std::sync::atomic::Ordering::Relaxed;
    eprintln!(
        "sluice: {} records read, {} indexed, {} replays skipped, {} alerts in {:.1}s",
        metrics.records_received.load(Relaxed),
        metrics.events_indexed.load(Relaxed),
        metrics.replays_skipped.load(Relaxed),
        metrics.alerts_raised.load(Relaxed),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// How often the rules file's modification time is checked for a reload.
const RULES_POLL: Duration = Duration::from_secs(2);

/// Waits for Ctrl-C or SIGTERM while watching the pipeline's health; reloads the rules file
/// on SIGHUP or when it changes.
async fn wait_for_signal(
    pipeline: &mut EmbeddedPipeline,
    rules_file: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut health = tokio::time::interval(Duration::from_millis(500));
    let mut rules_poll = tokio::time::interval(RULES_POLL);
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut rules_mtime = rules_file.and_then(modified);
    loop {
        let mut reload = false;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("interrupted; shutting down");
                return Ok(());
            }
            _ = term.recv() => {
                tracing::info!("terminated; shutting down");
                return Ok(());
            }
            _ = health.tick() => pipeline.check_health()?,
            _ = hup.recv() => reload = true,
            _ = rules_poll.tick() => {
                let now = rules_file.and_then(modified);
                if now != rules_mtime {
                    rules_mtime = now;
                    reload = true;
                }
            }
        }
        if let (true, Some(path)) = (reload, rules_file) {
            match crate::pipeline::load_rules_file(path) {
                Ok(rules) => {
                    if !pipeline.reload_rules(rules) {
                        tracing::warn!("a rules reload is already pending");
                    }
                }
                Err(err) => {
                    tracing::error!(error = %format!("{err:#}"), "rules file invalid; keeping the old rules")
                }
            }
        }
    }
}
