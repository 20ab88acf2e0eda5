//! Correct detection with N processors: the aggregates topic and its owners.
//!
//! A service's pods hash to different raw partitions, so no single processor sees all of a
//! service's events. Each processor therefore runs the runbook rules per raw partition in
//! partial-export mode ([`detect::Detector::exporting_partials`]): when a bucket closes in
//! that partition's event time it publishes, instead of evaluating:
//!
//! - one [`AggregateMessage::Partial`] per (rule, group key) that counted anything, keyed
//!   `<rule>/<labels>` so every processor's partials of one key land in one aggregates
//!   partition;
//! - then one [`AggregateMessage::Progress`] to *every* aggregates partition: "raw partition
//!   `p` has published everything up to bucket `c`". Progress is also repeated every few
//!   seconds, so an owner that rebuilt from the middle of the topic learns every partition's
//!   state again.
//!
//! The aggregate owners (a consumer group on the aggregates topic inside the processor role,
//! [`AggregateOwner`] per owned partition) merge the partials of a bucket once every raw
//! partition has reported progress past it (or is idle), and evaluate it with the same rule
//! code as the single-process detector ([`detect::Detector::close_through`]). Only the owner of
//! a key's partition evaluates it, so each firing is emitted once.
//!
//! # Replays and restarts
//! A processor publishes a partition's bucket before it commits the raw offsets that fed it
//! (the raw commit is held at the first offset of the oldest bucket whose progress is not yet
//! acknowledged), so a crash replays and may publish the same bucket again. Each assignment of
//! a raw partition publishes under a new `generation`. The owner:
//! - drops a partial for a bucket the raw partition already reported progress past (the
//!   earlier generation published it whole): counted in `duplicate_partials`;
//! - buffers partials until their generation's progress covers them, and drops buffered
//!   partials of another generation when progress arrives (a crashed generation's bucket that
//!   never got its progress is replaced by the replay's): `superseded_partials`.
//!
//! # Owner rebalances
//! The owner commits, per aggregates partition, the offset of the oldest message its state
//! still needs (partials of buckets inside the longest rule horizon — window + `for` +
//! `resolve_for` — or still buffered), with the last evaluated bucket as commit metadata. A new
//! owner replays from there, rebuilding windows and alert phases, and suppresses the alerts of
//! buckets at or before that bucket (the previous owner emitted them). Anomaly baselines longer
//! than the horizon restart their warm-up after an owner move.
//!
//! # Not merged
//! Security detections and the log-pattern miner stay per processor: they key by offender
//! (client IP, user) or template, which mostly stay within the pods, hence the raw partitions,
//! one processor owns.

use std::collections::BTreeMap;

use detect::{BucketPartial, Detector, MergeOutcome};
use serde::{Deserialize, Serialize};

/// A message on the aggregates topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AggregateMessage {
    /// One closed bucket of one rule and key, from one raw partition.
    Partial {
        raw_partition: i32,
        generation: u64,
        partial: BucketPartial,
    },
    /// Raw partition `raw_partition` (assignment `generation`) published every partial of the
    /// buckets up to `closed_bucket`. `idle`: no message arrived there for a while, so owners
    /// need not wait for it.
    Progress {
        raw_partition: i32,
        generation: u64,
        closed_bucket: Option<i64>,
        idle: bool,
    },
}

/// The message key of a partial: rule and group values, so one key always lands in one
/// aggregates partition.
pub fn partial_key(p: &BucketPartial) -> String {
    let mut key = p.rule.clone();
    for l in &p.labels {
        key.push('/');
        key.push_str(l);
    }
    key
}

