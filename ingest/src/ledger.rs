//! The acknowledgement ledger: which emitted records downstream has committed, and how far
//! each file's checkpoint may therefore advance.
//!
//! Records of one file are not emitted in file order (partial and multi-line joining is per
//! stream, so a stderr line can complete before an earlier stdout partial), and their byte
//! ranges may interleave. A checkpoint `P` is safe only when every record starting before `P`
//! is acknowledged *and ends at or before `P`*, and no record still being assembled starts
//! before `P`. Resuming at such a `P` never splits a record, so a replayed record gets the same
//! `(file_id, offset)` and therefore the same `event.id`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use schemas::SourceRef;

use crate::stats::IngestStats;

#[derive(Debug, Clone, Copy)]
struct Entry {
    offset: u64,
    end: u64,
    acked: bool,
}

#[derive(Debug, Default)]
struct FileLedger {
    /// Emitted records sorted by start offset. Records are emitted almost in offset order
    /// (only a joined partial or multi-line record completes after later lines), so inserts
    /// are nearly always at the back and a deque beats a tree here.
    records: VecDeque<Entry>,
    /// Index just past the last acknowledged record: acknowledgements arrive in emission
    /// order, so the next one is usually here, and this saves a search per record.
    ack_hint: usize,
}

impl FileLedger {
    /// Adds an emitted record; true when it is newly outstanding.
    fn register(&mut self, offset: u64, end: u64) -> bool {
        let entry = Entry {
            offset,
            end,
            acked: false,
        };
        if self.records.back().is_none_or(|b| b.offset < offset) {
            self.records.push_back(entry);
            return true;
        }
        match self.find(offset) {
            Ok(i) => {
                // Emitted again (never expected): it is outstanding once more.
                let was_acked = self.records[i].acked;
                self.records[i] = entry;
                was_acked
            }
            Err(i) => {
                self.records.insert(i, entry);
                true
            }
        }
    }

    /// Acknowledges one record: `None` when unknown, `Some(true)` when it was outstanding,
    /// `Some(false)` when already acknowledged.
    fn ack(&mut self, source: &SourceRef) -> Option<bool> {
        let hinted = self
            .records
            .get(self.ack_hint)
            .is_some_and(|e| e.offset == source.offset);
        let i = if hinted {
            self.ack_hint
        } else {
            self.find(source.offset).ok()?
        };
        self.ack_hint = i + 1;
        let e = &mut self.records[i];
        if e.end != source.end_offset {
            return None;
        }
        let newly = !e.acked;
        e.acked = true;
        Some(newly)
    }

