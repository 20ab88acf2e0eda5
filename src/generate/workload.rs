//! The services and what they print: FastAPI api pods, worker pods and the ingress
//! controller, with background noise, decoys and injected incidents.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::content::{
    APOSTROPHE_USERS, APP_BUGS, ASGI_FRAMES, ASYNCPG_CONNECT_FRAMES, BRUTE_FORCE_NAMES,
    BRUTE_FORCE_USER_AGENTS, CELERY_FRAME, DB_ENDPOINT_FRAMES, FIRST_NAMES, Frame, HTTPX_FRAMES,
    KLOG_LINES, LAST_NAMES, LLM_CLIENT_FRAMES, MODELS, PROBE_USER_AGENT, PROBES, ROUTE_CHAT,
    ROUTE_HEALTH, ROUTE_LOGIN, ROUTE_SEARCH, ROUTE_TOKEN, ROUTES, RoutePath, SCANNER_USER_AGENTS,
    SEARCH_QUERIES, SQLALCHEMY_FRAMES, USER_AGENTS, WEB_PATHS, WORKER_BUGS, WORKER_TASKS,
};
use super::incident::{DecoyKind, EpisodeKind, IncidentKind, Phase, SPIKE_MULTIPLIER, Timeline};
use super::rng::Rng;
use super::sink::{Sink, Stream, TimeCache};

/// `service.name` of the api pods (their container name, which the agent falls back to).
pub(crate) const API_SERVICE: &str = "api";
pub(crate) const API_NAMESPACE: &str = "prod";
const INGRESS_NAMESPACE: &str = "ingress-nginx";
/// The api deployment's replica count (the brief's "3 pods").
const API_PODS: usize = 3;
/// The worker deployment's replica count.
const WORKER_PODS: usize = 2;
/// Distinct ordinary client IPs: enough that no single client looks like an attacker.
const CLIENTS: usize = 600;
/// Distinct chat sessions referenced by `/api/sessions/<uuid>`.
const SESSIONS: usize = 4000;
/// Distinct registered users.
const USERS: usize = 300;
const API_UPSTREAM: &str = "prod-api-8000";
const WEB_UPSTREAM: &str = "prod-web-80";
const LLM_URL: &str = "https://api.x.ai/v1/chat/completions";
pub(crate) const LLM_HOST: &str = "api.x.ai";
const DB_PORT: u16 = 5432;

/// Share of each record source in normal traffic, per mille: api access, api app, LLM call,
/// Supabase REST call, ingress access, ingress klog, worker, uvicorn stderr.
const MIX: [u32; 8] = [420, 170, 40, 30, 250, 4, 80, 6];
/// Background 5xx probability per non-probe api request (~0.5% of all api requests).
const BACKGROUND_5XX: f64 = 0.006;
/// 5xx probability during `error_burst`: comfortably above the 20% the brief asks for.
const ERROR_BURST_5XX: f64 = 0.32;
/// 5xx probability of DB-backed routes during `db_connection_errors`: most requests still
/// succeed through retries. With the 500s after unhandled DB tracebacks the api's 5xx ratio
/// is ~2.5%, safely under the 5% error-rate rule, so only the DB rule is expected to fire.
const DB_INCIDENT_5XX: f64 = 0.01;
/// Share of injected DB failures that are unhandled (uvicorn error line, traceback, 500).
const DB_TRACEBACK_SHARE: f64 = 0.2;
/// Share of api requests slowed to ~3.8 s during `latency_spike` (p95 well above 3 s).
const LATENCY_SPIKE_SHARE: f64 = 0.75;
/// Share of api requests taking 2.1–4 s in the slow-minute decoy: above 5% inside the minute
/// (its p95 exceeds 2 s) and below 5% over any 5 minutes (their p95 does not).
const SLOW_MINUTE_SHARE: f64 = 0.15;
/// Background DB connection errors per second of event time: one every ten minutes, far
/// below the "> 5 in 5 min" rule, so a detector must count, not match.
const BACKGROUND_DB_ERRORS_PER_S: f64 = 1.0 / 600.0;
/// Leaked-secret lines per second of event time during `secret_leak` (plus one at its start).
const SECRET_LEAKS_PER_S: f64 = 1.0 / 15.0;
/// Probability a record is an incident's own line (per kind), replacing normal traffic.
const DB_ERROR_SHARE: f64 = 0.03;
const LLM_FAILURE_SHARE: f64 = 0.03;
const BRUTE_FORCE_SHARE: f64 = 0.06;
const PROBE_SHARE: f64 = 0.05;
/// nginx error-log lines from the ingress while the api is failing or slow.
const INGRESS_ERROR_SHARE: f64 = 0.004;

/// Characters of Kubernetes-generated name suffixes (no vowels, no look-alikes).
const K8S_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

#[derive(Debug)]
struct Pod {
    log: usize,
    ip: [u8; 4],
}

/// Secrets printed by the `secret_leak` incident (fake, but shaped like the real thing).
#[derive(Debug)]
struct Secrets {
    xai_key: String,
    openai_key: String,
    supabase_jwt: String,
}

/// The workload's state: pods, populations and scratch buffers.
#[derive(Debug)]
pub(crate) struct Workload {
    rng: Rng,
    pub(crate) timeline: Timeline,
    /// Records per second outside the traffic spike (for per-second event rates).
    base_rate: f64,
    api: Vec<Pod>,
    worker: Vec<Pod>,
    ingress: Pod,
    clients: Vec<[u8; 4]>,
    sessions: Vec<[u8; 16]>,
    users: Vec<String>,
    brute_ip: [u8; 4],
    scanner_ip: [u8; 4],
    db_ip: [u8; 4],
    db_host: String,
    supabase_host: String,
    secrets: Secrets,
    route_weights: Vec<u32>,
    last_leak_episode: Option<i64>,
    time: TimeCache,
    msg: String,
    path: String,
    query: String,
}

