//! The shared field mapper: structured formats (JSON, logfmt, klog key/values) offer each
//! `key → value` here; the mapper recognises the keys the common logging libraries use and
//! fills the ECS fields, and keeps everything else under `app` within the configured limits.
//!
//! Keys are compared after normalization (ASCII lower case, `_` `-` `.` and spaces dropped),
//! so `status_code`, `statusCode`, `StatusCode` and `http.status_code`-style variants meet in
//! one table. The first key to claim an ECS field wins; later duplicates stay under `app`.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use schemas::{AppFields, Level, LogEvent};
use serde_json::{Map, Value};

use crate::duration::{self, DurUnit};
use crate::error::{Problem, Problems};
use crate::{level, stack, time};

/// Longest key we try to recognise; longer keys are never ECS names and go to `app` as is.
const MAX_KEY_BYTES: usize = 40;
/// Longest HTTP method token we accept (`PROPFIND`, `MKCALENDAR` fit).
const MAX_METHOD_BYTES: usize = 16;
/// Longest service name taken from a record: longer values are data, not a name.
const MAX_SERVICE_BYTES: usize = 256;
/// Room for `app` fields reserved at a record's first one: typical application records
/// carry a handful, so the list rarely grows.
const APP_FIELDS_CAPACITY: usize = 8;

/// A JSON-ish value, borrowing strings from the record where it can.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum JVal<'a> {
    Str(Cow<'a, str>),
    U(u64),
    I(i64),
    F(f64),
    Bool(bool),
    Null,
    /// An object or array (owned).
    Json(Value),
}

impl JVal<'_> {
    pub(crate) fn from_value(v: Value) -> JVal<'static> {
        match v {
            Value::String(s) => JVal::Str(Cow::Owned(s)),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    JVal::U(u)
                } else if let Some(i) = n.as_i64() {
                    JVal::I(i)
                } else {
                    JVal::F(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::Bool(b) => JVal::Bool(b),
            Value::Null => JVal::Null,
            other => JVal::Json(other),
        }
    }

    pub(crate) fn into_value(self) -> Value {
        match self {
            JVal::Str(s) => Value::String(s.into_owned()),
            JVal::U(u) => Value::from(u),
            JVal::I(i) => Value::from(i),
            JVal::F(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
            JVal::Bool(b) => Value::Bool(b),
            JVal::Null => Value::Null,
            JVal::Json(v) => v,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            JVal::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a number, reading numeric strings too; the flag says it had a fraction.
    fn as_number(&self) -> Option<(f64, bool)> {
        match self {
            JVal::U(u) => Some((*u as f64, false)),
            JVal::I(i) => Some((*i as f64, false)),
            JVal::F(f) => Some((*f, true)),
            JVal::Str(s) => {
                let t = s.trim();
                if t.is_empty()
                    || !t
                        .bytes()
                        .all(|c| c.is_ascii_digit() || c == b'.' || c == b'-')
                {
                    return None;
                }
                t.parse::<f64>().ok().map(|v| (v, t.contains('.')))
            }
            _ => None,
        }
    }

    /// A scalar rendered as text (strings as is, numbers and booleans printed).
    fn to_text(&self) -> Option<Cow<'_, str>> {
        match self {
            JVal::Str(s) => Some(Cow::Borrowed(s)),
            JVal::U(u) => Some(Cow::Owned(u.to_string())),
            JVal::I(i) => Some(Cow::Owned(i.to_string())),
            JVal::F(f) => Some(Cow::Owned(f.to_string())),
            JVal::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            _ => None,
        }
    }
}

/// What an ECS-bound key means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Role {
    Timestamp,
    Level,
    LevelOtel,
    Message,
    Template,
    Logger,
    Service,
    Method,
    Path,
    Url,
    Query,
    Status,
    Duration,
    ClientIp,
    UserAgent,
    Referrer,
    User,
    TraceId,
    SpanId,
    Error,
    ErrorType,
    ErrorMessage,
    ErrorStack,
    HttpVersion,
    Bytes,
    Dataset,
    RequestLine,
    EpochSecond,
    EpochNano,
}

const ROLE_COUNT: usize = Role::EpochNano as usize + 1;

/// Which object a nested key sits in: the same key means different things in each
/// (`message` in an `error` object is `error.message`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Ctx {
    Root,
    Request,
    Response,
    Headers,
    Error,
    Url,
    Log,
    Service,
    User,
    Client,
    Trace,
    Span,
    UserAgent,
    Event,
    Http,
    Level,
    Instant,
}

/// Normalizes a key into `buf`: ASCII lower case without `_`, `-`, `.` and spaces. `None` for
/// keys too long or not ASCII (no ECS name is either).
fn normalize<'b>(key: &str, buf: &'b mut [u8; MAX_KEY_BYTES]) -> Option<&'b [u8]> {
    if key.len() > MAX_KEY_BYTES {
        return None;
    }
    let mut n = 0;
    for c in key.bytes() {
        match c {
            b'_' | b'-' | b'.' | b' ' => {}
            c if c.is_ascii() => {
                buf[n] = c.to_ascii_lowercase();
                n += 1;
            }
            _ => return None,
        }
    }
    Some(&buf[..n])
}

