//! The tailer against real files: metadata, partials, multi-line, rotation under a running
//! tailer, restart from checkpoints, copytruncate, limits, backpressure, file release.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use ingest::IngestStats;
use schemas::{RawRecord, Stream};

use crate::harness::{Env, Run, append, cri, dedup, fds_under, gzip_file};

const WAIT: Duration = Duration::from_secs(20);

fn messages(records: &[RawRecord]) -> Vec<String> {
    records.iter().map(|r| r.message.clone()).collect()
}

#[test]
fn pod_logs_become_records_with_path_metadata_partials_and_traces() -> Result<()> {
    let env = Env::new()?;
    let api = env.container("shop", "api-1", "app")?;
    let web = env.container("shop", "web-2", "nginx")?;
    let mut text = String::new();
    text += &cri(1, "stdout", false, "plain one");
    text += &cri(2, "stdout", true, "split ");
    text += &cri(3, "stderr", false, "Traceback (most recent call last):");
    text += &cri(4, "stdout", false, "done");
    text += &cri(
        5,
        "stderr",
        false,
        "  File \"/app/main.py\", line 9, in handler",
    );
    text += &cri(6, "stderr", false, "    raise ValueError(\"bad input\")");
    text += &cri(7, "stderr", false, "ValueError: bad input");
    text += "garbage without framing\n";
    text += &cri(8, "stdout", false, "last");
    append(&api.join("0.log"), text.as_bytes())?;
    append(
        &web.join("0.log"),
        cri(9, "stdout", false, "GET / 200").as_bytes(),
    )?;

    let mut run = Run::start(&env.config())?;
    run.until_idle(WAIT)?;
    let stats = run.handle()?.stats();
    let records = run.shutdown()?;
    let api_records: Vec<&RawRecord> = records
        .iter()
        .filter(|r| r.kubernetes.pod.name.as_deref() == Some("api-1"))
        .collect();
    let mut msgs: Vec<&str> = api_records.iter().map(|r| r.message.as_str()).collect();
    msgs.sort();
    assert_eq!(
        msgs,
        vec![
            "Traceback (most recent call last):\n  File \"/app/main.py\", line 9, in handler\n    raise ValueError(\"bad input\")\nValueError: bad input",
            "garbage without framing",
            "last",
            "plain one",
            "split done",
        ]
    );
    let tb = api_records
        .iter()
        .find(|r| r.message.starts_with("Traceback"))
        .context("traceback")?;
    assert_eq!(tb.lines, 4);
    assert_eq!(tb.stream, Some(Stream::Stderr));
    let split = api_records
        .iter()
        .find(|r| r.message == "split done")
        .context("split")?;
    assert_eq!(split.lines, 2);
    let garbage = api_records
        .iter()
        .find(|r| r.message == "garbage without framing")
        .context("garbage")?;
    assert_eq!(garbage.errors, vec!["malformed_cri".to_string()]);
    let one = api_records[0];
    assert_eq!(one.kubernetes.namespace.as_deref(), Some("shop"));
    assert_eq!(one.kubernetes.pod.uid.as_deref(), Some("uid-api-1"));
    assert_eq!(one.kubernetes.container.name.as_deref(), Some("app"));
    assert_eq!(one.kubernetes.node.name.as_deref(), Some("node-test"));
    assert_eq!(one.service.as_deref(), Some("app"));
    assert!(one.time.is_some());
    let web_rec = records
        .iter()
        .find(|r| r.kubernetes.pod.name.as_deref() == Some("web-2"))
        .context("web record")?;
    assert_eq!(web_rec.message, "GET / 200");
    assert_eq!(web_rec.source.offset, 0);
    assert_eq!(
        web_rec.source.end_offset,
        cri(9, "stdout", false, "GET / 200").len() as u64
    );
    assert_eq!(IngestStats::get(&stats.partial_merges), 1);
    assert_eq!(IngestStats::get(&stats.multiline_joins), 3);
    assert_eq!(IngestStats::get(&stats.malformed_lines), 1);
    assert_eq!(IngestStats::get(&stats.lines_read), 10);
    Ok(())
}

