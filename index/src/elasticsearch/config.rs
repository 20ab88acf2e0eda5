//! [`EsConfig`]: where the cluster is, how to authenticate, and how hard to push it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::EsError;

/// Days of logs kept by default: the runbook's retention.
const DEFAULT_RETENTION_DAYS: u32 = 90;
/// 5 MiB per `_bulk` request: Elastic's sizing guide recommends 5–15 MB; the low end keeps the
/// writer's memory (concurrency × batch) small and a retried request cheap.
const DEFAULT_BATCH_MAX_BYTES: usize = 5 * 1024 * 1024;
/// Documents per `_bulk` request: a cap for tiny events, where per-item overhead dominates.
const DEFAULT_BATCH_MAX_DOCS: usize = 5_000;
/// How long a partly filled batch may wait: one second keeps search latency low and requests
/// few.
const DEFAULT_BATCH_INTERVAL_MS: u64 = 1_000;
/// Concurrent `_bulk` requests: two per writer keeps a small cluster's write queue from
/// overflowing (429) while hiding one request's latency behind the next.
const DEFAULT_MAX_CONCURRENCY: usize = 2;
/// First retry delay; doubled on each attempt.
const DEFAULT_INITIAL_BACKOFF_MS: u64 = 100;
/// Retry delays stop growing here, so a recovered cluster is noticed within half a minute.
const DEFAULT_MAX_BACKOFF_MS: u64 = 30_000;
/// Per-request timeout: a 5 MiB bulk takes well under a second on a healthy cluster; a minute
/// tolerates a slow one without hanging forever on a dead connection.
const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 60_000;
/// Elasticsearch rejects request bodies above `http.max_content_length` (100 MB by default).
const MAX_BATCH_BYTES_LIMIT: usize = 100 * 1024 * 1024;
/// ES data stream namespaces are at most 100 characters.
const MAX_NAMESPACE_CHARS: usize = 100;

/// Configuration of the Elasticsearch writer and of `sluice es setup`.
///
/// ```toml
/// [elasticsearch]
/// urls = ["https://es-0.logging:9200", "https://es-1.logging:9200"]
/// namespace = "production"
/// dead_letter_dir = "/var/lib/sluice/es-dead-letter"
/// auth = { kind = "api_key", api_key = { env = "SLUICE_ES_API_KEY" } }
/// tls = { ca_file = "/etc/sluice/es-ca.pem" }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EsConfig {
    /// Cluster node URLs (`http://` or `https://`); requests are spread round-robin over them.
    pub urls: Vec<String>,
    /// How the writer authenticates. Secrets are read from an environment variable or a file
    /// at start-up, never from this config and never logged.
    pub auth: EsAuth,
    /// TLS settings for `https://` URLs.
    pub tls: EsTls,
    /// Data stream namespace: events go to `logs-sluice-<namespace>`. Lowercase letters,
    /// digits and `_` only (ES forbids `-` in a namespace).
    pub namespace: String,
    /// Days an event is kept before ILM deletes its backing index.
    pub retention_days: u32,
    /// A `_bulk` request body is cut at this size (one larger document is sent alone).
    pub batch_max_bytes: usize,
    /// A `_bulk` request carries at most this many documents.
    pub batch_max_docs: usize,
    /// A partly filled batch is sent after this long.
    pub batch_interval_ms: u64,
    /// `_bulk` requests in flight at once (across all callers of one writer). The serialized
    /// documents in flight never exceed `max_concurrency × batch_max_bytes` (plus one batch
    /// being cut); the HTTP client holds one more copy of each request body while sending.
    pub max_concurrency: usize,
    /// Per-request timeout.
    pub request_timeout_ms: u64,
    /// Retries of 429, 5xx and connection failures.
    pub retry: EsRetry,
    /// Documents Elasticsearch refuses for good (400 mapping or parse errors) are appended to a
    /// file in this directory, with the error, so that they neither block the rest nor vanish.
    pub dead_letter_dir: PathBuf,
}

