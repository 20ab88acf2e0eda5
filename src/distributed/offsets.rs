//! [`OffsetTracker`]: which consumed offsets of each partition have had all their outputs
//! acknowledged, so a processor commits only the contiguous acknowledged prefix — and no
//! further than the first offset of any detection bucket whose partials are not yet published
//! ([`OffsetTracker::hold`], [`OffsetTracker::release`]), so a crash replays every event of an
//! unpublished bucket.
//!
//! Each assignment of a partition gets a new epoch; acknowledgements carry the epoch they were
//! produced under, so a late delivery report for a partition that was revoked (and perhaps
//! assigned again) never advances the new assignment's commit position.

use std::collections::{BTreeMap, VecDeque};

/// Identifies one consumed message's outputs in a delivery report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputRef {
    pub partition: i32,
    pub offset: i64,
    pub epoch: u64,
}

#[derive(Debug, Default)]
struct PartitionState {
    epoch: u64,
    /// Consumed offsets in order, with whether their output is acknowledged.
    pending: VecDeque<(i64, bool)>,
    /// Next offset to commit (last acknowledged contiguous offset + 1), if it moved since the
    /// last [`OffsetTracker::take_committable`].
    committable: Option<i64>,
    dirty: bool,
    /// Open detection buckets: bucket index → first offset counted in it.
    holds: BTreeMap<i64, i64>,
}

impl PartitionState {
    /// The acknowledged prefix, capped at the oldest held offset.
    fn commit_position(&self) -> Option<i64> {
        let acked = self.committable?;
        Some(match self.holds.values().min() {
            Some(&held) => acked.min(held),
            None => acked,
        })
    }
}

/// Per-partition contiguous acknowledged offsets.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: BTreeMap<i32, PartitionState>,
    next_epoch: u64,
    in_flight: usize,
}

impl OffsetTracker {
    /// A partition was assigned: starts a new epoch for it, forgetting any earlier state.
    pub fn assign(&mut self, partition: i32) {
        self.revoke(partition);
        self.next_epoch += 1;
        self.partitions.insert(
            partition,
            PartitionState {
                epoch: self.next_epoch,
                ..PartitionState::default()
            },
        );
    }

    /// A partition was revoked: forgets it; later acknowledgements for it are ignored.
    pub fn revoke(&mut self, partition: i32) {
        if let Some(state) = self.partitions.remove(&partition) {
            self.in_flight -= state.pending.iter().filter(|(_, done)| !done).count();
        }
    }

    /// Records that `offset` of `partition` was consumed and its output produced. Returns the
    /// reference its delivery report must carry, or `None` when the partition is not assigned
    /// (a message polled after its revocation; it must not be processed).
    ///
    /// An offset at or below the previous one means the consumer went back (an offset reset
    /// after a truncated log): the partition starts a new epoch, so acknowledgements of the old
    /// sequence cannot move the commit position of the new one.
    pub fn consumed(&mut self, partition: i32, offset: i64) -> Option<InputRef> {
        let went_back = self
            .partitions
            .get(&partition)?
            .pending
            .back()
            .is_some_and(|(o, _)| *o >= offset);
        if went_back {
            self.assign(partition);
        }
        let state = self.partitions.get_mut(&partition)?;
        state.pending.push_back((offset, false));
        self.in_flight += 1;
        Some(InputRef {
            partition,
            offset,
            epoch: state.epoch,
        })
    }

    /// The output of `input` was acknowledged. Returns false (and changes nothing) for a stale
    /// or unknown reference.
    pub fn acknowledged(&mut self, input: InputRef) -> bool {
        let Some(state) = self.partitions.get_mut(&input.partition) else {
            return false;
        };
        if state.epoch != input.epoch {
            return false;
        }
        let Ok(i) = state
            .pending
            .binary_search_by_key(&input.offset, |(o, _)| *o)
        else {
            return false;
        };
        if state.pending[i].1 {
            return false;
        }
        state.pending[i].1 = true;
        self.in_flight -= 1;
        while let Some(&(offset, true)) = state.pending.front() {
            state.pending.pop_front();
            state.committable = Some(offset + 1);
            state.dirty = true;
        }
        true
    }

    /// The event at `input` was counted in detection bucket `bucket`, which is not published
    /// yet: commits stop at the bucket's first offset until [`OffsetTracker::release`].
    pub fn hold(&mut self, input: InputRef, bucket: i64) {
        if let Some(state) = self.partitions.get_mut(&input.partition)
            && state.epoch == input.epoch
        {
            state.holds.entry(bucket).or_insert(input.offset);
        }
    }

    /// The partials of every bucket up to `through` of `partition` are acknowledged: their
    /// events may be committed.
    pub fn release(&mut self, partition: i32, epoch: u64, through: i64) {
        if let Some(state) = self.partitions.get_mut(&partition)
            && state.epoch == epoch
        {
            state.holds = state.holds.split_off(&(through + 1));
            state.dirty = true;
        }
    }

