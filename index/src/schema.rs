//! The tantivy schema derived from [`schemas::fields::FIELDS`], the log tokenizer, and the
//! conversion of a [`LogEvent`] into a tantivy document.
//!
//! Field names in the index are the dotted ECS names, so queries read like Kibana's
//! (`log.level:error`, `http.response.status_code:[500 TO 599]`). Two hidden fields support the
//! store: `_source` (the event JSON, shown in search results) and `_tiebreak` (a hash of
//! `event.id` that orders events with the same timestamp, so search-after pages are stable).

use std::collections::BTreeMap;

use schemas::LogEvent;
use schemas::fields::{self, FieldKind};
use tantivy::schema::{
    DateOptions, DateTimePrecision, FAST, Field, INDEXED, IndexRecordOption, JsonObjectOptions,
    NumericOptions, OwnedValue, STORED, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer};
use tantivy::{Index, TantivyDocument};

/// The stored event JSON, returned by searches.
pub const SOURCE_FIELD: &str = "_source";
/// Hash of `event.id`: the second sort key after `@timestamp`.
pub const TIEBREAK_FIELD: &str = "_tiebreak";
/// Name under which the log tokenizer is registered in every day index.
pub const LOG_TOKENIZER: &str = "sluice_log";
/// Tokens longer than this are dropped from full-text fields: base64 blobs and minified payloads
/// would bloat the term dictionary, while the longest ids we want findable (128-bit hex ids,
/// UUIDs split at their dashes, SHA-256 digests) are 64 characters.
const MAX_TOKEN_BYTES: usize = 100;
/// Keyword values longer than this are not indexed (they stay in `_source`), as Elasticsearch's
/// `ignore_above: 1024` convention: an exact-match on a 10 kB URL is never useful and bloats the
/// dictionary and fast-field columns.
pub const KEYWORD_MAX_BYTES: usize = 1024;

/// Keyword fields with so many distinct values that a fast (columnar) copy costs more than it is
/// worth: they are searchable but not aggregatable.
const HIGH_CARDINALITY_KEYWORDS: &[&str] = &[
    fields::EVENT_ID,
    fields::TRACE_ID,
    fields::SPAN_ID,
    fields::URL_ORIGINAL,
    fields::URL_QUERY,
    fields::USER_AGENT,
    fields::HTTP_REFERRER,
    fields::K8S_POD_UID,
];

/// Fields kept only as fast columns, without an inverted index: nearly every value is unique
/// (nanosecond times, byte offsets, durations, sizes), so their term dictionaries were the
/// largest single indexing cost (FST building) while nobody looks up one exact value. Range
/// queries (`event.duration:[1000000 TO *]`), sorting and aggregations work from the column;
/// an exact term query on them is refused with a hint to use a range.
pub const RANGE_ONLY_FIELDS: &[&str] = &[
    fields::TIMESTAMP,
    fields::EVENT_INGESTED,
    fields::EVENT_DURATION,
    fields::HTTP_RESPONSE_BYTES,
    fields::SLUICE_SOURCE_OFFSET,
    fields::SLUICE_SOURCE_END_OFFSET,
];

/// Fields kept only in `_source`: present in the schema (so a query naming them gets a clear
/// "not searchable" error rather than "unknown field") but neither indexed nor columnar.
/// `event.original` is the raw line of a parsed access log: indexing it as full text tokenized
/// every access line twice (its parts are already in `message`, `url.*`, `client.ip`,
/// `user_agent.original`, `http.*`), which was the largest share of postings work while no search
/// needs it. Searches still return it in the event.
pub const SOURCE_ONLY_FIELDS: &[&str] = &[fields::EVENT_ORIGINAL];

/// `sluice.source.*` numbers are u64 in the event; every other `Long` fits i64.
const U64_FIELDS: &[&str] = &[
    fields::SLUICE_SOURCE_FILE_ID,
    fields::SLUICE_SOURCE_OFFSET,
    fields::SLUICE_SOURCE_END_OFFSET,
];

/// The log tokenizer: splits on every character that is not a letter or digit and lowercases.
///
/// Logs glue words with punctuation (`user_id=42`, `/api/v1/orders`, `req-7f3a9c`,
/// `db.pool.exhausted`), so splitting on punctuation makes each part findable on its own
/// (`message:orders`, `message:7f3a9c`), while the whole id or path stays findable as a phrase:
/// the query parser runs the same tokenizer on `message:"req-7f3a9c"` or
/// `message:"/api/v1/orders"` and matches the consecutive tokens.
pub fn log_tokenizer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .build()
}

/// Registers the tokenizers the schema names on `index`.
pub fn register_tokenizers(index: &Index) {
    index.tokenizers().register(LOG_TOKENIZER, log_tokenizer());
}