impl Default for EsConfig {
    fn default() -> Self {
        EsConfig {
            urls: vec!["http://127.0.0.1:9200".to_owned()],
            auth: EsAuth::None,
            tls: EsTls::default(),
            namespace: "default".to_owned(),
            retention_days: DEFAULT_RETENTION_DAYS,
            batch_max_bytes: DEFAULT_BATCH_MAX_BYTES,
            batch_max_docs: DEFAULT_BATCH_MAX_DOCS,
            batch_interval_ms: DEFAULT_BATCH_INTERVAL_MS,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            retry: EsRetry::default(),
            dead_letter_dir: PathBuf::from("/var/lib/sluice/es-dead-letter"),
        }
    }
}

/// Authentication against the cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EsAuth {
    /// No credentials (a cluster with security disabled, or a test server).
    #[default]
    None,
    /// HTTP basic auth.
    Basic {
        username: String,
        password: SecretSource,
    },
    /// An API key, in the base64 `id:key` form Kibana and `POST _security/api_key` return as
    /// `encoded`.
    ApiKey { api_key: SecretSource },
}

/// Where a secret is read from at start-up: exactly one of `env` or `file`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretSource {
    /// Name of an environment variable holding the secret.
    pub env: Option<String>,
    /// A file holding the secret (a mounted Kubernetes Secret); surrounding whitespace is
    /// trimmed.
    pub file: Option<PathBuf>,
}

/// TLS for `https://` URLs (rustls). Without a CA file the Mozilla web PKI roots compiled
/// into the binary are trusted; a CA file is trusted in addition to them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EsTls {
    /// A PEM file with the CA that signed the cluster's certificates (ECK's `*-es-http-certs-public`).
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification entirely. Only for throwaway test clusters.
    pub insecure_skip_verify: bool,
}

/// Exponential backoff with jitter between retries of a failed request or item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EsRetry {
    /// Delay before the first retry.
    pub initial_backoff_ms: u64,
    /// Upper bound of the delay.
    pub max_backoff_ms: u64,
    /// Give up after this many consecutive attempts that settled nothing, and report the
    /// remaining events unacknowledged (the caller replays them later). `0` retries until the writer is shut down, which is what an indexer
    /// that must not lose data wants.
    pub max_attempts: u32,
}

impl Default for EsRetry {
    fn default() -> Self {
        EsRetry {
            initial_backoff_ms: DEFAULT_INITIAL_BACKOFF_MS,
            max_backoff_ms: DEFAULT_MAX_BACKOFF_MS,
            max_attempts: 0,
        }
    }
}

impl EsConfig {
    /// The data stream events are written to: `logs-sluice-<namespace>`.
    pub fn data_stream(&self) -> String {
        format!("logs-sluice-{}", self.namespace)
    }

    /// Checks every value; call at start-up.
    ///
    /// # Errors
    /// [`EsError::Config`] naming the first bad field.
    pub fn validate(&self) -> Result<(), EsError> {
        if self.urls.is_empty() {
            return Err(EsError::config("urls", "at least one URL is required"));
        }
        for url in &self.urls {
            let parsed = elasticsearch::http::Url::parse(url)
                .map_err(|e| EsError::config("urls", format!("{url:?}: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(EsError::config(
                    "urls",
                    format!("{url:?}: scheme must be http or https"),
                ));
            }
        }
        validate_namespace(&self.namespace)?;
        if self.retention_days == 0 {
            return Err(EsError::config("retention_days", "must be at least 1"));
        }
        if self.batch_max_bytes == 0 || self.batch_max_bytes > MAX_BATCH_BYTES_LIMIT {
            return Err(EsError::config(
                "batch_max_bytes",
                format!("must be between 1 and {MAX_BATCH_BYTES_LIMIT}"),
            ));
        }
        if self.batch_max_docs == 0 {
            return Err(EsError::config("batch_max_docs", "must be at least 1"));
        }
        if self.batch_interval_ms == 0 {
            return Err(EsError::config("batch_interval_ms", "must be at least 1"));
        }
        if self.max_concurrency == 0 {
            return Err(EsError::config("max_concurrency", "must be at least 1"));
        }
        if self.request_timeout_ms == 0 {
            return Err(EsError::config("request_timeout_ms", "must be at least 1"));
        }
        if self.retry.initial_backoff_ms == 0
            || self.retry.max_backoff_ms < self.retry.initial_backoff_ms
        {
            return Err(EsError::config(
                "retry",
                "need 0 < initial_backoff_ms <= max_backoff_ms",
            ));
        }
        if self.dead_letter_dir.as_os_str().is_empty() {
            return Err(EsError::config("dead_letter_dir", "must be set"));
        }
        match &self.auth {
            EsAuth::None => {}
            EsAuth::Basic { username, password } => {
                if username.is_empty() {
                    return Err(EsError::config("auth.username", "must not be empty"));
                }
                password.validate("auth.password")?;
            }
            EsAuth::ApiKey { api_key } => api_key.validate("auth.api_key")?,
        }
        if self.tls.ca_file.is_some() && self.tls.insecure_skip_verify {
            return Err(EsError::config(
                "tls",
                "ca_file and insecure_skip_verify exclude each other",
            ));
        }
        Ok(())
    }
}

