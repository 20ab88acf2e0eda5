//! Alert delivery: a durable outbox per target, drained by one async worker per target with
//! timeouts, retries, exponential backoff and jitter.
//!
//! Targets: Alertmanager's v2 API (`POST /api/v2/alerts`), generic JSON webhooks signed with
//! HMAC-SHA256, and stdout. An alert is written to every target's outbox (fsynced) before any
//! attempt to send it, and removed only after the target answered 2xx, so a crash or restart
//! in between delivers it later instead of losing it: at-least-once.

mod outbox;
mod sender;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use outbox::Outbox;
pub use sender::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};

/// Alerts waiting between the detector and the dispatcher. Alerts are rare (a handful per
/// minute even in an incident), so this only absorbs bursts; a full queue blocks the detector
/// thread briefly rather than dropping an alert.
pub const DISPATCH_QUEUE_CAPACITY: usize = 1024;

/// How long shutdown waits for the alert queue to drain into the outboxes.
const SHUTDOWN_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Where alerts go and how hard we try.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    /// Print each alert as one NDJSON line on stdout.
    pub stdout: bool,
    /// Alertmanager base URLs (e.g. `http://alertmanager:9093`); alerts are POSTed to
    /// `<url>/api/v2/alerts`.
    pub alertmanager: Vec<String>,
    /// Generic JSON webhooks.
    pub webhooks: Vec<WebhookConfig>,
    /// Per-request timeout.
    pub timeout_ms: u64,
    /// First retry delay; doubles per failure up to `max_backoff_ms`, with ±50 % jitter.
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// Pending alerts kept per target. When a target stays down long enough to exceed this,
    /// the oldest pending alert is dropped, counted and logged at ERROR.
    pub outbox_max_alerts: usize,
    /// Where outboxes live; defaults to `<data_dir>/state/alerts`.
    pub outbox_dir: Option<PathBuf>,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        AlertingConfig {
            stdout: false,
            alertmanager: Vec::new(),
            webhooks: Vec::new(),
            timeout_ms: 5_000,
            initial_backoff_ms: 500,
            max_backoff_ms: 60_000,
            outbox_max_alerts: 10_000,
            outbox_dir: None,
        }
    }
}

/// One webhook receiver.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// A name for metrics and logs; defaults to the URL's host.
    #[serde(default)]
    pub name: Option<String>,
    pub url: String,
    /// Environment variable holding the HMAC secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// File holding the HMAC secret (trailing whitespace ignored).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
}

impl WebhookConfig {
    /// The signing secret, if one is configured. Never logged.
    ///
    /// # Errors
    /// The named variable is unset or the file unreadable.
    pub fn secret(&self) -> Result<Option<Vec<u8>>, String> {
        if let Some(var) = &self.secret_env {
            return std::env::var(var)
                .map(|s| Some(s.into_bytes()))
                .map_err(|_| format!("environment variable {var} (webhook secret) is not set"));
        }
        if let Some(path) = &self.secret_file {
            return std::fs::read_to_string(path)
                .map(|s| Some(s.trim_end().as_bytes().to_vec()))
                .map_err(|e| format!("failed to read webhook secret {}: {e}", path.display()));
        }
        Ok(None)
    }
}

impl AlertingConfig {
    /// Checks URLs and limits.
    ///
    /// # Errors
    /// A message naming the offending field.
    pub fn validate(&self) -> Result<(), String> {
        for (i, url) in self.alertmanager.iter().enumerate() {
            check_url(url).map_err(|e| format!("alertmanager[{i}]: {e}"))?;
        }
        for (i, hook) in self.webhooks.iter().enumerate() {
            check_url(&hook.url).map_err(|e| format!("webhooks[{i}].url: {e}"))?;
            if hook.secret_env.is_some() && hook.secret_file.is_some() {
                return Err(format!(
                    "webhooks[{i}]: set secret_env or secret_file, not both"
                ));
            }
        }
        if self.timeout_ms == 0 {
            return Err("timeout_ms: must be greater than 0".into());
        }
        if self.initial_backoff_ms == 0 || self.max_backoff_ms < self.initial_backoff_ms {
            return Err("initial_backoff_ms must be > 0 and not larger than max_backoff_ms".into());
        }
        if self.outbox_max_alerts == 0 {
            return Err("outbox_max_alerts: must be greater than 0".into());
        }
        Ok(())
    }
}

fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    match parsed.scheme() {
        "http" | "https" => Ok(()),
        other => Err(format!("unsupported scheme {other:?} in {url:?}")),
    }
}

/// Delivery counters, per process.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    pub delivered: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub dropped_outbox_full: AtomicU64,
    pub pending: AtomicU64,
    /// Alerts taken from the queue and written to every target's outbox (or printed): a
    /// producer that counts what it submitted knows what is durable.
    pub persisted: AtomicU64,
}

impl DeliveryStats {
    /// Prometheus text exposition of the counters.
    pub fn render_prometheus(&self, out: &mut String) {
        use std::fmt::Write;
        let rows = [
            (
                "sluice_alerts_delivered_total",
                "counter",
                self.delivered.load(Ordering::Relaxed),
            ),
            (
                "sluice_alert_delivery_failures_total",
                "counter",
                self.failed_attempts.load(Ordering::Relaxed),
            ),
            (
                "sluice_alerts_dropped_total",
                "counter",
                self.dropped_outbox_full.load(Ordering::Relaxed),
            ),
            (
                "sluice_alerts_pending",
                "gauge",
                self.pending.load(Ordering::Relaxed),
            ),
        ];
        for (name, kind, value) in rows {
            let _ = writeln!(out, "# TYPE {name} {kind}\n{name} {value}");
        }
    }
}

