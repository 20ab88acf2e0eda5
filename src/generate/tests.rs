//! Tests of the generator against the files it writes, read back by a small reader that
//! shares no code with the generator.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};

use super::*;

/// One CRI line as the reader sees it.
#[derive(Debug, Clone)]
struct Line {
    time: DateTime<Utc>,
    stream: String,
    msg: String,
}

/// One record after multi-line joining.
#[derive(Debug, Clone)]
struct Rec {
    time: DateTime<Utc>,
    stream: String,
    /// The joined text, lines separated by `\n`.
    text: String,
    lines: usize,
}

/// A log file read back: the pod directory's parts, the container, and its records.
#[derive(Debug)]
struct FileRead {
    path: PathBuf,
    namespace: String,
    pod: String,
    container: String,
    records: Vec<Rec>,
    physical_lines: u64,
    bytes: u64,
}

fn parse_cri(line: &str) -> anyhow::Result<Line> {
    let mut parts = line.splitn(4, ' ');
    let ts = parts.next().context("timestamp")?;
    let stream = parts.next().context("stream")?;
    let tag = parts.next().context("tag")?;
    let msg = parts.next().context("message")?;
    ensure!(
        stream == "stdout" || stream == "stderr",
        "bad stream in {line:?}"
    );
    ensure!(tag == "F", "only full lines are written: {line:?}");
    ensure!(
        ts.len() == 30 && ts.ends_with('Z'),
        "CRI time must be RFC 3339 with nine fraction digits: {ts:?}"
    );
    let time = DateTime::parse_from_rfc3339(ts)?.with_timezone(&Utc);
    Ok(Line {
        time,
        stream: stream.to_owned(),
        msg: msg.to_owned(),
    })
}

/// The joiner the brief specifies, written from its text: a `Traceback (most recent call
/// last):` line, then indented lines, blank lines, `During handling…`/`The above exception…`
/// lines and the final non-indented line; nothing else is joined. State is per stream.
fn join(lines: Vec<Line>) -> Vec<Rec> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Idle,
        InTraceback,
        AfterException,
    }
    let mut out: Vec<Rec> = Vec::new();
    // Per stream: the state and the index of its open record in `out`.
    let mut state: BTreeMap<String, (State, usize)> = BTreeMap::new();
    for l in lines {
        let (st, open) = state.get(&l.stream).copied().unwrap_or((State::Idle, 0));
        let chain = l.msg.starts_with("During handling of the above exception")
            || l.msg
                .starts_with("The above exception was the direct cause");
        let joined = match st {
            State::InTraceback => {
                let continuation = l.msg.is_empty()
                    || l.msg.starts_with(' ')
                    || l.msg.starts_with('\t')
                    || chain
                    || l.msg.starts_with("Traceback (most recent call last):");
                Some(if continuation {
                    State::InTraceback
                } else {
                    State::AfterException
                })
            }
            State::AfterException if l.msg.is_empty() || chain => Some(State::InTraceback),
            _ => None,
        };
        match joined {
            Some(next) => {
                let r = &mut out[open];
                r.text.push('\n');
                r.text.push_str(&l.msg);
                r.lines += 1;
                state.insert(l.stream.clone(), (next, open));
            }
            None => {
                let next = if l.msg.starts_with("Traceback (most recent call last):") {
                    State::InTraceback
                } else {
                    State::Idle
                };
                state.insert(l.stream.clone(), (next, out.len()));
                out.push(Rec {
                    time: l.time,
                    stream: l.stream,
                    text: l.msg,
                    lines: 1,
                });
            }
        }
    }
    out
}

