//! The normalized log event, with Elastic Common Schema 8.x field names.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

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
    #[serde(default, skip_serializing_if = "AppFields::is_empty")]
    pub app: AppFields,
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
            app: AppFields::new(),
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
    // A `Cow` so the parser can lend its static names: an allocation per record showed in its
    // profile. (A plain comment: a doc line would change the checked-in JSON Schema.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<std::borrow::Cow<'static, str>>,
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

/// The `app` object: application fields with no ECS home, as `key → JSON value`.
///
/// A vector kept sorted by key rather than a `serde_json::Map` (a `BTreeMap`): a record has a
/// handful of such fields, and the map's inserts, node allocation and teardown were about a
/// tenth of the parser's time on records with several of them. Sorted so it serializes exactly as the map did (same
/// keys in the same order, the same bytes); inserting a key that is already there replaces its
/// value, as the map's `insert` did, and deserializing keeps the last of duplicate keys.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppFields {
    /// Sorted by key, keys unique.
    entries: Vec<(String, Value)>,
}

/// What [`AppFields`] indexing returns for a missing key (as `serde_json::Value` indexing
/// does), instead of panicking.
static NULL: Value = Value::Null;

impl AppFields {
    /// An empty set; allocates nothing until the first insert.
    pub fn new() -> AppFields {
        AppFields {
            entries: Vec::new(),
        }
    }

    /// An empty set with room for `capacity` fields.
    pub fn with_capacity(capacity: usize) -> AppFields {
        AppFields {
            entries: Vec::with_capacity(capacity),
        }
    }

    /// The fields of `entries`, in any order; of entries with the same key the last one
    /// wins, as if they were inserted one by one (a stable sort then one pass, cheaper than
    /// sorted inserts).
    pub fn from_unsorted(mut entries: Vec<(String, Value)>) -> AppFields {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(&mut later.1, &mut kept.1);
            }
            same
        });
        AppFields { entries }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no fields (the object is then left out of the JSON).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        let i = self.position(key).ok()?;
        self.entries.get(i).map(|(_, v)| v)
    }

    /// True when `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Sets `key` to `value`; returns the value it replaces, if any.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        match self.position(&key) {
            Ok(i) => self
                .entries
                .get_mut(i)
                .map(|(_, v)| std::mem::replace(v, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// Removes `key`; returns its value, if it was present.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.position(key).ok()?;
        Some(self.entries.remove(i).1)
    }

    /// Moves every field of `other` into `self` (`other`'s value wins on a shared key) and
    /// leaves `other` empty.
    pub fn append(&mut self, other: &mut AppFields) {
        if self.entries.is_empty() {
            std::mem::swap(&mut self.entries, &mut other.entries);
            return;
        }
        for (k, v) in other.entries.drain(..) {
            self.insert(k, v);
        }
    }

    /// The fields, sorted by key.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The keys, sorted.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// The fields as a `serde_json::Map` (a copy).
    pub fn to_map(&self) -> serde_json::Map<String, Value> {
        self.entries.iter().cloned().collect()
    }
}

impl std::ops::Index<&str> for AppFields {
    type Output = Value;

    /// The value of `key`, or `Value::Null` when it is missing.
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&NULL)
    }
}

impl FromIterator<(String, Value)> for AppFields {
    /// Of entries with the same key the last one wins.
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> AppFields {
        AppFields::from_unsorted(iter.into_iter().collect())
    }
}

impl From<serde_json::Map<String, Value>> for AppFields {
    /// The map's entries are already sorted and unique, so they are taken as they are.
    fn from(map: serde_json::Map<String, Value>) -> AppFields {
        AppFields {
            entries: map.into_iter().collect(),
        }
    }
}

impl IntoIterator for AppFields {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;

    /// The fields, sorted by key.
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl Serialize for AppFields {
    /// A JSON object with the keys in sorted order, byte for byte what
    /// `serde_json::Map<String, Value>` writes.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.entries.iter().map(|(k, v)| (k, v)))
    }
}

impl<'de> Deserialize<'de> for AppFields {
    /// Reads a map (and a unit, as an empty set, where a format has one), exactly as
    /// `serde_json::Map` does; the last of duplicate keys wins.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<AppFields, D::Error> {
        struct Visitor;

        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = AppFields;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_unit<E: serde::de::Error>(self) -> Result<AppFields, E> {
                Ok(AppFields::new())
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<AppFields, A::Error> {
                let mut out = AppFields::with_capacity(access.size_hint().unwrap_or(0));
                while let Some((k, v)) = access.next_entry::<String, Value>()? {
                    out.insert(k, v);
                }
                Ok(out)
            }
        }

