//! A DDSketch-style quantile sketch with exact merge and subtraction.
//!
//! Values are mapped to logarithmic bins `ceil(ln(v) / ln(γ))` with `γ = (1 + α) / (1 − α)`, so
//! any quantile is answered within relative error `α` of a real sample (Masson, Rim, Lee:
//! "DDSketch: a fast and fully-mergeable quantile sketch with relative-error guarantees", VLDB
//! 2019). Bins are plain counts, so two sketches merge exactly by adding counts (and a sliding
//! window subtracts the bucket that leaves it), whatever order the values arrived in. A sketch
//! stores its bins as sorted pairs while it has few (a quiet bucket) and as a dense array once
//! it has many (a busy window).

use serde::{Deserialize, Serialize};

/// Relative accuracy α of every sketch: 2 % keeps a 2 s p95 within ±40 ms, which no alert
/// threshold notices, while a bucket that sees 15 ms .. 300 ms of latency needs ~75 bins
/// (300 B); 1 % would double the memory of every latency key.
pub const RELATIVE_ACCURACY: f64 = 0.02;

/// Values at or below this are counted in the zero bin: durations are nanoseconds, so anything
/// under 1 ns is "instant" (and negative durations from clock skew land here, not in a panic).
const MIN_POSITIVE: f64 = 1.0;

/// `ln(γ)` for [`RELATIVE_ACCURACY`].
fn ln_gamma() -> f64 {
    ((1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)).ln()
}

/// Highest bin index magnitude: [`DdSketch::add`] clamps to it, and restored state must stay
/// inside it, so a dense store never spans more than 8 193 bins (32 KiB).
const MAX_INDEX: i32 = 4096;
/// A sketch keeps at most this many distinct bins as sorted `(index, count)` pairs before it
/// switches to a dense array: a pair costs 8 bytes and a dense bin 4, and a busy latency bucket
/// spans ~75 bins, so small buckets (one endpoint, a quiet service) stay an order of magnitude
/// smaller than a dense range from their fastest to their slowest request.
const SPARSE_MAX_BINS: usize = 32;

/// A mergeable quantile sketch over non-negative values (see the module docs).
///
/// Bin counts are `u32` to halve memory; a single bin saturates at `u32::MAX` (more than four
/// billion samples of one value within one sketch), after which merges stay monotone but are no
/// longer exact. Equality compares the counted samples, not the storage layout.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(try_from = "SketchRepr", into = "SketchRepr")]
pub struct DdSketch {
    store: Store,
    /// Samples at or below [`MIN_POSITIVE`].
    zero_count: u64,
    /// Total samples, including the zero bin.
    count: u64,
}

/// Bin counts: sparse sorted pairs while few, then a dense array from the lowest to the highest
/// non-empty bin.
#[derive(Debug, Clone)]
enum Store {
    Sparse(Vec<(i32, u32)>),
    Dense { offset: i32, bins: Vec<u32> },
}

impl Default for Store {
    fn default() -> Store {
        Store::Sparse(Vec::new())
    }
}

/// The serialized form: non-empty bins as `[index, count]` pairs, whatever the layout.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct SketchRepr {
    #[serde(default)]
    zero_count: u64,
    #[serde(default)]
    count: u64,
    #[serde(default)]
    bins: Vec<(i32, u32)>,
}

impl From<DdSketch> for SketchRepr {
    fn from(s: DdSketch) -> SketchRepr {
        SketchRepr {
            zero_count: s.zero_count,
            count: s.count,
            bins: s.store.iter().collect(),
        }
    }
}

impl TryFrom<SketchRepr> for DdSketch {
    type Error = String;

    fn try_from(r: SketchRepr) -> Result<DdSketch, String> {
        let mut sum = r.zero_count;
        let mut prev = None;
        for &(i, c) in &r.bins {
            if !(-MAX_INDEX..=MAX_INDEX).contains(&i) || prev.is_some_and(|p| p >= i) || c == 0 {
                return Err(format!("sketch bin {i} is out of range, unsorted or empty"));
            }
            prev = Some(i);
            sum += u64::from(c);
        }
        if sum != r.count {
            return Err(format!("sketch bins sum to {sum}, count says {}", r.count));
        }
        let mut store = Store::Sparse(r.bins);
        store.fit();
        Ok(DdSketch {
            store,
            zero_count: r.zero_count,
            count: r.count,
        })
    }
}

impl PartialEq for DdSketch {
    fn eq(&self, other: &DdSketch) -> bool {
        self.count == other.count
            && self.zero_count == other.zero_count
            && self.store.iter().eq(other.store.iter())
    }
}

