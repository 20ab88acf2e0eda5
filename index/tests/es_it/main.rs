//! Integration tests of the Elasticsearch writer and setup.
//!
//! By default they run against the mock ES 8.x server in [`mock`]; with
//! `SLUICE_TEST_ES_URL=http://host:9200` (and optionally `SLUICE_TEST_ES_API_KEY`, the encoded
//! API key) they run against that cluster instead, each test in its own namespace, deleting
//! its data stream at the end. Fault injection (429s, 5xx, 413) needs the mock and is skipped
//! against a real cluster; the outage test works on both through [`proxy`].

mod fixtures;
mod kibana;
mod mock;
mod proxy;
mod setup;
mod writer;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use index::elasticsearch::{EsAuth, EsConfig, EsRetry, SecretSource};

pub use crate::fixtures::{event, events};
use crate::mock::MockEs;
use crate::proxy::FlakyProxy;

/// Environment variable naming a real cluster to run the same tests against.
pub const REAL_ES_URL_ENV: &str = "SLUICE_TEST_ES_URL";
/// Environment variable with the encoded API key for that cluster.
pub const REAL_ES_API_KEY_ENV: &str = "SLUICE_TEST_ES_API_KEY";

/// The Elasticsearch a test talks to, behind a proxy that can vanish.
#[derive(Debug)]
pub struct TestEs {
    pub mock: Option<MockEs>,
    real_url: Option<String>,
    pub proxy: FlakyProxy,
    pub namespace: String,
    pub dead_letter_dir: tempfile::TempDir,
}

impl TestEs {
    /// The mock, or the real cluster named by `SLUICE_TEST_ES_URL`; `test` makes the namespace
    /// unique on a shared cluster.
    pub async fn start(test: &str) -> anyhow::Result<TestEs> {
        let dead_letter_dir = tempfile::tempdir()?;
        match std::env::var(REAL_ES_URL_ENV) {
            Ok(url) if !url.is_empty() => {
                let upstream = resolve(&url).await?;
                let proxy = FlakyProxy::start(upstream).await?;
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)?
                    .subsec_nanos();
                Ok(TestEs {
                    mock: None,
                    real_url: Some(url),
                    proxy,
                    namespace: format!("test_{test}_{}_{nanos}", std::process::id()),
                    dead_letter_dir,
                })
            }
            _ => {
                let mock = MockEs::start().await?;
                let proxy = FlakyProxy::start(mock.addr).await?;
                Ok(TestEs {
                    mock: Some(mock),
                    real_url: None,
                    proxy,
                    namespace: test.to_owned(),
                    dead_letter_dir,
                })
            }
        }
    }

    /// A config pointing at the proxy, with short backoffs so tests run fast.
    pub fn config(&self) -> EsConfig {
        let auth = match std::env::var(REAL_ES_API_KEY_ENV) {
            Ok(key) if self.real_url.is_some() && !key.is_empty() => EsAuth::ApiKey {
                api_key: SecretSource {
                    env: Some(REAL_ES_API_KEY_ENV.to_owned()),
                    file: None,
                },
            },
            _ => EsAuth::None,
        };
        EsConfig {
            urls: vec![self.proxy.url()],
            auth,
            namespace: self.namespace.clone(),
            batch_max_bytes: 64 * 1024,
            batch_max_docs: 500,
            batch_interval_ms: 200,
            max_concurrency: 2,
            request_timeout_ms: 5_000,
            retry: EsRetry {
                initial_backoff_ms: 20,
                max_backoff_ms: 1_000,
                max_attempts: 0,
            },
            dead_letter_dir: self.dead_letter_dir.path().to_path_buf(),
            ..EsConfig::default()
        }
    }

    pub fn is_real(&self) -> bool {
        self.real_url.is_some()
    }

    /// The documents stored in the test's data stream, by `_id`. On a real cluster: refresh,
    /// then `_count` (ids are checked through the writer's outcomes instead).
    pub async fn stored_count(&self) -> anyhow::Result<u64> {
        let data_stream = self.config().data_stream();
        if let Some(mock) = &self.mock {
            return Ok(mock.stored_ids(&data_stream).len() as u64);
        }
        let client = self.direct_client()?;
        client
            .indices()
            .refresh(elasticsearch::indices::IndicesRefreshParts::Index(&[
                &data_stream,
            ]))
            .send()
            .await?
            .error_for_status_code()?;
        let resp: serde_json::Value = client
            .count(elasticsearch::CountParts::Index(&[&data_stream]))
            .send()
            .await?
            .error_for_status_code()?
            .json()
            .await?;
        resp["count"]
            .as_u64()
            .context("count response without count")
    }

    fn direct_client(&self) -> anyhow::Result<elasticsearch::Elasticsearch> {
        let url = self.real_url.as_deref().unwrap_or_default();
        let pool = elasticsearch::http::transport::SingleNodeConnectionPool::new(
            elasticsearch::http::Url::parse(url)?,
        );
        let mut builder = elasticsearch::http::transport::TransportBuilder::new(pool);
        if let Ok(key) = std::env::var(REAL_ES_API_KEY_ENV) {
            builder = builder.auth(elasticsearch::auth::Credentials::EncodedApiKey(key));
        }
        Ok(elasticsearch::Elasticsearch::new(builder.build()?))
    }

    /// Deletes the test's data stream on a real cluster.
    pub async fn cleanup(&self) -> anyhow::Result<()> {
        if self.is_real() {
            let data_stream = self.config().data_stream();
            self.direct_client()?
                .indices()
                .delete_data_stream(elasticsearch::indices::IndicesDeleteDataStreamParts::Name(
                    &[&data_stream],
                ))
                .send()
                .await?;
        }
        Ok(())
    }
}

async fn resolve(url: &str) -> anyhow::Result<SocketAddr> {
    let parsed = elasticsearch::http::Url::parse(url)?;
    anyhow::ensure!(
        parsed.scheme() == "http",
        "{REAL_ES_URL_ENV} must be an http:// URL: the tests put a TCP proxy in front of it"
    );
    let host = parsed.host_str().context("URL without host")?;
    let port = parsed.port_or_known_default().unwrap_or(9200);
    tokio::net::lookup_host((host, port))
        .await?
        .next()
        .context("host does not resolve")
}

/// The dead-letter lines written so far, parsed.
pub fn dead_letters(dir: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    for file in files {
        for line in std::fs::read_to_string(&file)?.lines() {
            out.push(serde_json::from_str(line).with_context(|| format!("{}", file.display()))?);
        }
    }
    Ok(out)
}

/// Bound on every test's waiting, so a bug hangs nothing.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(120);
