//! Match expressions on event fields, as rules write them in TOML.
//!
//! ```text
//! http.response.status_code >= 500 && service.name != "healthcheck"
//! log.level >= error || error.type exists
//! url.path =~ "^/api/" and event.duration > 2s
//! kubernetes.labels.team in ["payments", "checkout"] and not message contains "retrying"
//! db_connection_error() || upstream_failure()
//! ```
//!
//! Grammar (precedence low → high): `||`/`or`, `&&`/`and`, `!`/`not`, then a comparison
//! `FIELD OP LITERAL` (`==`, `!=`, `<`, `<=`, `>`, `>=`), `FIELD =~ "regex"`, `FIELD !~ "regex"`,
//! `FIELD contains "text"`, `FIELD in [LITERAL, …]`, `FIELD exists`, a built-in function, `true`,
//! `false`, or a parenthesised expression. Literals are quoted strings, numbers, durations
//! (`250ms`, `2s`, `5m` — in nanoseconds, the unit of `event.duration`) or bare words (log
//! levels). Fields are the dotted ECS names of [`schemas::fields`], `kubernetes.labels.<key>`,
//! `app.<key>[.<key>…]`, and the derived `route` (normalized `url.path`) and `upstream` (host of
//! a failing upstream call).
//!
//! Expressions compile once into a tree of resolved field accessors; evaluation allocates only
//! nothing: `route` is computed once per event into a reused buffer.

use std::cell::{Cell, OnceCell, RefCell};

use regex::Regex;
use schemas::{Level, LogEvent};

use crate::classify::{self, UpstreamFailure};

/// A resolved event field.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Field {
    Timestamp,
    Message,
    Level,
    Logger,
    Service,
    Namespace,
    Pod,
    PodUid,
    Container,
    Node,
    Stream,
    Method,
    Referrer,
    Status,
    ResponseBytes,
    HttpVersion,
    UrlPath,
    UrlQuery,
    UrlOriginal,
    ClientIp,
    UserName,
    UserAgent,
    TraceId,
    SpanId,
    ErrorType,
    ErrorMessage,
    ErrorStack,
    EventId,
    Duration,
    Dataset,
    Format,
    PatternId,
    PatternTemplate,
    Tags,
    Redacted,
    Errors,
    K8sLabel(String),
    App(Vec<String>),
    Route,
    Upstream,
}

impl Field {
    /// Resolves a dotted field name.
    pub(crate) fn parse(name: &str) -> Option<Field> {
        use schemas::fields as f;
        if let Some(key) = name.strip_prefix("kubernetes.labels.") {
            return (!key.is_empty()).then(|| Field::K8sLabel(key.to_owned()));
        }
        if let Some(path) = name.strip_prefix("app.") {
            let parts: Vec<String> = path.split('.').map(str::to_owned).collect();
            return (!parts.iter().any(String::is_empty)).then_some(Field::App(parts));
        }
        Some(match name {
            f::TIMESTAMP => Field::Timestamp,
            f::MESSAGE => Field::Message,
            f::LOG_LEVEL => Field::Level,
            f::LOG_LOGGER => Field::Logger,
            f::SERVICE_NAME => Field::Service,
            f::K8S_NAMESPACE => Field::Namespace,
            f::K8S_POD_NAME => Field::Pod,
            f::K8S_POD_UID => Field::PodUid,
            f::K8S_CONTAINER_NAME => Field::Container,
            f::K8S_NODE_NAME => Field::Node,
            f::STREAM => Field::Stream,
            f::HTTP_METHOD => Field::Method,
            f::HTTP_REFERRER => Field::Referrer,
            f::HTTP_STATUS => Field::Status,
            f::HTTP_RESPONSE_BYTES => Field::ResponseBytes,
            f::HTTP_VERSION => Field::HttpVersion,
            f::URL_PATH => Field::UrlPath,
            f::URL_QUERY => Field::UrlQuery,
            f::URL_ORIGINAL => Field::UrlOriginal,
            f::CLIENT_IP => Field::ClientIp,
            f::USER_NAME => Field::UserName,
            f::USER_AGENT => Field::UserAgent,
            f::TRACE_ID => Field::TraceId,
            f::SPAN_ID => Field::SpanId,
            f::ERROR_TYPE => Field::ErrorType,
            f::ERROR_MESSAGE => Field::ErrorMessage,
            f::ERROR_STACK_TRACE => Field::ErrorStack,
            f::EVENT_ID => Field::EventId,
            f::EVENT_DURATION => Field::Duration,
            f::EVENT_DATASET => Field::Dataset,
            f::SLUICE_FORMAT => Field::Format,
            f::SLUICE_PATTERN_ID => Field::PatternId,
            f::SLUICE_PATTERN_TEMPLATE => Field::PatternTemplate,
            f::TAGS => Field::Tags,
            f::SLUICE_REDACTED => Field::Redacted,
            f::SLUICE_ERRORS => Field::Errors,
            "route" => Field::Route,
            "upstream" => Field::Upstream,
            _ => return None,
        })
    }

