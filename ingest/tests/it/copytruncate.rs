//! copytruncate's loss window, measured under a running tailer.
//!
//! A writer thread appends CRI lines at a steady rate through one `O_APPEND` handle that it
//! never reopens (the kind of application logrotate's `copytruncate` exists for), while a
//! rotator thread copies the file and truncates it, many times. Afterwards the copies and the
//! live file are the ground truth: a line written between the copy and the truncation is in
//! neither, which is copytruncate's inherent loss and no tailer can see it. Everything else is
//! checked against what the tailer delivered:
//!
//! - copy in view (`0.log.<n>` next to `0.log`, as logrotate names it): every line of every
//!   copy and of the live file is delivered, once;
//! - copy out of view (moved away, or compressed under a name the tailer does not read): the
//!   tailer also misses what it had not read yet when the truncation came. What it delivers of
//!   each copy is a prefix in order (the lost lines are only the tail before the truncation),
//!   the live file is delivered whole, and no line twice.
//!
//! The measured windows are printed (lines and milliseconds at the write rate, per
//! rotation); they depend on the machine's load, so they are reported, never asserted. Run
//! `cargo test -p ingest --test it copytruncate -- --nocapture` to see them.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

use crate::harness::{Env, Run, cri, dedup};

/// Bound on draining after the last rotation.
const WAIT: Duration = Duration::from_secs(30);
/// Bytes of padding per line, so a line is ~100 bytes like a short application log line.
const PAD_BYTES: usize = 40;
/// How often the writer wakes to write the lines that are due: fine enough that the rate is
/// steady at the scale of a poll interval.
const WRITER_TICK: Duration = Duration::from_millis(1);

#[derive(Debug, Clone, Copy)]
struct Scenario {
    name: &'static str,
    copy_in_view: bool,
    poll_interval_ms: u64,
    lines_per_sec: u64,
    rotations: usize,
    rotate_every_ms: u64,
}

#[derive(Debug, Default)]
struct Window {
    /// Lines written between the copy and the truncation (in no file).
    inherent: Vec<usize>,
    /// Lines of the copy the tailer did not deliver.
    tailer: Vec<usize>,
    copy_ms: Vec<f64>,
}

fn line(seq: u64) -> String {
    cri(
        seq,
        "stdout",
        false,
        &format!("L{seq:09} {}E", "x".repeat(PAD_BYTES)),
    )
}

/// The sequence number of a complete line's message (`L<seq> xxx…E`); `None` for anything
/// else (a torn or foreign line).
fn seq_of(message: &str) -> Option<u64> {
    let rest = message.strip_prefix('L')?;
    let (num, pad) = rest.split_once(' ')?;
    if pad.len() != PAD_BYTES + 1 || !pad.ends_with('E') {
        return None;
    }
    num.parse().ok()
}

/// Sequence numbers of the complete lines of a CRI file.
fn seqs_in(path: &Path) -> Result<Vec<u64>> {
    let data = fs::read(path).with_context(|| format!("read {}", path.display()))?;
    let mut out = Vec::new();
    for l in data.split(|b| *b == b'\n') {
        let d = ingest::decode_as(ingest::Format::Cri, l);
        if let Some(seq) = std::str::from_utf8(&d.message).ok().and_then(seq_of) {
            out.push(seq);
        }
    }
    Ok(out)
}

/// The message of a copy's unterminated last line, if it has one.
fn torn_tail(path: &Path) -> Result<Option<String>> {
    let data = fs::read(path).with_context(|| format!("read {}", path.display()))?;
    if data.is_empty() || data.ends_with(b"\n") {
        return Ok(None);
    }
    let start = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let d = ingest::decode_as(ingest::Format::Cri, &data[start..]);
    Ok(Some(String::from_utf8_lossy(&d.message).into_owned()))
}

fn stats(v: &[usize]) -> (f64, usize) {
    let max = v.iter().copied().max().unwrap_or(0);
    let mean = v.iter().sum::<usize>() as f64 / v.len().max(1) as f64;
    (mean, max)
}

