//! Alert delivery against real HTTP servers on 127.0.0.1 that fail, time out and recover.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use sluice::delivery::{
    AlertingConfig, Dispatcher, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookConfig,
};

const OK: u8 = 0;
const FAIL: u8 = 1;
const HANG: u8 = 2;

#[derive(Default)]
struct Receiver {
    mode: AtomicU8,
    /// (route, headers, body) of requests answered 2xx.
    accepted: Mutex<Vec<(String, HeaderMap, Bytes)>>,
    attempts: Mutex<u64>,
}

async fn handle(
    route: &'static str,
    rx: Arc<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    *rx.attempts.lock().expect("lock") += 1;
    match rx.mode.load(Ordering::SeqCst) {
        FAIL => StatusCode::SERVICE_UNAVAILABLE,
        HANG => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            StatusCode::OK
        }
        _ => {
            rx.accepted
                .lock()
                .expect("lock")
                .push((route.to_string(), headers, body));
            StatusCode::OK
        }
    }
}

async fn start_receiver() -> anyhow::Result<(String, Arc<Receiver>)> {
    let rx = Arc::new(Receiver::default());
    let app = axum::Router::new()
        .route(
            "/api/v2/alerts",
            post(|State(rx): State<Arc<Receiver>>, h: HeaderMap, b: Bytes| handle("am", rx, h, b)),
        )
        .route(
            "/hook",
            post(|State(rx): State<Arc<Receiver>>, h: HeaderMap, b: Bytes| {
                handle("hook", rx, h, b)
            }),
        )
        .with_state(rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((format!("http://{addr}"), rx))
}

fn alert(i: usize) -> schemas::Alert {
    let mut labels = BTreeMap::new();
    labels.insert("alertname".to_string(), "HighErrorRate".to_string());
    labels.insert("service".to_string(), format!("svc-{i}"));
    schemas::Alert {
        fingerprint: schemas::alert_fingerprint(&labels),
        labels,
        annotations: BTreeMap::new(),
        starts_at: chrono::DateTime::from_timestamp(1_796_000_000 + i as i64, 0).expect("valid"),
        ends_at: None,
        generator_url: "http://127.0.0.1:7280/".into(),
        status: schemas::AlertStatus::Firing,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_alert_arrives_signed_despite_failures_timeouts_and_a_restart() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "s3cret\n")?;
    let (base, rx) = start_receiver().await?;
    let config = AlertingConfig {
        alertmanager: vec![base.clone()],
        webhooks: vec![WebhookConfig {
            name: Some("test".into()),
            url: format!("{base}/hook"),
            secret_env: None,
            secret_file: Some(secret_file),
        }],
        timeout_ms: 300,
        initial_backoff_ms: 20,
        max_backoff_ms: 200,
        outbox_dir: Some(dir.path().join("outbox")),
        ..AlertingConfig::default()
    };

    rx.mode.store(FAIL, Ordering::SeqCst);
    let first = Dispatcher::start(&config)?;
    let tx = first.sender();
    for i in 0..3 {
        tx.send(alert(i)).await?;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    rx.mode.store(HANG, Ordering::SeqCst);
    tx.send(alert(3)).await?;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(rx.accepted.lock().expect("lock").is_empty());
    assert!(*rx.attempts.lock().expect("lock") >= 4, "retries happened");
    drop(tx);
    // Restart: the outbox on disk carries the undelivered alerts over.
    first.shutdown().await;

    rx.mode.store(OK, Ordering::SeqCst);
    let second = Dispatcher::start(&config)?;
    second.sender().send(alert(4)).await?;
    assert!(
        second.flush(Duration::from_secs(10)).await,
        "outbox never drained"
    );
    second.shutdown().await;

    let accepted = rx.accepted.lock().expect("lock").clone();
    let expected: HashSet<String> = (0..5).map(|i| alert(i).fingerprint).collect();
    for route in ["am", "hook"] {
        let mut seen = HashSet::new();
        for (_, headers, body) in accepted.iter().filter(|(r, _, _)| r == route) {
            let json: serde_json::Value = serde_json::from_slice(body)?;
            let alerts = if route == "am" {
                json.clone()
            } else {
                json["alerts"].clone()
            };
            for a in alerts.as_array().expect("an array of alerts") {
                assert!(a["startsAt"].is_string() && a["labels"]["alertname"].is_string());
                let labels: BTreeMap<String, String> = serde_json::from_value(a["labels"].clone())?;
                seen.insert(schemas::alert_fingerprint(&labels));
            }
            if route == "hook" {
                let ts: i64 = headers[TIMESTAMP_HEADER].to_str()?.parse()?;
                let sig = headers[SIGNATURE_HEADER].to_str()?;
                assert_eq!(
                    sig,
                    sluice::delivery::sign(b"s3cret", ts, body),
                    "bad signature"
                );
            }
        }
        assert_eq!(seen, expected, "{route} did not get every alert");
    }
    Ok(())
}