/// Non-empty bins in ascending index order.
enum BinIter<'a> {
    Sparse(std::slice::Iter<'a, (i32, u32)>),
    Dense {
        offset: i32,
        bins: std::iter::Enumerate<std::slice::Iter<'a, u32>>,
    },
}

impl Iterator for BinIter<'_> {
    type Item = (i32, u32);

    fn next(&mut self) -> Option<(i32, u32)> {
        match self {
            BinIter::Sparse(it) => it.next().copied(),
            BinIter::Dense { offset, bins } => bins
                .find(|(_, c)| **c > 0)
                .map(|(i, c)| (*offset + i as i32, *c)),
        }
    }
}

impl Store {
    fn iter(&self) -> BinIter<'_> {
        match self {
            Store::Sparse(v) => BinIter::Sparse(v.iter()),
            Store::Dense { offset, bins } => BinIter::Dense {
                offset: *offset,
                bins: bins.iter().enumerate(),
            },
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Store::Sparse(v) => v.capacity() * std::mem::size_of::<(i32, u32)>(),
            Store::Dense { bins, .. } => bins.capacity() * std::mem::size_of::<u32>(),
        }
    }

    fn add(&mut self, index: i32, c: u32) {
        match self {
            Store::Sparse(v) => match v.binary_search_by_key(&index, |e| e.0) {
                Ok(i) => v[i].1 = v[i].1.saturating_add(c),
                Err(i) if v.len() < SPARSE_MAX_BINS => v.insert(i, (index, c)),
                Err(_) => {
                    self.densify();
                    self.add(index, c);
                }
            },
            Store::Dense { offset, bins } => {
                if bins.is_empty() {
                    *offset = index;
                    bins.push(0);
                } else if index < *offset {
                    let grow = (*offset - index) as usize;
                    bins.splice(0..0, std::iter::repeat_n(0, grow));
                    *offset = index;
                }
                let slot = (index - *offset) as usize;
                if slot >= bins.len() {
                    bins.resize(slot + 1, 0);
                }
                bins[slot] = bins[slot].saturating_add(c);
            }
        }
    }

    fn sub(&mut self, index: i32, c: u32) {
        match self {
            Store::Sparse(v) => {
                if let Ok(i) = v.binary_search_by_key(&index, |e| e.0) {
                    v[i].1 = v[i].1.saturating_sub(c);
                    if v[i].1 == 0 {
                        v.remove(i);
                    }
                }
            }
            Store::Dense { offset, bins } => {
                let slot = index - *offset;
                if slot >= 0 && (slot as usize) < bins.len() {
                    let b = &mut bins[slot as usize];
                    *b = b.saturating_sub(c);
                }
            }
        }
    }

    fn densify(&mut self) {
        if let Store::Sparse(v) = self {
            let (Some(&(lo, _)), Some(&(hi, _))) = (v.first(), v.last()) else {
                *self = Store::Dense {
                    offset: 0,
                    bins: Vec::new(),
                };
                return;
            };
            let mut bins = vec![0u32; (hi - lo) as usize + 1];
            for &(i, c) in v.iter() {
                bins[(i - lo) as usize] = c;
            }
            *self = Store::Dense { offset: lo, bins };
        }
    }

    /// Picks the smaller layout for the current bins (after a subtraction or a restore), and
    /// trims empty dense bins at both ends.
    fn fit(&mut self) {
        match self {
            Store::Sparse(v) if v.len() > SPARSE_MAX_BINS => self.densify(),
            Store::Sparse(_) => {}
            Store::Dense { offset, bins } => {
                let lead = bins.iter().take_while(|&&c| c == 0).count();
                let trail = bins[lead..].iter().rev().take_while(|&&c| c == 0).count();
                bins.truncate(bins.len() - trail);
                bins.drain(..lead);
                *offset += lead as i32;
                let used = bins.iter().filter(|&&c| c > 0).count();
                if used <= SPARSE_MAX_BINS / 2 {
                    *self = Store::Sparse(self.iter().collect());
                }
            }
        }
    }
}

impl DdSketch {
    /// An empty sketch.
    pub fn new() -> DdSketch {
        DdSketch::default()
    }

