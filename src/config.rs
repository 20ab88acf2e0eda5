//! The `sluice` configuration file (TOML): one section per stage, plus the API and alerting.
//!
//! Every section has working defaults, so an empty file (or none) runs the embedded pipeline
//! against `/var/log/pods` with a data dir of `./sluice-data`. Command-line flags override the
//! file. `sluice config check FILE` reports problems with the field path that holds them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::delivery::AlertingConfig;

/// Where pods write their logs on a Kubernetes node.
pub const DEFAULT_PODS_DIR: &str = "/var/log/pods";
/// Data dir when neither the file nor `--data-dir` names one: beside the working directory, so
/// a first run on a laptop never needs root.
pub const DEFAULT_DATA_DIR: &str = "sluice-data";
/// The API listens on loopback by default; binding elsewhere requires a bearer token.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7280";

/// Which part of the pipeline this process runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything in one process: tail → parse → detect → tantivy (embedded mode).
    #[default]
    All,
    /// Distributed mode, per node: tail → Kafka raw topic (see `[kafka]`).
    Agent,
    /// Distributed mode: raw topic → parse → detect → events and alerts topics.
    Processor,
    /// Distributed mode: events topic → one tantivy store per events partition under
    /// `<data_dir>/partitions/<n>/`.
    Indexer,
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SluiceConfig {
    /// Which part of the pipeline this process runs.
    pub role: Role,
    /// Root for everything Sluice stores: the index (`index/`), checkpoints and detector state
    /// (`state/`). Defaults to `./sluice-data`.
    pub data_dir: Option<PathBuf>,
    /// Tailing and checkpoints. `ingest.state_dir` defaults to `<data_dir>/checkpoints`.
    pub ingest: ingest::TailerConfig,
    /// Parsing and redaction.
    pub parse: parse::ParseConfig,
    /// Detection rules and engine limits.
    pub detect: detect::DetectConfig,
    /// Optional rules file (TOML, the `[detect]` section's format) that replaces the
    /// `[detect]` section; reloaded on SIGHUP or when it changes.
    pub rules_file: Option<PathBuf>,
    /// The embedded tantivy store. `index.data_dir` defaults to `<data_dir>` (day partitions
    /// under `<data_dir>/index/`).
    pub index: index::IndexConfig,
    /// The HTTP API.
    pub api: ApiConfig,
    /// Where alerts go.
    pub alerting: AlertingConfig,
    /// Elasticsearch: what `sluice es setup` creates (ILM policy, templates, data stream).
    pub elasticsearch: index::elasticsearch::EsConfig,
    /// Brokers, topics and client settings of the distributed roles (`agent`, `processor`,
    /// `indexer`); ignored by role `all`.
    pub kafka: crate::distributed::KafkaConfig,
    /// Which derived paths the file set itself (those are never overridden by `data_dir`).
    #[serde(skip)]
    explicit: ExplicitPaths,
}

#[derive(Debug, Clone, Copy, Default)]
struct ExplicitPaths {
    index_data_dir: bool,
    ingest_state_dir: bool,
}

/// The HTTP API (`/health`, `/metrics`, `/api/search`, `/api/aggregate`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address to serve on; `127.0.0.1:7280` by default. Set `enabled = false` to serve nothing.
    pub listen: SocketAddr,
    pub enabled: bool,
    /// File holding the bearer token clients must send. Required when `listen` is not a
    /// loopback address.
    pub bearer_token_file: Option<PathBuf>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: DEFAULT_LISTEN
                .parse()
                .expect("the default listen address parses"),
            enabled: true,
            bearer_token_file: None,
        }
    }
}

impl ApiConfig {
    /// The bearer token, read from its file, if one is configured.
    ///
    /// # Errors
    /// The token file is unreadable or empty.
    pub fn bearer_token(&self) -> anyhow::Result<Option<String>> {
        let Some(path) = &self.bearer_token_file else {
            return Ok(None);
        };
        let token = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read api.bearer_token_file {}", path.display()))?;
        let token = token.trim().to_string();
        anyhow::ensure!(
            !token.is_empty(),
            "api.bearer_token_file {} is empty",
            path.display()
        );
        Ok(Some(token))
    }
}

