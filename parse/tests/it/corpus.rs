//! The public JSON corpora (`../shared/corpora/json`): one line per logging library checked
//! field by field, and every line of every file parsed without a panic, with a report of how
//! many fell back to plain text.

use std::path::{Path, PathBuf};

use schemas::Level;

use crate::{fallback, parser, utc};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora/json")
}

/// What one corpus line must become.
struct Expect {
    file: &'static str,
    /// 0-based line index.
    line: usize,
    timestamp: &'static str,
    level: Option<Level>,
    message: &'static str,
    method: Option<&'static str>,
    path: Option<&'static str>,
    status: Option<u16>,
    duration_ns: Option<i64>,
}

const fn e(
    file: &'static str,
    line: usize,
    timestamp: &'static str,
    level: Option<Level>,
    message: &'static str,
) -> Expect {
    Expect {
        file,
        line,
        timestamp,
        level,
        message,
        method: None,
        path: None,
        status: None,
        duration_ns: None,
    }
}

impl Expect {
    const fn http(
        mut self,
        method: Option<&'static str>,
        path: Option<&'static str>,
        status: Option<u16>,
        duration_ns: Option<i64>,
    ) -> Expect {
        self.method = method;
        self.path = path;
        self.status = status;
        self.duration_ns = duration_ns;
        self
    }
}

