//! Per-target delivery workers: Alertmanager v2 and signed JSON webhooks.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{DeliveryStats, Outbox, WebhookConfig};

/// Header carrying `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
pub const SIGNATURE_HEADER: &str = "x-sluice-signature";
/// Header carrying the Unix time (seconds) the request was signed; receivers should reject
/// old timestamps to stop replays.
pub const TIMESTAMP_HEADER: &str = "x-sluice-timestamp";
/// Alerts sent in one request. Alertmanager takes arrays; webhooks get the same batching.
const MAX_ALERTS_PER_REQUEST: usize = 64;
/// Version tag in the webhook body, bumped with [`schemas::ALERT_VERSION`].
const WEBHOOK_BODY_VERSION: &str = "sluice.alerts.v1";

/// The signature for a webhook body: hex HMAC-SHA256 over `"<timestamp>.<body>"`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + digest.len() * 2);
    hex.push_str("sha256=");
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

#[derive(Debug)]
pub(super) enum Target {
    Alertmanager {
        url: String,
    },
    Webhook {
        name: String,
        url: String,
        secret: Option<Vec<u8>>,
    },
}

impl Target {
    pub(super) fn alertmanager(base: &str) -> Target {
        Target::Alertmanager {
            url: format!("{}/api/v2/alerts", base.trim_end_matches('/')),
        }
    }

    pub(super) fn webhook(config: &WebhookConfig, secret: Option<Vec<u8>>) -> Target {
        let name = config.name.clone().unwrap_or_else(|| {
            reqwest::Url::parse(&config.url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| "webhook".into())
        });
        Target::Webhook {
            name,
            url: config.url.clone(),
            secret,
        }
    }

    /// A file-system-safe, stable name for this target's outbox.
    pub(super) fn outbox_name(&self) -> String {
        let (kind, url) = match self {
            Target::Alertmanager { url } => ("alertmanager", url),
            Target::Webhook { url, .. } => ("webhook", url),
        };
        format!("{kind}-{:016x}", xxhash_rust::xxh3::xxh3_64(url.as_bytes()))
    }

    fn describe(&self) -> &str {
        match self {
            Target::Alertmanager { url } => url,
            Target::Webhook { name, .. } => name,
        }
    }

    async fn send(
        &self,
        client: &reqwest::Client,
        alerts: &[schemas::Alert],
    ) -> Result<(), String> {
        let request = match self {
            Target::Alertmanager { url } => {
                let body: Vec<serde_json::Value> = alerts.iter().map(postable_alert).collect();
                client.post(url).json(&body)
            }
            Target::Webhook {
                name, url, secret, ..
            } => {
                let body = serde_json::to_vec(&serde_json::json!({
                    "version": WEBHOOK_BODY_VERSION,
                    "receiver": name,
                    "alerts": alerts,
                }))
                .map_err(|e| e.to_string())?;
                let mut request = client
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json");
                if let Some(secret) = secret {
                    let ts = chrono::Utc::now().timestamp();
                    request = request
                        .header(TIMESTAMP_HEADER, ts.to_string())
                        .header(SIGNATURE_HEADER, sign(secret, ts, &body));
                }
                request.body(body)
            }
        };
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                "request timed out".to_string()
            } else {
                format!("request failed: {e}")
            }
        })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("answered HTTP {status}"))
        }
    }
}

/// Alertmanager's `postableAlert`: only the fields its v2 API defines.
fn postable_alert(alert: &schemas::Alert) -> serde_json::Value {
    let mut v = serde_json::json!({
        "labels": alert.labels,
        "annotations": alert.annotations,
        "startsAt": alert.starts_at,
        "generatorURL": alert.generator_url,
    });
    if let Some(ends) = alert.ends_at {
        v["endsAt"] = serde_json::json!(ends);
    }
    v
}

pub(super) struct Worker {
    pub(super) target: Target,
    pub(super) client: reqwest::Client,
    pub(super) outbox: Arc<Mutex<Outbox>>,
    pub(super) notify: Arc<tokio::sync::Notify>,
    pub(super) stats: Arc<DeliveryStats>,
    pub(super) cancel: tokio_util::sync::CancellationToken,
    pub(super) initial_backoff: Duration,
    pub(super) max_backoff: Duration,
}

impl Worker {
    pub(super) async fn run(self) {
        let mut backoff = self.initial_backoff;
        let mut jitter = Jitter::seeded();
        loop {
            let batch = self
                .outbox
                .lock()
                .expect("outbox lock poisoned")
                .peek(MAX_ALERTS_PER_REQUEST);
            if batch.is_empty() {
                tokio::select! {
                    _ = self.notify.notified() => continue,
                    _ = self.cancel.cancelled() => return,
                }
            }
            let alerts: Vec<schemas::Alert> = batch.iter().map(|(_, a)| a.clone()).collect();
            let result = tokio::select! {
                r = self.target.send(&self.client, &alerts) => r,
                _ = self.cancel.cancelled() => return,
            };
            match result {
                Ok(()) => {
                    let seqs: Vec<u64> = batch.iter().map(|(seq, _)| *seq).collect();
                    let removed = self
                        .outbox
                        .lock()
                        .expect("outbox lock poisoned")
                        .remove(&seqs);
                    match removed {
                        Ok(n) => {
                            self.stats.delivered.fetch_add(n as u64, Ordering::Relaxed);
                            self.stats.pending.fetch_sub(n as u64, Ordering::Relaxed);
                        }
                        Err(err) => tracing::error!(
                            target = self.target.describe(), error = %err,
                            "delivered alerts could not be removed from the outbox; they will be sent again"
                        ),
                    }
                    backoff = self.initial_backoff;
                }
                Err(err) => {
                    let attempts = self.stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    // One warning per doubling of the failure count keeps a dead target from
                    // flooding the log while still showing it is down.
                    if attempts.is_power_of_two() || attempts == 0 {
                        tracing::warn!(
                            target = self.target.describe(),
                            error = %err,
                            pending = alerts.len(),
                            retry_in_ms = backoff.as_millis() as u64,
                            "alert delivery failed; will retry"
                        );
                    }
                    let delay = jitter.apply(backoff);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.cancel.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(self.max_backoff);
                }
            }
        }
    }
}

/// ±50 % jitter from a tiny xorshift generator, so retrying agents do not synchronize.
struct Jitter(u64);

impl Jitter {
    fn seeded() -> Jitter {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64);
        Jitter(nanos | 1)
    }

    fn apply(&mut self, base: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let factor = 0.5 + (self.0 % 1000) as f64 / 1000.0;
        base.mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Expected value computed independently with Python's hmac module:
        // hmac.new(b"secret", b"1700000000.{}", hashlib.sha256).hexdigest()
        let sig = sign(b"secret", 1_700_000_000, b"{}");
        assert_eq!(
            sig,
            "sha256=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
        assert_ne!(sig, sign(b"secret", 1_700_000_001, b"{}"));
        assert_ne!(sig, sign(b"other", 1_700_000_000, b"{}"));
    }

    #[test]
    fn jitter_stays_within_half_to_one_and_a_half() {
        let mut j = Jitter(12345);
        for _ in 0..1000 {
            let d = j.apply(Duration::from_millis(1000));
            assert!(d >= Duration::from_millis(500) && d <= Duration::from_millis(1500));
        }
    }
}