/// Counters of an [`AggregateOwner`] (summed over owned partitions by the caller).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OwnerCounters {
    /// Partials merged into a bucket.
    pub merged: u64,
    /// Partials of a bucket the raw partition had already reported complete (a replay).
    pub duplicate_partials: u64,
    /// Buffered partials dropped because another generation reported the bucket.
    pub superseded_partials: u64,
    /// Partials whose bucket the owner had already evaluated (an idle partition woke up).
    pub late_partials: u64,
    /// Partials of a rule this owner does not have with that definition (config mismatch).
    pub unknown_rule_partials: u64,
    /// Partials refused by a full key table.
    pub rejected_partials: u64,
    /// Buckets evaluated.
    pub buckets_evaluated: u64,
    /// Alerts withheld while rebuilding (the previous owner emitted them).
    pub alerts_suppressed: u64,
}

#[derive(Debug, Clone, Copy)]
struct SourceProgress {
    closed: Option<i64>,
    generation: u64,
    idle: bool,
}

/// The merge-and-evaluate state of one aggregates partition.
#[derive(Debug)]
pub struct AggregateOwner {
    detector: Detector,
    raw_partitions: i32,
    /// Buckets kept for a rebuild: the longest rule horizon in buckets.
    horizon_buckets: i64,
    progress: BTreeMap<i32, SourceProgress>,
    /// Per raw partition: partials waiting for their generation's progress, with the offset of
    /// their message.
    pending: BTreeMap<i32, Vec<(u64, i64, BucketPartial)>>,
    /// Oldest message offset per merged bucket still inside the horizon.
    merged_offsets: BTreeMap<i64, i64>,
    /// The next offset to consume (last handled + 1).
    next_offset: Option<i64>,
    /// Alerts of buckets at or before this were emitted by a previous owner.
    suppress_through: Option<i64>,
    counters: OwnerCounters,
}

impl AggregateOwner {
    /// An owner evaluating with `detector` (a fresh detector of the processor's rules) for a
    /// raw topic of `raw_partitions` partitions, keeping `horizon_buckets` of history for a
    /// rebuild. `suppress_through`: the last bucket a previous owner evaluated (from the commit
    /// metadata), whose alerts are not emitted again.
    pub fn new(
        detector: Detector,
        raw_partitions: i32,
        horizon_buckets: i64,
        suppress_through: Option<i64>,
    ) -> AggregateOwner {
        AggregateOwner {
            detector,
            raw_partitions,
            horizon_buckets: horizon_buckets.max(1),
            progress: BTreeMap::new(),
            pending: BTreeMap::new(),
            merged_offsets: BTreeMap::new(),
            next_offset: None,
            suppress_through,
            counters: OwnerCounters::default(),
        }
    }

    /// The raw topic grew: owners wait for the new partitions too.
    pub fn set_raw_partitions(&mut self, n: i32) {
        self.raw_partitions = self.raw_partitions.max(n);
    }

    /// Handles the message at `offset`, appending the alerts of every bucket it lets the owner
    /// evaluate.
    pub fn handle(
        &mut self,
        message: AggregateMessage,
        offset: i64,
        out: &mut Vec<schemas::Alert>,
    ) {
        self.next_offset = Some(self.next_offset.map_or(offset + 1, |n| n.max(offset + 1)));
        match message {
            AggregateMessage::Partial {
                raw_partition,
                generation,
                partial,
            } => {
                let done = self
                    .progress
                    .get(&raw_partition)
                    .and_then(|s| s.closed)
                    .is_some_and(|c| partial.bucket <= c);
                if done {
                    self.counters.duplicate_partials += 1;
                } else {
                    self.pending
                        .entry(raw_partition)
                        .or_default()
                        .push((generation, offset, partial));
                }
            }
            AggregateMessage::Progress {
                raw_partition,
                generation,
                closed_bucket,
                idle,
            } => {
                self.merge_pending(raw_partition, generation, closed_bucket);
                let entry = self
                    .progress
                    .entry(raw_partition)
                    .or_insert(SourceProgress {
                        closed: None,
                        generation,
                        idle,
                    });
                entry.closed = entry.closed.max(closed_bucket);
                entry.generation = generation;
                entry.idle = idle;
                self.evaluate(out);
            }
        }
    }