impl Workload {
    /// Creates the pods' log directories under `out` and draws the populations from `seed`.
    ///
    /// # Errors
    /// When a directory or file cannot be created.
    pub(crate) fn new(
        seed: u64,
        out: &Path,
        sink: &mut Sink,
        timeline: Timeline,
        base_rate: f64,
    ) -> anyhow::Result<Workload> {
        let root = Rng::new(seed);
        let mut names = root.fork(1);
        let mut pop = root.fork(2);
        let api_rs = k8s_suffix(&mut names, 10);
        let worker_rs = k8s_suffix(&mut names, 10);
        let ingress_rs = k8s_suffix(&mut names, 10);
        let mut api = Vec::with_capacity(API_PODS);
        for i in 0..API_PODS {
            let pod = format!("api-{api_rs}-{}", k8s_suffix(&mut names, 5));
            let dir = pod_dir(out, API_NAMESPACE, &pod, &mut names).join("api");
            api.push(Pod {
                log: sink.add_container(dir)?,
                ip: [10, 42, i as u8, names.range(2, 250) as u8],
            });
        }
        let mut worker = Vec::with_capacity(WORKER_PODS);
        for i in 0..WORKER_PODS {
            let pod = format!("worker-{worker_rs}-{}", k8s_suffix(&mut names, 5));
            let dir = pod_dir(out, API_NAMESPACE, &pod, &mut names).join("worker");
            worker.push(Pod {
                log: sink.add_container(dir)?,
                ip: [10, 42, i as u8, names.range(2, 250) as u8],
            });
        }
        let pod = format!(
            "ingress-nginx-controller-{ingress_rs}-{}",
            k8s_suffix(&mut names, 5)
        );
        let dir = pod_dir(out, INGRESS_NAMESPACE, &pod, &mut names).join("controller");
        let ingress = Pod {
            log: sink.add_container(dir)?,
            ip: [10, 42, 0, names.range(2, 250) as u8],
        };

        let clients = (0..CLIENTS).map(|_| public_ip(&mut pop)).collect();
        let sessions = (0..SESSIONS).map(|_| pop.uuid()).collect();
        let users = (0..USERS)
            .map(|i| {
                let first = pop.pick(&FIRST_NAMES);
                let last = pop.pick(&LAST_NAMES);
                format!("{first}.{last}{}", i % 7)
            })
            .collect();
        let project: String = (0..20)
            .map(|_| char::from(b'a' + pop.below(26) as u8))
            .collect();
        let secrets = Secrets {
            xai_key: format!("xai-{}", random_chars(&mut pop, ALNUM, 80)),
            openai_key: format!("sk-proj-{}", random_chars(&mut pop, ALNUM, 48)),
            supabase_jwt: {
                let payload = format!(
                    r#"{{"iss":"supabase","ref":"{project}","role":"service_role","iat":1733300000,"exp":2048876000}}"#
                );
                format!(
                    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{}.{}",
                    base64url(payload.as_bytes()),
                    random_chars(
                        &mut pop,
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                        43
                    )
                )
            },
        };
        Ok(Workload {
            rng: root.fork(3),
            timeline,
            base_rate,
            api,
            worker,
            ingress,
            clients,
            sessions,
            users,
            brute_ip: [45, 155, 205, pop.range(2, 250) as u8],
            scanner_ip: [193, 142, 146, pop.range(2, 250) as u8],
            db_ip: [3, 64, pop.range(1, 250) as u8, pop.range(2, 250) as u8],
            db_host: format!("db.{project}.supabase.co"),
            supabase_host: format!("{project}.supabase.co"),
            secrets,
            route_weights: ROUTES.iter().map(|r| r.weight).collect(),
            last_leak_episode: None,
            time: TimeCache::new(),
            msg: String::with_capacity(4096),
            path: String::with_capacity(256),
            query: String::with_capacity(256),
        })
    }

