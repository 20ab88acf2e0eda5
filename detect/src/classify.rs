//! Recognisers for what drivers and HTTP clients really print, and route normalization.
//!
//! - [`is_db_connection_error`]: psycopg2/psycopg 3, asyncpg, SQLAlchemy, Go `lib/pq`/pgx and
//!   MySQL client messages for refused, exhausted, timed-out and dropped connections.
//! - [`upstream_failure`]: failing calls to other HTTP APIs as httpx, requests/urllib3, aiohttp
//!   and Go `net/http` report them (timeouts, 429, 5xx, connect errors), with the upstream host.
//! - [`normalize_route`]: `/api/sessions/8f14e45f-…/events?x=1` → `/api/sessions/<id>/events`.
//!
//! Each recogniser makes one aho-corasick pass over the text; no regex runs per event.

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// Phrases that alone mean a database connection failed (matched case-insensitively).
const DB_STRONG: &[&str] = &[
    "could not connect to server",
    "too many clients already",
    "remaining connection slots are reserved",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "ssl syscall error",
    "server closed the connection unexpectedly",
    "terminating connection due to administrator command",
    "queuepool limit of size",
    "pooltimeout",
    "couldn't get a connection after",
    "toomanyconnectionserror",
    "cannotconnectnowerror",
    "connectiondoesnotexisterror",
    "driver: bad connection",
    "can't connect to mysql server",
    "lost connection to mysql server",
    "mysql server has gone away",
    "error 1040: too many connections",
    "(1040, ",
    "pq: sorry, too many clients",
];

/// Phrases that mean "a connection failed" without saying to what.
const DB_WEAK: &[&str] = &[
    "connection refused",
    "connect call failed",
    "connection reset by peer",
    "connection timed out",
    "timeout expired",
    "i/o timeout",
    "no such host",
    "connection is closed",
    "connection already closed",
    "connection was closed",
    "failed to connect",
    "connection failed",
    "could not translate host name",
    "broken pipe",
];

/// Words that put a [`DB_WEAK`] phrase in a database context.
const DB_CONTEXT: &[&str] = &[
    "psycopg",
    "asyncpg",
    "sqlalchemy",
    "pq:",
    "pgx",
    "pgbouncer",
    "postgres",
    "mysql",
    "mariadb",
    "database",
    ":5432",
    ":3306",
    ":6432",
    "port 5432",
    "port 3306",
    ", 5432)",
    ", 3306)",
    "operationalerror",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum DbClass {
    Strong,
    Weak,
    Context,
}

fn db_matcher() -> &'static (AhoCorasick, Vec<DbClass>) {
    static M: OnceLock<(AhoCorasick, Vec<DbClass>)> = OnceLock::new();
    M.get_or_init(|| {
        let mut pats = Vec::new();
        let mut classes = Vec::new();
        for (list, class) in [
            (DB_STRONG, DbClass::Strong),
            (DB_WEAK, DbClass::Weak),
            (DB_CONTEXT, DbClass::Context),
        ] {
            for p in list {
                pats.push(*p);
                classes.push(class);
            }
        }
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&pats)
            .expect("static patterns always build");
        (ac, classes)
    })
}

/// True when `text` reports a failed, refused, exhausted or dropped database connection.
///
/// Strong phrases ("too many clients already", "QueuePool limit of size") count alone; generic
/// ones ("connection refused", "i/o timeout") only next to a database word or port, so an
/// HTTP client's "connection refused" does not count as a database outage.
pub fn is_db_connection_error(text: &str) -> bool {
    let (ac, classes) = db_matcher();
    let (mut weak, mut context) = (false, false);
    for m in ac.find_overlapping_iter(text) {
        match classes[m.pattern().as_usize()] {
            DbClass::Strong => return true,
            DbClass::Weak => weak = true,
            DbClass::Context => context = true,
        }
        if weak && context {
            return true;
        }
    }
    false
}