    /// Merges the buffered partials of `raw` that `generation`'s progress covers; drops those
    /// of other generations it covers.
    fn merge_pending(&mut self, raw: i32, generation: u64, closed: Option<i64>) {
        let Some(closed) = closed else {
            return;
        };
        let Some(list) = self.pending.get_mut(&raw) else {
            return;
        };
        let mut keep = Vec::new();
        for (g, offset, p) in list.drain(..) {
            if p.bucket > closed {
                keep.push((g, offset, p));
            } else if g != generation {
                self.counters.superseded_partials += 1;
            } else {
                match self.detector.merge_partial(&p) {
                    MergeOutcome::Merged => {
                        self.counters.merged += 1;
                        let o = self.merged_offsets.entry(p.bucket).or_insert(offset);
                        *o = (*o).min(offset);
                    }
                    MergeOutcome::Late => self.counters.late_partials += 1,
                    MergeOutcome::UnknownRule => self.counters.unknown_rule_partials += 1,
                    MergeOutcome::Rejected => self.counters.rejected_partials += 1,
                }
            }
        }
        *list = keep;
    }

    /// The bucket every raw partition has completed: the minimum over busy partitions, or the
    /// newest when all are idle. `None` while a partition has not reported at all.
    fn complete_through(&self) -> Option<i64> {
        let mut busy_min: Option<i64> = None;
        let mut idle_max: Option<i64> = None;
        for p in 0..self.raw_partitions {
            let s = self.progress.get(&p)?;
            if s.idle {
                idle_max = idle_max.max(s.closed);
            } else {
                let c = s.closed?;
                busy_min = Some(busy_min.map_or(c, |m| m.min(c)));
            }
        }
        busy_min.or(idle_max)
    }

    fn evaluate(&mut self, out: &mut Vec<schemas::Alert>) {
        let Some(target) = self.complete_through() else {
            return;
        };
        if self.detector.closed_bucket().is_some_and(|c| c >= target) {
            return;
        }
        let before = self.detector.closed_bucket();
        // Buckets a previous owner evaluated: one at a time so their alerts can be withheld.
        while let Some(s) = self.suppress_through
            && self
                .detector
                .closed_bucket()
                .is_none_or(|c| c < s.min(target))
        {
            let next = match self.detector.closed_bucket() {
                Some(c) => c + 1,
                None => self.oldest_pending_or(target),
            };
            let mut withheld = Vec::new();
            self.detector.close_through(next.min(target), &mut withheld);
            self.counters.alerts_suppressed += withheld.len() as u64;
        }
        if self.detector.closed_bucket().is_none_or(|c| c < target) {
            self.detector.close_through(target, out);
        }
        if let Some(c) = self.detector.closed_bucket() {
            let from = before.map_or(c, |b| b + 1);
            self.counters.buckets_evaluated += (c - from + 1).max(0) as u64;
            let keep_after = c - self.horizon_buckets;
            self.merged_offsets = self.merged_offsets.split_off(&(keep_after + 1));
        }
    }

    fn oldest_pending_or(&self, fallback: i64) -> i64 {
        self.merged_offsets
            .keys()
            .next()
            .copied()
            .unwrap_or(fallback)
            .min(fallback)
    }

    /// Where a new owner must start to rebuild this state, and the metadata to commit with it
    /// (the last evaluated bucket). `None` before any message.
    pub fn commit_point(&self) -> Option<(i64, String)> {
        let next = self.next_offset?;
        let pending = self
            .pending
            .values()
            .flat_map(|v| v.iter().map(|(_, o, _)| *o))
            .min();
        let merged = self.merged_offsets.values().copied().min();
        let offset = [Some(next), pending, merged]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(next);
        let metadata = self
            .detector
            .closed_bucket()
            .map(|c| c.to_string())
            .unwrap_or_default();
        Some((offset, metadata))
    }