#[test]
fn second_run_after_shutdown_reads_nothing_new() -> Result<()> {
    let env = Env::new()?;
    let c = env.container("ns", "p", "c")?;
    let text: String = (0..500)
        .map(|i| cri(i, "stdout", false, &format!("line {i}")))
        .collect();
    append(&c.join("0.log"), text.as_bytes())?;
    let mut run = Run::start(&env.config())?;
    run.until_idle(WAIT)?;
    assert_eq!(run.shutdown()?.len(), 500);
    let mut run = Run::start(&env.config())?;
    run.until_idle(WAIT)?;
    assert_eq!(run.shutdown()?.len(), 0, "everything was checkpointed");
    Ok(())
}

/// Writes `n` lines to one container while rotating kubelet-style every `every` lines
/// (rename to `0.log.<ts>`, fresh `0.log`) and gzipping every other rotated file.
fn write_with_rotation(
    dir: &std::path::Path,
    n: u64,
    every: u64,
    delay: Duration,
) -> Result<Vec<String>> {
    let mut expected = Vec::new();
    let mut rotated = 0;
    let mut chunk = String::new();
    for i in 0..n {
        let stream = if i % 3 == 0 { "stderr" } else { "stdout" };
        let msg = format!("{stream} line {i:06}");
        chunk += &cri(i, stream, false, &msg);
        expected.push(msg);
        if i % 50 == 49 {
            append(&dir.join("0.log"), chunk.as_bytes())?;
            chunk.clear();
            std::thread::sleep(delay);
        }
        if i % every == every - 1 {
            append(&dir.join("0.log"), chunk.as_bytes())?;
            chunk.clear();
            rotated += 1;
            let name = format!("0.log.20261204-{rotated:06}");
            fs::rename(dir.join("0.log"), dir.join(&name))?;
            fs::File::create(dir.join("0.log"))?;
            if rotated % 2 == 0 {
                // Compress the previous rotated file, as the kubelet does.
                let prev = format!("0.log.20261204-{:06}", rotated - 1);
                gzip_file(&dir.join(&prev), &dir.join(format!("{prev}.gz")))?;
                fs::remove_file(dir.join(&prev))?;
            }
        }
    }
    append(&dir.join("0.log"), chunk.as_bytes())?;
    Ok(expected)
}

#[test]
fn kubelet_rotation_and_gzip_under_a_running_tailer_lose_nothing() -> Result<()> {
    let env = Env::new()?;
    let dirs = [
        env.container("ns", "a", "app")?,
        env.container("ns", "b", "app")?,
    ];
    let mut run = Run::start(&env.config())?;
    let writers: Vec<_> = dirs
        .iter()
        .cloned()
        .map(|d| {
            std::thread::spawn(move || write_with_rotation(&d, 6000, 700, Duration::from_millis(2)))
        })
        .collect();
    // Keep consuming while the writers run so the tailer is never stalled.
    let mut expected = Vec::new();
    for w in writers {
        while !w.is_finished() {
            run.pump(Duration::from_millis(50))?;
        }
        expected.push(w.join().map_err(|_| anyhow::anyhow!("writer panicked"))??);
    }
    run.until_idle(WAIT)?;
    let stats = run.handle()?.stats();
    let records = run.shutdown()?;
    let unique = dedup(&records);
    assert_eq!(
        unique.len(),
        records.len(),
        "no record delivered twice within one run"
    );
    for (dir_i, exp) in expected.iter().enumerate() {
        let pod = if dir_i == 0 { "a" } else { "b" };
        for stream in ["stdout", "stderr"] {
            let got: Vec<&str> = records
                .iter()
                .filter(|r| r.kubernetes.pod.name.as_deref() == Some(pod))
                .filter(|r| r.stream.map(|s| s.as_str()) == Some(stream))
                .map(|r| r.message.as_str())
                .collect();
            let want: Vec<&str> = exp
                .iter()
                .filter(|m| m.starts_with(stream))
                .map(String::as_str)
                .collect();
            assert_eq!(got.len(), want.len(), "pod {pod} {stream}: count");
            if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
                for r in records
                    .iter()
                    .filter(|r| r.kubernetes.pod.name.as_deref() == Some(pod))
                {
                    let n: u64 = r.message[12..].parse().unwrap_or(0);
                    if n + 6 > want[i][12..].parse::<u64>().unwrap_or(0)
                        && n < want[i][12..].parse::<u64>().unwrap_or(0) + 6
                    {
                        eprintln!("{} {:?}", r.message, r.source);
                    }
                }
                eprintln!("{stats:?}");
                panic!(
                    "pod {pod} {stream}: first difference at {i}: got {:?} want {:?}",
                    &got[i.saturating_sub(2)..(i + 3).min(got.len())],
                    &want[i.saturating_sub(2)..(i + 3).min(want.len())]
                );
            }
        }
    }
    assert!(
        IngestStats::get(&stats.rotations) >= 16,
        "rotations: {}",
        IngestStats::get(&stats.rotations)
    );
    assert_eq!(
        IngestStats::get(&stats.files_watched),
        2,
        "rotated files are released"
    );
    Ok(())
}