    /// Labels the alert of an episode is expected to carry.
    pub(crate) fn labels(&self, kind: EpisodeKind) -> BTreeMap<String, String> {
        let mut l = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            l.insert(k.to_owned(), v);
        };
        match kind {
            EpisodeKind::Incident(IncidentKind::ErrorBurst | IncidentKind::LatencySpike) => {
                // The ingress proxies to the api and sees the same failures.
                put("ingress_upstream", API_UPSTREAM.to_owned());
            }
            EpisodeKind::Incident(IncidentKind::DbConnectionErrors) => {
                put("db_host", self.db_host.clone());
                put("db_port", DB_PORT.to_string());
            }
            EpisodeKind::Incident(IncidentKind::LlmUpstreamFailure) => {
                put("upstream", LLM_HOST.to_owned());
            }
            EpisodeKind::Incident(IncidentKind::BruteForce) => {
                put("client_ip", ip_string(self.brute_ip));
                put("url_path", "/api/auth/login".to_owned());
            }
            EpisodeKind::Incident(IncidentKind::InjectionProbe) => {
                put("client_ip", ip_string(self.scanner_ip));
            }
            EpisodeKind::Incident(IncidentKind::SecretLeak) => {
                put("logger", "app.services.llm".to_owned());
            }
            EpisodeKind::Decoy(DecoyKind::TrafficSpike) => {
                put("multiplier", format!("{SPIKE_MULTIPLIER}"));
            }
            EpisodeKind::Decoy(DecoyKind::SlowMinute) => {}
            EpisodeKind::Decoy(DecoyKind::SqlWordsSearch) => {
                put("url_path", "/api/documents/search".to_owned());
            }
            EpisodeKind::Decoy(DecoyKind::ApostropheUserName) => {
                put("user_name", APOSTROPHE_USERS[0].to_owned());
            }
        }
        l
    }

    /// Emits the next event(s) at `t_ns`, writing at most `remaining` records (at least one
    /// when `remaining > 0`); returns how many were written.
    ///
    /// # Errors
    /// On write failure.
    pub(crate) fn emit(&mut self, t: i64, remaining: u64, sink: &mut Sink) -> anyhow::Result<u64> {
        if remaining == 0 {
            return Ok(0);
        }
        let phase = self.timeline.phase_at(t);
        let rate = self.base_rate * if phase.spike { SPIKE_MULTIPLIER } else { 1.0 };
        if let Some(kind) = phase.incident
            && let Some(n) = self.emit_incident(kind, t, rate, remaining, sink)?
        {
            return Ok(n);
        }
        if self.rng.chance(BACKGROUND_DB_ERRORS_PER_S / rate) {
            return self.db_error_line(t, sink);
        }
        match self.rng.weighted(&MIX) {
            0 => self.api_access(t, phase, remaining, sink),
            1 => self.api_app(t, phase, sink),
            2 => self.llm_call(t, phase, sink),
            3 => self.supabase_call(t, sink),
            4 => self.ingress_access(t, phase, sink),
            5 => self.ingress_klog(t, sink),
            6 => self.worker_line(t, remaining, sink),
            _ => self.uvicorn_stderr(t, sink),
        }
    }

    /// An incident's own lines; `None` when this record is ordinary traffic.
    fn emit_incident(
        &mut self,
        kind: IncidentKind,
        t: i64,
        rate: f64,
        remaining: u64,
        sink: &mut Sink,
    ) -> anyhow::Result<Option<u64>> {
        let n = match kind {
            IncidentKind::ErrorBurst | IncidentKind::LatencySpike => {
                if !self.rng.chance(INGRESS_ERROR_SHARE) {
                    return Ok(None);
                }
                self.ingress_error(t, kind, sink)?
            }
            IncidentKind::DbConnectionErrors => {
                if !self.rng.chance(DB_ERROR_SHARE) {
                    return Ok(None);
                }
                if remaining >= 3 && self.rng.chance(DB_TRACEBACK_SHARE) {
                    self.db_traceback(t, sink)?
                } else {
                    self.db_error_line(t, sink)?
                }
            }
            IncidentKind::LlmUpstreamFailure => {
                if !self.rng.chance(LLM_FAILURE_SHARE) {
                    return Ok(None);
                }
                self.llm_failure(t, sink)?
            }
            IncidentKind::BruteForce => {
                if !self.rng.chance(BRUTE_FORCE_SHARE) {
                    return Ok(None);
                }
                self.brute_force(t, remaining, sink)?
            }
            IncidentKind::InjectionProbe => {
                if !self.rng.chance(PROBE_SHARE) {
                    return Ok(None);
                }
                self.probe(t, sink)?
            }
            IncidentKind::SecretLeak => {
                let episode = self.timeline.episode_start(kind, t);
                let first = episode.is_some() && episode != self.last_leak_episode;
                if !first && !self.rng.chance(SECRET_LEAKS_PER_S / rate) {
                    return Ok(None);
                }
                self.last_leak_episode = episode;
                self.secret_leak(t, sink)?
            }
        };
        Ok(Some(n))
    }

    // ----- api: uvicorn access -----

    fn api_access(
        &mut self,
        t: i64,
        phase: Phase,
        remaining: u64,
        sink: &mut Sink,
    ) -> anyhow::Result<u64> {
        let pod = self.rng.below(API_PODS as u64) as usize;
        let route_idx = self.rng.weighted(&self.route_weights);
        let route = ROUTES[route_idx];
        self.route_path(route_idx);
        let status = self.api_status(route_idx, phase);
        let duration_ms = self.api_duration_ms(route_idx, status, phase);
        let (ip, port, ua) = if route_idx == ROUTE_HEALTH {
            let node = self.api[pod].ip;
            (
                [node[0], node[1], node[2], 1],
                self.rng.range(40_000, 60_000),
                PROBE_USER_AGENT,
            )
        } else {
            (
                *self.rng.pick(&self.clients),
                self.rng.range(1024, 65_535),
                *self.rng.pick(&USER_AGENTS),
            )
        };
        let mut written = 0;
        if status == 500 && remaining >= 3 && self.rng.chance(0.8) {
            written += self.unhandled_exception(t, pod, sink)?;
        }
        let log = self.api[pod].log;
        let path = std::mem::take(&mut self.path);
        let query = std::mem::take(&mut self.query);
        self.write_access(
            t,
            log,
            AccessLine {
                ip,
                port,
                method: route.method,
                path: &path,
                query: &query,
                status,
                duration_ms,
                ua,
            },
            sink,
        )?;
        self.path = path;
        self.query = query;
        Ok(written + 1)
    }

    /// Writes one uvicorn access line as python-json-logger prints it.
    fn write_access(
        &mut self,
        t: i64,
        log: usize,
        a: AccessLine<'_>,
        sink: &mut Sink,
    ) -> anyhow::Result<()> {
        let mut m = std::mem::take(&mut self.msg);
        m.clear();
        m.push_str("{\"asctime\": \"");
        push_py_time(&mut self.time, t, &mut m);
        m.push_str("\", \"levelname\": \"INFO\", \"name\": \"uvicorn.access\", \"message\": \"");
        let _ = write!(m, "{}:{} - \\\"{} ", IpFmt(a.ip), a.port, a.method);
        push_json_inner(&mut m, a.path);
        if !a.query.is_empty() {
            m.push('?');
            push_json_inner(&mut m, a.query);
        }
        let _ = write!(
            m,
            " HTTP/1.1\\\" {}\", \"client_addr\": \"{}:{}\", \"method\": \"{}\", \"path\": ",
            a.status,
            IpFmt(a.ip),
            a.port,
            a.method
        );
        push_json_str(&mut m, a.path);
        if !a.query.is_empty() {
            m.push_str(", \"query\": ");
            push_json_str(&mut m, a.query);
        }
        let _ = write!(
            m,
            ", \"status_code\": {}, \"duration_ms\": {:.2}, \"user_agent\": ",
            a.status, a.duration_ms
        );
        push_json_str(&mut m, a.ua);
        m.push_str(", \"request_id\": \"");
        push_hex(&mut m, self.rng.next_u64());
        push_hex(&mut m, self.rng.next_u64());
        m.push_str("\"}");
        sink.write_record(log, t, Stream::Stdout, &m)?;
        self.msg = m;
        Ok(())
    }

    fn api_status(&mut self, route_idx: usize, phase: Phase) -> u16 {
        let route = ROUTES[route_idx];
        if route_idx == ROUTE_HEALTH {
            return 200;
        }
        let p5xx = match phase.incident {
            Some(IncidentKind::ErrorBurst) => ERROR_BURST_5XX,
            Some(IncidentKind::DbConnectionErrors) if route.uses_db => DB_INCIDENT_5XX,
            _ => BACKGROUND_5XX,
        };
        if self.rng.chance(p5xx) {
            return *self.rng.pick(&[500, 500, 500, 502, 503]);
        }
        if phase.incident == Some(IncidentKind::LlmUpstreamFailure) && route_idx == ROUTE_CHAT {
            if self.rng.chance(0.08) {
                return 502;
            }
            if self.rng.chance(0.03) {
                return 504;
            }
        }
        let (p4xx, code) = match route_idx {
            ROUTE_LOGIN => (0.08, 401),
            ROUTE_TOKEN => (0.03, 401),
            2 | 8 => (0.03, 404),
            ROUTE_CHAT => (0.012, if self.rng.chance(0.25) { 429 } else { 422 }),
            _ => (0.005, 400),
        };
        if self.rng.chance(p4xx) {
            return code;
        }
        route.ok_status
    }

    fn api_duration_ms(&mut self, route_idx: usize, status: u16, phase: Phase) -> f64 {
        let route = ROUTES[route_idx];
        if status == 504 {
            // httpx's read timeout of 10 s on the LLM call.
            return 10_000.0 + self.rng.f64() * 40.0;
        }
        if route_idx != ROUTE_HEALTH {
            if phase.incident == Some(IncidentKind::LatencySpike)
                && self.rng.chance(LATENCY_SPIKE_SHARE)
            {
                return self.rng.log_normal(3_800.0, 0.3);
            }
            if phase.slow_minute && self.rng.chance(SLOW_MINUTE_SHARE) {
                return 2_100.0 + self.rng.log_normal(700.0, 0.4);
            }
            if phase.incident == Some(IncidentKind::DbConnectionErrors)
                && route.uses_db
                && self.rng.chance(0.02)
            {
                // A QueuePool checkout waiting out its 30 s timeout.
                return 30_000.0 + self.rng.f64() * 15.0;
            }
        }
        let d = self.rng.log_normal(route.median_ms, 0.5);
        if status >= 500 { d * 0.6 } else { d }
    }

    /// Fills `self.path` and `self.query` for a route.
    fn route_path(&mut self, route_idx: usize) {
        self.path.clear();
        self.query.clear();
        match ROUTES[route_idx].path {
            RoutePath::Fixed(p) => self.path.push_str(p),
            RoutePath::Session(prefix) => {
                self.path.push_str(prefix);
                let id = *self.rng.pick(&self.sessions);
                push_uuid(&mut self.path, &id);
            }
            RoutePath::Document(prefix) => {
                let _ = write!(self.path, "{prefix}{}", self.rng.range(1_000, 99_999));
            }
            RoutePath::SessionList => {
                self.path.push_str("/api/sessions");
                let _ = write!(self.query, "limit=20&offset={}", 20 * self.rng.below(4));
            }
            RoutePath::Search => {
                self.path.push_str("/api/documents/search");
                self.query.push_str("q=");
                let q = *self.rng.pick(&SEARCH_QUERIES);
                push_form_encoded(&mut self.query, q);
            }
        }
    }

    /// uvicorn's `ERROR:    Exception in ASGI application` and the traceback after it, on
    /// stderr: two records.
    fn unhandled_exception(&mut self, t: i64, pod: usize, sink: &mut Sink) -> anyhow::Result<u64> {
        let log = self.api[pod].log;
        sink.write_record(
            log,
            t,
            Stream::Stderr,
            "ERROR:    Exception in ASGI application",
        )?;
        let (frames, exc) = *self.rng.pick(&APP_BUGS);
        let mut m = std::mem::take(&mut self.msg);
        m.clear();
        m.push_str("Traceback (most recent call last):");
        push_frames(&mut m, &ASGI_FRAMES);
        push_frames(&mut m, frames);
        m.push('\n');
        m.push_str(exc);
        sink.write_record(log, t, Stream::Stderr, &m)?;
        self.msg = m;
        Ok(2)
    }

    // ----- api: structlog app lines -----

    fn api_app(&mut self, t: i64, phase: Phase, sink: &mut Sink) -> anyhow::Result<u64> {
        let pod = self.rng.below(API_PODS as u64) as usize;
        let log = self.api[pod].log;
        let mut m = std::mem::take(&mut self.msg);
        m.clear();
        let user = self.rng.below(USERS as u64);
        let session = *self.rng.pick(&self.sessions);
        let model = *self.rng.pick(&MODELS);
        let special = match phase.incident {
            Some(IncidentKind::LatencySpike) => self.rng.chance(0.2),
            Some(IncidentKind::ErrorBurst) => self.rng.chance(0.25),
            _ => false,
        };
        let (level, logger) = if special {
            if phase.incident == Some(IncidentKind::LatencySpike) {
                let _ = write!(
                    m,
                    "{{\"event\": \"request exceeded latency budget\", \"path\": \"/api/chat\", \"duration_ms\": {:.1}, \"budget_ms\": 2000",
                    self.rng.log_normal(3_800.0, 0.3)
                );
                ("warning", "app.middleware.timing")
            } else {
                m.push_str("{\"event\": \"request failed\", \"error\": \"");
                m.push_str(self.rng.pick(&APP_BUGS).1);
                let _ = write!(m, "\", \"user_id\": \"u_{user:05}\"");
                ("error", "app.middleware.errors")
            }
        } else {
            let kind = self
                .rng
                .weighted(&[180, 180, 120, 50, 15, 60, 150, 15, 40, 80, 10, 30]);
            match kind {
                0 => {
                    let _ = write!(
                        m,
                        "{{\"event\": \"chat request received\", \"user_id\": \"u_{user:05}\", \"session_id\": \""
                    );
                    push_uuid(&mut m, &session);
                    let _ = write!(m, "\", \"model\": \"{model}\"");
                    ("info", "app.routers.chat")
                }
                1 => {
                    let prompt = self.rng.range(40, 3_000);
                    let completion = self.rng.range(20, 1_200);
                    let _ = write!(
                        m,
                        "{{\"event\": \"chat completion finished\", \"user_id\": \"u_{user:05}\", \"session_id\": \""
                    );
                    push_uuid(&mut m, &session);
                    let _ = write!(
                        m,
                        "\", \"model\": \"{model}\", \"tokens\": {}, \"prompt_tokens\": {prompt}, \"completion_tokens\": {completion}, \"latency_ms\": {:.1}",
                        prompt + completion,
                        self.rng.log_normal(900.0, 0.4)
                    );
                    ("info", "app.services.llm")
                }
                2 => {
                    m.push_str("{\"event\": \"session loaded\", \"session_id\": \"");
                    push_uuid(&mut m, &session);
                    let _ = write!(m, "\", \"messages\": {}", self.rng.range(1, 120));
                    ("info", "app.routers.sessions")
                }
                3 => {
                    let _ = write!(
                        m,
                        "{{\"event\": \"user logged in\", \"user_id\": \"u_{user:05}\", \"username\": "
                    );
                    let name = self.user_name(user);
                    push_json_str(&mut m, &name);
                    ("info", "app.routers.auth")
                }
                4 => {
                    m.push_str("{\"event\": \"login failed\", \"username\": ");
                    let name = self.user_name(user);
                    push_json_str(&mut m, &name);
                    let ip = *self.rng.pick(&self.clients);
                    let _ = write!(
                        m,
                        ", \"reason\": \"invalid_password\", \"client_ip\": \"{}\"",
                        IpFmt(ip)
                    );
                    ("warning", "app.routers.auth")
                }
                5 => {
                    m.push_str("{\"event\": \"document search\", \"query\": ");
                    let q = *self.rng.pick(&SEARCH_QUERIES);
                    push_json_str(&mut m, q);
                    let _ = write!(m, ", \"results\": {}", self.rng.below(40));
                    ("info", "app.routers.documents")
                }
                6 => {
                    let hit = if self.rng.chance(0.8) { "hit" } else { "miss" };
                    let _ = write!(m, "{{\"event\": \"cache {hit}\", \"key\": \"session:");
                    push_uuid(&mut m, &session);
                    m.push('"');
                    ("debug", "app.cache")
                }
                7 => {
                    let _ = write!(
                        m,
                        "{{\"event\": \"slow database query\", \"duration_ms\": {:.1}, \"statement\": \"SELECT sessions.id, sessions.title, sessions.updated_at FROM sessions WHERE sessions.user_id = $1::VARCHAR ORDER BY sessions.updated_at DESC LIMIT $2::INTEGER\"",
                        600.0 + self.rng.log_normal(300.0, 0.4)
                    );
                    ("warning", "app.db")
                }
                8 => {
                    let _ = write!(
                        m,
                        "{{\"event\": \"db pool status\", \"size\": 5, \"checked_out\": {}, \"overflow\": 0",
                        self.rng.below(6)
                    );
                    ("debug", "app.db")
                }
                9 => {
                    let _ = write!(
                        m,
                        "{{\"event\": \"token refreshed\", \"user_id\": \"u_{user:05}\""
                    );
                    ("info", "app.routers.auth")
                }
                10 => {
                    let _ = write!(
                        m,
                        "{{\"event\": \"rate limit approaching\", \"user_id\": \"u_{user:05}\", \"remaining\": {}",
                        self.rng.range(1, 10)
                    );
                    ("warning", "app.middleware.ratelimit")
                }
                _ => {
                    let _ = write!(
                        m,
                        "{{\"event\": \"document uploaded\", \"document_id\": {}, \"size_bytes\": {}, \"content_type\": \"application/pdf\"",
                        self.rng.range(1_000, 99_999),
                        self.rng.range(10_000, 8_000_000)
                    );
                    ("info", "app.routers.documents")
                }
            }
        };
        self.close_structlog(&mut m, t, level, logger);
        sink.write_record(log, t, Stream::Stdout, &m)?;
        self.msg = m;
        Ok(1)
    }

    /// Appends structlog's processor-added keys and closes the object.
    fn close_structlog(&mut self, m: &mut String, t: i64, level: &str, logger: &str) {
        let _ = write!(
            m,
            ", \"level\": \"{level}\", \"logger\": \"{logger}\", \"timestamp\": \""
        );
        push_iso_micros(&mut self.time, t, m);
        m.push_str("\"}");
    }

    fn user_name(&mut self, user: u64) -> String {
        if self.rng.chance(0.05) {
            (*self.rng.pick(&APOSTROPHE_USERS)).to_owned()
        } else {
            self.users[user as usize % self.users.len()].clone()
        }
    }

    // ----- api: outbound calls -----

    fn llm_call(&mut self, t: i64, phase: Phase, sink: &mut Sink) -> anyhow::Result<u64> {
        let failing = phase.incident == Some(IncidentKind::LlmUpstreamFailure);
        let status = if failing && self.rng.chance(0.6) {
            *self.rng.pick(&[429, 429, 503, 503, 502, 500])
        } else if self.rng.chance(0.002) {
            429
        } else {
            200
        };
        self.httpx_line(t, "POST", LLM_URL, status, sink)
    }

    fn supabase_call(&mut self, t: i64, sink: &mut Sink) -> anyhow::Result<u64> {
        let mut url = std::mem::take(&mut self.path);
        url.clear();
        if self.rng.chance(0.7) {
            let _ = write!(
                url,
                "https://{}/rest/v1/documents?select=id,title,updated_at&owner_id=eq.u_{:05}",
                self.supabase_host,
                self.rng.below(USERS as u64)
            );
            self.httpx_line(t, "GET", &url, 200, sink)?;
        } else {
            let _ = write!(
                url,
                "https://{}/storage/v1/object/documents/{}.pdf",
                self.supabase_host,
                self.rng.range(1_000, 99_999)
            );
            self.httpx_line(t, "POST", &url, 200, sink)?;
        }
        self.path = url;
        Ok(1)
    }

    /// httpx's INFO line, rendered through structlog.
    fn httpx_line(
        &mut self,
        t: i64,
        method: &str,
        url: &str,
        status: u16,
        sink: &mut Sink,
    ) -> anyhow::Result<u64> {
        let pod = self.rng.below(API_PODS as u64) as usize;
        let mut m = std::mem::take(&mut self.msg);
        m.clear();
        let _ = write!(
            m,
            "{{\"event\": \"HTTP Request: {method} {url} \\\"HTTP/1.1 {status} {}\\\"\"",
            reason(status)
        );
        self.close_structlog(&mut m, t, "info", "httpx");
        sink.write_record(self.api[pod].log, t, Stream::Stdout, &m)?;
        self.msg = m;
        Ok(1)
    }

    fn llm_failure(&mut self, t: i64, sink: &mut Sink) -> anyhow::Result<u64> {
        let which = self.rng.weighted(&[45, 20, 25, 10]);
        if which == 0 {
            let status = *self.rng.pick(&[429, 429, 503, 502, 500]);
            return self.httpx_line(t, "POST", LLM_URL, status, sink);
        }
        let pod = self.rng.below(API_PODS as u64) as usize;
        let model = *self.rng.pick(&MODELS);
        let mut m = std::mem::take(&mut self.msg);
        m.clear();
        let level = match which {
            1 => {
                let _ = write!(
                    m,
                    "{{\"event\": \"retrying llm request\", \"upstream\": \"{LLM_HOST}\", \"model\": \"{model}\", \"status_code\": 429, \"attempt\": {}, \"retry_after_s\": {}",
                    self.rng.range(1, 3),
                    self.rng.range(1, 20)
                );
                "warning"
            }
            2 => {
                let _ = write!(
                    m,
                    "{{\"event\": \"llm request failed\", \"upstream\": \"{LLM_HOST}\", \"model\": \"{model}\", \"error\": \"httpx.ReadTimeout: The read operation timed out\", \"exception\": "
                );
                let mut tb = std::mem::take(&mut self.query);
                tb.clear();
                tb.push_str("Traceback (most recent call last):");
                push_frames(&mut tb, &HTTPX_FRAMES);
                tb.push_str("\nhttpcore.ReadTimeout: The read operation timed out\n\nThe above exception was the direct cause of the following exception:\n\nTraceback (most recent call last):");
                push_frames(&mut tb, &LLM_CLIENT_FRAMES);
                tb.push_str("\nhttpx.ReadTimeout: The read operation timed out");
                push_json_str(&mut m, &tb);
                self.query = tb;
                "error"
            }
            _ => {
                let status = *self.rng.pick(&[502, 503]);
                let _ = write!(
                    m,
                    "{{\"event\": \"llm request failed\", \"upstream\": \"{LLM_HOST}\", \"model\": \"{model}\", \"error\": \"httpx.HTTPStatusError: Server error '{status} {}' for url '{LLM_URL}'\"",
                    reason(status)
                );
                "error"
            }
        };
        self.close_structlog(&mut m, t, level, "app.services.llm");
        sink.write_record(self.api[pod].log, t, Stream::Stdout, &m)?;
        self.msg = m;
        Ok(1)
    }

    // ----- api: database failures -----

    /// One structlog error line with a driver's connection error.
    fn db_error_line(&mut self, t: i64, sink: &mut Sink) -> anyhow::Result<u64> {
        let pod = self.rng.below(API_PODS as u64) as usize;
        let ip = IpFmt(self.db_ip);
        let host = self.db_host.clone();
        let mut m = std::mem::take(&mut self.msg);
        m.clear();
        let (event, error) = match self.rng.below(7) {
            0 => (
                "database connection failed",
                format!("ConnectionRefusedError: [Errno 111] Connect call failed ('{ip}', {DB_PORT})"),
            ),
            1 => (
                "database connection failed",
                "asyncpg.exceptions.TooManyConnectionsError: sorry, too many clients already"
                    .to_owned(),
            ),
            2 => (
                "database connection failed",
                format!("psycopg.OperationalError: connection failed: connection to server at \"{ip}\", port {DB_PORT} failed: FATAL:  remaining connection slots are reserved for non-replication superuser connections"),
            ),
            3 => (
                "db pool exhausted",
                "sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00 (Background on this error at: https://sqlalche.me/e/20/3o7r)".to_owned(),
            ),
            6 => (
                "database connection failed",
                "psycopg.OperationalError: connection failed: FATAL:  too many connections for role \"authenticator\"".to_owned(),
            ),
            4 => (
                "could not connect to database",
                format!("psycopg2.OperationalError: could not connect to server: Connection refused\n\tIs the server running on host \"{host}\" ({ip}) and accepting\n\tTCP/IP connections on port {DB_PORT}?"),
            ),
            _ => (
                "database operation timed out",
                format!("TimeoutError: timed out connecting to {host}:{DB_PORT}"),
            ),
        };
        let _ = write!(
            m,
            "{{\"event\": \"{event}\", \"db_host\": \"{host}\", \"error\": "
        );
        push_json_str(&mut m, &error);
        self.close_structlog(&mut m, t, "error", "app.db");
        sink.write_record(self.api[pod].log, t, Stream::Stdout, &m)?;
        self.msg = m;
        Ok(1)
    }

    /// An unhandled SQLAlchemy error: uvicorn's error line, a chained traceback and the 500
    /// access line: three records.
    fn db_traceback(&mut self, t: i64, sink: &mut Sink) -> anyhow::Result<u64> {
        let pod = self.rng.below(API_PODS as u64) as usize;
        let log = self.api[pod].log;
        sink.write_record(
            log,
            t,
            Stream::Stderr,
            "ERROR:    Exception in ASGI application",
        )?;
        let endpoint = self.rng.below(DB_ENDPOINT_FRAMES.len() as u64) as usize;
        let mut m = std::mem::take(&mut self.msg);
        m.clear();
        m.push_str("Traceback (most recent call last):");
        let ip = IpFmt(self.db_ip);
        match self.rng.below(3) {
            0 => {
                push_frames(&mut m, &ASYNCPG_CONNECT_FRAMES);
                let _ = write!(
                    m,
                    "\nConnectionRefusedError: [Errno 111] Connect call failed ('{ip}', {DB_PORT})\n\nThe above exception was the direct cause of the following exception:\n\nTraceback (most recent call last):"
                );
                push_frames(&mut m, &ASGI_FRAMES);
                push_frames(&mut m, &DB_ENDPOINT_FRAMES[endpoint..=endpoint]);
                push_frames(&mut m, &SQLALCHEMY_FRAMES);
                let _ = write!(
                    m,
                    "\nsqlalchemy.exc.OperationalError: (sqlalchemy.dialects.postgresql.asyncpg.InterfaceError) <class 'ConnectionRefusedError'>: [Errno 111] Connect call failed ('{ip}', {DB_PORT})"
                );
            }
            1 => {
                push_frames(&mut m, &ASYNCPG_CONNECT_FRAMES[..2]);
                m.push_str("\nasyncpg.exceptions.TooManyConnectionsError: sorry, too many clients already\n\nDuring handling of the above exception, another exception occurred:\n\nTraceback (most recent call last):");
                push_frames(&mut m, &ASGI_FRAMES);
                push_frames(&mut m, &DB_ENDPOINT_FRAMES[endpoint..=endpoint]);
                push_frames(&mut m, &SQLALCHEMY_FRAMES);
                m.push_str("\nsqlalchemy.exc.DBAPIError: (sqlalchemy.dialects.postgresql.asyncpg.Error) <class 'asyncpg.exceptions.TooManyConnectionsError'>: sorry, too many clients already");
            }
            _ => {
                push_frames(&mut m, &ASGI_FRAMES);
                push_frames(&mut m, &DB_ENDPOINT_FRAMES[endpoint..=endpoint]);
                push_frames(&mut m, &SQLALCHEMY_FRAMES[..1]);
                m.push_str("\nsqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00 (Background on this error at: https://sqlalche.me/e/20/3o7r)");
            }
        }
        sink.write_record(log, t, Stream::Stderr, &m)?;
        self.msg = m;
        let path = match endpoint {
            0 => "/api/sessions",
            1 => "/api/documents/4821",
            _ => "/api/chat",
        };
        let method = if endpoint == 2 { "POST" } else { "GET" };
        let ip = *self.rng.pick(&self.clients);
        let port = self.rng.range(1024, 65_535);
        let ua = *self.rng.pick(&USER_AGENTS);
        let duration_ms = self.rng.log_normal(250.0, 0.4);
        self.write_access(
            t,
            log,
            AccessLine {
                ip,
                port,
                method,
                path,
                query: "",
                status: 500,
                duration_ms,
                ua,
            },
            sink,
        )?;
        Ok(3)
    }

    // ----- security incidents -----

    fn brute_force(&mut self, t: i64, remaining: u64, sink: &mut Sink) -> anyhow::Result<u64> {
        let ua = *self.rng.pick(&BRUTE_FORCE_USER_AGENTS);
        let name = if self.rng.chance(0.5) {
            (*self.rng.pick(&BRUTE_FORCE_NAMES)).to_owned()
        } else {
            let u = self.rng.below(USERS as u64);
            self.user_name(u)
        };
        let status = if self.rng.chance(0.97) { 401 } else { 429 };
        let duration_ms = self.rng.log_normal(120.0, 0.3);
        if self.rng.chance(0.5) {
            let ingress = IngressLine {
                ip: self.brute_ip,
                method: "POST",
                path: "/api/auth/login",
                query: "",
                status,
                ua,
                upstream: Some(API_UPSTREAM),
                time_s: duration_ms / 1e3,
                browser: false,
            };
            return self.write_ingress(t, ingress, sink);
        }
        let pod = self.rng.below(API_PODS as u64) as usize;
        let log = self.api[pod].log;
        let port = self.rng.range(1024, 65_535);
        self.write_access(
            t,
            log,
            AccessLine {
                ip: self.brute_ip,
                port,
                method: "POST",
                path: "/api/auth/login",
                query: "",
                status,
                duration_ms,
                ua,
            },
            sink,
        )?;
        if remaining < 2 || status != 401 {
            return Ok(1);
        }
        let mut m = std::mem::take(&mut self.msg);
        m.clear();
        m.push_str("{\"event\": \"login failed\", \"username\": ");
        push_json_str(&mut m, &name);
        let _ = write!(
            m,
            ", \"reason\": \"invalid_credentials\", \"client_ip\": \"{}\"",
            IpFmt(self.brute_ip)
        );
        self.close_structlog(&mut m, t, "warning", "app.routers.auth");
        sink.write_record(log, t, Stream::Stdout, &m)?;
        self.msg = m;
        Ok(2)
    }

    fn probe(&mut self, t: i64, sink: &mut Sink) -> anyhow::Result<u64> {
        let (method, target) = *self.rng.pick(&PROBES);
        let ua = *self.rng.pick(&SCANNER_USER_AGENTS);
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, q),
            None => (target, ""),
        };
        let api_route = path.starts_with("/api/");
        let status = if api_route {
            *self.rng.pick(&[404, 422, 400, 401])
        } else {
            404
        };
        let duration_ms = self.rng.log_normal(8.0, 0.5);
        if api_route && self.rng.chance(0.4) {
            let pod = self.rng.below(API_PODS as u64) as usize;
            let port = self.rng.range(1024, 65_535);
            self.write_access(
                t,
                self.api[pod].log,
                AccessLine {
                    ip: self.scanner_ip,
                    port,
                    method,
                    path,
                    query,
                    status,
                    duration_ms,
                    ua,
                },
                sink,
            )?;
            return Ok(1);
        }
        let upstream = if api_route {
            API_UPSTREAM
        } else {
            WEB_UPSTREAM
        };
        self.write_ingress(
            t,
            IngressLine {
                ip: self.scanner_ip,
                method,
                path,
                query,
                status,
                ua,
                upstream: Some(upstream),
                time_s: duration_ms / 1e3,
                browser: false,
            },
            sink,
        )
    }

    fn secret_leak(&mut self, t: i64, sink: &mut Sink) -> anyhow::Result<u64> {
        let pod = self.rng.below(API_PODS as u64) as usize;
        let mut m = std::mem::take(&mut self.msg);
        m.clear();
        let level = match self.rng.below(3) {
            0 => {
                let _ = write!(
                    m,
                    "{{\"event\": \"calling llm provider\", \"url\": \"{LLM_URL}\", \"headers\": {{\"Authorization\": \"Bearer {}\", \"Content-Type\": \"application/json\"}}",
                    self.secrets.xai_key
                );
                "debug"
            }
            1 => {
                let _ = write!(
                    m,
                    "{{\"event\": \"supabase request\", \"url\": \"https://{}/rest/v1/documents\", \"headers\": {{\"apikey\": \"{jwt}\", \"Authorization\": \"Bearer {jwt}\"}}",
                    self.supabase_host,
                    jwt = self.secrets.supabase_jwt
                );
                "info"
            }
            _ => {
                let _ = write!(
                    m,
                    "{{\"event\": \"fallback provider configured\", \"provider\": \"openai\", \"api_key\": \"{}\"",
                    self.secrets.openai_key
                );
                "info"
            }
        };
        self.close_structlog(&mut m, t, level, "app.services.llm");
        sink.write_record(self.api[pod].log, t, Stream::Stdout, &m)?;
        self.msg = m;
        Ok(1)
    }

    // ----- ingress -----

    fn ingress_access(&mut self, t: i64, phase: Phase, sink: &mut Sink) -> anyhow::Result<u64> {
        let ip = *self.rng.pick(&self.clients);
        let ua = *self.rng.pick(&USER_AGENTS);
        if self.rng.chance(0.4) {
            // Through to the api: the same routes (no kubelet probes), failures and latency.
            let mut route_idx = self.rng.weighted(&self.route_weights);
            if route_idx == ROUTE_HEALTH {
                route_idx = ROUTE_SEARCH;
            }
            self.route_path(route_idx);
            let status = self.api_status(route_idx, phase);
            let duration_ms = self.api_duration_ms(route_idx, status, phase);
            let path = std::mem::take(&mut self.path);
            let query = std::mem::take(&mut self.query);
            let n = self.write_ingress(
                t,
                IngressLine {
                    ip,
                    method: ROUTES[route_idx].method,
                    path: &path,
                    query: &query,
                    status,
                    ua,
                    upstream: Some(API_UPSTREAM),
                    time_s: duration_ms / 1e3,
                    browser: true,
                },
                sink,
            )?;
            self.path = path;
            self.query = query;
            return Ok(n);
        }
        let path = *self.rng.pick(&WEB_PATHS);
        let status = if path.starts_with("/assets/") && self.rng.chance(0.3) {
            304
        } else if self.rng.chance(0.003) {
            *self.rng.pick(&[404, 499])
        } else {
            200
        };
        let time_s = self.rng.log_normal(0.004, 0.6);
        self.write_ingress(
            t,
            IngressLine {
                ip,
                method: "GET",
                path,
                query: "",
                status,
                ua,
                upstream: Some(WEB_UPSTREAM),
                time_s,
                browser: true,
            },
            sink,
        )
    }

    /// One ingress-nginx access line in its default `upstreaminfo` format.
    fn write_ingress(
        &mut self,
        t: i64,
        l: IngressLine<'_>,
        sink: &mut Sink,
    ) -> anyhow::Result<u64> {
        let mut m = std::mem::take(&mut self.msg);
        m.clear();
        let bytes = match l.status {
            204 | 304 => 0,
            s if s >= 400 => self.rng.range(20, 200),
            _ => self.rng.range(200, 60_000),
        };
        let _ = write!(m, "{} - - [", IpFmt(l.ip));
        let (p, _) = self.time.at(t);
        m.push_str(&p.nginx);
        let _ = write!(m, " +0000] \"{} {}", l.method, l.path);
        if !l.query.is_empty() {
            m.push('?');
            m.push_str(l.query);
        }
        let referer = if l.browser && self.rng.chance(0.6) {
            "https://chat.example.com/"
        } else {
            "-"
        };
        let _ = write!(
            m,
            " HTTP/2.0\" {} {bytes} \"{referer}\" \"{}\" {} {:.3} ",
            l.status,
            l.ua,
            self.rng.range(60, 900),
            l.time_s + 0.001
        );
        match l.upstream {
            Some(up) => {
                let pod_ip = if up == API_UPSTREAM {
                    let pod = self.rng.below(API_PODS as u64) as usize;
                    (self.api[pod].ip, 8000)
                } else {
                    ([10, 42, 2, 17 + self.rng.below(3) as u8], 80)
                };
                let _ = write!(
                    m,
                    "[{up}] [] {}:{} {bytes} {:.3} {} ",
                    IpFmt(pod_ip.0),
                    pod_ip.1,
                    l.time_s,
                    l.status
                );
            }
            None => m.push_str("[] [] - - - - "),
        }
        push_hex(&mut m, self.rng.next_u64());
        push_hex(&mut m, self.rng.next_u64());
        sink.write_record(self.ingress.log, t, Stream::Stdout, &m)?;
        self.msg = m;
        Ok(1)
    }

    fn ingress_klog(&mut self, t: i64, sink: &mut Sink) -> anyhow::Result<u64> {
        let (sev, file, text) = *self.rng.pick(&KLOG_LINES);
        let mut m = std::mem::take(&mut self.msg);
        m.clear();
        let (p, nanos) = self.time.at(t);
        let _ = write!(
            m,
            "{sev}{}.{:06}       7 {file}] {text}",
            p.klog,
            nanos / 1_000
        );
        sink.write_record(self.ingress.log, t, Stream::Stderr, &m)?;
        self.msg = m;
        Ok(1)
    }

    /// nginx's error log while the api fails or is slow.
    fn ingress_error(
        &mut self,
        t: i64,
        kind: IncidentKind,
        sink: &mut Sink,
    ) -> anyhow::Result<u64> {
        let mut m = std::mem::take(&mut self.msg);
        m.clear();
        let (p, _) = self.time.at(t);
        let day = p.py.replace('-', "/");
        let what = if kind == IncidentKind::LatencySpike {
            "upstream timed out (110: Operation timed out) while reading response header from upstream"
        } else {
            "upstream prematurely closed connection while reading response header from upstream"
        };
        let pod = self.rng.below(API_PODS as u64) as usize;
        let _ = write!(
            m,
            "{day} [error] 31#31: *{} {what}, client: {}, server: chat.example.com, request: \"POST /api/chat HTTP/2.0\", upstream: \"http://{}:8000/api/chat\", host: \"chat.example.com\"",
            self.rng.range(10_000, 9_999_999),
            IpFmt(*self.rng.pick(&self.clients)),
            IpFmt(self.api[pod].ip)
        );
        sink.write_record(self.ingress.log, t, Stream::Stderr, &m)?;
        self.msg = m;
        Ok(1)
    }

    // ----- worker -----

    fn worker_line(&mut self, t: i64, remaining: u64, sink: &mut Sink) -> anyhow::Result<u64> {
        let pod = self.rng.below(self.worker.len() as u64) as usize;
        let log = self.worker[pod].log;
        let task = *self.rng.pick(&WORKER_TASKS);
        let id = self.rng.uuid();
        let mut m = std::mem::take(&mut self.msg);
        m.clear();
        push_py_time(&mut self.time, t, &mut m);
        let kind = self.rng.weighted(&[300, 250, 300, 100, 30, 4]);
        let mut bug = None;
        match kind {
            0 => {
                let _ = write!(m, " - worker.tasks - INFO - Task {task}[");
                push_uuid(&mut m, &id);
                m.push_str("] received");
            }
            1 => {
                let _ = write!(
                    m,
                    " - worker.embeddings - INFO - Embedding {} chunks for document {}",
                    self.rng.range(1, 60),
                    self.rng.range(1_000, 99_999)
                );
            }
            2 => {
                let _ = write!(m, " - worker.tasks - INFO - Task {task}[");
                push_uuid(&mut m, &id);
                let _ = write!(
                    m,
                    "] succeeded in {:.3}s: None",
                    self.rng.log_normal(1.2, 0.6)
                );
            }
            3 => {
                m.push_str(" - worker.scheduler - INFO - Scheduler: Sending due task refresh-usage (app.tasks.refresh_usage)");
            }
            4 => {
                let _ = write!(m, " - worker.tasks - WARNING - Task {task}[");
                push_uuid(&mut m, &id);
                m.push_str("] retry: Retry in 10s: RateLimitError('rate limited')");
            }
            _ => {
                let b = *self.rng.pick(&WORKER_BUGS);
                let short = b.1.split_once(": ").map_or(b.1, |(name, _)| name);
                let _ = write!(m, " - worker.tasks - ERROR - Task {task}[");
                push_uuid(&mut m, &id);
                let _ = write!(m, "] raised unexpected: {short}");
                bug = Some(b);
            }
        }
        sink.write_record(log, t, Stream::Stderr, &m)?;
        let mut n = 1;
        if let Some((frame, exc)) = bug
            && remaining >= 2
        {
            m.clear();
            m.push_str("Traceback (most recent call last):");
            push_frames(&mut m, &[CELERY_FRAME, frame]);
            m.push('\n');
            m.push_str(exc);
            sink.write_record(log, t, Stream::Stderr, &m)?;
            n = 2;
        }
        self.msg = m;
        Ok(n)
    }

    /// Occasional uvicorn warnings in its plain default format.
    fn uvicorn_stderr(&mut self, t: i64, sink: &mut Sink) -> anyhow::Result<u64> {
        let pod = self.rng.below(API_PODS as u64) as usize;
        let line = *self.rng.pick(&[
            "WARNING:  Invalid HTTP request received.",
            "WARNING:  Unsupported upgrade request.",
            "INFO:     Shutting down connection for client that closed early",
        ]);
        sink.write_record(self.api[pod].log, t, Stream::Stderr, line)?;
        Ok(1)
    }
}