/// Reads every log file under `out`, checking the `/var/log/pods` layout on the way.
fn read_tree(out: &Path) -> anyhow::Result<Vec<FileRead>> {
    let mut files = Vec::new();
    let mut pod_dirs: Vec<PathBuf> = fs::read_dir(out)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    pod_dirs.sort();
    for pod_dir in pod_dirs {
        if pod_dir.is_file() {
            ensure!(
                pod_dir.file_name().and_then(|n| n.to_str()) == Some(INCIDENTS_FILE),
                "unexpected file {}",
                pod_dir.display()
            );
            continue;
        }
        let name = pod_dir
            .file_name()
            .and_then(|n| n.to_str())
            .context("utf-8 dir name")?
            .to_owned();
        let parts: Vec<&str> = name.split('_').collect();
        ensure!(parts.len() == 3, "pod dir must be <ns>_<pod>_<uid>: {name}");
        let uid = parts[2];
        ensure!(
            uid.len() == 36 && uid.chars().filter(|&c| c == '-').count() == 4,
            "uid must be a UUID: {uid}"
        );
        for c in fs::read_dir(&pod_dir)? {
            let cdir = c?.path();
            let container = cdir
                .file_name()
                .and_then(|n| n.to_str())
                .context("container")?
                .to_owned();
            for f in fs::read_dir(&cdir)? {
                let path = f?.path();
                let fname = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .context("file name")?
                    .to_owned();
                if fname != "0.log" {
                    let stamp = fname
                        .strip_prefix("0.log.")
                        .with_context(|| format!("unexpected file {fname}"))?;
                    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%d-%H%M%S")
                        .with_context(|| format!("rotated suffix {stamp}"))?;
                }
                let text = fs::read_to_string(&path)?;
                ensure!(
                    text.is_empty() || text.ends_with('\n'),
                    "{} ends mid-line",
                    path.display()
                );
                let lines = text
                    .lines()
                    .map(parse_cri)
                    .collect::<anyhow::Result<Vec<Line>>>()?;
                let physical_lines = lines.len() as u64;
                files.push(FileRead {
                    path: path.clone(),
                    namespace: parts[0].to_owned(),
                    pod: parts[1].to_owned(),
                    container: container.clone(),
                    records: join(lines),
                    physical_lines,
                    bytes: text.len() as u64,
                });
            }
        }
    }
    Ok(files)
}

fn start() -> anyhow::Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z")?.with_timezone(&Utc))
}

fn config(out: &Path) -> anyhow::Result<GenerateConfig> {
    Ok(GenerateConfig {
        out: out.to_path_buf(),
        seed: 7,
        start: Some(start()?),
        ..GenerateConfig::default()
    })
}

fn all_bytes(out: &Path) -> anyhow::Result<BTreeMap<PathBuf, Vec<u8>>> {
    let mut map = BTreeMap::new();
    let mut stack = vec![out.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                map.insert(p.strip_prefix(out)?.to_path_buf(), fs::read(&p)?);
            }
        }
    }
    Ok(map)
}

#[test]
fn same_seed_and_start_give_identical_bytes_and_another_seed_does_not() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut runs = Vec::new();
    for (i, seed) in [7, 7, 8].into_iter().enumerate() {
        let out = dir.path().join(format!("run{i}"));
        let c = GenerateConfig {
            seed,
            lines: Some(5_000),
            rotate_bytes: 64 * 1024,
            ..config(&out)?
        };
        generate(&c)?;
        runs.push(all_bytes(&out)?);
    }
    ensure!(
        runs[0].len() > 5,
        "expected several files, got {:?}",
        runs[0].keys()
    );
    assert_eq!(runs[0], runs[1]);
    assert_ne!(runs[0], runs[2]);
    Ok(())
}

