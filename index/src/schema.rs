//! The tantivy schema derived from [`schemas::fields::FIELDS`], the log tokenizer, and the
//! conversion of a [`LogEvent`] into a tantivy document.
//!
//! Field names in the index are the dotted ECS names, so queries read like Kibana's
//! (`log.level:error`, `http.response.status_code:[500 TO 599]`). Two hidden fields support the
//! store: `_source` (the event JSON, shown in search results) and `_tiebreak` (a hash of
//! `event.id` that orders events with the same timestamp, so search-after pages are stable).

use std::collections::BTreeMap;
use std::ops::Range;

use schemas::LogEvent;
use schemas::fields::{self, FieldKind};
use tantivy::Index;
use tantivy::schema::document::{ReferenceValue, ReferenceValueLeaf};
use tantivy::schema::{
    DateOptions, DateTimePrecision, Document, FAST, Field, INDEXED, IndexRecordOption,
    JsonObjectOptions, NumericOptions, OwnedValue, STORED, Schema, TextFieldIndexing, TextOptions,
    Value,
};
use tantivy::tokenizer::{LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer};

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
    pub fn document(&self, event: &LogEvent, source_json: &[u8], tiebreak: u64) -> EventDoc {
        // Every indexed string is also in the source JSON (escaped, so no shorter): the arena
        // never grows past this.
        let mut doc = EventDoc {
            text: String::with_capacity(source_json.len()),
            source: source_json.to_vec(),
            slots: Vec::with_capacity(self.mapped.len() + 2),
            objects: Vec::new(),
            labels: Vec::new(),
        };
        for (field, kind, accessor) in &self.mapped {
            let field = *field;
            match accessor(event) {
                Val::None => {}
                Val::Str(s) => doc.push_str(field, *kind, s),
                Val::Strs(values) => {
                    for s in values {
                        doc.push_str(field, *kind, s);
                    }
                }
                Val::I64(v) => doc.slots.push((field, Slot::I64(v))),
                Val::U64(v) => doc.slots.push((field, Slot::U64(v))),
                Val::Date(t) => {
                    if let Some(ns) = t.timestamp_nanos_opt() {
                        let date = tantivy::DateTime::from_timestamp_nanos(ns);
                        doc.slots.push((field, Slot::Date(date)));
                    }
                }
                Val::App(map) => {
                    if !map.is_empty() {
                        // Through `OwnedValue`'s own conversion, so app strings that read as
                        // RFC 3339 dates are indexed as dates, exactly as tantivy does for JSON.
                        let object = map
                            .iter()
                            .map(|(k, v)| (k.to_string(), OwnedValue::from(v.clone())))
                            .collect();
                        doc.slots.push((field, Slot::Object(doc.objects.len())));
                        doc.objects.push(OwnedValue::Object(object));
                    }
                }
                Val::Labels(labels) => {
                    if !labels.is_empty() {
                        // One labels field per event: `Slot::Labels` names the whole list.
                        debug_assert!(doc.labels.is_empty(), "a second labels field");
                        doc.labels.reserve_exact(labels.len());
                        for (k, v) in labels {
                            let key = doc.stash(k);
                            let value = doc.stash(v);
                            doc.labels.push((key, value));
                        }
                        doc.slots.push((field, Slot::Labels));
                    }
                }
            }
        }
        doc.slots.push((self.source, Slot::Source));
        doc.slots.push((self.tiebreak, Slot::U64(tiebreak)));
        doc
    }
}

impl Default for LogSchema {
    fn default() -> LogSchema {
        LogSchema::new()
    }
}

/// A log event as tantivy reads it: every indexed string copied once into one arena, plus the
/// stored source, in a handful of allocations.
///
/// It replaces a [`tantivy::TantivyDocument`], whose compact encoding cost a type code and
/// length per value, several buffer regrowths per event and a decode of every value on each of
/// tantivy's three passes (fast fields, postings, doc store); label maps went through cloned
/// `OwnedValue` trees. The values, their order and their types are the ones the
/// `TantivyDocument` carried (a unit test pins them), so tantivy indexes, stores and
/// columns exactly the same data.
#[derive(Debug, Default)]
pub struct EventDoc {
    /// The indexed strings, back to back.
    text: String,
    /// The stored `_source` JSON.
    source: Vec<u8>,
    /// The document's values in order.
    slots: Vec<(Field, Slot)>,
    /// JSON objects (the `app` field).
    objects: Vec<OwnedValue>,
    /// Key and value ranges in `text` of the pod labels.
    labels: Vec<(Range<usize>, Range<usize>)>,
}

/// One value of an [`EventDoc`].
#[derive(Debug, Clone)]
enum Slot {
    /// A range of `text`.
    Str(Range<usize>),
    /// The `_source` bytes.
    Source,
    I64(i64),
    U64(u64),
    Date(tantivy::DateTime),
    /// An index into `objects`.
    Object(usize),
    /// The `labels` object.
    Labels,
}

impl EventDoc {
    /// Copies `s` into the arena and returns its range.
    fn stash(&mut self, s: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.push_str(s);
        start..self.text.len()
    }