/// The fields of one uvicorn access line.
#[derive(Debug, Clone, Copy)]
struct AccessLine<'a> {
    ip: [u8; 4],
    port: u64,
    method: &'a str,
    path: &'a str,
    query: &'a str,
    status: u16,
    duration_ms: f64,
    ua: &'a str,
}

/// The fields of one ingress access line.
#[derive(Debug, Clone, Copy)]
struct IngressLine<'a> {
    ip: [u8; 4],
    method: &'a str,
    path: &'a str,
    query: &'a str,
    status: u16,
    ua: &'a str,
    upstream: Option<&'a str>,
    time_s: f64,
    /// Browsers send the app's origin; scanners and scripts send none.
    browser: bool,
}

struct IpFmt([u8; 4]);

impl std::fmt::Display for IpFmt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

pub(crate) fn ip_string(ip: [u8; 4]) -> String {
    IpFmt(ip).to_string()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

fn pod_dir(out: &Path, ns: &str, pod: &str, rng: &mut Rng) -> std::path::PathBuf {
    let mut uid = String::with_capacity(36);
    push_uuid(&mut uid, &rng.uuid());
    out.join(format!("{ns}_{pod}_{uid}"))
}

fn k8s_suffix(rng: &mut Rng, len: usize) -> String {
    random_chars(rng, K8S_ALPHABET, len)
}

fn random_chars(rng: &mut Rng, alphabet: &[u8], len: usize) -> String {
    (0..len).map(|_| char::from(*rng.pick(alphabet))).collect()
}

/// A public-looking client address (never private, loopback or multicast).
fn public_ip(rng: &mut Rng) -> [u8; 4] {
    const FIRST_OCTETS: [u8; 10] = [24, 31, 62, 73, 81, 98, 109, 151, 176, 212];
    [
        *rng.pick(&FIRST_OCTETS),
        rng.range(1, 254) as u8,
        rng.range(0, 255) as u8,
        rng.range(1, 254) as u8,
    ]
}

fn push_hex(out: &mut String, v: u64) {
    let _ = write!(out, "{v:016x}");
}

fn push_uuid(out: &mut String, b: &[u8; 16]) {
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        let _ = write!(out, "{byte:02x}");
    }
}