fn table() -> Vec<Expect> {
    use Level::*;
    vec![
        e("humanlog_benchmark_samples/golang-zap__sample-zap.log", 0, "2024-11-12T05:13:36.574Z", Some(Warn), "Slow response detected")
            .http(None, None, None, Some(5_042_000_000)),
        e("humanlog_benchmark_samples/golang-zerolog-json__sample-zerolog-json.log", 0, "2024-11-12T05:17:27Z", Some(Info), "API request processed")
            .http(Some("PUT"), Some("/api/orders"), Some(400), Some(288_000_000)),
        e("humanlog_benchmark_samples/golang-logrus-json__sample-logrus.json", 0, "2024-11-28T09:41:00Z", Some(Info), "API request processed")
            .http(Some("POST"), Some("/api/orders"), Some(401), Some(6_000_000)),
        e("humanlog_benchmark_samples/golang-slog-json__logdump.json", 0, "2024-04-06T09:58:23.435979Z", Some(Info), "using MySQL for metadata"),
        e("humanlog_benchmark_samples/csharp-nlog-json__sample-nlog.json", 0, "2024-11-28T09:34:01.225731Z", Some(Warn), "High resource usage detected: CPU: 62.3%, Memory: 31.8%"),
        e("humanlog_benchmark_samples/csharp-serilog-json__sample-serilog-json.log", 0, "2024-11-12T07:36:11.376149Z", Some(Warn), "High resource usage detected: CPU 98.40%, Memory 67.12%"),
        e("humanlog_benchmark_samples/java-log4j2-json__sample-log4j2-json.log", 0, "2024-11-15T10:02:14.40066Z", Some(Info), "Request processed successfully in 147 ms"),
        e("humanlog_benchmark_samples/java-logback-json__sample-logback-json.log", 0, "2024-11-15T09:43:42.462781Z", Some(Debug), "Processing item {} of {}"),
        e("humanlog_benchmark_samples/js-ts-bunyan__sample-bunyan.log", 0, "2024-11-12T06:53:28.25501Z", Some(Error), "Error: Invalid input parameters"),
        e("humanlog_benchmark_samples/js-ts-pino__sample-pino.log", 0, "2024-11-12T06:01:56.698Z", Some(Info), "incoming request")
            .http(Some("PUT"), Some("/api/users"), None, None),
        e("humanlog_benchmark_samples/js-ts-pino__sample-pino.log", 1, "2024-11-12T06:01:56.999Z", Some(Info), "request completed")
            .http(None, None, Some(403), Some(918_000_000)),
        e("humanlog_benchmark_samples/js-ts-winston__sample-winston.log", 0, "2024-11-12T05:59:27.393652Z", Some(Warn), "System resources running low"),
        e("humanlog_benchmark_samples/python-loguru-json__sample-loguru-json.log", 0, "2024-11-15T13:06:15.909549Z", Some(Debug), "Processing item 7 of 23"),
        e("humanlog_benchmark_samples/ruby-semantic-logger-json__sample-semantic-logger-json.log", 0, "2024-11-15T10:16:20.486078Z", Some(Error), "Operation failed"),
        e("humanlog_benchmark_samples/opentelemetry-json__sample-opentelemetry-structured.log", 0, "2024-11-15T14:12:53Z", None, "DELETE /api/v1/users processed")
            .http(Some("DELETE"), Some("/api/v1/users"), Some(403), Some(214_000_000)),
        e("humanlog_benchmark_samples/opentelemetry__sample-opentelemetry-clf.log", 0, "2024-11-15T14:13:12Z", Some(Warn), r#"206.5.78.142 - johndoe [15/Nov/2024:23:13:12 +0900] "DELETE /api/v1/orders HTTP/1.1" 403 1232"#)
            .http(Some("DELETE"), Some("/api/v1/orders"), Some(403), None),
        e("lnav/logfile_ecs_log.json", 0, "2025-01-13T09:58:13.631Z", Some(Debug), "this is a debug message num=39"),
        e("lnav/logfile_rust_tracing.0", 0, "2025-10-28T19:15:10.821315Z", Some(Info), "preparing to shave yaks"),
        e("lnav/logfile_json.json", 0, "2013-09-06T20:00:48.124817Z", Some(Trace), "trace test"),
        e("lnav/logfile_bunyan.0", 0, "2023-03-24T14:26:16.243Z", Some(Debug), "Found gitlabci-include package files"),
        e("lnav/logfile_json_subsec.json", 0, "2022-09-24T00:00:09.484Z", None, "Hello, World!"),
        e("lnav/logfile_logfmt.0", 0, "2021-09-15T21:17:10.220731Z", Some(Error), "error retrieving pod status: pod inc-1-enh-domain-c14-ns-2/hello-inc-1-enh-domain-c14-ns-2-3-d8f465685-k75gp is not found: PodNotFound"),
        e("hl_samples/cafe.log", 0, "2025-03-22T08:00:00Z", Some(Info), "café opens for the day"),
        e("elastic_beats/elasticsearch-json.800.log", 0, "2020-04-14T14:05:58.019Z", Some(Info), "adding template [.management-beats] for index patterns [.management-beats]"),
        e("crowdsec_hub_json_tests/tests/caddy-basic-auth-bf/caddy-logs.log", 0, "2024-03-29T19:50:27.962Z", Some(Error), "handled request")
            .http(Some("GET"), Some("/"), Some(401), Some(33_987)),
        e("crowdsec_hub_json_tests/tests/traefik_json/traefik_json.log", 0, "2021-12-08T14:02:43Z", Some(Info), "")
            .http(Some("GET"), Some("/594VAEoi.save"), Some(200), Some(357_313)),
        e("crowdsec_hub_json_tests/tests/kasm-bruteforce/kasm-logs.log", 0, "2023-01-31T15:09:23.351Z", Some(Warn), "Authentication attempt invalid password for user: (user)"),
        e("crowdsec_hub_json_tests/tests/nextcloud-bf/nextcloud-bf.log", 0, "2022-01-16T15:42:37Z", None, "Login failed: foo (Remote IP: 2001:db8::d71)")
            .http(Some("POST"), Some("/login"), None, None),
        e("crowdsec_hub_json_tests/tests/ntfy-bf/ntfy-bf.log", 0, "2025-08-03T18:32:00.02Z", Some(Debug), "HTTP request started")
            .http(Some("GET"), Some("/test_topic/auth"), None, None),
    ]
}

#[test]
fn one_line_per_library_maps_to_the_right_fields() -> anyhow::Result<()> {
    let dir = corpus_dir();
    if !dir.exists() {
        println!("skipping: corpora not found at {}", dir.display());
        return Ok(());
    }
    let mut parser = parser();
    let mut failures = Vec::new();
    for x in table() {
        let text = std::fs::read_to_string(dir.join(x.file))?;
        let line = text
            .lines()
            .nth(x.line)
            .ok_or_else(|| anyhow::anyhow!("{}: no line {}", x.file, x.line))?;
        let ev = parser.parse_line(line.as_bytes(), fallback());
        let want_ts = utc(x.timestamp);
        // Float epochs carry sub-microsecond noise: compare to the millisecond.
        let ts_ok = (ev.timestamp - want_ts)
            .num_microseconds()
            .is_some_and(|d| d.abs() < 1000);
        let checks = [
            (
                "@timestamp",
                ts_ok,
                format!("{} vs {}", ev.timestamp, want_ts),
            ),
            (
                "log.level",
                ev.log.level == x.level,
                format!("{:?} vs {:?}", ev.log.level, x.level),
            ),
            (
                "message",
                ev.message == x.message,
                format!("{:?} vs {:?}", ev.message, x.message),
            ),
            (
                "http.request.method",
                x.method.is_none() || ev.http.request.method.as_deref() == x.method,
                format!("{:?}", ev.http.request.method),
            ),
            (
                "url.path",
                x.path.is_none() || ev.url.path.as_deref() == x.path,
                format!("{:?}", ev.url.path),
            ),
            (
                "http.response.status_code",
                x.status.is_none() || ev.http.response.status_code == x.status,
                format!("{:?}", ev.http.response.status_code),
            ),
            (
                "event.duration",
                x.duration_ns.is_none() || ev.event.duration == x.duration_ns,
                format!("{:?}", ev.event.duration),
            ),
            (
                "no parse errors",
                ev.sluice.errors.is_empty(),
                format!("{:?}", ev.sluice.errors),
            ),
        ];
        for (field, ok, detail) in checks {
            if !ok {
                failures.push(format!("{}:{} {field}: {detail}", x.file, x.line + 1));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}

fn visit(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            visit(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|x| matches!(x.to_str(), Some("log" | "json" | "jsonl" | "0" | "1")))
        {
            out.push(path);
        }
    }
    Ok(())
}

#[test]
fn every_corpus_line_parses_and_fallbacks_are_reported() -> anyhow::Result<()> {
    let dir = corpus_dir();
    if !dir.exists() {
        println!("skipping: corpora not found at {}", dir.display());
        return Ok(());
    }
    let mut files = Vec::new();
    visit(&dir, &mut files)?;
    files.sort();
    let mut parser = parser();
    let (mut total, mut total_plain, mut json_lines, mut json_as_plain) =
        (0usize, 0usize, 0usize, 0usize);
    println!("{:<95} {:>6} {:>6}", "file", "lines", "plain");
    for f in &files {
        let bytes = std::fs::read(f)?;
        let (mut n, mut plain) = (0usize, 0usize);
        for line in bytes.split(|b| *b == b'\n') {
            if line.is_empty() {
                continue;
            }
            let ev = parser.parse_line(line, fallback());
            n += 1;
            let is_plain = ev.sluice.format.as_deref() == Some("plain");
            if is_plain {
                plain += 1;
            }
            if line.first() == Some(&b'{') {
                json_lines += 1;
                if is_plain {
                    json_as_plain += 1;
                }
            }
            // Every event must serialize (the store's first step).
            serde_json::to_string(&ev)?;
        }
        total += n;
        total_plain += plain;
        let name = f.strip_prefix(&dir).unwrap_or(f).display().to_string();
        println!("{name:<95} {n:>6} {plain:>6}");
    }
    println!(
        "total: {total} lines in {} files, {total_plain} fell back to plain text; {json_as_plain} of {json_lines} lines starting with '{{' were not valid one-line JSON",
        files.len()
    );
    assert!(
        total > 30_000,
        "expected the full corpus, read {total} lines"
    );
    // Only the deliberately broken files (invalid / pretty-printed / multi-line JSON) may
    // fall back: well under 1% of the JSON lines.
    assert!(
        json_as_plain * 100 < json_lines,
        "{json_as_plain} of {json_lines} JSON lines fell back"
    );
    Ok(())
}