    /// True for fields compared as numbers.
    pub(crate) fn is_numeric(&self) -> bool {
        matches!(
            self,
            Field::Status | Field::ResponseBytes | Field::Duration | Field::Timestamp
        )
    }

    /// The numeric value of the field, if set (`app.*` numbers included).
    pub(crate) fn number(&self, facts: &Facts<'_>) -> Option<f64> {
        let ev = facts.event;
        match self {
            Field::Status => ev.http.response.status_code.map(f64::from),
            Field::ResponseBytes => ev.http.response.bytes.map(|b| b as f64),
            Field::Duration => ev.event.duration.map(|d| d as f64),
            Field::Timestamp => Some(ev.timestamp.timestamp_millis() as f64),
            Field::App(path) => app_value(ev, path).and_then(serde_json::Value::as_f64),
            _ => None,
        }
    }

    /// Calls `f` with each string value of the field (lists yield every element) until `f`
    /// returns true; returns whether it did. Numbers are not visited.
    pub(crate) fn any_str(&self, facts: &Facts<'_>, f: &mut dyn FnMut(&str) -> bool) -> bool {
        let ev = facts.event;
        let one = |v: Option<&str>, f: &mut dyn FnMut(&str) -> bool| v.is_some_and(f);
        match self {
            Field::Tags => ev.tags.iter().any(|t| f(t)),
            Field::Redacted => ev.sluice.redacted.iter().any(|t| f(t)),
            Field::Errors => ev.sluice.errors.iter().any(|t| f(t)),
            Field::App(path) => match app_value(ev, path) {
                Some(serde_json::Value::String(s)) => f(s),
                Some(serde_json::Value::Bool(b)) => f(if *b { "true" } else { "false" }),
                _ => false,
            },
            Field::Route => facts.with_route(f),
            Field::Upstream => one(facts.upstream().and_then(|u| u.host), f),
            _ => one(self.str_value(ev), f),
        }
    }

