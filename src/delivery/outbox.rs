//! A small durable queue of alerts for one delivery target: one file per alert, named by a
//! sequence number, written atomically (temp file, fsync, rename, fsync dir).
//!
//! Alerts are rare, so a file per alert is cheap and makes the state obvious to an operator
//! (`ls` shows what is pending).

use std::collections::VecDeque;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

const SUFFIX: &str = ".json";

/// Pending alerts for one target, oldest first.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    max_alerts: usize,
    next_seq: u64,
    pending: VecDeque<(u64, schemas::Alert)>,
}

impl Outbox {
    /// Opens (creating) the outbox directory and loads what a previous run left. Files that do
    /// not parse are moved aside as `<name>.corrupt` and reported, not silently skipped.
    ///
    /// # Errors
    /// The directory cannot be created or read.
    pub fn open(dir: &Path, max_alerts: usize) -> anyhow::Result<Outbox> {
        fs::create_dir_all(dir)
            .with_context(|| format!("failed to create alert outbox {}", dir.display()))?;
        let mut entries = Vec::new();
        for entry in fs::read_dir(dir)
            .with_context(|| format!("failed to read alert outbox {}", dir.display()))?
        {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some(seq) = name
                .strip_suffix(SUFFIX)
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            let parsed = fs::read(&path)
                .map_err(anyhow::Error::from)
                .and_then(|b| serde_json::from_slice::<schemas::Alert>(&b).map_err(Into::into));
            match parsed {
                Ok(alert) => entries.push((seq, alert)),
                Err(err) => {
                    tracing::error!(path = %path.display(), error = %err, "unreadable alert in outbox, moved aside");
                    let _ = fs::rename(&path, path.with_extension("corrupt"));
                }
            }
        }
        entries.sort_by_key(|(seq, _)| *seq);
        let next_seq = entries.last().map_or(0, |(seq, _)| seq + 1);
        Ok(Outbox {
            dir: dir.to_path_buf(),
            max_alerts,
            next_seq,
            pending: entries.into(),
        })
    }

    /// Persists an alert at the back. Returns how many of the oldest alerts were dropped to
    /// stay within the bound (normally 0).
    ///
    /// # Errors
    /// The alert could not be written durably.
    pub fn push(&mut self, alert: &schemas::Alert) -> anyhow::Result<u64> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let path = self.path_of(seq);
        let tmp = path.with_extension("tmp");
        let body = serde_json::to_vec(alert)?;
        {
            let mut file = fs::File::create(&tmp)
                .with_context(|| format!("failed to create {}", tmp.display()))?;
            file.write_all(&body)?;
            file.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        fs::File::open(&self.dir)?.sync_all()?;
        self.pending.push_back((seq, alert.clone()));
        let mut dropped = 0;
        while self.pending.len() > self.max_alerts {
            if let Some((old, _)) = self.pending.pop_front() {
                let _ = fs::remove_file(self.path_of(old));
                dropped += 1;
            }
        }
        Ok(dropped)
    }

    /// Up to `max` oldest pending alerts with their sequence numbers.
    pub fn peek(&self, max: usize) -> Vec<(u64, schemas::Alert)> {
        self.pending.iter().take(max).cloned().collect()
    }

    /// Removes delivered alerts. Returns how many were removed.
    ///
    /// # Errors
    /// A file could not be removed (it would be re-sent after a restart).
    pub fn remove(&mut self, seqs: &[u64]) -> anyhow::Result<usize> {
        let before = self.pending.len();
        self.pending.retain(|(seq, _)| !seqs.contains(seq));
        for seq in seqs {
            match fs::remove_file(self.path_of(*seq)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(before - self.pending.len())
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    fn path_of(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}{SUFFIX}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(name: &str) -> schemas::Alert {
        let mut labels = std::collections::BTreeMap::new();
        labels.insert("alertname".to_string(), name.to_string());
        schemas::Alert {
            fingerprint: schemas::alert_fingerprint(&labels),
            labels,
            annotations: Default::default(),
            starts_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("valid"),
            ends_at: None,
            generator_url: String::new(),
            status: schemas::AlertStatus::Firing,
        }
    }

    #[test]
    fn survives_reopen_and_keeps_order() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut outbox = Outbox::open(dir.path(), 10)?;
        outbox.push(&alert("A"))?;
        outbox.push(&alert("B"))?;
        outbox.push(&alert("C"))?;
        let first = outbox.peek(1)[0].0;
        outbox.remove(&[first])?;
        drop(outbox);
        let outbox = Outbox::open(dir.path(), 10)?;
        let names: Vec<String> = outbox
            .peek(10)
            .iter()
            .map(|(_, a)| a.name().to_string())
            .collect();
        assert_eq!(names, ["B", "C"]);
        Ok(())
    }

    #[test]
    fn bound_drops_oldest_and_counts() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut outbox = Outbox::open(dir.path(), 2)?;
        assert_eq!(outbox.push(&alert("A"))?, 0);
        assert_eq!(outbox.push(&alert("B"))?, 0);
        assert_eq!(outbox.push(&alert("C"))?, 1);
        assert_eq!(outbox.peek(5)[0].1.name(), "B");
        assert_eq!(fs::read_dir(dir.path())?.count(), 2);
        Ok(())
    }

    #[test]
    fn corrupt_file_is_moved_aside_not_fatal() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        fs::write(dir.path().join("00000000000000000003.json"), b"{not json")?;
        let outbox = Outbox::open(dir.path(), 5)?;
        assert!(outbox.is_empty());
        assert!(dir.path().join("00000000000000000003.corrupt").exists());
        Ok(())
    }
}