/// The meaning of `key` inside `ctx`: the role of a scalar value, the context of an object
/// value, and the unit a duration key names.
fn lookup(ctx: Ctx, key: &str) -> (Option<Role>, Option<Ctx>, DurUnit) {
    let mut buf = [0u8; MAX_KEY_BYTES];
    let Some(k) = normalize(key, &mut buf) else {
        return (None, None, DurUnit::Guess);
    };
    use Role as R;
    let role = |r: Role| (Some(r), None, DurUnit::Guess);
    let obj = |c: Ctx| (None, Some(c), DurUnit::Guess);
    let both = |r: Role, c: Ctx| (Some(r), Some(c), DurUnit::Guess);
    let dur = |u: DurUnit| (Some(R::Duration), None, u);
    match ctx {
        Ctx::Root => match k {
            b"time" | b"timestamp" | b"ts" | b"@timestamp" | b"@t" | b"asctime" | b"t"
            | b"date" | b"datetime" | b"eventtime" | b"logtime" | b"timelocal" | b"timeiso8601"
            | b"timeunixnano" | b"realtimetimestamp" | b"@time" | b"timemillis" | b"timemsec" => {
                role(R::Timestamp)
            }
            b"level" | b"lvl" | b"severity" | b"levelname" | b"loglevel" | b"@l"
            | b"severitytext" | b"@level" | b"levelstr" | b"levelvalue" => {
                both(R::Level, Ctx::Level)
            }
            b"severitynumber" => role(R::LevelOtel),
            b"msg" | b"message" | b"@m" | b"@message" | b"body" | b"shortmessage"
            | b"fullmessage" | b"logmessage" => role(R::Message),
            b"event" => both(R::Message, Ctx::Event),
            b"log" => both(R::Message, Ctx::Log),
            b"@mt" | b"messagetemplate" => role(R::Template),
            b"logger" | b"loggername" | b"loglogger" | b"target" | b"name" | b"category"
            | b"sourcecontext" | b"@logger" => role(R::Logger),
            b"service" | b"servicename" | b"app" | b"application" | b"appname" => {
                both(R::Service, Ctx::Service)
            }
            b"method"
            | b"httpmethod"
            | b"requestmethod"
            | b"httprequestmethod"
            | b"verb"
            | b"clientrequestmethod" => role(R::Method),
            b"path" | b"endpoint" | b"urlpath" | b"requestpath" | b"httppath" => role(R::Path),
            b"url" => both(R::Url, Ctx::Url),
            b"uri" | b"requesturi" | b"urloriginal" | b"clientrequesturi" | b"requesturl"
            | b"urlfull" => role(R::Url),
            b"query" | b"querystring" | b"urlquery" => role(R::Query),
            b"status"
            | b"statuscode"
            | b"httpstatus"
            | b"responsestatus"
            | b"httpresponsestatuscode"
            | b"edgeresponsestatus"
            | b"httpstatuscode"
            | b"downstreamstatus" => role(R::Status),
            b"durationms" | b"responsetimems" | b"elapsedms" | b"latencyms" | b"tookms"
            | b"timems" | b"requesttimems" | b"durationmillis" | b"elapsedmillis" => {
                dur(DurUnit::Millis)
            }
            b"durationns" | b"durationnanos" | b"eventduration" | b"originduration" => {
                dur(DurUnit::Nanos)
            }
            b"durationus" | b"durationmicros" | b"elapsedus" => dur(DurUnit::Micros),
            b"durations"
            | b"durationsec"
            | b"durationseconds"
            | b"requesttime"
            | b"upstreamresponsetime"
            | b"elapsedseconds"
            | b"latencyseconds" => dur(DurUnit::Seconds),
            // Traefik prints `Duration` in nanoseconds; everyone else's `duration` is
            // decided by the value (see `duration` module docs).
            b"duration" if key == "Duration" => dur(DurUnit::Nanos),
            b"duration" | b"latency" | b"elapsed" | b"took" | b"responsetime" | b"processtime"
            | b"timetaken" | b"requestduration" | b"elapsedtime" => dur(DurUnit::Guess),
            b"clientip" | b"clientaddr" | b"remoteaddr" | b"remoteip" | b"ip"
            | b"remoteaddress" | b"ipaddress" | b"realip" | b"xforwardedfor" | b"sourceip"
            | b"clientaddress" => role(R::ClientIp),
            b"useragent" => both(R::UserAgent, Ctx::UserAgent),
            b"httpuseragent" | b"ua" | b"useragentoriginal" | b"clientrequestuseragent" => {
                role(R::UserAgent)
            }
            b"referer"
            | b"referrer"
            | b"httpreferer"
            | b"httpreferrer"
            | b"clientrequestreferer"
            | b"httprequestreferrer" => role(R::Referrer),
            b"user" => both(R::User, Ctx::User),
            b"username" | b"usr" | b"login" => role(R::User),
            b"traceid" | b"ddtraceid" | b"oteltraceid" | b"traceidhex" => role(R::TraceId),
            b"trace" => obj(Ctx::Trace),
            b"spanid" | b"ddspanid" | b"otelspanid" => role(R::SpanId),
            b"span" => obj(Ctx::Span),
            b"error" | b"err" | b"exception" | b"excinfo" | b"exctext" | b"@x" | b"throwable"
            | b"thrown" | b"exc" => both(R::Error, Ctx::Error),
            b"stack" | b"stacktrace" | b"errorstacktrace" | b"errorstack" | b"backtrace" => {
                role(R::ErrorStack)
            }
            b"errortype" | b"errorkind" | b"exceptiontype" | b"exceptionclass" | b"errorclass" => {
                role(R::ErrorType)
            }
            b"errormessage" | b"errmsg" | b"exceptionmessage" | b"errormsg" => {
                role(R::ErrorMessage)
            }
            b"protocol" | b"proto" | b"httpversion" | b"serverprotocol" | b"requestprotocol" => {
                role(R::HttpVersion)
            }
            b"bytes" | b"bodybytessent" | b"bytessent" | b"responsesize" | b"httpresponsebytes"
            | b"responsebytes" => role(R::Bytes),
            b"eventdataset" => role(R::Dataset),
            b"request" | b"req" | b"httprequest" => both(R::RequestLine, Ctx::Request),
            b"response" | b"res" | b"httpresponse" => obj(Ctx::Response),
            b"http" => obj(Ctx::Http),
            b"client" => obj(Ctx::Client),
            b"headers" => obj(Ctx::Headers),
            b"instant" => obj(Ctx::Instant),
            // Nested bags of the root's own fields (lnav `@fields`, rust tracing `fields`).
            b"@fields" | b"fields" | b"context" => obj(Ctx::Root),
            _ => (None, None, DurUnit::Guess),
        },
        Ctx::Request => match k {
            b"method" => role(R::Method),
            b"url" | b"uri" | b"path" => role(R::Url),
            b"query" | b"querystring" => role(R::Query),
            b"headers" => obj(Ctx::Headers),
            b"remoteaddress" | b"remoteip" | b"clientip" | b"ip" | b"remoteaddr" => {
                role(R::ClientIp)
            }
            b"proto" | b"protocol" | b"httpversion" => role(R::HttpVersion),
            b"useragent" => role(R::UserAgent),
            b"referer" | b"referrer" => role(R::Referrer),
            _ => (None, None, DurUnit::Guess),
        },
        Ctx::Response => match k {
            b"statuscode" | b"status" => role(R::Status),
            b"size" | b"bytes" | b"bodybytes" => role(R::Bytes),
            _ => (None, None, DurUnit::Guess),
        },
        Ctx::Headers => match k {
            b"useragent" => role(R::UserAgent),
            b"referer" | b"referrer" => role(R::Referrer),
            _ => (None, None, DurUnit::Guess),
        },
        Ctx::Error => match k {
            b"type" | b"name" | b"class" | b"kind" | b"exceptionclass" | b"classname" => {
                role(R::ErrorType)
            }
            b"message" | b"msg" | b"reason" => role(R::ErrorMessage),
            b"stack" | b"stacktrace" | b"trace" | b"backtrace" | b"extendedstacktrace" => {
                role(R::ErrorStack)
            }
            _ => (None, None, DurUnit::Guess),
        },
        Ctx::Url => match k {
            b"path" => role(R::Path),
            b"query" => role(R::Query),
            b"original" | b"full" => role(R::Url),
            _ => (None, None, DurUnit::Guess),
        },
        Ctx::Log => match k {
            b"level" => role(R::Level),
            b"logger" => role(R::Logger),
            _ => (None, None, DurUnit::Guess),
        },
        Ctx::Service | Ctx::User | Ctx::Level => match (ctx, k) {
            (Ctx::Service, b"name") => role(R::Service),
            (Ctx::User, b"name") => role(R::User),
            (Ctx::Level, b"name") => role(R::Level),
            _ => (None, None, DurUnit::Guess),
        },
        Ctx::Client => match k {
            b"ip" | b"address" => role(R::ClientIp),
            _ => (None, None, DurUnit::Guess),
        },
        Ctx::Trace | Ctx::Span => match (ctx, k) {
            (Ctx::Trace, b"id") => role(R::TraceId),
            (Ctx::Span, b"id") => role(R::SpanId),
            _ => (None, None, DurUnit::Guess),
        },
        Ctx::UserAgent => match k {
            b"original" => role(R::UserAgent),
            _ => (None, None, DurUnit::Guess),
        },
        Ctx::Event => match k {
            b"dataset" => role(R::Dataset),
            b"duration" => dur(DurUnit::Nanos),
            _ => (None, None, DurUnit::Guess),
        },
        Ctx::Http => match k {
            b"request" => obj(Ctx::Request),
            b"response" => obj(Ctx::Response),
            b"version" => role(R::HttpVersion),
            _ => (None, None, DurUnit::Guess),
        },
        Ctx::Instant => match k {
            b"epochsecond" => role(R::EpochSecond),
            b"nanoofsecond" => role(R::EpochNano),
            _ => (None, None, DurUnit::Guess),
        },
    }
}

