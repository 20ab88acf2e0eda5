//! The pod metadata watch against a local HTTP server on 127.0.0.1 that speaks the Kubernetes
//! list/watch protocol: list, watch from the list's resourceVersion, events as JSON lines,
//! bookmarks, an `ERROR` event with code 410, an HTTP 410, and a watch that ends.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use ingest::{IngestStats, KubeApiConfig, Tailer};
use serde_json::json;

use crate::harness::{Env, append, cri};

fn pod(uid: &str, name: &str, rv: &str, labels: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": "shop", "uid": uid, "resourceVersion": rv,
            "labels": labels, "annotations": {"team": "payments"}
        },
        "spec": {"nodeName": "node-test"}
    })
}

fn list(rv: &str, items: Vec<serde_json::Value>) -> String {
    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": rv}, "items": items}).to_string()
}

fn event(kind: &str, object: serde_json::Value) -> String {
    format!("{}\n", json!({"type": kind, "object": object}))
}

/// One scripted answer per request, in order.
enum Reply {
    Json(u16, String),
    /// A watch stream: these lines, then either close or stay open until the test ends.
    Stream(Vec<String>, bool),
}

struct Server {
    addr: String,
    /// Request targets (path and query) seen, in order.
    requests: Arc<Requests>,
    stop: Arc<AtomicBool>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn serve(script: Vec<Reply>) -> Result<Server> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = format!("http://{}", listener.local_addr()?);
    let requests = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (req_w, stop_w) = (Arc::clone(&requests), Arc::clone(&stop));
    std::thread::spawn(move || {
        let mut script = script.into_iter();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !stop_w.load(Ordering::Acquire) && Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, _)) => {
                    let reply = script.next();
                    let (req_w, stop_w) = (Arc::clone(&req_w), Arc::clone(&stop_w));
                    std::thread::spawn(move || {
                        let _ = handle(stream, reply, &req_w, &stop_w);
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Ok(Server {
        addr,
        requests,
        stop,
    })
}

type Requests = Mutex<Vec<(String, Option<String>)>>;

fn handle(
    stream: TcpStream,
    reply: Option<Reply>,
    requests: &Requests,
    stop: &AtomicBool,
) -> Result<()> {
    stream.set_nonblocking(false)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let target = request_line
        .split(' ')
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let mut auth = None;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        if h.trim().is_empty() {
            break;
        }
        if let Some(v) = h
            .strip_prefix("Authorization: ")
            .or_else(|| h.strip_prefix("authorization: "))
        {
            auth = Some(v.trim().to_string());
        }
    }
    requests
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .push((target, auth));
    let mut out = stream;
    match reply {
        None => {
            out.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        }
        Some(Reply::Json(status, body)) => {
            let reason = if status == 410 { "Gone" } else { "OK" };
            write!(
                out,
                "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )?;
        }
        Some(Reply::Stream(lines, hold)) => {
            out.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")?;
            for l in lines {
                write!(out, "{:x}\r\n{l}\r\n", l.len())?;
                out.flush()?;
                std::thread::sleep(Duration::from_millis(20));
            }
            while hold && !stop.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(20));
            }
            out.write_all(b"0\r\n\r\n")?;
        }
    }
    out.flush()?;
    Ok(())
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) -> Result<()> {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if f() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("timed out waiting for {what}")
}

#[test]
fn list_watch_relist_on_410_and_labels_reach_records() -> Result<()> {
    let a_legacy = json!({"app": "legacy"});
    let a_new = json!({"app.kubernetes.io/name": "checkout", "app": "legacy"});
    let b = json!({"app.kubernetes.io/name": "billing"});
    let server = serve(vec![
        Reply::Json(
            200,
            list("100", vec![pod("uid-a", "a", "90", a_legacy.clone())]),
        ),
        Reply::Stream(
            vec![
                event("ADDED", pod("uid-b", "b", "101", b.clone())),
                event("MODIFIED", pod("uid-a", "a", "102", a_new.clone())),
                event(
                    "ERROR",
                    json!({"kind": "Status", "code": 410, "reason": "Expired"}),
                ),
            ],
            false,
        ),
        Reply::Json(
            200,
            list(
                "200",
                vec![
                    pod("uid-a", "a", "102", a_new.clone()),
                    pod("uid-b", "b", "101", b.clone()),
                ],
            ),
        ),
        Reply::Json(410, json!({"kind": "Status", "code": 410}).to_string()),
        Reply::Json(
            200,
            list(
                "300",
                vec![
                    pod("uid-a", "a", "102", a_new.clone()),
                    pod("uid-b", "b", "101", b.clone()),
                ],
            ),
        ),
        Reply::Stream(
            vec![event(
                "BOOKMARK",
                json!({"kind": "Pod", "metadata": {"resourceVersion": "305"}}),
            )],
            false,
        ),
        Reply::Stream(
            vec![event("DELETED", pod("uid-b", "b", "306", b.clone()))],
            true,
        ),
    ])?;
    let env = Env::new()?;
    let token = env.dir.path().join("token");
    std::fs::write(&token, "s3cret\n")?;
    let mut cfg = env.config();
    cfg.kubernetes_api = Some(KubeApiConfig {
        url: server.addr.clone(),
        token_file: Some(token),
        ca_file: None,
        request_timeout_ms: 2000,
        watch_timeout_secs: 5,
        backoff_initial_ms: 50,
        backoff_max_ms: 200,
    });
    let tailer = Tailer::try_new(&cfg)?;
    let cache = tailer.pod_cache();
    let (tx, rx) = crossbeam_channel::bounded(4);
    let handle = tailer.spawn(tx)?;
    let stats = handle.stats();
    wait_for("the fourth list/watch exchange", || {
        server
            .requests
            .lock()
            .map(|r| r.len() >= 7)
            .unwrap_or(false)
    })?;
    // The DELETED event arrives on the held-open watch.
    wait_for("DELETED applied", || {
        IngestStats::get(&stats.kube_watch_events) >= 4
    })?;
    let a = cache.get("uid-a").context("pod a cached")?;
    assert_eq!(
        a.labels.get("app.kubernetes.io/name").map(String::as_str),
        Some("checkout")
    );
    assert_eq!(
        a.annotations.get("team").map(String::as_str),
        Some("payments")
    );
    assert!(
        cache.get("uid-b").is_some(),
        "a deleted pod is kept while its logs drain"
    );
    assert_eq!(IngestStats::get(&stats.kube_lists), 3);
    assert_eq!(
        IngestStats::get(&stats.kube_relists),
        2,
        "ERROR 410 event and HTTP 410"
    );

    let reqs = server
        .requests
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    for (target, auth) in &reqs {
        ensure!(
            target.starts_with("/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-test&"),
            "{target}"
        );
        ensure!(auth.as_deref() == Some("Bearer s3cret"), "{auth:?}");
    }
    let rv = |i: usize| {
        reqs[i]
            .0
            .split("resourceVersion=")
            .nth(1)
            .map(|s| s.split('&').next().unwrap_or("").to_string())
    };
    let watches: Vec<bool> = reqs.iter().map(|(t, _)| t.contains("watch=1")).collect();
    assert_eq!(watches, vec![false, true, false, true, false, true, true]);
    assert_eq!(
        rv(0).as_deref(),
        Some("0"),
        "lists are served from the watch cache"
    );
    assert_eq!(rv(1).as_deref(), Some("100"));
    assert_eq!(rv(3).as_deref(), Some("200"));
    assert_eq!(rv(5).as_deref(), Some("300"));
    assert_eq!(
        rv(6).as_deref(),
        Some("305"),
        "a bookmark moves the resourceVersion"
    );
    assert!(reqs[1].0.contains("allowWatchBookmarks=true"));

    // Labels reach records: service.name from app.kubernetes.io/name.
    let c = env.pods.join("shop_a_uid-a/app");
    std::fs::create_dir_all(&c)?;
    append(
        &c.join("0.log"),
        cri(1, "stdout", false, "hello").as_bytes(),
    )?;
    let batch = rx.recv_timeout(Duration::from_secs(5))?;
    let r = batch.records.first().context("a record")?;
    assert_eq!(r.service.as_deref(), Some("checkout"));
    assert_eq!(
        r.kubernetes.labels.get("app").map(String::as_str),
        Some("legacy")
    );
    let t = Instant::now();
    handle.shutdown()?;
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "shutdown took {:?}",
        t.elapsed()
    );
    Ok(())
}