/// A running dispatcher: feed it alerts with [`Dispatcher::sender`]; drop or
/// [`Dispatcher::shutdown`] to stop (pending alerts stay in the outbox for the next start).
#[derive(Debug)]
pub struct Dispatcher {
    /// `None` once shutdown has begun.
    tx: Option<tokio::sync::mpsc::Sender<schemas::Alert>>,
    stats: Arc<DeliveryStats>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    cancel: tokio_util::sync::CancellationToken,
}

impl Dispatcher {
    /// Opens every target's outbox (re-queuing what a previous run left) and starts one worker
    /// per target on the current tokio runtime.
    ///
    /// # Errors
    /// A secret is missing, an outbox cannot be opened, or the HTTP client cannot be built.
    pub fn start(config: &AlertingConfig) -> anyhow::Result<Dispatcher> {
        let outbox_dir = config
            .outbox_dir
            .clone()
            .ok_or_else(|| anyhow::anyhow!("alerting.outbox_dir is not set"))?;
        let stats = Arc::new(DeliveryStats::default());
        let cancel = tokio_util::sync::CancellationToken::new();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .build()?;
        let mut targets = Vec::new();
        for url in &config.alertmanager {
            targets.push(sender::Target::alertmanager(url));
        }
        for hook in &config.webhooks {
            let secret = hook.secret().map_err(anyhow::Error::msg)?;
            targets.push(sender::Target::webhook(hook, secret));
        }
        let mut queues = Vec::new();
        let mut tasks = Vec::new();
        for target in targets {
            let outbox = Outbox::open(
                &outbox_dir.join(target.outbox_name()),
                config.outbox_max_alerts,
            )?;
            stats
                .pending
                .fetch_add(outbox.len() as u64, Ordering::Relaxed);
            let outbox = Arc::new(std::sync::Mutex::new(outbox));
            let notify = Arc::new(tokio::sync::Notify::new());
            queues.push((outbox.clone(), notify.clone()));
            let worker = sender::Worker {
                target,
                client: client.clone(),
                outbox,
                notify,
                stats: stats.clone(),
                cancel: cancel.clone(),
                initial_backoff: Duration::from_millis(config.initial_backoff_ms),
                max_backoff: Duration::from_millis(config.max_backoff_ms),
            };
            tasks.push(tokio::spawn(worker.run()));
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel::<schemas::Alert>(DISPATCH_QUEUE_CAPACITY);
        let print = config.stdout;
        let fanout_stats = stats.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(alert) = rx.recv().await {
                if print {
                    match serde_json::to_string(&alert) {
                        Ok(line) => println!("{line}"),
                        Err(err) => tracing::error!(error = %err, "failed to print alert"),
                    }
                }
                for (outbox, notify) in &queues {
                    let pushed = {
                        let mut outbox = outbox.lock().expect("outbox lock poisoned");
                        outbox.push(&alert)
                    };
                    match pushed {
                        Ok(dropped) => {
                            fanout_stats.pending.fetch_add(1, Ordering::Relaxed);
                            if dropped > 0 {
                                fanout_stats
                                    .dropped_outbox_full
                                    .fetch_add(dropped, Ordering::Relaxed);
                                fanout_stats.pending.fetch_sub(dropped, Ordering::Relaxed);
                                tracing::error!(
                                    dropped,
                                    "alert outbox full: dropped the oldest pending alerts"
                                );
                            }
                        }
                        Err(err) => {
                            tracing::error!(error = %err, alert = alert.name(), "failed to persist alert to outbox")
                        }
                    }
                    notify.notify_one();
                }
                fanout_stats.persisted.fetch_add(1, Ordering::Relaxed);
            }
        }));
        Ok(Dispatcher {
            tx: Some(tx),
            stats,
            tasks,
            cancel,
        })
    }

    /// A handle to submit alerts. Use `blocking_send` from non-async threads.
    pub fn sender(&self) -> tokio::sync::mpsc::Sender<schemas::Alert> {
        self.tx
            .clone()
            .expect("sender() is not called after shutdown() began")
    }

    pub fn stats(&self) -> Arc<DeliveryStats> {
        self.stats.clone()
    }

    /// Waits until every outbox is empty or `timeout` passes; true when all were delivered.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let queued = self
                .tx
                .as_ref()
                .is_some_and(|tx| tx.capacity() < tx.max_capacity());
            if !queued && self.stats.pending.load(Ordering::Relaxed) == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Persists every alert already submitted, then stops the workers. Undelivered alerts stay
    /// in the outboxes for the next start. Drop every [`Dispatcher::sender`] clone first.
    pub async fn shutdown(mut self) {
        drop(self.tx.take());
        let mut tasks = std::mem::take(&mut self.tasks);
        // The fan-out task is last: it ends once every sender is gone and the queue is drained.
        if let Some(fanout) = tasks.pop()
            && tokio::time::timeout(SHUTDOWN_DRAIN_TIMEOUT, fanout)
                .await
                .is_err()
        {
            tracing::warn!("alert senders still open at shutdown; queued alerts may be lost");
        }
        self.cancel.cancel();
        for task in tasks {
            let _ = task.await;
        }
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
