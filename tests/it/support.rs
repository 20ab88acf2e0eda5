//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice::config::SluiceConfig;
use sluice::generate::{GenerateConfig, GenerateReport, IncidentSelection};

/// A fixed start so workloads are byte-identical between runs, recent enough that 90-day
/// retention keeps them.
pub fn recent_start() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now();
    let hour = now.timestamp() - now.timestamp() % 3600;
    chrono::DateTime::from_timestamp(hour - 6 * 3600, 0).expect("in range")
}

pub fn generate(out: &Path, lines: u64, seed: u64) -> anyhow::Result<GenerateReport> {
    sluice::generate::generate(&GenerateConfig {
        out: out.to_path_buf(),
        seed,
        lines: Some(lines),
        rate_per_s: 200.0,
        duration: None,
        incidents: IncidentSelection::All,
        start: Some(recent_start()),
        rotate_bytes: 256 * 1024,
    })
}

/// An embedded configuration over `pods` with everything under `data`, API off.
pub fn config(pods: &Path, data: &Path) -> SluiceConfig {
    let mut config = SluiceConfig::default();
    config.data_dir = Some(data.to_path_buf());
    config.ingest.pods_dir = Some(pods.to_path_buf());
    config.api.enabled = false;
    config.resolve_paths();
    let problems = config.validate();
    assert!(problems.is_empty(), "test config invalid: {problems:?}");
    config
}

/// The store root `index::Searcher::open` takes: the data dir itself.
pub fn index_dir(data: &Path) -> PathBuf {
    data.to_path_buf()
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}