fn run_scenario(s: Scenario) -> Result<Window> {
    let env = Env::new()?;
    let c = env.container("ns", "app-0", "app")?;
    let live = c.join("0.log");
    let away = env.dir.path().join("rotated-away");
    fs::create_dir_all(&away)?;
    let mut cfg = env.config();
    cfg.poll_interval_ms = s.poll_interval_ms;
    let mut run = Run::start(&cfg)?;

    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, written, live) = (Arc::clone(&stop), Arc::clone(&written), live.clone());
        std::thread::spawn(move || -> Result<()> {
            let mut f = OpenOptions::new().create(true).append(true).open(&live)?;
            let start = Instant::now();
            let mut seq = 0u64;
            while !stop.load(Ordering::Acquire) {
                let due = (start.elapsed().as_secs_f64() * s.lines_per_sec as f64) as u64;
                let mut buf = String::new();
                while seq < due {
                    buf += &line(seq);
                    seq += 1;
                }
                // One write per line keeps each line whole for a concurrent reader.
                for l in buf.split_inclusive('\n') {
                    f.write_all(l.as_bytes())?;
                }
                written.store(seq, Ordering::Release);
                std::thread::sleep(WRITER_TICK);
            }
            Ok(())
        })
    };
    let rotator = {
        let (live, c, away) = (live.clone(), c.clone(), away.clone());
        std::thread::spawn(move || -> Result<(Vec<PathBuf>, Vec<f64>)> {
            let mut copies = Vec::new();
            let mut copy_ms = Vec::new();
            for k in 0..s.rotations {
                std::thread::sleep(Duration::from_millis(s.rotate_every_ms));
                let name = format!("0.log.20261204-{k:06}");
                let dst = if s.copy_in_view {
                    c.join(&name)
                } else {
                    away.join(&name)
                };
                let t = Instant::now();
                fs::copy(&live, &dst)?;
                OpenOptions::new().write(true).open(&live)?.set_len(0)?;
                copy_ms.push(t.elapsed().as_secs_f64() * 1e3);
                copies.push(dst);
            }
            Ok((copies, copy_ms))
        })
    };
    while !rotator.is_finished() {
        run.pump(Duration::from_millis(50))?;
    }
    let (copies, copy_ms) = rotator
        .join()
        .map_err(|_| anyhow::anyhow!("rotator panicked"))??;
    // Some lines after the last truncation, then stop writing and drain.
    run.pump(Duration::from_millis(s.rotate_every_ms))?;
    stop.store(true, Ordering::Release);
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))??;
    run.until_idle(WAIT)?;
    let records = run.shutdown()?;

    let total = written.load(Ordering::Acquire);
    let unique = dedup(&records);
    let mut delivered: HashMap<u64, usize> = HashMap::new();
    let mut garbled = Vec::new();
    for r in &unique {
        match seq_of(&r.message) {
            Some(seq) => *delivered.entry(seq).or_default() += 1,
            None => garbled.push(r.message.clone()),
        }
    }
    // A copy taken while a line was being appended can end in that line's head (the file's
    // size grows page by page during one `write`); the tailer rightly delivers what the copy
    // holds. Nothing else may be torn.
    let mut torn_tails = Vec::new();
    for copy in &copies {
        if let Some(tail) = torn_tail(copy)? {
            torn_tails.push(tail);
        }
    }
    garbled.retain(|m| !torn_tails.contains(m));
    ensure!(
        garbled.is_empty(),
        "{}: {} records are not whole written lines: {:?}",
        s.name,
        garbled.len(),
        &garbled[..garbled.len().min(3)]
    );
    let twice: Vec<u64> = delivered
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(seq, _)| *seq)
        .collect();
    ensure!(
        twice.is_empty(),
        "{}: lines delivered twice: {twice:?}",
        s.name
    );
    ensure!(
        delivered.keys().all(|seq| *seq < total),
        "{}: a line that was never written",
        s.name
    );
    // Delivered in write order: each record's sequence number grows (one stream, one file
    // at a time).
    let order: Vec<u64> = unique.iter().filter_map(|r| seq_of(&r.message)).collect();
    ensure!(
        order.windows(2).all(|w| w[0] < w[1]),
        "{}: lines out of order",
        s.name
    );

    let mut window = Window {
        copy_ms,
        ..Window::default()
    };
    let mut in_files: BTreeSet<u64> = BTreeSet::new();
    let mut prev_end = 0u64;
    for copy in &copies {
        let seqs = seqs_in(copy)?;
        let first = seqs.first().copied().unwrap_or(prev_end);
        let end = seqs.last().map_or(prev_end, |l| l + 1);
        // Lines written after the previous copy but before this copy's content started were
        // cut by the previous truncation.
        if let Some(last) = window.inherent.last_mut() {
            *last += usize::try_from(first.saturating_sub(prev_end))?;
        }
        window.inherent.push(0);
        let got: Vec<bool> = seqs.iter().map(|q| delivered.contains_key(q)).collect();
        let kept = got.iter().take_while(|g| **g).count();
        ensure!(
            got[kept..].iter().all(|g| !g),
            "{}: {} lost lines inside its delivered part, not only at its end",
            s.name,
            copy.display()
        );
        window.tailer.push(seqs.len() - kept);
        in_files.extend(seqs);
        prev_end = end;
    }
    let final_seqs = seqs_in(&live)?;
    if let (Some(first), Some(last)) = (final_seqs.first(), window.inherent.last_mut()) {
        *last += usize::try_from(first.saturating_sub(prev_end))?;
    }
    let missing_live: Vec<u64> = final_seqs
        .iter()
        .copied()
        .filter(|q| !delivered.contains_key(q))
        .collect();
    ensure!(
        missing_live.is_empty(),
        "{}: lines written after the last truncation were not delivered: {:?}",
        s.name,
        &missing_live[..missing_live.len().min(10)]
    );
    in_files.extend(final_seqs);
    // Ground truth adds up: every written line is in a file or in an inherent gap.
    let inherent_total: usize = window.inherent.iter().sum();
    ensure!(
        in_files.len() + inherent_total == usize::try_from(total)?,
        "{}: {} lines in files + {inherent_total} cut = {total} written",
        s.name,
        in_files.len()
    );
    if s.copy_in_view {
        ensure!(
            window.tailer.iter().all(|n| *n == 0),
            "{}: the copy was in view yet lines of it were lost: {:?}",
            s.name,
            window.tailer
        );
    }
    let (inh_mean, inh_max) = stats(&window.inherent);
    let (tail_mean, tail_max) = stats(&window.tailer);
    let copy_mean = window.copy_ms.iter().sum::<f64>() / window.copy_ms.len().max(1) as f64;
    let per_ms = s.lines_per_sec as f64 / 1e3;
    println!(
        "copytruncate {}: {} rotations, {} lines/s, poll {} ms, copy+truncate {copy_mean:.2} ms: \
         cut between copy and truncate {inh_mean:.1} lines/rotation (max {inh_max}); \
         missed by the tailer {tail_mean:.1} lines/rotation (max {tail_max}) = \
         {:.1} ms of writing (max {:.1} ms)",
        s.name,
        s.rotations,
        s.lines_per_sec,
        s.poll_interval_ms,
        tail_mean / per_ms,
        tail_max as f64 / per_ms
    );
    Ok(window)
}