#[test]
fn an_unreachable_api_backs_off_and_records_keep_path_metadata() -> Result<()> {
    // A port with nothing listening.
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let env = Env::new()?;
    let mut cfg = env.config();
    cfg.kubernetes_api = Some(KubeApiConfig {
        url: format!("http://127.0.0.1:{port}"),
        token_file: None,
        ca_file: None,
        request_timeout_ms: 500,
        watch_timeout_secs: 5,
        backoff_initial_ms: 20,
        backoff_max_ms: 100,
    });
    let c = env.container("shop", "a", "app")?;
    append(
        &c.join("0.log"),
        cri(1, "stdout", false, "still shipping").as_bytes(),
    )?;
    let (tx, rx) = crossbeam_channel::bounded(4);
    let handle = Tailer::try_new(&cfg)?.spawn(tx)?;
    let batch = rx.recv_timeout(Duration::from_secs(5))?;
    let r = batch.records.first().context("a record")?;
    assert_eq!(r.message, "still shipping");
    assert_eq!(r.service.as_deref(), Some("app"));
    assert!(r.kubernetes.labels.is_empty());
    let stats = handle.stats();
    wait_for("a few failed attempts", || {
        IngestStats::get(&stats.kube_errors) >= 3
    })?;
    let t = Instant::now();
    handle.shutdown()?;
    assert!(t.elapsed() < Duration::from_secs(2));
    Ok(())
}