/// Why an upstream call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFailureKind {
    Timeout,
    RateLimited,
    ServerError,
    ConnectError,
}

impl UpstreamFailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamFailureKind::Timeout => "timeout",
            UpstreamFailureKind::RateLimited => "rate_limited",
            UpstreamFailureKind::ServerError => "server_error",
            UpstreamFailureKind::ConnectError => "connect_error",
        }
    }
}

/// A failing upstream call found in a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamFailure<'a> {
    pub kind: UpstreamFailureKind,
    /// The upstream host as printed, or `None` when the line does not name it.
    pub host: Option<&'a str>,
}

/// Signatures of HTTP-client failures (case-sensitive: these are class and message names).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sig {
    /// httpx's own INFO line: `HTTP Request: GET https://h/p "HTTP/1.1 503 Service Unavailable"`.
    HttpxRequestLine,
    Timeout,
    RateLimited,
    ServerError,
    ConnectError,
}

const UPSTREAM_SIGS: &[(&str, Sig)] = &[
    ("HTTP Request: ", Sig::HttpxRequestLine),
    // httpx exceptions
    ("httpx.ConnectTimeout", Sig::Timeout),
    ("httpx.ReadTimeout", Sig::Timeout),
    ("httpx.WriteTimeout", Sig::Timeout),
    ("httpx.PoolTimeout", Sig::Timeout),
    ("httpx.ConnectError", Sig::ConnectError),
    ("httpx.RemoteProtocolError", Sig::ConnectError),
    ("Server error '5", Sig::ServerError),
    ("Client error '429", Sig::RateLimited),
    // requests / urllib3
    ("requests.exceptions.ConnectTimeout", Sig::Timeout),
    ("requests.exceptions.ReadTimeout", Sig::Timeout),
    ("requests.exceptions.Timeout", Sig::Timeout),
    ("requests.exceptions.ConnectionError", Sig::ConnectError),
    ("Read timed out. (read timeout=", Sig::Timeout),
    ("ConnectTimeoutError(", Sig::Timeout),
    ("NewConnectionError(", Sig::ConnectError),
    ("Max retries exceeded with url", Sig::ConnectError),
    (" Server Error: ", Sig::ServerError),
    ("429 Client Error: Too Many Requests", Sig::RateLimited),
    ("too many 5", Sig::ServerError),
    ("too many 429 error responses", Sig::RateLimited),
    // aiohttp
    ("ClientConnectorError", Sig::ConnectError),
    ("ServerDisconnectedError", Sig::ConnectError),
    ("ServerTimeoutError", Sig::Timeout),
    ("ConnectionTimeoutError", Sig::Timeout),
    ("ClientResponseError: 5", Sig::ServerError),
    ("ClientResponseError: 429", Sig::RateLimited),
    ("Cannot connect to host ", Sig::ConnectError),
    // Go net/http
    (
        "(Client.Timeout exceeded while awaiting headers)",
        Sig::Timeout,
    ),
    ("Client.Timeout exceeded", Sig::Timeout),
];

fn upstream_matcher() -> &'static AhoCorasick {
    static M: OnceLock<AhoCorasick> = OnceLock::new();
    M.get_or_init(|| {
        AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .build(UPSTREAM_SIGS.iter().map(|(p, _)| *p))
            .expect("static patterns always build")
    })
}

