//! `sluice es setup`: prepare an Elasticsearch cluster for Sluice's events.

use std::path::Path;
use std::process::ExitCode;

use crate::config::SluiceConfig;

/// Creates the ILM policy, templates and data stream; prints what it did as JSON.
///
/// # Errors
/// The config is unreadable or the cluster refuses a request.
pub fn setup(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = match SluiceConfig::load(config_path) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err:#}");
            return Ok(ExitCode::from(super::EXIT_BAD_CONFIG));
        }
    };
    if let Err(err) = config.elasticsearch.validate() {
        eprintln!("error: invalid configuration: elasticsearch: {err}");
        return Ok(ExitCode::from(super::EXIT_BAD_CONFIG));
    }
    let rt = super::runtime()?;
    let report = rt.block_on(index::elasticsearch::setup(&config.elasticsearch))?;
    println!(
        "{}",
        serde_json::json!({
            "data_stream": report.data_stream,
            "created_data_stream": report.created_data_stream,
        })
    );
    Ok(ExitCode::SUCCESS)
}
