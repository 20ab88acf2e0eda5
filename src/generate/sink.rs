//! Writes records as CRI lines into the `/var/log/pods` layout, with kubelet-style rotation.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Datelike, Timelike, Utc};

/// Name of the live file in each container directory, as the kubelet writes it.
pub(crate) const LIVE_FILE: &str = "0.log";
/// Buffer per container file: large enough that a write syscall carries hundreds of lines
/// (the 1 GiB benchmark workload is syscall-bound with the default 8 KiB).
const WRITE_BUFFER_BYTES: usize = 256 * 1024;
/// The kubelet's default `containerLogMaxFiles` minus the live file: how many rotated files
/// live mode keeps. Batch mode never deletes, so a reader that starts later loses nothing.
pub(crate) const MAX_ROTATED_FILES_LIVE: usize = 4;
const NANOS_PER_SEC: i64 = 1_000_000_000;

/// The container stream a line was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Per-second pieces of a timestamp, recomputed only when the second changes: formatting a
/// full timestamp per line through chrono would dominate the generator's cost.
#[derive(Debug, Clone)]
pub(crate) struct SecondParts {
    pub(crate) unix_s: i64,
    /// `2026-12-04T16:31:36`
    pub(crate) iso: String,
    /// `2026-12-04 16:31:36` (Python `logging`'s asctime without the milliseconds)
    pub(crate) py: String,
    /// `04/Dec/2026:16:31:36` (nginx `$time_local` without the zone)
    pub(crate) nginx: String,
    /// `1204 16:31:36` (klog's month, day and time)
    pub(crate) klog: String,
    /// `20261204-163136` (the kubelet's rotated-file suffix)
    pub(crate) stamp: String,
}

impl SecondParts {
    fn new(unix_s: i64) -> SecondParts {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let dt: DateTime<Utc> = DateTime::from_timestamp(unix_s, 0).unwrap_or_default();
        let (y, mo, d) = (dt.year(), dt.month(), dt.day());
        let (h, mi, s) = (dt.hour(), dt.minute(), dt.second());
        SecondParts {
            unix_s,
            iso: format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}"),
            py: format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"),
            nginx: format!(
                "{d:02}/{}/{y:04}:{h:02}:{mi:02}:{s:02}",
                MONTHS[(mo as usize).saturating_sub(1) % 12]
            ),
            klog: format!("{mo:02}{d:02} {h:02}:{mi:02}:{s:02}"),
            stamp: format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}"),
        }
    }
}

/// A cache of [`SecondParts`] for monotone (or nearly monotone) timestamps.
#[derive(Debug, Clone)]
pub(crate) struct TimeCache {
    parts: SecondParts,
}

impl TimeCache {
    pub(crate) fn new() -> TimeCache {
        TimeCache {
            parts: SecondParts::new(0),
        }
    }

    /// The parts of the second containing `t_ns` (Unix nanoseconds) and the nanoseconds
    /// within it.
    pub(crate) fn at(&mut self, t_ns: i64) -> (&SecondParts, u32) {
        let s = t_ns.div_euclid(NANOS_PER_SEC);
        if s != self.parts.unix_s {
            self.parts = SecondParts::new(s);
        }
        let nanos = t_ns.rem_euclid(NANOS_PER_SEC) as u32;
        (&self.parts, nanos)
    }
}

/// One container's log directory: the live `0.log` and the files rotated out of it.
#[derive(Debug)]
struct ContainerLog {
    dir: PathBuf,
    writer: BufWriter<File>,
    live_bytes: u64,
    live_records: u64,
    /// Unix second of the last rotation: the rotated name has one-second resolution, so a
    /// second rotation waits for the next second (the kubelet checks only every 10 s anyway).
    last_rotation_s: Option<i64>,
    /// Rotated files still on disk, oldest first, with their record counts.
    rotated: Vec<(PathBuf, u64)>,
}

/// Totals the sink has written.
#[derive(Debug, Clone, Default)]
pub(crate) struct SinkStats {
    pub(crate) records: u64,
    pub(crate) physical_lines: u64,
    pub(crate) bytes: u64,
    pub(crate) rotations: u64,
}

/// All container logs of one workload.
#[derive(Debug)]
pub(crate) struct Sink {
    logs: Vec<ContainerLog>,
    rotate_bytes: u64,
    /// `Some(n)`: keep at most `n` rotated files per container (live mode).
    keep_rotated: Option<usize>,
    line: Vec<u8>,
    time: TimeCache,
    pub(crate) stats: SinkStats,
}

impl Sink {
    pub(crate) fn new(rotate_bytes: u64, keep_rotated: Option<usize>) -> Sink {
        Sink {
            logs: Vec::new(),
            rotate_bytes,
            keep_rotated,
            line: Vec::with_capacity(4096),
            time: TimeCache::new(),
            stats: SinkStats::default(),
        }
    }

