//! [`Batch`]: the records the tailer hands downstream, and how their memory comes back.
//!
//! A record's strings are allocated on the tailer thread and used on another one. When that
//! consumer freed them, the allocator had to take each freed block back on the tailer thread,
//! one cache-line transfer from the consumer's core per block, serialised by the free list
//! (mimalloc's `_mi_page_free_collect` was a third of the tailer's CPU when the two threads
//! ran on separate idle cores; glibc's arena lock did the same). So dropping a [`Records`]
//! whole does not free it: it goes back to the tailer, which drops the records on its own
//! thread, where freeing is local, and reuses the vector for a later batch. Only a bounded
//! number of batches can be on their way back; past that, the consumer frees as before.

use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};

use crossbeam_channel::{Receiver, Sender};
use schemas::RawRecord;

/// Batches waiting to be taken back by the tailer. The tailer cuts about three batches per
/// 256 KiB read and takes returned ones back before each send, so four rarely fill; when
/// they do, the consumer frees the batch itself. Bounds the records held for freeing to
/// four batches (~0.5 MiB of ~350-byte lines).
pub(crate) const RETURNING_BATCHES: usize = 4;

/// Vectors kept for reuse as the next batches, so a batch's vector is not allocated anew
/// either.
const SPARE_VECS: usize = 2;

/// A batch of records, in the order they were assembled.
#[derive(Debug, Default)]
pub struct Batch {
    pub records: Records,
}

/// The records of a [`Batch`]: a `Vec<RawRecord>` (it derefs to one and iterates like one)
/// that, when dropped whole, goes back to the tailer to be freed there (see the module docs).
/// Records moved out (`for r in batch.records`, [`Records::into_vec`]) are the caller's to
/// drop, as with a plain vector.
#[derive(Default)]
pub struct Records {
    records: Vec<RawRecord>,
    /// The tailer's return channel; `None` for records not made by a tailer.
    home: Option<Sender<Vec<RawRecord>>>,
}

impl Records {
    /// The records as a plain vector, detached from the tailer.
    pub fn into_vec(mut self) -> Vec<RawRecord> {
        std::mem::take(&mut self.records)
    }
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.records.fmt(f)
    }
}

impl From<Vec<RawRecord>> for Records {
    fn from(records: Vec<RawRecord>) -> Records {
        Records {
            records,
            home: None,
        }
    }
}

impl Deref for Records {
    type Target = Vec<RawRecord>;

    fn deref(&self) -> &Vec<RawRecord> {
        &self.records
    }
}

impl DerefMut for Records {
    fn deref_mut(&mut self) -> &mut Vec<RawRecord> {
        &mut self.records
    }
}

impl IntoIterator for Records {
    type Item = RawRecord;
    type IntoIter = std::vec::IntoIter<RawRecord>;

    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

impl<'a> IntoIterator for &'a Records {
    type Item = &'a RawRecord;
    type IntoIter = std::slice::Iter<'a, RawRecord>;

    fn into_iter(self) -> Self::IntoIter {
        self.records.iter()
    }
}

impl<'a> IntoIterator for &'a mut Records {
    type Item = &'a mut RawRecord;
    type IntoIter = std::slice::IterMut<'a, RawRecord>;

    fn into_iter(self) -> Self::IntoIter {
        self.records.iter_mut()
    }
}

impl Drop for Records {
    fn drop(&mut self) {
        if let Some(home) = &self.home
            && self.records.capacity() > 0
        {
            // Full or gone (the tailer stopped): the records are freed here instead.
            let _ = home.try_send(std::mem::take(&mut self.records));
        }
    }
}

/// The tailer's end: cuts records into batches of at most `max_records` records and
/// `max_bytes` of messages as they are emitted (each record written once, into a vector of
/// the right size), wraps them for sending and takes returned ones back.
#[derive(Debug)]
pub(crate) struct Batcher {
    max_records: usize,
    max_bytes: usize,
    /// The batch being filled and its message bytes.
    open: Vec<RawRecord>,
    open_bytes: usize,
    /// Full batches, oldest first, waiting to be sent.
    full: VecDeque<Vec<RawRecord>>,
    home: Sender<Vec<RawRecord>>,
    returned: Receiver<Vec<RawRecord>>,
    spare: Vec<Vec<RawRecord>>,
}

impl Batcher {
    pub(crate) fn new(max_records: usize, max_bytes: usize) -> Batcher {
        let (home, returned) = crossbeam_channel::bounded(RETURNING_BATCHES);
        Batcher {
            max_records,
            max_bytes,
            open: Vec::new(),
            open_bytes: 0,
            full: VecDeque::new(),
            home,
            returned,
            spare: Vec::new(),
        }
    }

    /// Appends a record, starting a new batch when it would not fit the open one.
    #[inline]
    pub(crate) fn push(&mut self, record: RawRecord) {
        let len = record.message.len();
        if !self.open.is_empty()
            && (self.open.len() >= self.max_records || self.open_bytes + len > self.max_bytes)
        {
            self.seal();
        }
        if self.open.capacity() == 0 {
            self.open = self.vec();
        }
        self.open_bytes += len;
        self.open.push(record);
    }

