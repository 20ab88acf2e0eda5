//! The `sluice` binary as a user runs it.

use std::path::Path;
use std::process::{Command, Output};

fn sluice(args: &[&str]) -> anyhow::Result<Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env("SLUICE_LOG", "warn")
        .output()?)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

#[test]
fn every_subcommand_has_help() -> anyhow::Result<()> {
    for cmd in [
        vec!["--help"],
        vec!["generate", "--help"],
        vec!["run", "--help"],
        vec!["search", "--help"],
        vec!["demo", "--help"],
        vec!["parse", "--help"],
        vec!["detect", "--help"],
        vec!["patterns", "--help"],
        vec!["config", "check", "--help"],
        vec!["es", "setup", "--help"],
    ] {
        let out = sluice(&cmd)?;
        assert!(out.status.success(), "{cmd:?}: {}", stderr(&out));
        assert!(stdout(&out).contains("Usage:"), "{cmd:?}");
    }
    Ok(())
}

#[test]
fn generate_run_search_counts_every_record_and_rerun_adds_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pods = dir.path().join("pods");
    let data = dir.path().join("data");
    let start = crate::support::recent_start().to_rfc3339();
    let out = sluice(&[
        "generate",
        "--out",
        path(&pods),
        "--lines",
        "4000",
        "--seed",
        "7",
        "--start",
        &start,
    ])?;
    assert!(out.status.success(), "generate: {}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let records = report["records"].as_u64().expect("report has records");

    for round in 0..2 {
        let out = sluice(&[
            "run",
            "--pods-dir",
            path(&pods),
            "--data-dir",
            path(&data),
            "--until-idle",
        ])?;
        assert!(out.status.success(), "run #{round}: {}", stderr(&out));
        let out = sluice(&["search", "--data-dir", path(&data), "--count"])?;
        assert!(out.status.success(), "search: {}", stderr(&out));
        assert_eq!(
            stdout(&out).trim(),
            records.to_string(),
            "after run #{round}"
        );
    }

    let out = sluice(&[
        "search",
        "--data-dir",
        path(&data),
        "--limit",
        "20",
        "log.level:error",
    ])?;
    assert!(out.status.success(), "search: {}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert!(!lines.is_empty());
    let mut previous: Option<chrono::DateTime<chrono::Utc>> = None;
    for line in lines {
        let event: serde_json::Value = serde_json::from_str(line)?;
        assert_eq!(event["log"]["level"], "error");
        let ts = chrono::DateTime::parse_from_rfc3339(event["@timestamp"].as_str().unwrap_or(""))?
            .with_timezone(&chrono::Utc);
        if let Some(prev) = previous {
            assert!(
                ts <= prev,
                "results must be newest first: {ts} after {prev}"
            );
        }
        previous = Some(ts);
    }
    Ok(())
}

#[test]
fn config_check_names_the_field_path_of_a_problem() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[index]\nretention_days = \"ninety\"\n")?;
    let out = sluice(&["config", "check", path(&bad)])?;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("index.retention_days"),
        "{}",
        stderr(&out)
    );

    let unknown = dir.path().join("unknown.toml");
    std::fs::write(&unknown, "[api]\nlisten = \"127.0.0.1:7280\"\nlisen = 1\n")?;
    let out = sluice(&["config", "check", path(&unknown)])?;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("lisen"), "{}", stderr(&out));

    let exposed = dir.path().join("exposed.toml");
    std::fs::write(&exposed, "[api]\nlisten = \"0.0.0.0:7280\"\n")?;
    let out = sluice(&["config", "check", path(&exposed)])?;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("api.bearer_token_file"),
        "{}",
        stderr(&out)
    );

    let skewed = dir.path().join("skewed.toml");
    std::fs::write(
        &skewed,
        "[ingest]\nmax_read_skew_secs = 60\n[detect]\nallowed_lateness_secs = 30\n",
    )?;
    let out = sluice(&["config", "check", path(&skewed)])?;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("ingest.max_read_skew_secs"),
        "{}",
        stderr(&out)
    );

    let good = dir.path().join("good.toml");
    let defaults = sluice(&["config", "default"])?;
    assert!(defaults.status.success(), "{}", stderr(&defaults));
    std::fs::write(&good, &defaults.stdout)?;
    let out = sluice(&["config", "check", path(&good)])?;
    assert!(
        out.status.success(),
        "default config must check: {}",
        stderr(&out)
    );
    Ok(())
}

#[test]
fn parse_turns_cri_lines_into_ecs_events() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("in.log");
    std::fs::write(
        &input,
        concat!(
            "2026-12-04T10:00:00.123456789Z stdout F {\"level\":\"error\",\"msg\":\"db down\",\"status\":503,\"path\":\"/api/chat\"}\n",
            "2026-12-04T10:00:01.000000000Z stderr P part one \n",
            "2026-12-04T10:00:01.100000000Z stderr F and two\n",
        ),
    )?;
    let out = sluice(&["parse", "--input", path(&input)])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let events: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(events.len(), 2, "the P/F pair is one record");
    assert_eq!(events[0]["log"]["level"], "error");
    assert_eq!(events[0]["message"], "db down");
    assert_eq!(events[0]["http"]["response"]["status_code"], 503);
    assert_eq!(events[0]["stream"], "stdout");
    assert_eq!(events[1]["message"], "part one and two");
    assert_eq!(events[1]["stream"], "stderr");
    Ok(())
}