    /// Adds a string value unless it is empty or an over-long keyword (see
    /// [`KEYWORD_MAX_BYTES`]).
    fn push_str(&mut self, field: Field, kind: FieldKind, s: &str) {
        if s.is_empty() {
            return;
        }
        if matches!(kind, FieldKind::Keyword | FieldKind::Ip) && s.len() > KEYWORD_MAX_BYTES {
            return;
        }
        let range = self.stash(s);
        self.slots.push((field, Slot::Str(range)));
    }

    fn text(&self, range: &Range<usize>) -> &str {
        self.text.get(range.clone()).unwrap_or_default()
    }

    fn value<'a>(&'a self, slot: &'a Slot) -> EventValue<'a> {
        match slot {
            Slot::Str(range) => EventValue::Str(self.text(range)),
            Slot::Source => EventValue::Bytes(&self.source),
            Slot::I64(v) => EventValue::I64(*v),
            Slot::U64(v) => EventValue::U64(*v),
            Slot::Date(v) => EventValue::Date(*v),
            Slot::Object(i) => self
                .objects
                .get(*i)
                .map_or(EventValue::Null, EventValue::Json),
            Slot::Labels => EventValue::Labels(self),
        }
    }
}

impl Document for EventDoc {
    type Value<'a> = EventValue<'a>;
    type FieldsValuesIter<'a> = EventFields<'a>;

    fn iter_fields_and_values(&self) -> EventFields<'_> {
        EventFields {
            doc: self,
            slots: self.slots.iter(),
        }
    }
}

/// The `(field, value)` pairs of an [`EventDoc`], in order.
#[derive(Debug)]
pub struct EventFields<'a> {
    doc: &'a EventDoc,
    slots: std::slice::Iter<'a, (Field, Slot)>,
}

impl<'a> Iterator for EventFields<'a> {
    type Item = (Field, EventValue<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let (field, slot) = self.slots.next()?;
        Some((*field, self.doc.value(slot)))
    }
}

/// A value of an [`EventDoc`], borrowed from it. Small (24 bytes), as tantivy collects and
/// sorts every document's values before indexing them.
#[derive(Debug, Clone, Copy)]
pub enum EventValue<'a> {
    Null,
    Str(&'a str),
    Bytes(&'a [u8]),
    I64(i64),
    U64(u64),
    Date(tantivy::DateTime),
    /// A JSON value: the `app` object or something inside it.
    Json(&'a OwnedValue),
    /// The pod labels of the document: an object of strings.
    Labels(&'a EventDoc),
}

impl<'a> Value<'a> for EventValue<'a> {
    type ArrayIter = std::iter::Map<std::slice::Iter<'a, OwnedValue>, fn(&'a OwnedValue) -> Self>;
    type ObjectIter = EventObjectIter<'a>;

    fn as_value(&self) -> ReferenceValue<'a, Self> {
        let leaf = match *self {
            EventValue::Null => ReferenceValueLeaf::Null,
            EventValue::Str(s) => ReferenceValueLeaf::Str(s),
            EventValue::Bytes(b) => ReferenceValueLeaf::Bytes(b),
            EventValue::I64(v) => ReferenceValueLeaf::I64(v),
            EventValue::U64(v) => ReferenceValueLeaf::U64(v),
            EventValue::Date(v) => ReferenceValueLeaf::Date(v),
            EventValue::Json(value) => {
                return match value.as_value() {
                    ReferenceValue::Leaf(leaf) => ReferenceValue::Leaf(leaf),
                    ReferenceValue::Array(values) => ReferenceValue::Array(
                        values.map(EventValue::Json as fn(&'a OwnedValue) -> Self),
                    ),
                    ReferenceValue::Object(entries) => {
                        ReferenceValue::Object(EventObjectIter::Json(entries))
                    }
                };
            }
            EventValue::Labels(doc) => {
                return ReferenceValue::Object(EventObjectIter::Labels {
                    doc,
                    pairs: doc.labels.iter(),
                });
            }
        };
        ReferenceValue::Leaf(leaf)
    }
}

/// The entries of an object [`EventValue`].
pub enum EventObjectIter<'a> {
    Json(<&'a OwnedValue as Value<'a>>::ObjectIter),
    Labels {
        doc: &'a EventDoc,
        pairs: std::slice::Iter<'a, (Range<usize>, Range<usize>)>,
    },
}

impl std::fmt::Debug for EventObjectIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventObjectIter").finish_non_exhaustive()
    }
}

