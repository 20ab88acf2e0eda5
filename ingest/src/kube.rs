//! Pod labels and annotations from the Kubernetes API: one list + watch of this node's pods
//! (`fieldSelector=spec.nodeName=<node>`), kept in a [`PodCache`], so API load depends on the
//! number of pods, not on log volume.
//!
//! Protocol, as the API documents it ("Efficient detection of changes"): list with
//! `resourceVersion=0` (served from the API server's watch cache), then watch from the list's
//! `resourceVersion` with bookmarks; every event moves the resourceVersion forward. A watch that
//! ends is resumed from the last resourceVersion; `410 Gone` (as an HTTP status or an `ERROR`
//! event with code 410) means that version expired: relist. Failures back off exponentially up
//! to `backoff_max_ms`; records keep flowing with path metadata meanwhile.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::IngestError;
use crate::config::KubeApiConfig;
use crate::metadata::{PodCache, PodInfo};
use crate::stats::IngestStats;

/// A deleted pod's metadata is kept this long, since its logs are still being drained.
const DELETED_POD_RETENTION: Duration = Duration::from_secs(600);
/// How long [`KubeWatch::stop`] waits for the watch thread before leaving it to exit on its
/// own at its next event or watch timeout (it holds no file and writes no checkpoint).
const STOP_JOIN_WAIT: Duration = Duration::from_millis(300);
/// Largest watch event line accepted (a pod object with big annotations stays far below).
const MAX_EVENT_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ObjectMeta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    uid: String,
    #[serde(default)]
    resource_version: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct PodObject {
    #[serde(default)]
    metadata: ObjectMeta,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListMeta {
    #[serde(default)]
    resource_version: String,
}

#[derive(Debug, Deserialize)]
struct PodList {
    metadata: ListMeta,
    #[serde(default)]
    items: Vec<PodObject>,
}

#[derive(Debug, Deserialize)]
struct WatchEvent {
    #[serde(rename = "type")]
    kind: String,
    object: serde_json::Value,
}

/// Why a list or watch ended.
#[derive(Debug)]
enum WatchEnd {
    /// The watch ended normally (timeout): resume from the last resourceVersion.
    Resume,
    /// 410 Gone: relist.
    Gone,
    /// Stop requested.
    Stopped,
    /// Anything else: back off, then relist.
    Failed(String),
}

/// A running watch thread.
#[derive(Debug)]
pub(crate) struct KubeWatch {
    stop: Arc<AtomicBool>,
    done_rx: crossbeam_channel::Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl KubeWatch {
    pub(crate) fn spawn(
        config: KubeApiConfig,
        node: String,
        cache: Arc<PodCache>,
        stats: Arc<IngestStats>,
    ) -> Result<KubeWatch, IngestError> {
        let stop = Arc::new(AtomicBool::new(false));
        // Capacity 1: the thread signals its exit once.
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let client = Client::new(&config, node)?;
        let stop_w = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("sluice-kube-watch".into())
            .spawn(move || {
                let mut w = Watcher {
                    client,
                    config,
                    cache,
                    stats,
                    stop: stop_w,
                    deleted: HashMap::new(),
                };
                w.run();
                let _ = done_tx.send(());
            })
            .map_err(|source| IngestError::Spawn {
                name: "sluice-kube-watch",
                source,
            })?;
        Ok(KubeWatch {
            stop,
            done_rx,
            thread: Some(thread),
        })
    }

    /// Asks the thread to stop; joins it if it exits within [`STOP_JOIN_WAIT`].
    pub(crate) fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if self.done_rx.recv_timeout(STOP_JOIN_WAIT).is_ok()
            && let Some(t) = self.thread.take()
        {
            let _ = t.join();
        }
    }
}

struct Client {
    agent: ureq::Agent,
    base: String,
    node: String,
    token_file: Option<std::path::PathBuf>,
}

impl Client {
    fn new(config: &KubeApiConfig, node: String) -> Result<Client, IngestError> {
        let mut builder = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_millis(config.request_timeout_ms)))
            .timeout_recv_response(Some(Duration::from_millis(config.request_timeout_ms)))
            .timeout_recv_body(Some(
                Duration::from_secs(config.watch_timeout_secs)
                    + Duration::from_millis(config.request_timeout_ms),
            ));
        if let Some(ca) = config.ca_file.as_ref().filter(|p| p.exists()) {
            let pem = std::fs::read(ca).map_err(|e| IngestError::io("read", ca, e))?;
            let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(IngestError::config(
                    "kubernetes_api.ca_file",
                    format!("{} holds no PEM certificate", ca.display()),
                ));
            }
            builder = builder.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                    .build(),
            );
        }
        Ok(Client {
            agent: builder.build().into(),
            base: config.url.trim_end_matches('/').to_string(),
            node,
            token_file: config.token_file.clone(),
        })
    }

    fn get(&self, query: &str) -> Result<ureq::http::Response<ureq::Body>, String> {
        let url = format!(
            "{}/api/v1/pods?fieldSelector=spec.nodeName%3D{}&{}",
            self.base,
            encode(&self.node),
            query
        );
        let mut req = self.agent.get(&url);
        if let Some(path) = &self.token_file
            && let Ok(token) = std::fs::read_to_string(path)
        {
            req = req.header("Authorization", format!("Bearer {}", token.trim()));
        }
        req.call().map_err(|e| e.to_string())
    }
}