#[test]
fn crash_without_acks_replays_with_the_same_ids_and_restart_resumes() -> Result<()> {
    let env = Env::new()?;
    let c = env.container("ns", "p", "c")?;
    let mut text = String::new();
    for i in 0..2000u64 {
        // Interleaved stdout partials and stderr lines: checkpoints must never split a record.
        if i % 10 == 0 {
            text += &cri(i * 3, "stdout", true, &format!("part-{i} "));
            text += &cri(i * 3 + 1, "stderr", false, &format!("err {i}"));
            text += &cri(i * 3 + 2, "stdout", false, &format!("end-{i}"));
        } else {
            text += &cri(i * 3, "stdout", false, &format!("out {i}"));
        }
    }
    append(&c.join("0.log"), text.as_bytes())?;
    let expected = 2000 + 200;

    // Run 1: acknowledge only the first ~600 records, then crash.
    let mut run = Run::start(&env.config())?;
    run.ack = false;
    run.pump(Duration::from_millis(300))?;
    let first = run.received.clone();
    ensure!(first.len() >= 600, "only {} records received", first.len());
    let acked: Vec<RawRecord> = first[..600].to_vec();
    run.handle()?.acker().ack(acked.iter().map(|r| &r.source));
    std::thread::sleep(Duration::from_millis(200));
    drop(run.crash());

    // Run 2: everything not acknowledged comes again, with the same ids.
    let mut run = Run::start(&env.config())?;
    run.until_idle(WAIT)?;
    let second = run.shutdown()?;
    let mut index: BTreeMap<String, String> = BTreeMap::new();
    for r in acked.iter().chain(second.iter()) {
        if let Some(prev) = index.insert(r.event_id(), r.message.clone()) {
            assert_eq!(
                prev, r.message,
                "an event id must always name the same record"
            );
        }
    }
    assert_eq!(index.len(), expected, "every record indexed exactly once");
    let replayed: HashSet<String> = second.iter().map(|r| r.event_id()).collect();
    let first_ids: HashSet<String> = first.iter().map(|r| r.event_id()).collect();
    let acked_ids: HashSet<String> = acked.iter().map(|r| r.event_id()).collect();
    assert!(
        first_ids
            .difference(&acked_ids)
            .all(|id| replayed.contains(id)),
        "unacknowledged records are delivered again"
    );
    let joined = index.values().filter(|m| m.starts_with("part-")).count();
    assert_eq!(joined, 200, "partials are joined in both runs");

    // Run 3: nothing left.
    let mut run = Run::start(&env.config())?;
    run.until_idle(WAIT)?;
    assert!(run.shutdown()?.is_empty());
    Ok(())
}