/// Recognises a failing call to another HTTP API in `text`, with the upstream host when the
/// line names it (a URL, urllib3's `host='…'`, aiohttp's `Cannot connect to host h:443`).
pub fn upstream_failure(text: &str) -> Option<UpstreamFailure<'_>> {
    let ac = upstream_matcher();
    let mut kind = None;
    for m in ac.find_iter(text) {
        let sig = UPSTREAM_SIGS[m.pattern().as_usize()].1;
        let k = match sig {
            Sig::HttpxRequestLine => match httpx_status(&text[m.end()..]) {
                Some(429) => UpstreamFailureKind::RateLimited,
                Some(s) if (500..600).contains(&s) => UpstreamFailureKind::ServerError,
                _ => continue,
            },
            Sig::Timeout => UpstreamFailureKind::Timeout,
            Sig::RateLimited => UpstreamFailureKind::RateLimited,
            Sig::ServerError => UpstreamFailureKind::ServerError,
            Sig::ConnectError => UpstreamFailureKind::ConnectError,
        };
        // A timeout is the most specific diagnosis a line can carry ("Max retries exceeded …
        // ConnectTimeoutError"), so it wins over a generic connect error seen first.
        if kind.is_none() || k == UpstreamFailureKind::Timeout {
            kind = Some(k);
        }
    }
    kind.map(|kind| UpstreamFailure {
        kind,
        host: upstream_host(text),
    })
}

/// The status in httpx's `"HTTP/1.1 503 Service Unavailable"` suffix.
fn httpx_status(rest: &str) -> Option<u16> {
    let at = rest.find("\"HTTP/")?;
    let after = &rest[at + 6..];
    let sp = after.find(' ')?;
    let code = after.get(sp + 1..sp + 4)?;
    code.parse().ok()
}

/// Host characters: letters, digits, `.`, `-` and `_` (IPv6 brackets are kept whole).
fn host_len(s: &str) -> usize {
    if let Some(rest) = s.strip_prefix('[') {
        return rest.find(']').map_or(0, |i| i + 2);
    }
    s.bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        .count()
}

fn upstream_host(text: &str) -> Option<&str> {
    const MARKERS: &[&str] = &[
        "host='",
        "Cannot connect to host ",
        "Connection to ",
        "https://",
        "http://",
    ];
    for marker in MARKERS {
        if let Some(at) = text.find(marker) {
            let rest = &text[at + marker.len()..];
            // Skip URL userinfo (`https://user:pw@host`), which must never become a label.
            let rest = match (rest.find('@'), rest.find(['/', ' ', '"', '\''])) {
                (Some(a), Some(end)) if a < end => &rest[a + 1..],
                (Some(a), None) => &rest[a + 1..],
                _ => rest,
            };
            let n = host_len(rest);
            if n > 0 {
                return Some(&rest[..n]);
            }
        }
    }
    None
}

/// Segments of at least this many characters that mix letters and digits are ids (tokens,
/// hashes, base64); shorter mixed segments such as `v2` or `oauth2` are route words.
const MIN_TOKEN_ID_CHARS: usize = 16;
/// Routes keep at most this many segments so a crawler cannot mint unbounded keys from depth.
const MAX_ROUTE_SEGMENTS: usize = 8;
/// The placeholder for a variable path segment.
pub const ID_PLACEHOLDER: &str = "<id>";

/// Normalizes a URL path into a route: the query is dropped and segments that are ids (all
/// digits, UUIDs, hex of 8+ digits, long mixed tokens, e-mail addresses) become `<id>`.
/// Writes into `out` (cleared first) so the hot path can reuse one buffer.
pub fn normalize_route(path: &str, out: &mut String) {
    out.clear();
    let end = memchr::memchr2(b'?', b'#', path.as_bytes()).unwrap_or(path.len());
    let mut segments = 0;
    for seg in path[..end].split('/') {
        if seg.is_empty() {
            continue;
        }
        if segments == MAX_ROUTE_SEGMENTS {
            out.push_str("/…");
            break;
        }
        out.push('/');
        out.push_str(if is_id_segment(seg) {
            ID_PLACEHOLDER
        } else {
            seg
        });
        segments += 1;
    }
    if out.is_empty() {
        out.push('/');
    }
}