#[test]
fn counts_layout_and_order_match_the_files() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let c = GenerateConfig {
        lines: Some(30_000),
        rate_per_s: 20.0,
        rotate_bytes: 256 * 1024,
        ..config(dir.path())?
    };
    let report = generate(&c)?;
    assert_eq!(report.records, 30_000);
    let files = read_tree(dir.path())?;
    let reported: BTreeMap<&PathBuf, u64> = report.files.iter().map(|(p, n)| (p, *n)).collect();
    ensure!(
        reported.len() == files.len(),
        "report lists every file on disk"
    );
    let mut total_records = 0;
    let mut total_lines = 0;
    let mut total_bytes = 0;
    let mut tracebacks = 0;
    for f in &files {
        let n = *reported
            .get(&f.path)
            .with_context(|| format!("{} missing from report", f.path.display()))?;
        assert_eq!(n, f.records.len() as u64, "{}", f.path.display());
        total_records += f.records.len() as u64;
        total_lines += f.physical_lines;
        total_bytes += f.bytes;
        for w in f.records.windows(2) {
            ensure!(
                w[0].time <= w[1].time,
                "out of order in {}",
                f.path.display()
            );
        }
        for r in &f.records {
            ensure!(
                r.time >= report.start && r.time < report.end,
                "{:?} outside span",
                r.time
            );
            if r.lines > 1 {
                tracebacks += 1;
                ensure!(r.stream == "stderr", "tracebacks go to stderr");
                ensure!(r.text.starts_with("Traceback (most recent call last):"));
            }
        }
    }
    assert_eq!(total_records, report.records);
    assert_eq!(total_lines, report.physical_lines);
    assert_eq!(total_bytes, report.bytes);
    ensure!(tracebacks > 10, "expected tracebacks, saw {tracebacks}");
    // Layout: 3 api pods, 2 workers, 1 ingress controller.
    let mut pods: BTreeMap<(String, String), String> = BTreeMap::new();
    for f in &files {
        pods.insert((f.namespace.clone(), f.pod.clone()), f.container.clone());
    }
    let count = |ns: &str, c: &str| pods.iter().filter(|((n, _), k)| n == ns && *k == c).count();
    assert_eq!(count("prod", "api"), 3);
    assert_eq!(count("prod", "worker"), 2);
    assert_eq!(count("ingress-nginx", "controller"), 1);
    Ok(())
}

#[test]
fn every_line_has_the_shape_of_its_source() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let c = GenerateConfig {
        lines: Some(20_000),
        rate_per_s: 10.0,
        ..config(dir.path())?
    };
    generate(&c)?;
    let mut access = 0;
    let mut structlog = 0;
    for f in read_tree(dir.path())? {
        for r in &f.records {
            match (f.container.as_str(), r.stream.as_str()) {
                ("api", "stdout") => {
                    let v: serde_json::Value = serde_json::from_str(&r.text)
                        .with_context(|| format!("api stdout must be JSON: {}", r.text))?;
                    if v["name"] == "uvicorn.access" {
                        access += 1;
                        ensure!(v["asctime"].is_string() && v["levelname"] == "INFO");
                        ensure!(v["status_code"].is_u64() && v["duration_ms"].is_f64());
                        let msg = v["message"].as_str().context("message")?;
                        let method = v["method"].as_str().context("method")?;
                        ensure!(msg.contains(&format!("\"{method} ")), "{msg}");
                    } else {
                        structlog += 1;
                        ensure!(v["event"].is_string() && v["level"].is_string(), "{v}");
                        let ts = v["timestamp"].as_str().context("timestamp")?;
                        DateTime::parse_from_rfc3339(ts)?;
                    }
                }
                ("api", _) => ensure!(
                    r.text.starts_with("Traceback (most recent call last):")
                        || r.text.starts_with("ERROR:")
                        || r.text.starts_with("WARNING:")
                        || r.text.starts_with("INFO:"),
                    "unexpected api stderr {:?}",
                    r.text
                ),
                ("worker", _) => {
                    ensure!(r.stream == "stderr");
                    if !r.text.starts_with("Traceback") {
                        let parts: Vec<&str> = r.text.splitn(4, " - ").collect();
                        ensure!(parts.len() == 4, "worker line {:?}", r.text);
                        chrono::NaiveDateTime::parse_from_str(parts[0], "%Y-%m-%d %H:%M:%S,%3f")?;
                        ensure!(["INFO", "WARNING", "ERROR"].contains(&parts[2]));
                    }
                }
                ("controller", "stdout") => {
                    ensure!(r.text.contains(" - - ["), "{}", r.text);
                    ensure!(r.text.contains(" +0000] \""), "{}", r.text);
                    let fields: Vec<&str> = r.text.rsplitn(6, ' ').collect();
                    ensure!(fields[0].len() == 32, "req_id last: {}", r.text);
                }
                ("controller", _) => ensure!(
                    r.text.starts_with('I')
                        || r.text.starts_with('W')
                        || r.text.contains("[error]"),
                    "{}",
                    r.text
                ),
                other => bail!("unexpected container/stream {other:?}"),
            }
            ensure!(!r.text.starts_with(' '), "no record starts with whitespace");
        }
    }
    ensure!(access > 1000 && structlog > 500, "{access} {structlog}");
    Ok(())
}

