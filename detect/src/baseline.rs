//! A robust per-key baseline for anomaly rules: an exponentially weighted mean and variance
//! (West 1979 / Finch 2009 incremental form), fed only while the key is not alerting so an
//! incident never becomes the new normal.

use serde::{Deserialize, Serialize};

/// EWMA mean and variance of a per-window value (a ratio, or a count).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub mean: f64,
    pub variance: f64,
    /// Number of updates so far (warm-up is counted in updates).
    pub samples: u64,
}

impl Baseline {
    /// Folds in one observation with weight `alpha` (0 < alpha ≤ 1).
    pub fn update(&mut self, x: f64, alpha: f64) {
        if self.samples == 0 {
            self.mean = x;
            self.variance = 0.0;
        } else {
            let diff = x - self.mean;
            let incr = alpha * diff;
            self.mean += incr;
            self.variance = (1.0 - alpha) * (self.variance + diff * incr);
        }
        self.samples += 1;
    }

    /// How many standard deviations `x` is above the mean, where the deviation also includes
    /// `sampling_variance` (the noise expected from the window's own sample size) and a floor
    /// of `min_sd` so a perfectly flat history does not make every blip infinite.
    pub fn z_score(&self, x: f64, sampling_variance: f64, min_sd: f64) -> f64 {
        let sd = (self.variance + sampling_variance).sqrt().max(min_sd);
        (x - self.mean) / sd
    }
}

/// EWMA weight per evaluation step for a half-life, both in seconds.
pub(crate) fn alpha_for(step_secs: u64, half_life_secs: u64) -> f64 {
    1.0 - 0.5f64.powf(step_secs as f64 / half_life_secs.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converges_and_scores() {
        let mut b = Baseline::default();
        let alpha = alpha_for(10, 600);
        for i in 0..2000 {
            b.update(if i % 2 == 0 { 0.009 } else { 0.011 }, alpha);
        }
        assert!((b.mean - 0.01).abs() < 1e-3, "mean {}", b.mean);
        assert!(
            b.variance > 0.0 && b.variance < 1e-5,
            "variance {}",
            b.variance
        );
        assert!(b.z_score(0.05, 0.0, 1e-4) > 4.0);
        assert!(b.z_score(0.0105, 0.0, 1e-4) < 1.0);
    }
}