#[test]
fn copytruncate_with_the_copy_in_view_loses_only_what_the_truncation_cuts() -> Result<()> {
    let w = run_scenario(Scenario {
        name: "copy in view, poll 100 ms",
        copy_in_view: true,
        poll_interval_ms: 100,
        lines_per_sec: 5_000,
        rotations: 15,
        rotate_every_ms: 150,
    })?;
    assert_eq!(w.tailer.len(), 15);
    Ok(())
}

#[test]
fn copytruncate_with_the_copy_out_of_view_loses_only_the_unread_tail() -> Result<()> {
    for (poll, rate) in [(100, 5_000), (10, 5_000)] {
        let w = run_scenario(Scenario {
            name: if poll == 100 {
                "copy out of view, poll 100 ms"
            } else {
                "copy out of view, poll 10 ms"
            },
            copy_in_view: false,
            poll_interval_ms: poll,
            lines_per_sec: rate,
            rotations: 15,
            rotate_every_ms: 150,
        })?;
        assert_eq!(w.tailer.len(), 15);
    }
    Ok(())
}

/// Regression: a file truncated and refilled past the old read position between two polls
/// was read on from that position, in the middle of the new content (a torn first record,
/// the new head never delivered).
#[test]
fn a_truncated_file_that_outgrew_the_read_position_is_read_from_its_start() -> Result<()> {
    let env = Env::new()?;
    let c = env.container("ns", "app-0", "app")?;
    let live = c.join("0.log");
    let mut cfg = env.config();
    // A slow poll, so the truncation and the refill happen while the tailer sleeps, and
    // scans (which compare first lines too) slower still, so the read path must notice.
    cfg.poll_interval_ms = 300;
    cfg.discovery_interval_ms = 20_000;
    let old: String = (0..100).map(line).collect();
    crate::harness::append(&live, old.as_bytes())?;
    let mut run = Run::start(&cfg)?;
    while run.received.len() < 100 {
        ensure!(run.pump(Duration::from_secs(2))? > 0, "no records");
    }
    // Right after a read pass: truncate and write three times as much.
    OpenOptions::new().write(true).open(&live)?.set_len(0)?;
    let new: String = (1000..1300).map(line).collect();
    crate::harness::append(&live, new.as_bytes())?;
    // Not `until_idle`: it waits out a discovery interval first.
    let deadline = Instant::now() + WAIT;
    while dedup(&run.received).len() < 400 && Instant::now() < deadline {
        run.pump(Duration::from_millis(100))?;
    }
    // Anything extra (a torn record, a replay under another id) would arrive by now.
    run.pump(Duration::from_millis(3 * cfg.poll_interval_ms))?;
    let records = run.shutdown()?;
    let seqs: Vec<Option<u64>> = dedup(&records).iter().map(|r| seq_of(&r.message)).collect();
    let expected: Vec<Option<u64>> = (0..100).chain(1000..1300).map(Some).collect();
    assert_eq!(seqs, expected);
    Ok(())
}