/// ES rules for the namespace part of a data stream name, plus our own: no `-`, so the name
/// splits back into type, dataset and namespace.
fn validate_namespace(namespace: &str) -> Result<(), EsError> {
    if namespace.is_empty() || namespace.chars().count() > MAX_NAMESPACE_CHARS {
        return Err(EsError::config(
            "namespace",
            format!("must be 1 to {MAX_NAMESPACE_CHARS} characters"),
        ));
    }
    if !namespace
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(EsError::config(
            "namespace",
            format!("{namespace:?}: only lowercase letters, digits and '_' are allowed"),
        ));
    }
    Ok(())
}

impl SecretSource {
    fn validate(&self, field: &'static str) -> Result<(), EsError> {
        match (&self.env, &self.file) {
            (Some(var), None) if !var.is_empty() => Ok(()),
            (None, Some(path)) if !path.as_os_str().is_empty() => Ok(()),
            _ => Err(EsError::config(field, "set exactly one of env or file")),
        }
    }

    /// Reads the secret. The value is never logged; errors name only the variable or file.
    ///
    /// # Errors
    /// [`EsError::Secret`] when the variable is unset or the file unreadable or empty.
    pub(crate) fn resolve(&self, field: &'static str) -> Result<Secret, EsError> {
        let value = match (&self.env, &self.file) {
            (Some(var), None) => std::env::var(var).map_err(|e| EsError::Secret {
                field,
                source_name: format!("env {var}"),
                reason: e.to_string(),
            })?,
            (None, Some(path)) => read_secret_file(field, path)?,
            _ => return Err(EsError::config(field, "set exactly one of env or file")),
        };
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(EsError::Secret {
                field,
                source_name: self.describe(),
                reason: "the secret is empty".to_owned(),
            });
        }
        Ok(Secret(trimmed.to_owned()))
    }

    fn describe(&self) -> String {
        match (&self.env, &self.file) {
            (Some(var), _) => format!("env {var}"),
            (_, Some(path)) => format!("file {}", path.display()),
            _ => "nothing".to_owned(),
        }
    }
}

fn read_secret_file(field: &'static str, path: &Path) -> Result<String, EsError> {
    std::fs::read_to_string(path).map_err(|e| EsError::Secret {
        field,
        source_name: format!("file {}", path.display()),
        reason: e.to_string(),
    })
}