#[test]
fn copytruncate_reads_the_copy_then_the_new_content() -> Result<()> {
    let env = Env::new()?;
    let c = env.container("ns", "p", "c")?;
    let mut cfg = env.config();
    // A slow poll so the copy and truncation happen while the tailer sleeps.
    cfg.poll_interval_ms = 400;
    cfg.discovery_interval_ms = 400;
    let a: String = (0..100)
        .map(|i| cri(i, "stdout", false, &format!("a{i}")))
        .collect();
    append(&c.join("0.log"), a.as_bytes())?;
    let mut run = Run::start(&cfg)?;
    while run.received.len() < 100 {
        ensure!(run.pump(Duration::from_millis(2000))? > 0, "no records");
    }
    let b: String = (100..200)
        .map(|i| cri(i, "stdout", false, &format!("b{i}")))
        .collect();
    append(&c.join("0.log"), b.as_bytes())?;
    fs::copy(c.join("0.log"), c.join("0.log.20261204-000001"))?;
    fs::OpenOptions::new()
        .write(true)
        .open(c.join("0.log"))?
        .set_len(0)?;
    let d: String = (200..250)
        .map(|i| cri(i, "stdout", false, &format!("c{i}")))
        .collect();
    append(&c.join("0.log"), d.as_bytes())?;
    run.until_idle(WAIT)?;
    let stats = run.handle()?.stats();
    let records = run.shutdown()?;
    let msgs = messages(&dedup(&records));
    assert_eq!(msgs.len(), 250, "{:?}", &msgs[95..msgs.len().min(110)]);
    let mut sorted = msgs.clone();
    sorted.sort_by_key(|m| m[1..].parse::<u32>().unwrap_or(0));
    assert_eq!(msgs, sorted, "in order");
    assert!(IngestStats::get(&stats.truncations) >= 1);
    Ok(())
}

#[test]
fn long_lines_and_invalid_utf8_are_kept_flagged_and_do_not_stall_the_file() -> Result<()> {
    let env = Env::new()?;
    let c = env.container("ns", "p", "c")?;
    let mut cfg = env.config();
    cfg.max_line_bytes = 1024;
    let mut data = cri(1, "stdout", false, &"x".repeat(10_000)).into_bytes();
    // A 3 KiB message split into three 1 KiB partials also exceeds the limit.
    for i in 0..3 {
        data.extend(cri(2 + i, "stderr", i < 2, &"p".repeat(1000)).into_bytes());
    }
    let mut bad = cri(10, "stdout", false, "caf").into_bytes();
    bad.pop();
    bad.extend_from_slice(&[0xC3, 0x28, b'\n']);
    data.extend(bad);
    data.extend(cri(11, "stdout", false, "after").into_bytes());
    append(&c.join("0.log"), &data)?;
    let mut run = Run::start(&cfg)?;
    run.until_idle(WAIT)?;
    let stats = run.handle()?.stats();
    let records = run.shutdown()?;
    assert_eq!(records.len(), 4, "{:?}", messages(&records));
    let long = records
        .iter()
        .find(|r| r.message.starts_with('x'))
        .context("long")?;
    assert_eq!(long.message.len(), 1024);
    assert_eq!(long.errors, vec!["line_truncated"]);
    let merged = records
        .iter()
        .find(|r| r.message.starts_with('p'))
        .context("merged")?;
    assert_eq!(merged.message.len(), 1024);
    assert_eq!(merged.lines, 3);
    assert!(merged.errors.contains(&"line_truncated".to_string()));
    let utf = records
        .iter()
        .find(|r| r.message.starts_with("caf"))
        .context("utf8")?;
    assert_eq!(utf.message, "caf\u{FFFD}(");
    assert_eq!(utf.errors, vec!["invalid_utf8"]);
    assert!(records.iter().any(|r| r.message == "after"));
    assert_eq!(IngestStats::get(&stats.lines_truncated), 2);
    assert_eq!(IngestStats::get(&stats.invalid_utf8), 1);
    Ok(())
}

