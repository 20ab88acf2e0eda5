//! `sluice demo`: a live workload in a temp dir, the whole embedded pipeline on it, the API on
//! loopback, a status line every few seconds and every alert as it fires.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cli::DemoArgs;
use crate::config::SluiceConfig;
use crate::generate::{GenerateConfig, IncidentSelection};
use crate::pipeline::{EmbeddedPipeline, PipelineOptions};

/// Runs the demo until Ctrl-C or `--duration`.
///
/// # Errors
/// The temp dir, the generator, the pipeline or the API fails to start.
pub fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let work = tempfile::Builder::new()
        .prefix("sluice-demo-")
        .tempdir()
        .context("failed to create a temp dir for the demo")?;
    let pods_dir = work.path().join("pods");
    std::fs::create_dir_all(&pods_dir)?;
    let mut config = SluiceConfig::default();
    config.data_dir = Some(work.path().join("data"));
    config.ingest.pods_dir = Some(pods_dir.clone());
    config.api.listen = args.listen;
    config.resolve_paths();
    let problems = config.validate();
    anyhow::ensure!(
        problems.is_empty(),
        "demo configuration invalid: {problems:?}"
    );

    eprintln!(
        "sluice demo: writing a live FastAPI workload at {} records/s into {}",
        args.rate,
        pods_dir.display()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let generator = {
        let stop = stop.clone();
        let gen_config = GenerateConfig {
            out: pods_dir.clone(),
            seed: 1,
            lines: None,
            rate_per_s: args.rate,
            duration: args.duration,
            incidents: IncidentSelection::All,
            start: None,
            rotate_bytes: 10 * 1024 * 1024,
        };
        std::thread::Builder::new()
            .name("sluice-demo-gen".into())
            .spawn(move || crate::generate::generate_live(&gen_config, &stop))?
    };

    let rt = super::runtime()?;
    let (alert_tx, mut alert_rx) =
        tokio::sync::mpsc::channel::<schemas::Alert>(crate::delivery::DISPATCH_QUEUE_CAPACITY);
    let printer = rt.spawn(async move {
        while let Some(alert) = alert_rx.recv().await {
            println!("{}", describe_alert(&alert));
        }
    });
    let mut pipeline = EmbeddedPipeline::start(
        &config,
        PipelineOptions {
            drain: false,
            alerts: Some(alert_tx),
        },
    )?;
    let observed = pipeline.observer(None);
    let router = crate::api::router(observed, pipeline.searcher(), None);
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let api = rt.spawn(crate::api::serve(args.listen, router, async {
        let _ = api_stopped.await;
    }));
    eprintln!(
        "sluice demo: API on http://{0}  (try: curl 'http://{0}/api/search?q=log.level:error&limit=3')",
        args.listen
    );
    eprintln!("sluice demo: Ctrl-C to stop");

    let started = Instant::now();
    let deadline = args.duration.map(|d| started + d);
    let metrics = pipeline.metrics();
    let result = rt.block_on(async {
        let mut status = tokio::time::interval(Duration::from_secs(args.status_every_s.max(1)));
        status.tick().await;
        let mut last_indexed = 0u64;
        let mut last_at = Instant::now();
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(()),
                _ = status.tick() => {
                    pipeline.check_health()?;
                    let indexed = metrics.events_indexed.load(Ordering::Relaxed);
                    let rate = (indexed - last_indexed) as f64 / last_at.elapsed().as_secs_f64();
                    last_indexed = indexed;
                    last_at = Instant::now();
                    eprintln!(
                        "[{:>5.0}s] read {:>9}  indexed {:>9} ({:>7.0}/s)  alerts {:>3}",
                        started.elapsed().as_secs_f64(),
                        metrics.records_received.load(Ordering::Relaxed),
                        indexed,
                        rate,
                        metrics.alerts_raised.load(Ordering::Relaxed),
                    );
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(());
                    }
                }
            }
        }
    });
    if let Err(err) = &result {
        eprintln!("sluice demo: stopping after error: {err:#}");
    }
    stop.store(true, Ordering::SeqCst);
    let gen_report = generator
        .join()
        .map_err(|_| anyhow::anyhow!("the demo workload generator panicked"))?;
    pipeline.shutdown()?;
    let _ = stop_api.send(());
    if let Ok(Err(err)) = rt.block_on(api) {
        eprintln!("sluice demo: API server failed: {err:#}");
    }
    let _ = rt.block_on(printer);
    let report = gen_report?;
    eprintln!(
        "sluice demo: wrote {} records, indexed {}, raised {} alerts in {:.0}s",
        report.records,
        metrics.events_indexed.load(Ordering::Relaxed),
        metrics.alerts_raised.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    result.map(|()| ExitCode::SUCCESS)
}

fn describe_alert(alert: &schemas::Alert) -> String {
    let labels: Vec<String> = alert
        .labels
        .iter()
        .filter(|(k, _)| k.as_str() != schemas::LABEL_ALERTNAME)
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    let status = match alert.status {
        schemas::AlertStatus::Firing => "FIRING  ",
        schemas::AlertStatus::Resolved => "RESOLVED",
    };
    let summary = alert
        .annotations
        .get(schemas::ANNOTATION_SUMMARY)
        .map(String::as_str)
        .unwrap_or("");
    format!(
        "{status} {}{{{}}} since {}  {summary}",
        alert.name(),
        labels.join(", "),
        alert.starts_at.format("%H:%M:%S")
    )
}
