//! Dotted ECS field names of [`crate::LogEvent`] and how stores should index them.
//!
//! The tantivy schema, the Elasticsearch index template and the Kibana assets are all derived
//! from [`FIELDS`], and a test in this crate checks that every field here exists in the
//! `LogEvent` JSON Schema, so the three cannot disagree with the type.

pub const TIMESTAMP: &str = "@timestamp";
pub const MESSAGE: &str = "message";
pub const LOG_LEVEL: &str = "log.level";
pub const LOG_LOGGER: &str = "log.logger";
pub const SERVICE_NAME: &str = "service.name";
pub const K8S_NAMESPACE: &str = "kubernetes.namespace";
pub const K8S_POD_NAME: &str = "kubernetes.pod.name";
pub const K8S_POD_UID: &str = "kubernetes.pod.uid";
pub const K8S_CONTAINER_NAME: &str = "kubernetes.container.name";
pub const K8S_NODE_NAME: &str = "kubernetes.node.name";
pub const K8S_LABELS: &str = "kubernetes.labels";
pub const STREAM: &str = "stream";
pub const HTTP_METHOD: &str = "http.request.method";
pub const HTTP_REFERRER: &str = "http.request.referrer";
pub const HTTP_STATUS: &str = "http.response.status_code";
pub const HTTP_RESPONSE_BYTES: &str = "http.response.bytes";
pub const HTTP_VERSION: &str = "http.version";
pub const URL_PATH: &str = "url.path";
pub const URL_QUERY: &str = "url.query";
pub const URL_ORIGINAL: &str = "url.original";
pub const CLIENT_IP: &str = "client.ip";
pub const USER_NAME: &str = "user.name";
pub const USER_AGENT: &str = "user_agent.original";
pub const TRACE_ID: &str = "trace.id";
pub const SPAN_ID: &str = "span.id";
pub const ERROR_TYPE: &str = "error.type";
pub const ERROR_MESSAGE: &str = "error.message";
pub const ERROR_STACK_TRACE: &str = "error.stack_trace";
pub const EVENT_ID: &str = "event.id";
pub const EVENT_DURATION: &str = "event.duration";
pub const EVENT_ORIGINAL: &str = "event.original";
pub const EVENT_DATASET: &str = "event.dataset";
pub const EVENT_INGESTED: &str = "event.ingested";
pub const APP: &str = "app";
pub const TAGS: &str = "tags";
pub const SLUICE_SOURCE_PATH: &str = "sluice.source.path";
pub const SLUICE_SOURCE_FILE_ID: &str = "sluice.source.file_id";
pub const SLUICE_SOURCE_OFFSET: &str = "sluice.source.offset";
pub const SLUICE_SOURCE_END_OFFSET: &str = "sluice.source.end_offset";
pub const SLUICE_FORMAT: &str = "sluice.format";
pub const SLUICE_PATTERN_ID: &str = "sluice.pattern.id";
pub const SLUICE_PATTERN_TEMPLATE: &str = "sluice.pattern.template";
pub const SLUICE_REDACTED: &str = "sluice.redacted";
pub const SLUICE_ERRORS: &str = "sluice.errors";

/// How a store should index a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Event time (ES `date`, tantivy fast date).
    Date,
    /// Exact-match string (ES `keyword`).
    Keyword,
    /// Full text (ES `match_only_text` / tantivy tokenized text).
    Text,
    /// Integer (ES `long`, tantivy fast i64/u64).
    Long,
    /// IP address (ES `ip`).
    Ip,
    /// Arbitrary nested keys, indexed as one field (ES `flattened`, tantivy JSON).
    Flattened,
}

/// One indexed field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDef {
    pub name: &'static str,
    pub kind: FieldKind,
}

const fn f(name: &'static str, kind: FieldKind) -> FieldDef {
    FieldDef { name, kind }
}

/// Every field of [`crate::LogEvent`] a store indexes, with its kind.
pub const FIELDS: &[FieldDef] = &[
    f(TIMESTAMP, FieldKind::Date),
    f(MESSAGE, FieldKind::Text),
    f(LOG_LEVEL, FieldKind::Keyword),
    f(LOG_LOGGER, FieldKind::Keyword),
    f(SERVICE_NAME, FieldKind::Keyword),
    f(K8S_NAMESPACE, FieldKind::Keyword),
    f(K8S_POD_NAME, FieldKind::Keyword),
    f(K8S_POD_UID, FieldKind::Keyword),
    f(K8S_CONTAINER_NAME, FieldKind::Keyword),
    f(K8S_NODE_NAME, FieldKind::Keyword),
    f(K8S_LABELS, FieldKind::Flattened),
    f(STREAM, FieldKind::Keyword),
    f(HTTP_METHOD, FieldKind::Keyword),
    f(HTTP_REFERRER, FieldKind::Keyword),
    f(HTTP_STATUS, FieldKind::Long),
    f(HTTP_RESPONSE_BYTES, FieldKind::Long),
    f(HTTP_VERSION, FieldKind::Keyword),
    f(URL_PATH, FieldKind::Keyword),
    f(URL_QUERY, FieldKind::Keyword),
    f(URL_ORIGINAL, FieldKind::Keyword),
    f(CLIENT_IP, FieldKind::Ip),
    f(USER_NAME, FieldKind::Keyword),
    f(USER_AGENT, FieldKind::Keyword),
    f(TRACE_ID, FieldKind::Keyword),
    f(SPAN_ID, FieldKind::Keyword),
    f(ERROR_TYPE, FieldKind::Keyword),
    f(ERROR_MESSAGE, FieldKind::Text),
    f(ERROR_STACK_TRACE, FieldKind::Text),
    f(EVENT_ID, FieldKind::Keyword),
    f(EVENT_DURATION, FieldKind::Long),
    f(EVENT_ORIGINAL, FieldKind::Text),
    f(EVENT_DATASET, FieldKind::Keyword),
    f(EVENT_INGESTED, FieldKind::Date),
    f(APP, FieldKind::Flattened),
    f(TAGS, FieldKind::Keyword),
    f(SLUICE_SOURCE_PATH, FieldKind::Keyword),
    f(SLUICE_SOURCE_FILE_ID, FieldKind::Long),
    f(SLUICE_SOURCE_OFFSET, FieldKind::Long),
    f(SLUICE_SOURCE_END_OFFSET, FieldKind::Long),
    f(SLUICE_FORMAT, FieldKind::Keyword),
    f(SLUICE_PATTERN_ID, FieldKind::Keyword),
    f(SLUICE_PATTERN_TEMPLATE, FieldKind::Text),
    f(SLUICE_REDACTED, FieldKind::Keyword),
    f(SLUICE_ERRORS, FieldKind::Keyword),
];

/// The definition of `name`, if it is an indexed field.
pub fn field(name: &str) -> Option<&'static FieldDef> {
    FIELDS.iter().find(|d| d.name == name)
}