impl<'a> Iterator for EventObjectIter<'a> {
    type Item = (&'a str, EventValue<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            EventObjectIter::Json(entries) => {
                let (key, value) = entries.next()?;
                Some((key, EventValue::Json(value)))
            }
            EventObjectIter::Labels { doc, pairs } => {
                let (key, value) = pairs.next()?;
                Some((doc.text(key), EventValue::Str(doc.text(value))))
            }
        }
    }
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

    /// The values tantivy reads from an [`EventDoc`], by field name, as owned values.
    fn doc_values(schema: &LogSchema, doc: &EventDoc) -> Vec<(String, OwnedValue)> {
        doc.iter_fields_and_values()
            .map(|(field, value)| {
                let name = schema.schema.get_field_name(field).to_string();
                (name, OwnedValue::from(value.as_value()))
            })
            .collect()
    }

    #[test]
    fn event_doc_carries_every_indexed_value_with_its_type()
    -> Result<(), Box<dyn std::error::Error>> {
        let schema = LogSchema::new();
        let ts: chrono::DateTime<chrono::Utc> = "2026-12-04T10:00:00.123456789Z".parse()?;
        let mut ev = LogEvent::new(ts, "GET /api/orders 500");
        ev.log.level = Some(schemas::Level::Error);
        ev.http.response.status_code = Some(500);
        ev.sluice.source.file_id = 7;
        ev.sluice.source.path = String::new();
        ev.event.id = "id-1".into();
        ev.event.original = Some("raw line".into());
        ev.url.original = Some("x".repeat(KEYWORD_MAX_BYTES + 1));
        ev.user.name = Some(String::new());
        ev.tags = vec!["a".into(), "b".into()];
        ev.kubernetes
            .labels
            .insert("team".into(), "payments".into());
        ev.kubernetes.labels.insert("app".into(), "api".into());
        ev.app.insert("user".into(), serde_json::json!("alice"));
        ev.app.insert("attempt".into(), serde_json::json!(2));
        ev.app
            .insert("seen".into(), serde_json::json!("2026-12-04T09:00:00Z"));
        ev.app
            .insert("ctx".into(), serde_json::json!({"ids": [1, "x"]}));
        let doc = schema.document(&ev, b"{\"k\":1}", 99);
        let values = doc_values(&schema, &doc);
        let get = |name: &str| -> Vec<&OwnedValue> {
            values
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v)
                .collect()
        };
        let ts_value = OwnedValue::Date(tantivy::DateTime::from_timestamp_nanos(
            ts.timestamp_nanos_opt().ok_or("range")?,
        ));
        assert_eq!(get(fields::TIMESTAMP), [&ts_value]);
        assert_eq!(
            get(fields::MESSAGE),
            [&OwnedValue::from("GET /api/orders 500")]
        );
        assert_eq!(get(fields::LOG_LEVEL), [&OwnedValue::from("error")]);
        assert_eq!(get(fields::HTTP_STATUS), [&OwnedValue::I64(500)]);
        assert_eq!(get(fields::SLUICE_SOURCE_FILE_ID), [&OwnedValue::U64(7)]);
        assert_eq!(get(fields::EVENT_ID), [&OwnedValue::from("id-1")]);
        assert_eq!(
            get(fields::TAGS),
            [&OwnedValue::from("a"), &OwnedValue::from("b")]
        );
        // Source-only, over-long keywords and empty strings are left out.
        assert!(get(fields::EVENT_ORIGINAL).is_empty());
        assert!(get(fields::URL_ORIGINAL).is_empty());
        assert!(get(fields::USER_NAME).is_empty());
        assert!(get(fields::SLUICE_SOURCE_PATH).is_empty());
        let labels = OwnedValue::Object(vec![
            ("app".into(), OwnedValue::from("api")),
            ("team".into(), OwnedValue::from("payments")),
        ]);
        assert_eq!(get(fields::K8S_LABELS), [&labels]);
        // App values go through tantivy's JSON conversion: RFC 3339 strings become dates.
        let seen = OwnedValue::from(serde_json::json!("2026-12-04T09:00:00Z"));
        assert!(matches!(seen, OwnedValue::Date(_)));
        let app = OwnedValue::Object(vec![
            ("attempt".into(), OwnedValue::I64(2)),
            (
                "ctx".into(),
                OwnedValue::Object(vec![(
                    "ids".into(),
                    OwnedValue::Array(vec![OwnedValue::I64(1), OwnedValue::from("x")]),
                )]),
            ),
            ("seen".into(), seen),
            ("user".into(), OwnedValue::from("alice")),
        ]);
        assert_eq!(get(fields::APP), [&app]);
        assert_eq!(
            get(SOURCE_FIELD),
            [&OwnedValue::Bytes(b"{\"k\":1}".to_vec())]
        );
        assert_eq!(get(TIEBREAK_FIELD), [&OwnedValue::U64(99)]);
        assert!(std::mem::size_of::<EventValue<'_>>() <= 24);
        // Nothing else: every value above is accounted for.
        let named = [
            fields::TIMESTAMP,
            fields::MESSAGE,
            fields::LOG_LEVEL,
            fields::HTTP_STATUS,
            fields::SLUICE_SOURCE_FILE_ID,
            fields::SLUICE_SOURCE_OFFSET,
            fields::SLUICE_SOURCE_END_OFFSET,
            fields::EVENT_ID,
            fields::TAGS,
            fields::K8S_LABELS,
            fields::APP,
            SOURCE_FIELD,
            TIEBREAK_FIELD,
        ];
        let unexpected: Vec<&str> = values
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !named.contains(n))
            .collect();
        assert!(unexpected.is_empty(), "unexpected values: {unexpected:?}");
        Ok(())
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