/// One uvicorn access line, read back.
#[derive(Debug, Clone)]
struct Access {
    time: DateTime<Utc>,
    status: u64,
    duration_ms: f64,
    ip: String,
    path: String,
}

/// The api access lines of a tree, in time order.
fn api_access(files: &[FileRead]) -> anyhow::Result<Vec<Access>> {
    let mut out = Vec::new();
    for f in files.iter().filter(|f| f.container == "api") {
        for r in f.records.iter().filter(|r| r.stream == "stdout") {
            let v: serde_json::Value = serde_json::from_str(&r.text)?;
            if v["name"] != "uvicorn.access" {
                continue;
            }
            let addr = v["client_addr"].as_str().context("client_addr")?;
            let ip = addr.rsplit_once(':').map_or(addr, |(ip, _)| ip).to_owned();
            out.push(Access {
                time: r.time,
                status: v["status_code"].as_u64().context("status")?,
                duration_ms: v["duration_ms"].as_f64().context("duration")?,
                ip,
                path: v["path"].as_str().context("path")?.to_owned(),
            });
        }
    }
    out.sort_by_key(|a| a.time);
    Ok(out)
}

fn p95(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 * 0.95).ceil() as usize).saturating_sub(1)]
}

#[test]
fn incidents_fit_the_span_and_the_logs_show_them() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let c = GenerateConfig {
        rate_per_s: 10.0,
        duration: Some(Duration::from_secs(2 * 3600)),
        ..config(dir.path())?
    };
    let report = generate(&c)?;
    ensure!(
        report.skipped_incidents.is_empty(),
        "{:?}",
        report.skipped_incidents
    );
    let text = fs::read_to_string(dir.path().join(INCIDENTS_FILE))?;
    let listed: Vec<Incident> = serde_json::from_str(&text)?;
    assert_eq!(listed, report.incidents);
    let raw: serde_json::Value = serde_json::from_str(&text)?;
    for v in raw.as_array().context("array")? {
        for key in [
            "kind",
            "start",
            "end",
            "service",
            "namespace",
            "expected_alert",
            "labels",
            "benign",
        ] {
            ensure!(v.get(key).is_some(), "{key} missing in {v}");
        }
    }
    let incidents: Vec<&Incident> = listed.iter().filter(|i| !i.benign).collect();
    assert_eq!(incidents.len(), 7);
    let mut windows: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for i in &listed {
        ensure!(
            i.start >= report.start && i.end <= report.end && i.start < i.end,
            "{i:?}"
        );
        assert_eq!(i.benign, i.expected_alert.is_none());
        if i.start != report.start {
            windows.push((i.start, i.end));
        }
    }
    windows.sort();
    for w in windows.windows(2) {
        ensure!(w[0].1 < w[1].0, "episodes overlap: {w:?}");
    }

    let files = read_tree(dir.path())?;
    let access = api_access(&files)?;
    let in_window = |t: DateTime<Utc>, i: &Incident| t >= i.start && t < i.end;
    let find = |kind: IncidentKind| {
        listed
            .iter()
            .find(|i| i.kind == EpisodeKind::Incident(kind))
            .context("incident listed")
    };
    let quiet = |t: DateTime<Utc>| !incidents.iter().any(|i| in_window(t, i));

    // error_burst: 5xx above 20% of api requests; background 0.3–1%.
    let eb = find(IncidentKind::ErrorBurst)?;
    let ratio = |pred: &dyn Fn(DateTime<Utc>) -> bool| {
        let sel: Vec<_> = access.iter().filter(|a| pred(a.time)).collect();
        sel.iter().filter(|a| a.status >= 500).count() as f64 / sel.len().max(1) as f64
    };
    let burst = ratio(&|t| in_window(t, eb));
    ensure!(burst > 0.2, "error burst ratio {burst}");
    let background = ratio(&quiet);
    ensure!(
        (0.002..0.012).contains(&background),
        "background 5xx ratio {background}"
    );

    // The other incidents stay clear of the runbook's error-rate and latency thresholds, so
    // each raises only its own alert.
    for kind in IncidentKind::ALL {
        if matches!(kind, IncidentKind::ErrorBurst | IncidentKind::LatencySpike) {
            continue;
        }
        let i = find(kind)?;
        let r = ratio(&|t| in_window(t, i));
        ensure!(r < 0.04, "{kind}: 5xx ratio {r}");
        let p = p95(access
            .iter()
            .filter(|a| in_window(a.time, i))
            .map(|a| a.duration_ms)
            .collect());
        ensure!(p < 1_000.0, "{kind}: p95 {p}");
    }

    // latency_spike: p95 above 3 s.
    let ls = find(IncidentKind::LatencySpike)?;
    let spike_p95 = p95(access
        .iter()
        .filter(|a| in_window(a.time, ls))
        .map(|a| a.duration_ms)
        .collect());
    ensure!(spike_p95 > 3_000.0, "latency spike p95 {spike_p95}");

    // Slow minute: that minute's p95 > 2 s, every 5-minute window's p95 < 2 s.
    let slow = listed
        .iter()
        .find(|i| i.kind == EpisodeKind::Decoy(DecoyKind::SlowMinute))
        .context("slow minute")?;
    let minute_p95 = p95(access
        .iter()
        .filter(|a| in_window(a.time, slow))
        .map(|a| a.duration_ms)
        .collect());
    ensure!(minute_p95 > 2_000.0, "slow minute p95 {minute_p95}");
    for shift_s in (-290..=0).step_by(10) {
        let from = slow.start + chrono::Duration::seconds(shift_s);
        let to = from + chrono::Duration::seconds(300);
        let p = p95(access
            .iter()
            .filter(|a| a.time >= from && a.time < to)
            .map(|a| a.duration_ms)
            .collect());
        ensure!(p < 2_000.0, "5-minute p95 {p} from {from}");
    }
    let quiet_p95 = p95(access
        .iter()
        .filter(|a| quiet(a.time))
        .map(|a| a.duration_ms)
        .collect());
    ensure!(quiet_p95 < 500.0, "background p95 {quiet_p95}");

    // brute_force: many 401s on the login route from the labelled IP, inside the window only.
    let bf = find(IncidentKind::BruteForce)?;
    let ip = bf.labels.get("client_ip").context("client_ip label")?;
    let attempts: Vec<_> = access.iter().filter(|a| &a.ip == ip).collect();
    ensure!(attempts.len() > 50, "only {} attempts", attempts.len());
    ensure!(
        attempts
            .iter()
            .all(|a| in_window(a.time, bf) && a.path == "/api/auth/login")
    );

    // Everything else keyed on text, counted inside and outside each window.
    let count = |needles: &[&str], inc: &Incident| {
        let (mut inside, mut outside) = (0, 0);
        for f in &files {
            for r in &f.records {
                if needles.iter().any(|n| r.text.contains(n)) {
                    if in_window(r.time, inc) {
                        inside += 1;
                    } else {
                        outside += 1;
                    }
                }
            }
        }
        (inside, outside)
    };
    let db = find(IncidentKind::DbConnectionErrors)?;
    let (inside, outside) = count(
        &[
            "Connect call failed",
            "too many clients",
            "too many connections",
            "QueuePool limit",
            "could not connect",
            "timed out connecting",
            "remaining connection slots",
        ],
        db,
    );
    ensure!(inside > 30, "db errors inside {inside}");
    ensure!(outside < 30, "background db errors {outside}");
    let llm = find(IncidentKind::LlmUpstreamFailure)?;
    let (inside, outside) = count(
        &["\\\"HTTP/1.1 429", "\\\"HTTP/1.1 503", "httpx.ReadTimeout"],
        llm,
    );
    ensure!(
        inside > 30 && outside < 10,
        "llm failures {inside} / {outside}"
    );
    let leak = find(IncidentKind::SecretLeak)?;
    let (inside, outside) = count(&["xai-", "sk-proj-", "eyJhbGciOi"], leak);
    ensure!(
        inside >= 1 && outside == 0,
        "secret lines {inside} / {outside}"
    );
    let probe = find(IncidentKind::InjectionProbe)?;
    let (inside, outside) = count(&["sqlmap", "Nikto", "/.env", "jndi"], probe);
    ensure!(inside > 20 && outside == 0, "probes {inside} / {outside}");

    // Ambient decoys show up.
    let sql_words = content::SEARCH_QUERIES[..content::SQL_WORD_QUERIES]
        .iter()
        .any(|q| {
            files
                .iter()
                .any(|f| f.records.iter().any(|r| r.text.contains(q)))
        });
    ensure!(sql_words, "no search query with SQL words");
    let apostrophe = files
        .iter()
        .any(|f| f.records.iter().any(|r| r.text.contains("o'brien")));
    ensure!(apostrophe, "no user name with an apostrophe");
    Ok(())
}

