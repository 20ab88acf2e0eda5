//! Per-key event-time windows: fine buckets of mergeable partial aggregates, summed into a
//! sliding window as buckets close.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::sketch::DdSketch;

/// The mergeable aggregate of one rule over one key and a span of time (a bucket, or a whole
/// window). Partials computed by several processors over disjoint events [`merge`] into exactly
/// the partial one processor would have computed over all of them.
///
/// [`merge`]: WindowPartial::merge
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowPartial {
    /// Events in the population: matched `of` (ratio, anomaly), carried a value (quantile), or
    /// matched `match` (count).
    pub total: u64,
    /// Events that matched `match` (ratio, anomaly, count), or whose value was above the
    /// threshold (quantile).
    pub hits: u64,
    /// Quantile rules: the distribution of the measured field (boxed so count and ratio
    /// buckets stay 32 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sketch: Option<Box<DdSketch>>,
}

impl WindowPartial {
    /// Adds `other`'s events: the result equals one partial fed both event sets.
    pub fn merge(&mut self, other: &WindowPartial) {
        self.total += other.total;
        self.hits += other.hits;
        if let Some(o) = &other.sketch {
            self.sketch.get_or_insert_with(Box::default).merge(o);
        }
    }

    /// Removes `other`, which was merged in before (a bucket leaving the window).
    pub(crate) fn subtract(&mut self, other: &WindowPartial) {
        debug_assert!(self.total >= other.total && self.hits >= other.hits);
        self.total = self.total.saturating_sub(other.total);
        self.hits = self.hits.saturating_sub(other.hits);
        if let (Some(s), Some(o)) = (&mut self.sketch, &other.sketch) {
            s.subtract(o);
        }
        if self.total == 0 {
            // Reset exactly so an idle key holds no heap.
            self.sketch = None;
        }
    }

    /// True when no event is counted.
    pub fn is_empty(&self) -> bool {
        self.total == 0 && self.hits == 0
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.sketch
            .as_ref()
            .map_or(0, |s| std::mem::size_of::<DdSketch>() + s.heap_bytes())
    }
}

/// The buckets of one key: closed buckets still inside the window, then open ones (not yet
/// passed by the watermark), sorted by bucket index; and the running sum of the closed ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct KeySeries {
    pub(crate) buckets: VecDeque<(i64, WindowPartial)>,
    /// Sum of the closed buckets inside the window.
    pub(crate) window: WindowPartial,
}

impl KeySeries {
    /// The partial of bucket `b` (open; the caller checked lateness), created if needed.
    pub(crate) fn bucket_mut(&mut self, b: i64) -> &mut WindowPartial {
        // Events arrive roughly in order: the newest bucket is the usual target.
        let pos = match self.buckets.back() {
            Some((last, _)) if *last == b => self.buckets.len() - 1,
            Some((last, _)) if *last < b => {
                self.buckets.push_back((b, WindowPartial::default()));
                self.buckets.len() - 1
            }
            None => {
                self.buckets.push_back((b, WindowPartial::default()));
                0
            }
            Some(_) => match self.buckets.binary_search_by_key(&b, |(i, _)| *i) {
                Ok(p) => p,
                Err(p) => {
                    self.buckets.insert(p, (b, WindowPartial::default()));
                    p
                }
            },
        };
        &mut self.buckets[pos].1
    }

    /// Closes bucket `c` for a window of `window_buckets`: drops buckets that slid out and adds
    /// bucket `c` to the window sum.
    pub(crate) fn close(&mut self, c: i64, window_buckets: i64) {
        while let Some((i, _)) = self.buckets.front() {
            if *i > c - window_buckets {
                break;
            }
            if let Some((_, p)) = self.buckets.pop_front() {
                self.window.subtract(&p);
            }
        }
        if let Ok(pos) = self.buckets.binary_search_by_key(&c, |(i, _)| *i) {
            let (_, p) = &self.buckets[pos];
            self.window.merge(p);
        }
    }

    /// Events counted in the window and the open buckets.
    pub(crate) fn event_count(&self) -> u64 {
        // The deque holds every closed bucket of the window and the open ones.
        self.buckets.iter().map(|(_, p)| p.total).sum()
    }

    /// True when the key holds no counts at all (window and open buckets).
    pub(crate) fn is_idle(&self) -> bool {
        self.buckets.is_empty() && self.window.is_empty()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<(i64, WindowPartial)>()
            + self
                .buckets
                .iter()
                .map(|(_, p)| p.heap_bytes())
                .sum::<usize>()
            + self.window.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_window_adds_and_expires_buckets() {
        let mut s = KeySeries::default();
        for b in [0, 1, 1, 2, 5] {
            s.bucket_mut(b).total += 1;
        }
        s.bucket_mut(3).hits += 1; // out of order insert
        let w = 3;
        let mut totals = Vec::new();
        for c in 0..=8 {
            s.close(c, w);
            totals.push((s.window.total, s.window.hits));
        }
        // window of 3 buckets ending at c
        assert_eq!(
            totals,
            vec![
                (1, 0),
                (3, 0),
                (4, 0),
                (3, 1),
                (1, 1),
                (1, 1),
                (1, 0),
                (1, 0),
                (0, 0)
            ]
        );
        assert!(s.is_idle());
    }
}