#[derive(Debug)]
struct Slot<'a> {
    key: Cow<'a, str>,
    val: JVal<'a>,
    unit: DurUnit,
}

/// Limits for what goes under `app`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_depth: usize,
    pub(crate) max_fields: usize,
    pub(crate) max_field_bytes: usize,
}

/// What a key means in a context: see [`lookup`].
type Meaning = (Option<Role>, Option<Ctx>, DurUnit);

/// Entries in the [`KeyCache`]: a power of two comfortably above the distinct keys one
/// service logs, so they rarely evict each other (12 KB).
const KEY_CACHE_SLOTS: usize = 256;

/// A memo of [`lookup`], keyed by context and the key exactly as written: records from one
/// service repeat the same keys, and a hit (hash and compare) is several times cheaper
/// than normalizing and matching the key against the tables. Direct-mapped, so a miss just
/// recomputes and overwrites. One per [`crate::Parser`], lent to each record's collector.
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    entries: Vec<CacheEntry>,
}

#[derive(Debug, Clone, Copy)]
struct CacheEntry {
    ctx: Ctx,
    /// Key length, or `u8::MAX` for an empty entry (no cached key is that long).
    len: u8,
    /// [`key_words`] of the key: the whole key when it is at most 16 bytes.
    words: (u64, u64),
    /// The key's bytes, compared only for keys longer than 16.
    key: [u8; MAX_KEY_BYTES],
    meaning: Meaning,
}

const EMPTY_ENTRY: CacheEntry = CacheEntry {
    ctx: Ctx::Root,
    len: u8::MAX,
    words: (0, 0),
    key: [0; MAX_KEY_BYTES],
    meaning: (None, None, DurUnit::Guess),
};

/// Keys up to this long are identified by their length and [`key_words`] alone.
const WORDS_COVER_BYTES: usize = 16;