#[test]
fn traffic_spike_triples_the_rate_with_the_same_error_ratio() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let c = GenerateConfig {
        rate_per_s: 20.0,
        duration: Some(Duration::from_secs(40 * 60)),
        incidents: IncidentSelection::None,
        ..config(dir.path())?
    };
    let report = generate(&c)?;
    let spike = report
        .incidents
        .iter()
        .find(|i| i.kind == EpisodeKind::Decoy(DecoyKind::TrafficSpike))
        .context("spike planned")?;
    let access = api_access(&read_tree(dir.path())?)?;
    let per_s = |from: DateTime<Utc>, to: DateTime<Utc>| {
        let n = access
            .iter()
            .filter(|a| a.time >= from && a.time < to)
            .count() as f64;
        n / (to - from).num_seconds() as f64
    };
    let inside = per_s(spike.start, spike.end);
    let before = per_s(report.start, spike.start);
    let ratio = inside / before;
    ensure!((2.5..3.5).contains(&ratio), "spike rate ratio {ratio}");
    // Records fill the whole span despite the spike's extra traffic.
    let last = access.last().context("records")?.time;
    ensure!(
        report.end - last < chrono::Duration::seconds(30),
        "last record {last}"
    );
    Ok(())
}

#[test]
fn short_span_reports_skipped_incidents_and_lines_cap_is_exact() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let c = GenerateConfig {
        lines: Some(1),
        ..config(&dir.path().join("one"))?
    };
    let report = generate(&c)?;
    assert_eq!(report.records, 1);
    assert_eq!(report.skipped_incidents, IncidentKind::ALL.to_vec());
    assert!(report.incidents.iter().all(|i| i.benign));
    let c = GenerateConfig {
        lines: Some(100_000),
        rate_per_s: 200.0,
        incidents: "error_burst,brute_force".parse()?,
        ..config(&dir.path().join("short"))?
    };
    let report = generate(&c)?;
    assert_eq!(report.records, 100_000);
    // 100 000 lines at 200/s is 8 min 20 s: no 8-minute incident plus its gap fits.
    assert_eq!(
        report.skipped_incidents,
        vec![IncidentKind::ErrorBurst, IncidentKind::BruteForce]
    );
    Ok(())
}