#[test]
fn docker_json_files_join_16k_splits() -> Result<()> {
    let env = Env::new()?;
    let c = env.container("ns", "p", "c")?;
    let chunk = "z".repeat(16 * 1024);
    let mut text = String::new();
    text += &format!(
        "{{\"log\":\"{chunk}\",\"stream\":\"stdout\",\"time\":\"2026-12-04T16:30:00.1Z\"}}\n"
    );
    text +=
        "{\"log\":\"interleaved\\n\",\"stream\":\"stderr\",\"time\":\"2026-12-04T16:30:00.2Z\"}\n";
    text += "{\"log\":\"tail\\n\",\"stream\":\"stdout\",\"time\":\"2026-12-04T16:30:00.3Z\"}\n";
    append(&c.join("0.log"), text.as_bytes())?;
    let mut run = Run::start(&env.config())?;
    run.until_idle(WAIT)?;
    let records = run.shutdown()?;
    assert_eq!(records.len(), 2);
    let joined = records
        .iter()
        .find(|r| r.stream == Some(Stream::Stdout))
        .context("stdout")?;
    assert_eq!(joined.message, format!("{chunk}tail"));
    assert_eq!(joined.lines, 2);
    assert!(joined.errors.is_empty());
    Ok(())
}

#[test]
fn deleted_pods_are_drained_then_released_without_leaking_descriptors() -> Result<()> {
    let env = Env::new()?;
    let mut run = Run::start(&env.config())?;
    let mut pods = Vec::new();
    for p in 0..20 {
        let c = env.container("ns", &format!("pod{p}"), "c")?;
        let text: String = (0..50)
            .map(|i| cri(i, "stdout", false, &format!("pod{p} {i}")))
            .collect();
        append(&c.join("0.log"), text.as_bytes())?;
        pods.push(c);
    }
    run.until_idle(WAIT)?;
    let stats = run.handle()?.stats();
    assert_eq!(IngestStats::get(&stats.files_watched), 20);
    // Scans open files and directories for a moment; the steady count is one per live file.
    let steady = |n: usize| {
        (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            fds_under(&env.pods) == n
        })
    };
    assert!(
        steady(20),
        "one descriptor per live file, got {}",
        fds_under(&env.pods)
    );
    // Append a last line and delete the pod right away: it must still be read.
    for (p, c) in pods.iter().enumerate() {
        append(
            &c.join("0.log"),
            cri(99, "stdout", false, &format!("pod{p} last")).as_bytes(),
        )?;
        fs::remove_dir_all(c.parent().context("pod dir")?)?;
    }
    run.until_idle(WAIT)?;
    assert_eq!(IngestStats::get(&stats.files_watched), 0);
    assert_eq!(IngestStats::get(&stats.files_released), 20);
    let records = run.shutdown()?;
    assert_eq!(records.len(), 20 * 51);
    assert!(
        steady(0),
        "descriptors of deleted files kept: {}",
        fds_under(&env.pods)
    );
    Ok(())
}

#[test]
fn a_stalled_downstream_pauses_reading_and_loses_nothing() -> Result<()> {
    let env = Env::new()?;
    let c = env.container("ns", "p", "c")?;
    let mut cfg = env.config();
    cfg.batch_max_records = 10;
    cfg.max_unacked_records = 200;
    let text: String = (0..3000)
        .map(|i| cri(i, "stdout", false, &format!("l{i}")))
        .collect();
    append(&c.join("0.log"), text.as_bytes())?;
    let mut run = Run::start(&cfg)?;
    // Receive without acknowledging: the unacked limit must stop the flow.
    run.ack = false;
    run.pump(Duration::from_millis(500))?;
    let stalled = run.received.len();
    assert!(stalled <= 200 + 10, "received {stalled} without any ack");
    let stats = run.handle()?.stats();
    assert!(IngestStats::get(&stats.backpressure_pauses) > 0);
    assert!(!run.handle()?.is_idle());
    // Acknowledge and continue: everything arrives exactly once.
    let acker = run.handle()?.acker();
    acker.ack(run.received.iter().map(|r| &r.source));
    run.ack = true;
    run.until_idle(WAIT)?;
    let records = run.shutdown()?;
    assert_eq!(records.len(), 3000);
    assert_eq!(dedup(&records).len(), 3000);
    Ok(())
}