impl KeyCache {
    /// `lookup(ctx, key)`, from the memo when it holds it.
    fn meaning(&mut self, ctx: Ctx, key: &str) -> Meaning {
        let b = key.as_bytes();
        if b.len() > MAX_KEY_BYTES {
            return lookup(ctx, key);
        }
        if self.entries.is_empty() {
            self.entries = vec![EMPTY_ENTRY; KEY_CACHE_SLOTS];
        }
        let words = key_words(b);
        // Two-way: a key lives in its home slot or the neighbour (same cache line), so two
        // keys of one service that hash alike (likely: ten keys in 256 slots collide one
        // time in five) do not evict each other on every record.
        let home = key_hash(ctx, b.len(), words) % KEY_CACHE_SLOTS;
        let matches = |e: &CacheEntry| {
            e.ctx == ctx
                && usize::from(e.len) == b.len()
                && e.words == words
                && (b.len() <= WORDS_COVER_BYTES || e.key[..b.len()] == *b)
        };
        let (Some(first), Some(second)) = (self.entries.get(home), self.entries.get(home ^ 1))
        else {
            return lookup(ctx, key);
        };
        if matches(first) {
            return first.meaning;
        }
        if matches(second) {
            return second.meaning;
        }
        // Fill the home slot while it is free, else the neighbour (the home key stays).
        let victim = if first.len == u8::MAX { home } else { home ^ 1 };
        let meaning = lookup(ctx, key);
        let Some(e) = self.entries.get_mut(victim) else {
            return meaning;
        };
        e.ctx = ctx;
        e.len = b.len() as u8;
        e.words = words;
        e.key[..b.len()].copy_from_slice(b);
        e.meaning = meaning;
        meaning
    }
}

/// A short key's first and last 8 bytes (overlapping when shorter than 16; 4-byte halves
/// below 8 bytes; the bytes themselves below 4). Together with the length they determine
/// any key of at most 16 bytes exactly.
fn key_words(b: &[u8]) -> (u64, u64) {
    let word = |at: usize| {
        let mut w = [0u8; 8];
        if let Some(src) = b.get(at..at + 8) {
            w.copy_from_slice(src);
        }
        u64::from_le_bytes(w)
    };
    let half = |at: usize| {
        let mut w = [0u8; 4];
        if let Some(src) = b.get(at..at + 4) {
            w.copy_from_slice(src);
        }
        u64::from(u32::from_le_bytes(w))
    };
    match b.len() {
        8.. => (word(0), word(b.len() - 8)),
        4..8 => (half(0), half(b.len() - 4)),
        _ => (b.iter().fold(0u64, |h, &c| h << 8 | u64::from(c)), 0),
    }
}

/// The cache slot hash: the key's words, length and context mixed by one multiply.
/// Collisions only cost a recomputation, since the cache compares whole keys.
fn key_hash(ctx: Ctx, len: usize, (head, tail): (u64, u64)) -> usize {
    // The 64-bit golden-ratio constant: odd, with well-spread bits.
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mixed = (head ^ tail.rotate_left(29) ^ ((ctx as u64) << 56 | len as u64)).wrapping_mul(K);
    (mixed >> 40) as usize
}

/// Collects one record's fields, then writes them into a [`LogEvent`].
#[derive(Debug)]
pub(crate) struct Collector<'a> {
    slots: [Option<Slot<'a>>; ROLE_COUNT],
    /// Fields for `app` in the order they were put; sorted once in [`Collector::finish`].
    app: Vec<(String, Value)>,
    fields_left: usize,
    limits: Limits,
    pub(crate) problems: Problems,
    /// Borrowed from the parser for this record; hand it back with [`Collector::take_cache`].
    cache: KeyCache,
}

