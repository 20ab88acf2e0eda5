//! Security detections over parsed events: brute force and credential abuse, web attacks,
//! scanners and probing, leaked secrets.
//!
//! [`SecurityDetector::process`] inspects one event ([`SecurityDetector::inspect`]) and feeds
//! what it found into per-offender leaky buckets (the model fail2ban and CrowdSec use: each
//! signal adds one, the level drains at `1 / leak_secs`, and a level above `capacity` fires).
//! A bucket that fired is silenced for `blackhole_secs`, so an offender raises one alert per
//! window, not one per line. Buckets are keyed by detection and offender, capped at
//! [`SecurityConfig::max_keys`] with eviction of the idlest.
//!
//! | alert | offender | signal |
//! |---|---|---|
//! | `BruteForce` (`pace` fast/slow) | `client_ip` | failed authentications |
//! | `CredentialStuffing` | `client_ip` | failures for distinct users |
//! | `DistributedBruteForce` | `user_name` | failures from distinct addresses |
//! | `WebAttack` (`attack` sqli, xss, ...) | `client_ip` | a signature in path/query/UA/referer |
//! | `Scanner` | `client_ip` | a scanner user agent |
//! | `SensitiveFileProbe` | `client_ip` | distinct sensitive/admin paths answered 4xx |
//! | `HttpProbing` | `client_ip` | many distinct non-static paths answered 400/403/404 |
//! | `SecretLeak` | `service` + `kind` | `parse` redacted a credential from the line |
//!
//! ```
//! use detect::security::{SecurityConfig, SecurityDetector};
//! let mut det = SecurityDetector::try_new(&SecurityConfig::default()).expect("defaults are valid");
//! let mut alerts = Vec::new();
//! let t0 = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("valid time");
//! for i in 0..6 {
//!     let msg = format!("Failed password for root from 203.0.113.9 port {} ssh2", 40000 + i);
//!     let ev = schemas::LogEvent::new(t0 + chrono::Duration::seconds(i), msg);
//!     det.process(&ev, &mut alerts);
//! }
//! assert_eq!(alerts.len(), 1);
//! assert_eq!(alerts[0].labels["client_ip"], "203.0.113.9");
//! ```

mod auth;
mod web;

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use chrono::{DateTime, Utc};
use schemas::{Alert, AlertStatus, LogEvent};
use serde::{Deserialize, Serialize};

pub use auth::{AuthFailure, AuthMatcher, find_offender_ip, parse_ip_token};
pub use web::{AttackKind, AttackSet, Field, WebMatcher, is_static_path, normalize};

/// Version of [`SecuritySnapshot`]; bump on an incompatible change.
pub const SECURITY_SNAPSHOT_VERSION: u32 = 1;
/// Alert names.
pub const ALERT_BRUTE_FORCE: &str = "BruteForce";
pub const ALERT_CREDENTIAL_STUFFING: &str = "CredentialStuffing";
pub const ALERT_DISTRIBUTED_BRUTE_FORCE: &str = "DistributedBruteForce";
pub const ALERT_WEB_ATTACK: &str = "WebAttack";
pub const ALERT_SCANNER: &str = "Scanner";
pub const ALERT_SENSITIVE_FILE_PROBE: &str = "SensitiveFileProbe";
pub const ALERT_HTTP_PROBING: &str = "HttpProbing";
pub const ALERT_SECRET_LEAK: &str = "SecretLeak";
/// Label naming the offending address (ECS `client.ip`).
pub const LABEL_CLIENT_IP: &str = "client_ip";
/// Label naming the targeted or offending user (ECS `user.name`).
pub const LABEL_USER_NAME: &str = "user_name";
/// Label with the web attack class.
pub const LABEL_ATTACK: &str = "attack";
/// Most distinct values a bucket remembers (users, addresses, paths). Capacities are far below
/// it; the bound only stops a hostile offender from growing one bucket without limit.
const MAX_DISTINCT_PER_BUCKET: usize = 64;
/// Longest attacker-controlled sample copied into an annotation.
const SAMPLE_MAX_BYTES: usize = 256;
/// Fraction of buckets dropped when the key cap is reached and no bucket has drained.
const EVICT_FRACTION: f64 = 0.1;
/// Slots of the user-agent/referer verdict cache (16 B each): enough for the distinct agents
/// of a busy site's minute, small enough to stay in L2.
const HEADER_CACHE_SLOTS: usize = 4096;
/// How often (event-time seconds) the watermark sweeps drained buckets away.
const SWEEP_INTERVAL_SECS: i64 = 60;

/// One leaky bucket's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketConfig {
    /// Fire when the level exceeds this (capacity 5 fires on the 6th quick signal; 0 fires on
    /// the first).
    pub capacity: u32,
    /// Seconds for the level to drain by one.
    pub leak_secs: u64,
    /// After firing, the same offender stays silent for this many seconds.
    pub blackhole_secs: u64,
}

impl BucketConfig {
    const fn new(capacity: u32, leak_secs: u64, blackhole_secs: u64) -> BucketConfig {
        BucketConfig {
            capacity,
            leak_secs,
            blackhole_secs,
        }
    }
}