#[test]
fn include_globs_tail_plain_files() -> Result<()> {
    let env = Env::new()?;
    let dir = env.dir.path().join("var/log/app");
    fs::create_dir_all(&dir)?;
    append(&dir.join("app.log"), b"first\nsecond\n")?;
    append(&dir.join("other.txt"), b"ignored\n")?;
    let mut cfg = env.config();
    cfg.pods_dir = None;
    cfg.include = vec![format!("{}/*.log", dir.display())];
    let mut run = Run::start(&cfg)?;
    run.until_idle(WAIT)?;
    append(&dir.join("app.log"), b"third\n")?;
    run.until_idle(WAIT)?;
    let records = run.shutdown()?;
    assert_eq!(messages(&records), vec!["first", "second", "third"]);
    assert!(
        records
            .iter()
            .all(|r| r.kubernetes.pod.name.is_none() && r.stream.is_none())
    );
    Ok(())
}

#[test]
fn dropping_the_handle_stops_promptly_and_writes_no_unacked_checkpoint() -> Result<()> {
    let env = Env::new()?;
    let c = env.container("ns", "p", "c")?;
    let text: String = (0..100)
        .map(|i| cri(i, "stdout", false, &format!("l{i}")))
        .collect();
    append(&c.join("0.log"), text.as_bytes())?;
    let mut run = Run::start(&env.config())?;
    run.ack = false;
    run.pump(Duration::from_millis(300))?;
    assert_eq!(run.received.len(), 100);
    let t = std::time::Instant::now();
    drop(run.crash());
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "drop took {:?}",
        t.elapsed()
    );
    let cp = fs::read_to_string(env.state.join(ingest::CHECKPOINT_FILE)).unwrap_or_default();
    assert!(
        !cp.contains("\"offset\":1") && !cp.contains("\"done\":true"),
        "{cp}"
    );
    let mut run = Run::start(&env.config())?;
    run.until_idle(WAIT)?;
    assert_eq!(
        run.shutdown()?.len(),
        100,
        "nothing was acknowledged, so everything comes again"
    );
    Ok(())
}

#[test]
fn becomes_idle_within_two_seconds_of_the_last_write_with_default_timings() -> Result<()> {
    let env = Env::new()?;
    let c = env.container("ns", "p", "c")?;
    let cfg = ingest::TailerConfig {
        pods_dir: Some(env.pods.clone()),
        state_dir: env.state.clone(),
        ..ingest::TailerConfig::default()
    };
    // The file exists before start, so the first scan finds it.
    append(&c.join("0.log"), cri(0, "stdout", false, "l0").as_bytes())?;
    let mut run = Run::start(&cfg)?;
    for i in 1..20 {
        append(
            &c.join("0.log"),
            cri(i, "stdout", false, &format!("l{i}")).as_bytes(),
        )?;
        run.pump(Duration::from_millis(20))?;
    }
    // The last line is held for a possible Java continuation until the flush timeout.
    let last_write = std::time::Instant::now();
    while run.received.len() < 20 || !run.handle()?.is_idle() {
        ensure!(
            last_write.elapsed() < Duration::from_secs(2),
            "not idle 2 s after the last write"
        );
        run.pump(Duration::from_millis(10))?;
    }
    let took = last_write.elapsed();
    let records = run.shutdown()?;
    assert_eq!(records.len(), 20);
    eprintln!("idle {took:?} after the last write");
    Ok(())
}