    /// Parses commit metadata written by [`AggregateOwner::commit_point`].
    pub fn parse_metadata(metadata: &str) -> Option<i64> {
        metadata.trim().parse().ok()
    }

    pub fn counters(&self) -> OwnerCounters {
        self.counters
    }

    /// The evaluating detector (its window partials are the merged view).
    pub fn detector(&self) -> &Detector {
        &self.detector
    }
}

/// The longest history any rule of `config` needs to rebuild its state, in buckets.
pub fn horizon_buckets(config: &detect::DetectConfig) -> i64 {
    let bucket = config.bucket_secs.max(1);
    config
        .effective_rules()
        .iter()
        .filter(|r| r.enabled)
        .map(|r| (r.window_secs + r.for_secs + r.resolve_for_secs).div_ceil(bucket) as i64)
        .max()
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_only() -> detect::DetectConfig {
        detect::DetectConfig {
            security_enabled: false,
            patterns_enabled: false,
            ..detect::DetectConfig::default()
        }
    }

    fn partial(bucket: i64, total: u64, hits: u64) -> anyhow::Result<BucketPartial> {
        // Take the definition from a real exporting detector so the owner accepts it.
        let mut d = Detector::try_new(&rules_only())?.exporting_partials();
        let mut ev = schemas::LogEvent::new(
            chrono::DateTime::from_timestamp(bucket * 10, 0).unwrap_or_default(),
            "GET /",
        );
        ev.service.name = Some("checkout".into());
        ev.http.response.status_code = Some(200);
        d.process(&mut ev, &mut Vec::new());
        d.finish(&mut Vec::new());
        let mut p = d
            .take_partials()
            .into_iter()
            .find(|p| p.rule == "HighErrorRate")
            .ok_or_else(|| anyhow::anyhow!("no HighErrorRate partial"))?;
        p.partial.total = total;
        p.partial.hits = hits;
        Ok(p)
    }

    fn msg_partial(raw: i32, generation: u64, p: BucketPartial) -> AggregateMessage {
        AggregateMessage::Partial {
            raw_partition: raw,
            generation,
            partial: p,
        }
    }

    fn progress(raw: i32, generation: u64, closed: i64, idle: bool) -> AggregateMessage {
        AggregateMessage::Progress {
            raw_partition: raw,
            generation,
            closed_bucket: Some(closed),
            idle,
        }
    }

    fn merged_total(owner: &AggregateOwner) -> u64 {
        owner
            .detector()
            .window_partials("HighErrorRate")
            .iter()
            .map(|(_, p)| p.total)
            .sum()
    }

    #[test]
    fn waits_for_every_raw_partition_then_merges() -> anyhow::Result<()> {
        let mut owner = AggregateOwner::new(Detector::try_new(&rules_only())?, 2, 40, None);
        let mut out = Vec::new();
        owner.handle(msg_partial(0, 1, partial(100, 10, 1)?), 0, &mut out);
        owner.handle(progress(0, 1, 100, false), 1, &mut out);
        assert_eq!(
            owner.detector().closed_bucket(),
            None,
            "partition 1 not heard"
        );
        owner.handle(msg_partial(1, 7, partial(100, 5, 1)?), 2, &mut out);
        owner.handle(progress(1, 7, 100, false), 3, &mut out);
        assert_eq!(owner.detector().closed_bucket(), Some(100));
        assert_eq!(merged_total(&owner), 15);
        assert_eq!(owner.commit_point(), Some((0, "100".into())));
        // An idle partition does not hold the owner back.
        owner.handle(msg_partial(0, 1, partial(101, 3, 0)?), 4, &mut out);
        owner.handle(progress(0, 1, 102, false), 5, &mut out);
        assert_eq!(owner.detector().closed_bucket(), Some(100));
        owner.handle(progress(1, 7, 100, true), 6, &mut out);
        assert_eq!(owner.detector().closed_bucket(), Some(102));
        assert_eq!(merged_total(&owner), 18);
        assert_eq!(owner.counters().merged, 3);
        Ok(())
    }

    #[test]
    fn replayed_and_superseded_partials_are_not_double_counted() -> anyhow::Result<()> {
        let mut owner = AggregateOwner::new(Detector::try_new(&rules_only())?, 1, 40, None);
        let mut out = Vec::new();
        // Generation 1 completes bucket 100, publishes bucket 101 and crashes before its
        // progress.
        owner.handle(msg_partial(0, 1, partial(100, 10, 0)?), 0, &mut out);
        owner.handle(progress(0, 1, 100, false), 1, &mut out);
        owner.handle(msg_partial(0, 1, partial(101, 4, 0)?), 2, &mut out);
        assert_eq!(owner.commit_point().map(|c| c.0), Some(0));
        // Generation 2 replays from an older raw offset: bucket 100 again (part of it), and
        // bucket 101 whole.
        owner.handle(msg_partial(0, 2, partial(100, 6, 0)?), 3, &mut out);
        owner.handle(msg_partial(0, 2, partial(101, 9, 0)?), 4, &mut out);
        owner.handle(progress(0, 2, 101, false), 5, &mut out);
        let c = owner.counters();
        assert_eq!(c.duplicate_partials, 1, "{c:?}");
        assert_eq!(c.superseded_partials, 1, "{c:?}");
        assert_eq!(merged_total(&owner), 10 + 9);
        Ok(())
    }

    #[test]
    fn a_rebuilt_owner_withholds_alerts_the_previous_owner_emitted() -> anyhow::Result<()> {
        // 30 requests with 10 errors per bucket: HighErrorRate fires after its 1 min `for`.
        let feed =
            |owner: &mut AggregateOwner, out: &mut Vec<schemas::Alert>| -> anyhow::Result<()> {
                for (i, b) in (100..120).enumerate() {
                    let i = i as i64 * 2;
                    owner.handle(msg_partial(0, 1, partial(b, 30, 10)?), i, out);
                    owner.handle(progress(0, 1, b, false), i + 1, out);
                }
                Ok(())
            };
        let mut first = AggregateOwner::new(Detector::try_new(&rules_only())?, 1, 40, None);
        let mut emitted = Vec::new();
        feed(&mut first, &mut emitted)?;
        assert!(!emitted.is_empty(), "the first owner fires");
        let (offset, metadata) = first
            .commit_point()
            .ok_or_else(|| anyhow::anyhow!("a commit point"))?;
        assert_eq!(offset, 0, "everything is inside the horizon");
        let evaluated = AggregateOwner::parse_metadata(&metadata);
        assert_eq!(evaluated, Some(119));
        let mut second = AggregateOwner::new(Detector::try_new(&rules_only())?, 1, 40, evaluated);
        let mut again = Vec::new();
        feed(&mut second, &mut again)?;
        assert!(again.is_empty(), "rebuilt owner re-emitted {again:?}");
        assert!(second.counters().alerts_suppressed > 0);
        assert_eq!(merged_total(&second), merged_total(&first));
        Ok(())
    }

    #[test]
    fn messages_round_trip_as_json() -> anyhow::Result<()> {
        let m = msg_partial(3, 9, partial(5, 2, 1)?);
        let text = serde_json::to_string(&m)?;
        assert!(text.contains("\"kind\":\"partial\""), "{text}");
        assert_eq!(serde_json::from_str::<AggregateMessage>(&text)?, m);
        assert_eq!(partial_key(&partial(5, 2, 1)?), "HighErrorRate/checkout");
        // The 5 min window of HighErrorRate plus its 1 min `for`, at 10 s buckets, at least.
        assert!(horizon_buckets(&rules_only()) >= 36);
        Ok(())
    }
}