#[test]
fn rotation_renames_by_event_time_and_never_deletes_in_batch_mode() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let c = GenerateConfig {
        lines: Some(40_000),
        rate_per_s: 50.0,
        rotate_bytes: 128 * 1024,
        ..config(dir.path())?
    };
    let report = generate(&c)?;
    let files = read_tree(dir.path())?;
    let rotated: Vec<&FileRead> = files
        .iter()
        .filter(|f| f.path.file_name().is_some_and(|n| n != "0.log"))
        .collect();
    ensure!(rotated.len() > 20, "only {} rotated files", rotated.len());
    assert_eq!(rotated.len() as u64, report.rotated_files);
    ensure!(
        files.iter().filter(|f| f.container == "api").count() > 3 * 6,
        "more than the kubelet's 5 files per container are kept"
    );
    for f in &rotated {
        ensure!(f.bytes >= 128 * 1024, "{} rotated early", f.path.display());
        let name = f
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .context("name")?;
        let stamp = chrono::NaiveDateTime::parse_from_str(&name[6..], "%Y%m%d-%H%M%S")?.and_utc();
        let last = f.records.last().context("records")?.time;
        // Named after the event time at which it was rotated: after its last record.
        ensure!(
            stamp >= last - chrono::Duration::seconds(1) && stamp <= report.end,
            "{name}"
        );
    }
    let sum: u64 = files.iter().map(|f| f.records.len() as u64).sum();
    assert_eq!(sum, 40_000);
    Ok(())
}