#[test]
fn a_file_compressed_while_the_agent_was_down_resumes_from_its_gz_with_the_same_ids() -> Result<()>
{
    let env = Env::new()?;
    let c = env.container("ns", "p", "c")?;
    let text: String = (0..1000)
        .map(|i| cri(i, "stdout", false, &format!("l{i}")))
        .collect();
    append(&c.join("0.log"), text.as_bytes())?;
    let mut run = Run::start(&env.config())?;
    run.ack = false;
    run.pump(Duration::from_millis(300))?;
    let first = run.received.clone();
    ensure!(first.len() == 1000, "got {}", first.len());
    run.handle()?
        .acker()
        .ack(first[..400].iter().map(|r| &r.source));
    std::thread::sleep(Duration::from_millis(200));
    drop(run.crash());
    // While the agent is down: kubelet rotation, then compression of the rotated file.
    let rotated = c.join("0.log.20261204-170000");
    fs::rename(c.join("0.log"), &rotated)?;
    append(
        &c.join("0.log"),
        cri(5000, "stdout", false, "fresh").as_bytes(),
    )?;
    gzip_file(&rotated, &c.join("0.log.20261204-170000.gz"))?;
    fs::remove_file(&rotated)?;
    let mut run = Run::start(&env.config())?;
    run.until_idle(WAIT)?;
    let second = run.shutdown()?;
    assert_eq!(
        second.len(),
        601,
        "600 unacknowledged lines from the .gz, then the new file"
    );
    for (a, b) in first[400..].iter().zip(&second) {
        assert_eq!(
            a.event_id(),
            b.event_id(),
            "same id whether read plain or compressed"
        );
        assert_eq!(a.message, b.message);
        assert!(b.source.path.ends_with(".gz"));
    }
    assert_eq!(second[600].message, "fresh");
    Ok(())
}

#[test]
fn a_container_restart_file_is_read_while_the_previous_instance_log_stays() -> Result<()> {
    let env = Env::new()?;
    let c = env.container("ns", "p", "c")?;
    append(
        &c.join("0.log"),
        cri(1, "stdout", false, "first instance").as_bytes(),
    )?;
    let mut run = Run::start(&env.config())?;
    run.until_idle(WAIT)?;
    // The container restarts: the kubelet keeps 0.log and the runtime writes 1.log.
    append(
        &c.join("1.log"),
        cri(2, "stdout", false, "second instance").as_bytes(),
    )?;
    fs::rename(c.join("1.log"), c.join("1.log.20261204-170000"))?;
    append(
        &c.join("1.log"),
        cri(3, "stdout", false, "after rotation").as_bytes(),
    )?;
    run.until_idle(WAIT)?;
    let records = run.shutdown()?;
    assert_eq!(
        messages(&records),
        vec!["first instance", "second instance", "after rotation"]
    );
    Ok(())
}

#[test]
fn read_from_end_skips_existing_content_of_files_found_at_start_only() -> Result<()> {
    let env = Env::new()?;
    let old = env.container("ns", "old", "c")?;
    append(
        &old.join("0.log"),
        cri(1, "stdout", false, "before start").as_bytes(),
    )?;
    let mut cfg = env.config();
    cfg.read_from = ingest::ReadFrom::End;
    let mut run = Run::start(&cfg)?;
    run.until_idle(WAIT)?;
    append(
        &old.join("0.log"),
        cri(2, "stdout", false, "after start").as_bytes(),
    )?;
    let new = env.container("ns", "new", "c")?;
    append(
        &new.join("0.log"),
        cri(3, "stdout", false, "new pod").as_bytes(),
    )?;
    run.until_idle(WAIT)?;
    let mut got = messages(&run.shutdown()?);
    got.sort();
    assert_eq!(got, vec!["after start", "new pod"]);
    Ok(())
}