    /// The single string value of a scalar field.
    pub(crate) fn str_value<'e>(&self, ev: &'e LogEvent) -> Option<&'e str> {
        let s = |o: &'e Option<String>| o.as_deref();
        match self {
            Field::Message => Some(ev.message.as_str()),
            Field::Level => ev.log.level.map(Level::as_str),
            Field::Logger => s(&ev.log.logger),
            Field::Service => s(&ev.service.name),
            Field::Namespace => s(&ev.kubernetes.namespace),
            Field::Pod => s(&ev.kubernetes.pod.name),
            Field::PodUid => s(&ev.kubernetes.pod.uid),
            Field::Container => s(&ev.kubernetes.container.name),
            Field::Node => s(&ev.kubernetes.node.name),
            Field::Stream => ev.stream.map(schemas::Stream::as_str),
            Field::Method => s(&ev.http.request.method),
            Field::Referrer => s(&ev.http.request.referrer),
            Field::HttpVersion => s(&ev.http.version),
            Field::UrlPath => s(&ev.url.path),
            Field::UrlQuery => s(&ev.url.query),
            Field::UrlOriginal => s(&ev.url.original),
            Field::ClientIp => s(&ev.client.ip),
            Field::UserName => s(&ev.user.name),
            Field::UserAgent => s(&ev.user_agent.original),
            Field::TraceId => s(&ev.trace.id),
            Field::SpanId => s(&ev.span.id),
            Field::ErrorType => s(&ev.error.kind),
            Field::ErrorMessage => s(&ev.error.message),
            Field::ErrorStack => s(&ev.error.stack_trace),
            Field::EventId => (!ev.event.id.is_empty()).then_some(ev.event.id.as_str()),
            Field::Dataset => s(&ev.event.dataset),
            Field::Format => ev.sluice.format.as_deref(),
            Field::PatternId => s(&ev.sluice.pattern.id),
            Field::PatternTemplate => s(&ev.sluice.pattern.template),
            Field::K8sLabel(k) => ev.kubernetes.labels.get(k).map(String::as_str),
            Field::App(path) => app_value(ev, path).and_then(serde_json::Value::as_str),
            _ => None,
        }
    }

    /// True when the field has a value.
    fn exists(&self, facts: &Facts<'_>) -> bool {
        match self {
            Field::Tags => !facts.event.tags.is_empty(),
            Field::Redacted => !facts.event.sluice.redacted.is_empty(),
            Field::Errors => !facts.event.sluice.errors.is_empty(),
            Field::App(path) => app_value(facts.event, path).is_some_and(|v| !v.is_null()),
            Field::Upstream => facts.upstream().is_some(),
            f if f.is_numeric() => f.number(facts).is_some(),
            f => f.any_str(facts, &mut |_| true),
        }
    }
}

fn app_value<'e>(ev: &'e LogEvent, path: &[String]) -> Option<&'e serde_json::Value> {
    let (first, rest) = path.split_first()?;
    let mut v = ev.app.get(first)?;
    for key in rest {
        v = v.as_object()?.get(key)?;
    }
    Some(v)
}

/// Per-event cache of derived facts, shared by every rule that looks at the event.
#[derive(Debug)]
pub(crate) struct Facts<'a> {
    pub(crate) event: &'a LogEvent,
    db: OnceCell<bool>,
    upstream: OnceCell<Option<UpstreamFailure<'a>>>,
    /// The normalized route, computed on first use into a buffer the caller reuses across
    /// events (see [`Facts::with_buffer`]).
    route_buf: RefCell<String>,
    /// 0: not computed yet, 1: the event has no `url.path`, 2: `route_buf` holds the route.
    route_state: Cell<u8>,
}

impl<'a> Facts<'a> {
    #[cfg(test)]
    pub(crate) fn new(event: &'a LogEvent) -> Facts<'a> {
        Facts::with_buffer(event, String::new())
    }

    /// Facts of `event`, computing derived strings into `buffer` (returned by
    /// [`Facts::into_buffer`]) so the hot path does not allocate per event.
    pub(crate) fn with_buffer(event: &'a LogEvent, buffer: String) -> Facts<'a> {
        Facts {
            event,
            db: OnceCell::new(),
            upstream: OnceCell::new(),
            route_buf: RefCell::new(buffer),
            route_state: Cell::new(0),
        }
    }

    pub(crate) fn into_buffer(self) -> String {
        self.route_buf.into_inner()
    }

    /// Whether the classifiers should look at this event at all: info-and-below lines never
    /// report a failure the recognisers count, so they skip the text scan.
    fn worth_scanning(&self) -> bool {
        self.event.log.level.is_none_or(|l| l >= Level::Warn) || self.event.error.kind.is_some()
    }

    pub(crate) fn db_connection_error(&self) -> bool {
        *self.db.get_or_init(|| {
            let ev = self.event;
            self.worth_scanning()
                && (classify::is_db_connection_error(&ev.message)
                    || ev
                        .error
                        .message
                        .as_deref()
                        .is_some_and(classify::is_db_connection_error)
                    || ev
                        .error
                        .kind
                        .as_deref()
                        .is_some_and(classify::is_db_connection_error))
        })
    }

    pub(crate) fn upstream(&self) -> Option<UpstreamFailure<'a>> {
        *self.upstream.get_or_init(|| {
            let ev: &'a LogEvent = self.event;
            // An access-log line (status and path parsed) reports an inbound request, not a
            // call this service made: skip the scan, which is most of the cost on request-heavy
            // traffic. httpx logs failing responses at INFO, so no level gate applies.
            if ev.http.response.status_code.is_some() && ev.url.path.is_some() {
                return None;
            }
            classify::upstream_failure(&ev.message).or_else(|| {
                ev.error
                    .message
                    .as_deref()
                    .and_then(classify::upstream_failure)
            })
        })
    }

    /// Calls `f` with the normalized route, if the event has a `url.path`.
    pub(crate) fn with_route(&self, f: &mut dyn FnMut(&str) -> bool) -> bool {
        if self.route_state.get() == 0 {
            match self.event.url.path.as_deref() {
                Some(p) => {
                    classify::normalize_route(p, &mut self.route_buf.borrow_mut());
                    self.route_state.set(2);
                }
                None => self.route_state.set(1),
            }
        }
        self.route_state.get() == 2 && f(&self.route_buf.borrow())
    }
}

/// Built-in predicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtin {
    DbConnectionError,
    UpstreamFailure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Eq => ord == Equal,
            CmpOp::Ne => ord != Equal,
            CmpOp::Lt => ord == Less,
            CmpOp::Le => ord != Greater,
            CmpOp::Gt => ord == Greater,
            CmpOp::Ge => ord != Less,
        }
    }
}

