//! User-facing configuration of the tailer: [`TailerConfig`], [`MultilineConfig`],
//! [`KubeApiConfig`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::IngestError;

/// Default longest record message: 256 KiB, as issue 3 asks; long enough for any stack trace
/// we have seen, short enough that a runaway line cannot take the agent's memory.
pub const DEFAULT_MAX_LINE_BYTES: usize = 256 * 1024;
/// Polling once every 100 ms keeps latency low while costing one `fstat` per file per poll.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 100;
/// New pods must be picked up within a second; scanning twice a second leaves margin.
pub const DEFAULT_DISCOVERY_INTERVAL_MS: u64 = 500;
/// 256 records per batch still amortises the channel hand-off (one send per ~90 KiB of
/// messages) while keeping what sits in the queues small: with 16 queued batches, 1024-record
/// batches held ~16 MiB of records and put the agent path at 27 MiB peak RSS, 256 at 12 MiB,
/// at the same CPU cost (measured with `benches/src/bin/agent_path`, see ingest/README.md).
pub const DEFAULT_BATCH_MAX_RECORDS: usize = 256;
/// 1 MiB per batch bounds one batch's memory whatever the record size.
pub const DEFAULT_BATCH_MAX_BYTES: usize = 1024 * 1024;
/// Reading pauses once this many emitted records wait for an acknowledgement; at ~48 bytes of
/// ledger per record this bounds the ledger to a few MiB and covers several seconds of a busy
/// node between two index commits.
pub const DEFAULT_MAX_UNACKED_RECORDS: usize = 100_000;
/// 64 KiB reads: large enough for sequential throughput, small enough per open file.
pub const DEFAULT_READ_CHUNK_BYTES: usize = 64 * 1024;
/// A node rarely runs more than a few hundred containers; 1024 open files leaves room for
/// rotated files being drained while staying far below a default `ulimit -n` of 65536.
pub const DEFAULT_MAX_OPEN_FILES: usize = 1024;
/// See [`TailerConfig::max_read_skew_secs`]; a third of detect's default allowed lateness.
pub const DEFAULT_MAX_READ_SKEW_SECS: u64 = 10;
/// Checkpoints are written at most this often (each write is two fsyncs).
pub const DEFAULT_CHECKPOINT_INTERVAL_MS: u64 = 200;
/// A checkpoint whose file has not been seen for an hour is forgotten, so the state file does
/// not grow with every pod the node ever ran. Replays after that are dropped downstream by
/// `event.id`.
pub const DEFAULT_FORGET_AFTER_SECS: u64 = 3600;
/// Multi-line defaults: a 500-line Java trace is long; 500 ms keeps `is_idle` within ~2 s.
pub const DEFAULT_MULTILINE_MAX_LINES: usize = 500;
pub const DEFAULT_MULTILINE_FLUSH_TIMEOUT_MS: u64 = 500;

/// Where to start reading a file that has no checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ReadFrom {
    /// Read files without a checkpoint from their first byte (backfill; the default).
    #[default]
    Beginning,
    /// Start new files found at start-up at their current end; files created later are still
    /// read from the beginning.
    End,
}

/// Configuration of the Kubernetes pod-log tailer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TailerConfig {
    /// Root of the kubelet's pod-log tree (`/var/log/pods` layout:
    /// `<namespace>_<pod>_<uid>/<container>/<n>.log`, rotated `<n>.log.<timestamp>[.gz]`).
    pub pods_dir: Option<PathBuf>,
    /// Extra plain files to tail, as glob patterns (`*` and `?` inside a path component).
    pub include: Vec<String>,
    /// Directory holding the checkpoint file; created when missing.
    pub state_dir: PathBuf,
    /// Longest message of one record in bytes; longer ones are truncated and flagged
    /// `line_truncated`.
    pub max_line_bytes: usize,
    /// How often an idle file is checked for new data, in milliseconds.
    pub poll_interval_ms: u64,
    /// How often directories are scanned for new files, in milliseconds.
    pub discovery_interval_ms: u64,
    /// Where to start files that have no checkpoint.
    pub read_from: ReadFrom,
    /// Most records in one [`crate::Batch`].
    pub batch_max_records: usize,
    /// Most message bytes in one [`crate::Batch`].
    pub batch_max_bytes: usize,
    /// Reading pauses while this many records are emitted but not acknowledged.
    pub max_unacked_records: usize,
    /// Bytes read from a file per `read` call.
    pub read_chunk_bytes: usize,
    /// Most files open at once; further files wait for a slot.
    pub max_open_files: usize,
    /// Catching up after start-up (a backfill, or the backlog of a restart), no file is read
    /// more than this many seconds of log time ahead of the file furthest behind, so detection
    /// sees the node's lines in about time order and counts none of them late. Keep it below
    /// detect's `allowed_lateness_secs` (30 by default). Once every file has been read to its
    /// end, files are read by a byte budget each. 0 reads by byte budget from the start.
    pub max_read_skew_secs: u64,
    /// Minimum interval between two checkpoint writes, in milliseconds.
    pub checkpoint_interval_ms: u64,
    /// Forget the checkpoint of a file not seen for this many seconds.
    pub forget_after_secs: u64,
    /// Joining of stack traces and other multi-line records.
    pub multiline: MultilineConfig,
    /// This node's name (`kubernetes.node.name`); falls back to the `NODE_NAME` environment
    /// variable.
    pub node_name: Option<String>,
    /// Pod labels from the Kubernetes API; `None` ships path metadata only.
    pub kubernetes_api: Option<KubeApiConfig>,
}