impl<'a> Collector<'a> {
    pub(crate) fn new(limits: Limits, problems: Problems, cache: KeyCache) -> Collector<'a> {
        Collector {
            slots: std::array::from_fn(|_| None),
            app: Vec::new(),
            fields_left: limits.max_fields,
            limits,
            problems,
            cache,
        }
    }

    /// The key cache lent to [`Collector::new`], to keep for the next record. Takes it
    /// out rather than consuming the collector: moving the collector (2 KB) cost a copy.
    pub(crate) fn take_cache(&mut self) -> KeyCache {
        std::mem::take(&mut self.cache)
    }

    /// Offers one top-level `key → value` of the record. Inlined into the format parsers:
    /// passing the value through memory to a call cost a store-forwarding stall per field.
    #[inline(always)]
    pub(crate) fn offer(&mut self, key: Cow<'a, str>, val: JVal<'a>) {
        self.offer_in(Ctx::Root, key, val);
    }

    #[inline(always)]
    fn offer_in(&mut self, ctx: Ctx, key: Cow<'a, str>, val: JVal<'a>) {
        let (role, obj_ctx, unit) = self.cache.meaning(ctx, &key);
        match (val, role, obj_ctx) {
            (JVal::Json(Value::Object(map)), _, Some(c)) => {
                let rest = self.absorb(c, &key, map);
                if !rest.is_empty() {
                    self.put_app(key.into_owned(), Value::Object(rest));
                }
            }
            (JVal::Null, Some(_), _) => {}
            (val, Some(r), _) => {
                let slot = &mut self.slots[r as usize];
                if slot.is_none() {
                    *slot = Some(Slot { key, val, unit });
                } else {
                    self.put_app(key.into_owned(), val.into_value());
                }
            }
            (val, None, _) => self.put_app(key.into_owned(), val.into_value()),
        }
    }

    /// Maps the keys of a nested object; returns what was not mapped.
    fn absorb(&mut self, ctx: Ctx, parent: &str, map: Map<String, Value>) -> Map<String, Value> {
        let mut rest = Map::new();
        for (k, v) in map {
            let (role, obj_ctx, unit) = self.cache.meaning(ctx, &k);
            match (v, role, obj_ctx) {
                (Value::Object(m), _, Some(c)) => {
                    let path = format!("{parent}.{k}");
                    let sub = self.absorb(c, &path, m);
                    if !sub.is_empty() {
                        rest.insert(k, Value::Object(sub));
                    }
                }
                (Value::Null, Some(_), _) => {}
                (v, Some(r), _) if self.slots[r as usize].is_none() => {
                    self.slots[r as usize] = Some(Slot {
                        key: Cow::Owned(format!("{parent}.{k}")),
                        val: JVal::from_value(v),
                        unit,
                    });
                }
                (v, _, _) => {
                    rest.insert(k, v);
                }
            }
        }
        rest
    }

    /// Puts a value under `app`, enforcing depth, field-count and size limits.
    fn put_app(&mut self, key: String, mut v: Value) {
        if self.fields_left == 0 {
            self.problems.add(Problem::TooManyFields);
            return;
        }
        self.limit(&mut v, 1);
        if self.app.capacity() == 0 {
            self.app.reserve(APP_FIELDS_CAPACITY);
        }
        self.app.push((key, v));
    }

    fn limit(&mut self, v: &mut Value, depth: usize) {
        match v {
            Value::Object(_) | Value::Array(_) if depth >= self.limits.max_depth => {
                let mut s = v.to_string();
                self.truncate(&mut s);
                self.problems.add(Problem::JsonDepthExceeded);
                *v = Value::String(s);
                self.fields_left = self.fields_left.saturating_sub(1);
            }
            Value::Object(m) => {
                let keys: Vec<String> = m.keys().cloned().collect();
                for k in keys {
                    if self.fields_left == 0 {
                        m.remove(&k);
                        self.problems.add(Problem::TooManyFields);
                        continue;
                    }
                    if let Some(child) = m.get_mut(&k) {
                        self.limit(child, depth + 1);
                    }
                }
            }
            Value::Array(items) => {
                let mut keep = items.len();
                for (i, child) in items.iter_mut().enumerate() {
                    if self.fields_left == 0 {
                        keep = i;
                        self.problems.add(Problem::TooManyFields);
                        break;
                    }
                    self.limit(child, depth + 1);
                }
                items.truncate(keep);
            }
            Value::String(s) => {
                self.truncate(s);
                self.fields_left = self.fields_left.saturating_sub(1);
            }
            _ => self.fields_left = self.fields_left.saturating_sub(1),
        }
    }

    fn truncate(&mut self, s: &mut String) {
        if s.len() > self.limits.max_field_bytes {
            let cut = level::floor_char_boundary(s, self.limits.max_field_bytes);
            s.truncate(cut);
            self.problems.add(Problem::FieldTruncated);
        }
    }

    /// A keyword-sized string for an ECS field, cut at `max_field_bytes`.
    fn keyword(&mut self, s: &str) -> String {
        let mut out = s.to_owned();
        self.truncate(&mut out);
        out
    }

    fn take(&mut self, r: Role) -> Option<Slot<'a>> {
        self.slots[r as usize].take()
    }

    fn reject(&mut self, slot: Slot<'a>) {
        self.put_app(slot.key.into_owned(), slot.val.into_value());
    }

    /// Writes the collected fields into `ev` (once; it empties the collector). Returns
    /// true when the record carried a message of its own. Borrows rather than consumes:
    /// moving the collector (its slots are 2 KB) cost a copy per record.
    pub(crate) fn finish(
        &mut self,
        ev: &mut LogEvent,
        fallback_time: DateTime<Utc>,
    ) -> (bool, Problems) {
        self.finish_time(ev, fallback_time);
        self.finish_level(ev);
        let has_message = self.finish_message(ev);
        if let Some(s) = self.take(Role::Logger) {
            match s.val.as_str() {
                Some(v) if !v.is_empty() => ev.log.logger = Some(self.keyword(v)),
                _ => self.reject(s),
            }
        }
        if let Some(s) = self.take(Role::Service) {
            match s.val.as_str() {
                Some(v) if !v.is_empty() && v.len() <= MAX_SERVICE_BYTES => {
                    ev.service.name = Some(v.to_owned())
                }
                _ => self.reject(s),
            }
        }
        self.finish_http(ev);
        self.finish_error(ev);
        for (role, name) in [(Role::TraceId, true), (Role::SpanId, false)] {
            if let Some(s) = self.take(role) {
                let text = s.val.to_text().map(|t| t.into_owned());
                match text {
                    Some(t) if !t.is_empty() => {
                        let t = self.keyword(&t);
                        if name {
                            ev.trace.id = Some(t);
                        } else {
                            ev.span.id = Some(t);
                        }
                    }
                    _ => self.reject(s),
                }
            }
        }
        if let Some(s) = self.take(Role::User) {
            match s.val.to_text() {
                Some(t) if !t.is_empty() && t != "-" => {
                    let t = t.into_owned();
                    ev.user.name = Some(self.keyword(&t));
                }
                _ => self.reject(s),
            }
        }
        if let Some(s) = self.take(Role::Dataset) {
            match s.val.as_str() {
                Some(v) if !v.is_empty() => ev.event.dataset = Some(self.keyword(v)),
                _ => self.reject(s),
            }
        }
        // Anything still in a slot (e.g. a lone `epochSecond`) stays visible under `app`.
        for i in 0..ROLE_COUNT {
            if let Some(s) = self.slots[i].take() {
                self.reject(s);
            }
        }
        if !self.app.is_empty() {
            let mut app = AppFields::from_unsorted(std::mem::take(&mut self.app));
            ev.app.append(&mut app);
        }
        (has_message, self.problems)
    }

    fn finish_time(&mut self, ev: &mut LogEvent, fallback_time: DateTime<Utc>) {
        ev.timestamp = fallback_time;
        if let Some(s) = self.take(Role::EpochSecond) {
            let nanos = self
                .take(Role::EpochNano)
                .and_then(|n| n.val.as_number())
                .map_or(0.0, |(v, _)| v);
            match s.val.as_number() {
                Some((secs, _)) if secs > 0.0 && secs < 1e11 && (0.0..1e9).contains(&nanos) => {
                    ev.timestamp = chrono::TimeZone::timestamp_opt(&Utc, secs as i64, nanos as u32)
                        .single()
                        .unwrap_or(fallback_time);
                    return;
                }
                _ => self.reject(s),
            }
        }
        let Some(s) = self.take(Role::Timestamp) else {
            return;
        };
        let parsed = match &s.val {
            JVal::Str(v) => time::parse_str(v),
            JVal::U(u) => i64::try_from(*u).ok().and_then(time::from_epoch_i64),
            JVal::I(i) => time::from_epoch_i64(*i),
            JVal::F(f) => time::from_epoch_f64(*f),
            // MongoDB extended JSON: `{"$date": "2022-07-28T18:00:00.903+02:00"}`.
            JVal::Json(Value::Object(m)) => match m.get("$date") {
                Some(Value::String(v)) => time::parse_str(v),
                Some(Value::Number(n)) => n.as_i64().and_then(time::from_epoch_i64),
                _ => None,
            },
            _ => None,
        };
        match parsed {
            Some(t) => ev.timestamp = t,
            None => {
                self.problems.add(Problem::TimestampInvalid);
                self.reject(s);
            }
        }
    }

    fn finish_level(&mut self, ev: &mut LogEvent) {
        if let Some(s) = self.take(Role::Level) {
            let lvl = match &s.val {
                JVal::Str(v) => level::from_word(v).or_else(|| {
                    v.trim()
                        .parse::<f64>()
                        .ok()
                        .and_then(level::from_pino_number)
                }),
                v => v.as_number().and_then(|(n, _)| level::from_pino_number(n)),
            };
            match lvl {
                Some(l) => ev.log.level = Some(l),
                None => self.reject(s),
            }
        }
        if let Some(s) = self.take(Role::LevelOtel) {
            match s
                .val
                .as_number()
                .and_then(|(n, _)| level::from_otel_number(n))
            {
                Some(l) if ev.log.level.is_none() => ev.log.level = Some(l),
                _ => self.reject(s),
            }
        }
    }

    fn finish_message(&mut self, ev: &mut LogEvent) -> bool {
        let mut has = false;
        if let Some(s) = self.take(Role::Message) {
            match s.val {
                // Move an unescaped-and-owned string instead of copying it again.
                JVal::Str(t) => {
                    ev.message = t.into_owned();
                    has = true;
                }
                ref v => match v.to_text() {
                    Some(t) => {
                        ev.message = t.into_owned();
                        has = true;
                    }
                    None => self.reject(s),
                },
            }
        }
        if let Some(s) = self.take(Role::Template) {
            match s.val.as_str() {
                Some(t) if !has => {
                    ev.message = t.to_owned();
                    has = true;
                }
                _ => self.reject(s),
            }
        }
        has
    }

    fn finish_http(&mut self, ev: &mut LogEvent) {
        if let Some(s) = self.take(Role::RequestLine) {
            match s.val.as_str().and_then(split_request_line) {
                Some((m, target, version)) => {
                    ev.http.request.method = Some(m.to_owned());
                    set_url(ev, target);
                    if let Some(v) = version {
                        ev.http.version = Some(v.to_owned());
                    }
                }
                None => self.reject(s),
            }
        }
        if let Some(s) = self.take(Role::Method) {
            match s.val.as_str() {
                Some(m)
                    if !m.is_empty()
                        && m.len() <= MAX_METHOD_BYTES
                        && m.bytes().all(|c| c.is_ascii_alphabetic()) =>
                {
                    ev.http.request.method = Some(m.to_ascii_uppercase());
                }
                _ => self.reject(s),
            }
        }
        if let Some(s) = self.take(Role::Status) {
            match s.val.as_number() {
                Some((n, false)) if (100.0..=599.0).contains(&n) => {
                    ev.http.response.status_code = Some(n as u16)
                }
                _ => self.reject(s),
            }
        }
        if let Some(s) = self.take(Role::Url) {
            match s.val.as_str() {
                Some(u) if u.starts_with('/') || u.contains("://") => set_url(ev, u),
                _ => self.reject(s),
            }
        }
        // A bare `path`/`endpoint` is an URL path only in an HTTP record: `"path":
        // "tmp/blobs"` in a storage log is a file.
        let http_context = ev.http.request.method.is_some()
            || ev.http.response.status_code.is_some()
            || ev.url.original.is_some();
        if let Some(s) = self.take(Role::Path) {
            match s.val.as_str() {
                Some(p) if http_context && p.starts_with('/') => {
                    // A bare path is not an "original URL": only path (and query) are set.
                    if ev.url.path.is_none() {
                        match p.split_once('?') {
                            Some((path, q)) => {
                                ev.url.path = Some(path.to_owned());
                                if !q.is_empty() && ev.url.query.is_none() {
                                    ev.url.query = Some(q.to_owned());
                                }
                            }
                            None => ev.url.path = Some(p.to_owned()),
                        }
                    }
                }
                _ => self.reject(s),
            }
        }
        if let Some(s) = self.take(Role::Query) {
            match s.val.as_str() {
                Some(q) if !q.is_empty() => {
                    ev.url.query = Some(q.strip_prefix('?').unwrap_or(q).to_owned())
                }
                _ => self.reject(s),
            }
        }
        if let Some(s) = self.take(Role::Duration) {
            let ns = match &s.val {
                JVal::Str(v) => duration::from_str(v, s.unit),
                v => v
                    .as_number()
                    .and_then(|(n, f)| duration::from_number(n, s.unit, f)),
            };
            match ns {
                Some(ns) => ev.event.duration = Some(ns),
                None => self.reject(s),
            }
        }
        if let Some(s) = self.take(Role::ClientIp) {
            match s.val.as_str().and_then(client_ip) {
                Some(ip) => ev.client.ip = Some(ip.to_owned()),
                None => self.reject(s),
            }
        }
        if let Some(s) = self.take(Role::UserAgent) {
            let ua = match &s.val {
                JVal::Str(v) => Some(v.to_string()),
                // Caddy logs headers as arrays: `"User-Agent": ["curl/8"]`.
                JVal::Json(Value::Array(a)) => a.first().and_then(Value::as_str).map(str::to_owned),
                _ => None,
            };
            match ua {
                Some(u) if !u.is_empty() && u != "-" => {
                    ev.user_agent.original = Some(self.keyword(&u))
                }
                _ => self.reject(s),
            }
        }
        if let Some(s) = self.take(Role::Referrer) {
            match s.val.as_str() {
                Some(r) if !r.is_empty() && r != "-" => {
                    ev.http.request.referrer = Some(self.keyword(r))
                }
                _ => self.reject(s),
            }
        }
        if let Some(s) = self.take(Role::HttpVersion) {
            match s.val.as_str().and_then(http_version) {
                Some(v) => ev.http.version = Some(v.to_owned()),
                None => self.reject(s),
            }
        }
        if let Some(s) = self.take(Role::Bytes) {
            let http = ev.http.response.status_code.is_some() || ev.http.request.method.is_some();
            match s.val.as_number() {
                Some((n, false)) if http && n >= 0.0 => ev.http.response.bytes = Some(n as u64),
                _ => self.reject(s),
            }
        }
    }

    fn finish_error(&mut self, ev: &mut LogEvent) {
        if let Some(s) = self.take(Role::Error) {
            match &s.val {
                JVal::Str(text) if !text.is_empty() => apply_error_text(ev, text),
                JVal::Json(Value::Array(lines)) => {
                    ev.error.stack_trace = Some(join_lines(lines));
                }
                JVal::Bool(_) => self.reject(s),
                v => match v.to_text() {
                    Some(t) if !t.is_empty() => ev.error.message = Some(t.into_owned()),
                    _ => self.reject(s),
                },
            }
        }
        if let Some(s) = self.take(Role::ErrorType) {
            match s.val.as_str() {
                Some(t) if !t.is_empty() => ev.error.kind = Some(self.keyword(t)),
                _ => self.reject(s),
            }
        }
        if let Some(s) = self.take(Role::ErrorMessage) {
            match s.val.to_text() {
                Some(t) if !t.is_empty() => ev.error.message = Some(t.into_owned()),
                _ => self.reject(s),
            }
        }
        if let Some(s) = self.take(Role::ErrorStack) {
            match &s.val {
                JVal::Str(t) if !t.is_empty() => {
                    if (ev.error.kind.is_none() || ev.error.message.is_none())
                        && let Some(info) = stack::extract(t)
                    {
                        ev.error.kind = ev.error.kind.take().or(info.kind);
                        ev.error.message = ev.error.message.take().or(info.message);
                    }
                    ev.error.stack_trace = Some(t.to_string());
                }
                JVal::Json(Value::Array(lines)) => ev.error.stack_trace = Some(join_lines(lines)),
                _ => self.reject(s),
            }
        }
        if ev.error.stack_trace.is_some() && ev.log.level.is_none() {
            ev.log.level = Some(Level::Error);
        }
    }
}

