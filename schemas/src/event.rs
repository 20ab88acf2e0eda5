//! The normalized log event, with Elastic Common Schema 8.x field names.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One log record after parsing, shaped like an ECS 8.x document.
///
/// Serializes as nested ECS JSON (`{"log":{"level":"error"},"http":{...}}`). Empty groups and
/// unset fields are omitted, and deserializing fills them back with their defaults, so any event
/// round-trips through JSON unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LogEvent {
    /// When the event happened: the application's own timestamp when it printed one, else the
    /// container runtime's.
    #[serde(rename = "@timestamp")]
    pub timestamp: DateTime<Utc>,
    /// The human-readable message, after redaction.
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Log::is_empty")]
    pub log: Log,
    #[serde(default, skip_serializing_if = "Service::is_empty")]
    pub service: Service,
    #[serde(default, skip_serializing_if = "Kubernetes::is_empty")]
    pub kubernetes: Kubernetes,
    /// The container stream the line came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<Stream>,
    #[serde(default, skip_serializing_if = "Http::is_empty")]
    pub http: Http,
    #[serde(default, skip_serializing_if = "Url::is_empty")]
    pub url: Url,
    #[serde(default, skip_serializing_if = "Client::is_empty")]
    pub client: Client,
    #[serde(default, skip_serializing_if = "User::is_empty")]
    pub user: User,
    #[serde(default, skip_serializing_if = "UserAgent::is_empty")]
    pub user_agent: UserAgent,
    #[serde(default, skip_serializing_if = "Trace::is_empty")]
    pub trace: Trace,
    #[serde(default, skip_serializing_if = "Span::is_empty")]
    pub span: Span,
    #[serde(default, skip_serializing_if = "ErrorInfo::is_empty")]
    pub error: ErrorInfo,
    #[serde(default)]
    pub event: EventInfo,
    /// Application fields that have no ECS home, kept under one object so they stay searchable
    /// without growing the index mapping (indexed as `flattened` in Elasticsearch).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub app: serde_json::Map<String, serde_json::Value>,
    /// ECS `tags`: short markers such as `sluice_parse_failure` or `sluice_truncated`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Sluice's own namespace: provenance and pipeline annotations.
    #[serde(default)]
    pub sluice: SluiceMeta,
}

impl LogEvent {
    /// An event with only a timestamp and message set; every other field is empty.
    pub fn new(timestamp: DateTime<Utc>, message: impl Into<String>) -> LogEvent {
        LogEvent {
            timestamp,
            message: message.into(),
            log: Log::default(),
            service: Service::default(),
            kubernetes: Kubernetes::default(),
            stream: None,
            http: Http::default(),
            url: Url::default(),
            client: Client::default(),
            user: User::default(),
            user_agent: UserAgent::default(),
            trace: Trace::default(),
            span: Span::default(),
            error: ErrorInfo::default(),
            event: EventInfo::default(),
            app: serde_json::Map::new(),
            tags: Vec::new(),
            sluice: SluiceMeta::default(),
        }
    }
}

/// Severity, normalized from whatever the application printed.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    /// Every level, least severe first.
    pub const ALL: [Level; 6] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Fatal,
    ];

    /// The lowercase name used in ECS `log.level`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }

    /// True for `error` and `fatal`.
    pub fn is_error(self) -> bool {
        self >= Level::Error
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The container output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

macro_rules! impl_is_empty {
    ($($ty:ty),* $(,)?) => {
        $(impl $ty {
            /// True when no field is set, so the group is left out of the JSON.
            pub fn is_empty(&self) -> bool {
                *self == <$ty>::default()
            }
        })*
    };
}

impl_is_empty!(
    Log,
    Service,
    Kubernetes,
    Pod,
    Container,
    Node,
    Http,
    HttpRequest,
    HttpResponse,
    Url,
    Client,
    User,
    UserAgent,
    Trace,
    Span,
    ErrorInfo,
    Pattern,
);

/// ECS `log.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Log {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// ECS `log.logger`: the logger name the application used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logger: Option<String>,
}

/// ECS `service.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Service {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// ECS `kubernetes.*` (as Filebeat's add_kubernetes_metadata writes it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Kubernetes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Pod::is_empty")]
    pub pod: Pod,
    #[serde(default, skip_serializing_if = "Container::is_empty")]
    pub container: Container,
    #[serde(default, skip_serializing_if = "Node::is_empty")]
    pub node: Node,
    /// Pod labels, from the Kubernetes API.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Pod {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Container {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Node {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// ECS `http.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Http {
    #[serde(default, skip_serializing_if = "HttpRequest::is_empty")]
    pub request: HttpRequest,
    #[serde(default, skip_serializing_if = "HttpResponse::is_empty")]
    pub response: HttpResponse,
    /// ECS `http.version`, e.g. `1.1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HttpRequest {
    /// Upper-case method, e.g. `GET`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HttpResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// ECS `url.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Url {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The query string without the leading `?`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<String>,
}

/// ECS `client.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Client {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

/// ECS `user.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct User {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// ECS `user_agent.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UserAgent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<String>,
}

/// ECS `trace.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Trace {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// ECS `span.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Span {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// ECS `error.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorInfo {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<String>,
}

/// ECS `event.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventInfo {
    /// Deterministic id from the source file identity and byte offset
    /// ([`crate::event_id`]), so a replayed line gets the same id and stores can drop it.
    #[serde(default)]
    pub id: String,
    /// Duration in nanoseconds, as ECS defines `event.duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    /// The record exactly as read (after partial/multi-line merge and redaction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<String>,
    /// ECS `event.dataset`, e.g. `sluice.app` or `nginx.access`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// When Sluice created the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingested: Option<DateTime<Utc>>,
}

/// Sluice's own fields (`sluice.*`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SluiceMeta {
    /// Where the record was read.
    #[serde(default)]
    pub source: crate::SourceRef,
    /// The format `parse` recognised, e.g. `json`, `logfmt`, `nginx_combined`, `plain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The log pattern (template) this event belongs to.
    #[serde(default, skip_serializing_if = "Pattern::is_empty")]
    pub pattern: Pattern,
    /// Kinds of secrets that were redacted from this event (`jwt`, `aws_access_key`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted: Vec<String>,
    /// Stable error codes of problems met while reading or parsing this record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// A log template mined by `detect`'s pattern miner.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Pattern {
    /// Stable id derived from the template text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The template, with `<*>` for variable tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}