    /// Number of samples added (minus those subtracted).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// True when no sample is counted.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Heap bytes held by the bins, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.store.heap_bytes()
    }

    fn index_of(value: f64) -> i32 {
        // Clamped so absurd values (1e300 ns) cannot allocate millions of bins.
        (value.ln() / ln_gamma())
            .ceil()
            .clamp(-f64::from(MAX_INDEX), f64::from(MAX_INDEX)) as i32
    }

    /// The value a bin stands for: the point with equal relative error to both of its edges.
    fn value_of(index: i32) -> f64 {
        let gamma = ln_gamma().exp();
        2.0 * gamma.powi(index) / (gamma + 1.0)
    }

    /// Adds one sample. NaN is ignored (it has no rank).
    pub fn add(&mut self, value: f64) {
        if value.is_nan() {
            return;
        }
        self.count += 1;
        if value <= MIN_POSITIVE {
            self.zero_count += 1;
            return;
        }
        self.store.add(Self::index_of(value), 1);
    }

    /// Adds every sample of `other`: the result equals a sketch fed both inputs.
    pub fn merge(&mut self, other: &DdSketch) {
        self.count += other.count;
        self.zero_count += other.zero_count;
        for (i, c) in other.store.iter() {
            self.store.add(i, c);
        }
    }

    /// Removes the samples of `other`, which must have been merged into `self` before (a
    /// sliding window dropping its oldest bucket). Counts never go below zero.
    pub fn subtract(&mut self, other: &DdSketch) {
        debug_assert!(
            self.count >= other.count,
            "subtracting more than was merged"
        );
        self.count = self.count.saturating_sub(other.count);
        self.zero_count = self.zero_count.saturating_sub(other.zero_count);
        for (i, c) in other.store.iter() {
            self.store.sub(i, c);
        }
        self.store.fit();
    }

    /// The `q` quantile (0 ≤ q ≤ 1) within [`RELATIVE_ACCURACY`], or `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        // Lower rank as in the DDSketch paper: the sample of rank floor(q * (n - 1)).
        let rank = (q * (self.count - 1) as f64).floor() as u64;
        if rank < self.zero_count {
            return Some(0.0);
        }
        let mut seen = self.zero_count;
        let mut last = None;
        for (i, c) in self.store.iter() {
            seen += u64::from(c);
            if seen > rank {
                return Some(Self::value_of(i));
            }
            last = Some(i);
        }
        // Only reachable after saturation made the bins sum below `count`.
        last.map(Self::value_of)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_relative_accuracy() -> Result<(), String> {
        let mut s = DdSketch::new();
        let mut values: Vec<f64> = (1..=10_000).map(|i| f64::from(i) * 1_000.0).collect();
        for v in &values {
            s.add(*v);
        }
        values.sort_by(f64::total_cmp);
        for q in [0.0, 0.5, 0.9, 0.95, 0.99, 1.0] {
            let exact = values[(q * (values.len() - 1) as f64).floor() as usize];
            let got = s.quantile(q).ok_or("empty")?;
            let err = (got - exact).abs() / exact;
            if err > RELATIVE_ACCURACY + 1e-9 {
                return Err(format!("q={q}: got {got}, exact {exact}, err {err}"));
            }
        }
        Ok(())
    }

    #[test]
    fn merge_then_subtract_restores_the_original() {
        let mut a = DdSketch::new();
        let mut b = DdSketch::new();
        for v in [5.0, 50.0, 5e6, 0.0, -3.0] {
            a.add(v);
        }
        for v in [1e9, 2e9, 7.0] {
            b.add(v);
        }
        let before = a.clone();
        a.merge(&b);
        assert_eq!(a.count(), 8);
        a.subtract(&b);
        assert_eq!(a, before);
        assert_eq!(a.quantile(0.0), Some(0.0));
    }

    #[test]
    fn layout_switches_keep_the_samples() -> Result<(), String> {
        let mut s = DdSketch::new();
        let mut parts = Vec::new();
        for k in 0..10 {
            let mut p = DdSketch::new();
            for i in 0..20 {
                p.add(1e6 * f64::from(1 + k * 20 + i)); // 200 distinct values: goes dense
            }
            s.merge(&p);
            parts.push(p);
        }
        assert!(matches!(s.store, Store::Dense { .. }));
        let json = serde_json::to_string(&s).map_err(|e| e.to_string())?;
        let back: DdSketch = serde_json::from_str(&json).map_err(|e| e.to_string())?;
        assert_eq!(back, s);
        for p in &parts[..9] {
            s.subtract(p);
        }
        assert_eq!(s, parts[9]);
        assert!(
            matches!(s.store, Store::Sparse(_)),
            "small again: {:?}",
            s.store
        );
        for bad in [
            r#"{"count":1,"bins":[[5000,1]]}"#,
            r#"{"count":2,"bins":[[7,1],[3,1]]}"#,
            r#"{"count":9,"bins":[[7,1]]}"#,
        ] {
            assert!(serde_json::from_str::<DdSketch>(bad).is_err(), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn empty_and_nan() {
        let mut s = DdSketch::new();
        assert_eq!(s.quantile(0.5), None);
        s.add(f64::NAN);
        assert!(s.is_empty());
        s.add(1e300);
        assert!(s.quantile(0.5).is_some_and(f64::is_finite));
    }
}