/// An error value given as text: a traceback becomes type/message/stack, one line a message.
fn apply_error_text(ev: &mut LogEvent, text: &str) {
    match stack::extract(text) {
        Some(info) => {
            ev.error.kind = info.kind;
            ev.error.message = info.message;
            ev.error.stack_trace = Some(info.trace.to_owned());
        }
        None => ev.error.message = Some(text.to_owned()),
    }
}

fn join_lines(lines: &[Value]) -> String {
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match l {
            Value::String(s) => out.push_str(s),
            other => out.push_str(&other.to_string()),
        }
    }
    out
}

/// Splits `GET /a?b HTTP/1.1` into method, target and version number.
pub(crate) fn split_request_line(line: &str) -> Option<(&str, &str, Option<&str>)> {
    let mut parts = line.split(' ').filter(|p| !p.is_empty());
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next().and_then(http_version);
    if parts.next().is_some()
        || method.len() > MAX_METHOD_BYTES
        || !method.bytes().all(|c| c.is_ascii_uppercase())
    {
        return None;
    }
    Some((method, target, version))
}

/// `HTTP/1.1` → `1.1`, `1.1` → `1.1`, `HTTP/2.0` → `2.0`.
pub(crate) fn http_version(v: &str) -> Option<&str> {
    let v = v.strip_prefix("HTTP/").unwrap_or(v);
    (!v.is_empty() && v.len() <= 4 && v.bytes().all(|c| c.is_ascii_digit() || c == b'.'))
        .then_some(v)
}