    /// The current assignment epoch of `partition`.
    pub fn epoch(&self, partition: i32) -> Option<u64> {
        self.partitions.get(&partition).map(|s| s.epoch)
    }

    /// Outputs produced and not yet acknowledged, over every assigned partition.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Partitions whose commit position moved since the last call, with the offset to commit
    /// (the next one to consume).
    pub fn take_committable(&mut self) -> Vec<(i32, i64)> {
        let mut out = Vec::new();
        for (partition, state) in &mut self.partitions {
            if state.dirty {
                state.dirty = false;
                if let Some(offset) = state.commit_position() {
                    out.push((*partition, offset));
                }
            }
        }
        out
    }

    /// The commit position of one partition, whether or not it moved.
    pub fn committable(&self, partition: i32) -> Option<i64> {
        self.partitions.get(&partition)?.commit_position()
    }

    /// Assigned partitions.
    pub fn partitions(&self) -> Vec<i32> {
        self.partitions.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_the_contiguous_acknowledged_prefix() -> Result<(), String> {
        let mut t = OffsetTracker::default();
        t.assign(0);
        let refs: Vec<InputRef> = [10, 11, 13, 14]
            .iter()
            .map(|&o| t.consumed(0, o).ok_or("assigned"))
            .collect::<Result<_, _>>()?;
        assert_eq!(t.in_flight(), 4);
        assert!(t.acknowledged(refs[1]));
        assert_eq!(t.take_committable(), vec![]);
        assert!(t.acknowledged(refs[0]));
        assert_eq!(t.take_committable(), vec![(0, 12)]);
        assert_eq!(t.take_committable(), vec![], "nothing moved since");
        assert!(t.acknowledged(refs[3]));
        assert!(!t.acknowledged(refs[3]), "a repeated ack is refused");
        assert_eq!(t.take_committable(), vec![]);
        assert!(t.acknowledged(refs[2]));
        assert_eq!(t.take_committable(), vec![(0, 15)]);
        assert_eq!(t.in_flight(), 0);
        Ok(())
    }

    #[test]
    fn an_offset_going_back_starts_a_new_epoch() -> Result<(), String> {
        let mut t = OffsetTracker::default();
        t.assign(0);
        let a = t.consumed(0, 10).ok_or("assigned")?;
        let b = t.consumed(0, 11).ok_or("assigned")?;
        assert!(t.acknowledged(a));
        assert_eq!(t.committable(0), Some(11));
        let c = t.consumed(0, 5).ok_or("assigned")?;
        assert_eq!(t.in_flight(), 1, "the old sequence is forgotten");
        assert!(!t.acknowledged(b), "old epoch");
        assert_eq!(t.committable(0), None);
        assert!(t.acknowledged(c));
        assert_eq!(t.committable(0), Some(6));
        Ok(())
    }

    #[test]
    fn unpublished_buckets_hold_the_commit_back() -> Result<(), String> {
        let mut t = OffsetTracker::default();
        t.assign(0);
        let a = t.consumed(0, 10).ok_or("assigned")?;
        t.hold(a, 7);
        let b = t.consumed(0, 11).ok_or("assigned")?;
        t.hold(b, 8);
        let c = t.consumed(0, 12).ok_or("assigned")?;
        t.hold(c, 7);
        for r in [a, b, c] {
            assert!(t.acknowledged(r));
        }
        assert_eq!(t.take_committable(), vec![(0, 10)], "bucket 7 holds at 10");
        t.release(0, a.epoch + 1, 7);
        assert_eq!(t.committable(0), Some(10), "a stale epoch releases nothing");
        t.release(0, a.epoch, 7);
        assert_eq!(t.take_committable(), vec![(0, 11)], "bucket 8 holds at 11");
        t.release(0, a.epoch, 8);
        assert_eq!(t.take_committable(), vec![(0, 13)]);
        Ok(())
    }

    #[test]
    fn stale_epochs_and_revoked_partitions_are_ignored() -> Result<(), String> {
        let mut t = OffsetTracker::default();
        t.assign(3);
        let old = t.consumed(3, 5).ok_or("assigned")?;
        assert!(t.consumed(4, 1).is_none(), "partition 4 is not assigned");
        t.revoke(3);
        assert_eq!(t.in_flight(), 0);
        assert!(!t.acknowledged(old));
        t.assign(3);
        let new = t.consumed(3, 5).ok_or("assigned")?;
        assert!(!t.acknowledged(old), "old epoch");
        assert_eq!(t.committable(3), None);
        assert!(t.acknowledged(new));
        assert_eq!(t.committable(3), Some(6));
        assert_eq!(t.partitions(), vec![3]);
        Ok(())
    }
}