    /// Position of `offset` (`Err`: where it would be inserted). Looks at the last few
    /// entries first: a record completing late is usually only a few records behind.
    fn find(&self, offset: u64) -> Result<usize, usize> {
        /// How far back to scan before falling back to a binary search.
        const NEAR_BACK: usize = 8;
        let len = self.records.len();
        for i in (len.saturating_sub(NEAR_BACK)..len).rev() {
            let o = self.records[i].offset;
            if o == offset {
                return Ok(i);
            }
            if o < offset {
                return Err(i + 1);
            }
        }
        self.records.binary_search_by_key(&offset, |e| e.offset)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Ledger {
    files: HashMap<u64, FileLedger>,
    unacked: usize,
}

/// Shared between the tailer thread (registers, advances) and every [`Acker`] clone.
pub(crate) type SharedLedger = Arc<Mutex<Ledger>>;

impl Ledger {
    /// Records emitted and not acknowledged.
    pub(crate) fn unacked(&self) -> usize {
        self.unacked
    }

    /// True when no file has an outstanding record.
    pub(crate) fn is_empty(&self) -> bool {
        self.files.values().all(|f| f.records.is_empty())
    }

    /// Registers an emitted record. Called before the record is sent.
    #[cfg(test)]
    pub(crate) fn register(&mut self, file_id: u64, offset: u64, end_offset: u64) {
        self.register_many(file_id, [(offset, end_offset)]);
    }

    /// Registers emitted records `(offset, end_offset)` of one file: one map lookup for the
    /// whole run instead of one per record.
    pub(crate) fn register_many(
        &mut self,
        file_id: u64,
        ranges: impl IntoIterator<Item = (u64, u64)>,
    ) {
        let file = self.files.entry(file_id).or_default();
        for (offset, end) in ranges {
            if file.register(offset, end) {
                self.unacked += 1;
            }
        }
    }

    #[cfg(test)]
    fn ack_one(&mut self, source: &SourceRef) -> bool {
        self.ack_many([source]) == 0
    }

    /// Marks records acknowledged; returns how many were unknown (wrong file, offset or end).
    /// Consecutive records of one file share one map lookup.
    fn ack_many<'a>(&mut self, sources: impl IntoIterator<Item = &'a SourceRef>) -> u64 {
        let mut unknown = 0;
        // The file being acknowledged, taken out of the map while its run lasts.
        let mut current: Option<(u64, FileLedger)> = None;
        for source in sources {
            if current.as_ref().map(|(id, _)| *id) != Some(source.file_id) {
                if let Some((id, file)) = current.take() {
                    self.files.insert(id, file);
                }
                current = self
                    .files
                    .remove(&source.file_id)
                    .map(|file| (source.file_id, file));
            }
            match current.as_mut().map(|(_, file)| file.ack(source)) {
                Some(Some(true)) => self.unacked -= 1,
                Some(Some(false)) => {}
                _ => unknown += 1,
            }
        }
        if let Some((id, file)) = current {
            self.files.insert(id, file);
        }
        unknown
    }

    /// Pops the acknowledged prefix of `file_id` that is safe to checkpoint and returns the new
    /// checkpoint, if it moved. `open_start` is the smallest start offset of a record still
    /// being assembled for this file, if any.
    pub(crate) fn advance(&mut self, file_id: u64, open_start: Option<u64>) -> Option<u64> {
        let file = self.files.get_mut(&file_id)?;
        let mut max_end = 0u64;
        let mut safe: Option<(usize, u64)> = None; // (records to pop, checkpoint)
        for (i, e) in file.records.iter().enumerate() {
            if !e.acked {
                break;
            }
            max_end = max_end.max(e.end);
            let next_start = file.records.get(i + 1).map(|n| n.offset);
            let next_start = match (next_start, open_start) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if next_start.is_none_or(|n| n >= max_end) {
                safe = Some((i + 1, max_end));
            }
        }
        let (pop, checkpoint) = safe?;
        file.records.drain(..pop);
        file.ack_hint = file.ack_hint.saturating_sub(pop);
        if file.records.is_empty() {
            self.files.remove(&file_id);
        }
        Some(checkpoint)
    }

    /// Forgets everything about a file (it was dropped from tracking without being finished).
    pub(crate) fn has_file(&self, file_id: u64) -> bool {
        self.files.contains_key(&file_id)
    }
}

/// Acknowledges committed records so their files' checkpoints may advance. Cheap to clone and
/// safe to call from any thread.
#[derive(Clone, Debug)]
pub struct Acker {
    pub(crate) ledger: SharedLedger,
    pub(crate) stats: Arc<IngestStats>,
}

impl Acker {
    /// Downstream committed these records: their files' checkpoints may advance to their
    /// `end_offset` (only to the end of a contiguous acknowledged prefix; see the module docs).
    /// Unknown or repeated acknowledgements are counted and ignored.
    pub fn ack<'a>(&self, sources: impl IntoIterator<Item = &'a SourceRef>) {
        let mut unknown = 0u64;
        {
            let mut ledger = match self.ledger.lock() {
                Ok(l) => l,
                Err(poisoned) => poisoned.into_inner(),
            };
            unknown += ledger.ack_many(sources);
            IngestStats::set(&self.stats.unacked_records, ledger.unacked() as u64);
        }
        IngestStats::add(&self.stats.acks_unknown, unknown);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(offset: u64, end_offset: u64) -> SourceRef {
        SourceRef {
            path: String::new(),
            file_id: 1,
            offset,
            end_offset,
        }
    }

    #[test]
    fn advances_only_over_a_contiguous_acknowledged_prefix() {
        let mut l = Ledger::default();
        for (a, b) in [(0, 10), (10, 20), (20, 30)] {
            l.register(1, a, b);
        }
        assert!(l.ack_one(&src(10, 20)));
        assert_eq!(l.advance(1, None), None);
        assert!(l.ack_one(&src(0, 10)));
        assert_eq!(l.advance(1, None), Some(20));
        assert_eq!(l.unacked(), 1);
        assert!(!l.ack_one(&src(20, 31)), "wrong end offset is not an ack");
        assert!(l.ack_one(&src(20, 30)));
        assert_eq!(l.advance(1, Some(30)), Some(30));
        assert!(l.is_empty());
    }

    #[test]
    fn never_checkpoints_inside_an_interleaved_record() {
        // stdout partial record spans [0, 300) around a stderr record at [100, 200).
        let mut l = Ledger::default();
        l.register(1, 100, 200);
        l.register(1, 0, 300);
        l.register(1, 300, 400);
        assert!(l.ack_one(&src(0, 300)));
        // [100,200) unacked: nothing before 100 is a safe stop, since [0,300) spans it.
        assert_eq!(l.advance(1, None), None);
        assert!(l.ack_one(&src(300, 400)));
        assert_eq!(l.advance(1, None), None);
        assert!(l.ack_one(&src(100, 200)));
        assert_eq!(l.advance(1, None), Some(400));
    }

    #[test]
    fn an_open_record_holds_the_checkpoint() {
        let mut l = Ledger::default();
        l.register(1, 50, 60);
        assert!(l.ack_one(&src(50, 60)));
        // A stdout partial started at 0 is still being assembled.
        assert_eq!(l.advance(1, Some(0)), None);
        assert_eq!(l.advance(1, Some(60)), Some(60));
    }
}