    /// Creates `dir` and its live file; returns the handle records are written to.
    ///
    /// # Errors
    /// When the directory or file cannot be created.
    pub(crate) fn add_container(&mut self, dir: PathBuf) -> anyhow::Result<usize> {
        fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
        let writer = open_live(&dir)?;
        self.logs.push(ContainerLog {
            dir,
            writer,
            live_bytes: 0,
            live_records: 0,
            last_rotation_s: None,
            rotated: Vec::new(),
        });
        Ok(self.logs.len() - 1)
    }

    /// Writes one record: each `\n`-separated line of `msg` becomes its own full (`F`) CRI
    /// line with the same timestamp and stream, as a runtime writes a multi-line print.
    ///
    /// # Errors
    /// On write or rotation failure.
    pub(crate) fn write_record(
        &mut self,
        log: usize,
        t_ns: i64,
        stream: Stream,
        msg: &str,
    ) -> anyhow::Result<()> {
        let rotate_bytes = self.rotate_bytes;
        let (parts, nanos) = self.time.at(t_ns);
        let c = &mut self.logs[log];
        if c.live_bytes >= rotate_bytes && c.last_rotation_s != Some(parts.unix_s) {
            let stamp = parts.stamp.clone();
            let unix_s = parts.unix_s;
            rotate(c, &stamp, self.keep_rotated)?;
            c.last_rotation_s = Some(unix_s);
            self.stats.rotations += 1;
        }
        let (parts, _) = self.time.at(t_ns);
        self.line.clear();
        let mut lines = 0u64;
        for text in msg.split('\n') {
            self.line.extend_from_slice(parts.iso.as_bytes());
            push_nanos(&mut self.line, nanos);
            self.line.extend_from_slice(b"Z ");
            self.line.extend_from_slice(stream.as_str().as_bytes());
            self.line.extend_from_slice(b" F ");
            self.line.extend_from_slice(text.as_bytes());
            self.line.push(b'\n');
            lines += 1;
        }
        let c = &mut self.logs[log];
        c.writer
            .write_all(&self.line)
            .with_context(|| format!("failed to write to {}", c.dir.join(LIVE_FILE).display()))?;
        let n = self.line.len() as u64;
        c.live_bytes += n;
        c.live_records += 1;
        self.stats.bytes += n;
        self.stats.records += 1;
        self.stats.physical_lines += lines;
        Ok(())
    }

    /// Flushes every buffer so a concurrent reader sees whole lines.
    ///
    /// # Errors
    /// On write failure.
    pub(crate) fn flush(&mut self) -> anyhow::Result<()> {
        for c in &mut self.logs {
            c.writer
                .flush()
                .with_context(|| format!("failed to flush {}", c.dir.display()))?;
        }
        Ok(())
    }

    /// Flushes and lists every file on disk with its record count: rotated files oldest
    /// first, then the live file, per container.
    ///
    /// # Errors
    /// On write failure.
    pub(crate) fn finish(mut self) -> anyhow::Result<(Vec<(PathBuf, u64)>, SinkStats)> {
        self.flush()?;
        let mut files = Vec::new();
        for c in self.logs {
            files.extend(c.rotated);
            files.push((c.dir.join(LIVE_FILE), c.live_records));
        }
        Ok((files, self.stats))
    }
}

fn open_live(dir: &Path) -> anyhow::Result<BufWriter<File>> {
    let path = dir.join(LIVE_FILE);
    let file =
        File::create(&path).with_context(|| format!("failed to create {}", path.display()))?;
    Ok(BufWriter::with_capacity(WRITE_BUFFER_BYTES, file))
}

/// Renames the live file to `0.log.<stamp>` and starts a fresh one, as the kubelet does.
fn rotate(c: &mut ContainerLog, stamp: &str, keep: Option<usize>) -> anyhow::Result<()> {
    c.writer
        .flush()
        .with_context(|| format!("failed to flush {}", c.dir.display()))?;
    let live = c.dir.join(LIVE_FILE);
    let rotated = c.dir.join(format!("{LIVE_FILE}.{stamp}"));
    // A fresh file is opened under the same name only after the rename, so a reader holding
    // the old descriptor keeps reading the rotated file to its end.
    fs::rename(&live, &rotated).with_context(|| {
        format!(
            "failed to rotate {} to {}",
            live.display(),
            rotated.display()
        )
    })?;
    c.writer = open_live(&c.dir)?;
    c.rotated.push((rotated, c.live_records));
    c.live_bytes = 0;
    c.live_records = 0;
    if let Some(keep) = keep {
        while c.rotated.len() > keep {
            let (oldest, _) = c.rotated.remove(0);
            fs::remove_file(&oldest)
                .with_context(|| format!("failed to delete {}", oldest.display()))?;
        }
    }
    Ok(())
}