        deserializer.deserialize_map(Visitor)
    }
}

/// The same schema as `serde_json::Map<String, Value>` (an object of any values): the JSON
/// is unchanged.
impl JsonSchema for AppFields {
    fn inline_schema() -> bool {
        <serde_json::Map<String, Value> as JsonSchema>::inline_schema()
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        <serde_json::Map<String, Value> as JsonSchema>::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        <serde_json::Map<String, Value> as JsonSchema>::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <serde_json::Map<String, Value> as JsonSchema>::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arb::arb_value;
    use proptest::prelude::*;

    /// Keys from a small alphabet, so inserts repeat keys and land before, between and after
    /// the ones present; upper case, `_`, `.`, non-ASCII and escapes test the sort order.
    fn arb_entries() -> impl Strategy<Value = Vec<(String, Value)>> {
        proptest::collection::vec(("[a-cA_.\u{e9}\"\\\\]{0,3}", arb_value()), 0..12)
    }

    proptest! {
        /// Inserting the same entries into `AppFields` and into `serde_json::Map` (what `app`
        /// was) gives the same JSON, byte for byte, and the same answers to lookups.
        #[test]
        fn serializes_like_a_json_map(entries in arb_entries()) {
            let mut ours = AppFields::new();
            let mut map = serde_json::Map::new();
            for (k, v) in entries {
                prop_assert_eq!(ours.insert(k.clone(), v.clone()), map.insert(k, v));
            }
            prop_assert_eq!(
                serde_json::to_string(&ours).ok(),
                serde_json::to_string(&map).ok()
            );
            prop_assert_eq!(ours.len(), map.len());
            for (k, v) in &map {
                prop_assert_eq!(ours.get(k), Some(v));
                prop_assert_eq!(&ours[k.as_str()], v);
            }
            prop_assert!(ours.keys().eq(map.keys().map(String::as_str)));
            prop_assert_eq!(&ours.to_map(), &map);
            prop_assert_eq!(&AppFields::from(map.clone()), &ours);
        }

        /// Reading JSON objects (duplicate keys included: the last wins) gives what the map
        /// read, and what it writes reads back as the map's writing does.
        #[test]
        fn deserializes_like_a_json_map(entries in arb_entries()) {
            let mut text = String::from("{");
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                let key = serde_json::to_string(k)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                text.push_str(&format!("{key}:{v}"));
            }
            text.push('}');
            let ours: AppFields = serde_json::from_str(&text)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let map: serde_json::Map<String, Value> = serde_json::from_str(&text)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(ours.to_map(), map.clone());
            // Floats read back exactly only with serde_json's `float_roundtrip`, so compare
            // with the map's own round trip.
            let again: AppFields = serde_json::to_string(&ours)
                .and_then(|s| serde_json::from_str(&s))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let map_again: serde_json::Map<String, Value> = serde_json::to_string(&map)
                .and_then(|s| serde_json::from_str(&s))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(again.to_map(), map_again);
        }

        /// `append` and `remove` behave as on the map: the appended side wins.
        #[test]
        fn append_and_remove_like_a_json_map(a in arb_entries(), b in arb_entries()) {
            let (mut ours, mut map): (AppFields, serde_json::Map<String, Value>) =
                (a.iter().cloned().collect(), a.into_iter().collect());
            let (mut ours_b, mut map_b): (AppFields, serde_json::Map<String, Value>) =
                (b.iter().cloned().collect(), b.into_iter().collect());
            ours.append(&mut ours_b);
            map.append(&mut map_b);
            prop_assert!(ours_b.is_empty());
            prop_assert_eq!(ours.to_map(), map.clone());
            for k in map.keys() {
                prop_assert_eq!(ours.remove(k), map.get(k).cloned());
                prop_assert!(!ours.contains_key(k));
            }
            prop_assert!(ours.is_empty());
        }
    }

    #[test]
    fn odd_input_reads_like_a_json_map_and_missing_keys_index_as_null() {
        for text in ["null", "[1]", "1", "{\"a\":1,\"a\":null}", "{}"] {
            let ours = serde_json::from_str::<AppFields>(text).map(|a| a.to_map());
            let map = serde_json::from_str::<serde_json::Map<String, Value>>(text);
            assert_eq!(ours.ok(), map.ok(), "{text}");
        }
        assert_eq!(AppFields::new()["missing"], Value::Null);
    }
}