/// One pass over the segment's bytes (this runs for every request event).
fn is_id_segment(seg: &str) -> bool {
    let (mut digits, mut alpha, mut hexish, mut at) = (0usize, 0usize, true, false);
    for &c in seg.as_bytes() {
        if c.is_ascii_digit() {
            digits += 1;
        } else if c.is_ascii_alphabetic() {
            alpha += 1;
            hexish &= c.is_ascii_hexdigit();
        } else {
            hexish &= c == b'-';
            at |= c == b'@';
        }
    }
    let len = seg.len();
    digits == len // all digits
        || at // e-mail addresses
        || (hexish && len >= 8 && digits > 0) // UUIDs, object ids, hashes
        || (len >= MIN_TOKEN_ID_CHARS && digits > 0 && alpha > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real messages as the drivers print them (from their source and bug trackers).
    const DB_POSITIVE: &[&str] = &[
        // psycopg2
        "psycopg2.OperationalError: could not connect to server: Connection refused\n\tIs the server running on host \"db\" (10.0.0.5) and accepting\n\tTCP/IP connections on port 5432?",
        "psycopg2.OperationalError: connection to server at \"postgres\" (10.96.4.2), port 5432 failed: Connection refused",
        "psycopg2.OperationalError: FATAL:  sorry, too many clients already",
        "psycopg2.OperationalError: FATAL:  remaining connection slots are reserved for non-replication superuser connections",
        "psycopg2.OperationalError: SSL SYSCALL error: EOF detected",
        "psycopg2.OperationalError: server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally",
        "psycopg2.OperationalError: could not translate host name \"postgres\" to address: Name or service not known",
        // psycopg 3
        "psycopg.OperationalError: connection failed: connection to server at \"10.0.0.5\", port 5432 failed: timeout expired",
        "psycopg_pool.PoolTimeout: couldn't get a connection after 30.00 sec",
        // asyncpg
        "asyncpg.exceptions.TooManyConnectionsError: sorry, too many clients already",
        "asyncpg.exceptions.CannotConnectNowError: the database system is starting up",
        "asyncpg.exceptions.ConnectionDoesNotExistError: connection was closed in the middle of operation",
        "ConnectionRefusedError: [Errno 111] Connect call failed ('10.0.0.5', 5432)",
        // SQLAlchemy
        "sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) connection to server at \"db\" (10.0.0.5), port 5432 failed: Connection refused",
        "sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00 (Background on this error at: https://sqlalche.me/e/20/3o7r)",
        "sqlalchemy.exc.InterfaceError: (psycopg2.InterfaceError) connection already closed",
        // Go lib/pq, pgx, database/sql
        "dial tcp 10.0.0.5:5432: connect: connection refused",
        "pq: sorry, too many clients already",
        "pq: the database system is shutting down",
        "failed to connect to `host=postgres user=app database=app`: dial error (dial tcp 10.96.0.7:5432: connect: connection refused)",
        "driver: bad connection",
        "dial tcp 10.0.0.5:5432: i/o timeout",
        // MySQL
        "Error 1040: Too many connections",
        "pymysql.err.OperationalError: (2003, \"Can't connect to MySQL server on 'mysql' ([Errno 111] Connection refused)\")",
        "(2013, 'Lost connection to MySQL server during query')",
    ];

    const DB_NEGATIVE: &[&str] = &[
        "GET /api/orders 200 12ms",
        "dial tcp 10.0.0.9:8080: connect: connection refused",
        "psycopg2.errors.UniqueViolation: duplicate key value violates unique constraint \"users_email_key\"",
        "database migration 0042_add_index applied",
        "connection pool warmed up: 10 connections to postgres",
        "httpx.ConnectTimeout: timed out",
        "",
    ];

    #[test]
    fn db_connection_errors_table() -> Result<(), String> {
        for line in DB_POSITIVE {
            if !is_db_connection_error(line) {
                return Err(format!("not recognised: {line}"));
            }
        }
        for line in DB_NEGATIVE {
            if is_db_connection_error(line) {
                return Err(format!("false positive: {line}"));
            }
        }
        Ok(())
    }

    #[test]
    fn upstream_failures_table() -> Result<(), String> {
        use UpstreamFailureKind::*;
        type Case<'a> = (&'a str, Option<(UpstreamFailureKind, Option<&'a str>)>);
        let cases: &[Case<'_>] = &[
            (
                "HTTP Request: POST https://api.stripe.com/v1/charges \"HTTP/1.1 503 Service Unavailable\"",
                Some((ServerError, Some("api.stripe.com"))),
            ),
            (
                "HTTP Request: POST https://api.openai.com/v1/chat/completions \"HTTP/1.1 429 Too Many Requests\"",
                Some((RateLimited, Some("api.openai.com"))),
            ),
            (
                "HTTP Request: GET https://api.github.com/repos \"HTTP/1.1 200 OK\"",
                None,
            ),
            (
                "httpx.HTTPStatusError: Server error '502 Bad Gateway' for url 'https://payments.internal:8443/v1/pay'",
                Some((ServerError, Some("payments.internal"))),
            ),
            ("httpx.ReadTimeout: timed out", Some((Timeout, None))),
            (
                "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='api.github.com', port=443): Read timed out. (read timeout=5)",
                Some((Timeout, Some("api.github.com"))),
            ),
            (
                "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='geo.example.com', port=443): Max retries exceeded with url: /v1/lookup (Caused by ConnectTimeoutError(<urllib3.connection.HTTPSConnection object at 0x7f3a>, 'Connection to geo.example.com timed out. (connect timeout=3)'))",
                Some((Timeout, Some("geo.example.com"))),
            ),
            (
                "requests.exceptions.HTTPError: 503 Server Error: Service Unavailable for url: https://user:secret@api.example.com/v1/items",
                Some((ServerError, Some("api.example.com"))),
            ),
            (
                "requests.exceptions.HTTPError: 429 Client Error: Too Many Requests for url: https://api.example.com/v1/items",
                Some((RateLimited, Some("api.example.com"))),
            ),
            (
                "aiohttp.client_exceptions.ClientConnectorError: Cannot connect to host api.weather.com:443 ssl:default [Connection refused]",
                Some((ConnectError, Some("api.weather.com"))),
            ),
            (
                "aiohttp.client_exceptions.ClientResponseError: 429, message='Too Many Requests', url=URL('https://api.example.com/v1/x')",
                Some((RateLimited, Some("api.example.com"))),
            ),
            (
                "Get \"https://inventory.shop.svc:8080/items\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
                Some((Timeout, Some("inventory.shop.svc"))),
            ),
            (
                "requests.exceptions.HTTPError: 404 Client Error: Not Found for url: https://x.io/a",
                None,
            ),
            ("GET /api/orders 500 12ms", None),
        ];
        for (line, want) in cases {
            let got = upstream_failure(line).map(|f| (f.kind, f.host));
            if got != *want {
                return Err(format!("{line}: got {got:?}, want {want:?}"));
            }
        }
        Ok(())
    }

    #[test]
    fn routes_are_normalized() -> Result<(), String> {
        let cases = [
            (
                "/api/sessions/8f14e45f-ceea-467f-a0e6-6a1b2c3d4e5f",
                "/api/sessions/<id>",
            ),
            (
                "/api/sessions/12345/events?limit=10",
                "/api/sessions/<id>/events",
            ),
            ("/api/v2/users/alice@example.com", "/api/v2/users/<id>"),
            ("/api/v2/orders/5f2b9c0d1e", "/api/v2/orders/<id>"),
            ("/oauth2/token", "/oauth2/token"),
            ("/files/aGVsbG8gd29ybGQ9PTEyMzQ1Njc4", "/files/<id>"),
            ("/healthz", "/healthz"),
            ("", "/"),
            ("//a//b/", "/a/b"),
            (
                "/1/2/3/4/5/6/7/8/9/10",
                "/<id>/<id>/<id>/<id>/<id>/<id>/<id>/<id>/…",
            ),
        ];
        let mut out = String::new();
        for (path, want) in cases {
            normalize_route(path, &mut out);
            if out != want {
                return Err(format!("{path}: got {out}, want {want}"));
            }
        }
        Ok(())
    }
}