/// Configuration of the security detections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Failed authentications from one address, fast pace (CrowdSec's ssh-bf: 6 within ~10 s).
    pub brute_force: BucketConfig,
    /// Failed authentications from one address spread out (11 within about an hour at a
    /// steady pace drain-adjusted).
    pub slow_brute_force: BucketConfig,
    /// Failures for distinct users from one address.
    pub credential_stuffing: BucketConfig,
    /// Failures for one user from distinct addresses.
    pub distributed_brute_force: BucketConfig,
    /// Distinct sensitive or admin paths answered 4xx (or unanswered) for one address.
    pub sensitive_file_probe: BucketConfig,
    /// Distinct non-static paths answered 400/403/404 for one address.
    pub http_probing: BucketConfig,
    /// Silence after a `WebAttack` per (address, attack class), in seconds.
    pub web_attack_blackhole_secs: u64,
    /// Silence after a `Scanner` alert per address, in seconds.
    pub scanner_blackhole_secs: u64,
    /// Silence after a `SecretLeak` per (service, kinds), in seconds.
    pub secret_leak_blackhole_secs: u64,
    /// Most buckets kept; beyond it drained then idlest buckets are evicted (and counted).
    pub max_keys: usize,
    /// Addresses never alerted on (health checkers, internal scanners).
    pub trusted_ips: Vec<String>,
    /// Extra case-insensitive phrases that mark a failed authentication in a message.
    pub extra_failure_phrases: Vec<String>,
    /// Extra scanner user-agent substrings.
    pub extra_scanner_agents: Vec<String>,
    /// Extra sensitive path substrings.
    pub extra_sensitive_paths: Vec<String>,
    /// Extra login-endpoint path substrings (a 403 there is a failed authentication).
    pub extra_login_paths: Vec<String>,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            brute_force: BucketConfig::new(5, 10, 300),
            // Drains one per 5 min: a steady 1 attempt / 2 min fires after ~17 attempts
            // (~35 min); slower than 1 per 5 min never does.
            slow_brute_force: BucketConfig::new(10, 300, 3600),
            // Five distinct users failing from one address within a few minutes.
            credential_stuffing: BucketConfig::new(4, 300, 600),
            // Ten distinct addresses failing for one user within about half an hour: botnets
            // spread their attempts, so this drains slowly.
            distributed_brute_force: BucketConfig::new(9, 1800, 3600),
            sensitive_file_probe: BucketConfig::new(2, 60, 600),
            http_probing: BucketConfig::new(10, 10, 600),
            web_attack_blackhole_secs: 600,
            scanner_blackhole_secs: 3600,
            secret_leak_blackhole_secs: 3600,
            max_keys: 100_000,
            trusted_ips: Vec::new(),
            extra_failure_phrases: Vec::new(),
            extra_scanner_agents: Vec::new(),
            extra_sensitive_paths: Vec::new(),
            extra_login_paths: Vec::new(),
        }
    }
}

impl SecurityConfig {
    /// Check every field.
    ///
    /// # Errors
    /// [`SecurityError::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<(), SecurityError> {
        let buckets = [
            ("brute_force", self.brute_force),
            ("slow_brute_force", self.slow_brute_force),
            ("credential_stuffing", self.credential_stuffing),
            ("distributed_brute_force", self.distributed_brute_force),
            ("sensitive_file_probe", self.sensitive_file_probe),
            ("http_probing", self.http_probing),
        ];
        for (field, b) in buckets {
            if b.leak_secs == 0 {
                return Err(SecurityError::InvalidConfig {
                    field,
                    reason: "leak_secs must be at least 1".into(),
                });
            }
            if b.capacity as usize >= MAX_DISTINCT_PER_BUCKET {
                return Err(SecurityError::InvalidConfig {
                    field,
                    reason: format!("capacity must be below {MAX_DISTINCT_PER_BUCKET}"),
                });
            }
        }
        if self.max_keys == 0 {
            return Err(SecurityError::InvalidConfig {
                field: "max_keys",
                reason: "must be at least 1".into(),
            });
        }
        for ip in &self.trusted_ips {
            if parse_ip_token(ip) != Some(ip.as_str()) {
                return Err(SecurityError::InvalidConfig {
                    field: "trusted_ips",
                    reason: format!("{ip:?} is not an IP address"),
                });
            }
        }
        Ok(())
    }
}

/// Errors of the security detector.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecurityError {
    /// A configuration field is out of range.
    #[error("invalid security config field {field}: {reason}")]
    InvalidConfig { field: &'static str, reason: String },
    /// A configured pattern list does not compile.
    #[error("invalid security pattern list: {0}")]
    Pattern(String),
    /// A snapshot written by an incompatible version.
    #[error("unsupported security snapshot version {found} (expected {expected})")]
    SnapshotVersion { found: u32, expected: u32 },
}

impl SecurityError {
    /// Stable code for logs and metric labels.
    pub fn error_code(&self) -> &'static str {
        match self {
            SecurityError::InvalidConfig { .. } => "security_invalid_config",
            SecurityError::Pattern(_) => "security_invalid_pattern",
            SecurityError::SnapshotVersion { .. } => "security_snapshot_version",
        }
    }
}

/// What one event shows, before any counting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inspection<'a> {
    /// The offender: `client.ip`, or the address a failure line names.
    pub client_ip: Option<&'a str>,
    /// The user: `user.name`, or the user a failure line names.
    pub user: Option<&'a str>,
    /// A failed authentication.
    pub auth_failure: bool,
    /// Web attack classes found in the request fields.
    pub attacks: AttackSet,
    /// A scanner user agent.
    pub scanner: bool,
    /// A sensitive or admin path answered 4xx (or with no status).
    pub sensitive_probe: bool,
    /// A non-static path answered 400/403/404.
    pub not_found_probe: bool,
    /// The request path, as the probing buckets count it.
    pub path: Option<&'a str>,
}

impl Inspection<'_> {
    /// True when anything suspicious was seen.
    pub fn is_suspicious(&self) -> bool {
        self.auth_failure || !self.attacks.is_empty() || self.scanner || self.sensitive_probe
    }
}

/// Counters for observability.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityStats {
    pub events: u64,
    pub auth_failures: u64,
    /// Auth failures with no address and no user: nothing to attribute them to.
    pub unattributed_failures: u64,
    pub web_attacks: u64,
    pub alerts: u64,
    pub keys_evicted: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
enum Detection {
    BruteForce,
    SlowBruteForce,
    CredentialStuffing,
    DistributedBruteForce,
    WebAttack(u8),
    Scanner,
    SensitiveFileProbe,
    HttpProbing,
    SecretLeak,
}