/// Sets `url.original`, `url.path` and `url.query` from a request target or full URL.
pub(crate) fn set_url(ev: &mut LogEvent, target: &str) {
    ev.url.original = Some(target.to_owned());
    let after_host = match target.find("://") {
        Some(i) => {
            let rest = &target[i + 3..];
            match rest.find('/') {
                Some(j) => &rest[j..],
                None => "/",
            }
        }
        None => target,
    };
    let no_fragment = after_host.split('#').next().unwrap_or(after_host);
    match no_fragment.split_once('?') {
        Some((p, q)) => {
            ev.url.path = Some(p.to_owned());
            if !q.is_empty() {
                ev.url.query = Some(q.to_owned());
            }
        }
        None => ev.url.path = Some(no_fragment.to_owned()),
    }
}

/// The client IP from `10.0.0.1`, `10.0.0.1:5123`, `[::1]:80` or an `X-Forwarded-For` list.
pub(crate) fn client_ip(v: &str) -> Option<&str> {
    let first = match memchr::memchr(b',', v.as_bytes()) {
        Some(i) => &v[..i],
        None => v,
    }
    .trim();
    // Fast paths for the common shapes, each deciding exactly what the general path below
    // would: without a colon only IPv4 can parse (IPv6 needs two), and with exactly one
    // colon nothing parses as a bare address, so it can only be `IPv4:port`.
    let b = first.as_bytes();
    match memchr::memchr(b':', b) {
        None => return is_ipv4(b).then_some(first),
        Some(i) if memchr::memchr(b':', &b[i + 1..]).is_none() => {
            let (host, port) = (&first[..i], &b[i + 1..]);
            return (port.iter().all(u8::is_ascii_digit) && is_ipv4(host.as_bytes()))
                .then_some(host);
        }
        Some(_) => {}
    }
    if first.parse::<std::net::IpAddr>().is_ok() {
        return Some(first);
    }
    if let Some(rest) = first.strip_prefix('[') {
        let host = rest.split(']').next()?;
        return host.parse::<std::net::Ipv6Addr>().is_ok().then_some(host);
    }
    let (host, port) = first.rsplit_once(':')?;
    (port.bytes().all(|c| c.is_ascii_digit()) && host.parse::<std::net::Ipv4Addr>().is_ok())
        .then_some(host)
}