/// Appends `.123456789` (always nine digits, as CRI runtimes write RFC 3339 nanoseconds).
fn push_nanos(out: &mut Vec<u8>, nanos: u32) {
    let mut digits = [b'0'; 10];
    digits[0] = b'.';
    let mut n = nanos;
    for i in (1..10).rev() {
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_parts_match_chrono() -> anyhow::Result<()> {
        let t = DateTime::parse_from_rfc3339("2026-12-04T16:31:36.123456789Z")?.with_timezone(&Utc);
        let t_ns = t.timestamp_nanos_opt().context("in range")?;
        let mut cache = TimeCache::new();
        let (p, nanos) = cache.at(t_ns);
        assert_eq!(p.iso, "2026-12-04T16:31:36");
        assert_eq!(p.py, "2026-12-04 16:31:36");
        assert_eq!(p.nginx, "04/Dec/2026:16:31:36");
        assert_eq!(p.klog, "1204 16:31:36");
        assert_eq!(p.stamp, "20261204-163136");
        assert_eq!(nanos, 123_456_789);
        let mut out = Vec::new();
        push_nanos(&mut out, 5);
        assert_eq!(out, b".000000005");
        Ok(())
    }

    #[test]
    fn live_rotation_keeps_only_the_newest_files() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut sink = Sink::new(1024, Some(2));
        let c = sink.add_container(dir.path().join("ns_pod_uid").join("app"))?;
        let t0 = 1_796_401_896_000_000_000;
        let big = "x".repeat(2000);
        for i in 0..6 {
            sink.write_record(c, t0 + i * NANOS_PER_SEC, Stream::Stdout, &big)?;
        }
        let (files, stats) = sink.finish()?;
        assert_eq!(stats.rotations, 5);
        let names: Vec<String> = files
            .iter()
            .filter_map(|(p, _)| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        assert_eq!(
            names,
            ["0.log.20261204-163140", "0.log.20261204-163141", "0.log"]
        );
        let on_disk = fs::read_dir(dir.path().join("ns_pod_uid").join("app"))?.count();
        assert_eq!(on_disk, 3);
        Ok(())
    }

    #[test]
    fn same_second_rotation_waits_for_the_next_second() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut sink = Sink::new(1024, None);
        let c = sink.add_container(dir.path().join("ns_pod_uid").join("app"))?;
        let t0 = 1_796_401_896_000_000_000;
        let big = "x".repeat(2000);
        for i in 0..4 {
            // Four records within one second: one rotation, then the live file grows.
            sink.write_record(c, t0 + i * 1_000_000, Stream::Stdout, &big)?;
        }
        sink.write_record(c, t0 + NANOS_PER_SEC, Stream::Stdout, "next second")?;
        let (files, stats) = sink.finish()?;
        assert_eq!(stats.rotations, 2);
        let counts: Vec<u64> = files.iter().map(|(_, n)| *n).collect();
        assert_eq!(counts, [1, 3, 1]);
        Ok(())
    }

    #[test]
    fn multi_line_record_is_one_cri_line_per_line_and_rotation_renames() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut sink = Sink::new(100, None);
        let c = sink.add_container(dir.path().join("ns_pod_uid").join("app"))?;
        let t0 = 1_796_401_896_000_000_000; // 2026-12-04T16:31:36Z
        sink.write_record(
            c,
            t0,
            Stream::Stderr,
            "Traceback (most recent call last):\n  File \"x.py\", line 1, in f\nValueError: boom",
        )?;
        // Over 100 bytes now: the next record rotates first, named after its event time.
        sink.write_record(c, t0 + 2 * NANOS_PER_SEC, Stream::Stdout, "after")?;
        let (files, stats) = sink.finish()?;
        assert_eq!(stats.records, 2);
        assert_eq!(stats.physical_lines, 4);
        assert_eq!(stats.rotations, 1);
        assert_eq!(files.len(), 2);
        assert!(
            files[0]
                .0
                .to_string_lossy()
                .ends_with("0.log.20261204-163138"),
            "{files:?}"
        );
        assert_eq!(files[0].1, 1);
        let rotated = fs::read_to_string(&files[0].0)?;
        assert_eq!(rotated.lines().count(), 3);
        assert!(rotated.starts_with("2026-12-04T16:31:36.000000000Z stderr F Traceback"));
        let live = fs::read_to_string(&files[1].0)?;
        assert_eq!(live, "2026-12-04T16:31:38.000000000Z stdout F after\n");
        Ok(())
    }
}