#[test]
fn corpus_java_stack_trace_in_cri_joins_into_one_record() -> Result<()> {
    let corpus = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpora/k8s/fluent-bit_cri_multiline/cri_java_stacktrace.log");
    if !corpus.is_file() {
        eprintln!("skipping: corpora not found at {}", corpus.display());
        return Ok(());
    }
    let env = Env::new()?;
    let c = env.container("hdfs", "client-0", "app")?;
    // Read from the shared corpus at test time; only the temp pod dir holds a copy.
    append(&c.join("0.log"), &fs::read(&corpus)?)?;
    append(
        &c.join("0.log"),
        cri(1, "stderr", false, "next message").as_bytes(),
    )?;
    let mut run = Run::start(&env.config())?;
    run.until_idle(WAIT)?;
    let records = run.shutdown()?;
    let lines: Vec<u32> = records.iter().map(|r| r.lines).collect();
    // The message before the exception, the exception with its 17 frames, the next message.
    assert_eq!(lines, vec![1, 18, 1], "{:?}", messages(&records));
    assert!(
        records[1]
            .message
            .starts_with("org.apache.hadoop.ipc.RemoteException")
    );
    assert!(records[1].message.ends_with("(FileSystem.java:1424)"));
    Ok(())
}

/// Largest amount by which a record's time is behind one received before it.
fn worst_lag(records: &[RawRecord]) -> Result<chrono::TimeDelta> {
    let mut newest = None;
    let mut worst = chrono::TimeDelta::zero();
    for r in records {
        let t = r.time.context("every generated line has a CRI time")?;
        if let Some(n) = newest {
            worst = worst.max(n - t);
        }
        newest = newest.max(Some(t));
    }
    Ok(worst)
}

#[test]
fn a_backfill_reads_the_pods_in_log_time_order() -> Result<()> {
    const SEC: u64 = 1_000_000_000;
    // One hour of three containers: 10 lines/s, 2 lines/s, and a line a minute on stderr
    // (held for a possible Java continuation, so the hold must be closed in log time too).
    let env = Env::new()?;
    let mut expected = 0;
    for (pod, stream, step) in [
        ("busy", "stdout", SEC / 10),
        ("mid", "stdout", SEC / 2),
        ("quiet", "stderr", 60 * SEC),
    ] {
        let dir = env.container("ns", pod, "app")?;
        let lines = 3600 * SEC / step;
        let text: String = (0..lines)
            .map(|i| cri(i * step + 1, stream, false, &format!("{pod} {i}")))
            .collect();
        append(&dir.join("0.log"), text.as_bytes())?;
        expected += lines as usize;
    }
    let skew = 10;
    let mut cfg = env.config();
    cfg.max_read_skew_secs = skew;
    let mut run = Run::start(&cfg)?;
    run.until_idle(WAIT)?;
    let records = run.shutdown()?;
    ensure!(
        records.len() == expected,
        "{} of {expected} records",
        records.len()
    );
    let lag = worst_lag(&records)?;
    // Skew, plus the flush timeout a held line waits past its successor's stamp.
    let bound = chrono::TimeDelta::seconds(skew as i64)
        + chrono::TimeDelta::milliseconds(cfg.multiline.flush_timeout_ms as i64 + 100);
    ensure!(
        lag <= bound,
        "a record came {lag} behind an earlier one (bound {bound})"
    );

    // The control: read by byte budget alone, the quiet container's hour comes in one read.
    let env = Env::new()?;
    for (pod, step) in [("busy", SEC / 10), ("quiet", 60 * SEC)] {
        let dir = env.container("ns", pod, "app")?;
        let text: String = (0..3600 * SEC / step)
            .map(|i| cri(i * step + 1, "stdout", false, &format!("{pod} {i}")))
            .collect();
        append(&dir.join("0.log"), text.as_bytes())?;
    }
    let mut cfg = env.config();
    cfg.max_read_skew_secs = 0;
    let mut run = Run::start(&cfg)?;
    run.until_idle(WAIT)?;
    let lag = worst_lag(&run.shutdown()?)?;
    ensure!(
        lag > chrono::TimeDelta::minutes(30),
        "byte-budget reading was expected to be far out of order, worst lag {lag}"
    );
    Ok(())
}