/// Whether `b` is a dotted-quad IPv4 address exactly as `Ipv4Addr::from_str` reads one
/// (four decimal octets up to 255, no leading zeros), without its general parser.
fn is_ipv4(b: &[u8]) -> bool {
    let mut octets = 0;
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && i - start < 4 && b[i].is_ascii_digit() {
            i += 1;
        }
        // Digits only (the loop above), so the patterns just bound the value by 255 and
        // rule out leading zeros.
        let ok = matches!(
            &b[start..i],
            [_] | [b'1'..=b'9', _]
                | [b'1', _, _]
                | [b'2', b'0'..=b'4', _]
                | [b'2', b'5', b'0'..=b'5']
        );
        octets += 1;
        if !ok {
            return false;
        }
        match b.get(i) {
            None => return octets == 4,
            Some(b'.') if octets < 4 => i += 1,
            Some(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The hand-written IPv4 check agrees with the standard library's parser.
        #[test]
        fn is_ipv4_agrees_with_std(s in "[0-9.]{0,16}|(25[0-9]|2[0-9][0-9]|[0-9]{1,3})(\\.[0-9]{1,4}){0,4}") {
            proptest::prop_assert_eq!(is_ipv4(s.as_bytes()), s.parse::<std::net::Ipv4Addr>().is_ok(), "{}", s);
        }
    }

    #[test]
    fn key_normalization_meets_variants() {
        for k in ["status_code", "statusCode", "StatusCode", "status-code"] {
            assert_eq!(lookup(Ctx::Root, k).0, Some(Role::Status), "{k}");
        }
        assert_eq!(lookup(Ctx::Root, "Duration").2, DurUnit::Nanos);
        assert_eq!(lookup(Ctx::Root, "duration").2, DurUnit::Guess);
        assert_eq!(lookup(Ctx::Error, "message").0, Some(Role::ErrorMessage));
        assert_eq!(
            lookup(
                Ctx::Root,
                "a_key_that_is_far_too_long_to_be_any_ecs_field_name"
            )
            .0,
            None
        );
    }

    proptest::proptest! {
        /// Keys of at most 16 bytes are told apart by their length and words alone.
        #[test]
        fn key_words_identify_short_keys(
            a in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..=16),
            flip in 0usize..16,
            bit in 0u8..8,
        ) {
            let mut b = a.clone();
            if let Some(byte) = b.get_mut(flip) {
                *byte ^= 1 << bit;
                proptest::prop_assert_ne!(key_words(&a), key_words(&b));
            }
        }
    }

    /// The memo answers exactly what `lookup` answers, on hits, misses and evictions, and
    /// keeps keys that differ only in case apart (`Duration` is Traefik's nanoseconds).
    #[test]
    fn key_cache_matches_lookup() {
        let mut cache = KeyCache::default();
        let mut keys: Vec<String> = [
            "Duration",
            "duration",
            "status_code",
            "statusCode",
            "msg",
            "message",
            "name",
            "url",
            "level",
            "Level",
            "@t",
            "a_key_that_is_far_too_long_to_be_any_ecs_field_name",
            "",
            "ü",
            "time",
            "request_id",
        ]
        .iter()
        .map(|k| (*k).to_owned())
        .collect();
        // Enough distinct keys that direct-mapped slots collide and evict.
        keys.extend((0..2000).map(|i| format!("field_{i}")));
        let ctxs = [Ctx::Root, Ctx::Error, Ctx::Request, Ctx::Event];
        for _ in 0..2 {
            for k in &keys {
                for ctx in ctxs {
                    assert_eq!(cache.meaning(ctx, k), lookup(ctx, k), "{ctx:?} {k}");
                }
            }
        }
    }

    #[test]
    fn client_ip_forms() {
        assert_eq!(client_ip("10.0.0.1:5123"), Some("10.0.0.1"));
        assert_eq!(client_ip("[::1]:80"), Some("::1"));
        assert_eq!(client_ip("2001:db8::1"), Some("2001:db8::1"));
        assert_eq!(client_ip("203.0.113.9, 10.0.0.1"), Some("203.0.113.9"));
        assert_eq!(client_ip("localhost"), None);
        assert_eq!(client_ip("10.0.0.1"), Some("10.0.0.1"));
        assert_eq!(client_ip("10.0.0.1:"), Some("10.0.0.1"));
        assert_eq!(client_ip("10.0.0.1:http"), None);
        assert_eq!(client_ip("[10.0.0.1]:80"), None);
        assert_eq!(client_ip("localhost:8080"), None);
        assert_eq!(client_ip("::ffff:10.0.0.1"), Some("::ffff:10.0.0.1"));
        assert_eq!(client_ip(" 10.0.0.1:80 , 10.0.0.2"), Some("10.0.0.1"));
    }

    #[test]
    fn url_split() {
        let mut ev = LogEvent::new(Utc::now(), "");
        set_url(&mut ev, "https://api.example.com/v1/chat?stream=true#x");
        assert_eq!(ev.url.path.as_deref(), Some("/v1/chat"));
        assert_eq!(ev.url.query.as_deref(), Some("stream=true"));
    }
}