#[cfg(test)]
mod chain_tests {
    use super::*;

    fn config() -> detect::DetectConfig {
        detect::DetectConfig {
            security_enabled: false,
            patterns_enabled: false,
            allowed_lateness_secs: 3600,
            ..detect::DetectConfig::default()
        }
    }

    fn event(t: i64, pod: usize, status: Option<u16>, ms: Option<i64>) -> schemas::LogEvent {
        let mut ev = schemas::LogEvent::new(
            chrono::DateTime::from_timestamp(t, 0).unwrap_or_default(),
            "GET /api/orders",
        );
        ev.service.name = Some("checkout".into());
        ev.kubernetes.pod.name = Some(format!("checkout-{pod}"));
        ev.http.response.status_code = status;
        ev.event.duration = ms.map(|m| m * 1_000_000);
        ev
    }

    #[test]
    fn per_partition_exports_through_an_owner_equal_one_detector() -> anyhow::Result<()> {
        let start = 1_700_000_000;
        // pod → raw partition
        let partition_of = [0, 1, 1, 2, 3, 3, 3, 4];
        let mut per_pod: Vec<Vec<schemas::LogEvent>> = vec![Vec::new(); 8];
        for step in 0..72i64 {
            let incident = step >= 18;
            let status = if incident && step % 4 == 0 { 503 } else { 200 };
            let ms = if incident && step % 4 == 2 { 3000 } else { 120 };
            let pod = step as usize % 8;
            per_pod[pod].push(event(start + step * 10, pod, Some(status), Some(ms)));
        }
        let mut all: Vec<schemas::LogEvent> = per_pod.iter().flatten().cloned().collect();
        for pod in 0..per_pod.len() {
            all.push(event(start + 720 + 7200, pod, None, None));
        }
        // Single.
        let mut single = Detector::try_new(&config())?;
        let mut expected = Vec::new();
        let mut sorted = all.clone();
        sorted.sort_by_key(|e| e.timestamp);
        for mut e in sorted {
            single.process(&mut e, &mut expected);
        }
        single.finish(&mut expected);
        // Per partition, pod files one after another, then the end lines.
        let mut owner = AggregateOwner::new(Detector::try_new(&config())?, 6, 40, None);
        let mut got = Vec::new();
        let mut offset = 0;
        for p in 0..6 {
            let mut d = Detector::try_new(&config())?.exporting_partials();
            let mut none = Vec::new();
            let mut publish = |d: &mut Detector, owner: &mut AggregateOwner, idle: bool| {
                for partial in d.take_partials() {
                    owner.handle(msg(p, partial), offset, &mut got);
                    offset += 1;
                }
                owner.handle(
                    AggregateMessage::Progress {
                        raw_partition: p,
                        generation: 1,
                        closed_bucket: d.closed_bucket(),
                        idle,
                    },
                    offset,
                    &mut got,
                );
                offset += 1;
            };
            for (pod, list) in per_pod.iter().enumerate() {
                if partition_of[pod] == p {
                    for e in list {
                        d.process(&mut e.clone(), &mut none);
                        publish(&mut d, &mut owner, false);
                    }
                }
            }
            for (pod, _) in partition_of.iter().enumerate().filter(|(_, q)| **q == p) {
                d.process(&mut event(start + 720 + 7200, pod, None, None), &mut none);
                publish(&mut d, &mut owner, false);
            }
            publish(&mut d, &mut owner, true);
        }
        let key = |a: &schemas::Alert| {
            (
                a.starts_at,
                a.fingerprint.clone(),
                a.ends_at,
                a.annotations.clone(),
            )
        };
        expected.sort_by_key(key);
        got.sort_by_key(key);
        assert_eq!(got, expected);
        Ok(())
    }

    fn msg(p: i32, partial: BucketPartial) -> AggregateMessage {
        AggregateMessage::Partial {
            raw_partition: p,
            generation: 1,
            partial,
        }
    }
}