fn push_frames(out: &mut String, frames: &[Frame]) {
    for (file, line, func, code) in frames {
        let _ = write!(
            out,
            "\n  File \"{file}\", line {line}, in {func}\n    {code}"
        );
    }
}

/// Python logging's asctime: `2026-12-04 16:31:36,123`.
fn push_py_time(time: &mut TimeCache, t: i64, out: &mut String) {
    let (p, nanos) = time.at(t);
    out.push_str(&p.py);
    let _ = write!(out, ",{:03}", nanos / 1_000_000);
}

/// structlog's `TimeStamper(fmt="iso", utc=True)`: `2026-12-04T16:31:36.123456Z`.
fn push_iso_micros(time: &mut TimeCache, t: i64, out: &mut String) {
    let (p, nanos) = time.at(t);
    out.push_str(&p.iso);
    let _ = write!(out, ".{:06}Z", nanos / 1_000);
}

/// A JSON string literal, escaped as Python's `json.dumps` does for ASCII text.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    push_json_inner(out, s);
    out.push('"');
}

fn push_json_inner(out: &mut String, s: &str) {
    // Most values need no escaping: copy them whole (the per-char path was a hot spot).
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
}

/// `application/x-www-form-urlencoded` as browsers send a search box.
fn push_form_encoded(out: &mut String, s: &str) {
    for b in s.bytes() {
        match b {
            b' ' => out.push('+'),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
}

/// Unpadded base64url, for the fake JWT.
fn base64url(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoders() {
        assert_eq!(base64url(b"hello"), "aGVsbG8");
        assert_eq!(base64url(b"{\"a\":1}"), "eyJhIjoxfQ");
        let mut s = String::new();
        push_form_encoded(&mut s, "o'brien select *");
        assert_eq!(s, "o%27brien+select+%2A");
        s.clear();
        push_json_str(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001\u00e9""#);
        s.clear();
        push_uuid(&mut s, &[0xab; 16]);
        assert_eq!(s, "abababab-abab-abab-abab-abababababab");
    }
}