/// A compiled match expression.
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Const(bool),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    NumCmp(Field, CmpOp, f64),
    LevelCmp(CmpOp, Level),
    StrEq(Field, String),
    StrNe(Field, String),
    In(Field, Vec<String>),
    NumIn(Field, Vec<f64>),
    Contains(Field, String),
    Regex(Field, Regex),
    Exists(Field),
    Builtin(Builtin),
}

impl Expr {
    /// Evaluates the expression on one event.
    pub(crate) fn eval(&self, facts: &Facts<'_>) -> bool {
        match self {
            Expr::Const(b) => *b,
            Expr::And(v) => v.iter().all(|e| e.eval(facts)),
            Expr::Or(v) => v.iter().any(|e| e.eval(facts)),
            Expr::Not(e) => !e.eval(facts),
            Expr::NumCmp(f, op, lit) => f
                .number(facts)
                .is_some_and(|v| v.partial_cmp(lit).is_some_and(|o| op.holds(o))),
            Expr::LevelCmp(op, lit) => facts.event.log.level.is_some_and(|l| op.holds(l.cmp(lit))),
            Expr::StrEq(f, lit) => f.any_str(facts, &mut |s| s == lit),
            // `!=` holds for a missing field, as in Kibana/ES|QL "not equal" on absent values.
            Expr::StrNe(f, lit) => !f.any_str(facts, &mut |s| s == lit),
            Expr::In(f, set) => f.any_str(facts, &mut |s| set.iter().any(|x| x == s)),
            Expr::NumIn(f, set) => f.number(facts).is_some_and(|v| set.contains(&v)),
            Expr::Contains(f, needle) => f.any_str(facts, &mut |s| s.contains(needle.as_str())),
            Expr::Regex(f, re) => f.any_str(facts, &mut |s| re.is_match(s)),
            Expr::Exists(f) => f.exists(facts),
            Expr::Builtin(Builtin::DbConnectionError) => facts.db_connection_error(),
            Expr::Builtin(Builtin::UpstreamFailure) => facts.upstream().is_some(),
        }
    }

    /// True when the expression matches every event.
    pub(crate) fn is_always(&self) -> bool {
        matches!(self, Expr::Const(true))
    }
}

/// A parse failure at byte `offset` of the expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParseError {
    pub(crate) offset: usize,
    pub(crate) message: String,
}

/// Parses and compiles an expression.
pub(crate) fn parse(src: &str) -> Result<Expr, ParseError> {
    let tokens = lex(src)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        end: src.len(),
    };
    if p.tokens.is_empty() {
        return Ok(Expr::Const(true));
    }
    let e = p.or()?;
    if let Some((off, t)) = p.tokens.get(p.pos) {
        return Err(ParseError {
            offset: *off,
            message: format!("unexpected {t:?} after a complete expression"),
        });
    }
    Ok(e)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Op(&'static str),
}