/// One problem found in a configuration, with the dotted path of the field that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl SluiceConfig {
    /// Parses a TOML configuration. Unknown fields and wrong types are errors that name the
    /// field path (`index.retention_days: invalid type: ...`).
    ///
    /// # Errors
    /// The text is not valid TOML for this schema.
    pub fn from_toml_str(text: &str) -> Result<SluiceConfig, ConfigProblem> {
        let de = toml::Deserializer::new(text);
        let mut config: SluiceConfig = serde_path_to_error::deserialize(de).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            ConfigProblem {
                path: if path == "." { "(root)".into() } else { path },
                message: inner.message().trim().to_string(),
            }
        })?;
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigProblem {
            path: "(root)".into(),
            message: e.message().to_string(),
        })?;
        let has = |section: &str, key: &str| table.get(section).and_then(|s| s.get(key)).is_some();
        config.explicit = ExplicitPaths {
            index_data_dir: has("index", "data_dir"),
            ingest_state_dir: has("ingest", "state_dir"),
        };
        Ok(config)
    }

    /// Reads and parses a configuration file.
    ///
    /// # Errors
    /// The file cannot be read or does not parse.
    pub fn load(path: &Path) -> anyhow::Result<SluiceConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read config {}", path.display()))?;
        SluiceConfig::from_toml_str(&text)
            .map_err(|p| anyhow::anyhow!("invalid config {}: {p}", path.display()))
    }

    /// The data dir in force.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }

    /// Derives the paths of the other sections from `data_dir`, except those the file set
    /// explicitly, and applies the pods dir default.
    pub fn resolve_paths(&mut self) {
        let data_dir = self.data_dir();
        if !self.explicit.ingest_state_dir {
            self.ingest.state_dir = data_dir.join("checkpoints");
        }
        if !self.explicit.index_data_dir {
            self.index.data_dir = data_dir.clone();
        }
        if self.ingest.pods_dir.is_none() && self.ingest.include.is_empty() {
            self.ingest.pods_dir = Some(PathBuf::from(DEFAULT_PODS_DIR));
        }
        if self.alerting.outbox_dir.is_none() {
            self.alerting.outbox_dir = Some(data_dir.join("state").join("alerts"));
        }
    }

    /// Where the detector persists its state.
    pub fn detect_state_path(&self) -> PathBuf {
        self.data_dir().join("state").join("detect.json")
    }

    /// Where the embedded pipeline appends events the index rejected (NDJSON, one
    /// `{"reason", "event"}` object per line), so nothing acknowledged is lost.
    pub fn dead_letter_path(&self) -> PathBuf {
        self.data_dir()
            .join("dead-letter")
            .join("index-rejected.ndjson")
    }

    /// Checks every section; returns all problems found, not just the first.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let mut push = |section: &str, result: Result<(), String>| {
            if let Err(message) = result {
                problems.push(ConfigProblem {
                    path: section.to_string(),
                    message,
                });
            }
        };
        push("ingest", self.ingest.validate().map_err(|e| e.to_string()));
        push("parse", self.parse.validate().map_err(|e| e.to_string()));
        push("detect", self.detect.validate().map_err(|e| e.to_string()));
        push("index", self.index.validate().map_err(|e| e.to_string()));
        push("alerting", self.alerting.validate());
        if self.role != Role::All {
            push("kafka", self.kafka.validate());
        }
        if self.api.enabled
            && !self.api.listen.ip().is_loopback()
            && self.api.bearer_token_file.is_none()
        {
            push(
                "api.bearer_token_file",
                Err(format!(
                    "api.listen {} is not a loopback address, so a bearer token is required",
                    self.api.listen
                )),
            );
        }
        // Both stages run in this process: a catch-up skew at or past the lateness the
        // detector allows would make it count lines of the files read behind as late.
        if self.role == Role::All
            && self.ingest.max_read_skew_secs >= self.detect.allowed_lateness_secs
        {
            push(
                "ingest.max_read_skew_secs",
                Err(format!(
                    "{} is not below detect.allowed_lateness_secs ({}): lines read that far \
                     behind the newest would be counted late and left out of the rules",
                    self.ingest.max_read_skew_secs, self.detect.allowed_lateness_secs
                )),
            );
        }
        if let Some(rules) = &self.rules_file
            && !rules.exists()
        {
            push(
                "rules_file",
                Err(format!("{} does not exist", rules.display())),
            );
        }
        problems
    }
}