/// How the value of one ECS field is read from an event.
type Accessor = fn(&LogEvent) -> Val<'_>;

/// One field's value(s) in an event.
enum Val<'a> {
    None,
    Str(&'a str),
    Strs(&'a [String]),
    I64(i64),
    U64(u64),
    Date(chrono::DateTime<chrono::Utc>),
    App(&'a schemas::AppFields),
    Labels(&'a BTreeMap<String, String>),
}

fn opt(s: &Option<String>) -> Val<'_> {
    s.as_deref().map_or(Val::None, Val::Str)
}

/// Every field of [`fields::FIELDS`] and where its value lives in a [`LogEvent`]. A unit test
/// checks that this table covers `FIELDS` exactly.
const ACCESSORS: &[(&str, Accessor)] = &[
    (fields::TIMESTAMP, |e| Val::Date(e.timestamp)),
    (fields::MESSAGE, |e| Val::Str(&e.message)),
    (fields::LOG_LEVEL, |e| {
        e.log.level.map_or(Val::None, |l| Val::Str(l.as_str()))
    }),
    (fields::LOG_LOGGER, |e| opt(&e.log.logger)),
    (fields::SERVICE_NAME, |e| opt(&e.service.name)),
    (fields::K8S_NAMESPACE, |e| opt(&e.kubernetes.namespace)),
    (fields::K8S_POD_NAME, |e| opt(&e.kubernetes.pod.name)),
    (fields::K8S_POD_UID, |e| opt(&e.kubernetes.pod.uid)),
    (fields::K8S_CONTAINER_NAME, |e| {
        opt(&e.kubernetes.container.name)
    }),
    (fields::K8S_NODE_NAME, |e| opt(&e.kubernetes.node.name)),
    (fields::K8S_LABELS, |e| Val::Labels(&e.kubernetes.labels)),
    (fields::STREAM, |e| {
        e.stream.map_or(Val::None, |s| Val::Str(s.as_str()))
    }),
    (fields::HTTP_METHOD, |e| opt(&e.http.request.method)),
    (fields::HTTP_REFERRER, |e| opt(&e.http.request.referrer)),
    (fields::HTTP_STATUS, |e| {
        e.http
            .response
            .status_code
            .map_or(Val::None, |s| Val::I64(i64::from(s)))
    }),
    (fields::HTTP_RESPONSE_BYTES, |e| {
        e.http.response.bytes.map_or(Val::None, |b| {
            Val::I64(i64::try_from(b).unwrap_or(i64::MAX))
        })
    }),
    (fields::HTTP_VERSION, |e| opt(&e.http.version)),
    (fields::URL_PATH, |e| opt(&e.url.path)),
    (fields::URL_QUERY, |e| opt(&e.url.query)),
    (fields::URL_ORIGINAL, |e| opt(&e.url.original)),
    (fields::CLIENT_IP, |e| opt(&e.client.ip)),
    (fields::USER_NAME, |e| opt(&e.user.name)),
    (fields::USER_AGENT, |e| opt(&e.user_agent.original)),
    (fields::TRACE_ID, |e| opt(&e.trace.id)),
    (fields::SPAN_ID, |e| opt(&e.span.id)),
    (fields::ERROR_TYPE, |e| opt(&e.error.kind)),
    (fields::ERROR_MESSAGE, |e| opt(&e.error.message)),
    (fields::ERROR_STACK_TRACE, |e| opt(&e.error.stack_trace)),
    (fields::EVENT_ID, |e| Val::Str(&e.event.id)),
    (fields::EVENT_DURATION, |e| {
        e.event.duration.map_or(Val::None, Val::I64)
    }),
    (fields::EVENT_ORIGINAL, |e| opt(&e.event.original)),
    (fields::EVENT_DATASET, |e| opt(&e.event.dataset)),
    (fields::EVENT_INGESTED, |e| {
        e.event.ingested.map_or(Val::None, Val::Date)
    }),
    (fields::APP, |e| Val::App(&e.app)),
    (fields::TAGS, |e| Val::Strs(&e.tags)),
    (fields::SLUICE_SOURCE_PATH, |e| {
        Val::Str(&e.sluice.source.path)
    }),
    (fields::SLUICE_SOURCE_FILE_ID, |e| {
        Val::U64(e.sluice.source.file_id)
    }),
    (fields::SLUICE_SOURCE_OFFSET, |e| {
        Val::U64(e.sluice.source.offset)
    }),
    (fields::SLUICE_SOURCE_END_OFFSET, |e| {
        Val::U64(e.sluice.source.end_offset)
    }),
    (fields::SLUICE_FORMAT, |e| {
        e.sluice.format.as_deref().map_or(Val::None, Val::Str)
    }),
    (fields::SLUICE_PATTERN_ID, |e| opt(&e.sluice.pattern.id)),
    (fields::SLUICE_PATTERN_TEMPLATE, |e| {
        opt(&e.sluice.pattern.template)
    }),
    (fields::SLUICE_REDACTED, |e| Val::Strs(&e.sluice.redacted)),
    (fields::SLUICE_ERRORS, |e| Val::Strs(&e.sluice.errors)),
];

/// The schema of a day index and the handles of its fields.
#[derive(Debug, Clone)]
pub struct LogSchema {
    pub schema: Schema,
    pub timestamp: Field,
    pub event_id: Field,
    pub source: Field,
    pub tiebreak: Field,
    /// `(field, kind, accessor)` for every ECS field with a known accessor.
    mapped: Vec<(Field, FieldKind, Accessor)>,
}

/// True when terms aggregations may run on `name` (it has a fast column).
pub fn is_aggregatable(name: &str) -> bool {
    match fields::field(name) {
        Some(def) => match def.kind {
            FieldKind::Keyword | FieldKind::Ip => !HIGH_CARDINALITY_KEYWORDS.contains(&name),
            FieldKind::Long | FieldKind::Date => true,
            FieldKind::Text | FieldKind::Flattened => false,
        },
        None => false,
    }
}

fn keyword_options(name: &str) -> TextOptions {
    let indexing = TextFieldIndexing::default()
        .set_tokenizer("raw")
        .set_index_option(IndexRecordOption::Basic)
        .set_fieldnorms(false);
    let options = TextOptions::default().set_indexing_options(indexing);
    if is_aggregatable(name) {
        options.set_fast(Some("raw"))
    } else {
        options
    }
}

fn text_options() -> TextOptions {
    let indexing = TextFieldIndexing::default()
        .set_tokenizer(LOG_TOKENIZER)
        .set_index_option(IndexRecordOption::WithFreqsAndPositions)
        // Results are ordered by time, never by relevance, so BM25 length norms are dead weight.
        .set_fieldnorms(false);
    TextOptions::default().set_indexing_options(indexing)
}

fn date_options(name: &str) -> DateOptions {
    let options = if RANGE_ONLY_FIELDS.contains(&name) {
        DateOptions::from(FAST)
    } else {
        DateOptions::from(INDEXED | FAST)
    };
    // Nanoseconds: events of one busy pod often share a millisecond, and the sort key must
    // keep their order exactly as the event carries it.
    options.set_precision(DateTimePrecision::Nanoseconds)
}

fn numeric_options(name: &str) -> NumericOptions {
    if RANGE_ONLY_FIELDS.contains(&name) {
        NumericOptions::from(FAST)
    } else {
        NumericOptions::from(INDEXED | FAST)
    }
}

impl LogSchema {
    /// Builds the schema from [`fields::FIELDS`].
    pub fn new() -> LogSchema {
        let mut builder = Schema::builder();
        let mut mapped = Vec::with_capacity(fields::FIELDS.len());
        let mut timestamp = None;
        let mut event_id = None;
        for def in fields::FIELDS {
            let source_only = SOURCE_ONLY_FIELDS.contains(&def.name);
            let field = match def.kind {
                _ if source_only => builder.add_text_field(def.name, TextOptions::default()),
                FieldKind::Date => builder.add_date_field(def.name, date_options(def.name)),
                FieldKind::Text => builder.add_text_field(def.name, text_options()),
                FieldKind::Keyword | FieldKind::Ip => {
                    builder.add_text_field(def.name, keyword_options(def.name))
                }
                FieldKind::Long if U64_FIELDS.contains(&def.name) => {
                    builder.add_u64_field(def.name, numeric_options(def.name))
                }
                FieldKind::Long => builder.add_i64_field(def.name, numeric_options(def.name)),
                FieldKind::Flattened => {
                    let indexing = TextFieldIndexing::default()
                        .set_tokenizer("raw")
                        .set_index_option(IndexRecordOption::Basic)
                        .set_fieldnorms(false);
                    let options = JsonObjectOptions::default()
                        .set_indexing_options(indexing)
                        .set_expand_dots_enabled();
                    builder.add_json_field(def.name, options)
                }
            };
            if def.name == fields::TIMESTAMP {
                timestamp = Some(field);
            }
            if def.name == fields::EVENT_ID {
                event_id = Some(field);
            }
            match ACCESSORS.iter().find(|(name, _)| *name == def.name) {
                // Its value is in `_source`; copying it into the document would be dead work.
                Some(_) if source_only => {}
                Some((_, accessor)) => mapped.push((field, def.kind, *accessor)),
                None => debug_assert!(false, "no accessor for field {}", def.name),
            }
        }
        let source = builder.add_bytes_field(SOURCE_FIELD, STORED);
        let tiebreak = builder.add_u64_field(TIEBREAK_FIELD, FAST);
        // `schemas::fields` always defines both; fall back to the hidden fields only to keep
        // this constructor infallible if that ever changed (tests would catch it).
        let timestamp = timestamp.unwrap_or(tiebreak);
        let event_id = event_id.unwrap_or(tiebreak);
        LogSchema {
            schema: builder.build(),
            timestamp,
            event_id,
            source,
            tiebreak,
            mapped,
        }
    }

    /// The tantivy document of `event`, with `source_json` as its stored source.
    ///
    /// `@timestamp` must already be checked to fit tantivy's nanosecond range.
    pub fn document(&self, event: &LogEvent, source_json: &[u8], tiebreak: u64) -> TantivyDocument {
        let mut doc = TantivyDocument::new();
        for (field, kind, accessor) in &self.mapped {
            let field = *field;
            match accessor(event) {
                Val::None => {}
                Val::Str(s) => add_str(&mut doc, field, *kind, s),
                Val::Strs(values) => {
                    for s in values {
                        add_str(&mut doc, field, *kind, s);
                    }
                }
                Val::I64(v) => doc.add_i64(field, v),
                Val::U64(v) => doc.add_u64(field, v),
                Val::Date(t) => {
                    if let Some(ns) = t.timestamp_nanos_opt() {
                        doc.add_date(field, tantivy::DateTime::from_timestamp_nanos(ns));
                    }
                }
                Val::App(map) => {
                    if !map.is_empty() {
                        doc.add_field_value(field, &OwnedValue::from(map.to_map()));
                    }
                }
                Val::Labels(labels) => {
                    if !labels.is_empty() {
                        let object = labels
                            .iter()
                            .map(|(k, v)| (k.clone(), OwnedValue::Str(v.clone())))
                            .collect();
                        doc.add_object(field, object);
                    }
                }
            }
        }
        doc.add_bytes(self.source, source_json);
        doc.add_u64(self.tiebreak, tiebreak);
        doc
    }
}

impl Default for LogSchema {
    fn default() -> LogSchema {
        LogSchema::new()
    }
}

fn add_str(doc: &mut TantivyDocument, field: Field, kind: FieldKind, s: &str) {
    if s.is_empty() {
        return;
    }
    if matches!(kind, FieldKind::Keyword | FieldKind::Ip) && s.len() > KEYWORD_MAX_BYTES {
        return;
    }
    doc.add_text(field, s);
}

/// The search-order tiebreak of an event: a hash of its `event.id`, or of its source when it has
/// no id.
pub fn tiebreak(event: &LogEvent, source_json: &[u8]) -> u64 {
    if event.event.id.is_empty() {
        xxhash_rust::xxh3::xxh3_64(source_json)
    } else {
        xxhash_rust::xxh3::xxh3_64(event.event.id.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::tokenizer::TokenStream;

    #[test]
    fn accessors_cover_fields_exactly() {
        for def in fields::FIELDS {
            assert!(
                ACCESSORS.iter().any(|(name, _)| *name == def.name),
                "no accessor for {}",
                def.name
            );
        }
        for (name, _) in ACCESSORS {
            assert!(
                fields::field(name).is_some(),
                "accessor for unknown field {name}"
            );
        }
    }

    #[test]
    fn schema_uses_dotted_ecs_names() {
        let s = LogSchema::new();
        for def in fields::FIELDS {
            assert!(s.schema.get_field(def.name).is_ok(), "{} missing", def.name);
        }
        assert!(s.schema.get_field(SOURCE_FIELD).is_ok());
    }

    fn tokens(text: &str) -> Vec<String> {
        let mut analyzer = log_tokenizer();
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    }

    #[test]
    fn tokenizer_splits_log_punctuation() {
        let cases: &[(&str, &[&str])] = &[
            (
                "GET /api/v1/Orders?id=42",
                &["get", "api", "v1", "orders", "id", "42"],
            ),
            ("req-7f3a9c failed", &["req", "7f3a9c", "failed"]),
            (
                "db.pool.exhausted user_id=9",
                &["db", "pool", "exhausted", "user", "id", "9"],
            ),
            ("", &[]),
            ("Ünïcode Straße", &["ünïcode", "straße"]),
        ];
        for (input, expected) in cases {
            assert_eq!(tokens(input), *expected, "input {input:?}");
        }
        let long = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(tokens(&format!("x {long} y")), ["x", "y"]);
    }

    #[test]
    fn aggregatable_fields() {
        assert!(is_aggregatable(fields::SERVICE_NAME));
        assert!(is_aggregatable(fields::HTTP_STATUS));
        assert!(is_aggregatable(fields::SLUICE_PATTERN_ID));
        assert!(!is_aggregatable(fields::EVENT_ID));
        assert!(!is_aggregatable(fields::MESSAGE));
        assert!(!is_aggregatable("no.such.field"));
    }
}