const OPS: &[&str] = &[
    "&&", "||", "==", "!=", "<=", ">=", "=~", "!~", "<", ">", "!", "(", ")", "[", "]", ",",
];

fn lex(src: &str) -> Result<Vec<(usize, Tok)>, ParseError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c == b'"' || c == b'\'' {
            let mut s = String::new();
            i += 1;
            loop {
                let Some(&d) = b.get(i) else {
                    return Err(ParseError {
                        offset: start,
                        message: "unterminated string".into(),
                    });
                };
                if d == c {
                    i += 1;
                    break;
                }
                if d == b'\\'
                    && let Some(e) = src[i + 1..].chars().next()
                {
                    s.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                    i += 1 + e.len_utf8();
                    continue;
                }
                // Copy one whole UTF-8 character.
                let ch = src[i..].chars().next().ok_or(ParseError {
                    offset: i,
                    message: "invalid character".into(),
                })?;
                s.push(ch);
                i += ch.len_utf8();
            }
            out.push((start, Tok::Str(s)));
            continue;
        }
        if c.is_ascii_digit() || (c == b'-' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            i += 1;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            let num: f64 = src[start..i].parse().map_err(|_| ParseError {
                offset: start,
                message: format!("invalid number {:?}", &src[start..i]),
            })?;
            let unit_start = i;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            let scale = match &src[unit_start..i] {
                "" => 1.0,
                "ns" => 1.0,
                "us" | "µs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                other => {
                    return Err(ParseError {
                        offset: unit_start,
                        message: format!("unknown unit {other:?} (use ns, us, ms, s, m or h)"),
                    });
                }
            };
            out.push((start, Tok::Num(num * scale)));
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c == b'@' {
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || matches!(b[i], b'_' | b'.' | b'@' | b'/' | b'-'))
            {
                i += 1;
            }
            out.push((start, Tok::Ident(src[start..i].to_owned())));
            continue;
        }
        match OPS.iter().find(|op| src[i..].starts_with(*op)) {
            Some(op) => {
                i += op.len();
                out.push((start, Tok::Op(op)));
            }
            None => {
                return Err(ParseError {
                    offset: start,
                    message: format!(
                        "unexpected character {:?}",
                        src[i..].chars().next().unwrap_or('?')
                    ),
                });
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(usize, Tok)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn offset(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |(o, _)| *o)
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            offset: self.offset(),
            message: message.into(),
        })
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(i)) if i == w)
    }

    fn expect_op(&mut self, op: &str) -> Result<(), ParseError> {
        if self.is_op(op) {
            self.pos += 1;
            Ok(())
        } else {
            self.err(format!("expected `{op}`"))
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut v = vec![self.and()?];
        while self.is_op("||") || self.is_word("or") {
            self.pos += 1;
            v.push(self.and()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Expr::Or(v)
        })
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut v = vec![self.unary()?];
        while self.is_op("&&") || self.is_word("and") {
            self.pos += 1;
            v.push(self.unary()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Expr::And(v)
        })
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.is_op("!") || self.is_word("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.is_op("(") {
            self.pos += 1;
            let e = self.or()?;
            self.expect_op(")")?;
            return Ok(e);
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr, ParseError> {
        let Some(Tok::Ident(name)) = self.peek().cloned() else {
            return self.err("expected a field name, a function or `(`");
        };
        let name_at = self.offset();
        self.pos += 1;
        match name.as_str() {
            "true" => return Ok(Expr::Const(true)),
            "false" => return Ok(Expr::Const(false)),
            _ => {}
        }
        if self.is_op("(") {
            self.pos += 1;
            self.expect_op(")")?;
            return match name.as_str() {
                "db_connection_error" => Ok(Expr::Builtin(Builtin::DbConnectionError)),
                "upstream_failure" => Ok(Expr::Builtin(Builtin::UpstreamFailure)),
                _ => Err(ParseError {
                    offset: name_at,
                    message: format!(
                        "unknown function {name}() (known: db_connection_error(), upstream_failure())"
                    ),
                }),
            };
        }
        let field = Field::parse(&name).ok_or(ParseError {
            offset: name_at,
            message: format!("unknown field {name:?}"),
        })?;
        if self.is_word("exists") {
            self.pos += 1;
            return Ok(Expr::Exists(field));
        }
        if self.is_word("contains") {
            self.pos += 1;
            let s = self.string_lit()?;
            return Ok(Expr::Contains(field, s));
        }
        if self.is_word("in") {
            self.pos += 1;
            return self.in_list(field);
        }
        let op = match self.peek() {
            Some(Tok::Op(op)) => *op,
            _ => return self.err("expected an operator after the field"),
        };
        self.pos += 1;
        if op == "=~" || op == "!~" {
            let at = self.offset();
            let pattern = self.string_lit()?;
            let re = Regex::new(&pattern).map_err(|e| ParseError {
                offset: at,
                message: format!("invalid regex: {e}"),
            })?;
            let e = Expr::Regex(field, re);
            return Ok(if op == "!~" {
                Expr::Not(Box::new(e))
            } else {
                e
            });
        }
        let cmp = match op {
            "==" => CmpOp::Eq,
            "!=" => CmpOp::Ne,
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            ">" => CmpOp::Gt,
            ">=" => CmpOp::Ge,
            _ => return self.err(format!("`{op}` is not a comparison")),
        };
        let lit_at = self.offset();
        let lit = self.peek().cloned();
        self.pos += 1;
        match (field, lit) {
            (Field::Level, Some(Tok::Ident(w) | Tok::Str(w))) => {
                let level = parse_level(&w).ok_or(ParseError {
                    offset: lit_at,
                    message: format!("unknown level {w:?}"),
                })?;
                Ok(Expr::LevelCmp(cmp, level))
            }
            (f, Some(Tok::Num(n))) if f.is_numeric() || matches!(f, Field::App(_)) => {
                Ok(Expr::NumCmp(f, cmp, n))
            }
            (f, Some(Tok::Str(s) | Tok::Ident(s))) if !f.is_numeric() => match cmp {
                CmpOp::Eq => Ok(Expr::StrEq(f, s)),
                CmpOp::Ne => Ok(Expr::StrNe(f, s)),
                _ => Err(ParseError {
                    offset: lit_at,
                    message: "strings compare only with == and !=".into(),
                }),
            },
            (f, _) => Err(ParseError {
                offset: lit_at,
                message: if f.is_numeric() {
                    "this field is numeric: compare it with a number".into()
                } else {
                    "expected a string literal".into()
                },
            }),
        }
    }

    fn string_lit(&mut self) -> Result<String, ParseError> {
        match self.peek().cloned() {
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(s)
            }
            _ => self.err("expected a quoted string"),
        }
    }

    fn in_list(&mut self, field: Field) -> Result<Expr, ParseError> {
        self.expect_op("[")?;
        let mut strs = Vec::new();
        let mut nums = Vec::new();
        while !self.is_op("]") {
            match self.peek().cloned() {
                Some(Tok::Str(s) | Tok::Ident(s)) => strs.push(s),
                Some(Tok::Num(n)) => nums.push(n),
                _ => return self.err("expected a literal or `]`"),
            }
            self.pos += 1;
            if !self.is_op("]") {
                self.expect_op(",")?;
            }
        }
        self.pos += 1;
        if field.is_numeric() {
            if !strs.is_empty() {
                return self.err("this field is numeric: list numbers");
            }
            return Ok(Expr::NumIn(field, nums));
        }
        if field == Field::Level {
            let mut levels = Vec::new();
            for s in &strs {
                levels.push(Expr::LevelCmp(
                    CmpOp::Eq,
                    parse_level(s).ok_or(ParseError {
                        offset: self.offset(),
                        message: format!("unknown level {s:?}"),
                    })?,
                ));
            }
            return Ok(Expr::Or(levels));
        }
        strs.extend(nums.iter().map(|n| n.to_string()));
        Ok(Expr::In(field, strs))
    }
}

fn parse_level(s: &str) -> Option<Level> {
    let s = s.to_ascii_lowercase();
    Level::ALL
        .into_iter()
        .find(|l| l.as_str() == s)
        .or(match s.as_str() {
            "warning" => Some(Level::Warn),
            "critical" | "crit" | "panic" => Some(Level::Fatal),
            "err" => Some(Level::Error),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn event() -> Result<LogEvent, String> {
        let ts = chrono::Utc
            .with_ymd_and_hms(2026, 12, 4, 12, 0, 0)
            .single()
            .ok_or("bad time")?;
        let mut ev = LogEvent::new(ts, "GET /api/sessions/123 failed: upstream timed out");
        ev.log.level = Some(Level::Error);
        ev.service.name = Some("checkout".into());
        ev.http.response.status_code = Some(503);
        ev.url.path = Some("/api/sessions/123".into());
        ev.event.duration = Some(2_500_000_000);
        ev.kubernetes
            .labels
            .insert("team".into(), "payments".into());
        ev.app.insert(
            "order".into(),
            serde_json::json!({"total": 42.5, "currency": "EUR"}),
        );
        ev.tags.push("sluice_truncated".into());
        Ok(ev)
    }

    #[test]
    fn expressions_evaluate() -> Result<(), String> {
        let ev = event()?;
        let facts = Facts::new(&ev);
        let cases = [
            ("", true),
            ("http.response.status_code >= 500", true),
            (
                "http.response.status_code >= 500 && service.name != \"checkout\"",
                false,
            ),
            ("log.level >= error", true),
            ("log.level < warning", false),
            ("log.level in [error, fatal]", true),
            ("event.duration > 2s", true),
            ("event.duration > 2500ms", false),
            (
                "url.path =~ \"^/api/\" and not message contains \"retry\"",
                true,
            ),
            ("url.path !~ \"^/api/\"", false),
            ("route == \"/api/sessions/<id>\"", true),
            (
                "kubernetes.labels.team in [\"payments\", \"checkout\"]",
                true,
            ),
            ("kubernetes.labels.missing exists", false),
            ("app.order.total > 40", true),
            ("app.order.currency == EUR", true),
            ("tags == \"sluice_truncated\"", true),
            ("http.response.status_code in [502, 503]", true),
            ("user.name != \"bob\"", true),
            ("(false || true) && !(false)", true),
            ("db_connection_error()", false),
            ("upstream_failure() or error.type exists", false),
        ];
        for (src, want) in cases {
            let e = parse(src).map_err(|e| format!("{src}: {e:?}"))?;
            if e.eval(&facts) != want {
                return Err(format!("{src}: expected {want}"));
            }
        }
        Ok(())
    }

    proptest::proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(src in "\\PC{0,40}") {
            let _ = parse(&src);
        }

        #[test]
        fn parsing_expression_like_text_never_panics(
            src in r#"([a-z._]{1,12}|==|!=|>=|<|=~| in | contains | exists|&&|\|\||!|\(|\)|\[|\]|,|"[^"]{0,6}"?|'\\.|-?[0-9.]{1,4}(ms|s|x)?| ){0,10}"#,
        ) {
            let _ = parse(&src);
        }
    }

    #[test]
    fn escapes_and_multibyte_strings() -> Result<(), String> {
        let e = parse(r#"message == "caf\é \"x\"""#).map_err(|e| e.message)?;
        match e {
            Expr::StrEq(Field::Message, s) if s == "café \"x\"" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    }

    #[test]
    fn bad_expressions_name_the_position() {
        let cases = [
            ("http.response.status_code >= \"x\"", 29),
            ("nope == 1", 0),
            ("service.name > \"a\"", 15),
            ("(log.level >= error", 19),
            ("message =~ \"(\"", 11),
            ("event.duration > 2parsecs", 18),
            ("foo()", 0),
            ("message contains", 16),
            ("\"unterminated", 0),
            ("a.b ==", 0),
            ("service.name == x y", 18),
        ];
        for (src, offset) in cases {
            match parse(src) {
                Ok(_) => panic!("{src}: parsed"),
                Err(e) => assert_eq!(e.offset, offset, "{src}: {}", e.message),
            }
        }
    }
}