#[test]
fn live_mode_writes_at_the_rate_and_stops_on_the_flag() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let c = GenerateConfig {
        out: dir.path().to_path_buf(),
        rate_per_s: 2_000.0,
        duration: Some(Duration::from_secs(30)),
        start: None,
        ..GenerateConfig::default()
    };
    let stop = AtomicBool::new(false);
    let began = std::time::Instant::now();
    let report = std::thread::scope(|s| {
        let h = s.spawn(|| generate_live(&c, &stop));
        std::thread::sleep(Duration::from_millis(800));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        h.join()
    })
    .map_err(|_| anyhow::anyhow!("live generator panicked"))??;
    let took = began.elapsed();
    ensure!(
        took < Duration::from_secs(5),
        "stop flag ignored: ran {took:?}"
    );
    // ~0.8 s at 2000/s; generous bounds for a loaded machine.
    ensure!(
        (300..=4_000).contains(&report.records),
        "{} records",
        report.records
    );
    let files = read_tree(dir.path())?;
    let sum: u64 = files.iter().map(|f| f.records.len() as u64).sum();
    assert_eq!(sum, report.records);
    let now = Utc::now();
    for f in &files {
        for r in &f.records {
            ensure!(
                r.time <= now && now - r.time < chrono::Duration::seconds(10),
                "{:?}",
                r.time
            );
        }
    }
    let listed: Vec<Incident> =
        serde_json::from_str(&fs::read_to_string(dir.path().join(INCIDENTS_FILE))?)?;
    // Stopped during the warm-up: only the span-long decoys started.
    ensure!(listed.iter().all(|i| i.benign), "{listed:?}");
    Ok(())
}

#[test]
fn bad_config_and_non_empty_output_are_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ok = config(dir.path())?;
    for (bad, needle) in [
        (
            GenerateConfig {
                rate_per_s: 0.0,
                ..ok.clone()
            },
            "rate_per_s",
        ),
        (
            GenerateConfig {
                rate_per_s: f64::NAN,
                ..ok.clone()
            },
            "rate_per_s",
        ),
        (
            GenerateConfig {
                lines: Some(0),
                ..ok.clone()
            },
            "lines",
        ),
        (
            GenerateConfig {
                rotate_bytes: 10,
                ..ok.clone()
            },
            "rotate_bytes",
        ),
        (
            GenerateConfig {
                duration: Some(Duration::ZERO),
                ..ok.clone()
            },
            "duration",
        ),
    ] {
        let err = generate(&bad).err().context("must fail")?;
        ensure!(err.to_string().contains(needle), "{err}");
    }
    fs::write(dir.path().join("stray"), "x")?;
    let err = generate(&GenerateConfig {
        lines: Some(10),
        ..ok
    })
    .err()
    .context("must fail")?;
    ensure!(err.to_string().contains("not empty"), "{err}");
    Ok(())
}