/// A secret value whose `Debug` never shows it.
pub(crate) struct Secret(pub(crate) String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn default_config_is_valid_and_keeps_90_days() -> TestResult {
        let cfg = EsConfig::default();
        cfg.validate()?;
        assert_eq!(cfg.retention_days, 90);
        assert_eq!(cfg.data_stream(), "logs-sluice-default");
        Ok(())
    }

    #[test]
    fn toml_with_auth_and_tls_parses() -> TestResult {
        let cfg: EsConfig = toml::from_str(
            r#"
            urls = ["https://es:9200"]
            namespace = "production"
            auth = { kind = "basic", username = "sluice", password = { file = "/run/secrets/es" } }
            tls = { ca_file = "/etc/ca.pem" }
            retry = { max_attempts = 5 }
            "#,
        )?;
        cfg.validate()?;
        assert_eq!(cfg.retry.max_attempts, 5);
        assert_eq!(cfg.retry.initial_backoff_ms, DEFAULT_INITIAL_BACKOFF_MS);
        assert!(matches!(cfg.auth, EsAuth::Basic { ref username, .. } if username == "sluice"));
        Ok(())
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(toml::from_str::<EsConfig>("urlz = []").is_err());
        assert!(
            toml::from_str::<EsConfig>(
                r#"auth = { kind = "api_key", api_key = { env = "K" }, x = 1 }"#
            )
            .is_err()
        );
        assert!(toml::from_str::<EsConfig>(r#"auth = { kind = "kerberos" }"#).is_err());
    }

    #[test]
    fn invalid_values_name_their_field() {
        let cases: Vec<(EsConfig, &str)> = vec![
            (
                EsConfig {
                    urls: vec![],
                    ..EsConfig::default()
                },
                "urls",
            ),
            (
                EsConfig {
                    urls: vec!["ftp://x".into()],
                    ..EsConfig::default()
                },
                "urls",
            ),
            (
                EsConfig {
                    urls: vec!["not a url".into()],
                    ..EsConfig::default()
                },
                "urls",
            ),
            (
                EsConfig {
                    namespace: "Prod".into(),
                    ..EsConfig::default()
                },
                "namespace",
            ),
            (
                EsConfig {
                    namespace: "a-b".into(),
                    ..EsConfig::default()
                },
                "namespace",
            ),
            (
                EsConfig {
                    namespace: String::new(),
                    ..EsConfig::default()
                },
                "namespace",
            ),
            (
                EsConfig {
                    retention_days: 0,
                    ..EsConfig::default()
                },
                "retention_days",
            ),
            (
                EsConfig {
                    batch_max_bytes: 0,
                    ..EsConfig::default()
                },
                "batch_max_bytes",
            ),
            (
                EsConfig {
                    batch_max_docs: 0,
                    ..EsConfig::default()
                },
                "batch_max_docs",
            ),
            (
                EsConfig {
                    max_concurrency: 0,
                    ..EsConfig::default()
                },
                "max_concurrency",
            ),
            (
                EsConfig {
                    retry: EsRetry {
                        initial_backoff_ms: 10,
                        max_backoff_ms: 5,
                        max_attempts: 0,
                    },
                    ..EsConfig::default()
                },
                "retry",
            ),
            (
                EsConfig {
                    auth: EsAuth::ApiKey {
                        api_key: SecretSource::default(),
                    },
                    ..EsConfig::default()
                },
                "auth.api_key",
            ),
            (
                EsConfig {
                    auth: EsAuth::Basic {
                        username: "u".into(),
                        password: SecretSource {
                            env: Some("A".into()),
                            file: Some("/b".into()),
                        },
                    },
                    ..EsConfig::default()
                },
                "auth.password",
            ),
        ];
        for (cfg, field) in cases {
            match cfg.validate() {
                Err(EsError::Config { field: got, .. }) => assert_eq!(got, field),
                other => panic!("expected a config error on {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn secret_from_file_is_trimmed_and_hidden_from_debug() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("key");
        std::fs::write(&path, "  s3cr3t\n")?;
        let src = SecretSource {
            env: None,
            file: Some(path),
        };
        let secret = src.resolve("auth.api_key")?;
        assert_eq!(secret.0, "s3cr3t");
        assert!(!format!("{secret:?}").contains("s3cr3t"));
        Ok(())
    }

    #[test]
    fn missing_secret_is_an_error_that_does_not_leak() {
        let src = SecretSource {
            env: Some("SLUICE_TEST_SURELY_UNSET_VAR".into()),
            file: None,
        };
        let Err(err) = src.resolve("auth.password") else {
            panic!("an unset variable must not resolve");
        };
        assert_eq!(err.error_code(), "es_secret");
        assert!(err.to_string().contains("SLUICE_TEST_SURELY_UNSET_VAR"));
    }
}