impl Detection {
    fn alert_name(self) -> &'static str {
        match self {
            Detection::BruteForce | Detection::SlowBruteForce => ALERT_BRUTE_FORCE,
            Detection::CredentialStuffing => ALERT_CREDENTIAL_STUFFING,
            Detection::DistributedBruteForce => ALERT_DISTRIBUTED_BRUTE_FORCE,
            Detection::WebAttack(_) => ALERT_WEB_ATTACK,
            Detection::Scanner => ALERT_SCANNER,
            Detection::SensitiveFileProbe => ALERT_SENSITIVE_FILE_PROBE,
            Detection::HttpProbing => ALERT_HTTP_PROBING,
            Detection::SecretLeak => ALERT_SECRET_LEAK,
        }
    }

    fn severity(self) -> &'static str {
        match self {
            Detection::WebAttack(k) if k == AttackKind::Jndi as u8 => "critical",
            Detection::SecretLeak => "critical",
            Detection::Scanner | Detection::HttpProbing => "info",
            _ => "warning",
        }
    }
}

/// One offender's bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketState {
    /// Labels naming the offender (besides alertname and severity).
    labels: Vec<(String, String)>,
    level: f64,
    last_ms: i64,
    first_ms: i64,
    /// Signals poured since the bucket was last empty.
    count: u64,
    silenced_until_ms: i64,
    /// xxh3 of the distinct values seen, for distinct-counting buckets.
    distinct: Vec<u64>,
    /// Last sample (user, path, value) for the annotation.
    sample: String,
}

/// Persisted state of a [`SecurityDetector`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecuritySnapshot {
    pub version: u32,
    buckets: Vec<(Detection, u64, BucketState)>,
    pub stats: SecurityStats,
}

#[derive(Debug, Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }
    fn write_u64(&mut self, i: u64) {
        self.0 ^= i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type BucketMap = HashMap<(Detection, u64), BucketState, BuildHasherDefault<IdHasher>>;

/// The security detector; see the module docs.
#[derive(Debug)]
pub struct SecurityDetector {
    config: SecurityConfig,
    auth: AuthMatcher,
    web: WebMatcher,
    buckets: BucketMap,
    last_sweep_ms: i64,
    stats: SecurityStats,
    header_cache: HeaderCache,
}

/// Verdicts for recently seen user agents and referers: a handful of values make up most
/// traffic, and one hash replaces two automaton scans. Direct-mapped; a collision of the
/// 64-bit hash is the only way to get a stale verdict.
#[derive(Debug)]
struct HeaderCache {
    slots: Vec<(u64, AttackSet, bool)>,
}

impl Default for HeaderCache {
    fn default() -> Self {
        HeaderCache {
            slots: vec![(0, AttackSet::default(), false); HEADER_CACHE_SLOTS],
        }
    }
}

/// What to pour into one bucket.
struct Pour<'a> {
    detection: Detection,
    bucket: BucketConfig,
    /// Offender labels; also hashed into the key.
    labels: &'a [(&'static str, &'a str)],
    /// For distinct buckets, the value to count once.
    distinct: Option<&'a str>,
    sample: &'a str,
}

impl SecurityDetector {
    /// Build a detector.
    ///
    /// # Errors
    /// [`SecurityError::InvalidConfig`] or [`SecurityError::Pattern`] for a bad configuration.
    pub fn try_new(config: &SecurityConfig) -> Result<SecurityDetector, SecurityError> {
        config.validate()?;
        Ok(SecurityDetector {
            auth: AuthMatcher::try_new(&config.extra_failure_phrases)
                .map_err(SecurityError::Pattern)?,
            web: WebMatcher::try_new(
                &config.extra_scanner_agents,
                &config.extra_sensitive_paths,
                &config.extra_login_paths,
            )
            .map_err(SecurityError::Pattern)?,
            config: config.clone(),
            buckets: BucketMap::default(),
            last_sweep_ms: i64::MIN,
            stats: SecurityStats::default(),
            header_cache: HeaderCache::default(),
        })
    }

    /// Counters since start (or restore).
    pub fn stats(&self) -> SecurityStats {
        self.stats
    }

    /// Buckets currently held.
    pub fn tracked_keys(&self) -> usize {
        self.buckets.len()
    }