#[test]
fn joiner_in_this_test_joins_chained_tracebacks_only() -> anyhow::Result<()> {
    let t = "2026-12-04T10:00:00.000000000Z";
    let text = [
        "stderr F Traceback (most recent call last):",
        "stderr F   File \"a.py\", line 1, in f",
        "stderr F     g()",
        "stderr F ValueError: x",
        "stderr F ",
        "stderr F The above exception was the direct cause of the following exception:",
        "stderr F ",
        "stderr F Traceback (most recent call last):",
        "stderr F   File \"b.py\", line 2, in h",
        "stdout F {\"interleaved\": \"on the other stream\"}",
        "stderr F RuntimeError: y",
        "stderr F ERROR:    next record",
    ];
    let lines = text
        .iter()
        .map(|l| parse_cri(&format!("{t} {l}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let recs = join(lines);
    let sizes: Vec<usize> = recs.iter().map(|r| r.lines).collect();
    assert_eq!(sizes, vec![10, 1, 1]);
    Ok(())
}

/// Splits an nginx access line into fields, keeping `"..."` and `[...]` together, and names
/// each field's shape: `q` quoted, `b` bracketed, `w` bare word.
fn nginx_shape(line: &str) -> String {
    let mut shape = String::new();
    let mut rest = line.trim_end();
    while !rest.is_empty() {
        let (kind, end) = match rest.as_bytes()[0] {
            b'"' => ('q', rest[1..].find('"').map_or(rest.len(), |i| i + 2)),
            b'[' => ('b', rest.find(']').map_or(rest.len(), |i| i + 1)),
            _ => ('w', rest.find(' ').unwrap_or(rest.len())),
        };
        shape.push(kind);
        rest = rest[end.min(rest.len())..].trim_start();
    }
    shape
}

#[test]
fn ingress_and_klog_lines_have_the_shape_of_the_public_samples() -> anyhow::Result<()> {
    let corpora = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora/k8s");
    if !corpora.exists() {
        eprintln!("skipping: corpora not found at {}", corpora.display());
        return Ok(());
    }
    let sample =
        fs::read_to_string(corpora.join("elastic_beats/nginx_ingress_controller_test.log"))?;
    let reference = nginx_shape(sample.lines().next().context("a sample line")?);
    // ip - - [time] "request" status bytes "referer" "agent" len time [upstream] [alt]
    // addr length time status id
    assert_eq!(reference, "wwwbqwwqqwwbbwwwww");
    let klog_sample =
        fs::read_to_string(corpora.join("elastic_integrations_kubernetes/test-apiserver.log"))?;
    let klog_ref = klog_sample.lines().next().context("a klog line")?;
    let klog_header = |l: &str| -> Option<(usize, usize)> {
        // `E0807 11:44:13.480966      10 webhook.go:154] ...`: widths of the time and of the
        // right-aligned thread-id column.
        let (head, _) = l.split_once("] ")?;
        let time_end = head.find(' ')? + 16;
        Some((time_end, head.get(time_end..)?.rfind(' ')?))
    };
    let dir = tempfile::tempdir()?;
    generate(&GenerateConfig {
        lines: Some(20_000),
        ..config(dir.path())?
    })?;
    let mut access = 0;
    let mut klog = 0;
    for f in read_tree(dir.path())?
        .iter()
        .filter(|f| f.container == "controller")
    {
        for r in &f.records {
            if r.stream == "stdout" {
                assert_eq!(nginx_shape(&r.text), reference, "{}", r.text);
                access += 1;
            } else if !r.text.contains("[error]") {
                assert_eq!(klog_header(&r.text), klog_header(klog_ref), "{}", r.text);
                klog += 1;
            }
        }
    }
    ensure!(
        access > 1_000 && klog > 0,
        "{access} access, {klog} klog lines"
    );
    // And the reader used by these tests accepts the public CRI sample's full lines.
    let cri = fs::read_to_string(corpora.join("crowdsec_hub/cri-logs/cri-logs.log"))?;
    let full = cri.lines().filter(|l| l.contains(" F ")).map(parse_cri);
    ensure!(full.collect::<anyhow::Result<Vec<_>>>()?.len() == 2);
    Ok(())
}

#[test]
fn default_start_is_recent_and_on_a_minute() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let before = Utc::now();
    let report = generate(&GenerateConfig {
        out: dir.path().to_path_buf(),
        lines: Some(1_000),
        rate_per_s: 10.0,
        ..GenerateConfig::default()
    })?;
    let span = chrono::Duration::seconds(100);
    assert_eq!(report.end - report.start, span);
    assert_eq!(report.start.timestamp() % 60, 0);
    let latest = before - span;
    ensure!(
        report.start <= Utc::now() - span && latest - report.start < chrono::Duration::seconds(61),
        "start {} for a run at {before}",
        report.start
    );
    Ok(())
}

/// xxh3 of every file (path and bytes, in path order) for seed 7, 3 000 lines, fixed start.
/// Pinned so that a dependency or toolchain upgrade cannot silently change the workload that
/// benchmarks and scenario tests compare against. If you changed the workload on purpose,
/// update the value and say so in the commit.
const GOLDEN_XXH3: u64 = 0x97fa_d818_34ec_9bdc;

#[test]
fn output_bytes_are_pinned() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    generate(&GenerateConfig {
        lines: Some(3_000),
        ..config(dir.path())?
    })?;
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for (path, bytes) in all_bytes(dir.path())? {
        h.update(path.to_string_lossy().as_bytes());
        h.update(&bytes);
    }
    let got = h.digest();
    assert_eq!(got, GOLDEN_XXH3, "workload bytes changed: {got:#018x}");
    Ok(())
}