    fn seal(&mut self) {
        // The next vector is taken when the next record comes.
        self.full.push_back(std::mem::take(&mut self.open));
        self.open_bytes = 0;
    }

    /// True when no record waits to be sent.
    pub(crate) fn is_empty(&self) -> bool {
        self.open.is_empty() && self.full.is_empty()
    }

    /// True when a batch is full and should be sent.
    pub(crate) fn has_full(&self) -> bool {
        !self.full.is_empty() || self.open.len() >= self.max_records
    }

    /// The oldest batch to send: a full one, or with `all` also the open one however short.
    pub(crate) fn next(&mut self, all: bool) -> Option<Batch> {
        if self.full.is_empty() && !self.open.is_empty() && (all || self.has_full()) {
            self.seal();
        }
        let records = self.full.pop_front()?;
        Some(Batch {
            records: Records {
                records,
                home: Some(self.home.clone()),
            },
        })
    }

    /// Drops the records of every returned batch on this thread and keeps a few of their
    /// vectors for reuse.
    pub(crate) fn take_back(&mut self) {
        while let Ok(mut records) = self.returned.try_recv() {
            records.clear();
            if self.spare.len() < SPARE_VECS {
                self.spare.push(records);
            }
        }
    }

    /// An empty vector for the next batch, reused when one came back.
    fn vec(&mut self) -> Vec<RawRecord> {
        match self.spare.pop() {
            Some(v) if v.capacity() >= self.max_records => v,
            _ => Vec::with_capacity(self.max_records),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(message: &str) -> RawRecord {
        RawRecord {
            v: schemas::RAW_RECORD_VERSION,
            time: None,
            stream: None,
            message: message.to_string(),
            source: schemas::SourceRef::default(),
            kubernetes: Default::default(),
            service: None,
            errors: Vec::new(),
            lines: 1,
        }
    }

    fn messages(b: &Batch) -> Vec<&str> {
        b.records.iter().map(|r| r.message.as_str()).collect()
    }

    #[test]
    fn cuts_batches_by_records_and_bytes_in_order() -> Result<(), String> {
        let mut b = Batcher::new(3, 10);
        for m in ["a", "b", "c", "d", "eeeeeeee", "ffff", "g"] {
            b.push(record(m));
        }
        assert!(b.has_full());
        let first = b.next(false).ok_or("a full batch")?;
        assert_eq!(messages(&first), ["a", "b", "c"]);
        // "d" + "eeeeeeee" is 9 bytes; "ffff" would make 13.
        let second = b.next(false).ok_or("a batch cut by bytes")?;
        assert_eq!(messages(&second), ["d", "eeeeeeee"]);
        assert!(!b.has_full());
        assert!(b.next(false).is_none(), "a short batch waits");
        let last = b.next(true).ok_or("the short batch")?;
        assert_eq!(messages(&last), ["ffff", "g"]);
        assert!(b.is_empty() && b.next(true).is_none());
        // One message over the byte limit still makes a batch of its own.
        b.push(record("xxxxxxxxxxxxxxxx"));
        b.push(record("y"));
        assert_eq!(
            messages(&b.next(false).ok_or("oversized")?),
            ["xxxxxxxxxxxxxxxx"]
        );
        Ok(())
    }

    #[test]
    fn a_dropped_batch_comes_back_and_a_moved_out_one_does_not() -> Result<(), String> {
        let mut b = Batcher::new(2, 1 << 20);
        for m in ["a", "b", "c"] {
            b.push(record(m));
        }
        let first = b.next(false).ok_or("full")?;
        assert_eq!((&first.records).into_iter().count(), 2);
        drop(first);
        // Moved out: the caller owns the records, nothing returns.
        let moved: Vec<RawRecord> = b.next(true).ok_or("rest")?.records.into_iter().collect();
        assert_eq!(moved[0].message, "c");
        let returned: Vec<Vec<RawRecord>> = b.returned.try_iter().collect();
        assert_eq!(returned.len(), 1);
        assert_eq!(returned[0][1].message, "b");
        Ok(())
    }

    #[test]
    fn returns_are_bounded_and_vectors_are_reused() -> Result<(), String> {
        let mut b = Batcher::new(1, 1 << 20);
        let mut batches = Vec::new();
        for i in 0..RETURNING_BATCHES + 3 {
            b.push(record(&i.to_string()));
            batches.push(b.next(false).ok_or("full")?);
        }
        // The extra batches are freed by whoever drops them.
        drop(batches);
        assert_eq!(b.returned.len(), RETURNING_BATCHES);
        b.take_back();
        assert!(b.returned.is_empty());
        assert_eq!(b.spare.len(), SPARE_VECS);
        assert!(b.spare.iter().all(Vec::is_empty));
        b.push(record("z"));
        assert_eq!(
            b.spare.len(),
            SPARE_VECS - 1,
            "the open batch reuses a vector"
        );
        Ok(())
    }

    #[test]
    fn records_without_a_tailer_drop_normally() {
        let mut records = Records::from(vec![record("x")]);
        records.push(record("y"));
        for r in &mut records {
            r.lines = 2;
        }
        assert!(records.iter().all(|r| r.lines == 2));
        assert_eq!(records.into_vec().len(), 2);
    }
}