/// Percent-encodes a node name for a query string.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

struct Watcher {
    client: Client,
    config: KubeApiConfig,
    cache: Arc<PodCache>,
    stats: Arc<IngestStats>,
    stop: Arc<AtomicBool>,
    /// uid of a deleted pod to when it was deleted.
    deleted: HashMap<String, Instant>,
}

fn pod_info(meta: ObjectMeta) -> (String, PodInfo) {
    (
        meta.uid,
        PodInfo {
            namespace: meta.namespace,
            name: meta.name,
            labels: meta.labels,
            annotations: meta.annotations,
        },
    )
}

impl Watcher {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Sleeps up to `d`, waking early on stop.
    fn sleep(&self, d: Duration) {
        let until = Instant::now() + d;
        while !self.stopped() {
            let now = Instant::now();
            if now >= until {
                return;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(50)));
        }
    }

    fn run(&mut self) {
        let mut backoff = Duration::from_millis(self.config.backoff_initial_ms);
        let max = Duration::from_millis(self.config.backoff_max_ms);
        while !self.stopped() {
            let rv = match self.list() {
                Ok(rv) => rv,
                Err(reason) => {
                    IngestStats::add(&self.stats.kube_errors, 1);
                    tracing::warn!(error = %reason, backoff_ms = backoff.as_millis() as u64, "kubernetes pod list failed; using path metadata");
                    self.sleep(backoff);
                    backoff = (backoff * 2).min(max);
                    continue;
                }
            };
            backoff = Duration::from_millis(self.config.backoff_initial_ms);
            let mut rv = rv;
            loop {
                match self.watch(&mut rv) {
                    WatchEnd::Resume => continue,
                    WatchEnd::Stopped => return,
                    WatchEnd::Gone => {
                        IngestStats::add(&self.stats.kube_relists, 1);
                        break;
                    }
                    WatchEnd::Failed(reason) => {
                        IngestStats::add(&self.stats.kube_errors, 1);
                        tracing::warn!(error = %reason, backoff_ms = backoff.as_millis() as u64, "kubernetes pod watch failed");
                        self.sleep(backoff);
                        backoff = (backoff * 2).min(max);
                        break;
                    }
                }
            }
        }
    }

    /// Lists this node's pods and replaces the cache; returns the list's resourceVersion.
    fn list(&mut self) -> Result<String, String> {
        let mut resp = self.client.get("resourceVersion=0")?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(format!("list returned http {status}"));
        }
        let list: PodList = serde_json::from_reader(resp.body_mut().as_reader())
            .map_err(|e| format!("bad pod list: {e}"))?;
        let now = Instant::now();
        let deleted = &mut self.deleted;
        self.cache.with_pods(|pods| {
            let listed: HashMap<String, PodInfo> = list
                .items
                .into_iter()
                .map(|p| pod_info(p.metadata))
                .collect();
            // Pods that vanished while we were not watching count as deleted now.
            for uid in pods.keys() {
                if !listed.contains_key(uid) {
                    deleted.entry(uid.clone()).or_insert(now);
                }
            }
            for uid in listed.keys() {
                deleted.remove(uid);
            }
            pods.retain(|uid, _| !listed.contains_key(uid));
            pods.extend(listed);
            prune(pods, deleted, now);
        });
        IngestStats::add(&self.stats.kube_lists, 1);
        IngestStats::set(&self.stats.kube_pods_cached, self.cache.len() as u64);
        Ok(list.metadata.resource_version)
    }

    fn watch(&mut self, rv: &mut String) -> WatchEnd {
        if self.stopped() {
            return WatchEnd::Stopped;
        }
        let query = format!(
            "watch=1&allowWatchBookmarks=true&timeoutSeconds={}&resourceVersion={}",
            self.config.watch_timeout_secs,
            encode(rv)
        );
        let resp = match self.client.get(&query) {
            Ok(r) => r,
            Err(e) => return WatchEnd::Failed(e),
        };
        match resp.status().as_u16() {
            200 => {}
            410 => return WatchEnd::Gone,
            s => return WatchEnd::Failed(format!("watch returned http {s}")),
        }
        let mut reader = BufReader::new(resp.into_body().into_reader());
        let mut line = Vec::new();
        loop {
            if self.stopped() {
                return WatchEnd::Stopped;
            }
            line.clear();
            let n = match (&mut reader)
                .take(MAX_EVENT_BYTES)
                .read_until(b'\n', &mut line)
            {
                Ok(n) => n,
                Err(e) => return WatchEnd::Failed(format!("watch stream: {e}")),
            };
            if n == 0 {
                return WatchEnd::Resume;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let event: WatchEvent = match serde_json::from_slice(&line) {
                Ok(e) => e,
                Err(e) => return WatchEnd::Failed(format!("bad watch event: {e}")),
            };
            if let Some(end) = self.apply(event, rv) {
                return end;
            }
        }
    }

    fn apply(&mut self, event: WatchEvent, rv: &mut String) -> Option<WatchEnd> {
        if event.kind == "ERROR" {
            let code = event.object.get("code").and_then(serde_json::Value::as_u64);
            return Some(if code == Some(410) {
                WatchEnd::Gone
            } else {
                WatchEnd::Failed(format!("watch error event: {}", event.object))
            });
        }
        let pod: PodObject = match serde_json::from_value(event.object) {
            Ok(p) => p,
            Err(e) => return Some(WatchEnd::Failed(format!("bad watch object: {e}"))),
        };
        if !pod.metadata.resource_version.is_empty() {
            rv.clone_from(&pod.metadata.resource_version);
        }
        IngestStats::add(&self.stats.kube_watch_events, 1);
        let now = Instant::now();
        match event.kind.as_str() {
            "BOOKMARK" => {}
            "ADDED" | "MODIFIED" => {
                let (uid, info) = pod_info(pod.metadata);
                self.deleted.remove(&uid);
                self.cache.with_pods(|pods| {
                    pods.insert(uid, info);
                });
            }
            "DELETED" => {
                self.deleted.insert(pod.metadata.uid, now);
                let deleted = &mut self.deleted;
                self.cache.with_pods(|pods| prune(pods, deleted, now));
            }
            other => {
                return Some(WatchEnd::Failed(format!(
                    "unknown watch event type {other}"
                )));
            }
        }
        IngestStats::set(&self.stats.kube_pods_cached, self.cache.len() as u64);
        None
    }
}

fn prune(
    pods: &mut HashMap<String, PodInfo>,
    deleted: &mut HashMap<String, Instant>,
    now: Instant,
) {
    deleted.retain(|uid, at| {
        let keep = now.saturating_duration_since(*at) < DELETED_POD_RETENTION;
        if !keep {
            pods.remove(uid);
        }
        keep
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_are_encoded() {
        assert_eq!(encode("node-a.example"), "node-a.example");
        assert_eq!(encode("a b&c"), "a%20b%26c");
    }
}