impl Default for TailerConfig {
    fn default() -> Self {
        TailerConfig {
            pods_dir: None,
            include: Vec::new(),
            state_dir: PathBuf::from("/var/lib/sluice/ingest"),
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            poll_interval_ms: DEFAULT_POLL_INTERVAL_MS,
            discovery_interval_ms: DEFAULT_DISCOVERY_INTERVAL_MS,
            read_from: ReadFrom::Beginning,
            batch_max_records: DEFAULT_BATCH_MAX_RECORDS,
            batch_max_bytes: DEFAULT_BATCH_MAX_BYTES,
            max_unacked_records: DEFAULT_MAX_UNACKED_RECORDS,
            read_chunk_bytes: DEFAULT_READ_CHUNK_BYTES,
            max_open_files: DEFAULT_MAX_OPEN_FILES,
            max_read_skew_secs: DEFAULT_MAX_READ_SKEW_SECS,
            checkpoint_interval_ms: DEFAULT_CHECKPOINT_INTERVAL_MS,
            forget_after_secs: DEFAULT_FORGET_AFTER_SECS,
            multiline: MultilineConfig::default(),
            node_name: None,
            kubernetes_api: None,
        }
    }
}

fn positive(field: &str, value: u64) -> Result<(), IngestError> {
    if value == 0 {
        return Err(IngestError::config(field, "must be greater than 0"));
    }
    Ok(())
}

impl TailerConfig {
    /// Checks every field; the error names the first offending field.
    ///
    /// # Errors
    /// [`IngestError::InvalidConfig`] with the field path.
    pub fn validate(&self) -> Result<(), IngestError> {
        if self.pods_dir.is_none() && self.include.is_empty() {
            return Err(IngestError::config(
                "pods_dir",
                "set pods_dir or at least one include pattern",
            ));
        }
        if self.state_dir.as_os_str().is_empty() {
            return Err(IngestError::config("state_dir", "must not be empty"));
        }
        for (i, pattern) in self.include.iter().enumerate() {
            if !pattern.starts_with('/') {
                return Err(IngestError::config(
                    &format!("include[{i}]"),
                    "must be an absolute path pattern",
                ));
            }
        }
        if self.max_line_bytes < 16 {
            return Err(IngestError::config("max_line_bytes", "must be at least 16"));
        }
        positive("poll_interval_ms", self.poll_interval_ms)?;
        positive("discovery_interval_ms", self.discovery_interval_ms)?;
        positive("batch_max_records", self.batch_max_records as u64)?;
        positive("batch_max_bytes", self.batch_max_bytes as u64)?;
        positive("max_unacked_records", self.max_unacked_records as u64)?;
        if self.max_unacked_records < self.batch_max_records {
            return Err(IngestError::config(
                "max_unacked_records",
                "must be at least batch_max_records",
            ));
        }
        if self.read_chunk_bytes < 4096 {
            return Err(IngestError::config(
                "read_chunk_bytes",
                "must be at least 4096",
            ));
        }
        positive("max_open_files", self.max_open_files as u64)?;
        positive("checkpoint_interval_ms", self.checkpoint_interval_ms)?;
        positive("forget_after_secs", self.forget_after_secs)?;
        self.multiline.validate()?;
        if let Some(api) = &self.kubernetes_api {
            api.validate()?;
        }
        Ok(())
    }
}

/// Joining of multi-line records (stack traces), per container stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MultilineConfig {
    /// Master switch; when false every logical line is its own record.
    pub enabled: bool,
    /// Join Python tracebacks (`Traceback (most recent call last):` ... `ValueError: msg`,
    /// including chained exceptions).
    pub python: bool,
    /// Join Java stack traces (`\tat ...`, `Caused by: ...`, `... N more`) onto the line before.
    pub java: bool,
    /// Join Go panics (`panic: ...`, `goroutine N [running]:`, frames).
    pub go: bool,
    /// User rules, tried after the built-in ones.
    pub rules: Vec<MultilineRule>,
    /// Most physical lines in one joined record; a longer trace is split.
    pub max_lines: usize,
    /// Most bytes in one joined record; a longer trace is split.
    pub max_bytes: usize,
    /// A record still open this long after its last line is emitted, in milliseconds.
    pub flush_timeout_ms: u64,
}