    /// What one event shows, without counting it.
    pub fn inspect<'a>(&self, event: &'a LogEvent) -> Inspection<'a> {
        self.inspect_with(event, None)
    }

    fn inspect_with<'a>(
        &self,
        event: &'a LogEvent,
        mut cache: Option<&mut HeaderCache>,
    ) -> Inspection<'a> {
        let mut ins = Inspection {
            client_ip: event.client.ip.as_deref().filter(|s| !s.is_empty()),
            user: event.user.name.as_deref().filter(|s| !s.is_empty()),
            ..Inspection::default()
        };
        let status = event.http.response.status_code;
        let (path, query) = request_target(event);
        ins.path = path;
        if let Some(status) = status {
            // An HTTP event: its status says whether authentication failed.
            ins.auth_failure =
                status == 401 || (status == 403 && path.is_some_and(|p| self.web.is_login_path(p)));
        } else if let Some(f) = self.auth.classify(&event.message) {
            ins.auth_failure = true;
            ins.client_ip = ins.client_ip.or(f.ip);
            ins.user = ins.user.or(f.user);
        }
        let mut attacks = AttackSet::default();
        if let Some(p) = path {
            attacks = attacks.union(self.web.attacks(Field::Path, p));
        }
        if let Some(q) = query {
            attacks = attacks.union(self.web.attacks(Field::Query, q));
        }
        if let Some(ua) = event.user_agent.original.as_deref() {
            let (found, scanner) = self.header_verdict(Field::UserAgent, ua, cache.as_deref_mut());
            attacks = attacks.union(found);
            ins.scanner = scanner;
        }
        if let Some(r) = event.http.request.referrer.as_deref() {
            let (found, _) = self.header_verdict(Field::Referrer, r, cache);
            attacks = attacks.union(found);
        }
        ins.attacks = attacks;
        if let Some(p) = path {
            let failed = status.is_none_or(|s| s >= 400);
            ins.sensitive_probe = failed && self.web.is_sensitive_path(p);
            ins.not_found_probe =
                matches!(status, Some(400 | 403 | 404)) && !is_static_path(strip_query(p));
        }
        ins
    }

    /// Attacks in a header value, and whether it is a scanner user agent, through the cache of
    /// recent values when given one.
    fn header_verdict(
        &self,
        field: Field,
        value: &str,
        cache: Option<&mut HeaderCache>,
    ) -> (AttackSet, bool) {
        let compute = || {
            let scanner = field == Field::UserAgent && self.web.is_scanner(value);
            (self.web.attacks(field, value), scanner)
        };
        let Some(cache) = cache else {
            return compute();
        };
        let hash = xxhash_rust::xxh3::xxh3_64_with_seed(value.as_bytes(), field as u64);
        let slot = &mut cache.slots[(hash as usize) % HEADER_CACHE_SLOTS];
        if slot.0 == hash && slot.0 != 0 {
            return (slot.1, slot.2);
        }
        let (found, scanner) = compute();
        *slot = (hash, found, scanner);
        (found, scanner)
    }

    /// Count one event; alerts that fire are pushed to `out`.
    pub fn process(&mut self, event: &LogEvent, out: &mut Vec<Alert>) {
        self.stats.events += 1;
        let now_ms = event.timestamp.timestamp_millis();
        if !event.sluice.redacted.is_empty() {
            self.secret_leak(event, now_ms, out);
        }
        // Borrow the cache out (an empty Vec in its place costs no allocation) so that the
        // matchers can be borrowed alongside it.
        let mut cache = HeaderCache {
            slots: std::mem::take(&mut self.header_cache.slots),
        };
        let ins = self.inspect_with(event, Some(&mut cache));
        self.header_cache = cache;
        if let Some(ip) = ins.client_ip
            && self.config.trusted_ips.iter().any(|t| t == ip)
        {
            return;
        }
        let ip = ins.client_ip;
        let cfg = &self.config;
        let (bf, sbf, cs, dbf, sfp, hp) = (
            cfg.brute_force,
            cfg.slow_brute_force,
            cfg.credential_stuffing,
            cfg.distributed_brute_force,
            cfg.sensitive_file_probe,
            cfg.http_probing,
        );
        let (web_bh, scan_bh) = (cfg.web_attack_blackhole_secs, cfg.scanner_blackhole_secs);
        let mut pours: Vec<Pour<'_>> = Vec::new();
        let ip_labels;
        let user_labels;
        if ins.auth_failure {
            self.stats.auth_failures += 1;
            if ip.is_none() && ins.user.is_none() {
                self.stats.unattributed_failures += 1;
            }
        }
        if !ins.attacks.is_empty() {
            self.stats.web_attacks += 1;
        }
        let sample_user = ins.user.unwrap_or("");
        let mut attack_labels: Vec<[(&'static str, &str); 2]> = Vec::new();
        if let Some(ip) = ip {
            ip_labels = [(LABEL_CLIENT_IP, ip)];
            for kind in ins.attacks.iter() {
                attack_labels.push([(LABEL_CLIENT_IP, ip), (LABEL_ATTACK, kind.as_str())]);
            }
        } else {
            ip_labels = [(LABEL_CLIENT_IP, "")];
        }
        if let Some(user) = ins.user {
            user_labels = [(LABEL_USER_NAME, user)];
        } else {
            user_labels = [(LABEL_USER_NAME, "")];
        }
        let path = ins.path.unwrap_or("");
        if ip.is_some() {
            if ins.auth_failure {
                pours.push(Pour {
                    detection: Detection::BruteForce,
                    bucket: bf,
                    labels: &ip_labels,
                    distinct: None,
                    sample: sample_user,
                });
                pours.push(Pour {
                    detection: Detection::SlowBruteForce,
                    bucket: sbf,
                    labels: &ip_labels,
                    distinct: None,
                    sample: sample_user,
                });
                if let Some(user) = ins.user {
                    pours.push(Pour {
                        detection: Detection::CredentialStuffing,
                        bucket: cs,
                        labels: &ip_labels,
                        distinct: Some(user),
                        sample: user,
                    });
                }
            }
            for (kind, labels) in ins.attacks.iter().zip(&attack_labels) {
                pours.push(Pour {
                    detection: Detection::WebAttack(kind as u8),
                    bucket: BucketConfig::new(0, 1, web_bh),
                    labels,
                    distinct: None,
                    sample: path,
                });
            }
            if ins.scanner {
                pours.push(Pour {
                    detection: Detection::Scanner,
                    bucket: BucketConfig::new(0, 1, scan_bh),
                    labels: &ip_labels,
                    distinct: None,
                    sample: event.user_agent.original.as_deref().unwrap_or(""),
                });
            }
            if ins.sensitive_probe {
                pours.push(Pour {
                    detection: Detection::SensitiveFileProbe,
                    bucket: sfp,
                    labels: &ip_labels,
                    distinct: Some(path),
                    sample: path,
                });
            }
            if ins.not_found_probe {
                pours.push(Pour {
                    detection: Detection::HttpProbing,
                    bucket: hp,
                    labels: &ip_labels,
                    distinct: Some(path),
                    sample: path,
                });
            }
        }
        if ins.auth_failure
            && let (Some(_), Some(ip)) = (ins.user, ip)
        {
            pours.push(Pour {
                detection: Detection::DistributedBruteForce,
                bucket: dbf,
                labels: &user_labels,
                distinct: Some(ip),
                sample: ip,
            });
        }
        for pour in &pours {
            if let Some(alert) = self.pour(pour, now_ms, event) {
                if pour.detection == Detection::BruteForce {
                    self.silence(Detection::SlowBruteForce, pour.labels, now_ms, sbf);
                }
                out.push(alert);
            }
        }
    }

    /// Silence a related bucket of the same offender: a fast brute force is also a slow one,
    /// and one alert per attack is enough.
    fn silence(
        &mut self,
        detection: Detection,
        labels: &[(&'static str, &str)],
        now_ms: i64,
        cfg: BucketConfig,
    ) {
        if let Some(b) = self.buckets.get_mut(&(detection, labels_key(labels))) {
            b.level = 0.0;
            b.distinct.clear();
            b.count = 0;
            b.silenced_until_ms = now_ms.saturating_add(cfg.blackhole_secs as i64 * 1000);
        }
    }

    /// Drop buckets that have drained (they hold nothing an alert needs). No alert fires from
    /// the watermark: every detection fires on the event that crosses its threshold.
    pub fn advance_watermark(&mut self, now: DateTime<Utc>, _out: &mut Vec<Alert>) {
        let now_ms = now.timestamp_millis();
        if self.last_sweep_ms != i64::MIN
            && now_ms.saturating_sub(self.last_sweep_ms) < SWEEP_INTERVAL_SECS * 1000
        {
            return;
        }
        self.last_sweep_ms = now_ms;
        let cfg = self.config.clone();
        self.buckets
            .retain(|(det, _), b| !is_idle(b, bucket_config(&cfg, *det), now_ms));
    }

    /// The state to persist.
    pub fn snapshot(&self) -> SecuritySnapshot {
        let mut buckets: Vec<_> = self
            .buckets
            .iter()
            .map(|((d, k), b)| (*d, *k, b.clone()))
            .collect();
        buckets.sort_by_key(|b| (b.0, b.1));
        SecuritySnapshot {
            version: SECURITY_SNAPSHOT_VERSION,
            buckets,
            stats: self.stats,
        }
    }

    /// Replace this detector's state by a snapshot.
    ///
    /// # Errors
    /// [`SecurityError::SnapshotVersion`] for a snapshot of another version; the detector is
    /// left unchanged.
    pub fn restore(&mut self, snapshot: SecuritySnapshot) -> Result<(), SecurityError> {
        if snapshot.version != SECURITY_SNAPSHOT_VERSION {
            return Err(SecurityError::SnapshotVersion {
                found: snapshot.version,
                expected: SECURITY_SNAPSHOT_VERSION,
            });
        }
        self.buckets = snapshot
            .buckets
            .into_iter()
            .take(self.config.max_keys)
            .map(|(d, k, b)| ((d, k), b))
            .collect();
        self.stats = snapshot.stats;
        Ok(())
    }

    fn secret_leak(&mut self, event: &LogEvent, now_ms: i64, out: &mut Vec<Alert>) {
        let mut kinds: Vec<&str> = event.sluice.redacted.iter().map(String::as_str).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let kinds = kinds.join(",");
        let service = event
            .service
            .name
            .as_deref()
            .or(event.kubernetes.container.name.as_deref())
            .unwrap_or("unknown");
        let namespace = event.kubernetes.namespace.as_deref().unwrap_or("");
        let labels = [
            ("service", service),
            ("namespace", namespace),
            ("kind", kinds.as_str()),
        ];
        let bh = self.config.secret_leak_blackhole_secs;
        let pour = Pour {
            detection: Detection::SecretLeak,
            bucket: BucketConfig::new(0, 1, bh),
            labels: &labels,
            distinct: None,
            sample: "",
        };
        if let Some(mut alert) = self.pour(&pour, now_ms, event) {
            let a = &mut alert.annotations;
            a.insert(
                schemas::ANNOTATION_SUMMARY.into(),
                format!("a {kinds} credential was logged by {service} (redacted before storage)"),
            );
            if let Some(pod) = &event.kubernetes.pod.name {
                a.insert("pod".into(), pod.clone());
            }
            if !event.sluice.source.path.is_empty() {
                a.insert("source_path".into(), event.sluice.source.path.clone());
                a.insert(
                    "source_offset".into(),
                    event.sluice.source.offset.to_string(),
                );
            }
            out.push(alert);
        }
    }

    /// Pour one signal; returns the alert when the bucket overflows outside its silence.
    fn pour(&mut self, pour: &Pour<'_>, now_ms: i64, event: &LogEvent) -> Option<Alert> {
        let key = (pour.detection, labels_key(pour.labels));
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.config.max_keys {
            self.evict(now_ms);
        }
        let b = self.buckets.entry(key).or_insert_with(|| BucketState {
            labels: pour
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            level: 0.0,
            last_ms: now_ms,
            first_ms: now_ms,
            count: 0,
            silenced_until_ms: i64::MIN,
            distinct: Vec::new(),
            sample: String::new(),
        });
        let leak_ms = pour.bucket.leak_secs as f64 * 1000.0;
        let elapsed = now_ms.saturating_sub(b.last_ms).max(0) as f64;
        b.level = (b.level - elapsed / leak_ms).max(0.0);
        if b.level == 0.0 {
            b.distinct.clear();
            b.count = 0;
            b.first_ms = now_ms;
        }
        b.last_ms = b.last_ms.max(now_ms);
        if let Some(value) = pour.distinct {
            let hv = xxhash_rust::xxh3::xxh3_64(value.as_bytes());
            if b.distinct.contains(&hv) {
                return None;
            }
            if b.distinct.len() < MAX_DISTINCT_PER_BUCKET {
                b.distinct.push(hv);
            }
        }
        b.level += 1.0;
        b.count += 1;
        if !pour.sample.is_empty() {
            b.sample.clear();
            b.sample.push_str(truncate(pour.sample, SAMPLE_MAX_BYTES));
        }
        if b.level <= f64::from(pour.bucket.capacity) || now_ms < b.silenced_until_ms {
            return None;
        }
        let alert = build_alert(pour.detection, b, now_ms, pour.bucket, event);
        b.silenced_until_ms = now_ms.saturating_add(pour.bucket.blackhole_secs as i64 * 1000);
        b.level = 0.0;
        b.distinct.clear();
        b.count = 0;
        self.stats.alerts += 1;
        Some(alert)
    }

    fn evict(&mut self, now_ms: i64) {
        let before = self.buckets.len();
        let cfg = self.config.clone();
        self.buckets
            .retain(|(det, _), b| !is_idle(b, bucket_config(&cfg, *det), now_ms));
        if self.buckets.len() >= self.config.max_keys {
            let drop_n = ((self.buckets.len() as f64 * EVICT_FRACTION).ceil() as usize).max(1);
            let mut lasts: Vec<i64> = self.buckets.values().map(|b| b.last_ms).collect();
            lasts.sort_unstable();
            let cutoff = lasts[drop_n.min(lasts.len()) - 1];
            let mut dropped = 0usize;
            self.buckets.retain(|_, b| {
                if dropped < drop_n && b.last_ms <= cutoff {
                    dropped += 1;
                    false
                } else {
                    true
                }
            });
        }
        self.stats.keys_evicted += (before - self.buckets.len()) as u64;
    }
}

/// The bucket key of an offender's labels.
fn labels_key(labels: &[(&'static str, &str)]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for (k, v) in labels {
        h.update(k.as_bytes());
        h.update(&[0xff]);
        h.update(v.as_bytes());
        h.update(&[0xfe]);
    }
    h.digest()
}

fn bucket_config(cfg: &SecurityConfig, det: Detection) -> BucketConfig {
    match det {
        Detection::BruteForce => cfg.brute_force,
        Detection::SlowBruteForce => cfg.slow_brute_force,
        Detection::CredentialStuffing => cfg.credential_stuffing,
        Detection::DistributedBruteForce => cfg.distributed_brute_force,
        Detection::SensitiveFileProbe => cfg.sensitive_file_probe,
        Detection::HttpProbing => cfg.http_probing,
        Detection::WebAttack(_) => BucketConfig::new(0, 1, cfg.web_attack_blackhole_secs),
        Detection::Scanner => BucketConfig::new(0, 1, cfg.scanner_blackhole_secs),
        Detection::SecretLeak => BucketConfig::new(0, 1, cfg.secret_leak_blackhole_secs),
    }
}

/// Drained and not silenced: dropping it loses nothing.
fn is_idle(b: &BucketState, cfg: BucketConfig, now_ms: i64) -> bool {
    let drained_at = b.last_ms as f64 + b.level * cfg.leak_secs as f64 * 1000.0;
    (now_ms as f64) >= drained_at && now_ms >= b.silenced_until_ms
}

/// The request path and query of an event, from `url.path`/`url.query` or `url.original`.
fn request_target(event: &LogEvent) -> (Option<&str>, Option<&str>) {
    let path = event.url.path.as_deref().filter(|s| !s.is_empty());
    let query = event.url.query.as_deref().filter(|s| !s.is_empty());
    if path.is_some() || query.is_some() {
        return (path, query);
    }
    match event.url.original.as_deref() {
        Some(orig) if !orig.is_empty() => match orig.split_once('?') {
            Some((p, q)) => (Some(p), Some(q)),
            None => (Some(orig), None),
        },
        _ => (None, None),
    }
}

fn strip_query(path: &str) -> &str {
    path.split_once('?').map_or(path, |(p, _)| p)
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

fn ms_to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn build_alert(
    det: Detection,
    b: &BucketState,
    now_ms: i64,
    cfg: BucketConfig,
    event: &LogEvent,
) -> Alert {
    let mut labels = BTreeMap::new();
    labels.insert(
        schemas::LABEL_ALERTNAME.to_string(),
        det.alert_name().to_string(),
    );
    labels.insert(
        schemas::LABEL_SEVERITY.to_string(),
        det.severity().to_string(),
    );
    for (k, v) in &b.labels {
        labels.insert(k.clone(), v.clone());
    }
    match det {
        Detection::BruteForce => {
            labels.insert("pace".into(), "fast".into());
        }
        Detection::SlowBruteForce => {
            labels.insert("pace".into(), "slow".into());
        }
        _ => {}
    }
    let offender = b
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    let what = match det {
        Detection::BruteForce | Detection::SlowBruteForce => "failed authentications",
        Detection::CredentialStuffing => "failed authentications for distinct users",
        Detection::DistributedBruteForce => "failed authentications from distinct addresses",
        Detection::WebAttack(_) => "web attack requests",
        Detection::Scanner => "requests with a scanner user agent",
        Detection::SensitiveFileProbe => "probes of sensitive files or admin paths",
        Detection::HttpProbing => "requests for missing or forbidden paths",
        Detection::SecretLeak => "log lines carrying a credential",
    };
    let mut annotations = BTreeMap::new();
    annotations.insert(
        schemas::ANNOTATION_SUMMARY.to_string(),
        format!("{} {what} ({offender})", b.count),
    );
    annotations.insert("count".into(), b.count.to_string());
    annotations.insert("first_seen".into(), ms_to_time(b.first_ms).to_rfc3339());
    annotations.insert("last_seen".into(), ms_to_time(now_ms).to_rfc3339());
    if !b.sample.is_empty() && det != Detection::SecretLeak {
        annotations.insert("sample".into(), b.sample.clone());
    }
    let is_auth = matches!(
        det,
        Detection::BruteForce | Detection::SlowBruteForce | Detection::CredentialStuffing
    );
    if let Some(user) = event.user.name.as_deref() {
        annotations.insert("user.name".into(), user.to_string());
    } else if is_auth && !b.sample.is_empty() {
        // The user named by the failure line that fired the alert.
        annotations.insert("user.name".into(), b.sample.clone());
    }
    if let Some(service) = event.service.name.as_deref() {
        annotations.insert("service".into(), service.to_string());
    }
    if !event.event.id.is_empty() {
        annotations.insert("event_id".into(), event.event.id.clone());
    }
    let fingerprint = schemas::alert_fingerprint(&labels);
    Alert {
        labels,
        annotations,
        starts_at: ms_to_time(b.first_ms),
        // Resolves by itself once the silence ends without a new overflow.
        ends_at: Some(ms_to_time(
            now_ms.saturating_add(cfg.blackhole_secs as i64 * 1000),
        )),
        generator_url: String::new(),
        status: AlertStatus::Firing,
        fingerprint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).expect("valid time")
    }

    fn ssh_fail(secs: i64, user: &str, ip: &str) -> LogEvent {
        LogEvent::new(
            t(secs),
            format!("Failed password for invalid user {user} from {ip} port 4242 ssh2"),
        )
    }

    fn http(secs: i64, ip: &str, path: &str, status: u16) -> LogEvent {
        let mut ev = LogEvent::new(t(secs), format!("GET {path} {status}"));
        ev.client.ip = Some(ip.into());
        let (p, q) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q.to_string())),
            None => (path, None),
        };
        ev.url.path = Some(p.into());
        ev.url.query = q;
        ev.http.response.status_code = Some(status);
        ev.user_agent.original = Some("Mozilla/5.0".into());
        ev
    }

    fn names(alerts: &[Alert]) -> Vec<&str> {
        alerts.iter().map(Alert::name).collect()
    }

    #[test]
    fn brute_force_fires_once_per_offender_and_window() -> Result<(), SecurityError> {
        let mut det = SecurityDetector::try_new(&SecurityConfig::default())?;
        let mut out = Vec::new();
        for i in 0..20 {
            det.process(&ssh_fail(i, "root", "198.51.100.7"), &mut out);
        }
        assert_eq!(names(&out), vec![ALERT_BRUTE_FORCE]);
        let a = &out[0];
        assert_eq!(a.labels[LABEL_CLIENT_IP], "198.51.100.7");
        assert_eq!(a.labels["pace"], "fast");
        assert_eq!(a.annotations["count"], "6");
        assert_eq!(a.annotations["user.name"], "root");
        assert_eq!(a.starts_at, t(0));
        assert_eq!(a.annotations["last_seen"], t(5).to_rfc3339());
        // Another address is its own offender.
        for i in 0..6 {
            det.process(&ssh_fail(100 + i, "root", "198.51.100.8"), &mut out);
        }
        assert_eq!(out.len(), 2);
        // After the silence the first offender can fire again.
        out.clear();
        for i in 0..6 {
            det.process(&ssh_fail(400 + i, "root", "198.51.100.7"), &mut out);
        }
        assert_eq!(names(&out), vec![ALERT_BRUTE_FORCE]);
        Ok(())
    }

    #[test]
    fn quiet_rate_of_failures_does_not_fire() -> Result<(), SecurityError> {
        let mut det = SecurityDetector::try_new(&SecurityConfig::default())?;
        let mut out = Vec::new();
        // A user mistyping a password every 10 minutes all day.
        for i in 0..144 {
            det.process(&ssh_fail(i * 600, "alice", "192.0.2.50"), &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        Ok(())
    }

    #[test]
    fn slow_brute_force_over_an_hour() -> Result<(), SecurityError> {
        let mut det = SecurityDetector::try_new(&SecurityConfig::default())?;
        let mut out = Vec::new();
        // One attempt every two minutes for an hour: never fast, but relentless.
        for i in 0..30 {
            det.process(&ssh_fail(i * 120, "admin", "203.0.113.77"), &mut out);
        }
        assert_eq!(names(&out), vec![ALERT_BRUTE_FORCE]);
        assert_eq!(out[0].labels["pace"], "slow");
        Ok(())
    }

    #[test]
    fn credential_stuffing_and_distributed_attack() -> Result<(), SecurityError> {
        let mut det = SecurityDetector::try_new(&SecurityConfig::default())?;
        let mut out = Vec::new();
        for (i, user) in ["ann", "bob", "cy", "dee", "eve"].iter().enumerate() {
            det.process(&ssh_fail(i as i64 * 20, user, "192.0.2.9"), &mut out);
        }
        assert_eq!(names(&out), vec![ALERT_CREDENTIAL_STUFFING]);
        assert_eq!(out[0].labels[LABEL_CLIENT_IP], "192.0.2.9");
        out.clear();
        for i in 0..10 {
            let ip = format!("203.0.113.{}", i + 1);
            det.process(&ssh_fail(1000 + i * 30, "oracle", &ip), &mut out);
        }
        assert_eq!(names(&out), vec![ALERT_DISTRIBUTED_BRUTE_FORCE]);
        assert_eq!(out[0].labels[LABEL_USER_NAME], "oracle");
        Ok(())
    }

    #[test]
    fn http_401_counts_and_403_only_on_login() -> Result<(), SecurityError> {
        let mut det = SecurityDetector::try_new(&SecurityConfig::default())?;
        let mut out = Vec::new();
        for i in 0..10 {
            det.process(&http(i, "10.9.9.9", "/api/reports", 403), &mut out);
        }
        assert!(out.iter().all(|a| a.name() != ALERT_BRUTE_FORCE));
        for i in 0..6 {
            det.process(&http(20 + i, "10.9.9.10", "/api/login", 401), &mut out);
        }
        assert!(out.iter().any(|a| a.name() == ALERT_BRUTE_FORCE));
        Ok(())
    }

    #[test]
    fn web_attack_once_per_class() -> Result<(), SecurityError> {
        let mut det = SecurityDetector::try_new(&SecurityConfig::default())?;
        let mut out = Vec::new();
        for i in 0..5 {
            det.process(
                &http(i, "192.0.2.1", "/item?id=1%27%20or%20%271%27=%271", 200),
                &mut out,
            );
        }
        det.process(&http(6, "192.0.2.1", "/../../etc/passwd", 404), &mut out);
        let attacks: Vec<&str> = out
            .iter()
            .map(|a| a.labels[LABEL_ATTACK].as_str())
            .collect();
        assert_eq!(attacks, vec!["sqli", "path_traversal"]);
        assert!(out.iter().all(|a| a.name() == ALERT_WEB_ATTACK));
        Ok(())
    }

    #[test]
    fn benign_traffic_is_quiet() -> Result<(), SecurityError> {
        let mut det = SecurityDetector::try_new(&SecurityConfig::default())?;
        let mut out = Vec::new();
        let paths = [
            "/search?q=O%27Brien+select+from+union",
            "/api/users?name=D%27Angelo&sort=asc",
            "/callback?code=YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo%3D&state=xyz",
            "/assets/app.js",
            "/favicon.ico",
            "/api/orders/123",
        ];
        for i in 0..600 {
            let path = paths[i as usize % paths.len()];
            let status = if path.ends_with(".ico") { 404 } else { 200 };
            det.process(&http(i, "198.51.100.20", path, status), &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        Ok(())
    }

    #[test]
    fn probing_and_scanners() -> Result<(), SecurityError> {
        let mut det = SecurityDetector::try_new(&SecurityConfig::default())?;
        let mut out = Vec::new();
        for (i, p) in ["/.env", "/.git/config", "/wp-config.php.bak"]
            .iter()
            .enumerate()
        {
            det.process(&http(i as i64, "192.0.2.44", p, 404), &mut out);
        }
        assert_eq!(names(&out), vec![ALERT_SENSITIVE_FILE_PROBE]);
        out.clear();
        let mut ev = http(10, "192.0.2.45", "/", 200);
        ev.user_agent.original = Some("sqlmap/1.7.2#stable (https://sqlmap.org)".into());
        det.process(&ev, &mut out);
        det.process(&ev, &mut out);
        assert_eq!(names(&out), vec![ALERT_SCANNER]);
        Ok(())
    }

    #[test]
    fn secret_leak_names_where_never_the_secret() -> Result<(), SecurityError> {
        let mut det = SecurityDetector::try_new(&SecurityConfig::default())?;
        let mut out = Vec::new();
        let mut ev = LogEvent::new(t(0), "auth header Bearer [REDACTED]");
        ev.sluice.redacted = vec!["jwt".into()];
        ev.service.name = Some("checkout".into());
        ev.sluice.source.path = "/var/log/pods/x/0.log".into();
        det.process(&ev, &mut out);
        det.process(&ev, &mut out);
        assert_eq!(names(&out), vec![ALERT_SECRET_LEAK]);
        let a = &out[0];
        assert_eq!(a.labels["kind"], "jwt");
        assert_eq!(a.labels["service"], "checkout");
        assert_eq!(a.annotations["source_path"], "/var/log/pods/x/0.log");
        assert!(!a.annotations.values().any(|v| v.contains("Bearer")));
        Ok(())
    }

    #[test]
    fn trusted_addresses_are_ignored() -> Result<(), SecurityError> {
        let cfg = SecurityConfig {
            trusted_ips: vec!["192.0.2.200".into()],
            ..SecurityConfig::default()
        };
        let mut det = SecurityDetector::try_new(&cfg)?;
        let mut out = Vec::new();
        for i in 0..20 {
            det.process(&ssh_fail(i, "root", "192.0.2.200"), &mut out);
        }
        assert!(out.is_empty());
        Ok(())
    }

    #[test]
    fn key_cap_evicts_and_counts() -> Result<(), SecurityError> {
        let cfg = SecurityConfig {
            max_keys: 50,
            ..SecurityConfig::default()
        };
        let mut det = SecurityDetector::try_new(&cfg)?;
        let mut out = Vec::new();
        for i in 0..1000 {
            let ip = format!("10.0.{}.{}", i / 250, i % 250);
            det.process(&ssh_fail(i, "root", &ip), &mut out);
        }
        assert!(det.tracked_keys() <= 50);
        assert!(det.stats().keys_evicted > 0);
        Ok(())
    }

    #[test]
    fn snapshot_restore_keeps_windows_and_silences() -> Result<(), Box<dyn std::error::Error>> {
        let mut det = SecurityDetector::try_new(&SecurityConfig::default())?;
        let mut out = Vec::new();
        for i in 0..4 {
            det.process(&ssh_fail(i, "root", "192.0.2.77"), &mut out);
        }
        let json = serde_json::to_string(&det.snapshot())?;
        let mut restored = SecurityDetector::try_new(&SecurityConfig::default())?;
        restored.restore(serde_json::from_str(&json)?)?;
        for i in 4..6 {
            restored.process(&ssh_fail(i, "root", "192.0.2.77"), &mut out);
        }
        assert_eq!(names(&out), vec![ALERT_BRUTE_FORCE], "counts carried over");
        let json = serde_json::to_string(&restored.snapshot())?;
        let mut again = SecurityDetector::try_new(&SecurityConfig::default())?;
        again.restore(serde_json::from_str(&json)?)?;
        for i in 6..12 {
            again.process(&ssh_fail(i, "root", "192.0.2.77"), &mut out);
        }
        assert_eq!(
            out.len(),
            1,
            "silence carried over: no re-fire after restart"
        );
        let mut bad = det.snapshot();
        bad.version = 99;
        assert!(det.restore(bad).is_err());
        Ok(())
    }

    #[test]
    fn invalid_config_is_rejected() {
        let cfg = SecurityConfig {
            trusted_ips: vec!["not-an-ip".into()],
            ..SecurityConfig::default()
        };
        let err = SecurityDetector::try_new(&cfg).err();
        assert_eq!(err.map(|e| e.error_code()), Some("security_invalid_config"));
        let toml_cfg: Result<SecurityConfig, _> = toml::from_str("brute_force = { capacity = 3 }");
        assert!(toml_cfg.is_err(), "bucket fields are all required");
        let toml_cfg: Result<SecurityConfig, _> = toml::from_str("bogus = 1");
        assert!(toml_cfg.is_err(), "unknown fields are rejected");
    }
}