impl Default for MultilineConfig {
    fn default() -> Self {
        MultilineConfig {
            enabled: true,
            python: true,
            java: true,
            go: true,
            rules: Vec::new(),
            max_lines: DEFAULT_MULTILINE_MAX_LINES,
            max_bytes: DEFAULT_MAX_LINE_BYTES,
            flush_timeout_ms: DEFAULT_MULTILINE_FLUSH_TIMEOUT_MS,
        }
    }
}

impl MultilineConfig {
    /// # Errors
    /// [`IngestError::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<(), IngestError> {
        positive("multiline.max_lines", self.max_lines as u64)?;
        positive("multiline.max_bytes", self.max_bytes as u64)?;
        positive("multiline.flush_timeout_ms", self.flush_timeout_ms)?;
        for (i, rule) in self.rules.iter().enumerate() {
            if let Some(start) = &rule.start_pattern
                && let Err(err) = regex::bytes::Regex::new(start)
            {
                return Err(IngestError::config(
                    &format!("multiline.rules[{i}].start_pattern"),
                    err.to_string(),
                ));
            }
            if let Err(err) = regex::bytes::Regex::new(&rule.continue_pattern) {
                return Err(IngestError::config(
                    &format!("multiline.rules[{i}].continue_pattern"),
                    err.to_string(),
                ));
            }
        }
        Ok(())
    }
}

/// A user multi-line rule: a line matching `start_pattern` opens a record, and following lines
/// matching `continue_pattern` join it. Without `start_pattern`, any line matching
/// `continue_pattern` joins the line before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultilineRule {
    /// Regex (bytes) of the first line of a record.
    #[serde(default)]
    pub start_pattern: Option<String>,
    /// Regex (bytes) of a continuation line.
    pub continue_pattern: String,
}

/// How to reach the Kubernetes API for pod labels and annotations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubeApiConfig {
    /// Base URL of the API server, e.g. `https://kubernetes.default.svc`.
    pub url: String,
    /// File holding a bearer token (the service-account token), re-read on every connect;
    /// ignored when absent.
    pub token_file: Option<PathBuf>,
    /// PEM file of the CA that signed the API server's certificate (the service-account
    /// `ca.crt`); when absent, the Mozilla roots are trusted.
    pub ca_file: Option<PathBuf>,
    /// Connect and request timeout of list calls, in milliseconds.
    pub request_timeout_ms: u64,
    /// `timeoutSeconds` asked of each watch; the watch is resumed from the last
    /// resourceVersion when it ends.
    pub watch_timeout_secs: u64,
    /// First retry delay after a failure, in milliseconds; doubles up to `backoff_max_ms`.
    pub backoff_initial_ms: u64,
    /// Longest retry delay, in milliseconds.
    pub backoff_max_ms: u64,
}

impl Default for KubeApiConfig {
    fn default() -> Self {
        KubeApiConfig {
            url: "https://kubernetes.default.svc".to_string(),
            token_file: Some(PathBuf::from(
                "/var/run/secrets/kubernetes.io/serviceaccount/token",
            )),
            ca_file: Some(PathBuf::from(
                "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
            )),
            request_timeout_ms: 10_000,
            watch_timeout_secs: 300,
            backoff_initial_ms: 500,
            backoff_max_ms: 30_000,
        }
    }
}

impl KubeApiConfig {
    /// # Errors
    /// [`IngestError::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<(), IngestError> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(IngestError::config(
                "kubernetes_api.url",
                "must start with http:// or https://",
            ));
        }
        positive("kubernetes_api.request_timeout_ms", self.request_timeout_ms)?;
        positive("kubernetes_api.watch_timeout_secs", self.watch_timeout_secs)?;
        positive("kubernetes_api.backoff_initial_ms", self.backoff_initial_ms)?;
        if self.backoff_max_ms < self.backoff_initial_ms {
            return Err(IngestError::config(
                "kubernetes_api.backoff_max_ms",
                "must be at least backoff_initial_ms",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_with_pods_dir_is_valid_and_unknown_fields_are_rejected() -> Result<(), String> {
        let cfg = TailerConfig {
            pods_dir: Some(PathBuf::from("/var/log/pods")),
            ..TailerConfig::default()
        };
        cfg.validate().map_err(|e| e.to_string())?;
        let err = toml::from_str::<TailerConfig>("pods_dirr = \"/x\"").err();
        assert!(err.is_some());
        Ok(())
    }

    #[test]
    fn bad_fields_are_named() {
        let cfg = TailerConfig {
            pods_dir: Some(PathBuf::from("/p")),
            multiline: MultilineConfig {
                rules: vec![MultilineRule {
                    start_pattern: Some("(".into()),
                    continue_pattern: "x".into(),
                }],
                ..MultilineConfig::default()
            },
            ..TailerConfig::default()
        };
        let err = cfg
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("multiline.rules[0].start_pattern"), "{err}");
        let cfg = TailerConfig::default();
        let err = cfg
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("pods_dir"), "{err}");
    }
}
