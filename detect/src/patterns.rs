//! Log-pattern mining: an online template miner of the Drain family.
//!
//! [`PatternMiner`] turns every message into a template (`<*>` marks a variable) and a stable
//! pattern id derived from the template text, so the same template gets the same id across
//! restarts and across replicas. It learns online, keeps memory bounded (a cap on templates
//! with least-recently-used eviction) and can be snapshotted and restored.
//!
//! How a message is mined:
//! 1. Masking: the message is cut into whitespace tokens, and each token into segments at
//!    punctuation delimiters (`:`, `=`, `,`, `#`, brackets, quotes, ...). A segment holding a
//!    digit (numbers, ids, IPs, UUIDs, hex, durations, sizes), an absolute path, a host name
//!    or a boolean becomes `<*>`; short names with a digit (`ssh2`, `L2`) stay words, and a
//!    label before a value (`core.2275`, `field .....0`) and a full stop after it are kept.
//! 2. Exact lookup: the masked text is looked up in a bounded cache, so a repeated shape costs
//!    one hash and one probe.
//! 3. Otherwise the masked tokens are compared with the templates of the same token count and
//!    first token; the most similar one above [`PatternConfig::similarity_threshold`] absorbs
//!    the message (the differing segments become `<*>`). A different second word (as in
//!    Drain's second tree level: `Failed password ...` / `Failed none ...`), or a single
//!    differing word elsewhere (`stored as values` / `stored as bytes`), keeps templates apart
//!    until that column shows more than two words: then it is a value (`user alice ...`,
//!    `user bob ...`, `user carol ...`) and those templates fold into one.
//! 4. Otherwise the message's *shape* is looked up: its constant tokens in order, with every
//!    run of variable tokens (and the unit words after a variable: `bytes`, `KB`, `sec`) as one
//!    span. A template of the same shape but another token count (`815 bytes received` /
//!    `1165 bytes (1.13 KB) received`, `lifetime <1 sec` / `lifetime 00:02`) absorbs it, each
//!    differing span becoming one `<*>`; else a new template is created.
//!
//! [`PatternMiner::process`] also raises `NewErrorPattern` (an error-level template never seen
//! before, once the learning period is over) and `PatternSpike` (a template's count in a window
//! far above its own moving baseline).
//!
//! ```
//! use detect::patterns::{PatternConfig, PatternMiner};
//! let mut miner = PatternMiner::try_new(&PatternConfig::default()).expect("default config is valid");
//! miner.assign("login of alice from 10.0.0.1");
//! miner.assign("login of bob from 10.0.0.2");
//! let m = miner.assign("login of carol from 10.0.0.3");
//! assert_eq!(m.template, "login of <*> from <*>");
//! ```

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use chrono::{DateTime, Utc};
use schemas::{Alert, AlertStatus, LogEvent};
use serde::{Deserialize, Serialize};

/// The variable marker in templates, as Loghub and Drain write it.
pub const WILDCARD: &str = "<*>";
/// Version of [`PatternSnapshot`]; bump on an incompatible change.
pub const PATTERN_SNAPSHOT_VERSION: u32 = 1;
/// Alert name for an error-level template never seen before.
pub const ALERT_NEW_ERROR_PATTERN: &str = "NewErrorPattern";
/// Alert name for a template whose rate is far above its baseline.
pub const ALERT_PATTERN_SPIKE: &str = "PatternSpike";
/// Label carrying the pattern id on pattern alerts.
pub const LABEL_PATTERN_ID: &str = "pattern_id";
/// Longest sample line copied into an alert annotation: enough to recognise the line, short
/// enough that a runaway line does not bloat every notification.
const SAMPLE_MAX_BYTES: usize = 512;
/// Most windows replayed when the watermark jumps over a gap: after this many empty windows
/// every baseline has decayed to nearly zero anyway, so replaying more only costs time.
const MAX_GAP_WINDOWS: u64 = 64;
/// Fraction of templates dropped in one eviction pass. Evicting in batches keeps the cost of
/// the O(templates) scan amortised instead of paying it on every new template.
const EVICT_FRACTION: f64 = 0.1;

/// Segment delimiters inside a whitespace token. `.`, `/`, `-` and `_` are deliberately not
/// delimiters: they occur inside variables (IPs, paths, host names, ids) and splitting there
/// would leave half a variable in the template. `#` separates a name from its number
/// (`CPU#0`, `#1`) and the fields of packed values (`1514038440000##6993`).
const DELIMITERS: &[u8] = b":=,;|\"'()[]{}#";

/// Shortest alphabetic stem of a versioned word such as `ssh2`: one letter, since cache levels
/// and wire names (`L2`, `C1`) are names too; a value with one digit varies and is caught by
/// the similarity merge.
const MIN_VERSIONED_WORD_LETTERS: usize = 1;
/// Longest numeric suffix of a versioned word: `SOCKS5` and `ssh2` are names, `node0042` is an
/// id.
const MAX_VERSIONED_WORD_DIGITS: usize = 1;
/// Top-level domains that mark a dotted token as a host name (masked as a variable). A short
/// list of the common generic ones plus cluster-internal suffixes; a rarer TLD is still caught
/// when host names differ between lines, by the similarity merge.
const TOP_LEVEL_DOMAINS: &[&str] = &[
    "com",
    "net",
    "org",
    "edu",
    "gov",
    "io",
    "info",
    "biz",
    "hk",
    "cn",
    "uk",
    "de",
    "jp",
    "ru",
    "fr",
    "br",
    "in",
    "us",
    "eu",
    "local",
    "internal",
    "lan",
    "localdomain",
    "cluster",
    "svc",
];

/// Day and month abbreviations as `ctime` and syslog print them (exact case: `may` or `MAR`
/// in prose are words).
const CALENDAR_NAMES: &[&str] = &[
    "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "Jan", "Feb", "Mar", "Apr", "May", "Jun",
    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// How many plain differences a disagreement between two structured tokens counts as.
const STRUCTURAL_MISMATCH_WEIGHT: usize = 3;

/// Configuration of the pattern miner: one configuration serves every dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PatternConfig {
    /// Fraction of non-variable token positions that must agree for a message to join an
    /// existing template of the same length, in (0, 1].
    pub similarity_threshold: f64,
    /// Most templates kept; beyond it the least recently used ones are evicted.
    pub max_templates: usize,
    /// Most distinct masked shapes remembered for the exact-match fast path; the cache is
    /// cleared when full (it is rebuilt from traffic, never needed for correctness).
    pub max_cache_entries: usize,
    /// Longest message mined, in bytes; the rest is ignored (a variable tail).
    pub max_message_bytes: usize,
    /// Most tokens mined per message; the remaining tokens become one `<*>`.
    pub max_tokens: usize,
    /// Mask absolute paths (`/var/lib/x`) as variables.
    pub mask_paths: bool,
    /// No `NewErrorPattern` alert before this many seconds of event time have passed since the
    /// first event: the miner first learns what is normal.
    pub learning_period_secs: u64,
    /// No `NewErrorPattern` alert before this many events have been mined.
    pub learning_min_events: u64,
    /// Width of the spike-detection window in seconds.
    pub spike_window_secs: u64,
    /// A window count above `spike_factor` × baseline is a spike.
    pub spike_factor: f64,
    /// A window needs at least this many events of the template to count as a spike, so rare
    /// templates do not flap.
    pub spike_min_count: u64,
    /// Windows of history a template needs before it can spike.
    pub spike_min_windows: u32,
    /// Weight of the newest window in the exponentially weighted baseline, in (0, 1].
    pub baseline_alpha: f64,
}

impl Default for PatternConfig {
    fn default() -> Self {
        PatternConfig {
            // Seven in ten constant positions must agree (an upper-case keyword counts double,
            // see `similarity`). Chosen on Loghub-2k with one value for every system (see
            // tests/patterns_loghub.rs), between Drain's usual 0.4-0.7.
            similarity_threshold: 0.7,
            max_templates: 10_000,
            max_cache_entries: 200_000,
            max_message_bytes: 4096,
            max_tokens: 128,
            mask_paths: true,
            learning_period_secs: 600,
            learning_min_events: 1000,
            spike_window_secs: 60,
            spike_factor: 5.0,
            spike_min_count: 50,
            spike_min_windows: 10,
            baseline_alpha: 0.1,
        }
    }
}

impl PatternConfig {
    /// Check every field.
    ///
    /// # Errors
    /// [`PatternError::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<(), PatternError> {
        let bad = |field: &'static str, reason: &str| {
            Err(PatternError::InvalidConfig {
                field,
                reason: reason.to_string(),
            })
        };
        if !(self.similarity_threshold > 0.0 && self.similarity_threshold <= 1.0) {
            return bad("similarity_threshold", "must be in (0, 1]");
        }
        if self.max_templates == 0 {
            return bad("max_templates", "must be at least 1");
        }
        if self.max_cache_entries == 0 {
            return bad("max_cache_entries", "must be at least 1");
        }
        if self.max_message_bytes == 0 {
            return bad("max_message_bytes", "must be at least 1");
        }
        if self.max_tokens < 2 {
            return bad("max_tokens", "must be at least 2");
        }
        if self.spike_window_secs == 0 {
            return bad("spike_window_secs", "must be at least 1");
        }
        if !(self.spike_factor >= 1.0 && self.spike_factor.is_finite()) {
            return bad("spike_factor", "must be a finite number >= 1");
        }
        if !(self.baseline_alpha > 0.0 && self.baseline_alpha <= 1.0) {
            return bad("baseline_alpha", "must be in (0, 1]");
        }
        Ok(())
    }
}

/// Errors of the pattern miner.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    /// A configuration field is out of range.
    #[error("invalid pattern config field {field}: {reason}")]
    InvalidConfig { field: &'static str, reason: String },
    /// A snapshot written by an incompatible version.
    #[error("unsupported pattern snapshot version {found} (expected {expected})")]
    SnapshotVersion { found: u32, expected: u32 },
}

impl PatternError {
    /// Stable code for logs and metric labels.
    pub fn error_code(&self) -> &'static str {
        match self {
            PatternError::InvalidConfig { .. } => "pattern_invalid_config",
            PatternError::SnapshotVersion { .. } => "pattern_snapshot_version",
        }
    }
}

/// The template a message was assigned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatternMatch<'a> {
    /// Stable id: 16 hex digits of xxh3-64 over the template text.
    pub id: &'a str,
    /// The template, `<*>` for variables.
    pub template: &'a str,
    /// True when this message created the template.
    pub is_new: bool,
}

/// Counters for observability (read them per batch, not per line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatternStats {
    /// Messages mined.
    pub messages: u64,
    /// Messages resolved by the exact-match cache.
    pub cache_hits: u64,
    /// Templates evicted by the `max_templates` cap.
    pub templates_evicted: u64,
    /// Messages cut at `max_message_bytes` or `max_tokens`.
    pub messages_truncated: u64,
}

/// Persisted state of a [`PatternMiner`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatternSnapshot {
    pub version: u32,
    pub clusters: Vec<ClusterState>,
    pub current_window: Option<i64>,
    pub first_event: Option<DateTime<Utc>>,
    pub stats: PatternStats,
}

/// Persisted state of one template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterState {
    /// The template's tokens.
    pub tokens: Vec<String>,
    pub count: u64,
    pub error_seen: bool,
    pub window_count: u64,
    pub baseline: f64,
    pub windows_seen: u32,
    pub spike_active: bool,
}

#[derive(Debug, Clone)]
struct Cluster {
    tokens: Vec<String>,
    template: String,
    id: String,
    count: u64,
    /// Sequence number of the last message assigned, for LRU eviction.
    last_seen: u64,
    error_seen: bool,
    window_count: u64,
    baseline: f64,
    windows_seen: u32,
    spike_active: bool,
}

impl Cluster {
    fn new(tokens: Vec<String>, seq: u64) -> Cluster {
        let template = tokens.join(" ");
        Cluster {
            id: template_id(&template),
            template,
            tokens,
            count: 0,
            last_seen: seq,
            error_seen: false,
            window_count: 0,
            baseline: 0.0,
            windows_seen: 0,
            spike_active: false,
        }
    }

    fn retemplate(&mut self) {
        self.template = self.tokens.join(" ");
        self.id = template_id(&self.template);
    }
}

/// The stable id of a template: 16 hex digits of xxh3-64 over its text.
pub fn template_id(template: &str) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(template.as_bytes()))
}

/// A `Hasher` running xxh3 over the key bytes: keys here are masked log lines, where SipHash's
/// DoS resistance is not needed but its cost per byte is.
#[derive(Debug, Default)]
struct Xxh3Hasher(u64);

impl Hasher for Xxh3Hasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }
    fn write_u8(&mut self, i: u8) {
        self.0 = self.0.rotate_left(5) ^ u64::from(i);
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Xxh3Hasher>>;

/// Online template miner; see the module docs.
#[derive(Debug)]
pub struct PatternMiner {
    config: PatternConfig,
    clusters: Vec<Cluster>,
    /// (token count, first-token class) → indices of the clusters in that bucket.
    by_len: FastMap<(usize, u64), Vec<u32>>,
    /// Masked text → cluster index.
    cache: FastMap<Box<str>, u32>,
    /// Shape key (see [`shape_key`]) → the cluster that first had that shape, so a message
    /// whose variables take a different number of tokens still finds its template.
    by_shape: FastMap<u64, u32>,
    /// Reused buffer for the masked text of the current message.
    scratch: String,
    seq: u64,
    current_window: Option<i64>,
    first_event: Option<DateTime<Utc>>,
    stats: PatternStats,
}

impl PatternMiner {
    /// Build a miner.
    ///
    /// # Errors
    /// [`PatternError::InvalidConfig`] when the configuration does not validate.
    pub fn try_new(config: &PatternConfig) -> Result<PatternMiner, PatternError> {
        config.validate()?;
        Ok(PatternMiner {
            config: config.clone(),
            clusters: Vec::new(),
            by_len: FastMap::default(),
            cache: FastMap::default(),
            by_shape: FastMap::default(),
            scratch: String::new(),
            seq: 0,
            current_window: None,
            first_event: None,
            stats: PatternStats::default(),
        })
    }

    /// Counters since start (or restore).
    pub fn stats(&self) -> PatternStats {
        self.stats
    }

    /// Number of templates held.
    pub fn len(&self) -> usize {
        self.clusters.len()
    }

    /// True when no template has been learned yet.
    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty()
    }

    /// Assign a template to one message, learning online.
    pub fn assign(&mut self, message: &str) -> PatternMatch<'_> {
        let (idx, is_new) = self.assign_index(message);
        let c = &self.clusters[idx];
        PatternMatch {
            id: &c.id,
            template: &c.template,
            is_new,
        }
    }

    /// Assign the event's message, set `sluice.pattern.{id,template}`, and raise
    /// `NewErrorPattern` / `PatternSpike` alerts into `out`.
    pub fn process(&mut self, event: &mut LogEvent, out: &mut Vec<Alert>) {
        let ts = event.timestamp;
        self.roll_windows(ts, out);
        if self.first_event.is_none() {
            self.first_event = Some(ts);
        }
        let (idx, _) = self.assign_index(&event.message);
        let learning_over = self.learning_over(ts);
        let is_error = event.log.level.is_some_and(|l| l.is_error());
        let cluster = &mut self.clusters[idx];
        cluster.window_count += 1;
        event.sluice.pattern.id = Some(cluster.id.clone());
        event.sluice.pattern.template = Some(cluster.template.clone());
        if is_error && !cluster.error_seen {
            cluster.error_seen = true;
            if learning_over {
                out.push(new_error_alert(cluster, event));
            }
        }
    }

    /// Close every spike window that ends at or before `now`, raising `PatternSpike` alerts.
    pub fn advance_watermark(&mut self, now: DateTime<Utc>, out: &mut Vec<Alert>) {
        self.roll_windows(now, out);
    }

    /// Every template as `(id, template, count)`, in no particular order.
    pub fn templates(&self) -> impl Iterator<Item = (&str, &str, u64)> {
        self.clusters
            .iter()
            .map(|c| (c.id.as_str(), c.template.as_str(), c.count))
    }

    /// The state to persist.
    pub fn snapshot(&self) -> PatternSnapshot {
        PatternSnapshot {
            version: PATTERN_SNAPSHOT_VERSION,
            clusters: self
                .clusters
                .iter()
                .map(|c| ClusterState {
                    tokens: c.tokens.clone(),
                    count: c.count,
                    error_seen: c.error_seen,
                    window_count: c.window_count,
                    baseline: c.baseline,
                    windows_seen: c.windows_seen,
                    spike_active: c.spike_active,
                })
                .collect(),
            current_window: self.current_window,
            first_event: self.first_event,
            stats: self.stats,
        }
    }

    /// Replace this miner's state by a snapshot. Templates beyond `max_templates` are dropped.
    ///
    /// # Errors
    /// [`PatternError::SnapshotVersion`] for a snapshot of another version; the miner is left
    /// unchanged.
    pub fn restore(&mut self, snapshot: PatternSnapshot) -> Result<(), PatternError> {
        if snapshot.version != PATTERN_SNAPSHOT_VERSION {
            return Err(PatternError::SnapshotVersion {
                found: snapshot.version,
                expected: PATTERN_SNAPSHOT_VERSION,
            });
        }
        self.clusters.clear();
        self.cache.clear();
        self.seq = 0;
        for state in snapshot
            .clusters
            .into_iter()
            .take(self.config.max_templates)
        {
            let mut c = Cluster::new(state.tokens, 0);
            c.count = state.count;
            c.error_seen = state.error_seen;
            c.window_count = state.window_count;
            c.baseline = state.baseline;
            c.windows_seen = state.windows_seen;
            c.spike_active = state.spike_active;
            self.clusters.push(c);
        }
        self.rebuild_index();
        self.current_window = snapshot.current_window;
        self.first_event = snapshot.first_event;
        self.stats = snapshot.stats;
        Ok(())
    }

    fn learning_over(&self, now: DateTime<Utc>) -> bool {
        let Some(first) = self.first_event else {
            return false;
        };
        let elapsed = now.signed_duration_since(first).num_seconds();
        elapsed >= 0
            && elapsed as u64 >= self.config.learning_period_secs
            && self.stats.messages >= self.config.learning_min_events
    }

    fn assign_index(&mut self, message: &str) -> (usize, bool) {
        self.seq += 1;
        self.stats.messages += 1;
        let mut masked = std::mem::take(&mut self.scratch);
        masked.clear();
        if mask_message(message, &self.config, &mut masked) {
            self.stats.messages_truncated += 1;
        }
        if let Some(&idx) = self.cache.get(masked.as_str()) {
            let idx = idx as usize;
            self.stats.cache_hits += 1;
            let c = &mut self.clusters[idx];
            c.count += 1;
            c.last_seen = self.seq;
            self.scratch = masked;
            return (idx, false);
        }
        let (idx, is_new) = self.assign_slow(&masked);
        if self.cache.len() >= self.config.max_cache_entries {
            self.cache.clear();
        }
        self.cache.insert(masked.as_str().into(), idx as u32);
        self.scratch = masked;
        (idx, is_new)
    }

    fn assign_slow(&mut self, masked: &str) -> (usize, bool) {
        let tokens: Vec<&str> = masked.split(' ').collect();
        let mut best: Option<(usize, f64)> = None;
        // Similar templates held apart only by a word column (see `word_column`), with it.
        let mut blocked: Vec<(usize, f64, usize)> = Vec::new();
        if let Some(candidates) = self.by_len.get(&bucket_key(&tokens)) {
            for &ci in candidates {
                let ct = &self.clusters[ci as usize].tokens;
                let sim = similarity(ct, &tokens);
                if sim < self.config.similarity_threshold {
                    continue;
                }
                if let Some(col) = word_column(ct, &tokens) {
                    blocked.push((ci as usize, sim, col));
                } else if best.is_none_or(|(_, best_sim)| sim > best_sim) {
                    best = Some((ci as usize, sim));
                }
            }
        }
        let mut absorb = Vec::new();
        if best.is_none() && !blocked.is_empty() {
            // When the column of the most similar one shows more words than an enum would, it
            // is a variable: the message joins that template and the siblings that differ in
            // the same column fold into it.
            blocked.sort_by(|a, b| b.1.total_cmp(&a.1));
            let col = blocked[0].2;
            blocked.retain(|b| b.2 == col);
            let mut words: Vec<&str> = blocked
                .iter()
                .map(|&(ci, _, _)| self.clusters[ci].tokens[col].as_str())
                .collect();
            words.push(tokens[col]);
            words.sort_unstable();
            words.dedup();
            if words.len() > MAX_WORD_COLUMN_VALUES {
                best = Some((blocked[0].0, blocked[0].1));
                absorb = blocked[1..].iter().map(|&(ci, _, _)| ci).collect();
            }
        }
        if let Some((idx, _)) = best {
            let c = &mut self.clusters[idx];
            let mut changed = false;
            for (t, m) in c.tokens.iter_mut().zip(&tokens) {
                if t != m {
                    let merged = merge_token(t, m);
                    if merged != *t {
                        *t = merged;
                        changed = true;
                    }
                }
            }
            if changed {
                c.retemplate();
                // A generalised template may have a new shape: remember it, so messages of
                // that shape with other variable widths find it too.
                let key = shape_key(&self.clusters[idx].tokens);
                self.by_shape.entry(key).or_insert(idx as u32);
            }
            let c = &mut self.clusters[idx];
            c.count += 1;
            c.last_seen = self.seq;
            if !absorb.is_empty() {
                return (self.absorb_siblings(idx, &absorb), false);
            }
            return (idx, false);
        }
        let key = shape_key(&tokens);
        if let Some(&idx) = self.by_shape.get(&key) {
            let idx = idx as usize;
            self.merge_shape(idx, &tokens);
            let c = &mut self.clusters[idx];
            c.count += 1;
            c.last_seen = self.seq;
            return (idx, false);
        }
        if self.clusters.len() >= self.config.max_templates {
            self.evict();
        }
        let mut c = Cluster::new(tokens.iter().map(|t| t.to_string()).collect(), self.seq);
        c.count = 1;
        let idx = self.clusters.len();
        self.by_len
            .entry(bucket_key(&tokens))
            .or_default()
            .push(idx as u32);
        self.by_shape.insert(key, idx as u32);
        self.clusters.push(c);
        (idx, true)
    }

    /// Fold the clusters `others` into cluster `target` where they are similar to it (their
    /// tokens merged into its template, their counts added), drop them and rebuild the indexes.
    /// Returns the new index of `target`.
    fn absorb_siblings(&mut self, target: usize, others: &[usize]) -> usize {
        let mut dead = vec![false; self.clusters.len()];
        for &o in others {
            if o == target {
                continue;
            }
            let other_tokens: Vec<&str> =
                self.clusters[o].tokens.iter().map(String::as_str).collect();
            if similarity(&self.clusters[target].tokens, &other_tokens)
                < self.config.similarity_threshold
            {
                continue;
            }
            let merged: Vec<String> = self.clusters[target]
                .tokens
                .iter()
                .zip(&other_tokens)
                .map(|(t, m)| if t == m { t.clone() } else { merge_token(t, m) })
                .collect();
            let other = self.clusters[o].clone();
            let t = &mut self.clusters[target];
            t.tokens = merged;
            t.count += other.count;
            t.window_count += other.window_count;
            t.baseline += other.baseline;
            t.windows_seen = t.windows_seen.max(other.windows_seen);
            t.error_seen |= other.error_seen;
            t.spike_active |= other.spike_active;
            t.last_seen = t.last_seen.max(other.last_seen);
            dead[o] = true;
        }
        self.clusters[target].retemplate();
        let new_index = target - dead[..target].iter().filter(|&&d| d).count();
        let mut i = 0;
        self.clusters.retain(|_| {
            i += 1;
            !dead[i - 1]
        });
        self.rebuild_index();
        new_index
    }

    /// Generalise cluster `idx` with a message of the same shape but another token count: each
    /// variable span that differs becomes one `<*>`. The cluster moves to the bucket of its new
    /// token count when that changes.
    fn merge_shape(&mut self, idx: usize, tokens: &[&str]) {
        let c = &self.clusters[idx];
        let Some(merged) = merge_spans(&c.tokens, tokens) else {
            return;
        };
        if merged == c.tokens {
            return;
        }
        let old_key = bucket_key(&c.tokens);
        let new_key = bucket_key(&merged);
        if old_key != new_key {
            if let Some(v) = self.by_len.get_mut(&old_key) {
                v.retain(|&i| i as usize != idx);
            }
            self.by_len.entry(new_key).or_default().push(idx as u32);
        }
        let c = &mut self.clusters[idx];
        c.tokens = merged;
        c.retemplate();
    }

    /// Drop the least recently used templates and rebuild the indexes.
    fn evict(&mut self) {
        let n = self.clusters.len();
        let drop_n = ((n as f64 * EVICT_FRACTION).ceil() as usize).clamp(1, n);
        let mut order: Vec<u64> = self.clusters.iter().map(|c| c.last_seen).collect();
        order.sort_unstable();
        let cutoff = order[drop_n - 1];
        let mut dropped = 0usize;
        self.clusters.retain(|c| {
            if dropped < drop_n && c.last_seen <= cutoff {
                dropped += 1;
                false
            } else {
                true
            }
        });
        self.stats.templates_evicted += dropped as u64;
        self.rebuild_index();
    }

    fn rebuild_index(&mut self) {
        self.by_len.clear();
        self.cache.clear();
        self.by_shape.clear();
        for (i, c) in self.clusters.iter().enumerate() {
            self.by_len
                .entry(bucket_key(&c.tokens))
                .or_default()
                .push(i as u32);
            self.by_shape
                .entry(shape_key(&c.tokens))
                .or_insert(i as u32);
        }
    }

    /// Close the windows that end at or before `now`.
    fn roll_windows(&mut self, now: DateTime<Utc>, out: &mut Vec<Alert>) {
        let width = self.config.spike_window_secs as i64;
        let window = now.timestamp().div_euclid(width);
        let Some(current) = self.current_window else {
            self.current_window = Some(window);
            return;
        };
        if window <= current {
            return;
        }
        let gap = (window - current) as u64;
        for step in 0..gap.min(MAX_GAP_WINDOWS) {
            self.close_window(current + step as i64, out);
        }
        self.current_window = Some(window);
    }

    fn close_window(&mut self, window: i64, out: &mut Vec<Alert>) {
        let width = self.config.spike_window_secs as i64;
        let cfg = &self.config;
        for c in &mut self.clusters {
            let count = c.window_count;
            let threshold = cfg.spike_factor * c.baseline.max(1.0);
            let spiking = c.windows_seen >= cfg.spike_min_windows
                && count >= cfg.spike_min_count
                && count as f64 > threshold;
            if spiking && !c.spike_active {
                out.push(spike_alert(c, window * width, width));
            }
            c.spike_active = spiking;
            // A spike is not allowed to become the new normal at full speed: the baseline
            // learns from it like from any window, so a lasting change is accepted gradually.
            c.baseline = if c.windows_seen == 0 {
                count as f64
            } else {
                cfg.baseline_alpha * count as f64 + (1.0 - cfg.baseline_alpha) * c.baseline
            };
            c.windows_seen = c.windows_seen.saturating_add(1);
            c.window_count = 0;
        }
    }
}

/// The candidate bucket of a token sequence: its length and its first token, or one shared
/// class for every first token that holds a variable (Drain's first tree level).
fn bucket_key<S: AsRef<str>>(tokens: &[S]) -> (usize, u64) {
    let first = tokens.first().map(AsRef::as_ref).unwrap_or("");
    let class = if first.contains(WILDCARD) {
        0
    } else {
        xxhash_rust::xxh3::xxh3_64(first.as_bytes()) | 1
    };
    (tokens.len(), class)
}

/// Most distinct words a word column of similar templates may show before it is taken for a
/// variable. Two words may be the two members of an enum that name different events (`Failed
/// password ...` / `Failed none ...`, `stored as values` / `stored as bytes`, `opened` /
/// `closed`), so they keep their templates apart; a third word in the same place makes it a
/// value (`user alice ...`, `user bob ...`, `user carol ...`) and the templates fold into one.
const MAX_WORD_COLUMN_VALUES: usize = 2;

/// The word column that alone keeps `tokens` out of `template`: the second token when both
/// are different constants (Drain's second tree level), or the one position where both hold
/// different plain words while every other position agrees. `None` when neither applies.
fn word_column<S: AsRef<str>>(template: &[S], tokens: &[&str]) -> Option<usize> {
    if second_words_differ(template, tokens) {
        return Some(1);
    }
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphabetic());
    let mut col = None;
    for (i, (t, m)) in template.iter().zip(tokens).enumerate() {
        let t = t.as_ref();
        if t == *m || compatible_tokens(t, m) {
            continue;
        }
        if col.is_some() || !plain(t) || !plain(m) {
            return None;
        }
        col = Some(i);
    }
    col
}

/// True when both sequences have a second token, both are constants, and they differ.
fn second_words_differ<S: AsRef<str>>(template: &[S], tokens: &[&str]) -> bool {
    match (template.get(1), tokens.get(1)) {
        (Some(a), Some(b)) => {
            let a = a.as_ref();
            a != *b && !a.contains(WILDCARD) && !b.contains(WILDCARD)
        }
        _ => false,
    }
}

/// Unit words that belong to the number before them (`815 bytes`, `1.13 KB`, `3 sec`): a
/// quantity printed with or without its unit, or in two units, is one variable of the shape.
const UNIT_WORDS: &[&str] = &[
    "B", "KB", "MB", "GB", "TB", "kB", "KiB", "MiB", "GiB", "byte", "bytes", "ms", "us", "ns", "s",
    "sec", "secs", "second", "seconds", "min", "mins", "minute", "minutes", "h", "hour", "hours",
];

/// One item of a token sequence's shape: a constant token, or a span of variable tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShapeItem {
    Constant(usize),
    /// Tokens `start..end`.
    Variable(usize, usize),
}

/// A token made only of variables and punctuation (`<*>`, `(<*>`, `<*>:<*>`, `<*>,`).
fn is_variable_token(t: &str) -> bool {
    t.contains(WILDCARD)
        && t.split(WILDCARD)
            .all(|rest| rest.bytes().all(|c| c.is_ascii_punctuation()))
}

/// A unit word with optional punctuation around it (`KB)`, `B,`, `sec`).
fn is_unit_token(t: &str) -> bool {
    let core = t.trim_matches(|c: char| c.is_ascii_punctuation());
    UNIT_WORDS.contains(&core)
}

/// The shape of a token sequence: constant tokens kept, every run of variable tokens (with
/// the unit words that follow a variable) one span.
fn shape<S: AsRef<str>>(tokens: &[S]) -> Vec<ShapeItem> {
    let mut items = Vec::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        let t = t.as_ref();
        let in_span = matches!(items.last(), Some(ShapeItem::Variable(_, end)) if *end == i);
        if is_variable_token(t) || (in_span && is_unit_token(t)) {
            if let Some(ShapeItem::Variable(_, end)) = items.last_mut().filter(|_| in_span) {
                *end = i + 1;
            } else {
                items.push(ShapeItem::Variable(i, i + 1));
            }
        } else {
            items.push(ShapeItem::Constant(i));
        }
    }
    items
}

/// Hash of [`shape`]: constant tokens verbatim, each variable span one marker.
fn shape_key<S: AsRef<str>>(tokens: &[S]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for item in shape(tokens) {
        match item {
            ShapeItem::Constant(i) => {
                h.update(tokens[i].as_ref().as_bytes());
                h.update(b"\x01");
            }
            ShapeItem::Variable(..) => h.update(b"\x00"),
        }
    }
    h.digest()
}

/// Merge two token sequences of the same shape: constants kept, a variable span that differs
/// becomes one `<*>` keeping the punctuation both spans open and close with. `None` when the
/// shapes differ (a hash collision).
fn merge_spans(template: &[String], tokens: &[&str]) -> Option<Vec<String>> {
    let (sa, sb) = (shape(template), shape(tokens));
    if sa.len() != sb.len() {
        return None;
    }
    let mut out = Vec::with_capacity(sa.len());
    for (a, b) in sa.into_iter().zip(sb) {
        match (a, b) {
            (ShapeItem::Constant(i), ShapeItem::Constant(j)) if template[i] == tokens[j] => {
                out.push(template[i].clone());
            }
            (ShapeItem::Variable(a0, a1), ShapeItem::Variable(b0, b1)) => {
                let (x, y) = (&template[a0..a1], &tokens[b0..b1]);
                if x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p == q) {
                    out.extend(x.iter().cloned());
                    continue;
                }
                let lead = |s: &str| {
                    s.len()
                        - s.trim_start_matches(|c: char| c.is_ascii_punctuation() && c != '<')
                            .len()
                };
                let trail = |s: &str| {
                    s.len()
                        - s.trim_end_matches(|c: char| c.is_ascii_punctuation() && c != '>')
                            .len()
                };
                let (xf, yf) = (x[0].as_str(), y[0]);
                let (xl, yl) = (x[x.len() - 1].as_str(), y[y.len() - 1]);
                let open = if xf[..lead(xf)] == yf[..lead(yf)] {
                    &xf[..lead(xf)]
                } else {
                    ""
                };
                let close = if xl[xl.len() - trail(xl)..] == yl[yl.len() - trail(yl)..] {
                    &xl[xl.len() - trail(xl)..]
                } else {
                    ""
                };
                out.push(format!("{open}{WILDCARD}{close}"));
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Byte classes for the masking scan: 1 = whitespace (token break), 2 = segment delimiter.
static BYTE_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    table[b' ' as usize] = 1;
    table[b'\t' as usize] = 1;
    table[b'\n' as usize] = 1;
    table[b'\r' as usize] = 1;
    table[0x0c] = 1;
    let mut i = 0;
    while i < DELIMITERS.len() {
        table[DELIMITERS[i] as usize] = 2;
        i += 1;
    }
    table
};

/// Write the masked form of `message` into `out`: tokens joined by one space, variable
/// segments replaced by `<*>`. Returns true when the message was truncated.
fn mask_message(message: &str, config: &PatternConfig, out: &mut String) -> bool {
    let mut truncated = false;
    let mut msg = message;
    if msg.len() > config.max_message_bytes {
        let mut cut = config.max_message_bytes;
        while !msg.is_char_boundary(cut) {
            cut -= 1;
        }
        msg = &msg[..cut];
        truncated = true;
    }
    let b = msg.as_bytes();
    let len = b.len();
    let mut i = 0usize;
    let mut count = 0usize;
    let mut prev_wildcard = false;
    loop {
        while i < len && BYTE_CLASS[b[i] as usize] == 1 {
            i += 1;
        }
        if i == len {
            break;
        }
        let before = out.len();
        if count > 0 {
            out.push(' ');
        }
        if count + 1 == config.max_tokens {
            out.push_str(WILDCARD);
            truncated = true;
            break;
        }
        let token_start = out.len();
        i = mask_token(msg, i, config.mask_paths, out);
        // A run of variable tokens (`delete blk_1 blk_2 blk_3`) is one variable: lists of
        // any length share a template.
        let wildcard = &out[token_start..] == WILDCARD;
        if wildcard && prev_wildcard {
            out.truncate(before);
            continue;
        }
        prev_wildcard = wildcard;
        count += 1;
    }
    truncated
}

/// Mask the token starting at byte `start` of `msg` into `out`, in one pass; returns where
/// the token ends (the next whitespace byte or the end).
fn mask_token(msg: &str, start: usize, mask_paths: bool, out: &mut String) -> usize {
    let b = msg.as_bytes();
    let token_start = out.len();
    let mut seg_start = start;
    let mut seg_digit = false;
    let mut seg_dot = false;
    let mut has_colon = false;
    let mut i = start;
    while i < b.len() {
        let c = b[i];
        match BYTE_CLASS[c as usize] {
            1 => break,
            2 => {
                push_segment(&msg[seg_start..i], seg_digit, seg_dot, mask_paths, out);
                // Delimiters are ASCII, so `i` and `i + 1` are char boundaries.
                out.push(c as char);
                has_colon |= c == b':';
                seg_start = i + 1;
                seg_digit = false;
                seg_dot = false;
            }
            _ => {
                seg_digit |= c.is_ascii_digit();
                seg_dot |= c == b'.';
            }
        }
        i += 1;
    }
    push_segment(&msg[seg_start..i], seg_digit, seg_dot, mask_paths, out);
    if has_colon {
        // Rare shapes that span delimiters: redo the token when it is one of them.
        let token = &msg[start..i];
        if is_hex_colon_address(token.as_bytes()) {
            out.truncate(token_start);
            out.push_str(WILDCARD);
        } else if let Some((a, z)) = embedded_hex_colon_address(token.as_bytes()) {
            // `mac=aa:bb:cc:dd:ee:0f`, `mLp(FF:F2:9F:16:CF:0F)`: mask the address whole and
            // the text around it as usual. Both parts are shorter than the token, and the
            // delimiters around the address are ASCII, so the cuts are char boundaries.
            out.truncate(token_start);
            mask_token(&token[..a], 0, mask_paths, out);
            out.push_str(WILDCARD);
            mask_token(&token[z..], 0, mask_paths, out);
        } else if let Some(scheme_end) = url_scheme_end(token) {
            // `hdfs://10.0.0.1:9000/x` or `[akka.tcp://sys@10.0.0.1:25]`: keep the text up to
            // the scheme's `://`, mask the rest up to trailing punctuation.
            let rest = &token[scheme_end..];
            let body_len = rest
                .trim_end_matches([']', ')', '\'', '"', ',', '.', ';'])
                .len();
            if rest[..body_len].bytes().any(|c| c.is_ascii_digit()) {
                out.truncate(token_start);
                out.push_str(&token[..scheme_end]);
                out.push_str(WILDCARD);
                out.push_str(&rest[body_len..]);
            }
        }
    }
    i
}

/// The byte range of a MAC or IPv6 address inside a token, between delimiters (`mac=<addr>`,
/// `(<addr>)`): the first maximal run of hex digits and colons that is one.
fn embedded_hex_colon_address(token: &[u8]) -> Option<(usize, usize)> {
    let is_part = |c: u8| c.is_ascii_hexdigit() || c == b':';
    let mut i = 0;
    while i < token.len() {
        if !is_part(token[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < token.len() && is_part(token[i]) {
            i += 1;
        }
        let bounded = (start == 0 || is_delimiter(token[start - 1]))
            && (i == token.len() || is_delimiter(token[i]));
        if bounded && (start > 0 || i < token.len()) && is_hex_colon_address(&token[start..i]) {
            return Some((start, i));
        }
    }
    None
}

/// The end of `scheme://` in a token (`hdfs://`, `akka.tcp://`), if it holds one.
fn url_scheme_end(token: &str) -> Option<usize> {
    let pos = memchr::memmem::find(token.as_bytes(), b"://")?;
    let b = token.as_bytes();
    let mut start = pos;
    while start > 0
        && (b[start - 1].is_ascii_alphanumeric() || matches!(b[start - 1], b'+' | b'.' | b'-'))
    {
        start -= 1;
    }
    (start < pos && b[start].is_ascii_alphabetic()).then_some(pos + 3)
}

fn push_segment(seg: &str, has_digit: bool, has_dot: bool, mask_paths: bool, out: &mut String) {
    if seg.is_empty() {
        return;
    }
    if is_variable_segment(seg, has_digit, has_dot, mask_paths) {
        // A sentence's full stop after a number or IP (`on port 55904.`) is not part of the
        // value; after a path or file name (`part-00590.`) it may be, so it stays there.
        let mut body = seg;
        if has_dot && seg.ends_with('.') {
            let trimmed = seg.trim_end_matches('.');
            if trimmed
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'.')
            {
                body = trimmed;
            }
        }
        // `core.2275`, `instruction......0`: a word with a numeric suffix after dots keeps the
        // word; the number is the variable. A host name (`xin.4399.cn`) is one variable.
        if has_dot
            && let Some(cut) = dotted_numeric_suffix(body)
            && !is_domain_name(body.as_bytes())
        {
            out.push_str(&body[..cut]);
        }
        out.push_str(WILDCARD);
        out.push_str(&seg[body.len()..]);
    } else {
        out.push_str(seg);
    }
}

/// For `word.123` or `word....0`, the length of the `word.`/`word....` prefix: the segment
/// before the first dot has no digit, and something after it does. IPs, versions and host
/// names with digits in their first label are whole variables (`None`).
fn dotted_numeric_suffix(seg: &str) -> Option<usize> {
    let b = seg.as_bytes();
    let first_dot = b.iter().position(|&c| c == b'.')?;
    // A run of leader dots (`field .....0`, `L3.........0`) ends a label, whatever the label
    // is; a single dot after digits is a version or an address (`v1.2`, `10.0.0.1`).
    let leader = b[first_dot..].starts_with(b"..");
    let label = &b[..first_dot];
    if !leader && (first_dot == 0 || label.iter().any(u8::is_ascii_digit)) {
        return None;
    }
    if leader && label.iter().any(u8::is_ascii_digit) && !is_versioned_word(label) {
        return None;
    }
    if leader {
        let end = first_dot + b[first_dot..].iter().take_while(|&&c| c == b'.').count();
        return (end < b.len()).then_some(end);
    }
    // The prefix runs to the start of the first dot-separated part holding a digit.
    let mut part_start = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b'.' {
            part_start = i + 1;
        } else if c.is_ascii_digit() {
            return (part_start > 0).then_some(part_start);
        }
    }
    None
}

/// A MAC address or IPv6 address (`FF:F2:9C:00:11:22`, `fe80::1`): colon-separated hex groups
/// of at most four digits, five or more of them or compressed with `::`.
fn is_hex_colon_address(token: &[u8]) -> bool {
    let t = token
        .strip_suffix(b",")
        .or_else(|| token.strip_suffix(b"."))
        .unwrap_or(token);
    let mut groups = 0;
    let mut any_digit = false;
    let mut empty_group = false;
    for g in t.split(|&c| c == b':') {
        if g.len() > 4 || !g.iter().all(u8::is_ascii_hexdigit) {
            return false;
        }
        any_digit |= g.iter().any(u8::is_ascii_digit);
        empty_group |= g.is_empty();
        groups += 1;
    }
    // Five groups or a `::`, so that a time of day (`07:57:30`) keeps its shape.
    any_digit && (groups >= 5 || (groups >= 3 && empty_group))
}

fn is_delimiter(b: u8) -> bool {
    BYTE_CLASS[b as usize] == 2
}

fn is_variable_segment(seg: &str, has_digit: bool, has_dot: bool, mask_paths: bool) -> bool {
    let b = seg.as_bytes();
    if has_digit {
        return !is_versioned_word(b);
    }
    if b == WILDCARD.as_bytes() {
        return false;
    }
    if mask_paths && b.len() > 1 && b[0] == b'/' && b[1..].contains(&b'/') {
        return true;
    }
    is_calendar_name(b) || is_boolean(b) || (has_dot && is_domain_name(b))
}

/// A boolean literal as Java, Python, JSON and most loggers print it: the value of a flag, as
/// variable as a number.
fn is_boolean(b: &[u8]) -> bool {
    matches!(
        b,
        b"true" | b"false" | b"True" | b"False" | b"TRUE" | b"FALSE"
    )
}

/// English day and month abbreviations (`Sat`, `Jun`): parts of a timestamp printed inside
/// the message (`at Sat Jun 18 02:23:10 2005`), so as variable as the digits around them.
fn is_calendar_name(b: &[u8]) -> bool {
    b.len() == 3 && CALENDAR_NAMES.iter().any(|n| n.as_bytes() == b)
}

/// A word with a short numeric suffix (`ssh2`, `SOCKS5`, `utf8`, `ipv6`): a protocol or format
/// name, constant in the templates it appears in, unlike ids (`blk_123`, `node0042`).
fn is_versioned_word(b: &[u8]) -> bool {
    let letters = b.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    let digits = b.len() - letters;
    letters >= MIN_VERSIONED_WORD_LETTERS
        && (1..=MAX_VERSIONED_WORD_DIGITS).contains(&digits)
        && b[letters..].iter().all(u8::is_ascii_digit)
}

/// A DNS name ending in a common top-level domain (`proxy.example.com`). Dotted names that end
/// otherwise (`org.apache.Foo`, `mapred.job.id`) are code identifiers and stay constant.
fn is_domain_name(b: &[u8]) -> bool {
    let Some(dot) = b.iter().rposition(|&c| c == b'.') else {
        return false;
    };
    if dot == 0
        || !b[..dot]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
    {
        return false;
    }
    let tld = &b[dot + 1..];
    TOP_LEVEL_DOMAINS
        .iter()
        .any(|t| t.as_bytes().eq_ignore_ascii_case(tld))
}

/// Fraction of positions that agree, ignoring positions where both sides hold the same
/// variable-bearing token.
fn similarity(template: &[String], tokens: &[&str]) -> f64 {
    let mut same = 0usize;
    let mut considered = 0usize;
    for (t, m) in template.iter().zip(tokens) {
        // Equal tokens that hold a variable say little about the shape (`<*>`, `port=<*>`):
        // they neither count for nor against the match.
        if t == m && t.contains(WILDCARD) {
            continue;
        }
        if t == m || compatible_tokens(t, m) {
            same += 1;
            considered += 1;
        } else if has_delimiter(t) && has_delimiter(m) && !differs_in_values_only(t, m) {
            // Two structured tokens that disagree beyond their values (`tty=NODEVssh` /
            // `tty=:<*>`, `(uid=<*>)` / `LOGIN(uid=<*>)`) are different fields.
            considered += STRUCTURAL_MISMATCH_WEIGHT;
        } else if is_keyword(t) && is_keyword(m) {
            // Two upper-case keywords (`HTTPS`/`SOCKS5`, `GET`/`POST`) name different events
            // more often than it holds a value: it weighs as two differences.
            considered += 2;
        } else {
            considered += 1;
        }
    }
    if considered == 0 {
        1.0
    } else {
        same as f64 / considered as f64
    }
}

/// True when two tokens share their delimiter skeleton and differ only in segments that follow
/// a `=` or `:` (`user=root` / `user=git`): the same key with another value.
fn differs_in_values_only(a: &str, b: &str) -> bool {
    let skeleton = |s: &str| -> Vec<u8> { s.bytes().filter(|&c| is_delimiter(c)).collect() };
    let delims = skeleton(a);
    if delims != skeleton(b) {
        return false;
    }
    split_segments(a)
        .zip(split_segments(b))
        .enumerate()
        .all(|(i, (x, y))| x == y || (i > 0 && matches!(delims[i - 1], b'=' | b':')))
}

fn has_delimiter(t: &str) -> bool {
    t.bytes().any(is_delimiter)
}

/// An all-capitals word of two or more letters, optionally ending in digits (`HTTPS`, `SOCKS5`).
fn is_keyword(t: &str) -> bool {
    let b = t.as_bytes();
    let letters = b.iter().take_while(|c| c.is_ascii_uppercase()).count();
    letters >= 2 && b[letters..].iter().all(u8::is_ascii_digit)
}

fn split_segments(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| c.is_ascii() && is_delimiter(c as u8))
}

/// True when two tokens (not bare variables) share their delimiter skeleton and every pair of
/// segments is equal or one side is a variable (`user=<*>` and `user=root`, `()` and `(<*>)`):
/// the same shape with a different value. `(uid=<*>)` and `LOGIN(uid=<*>)` differ.
fn compatible_tokens(a: &str, b: &str) -> bool {
    if !(a.contains(WILDCARD) || b.contains(WILDCARD)) {
        return false;
    }
    // A bare `<*>` against a word is a difference, as in Drain: the word may be what tells
    // two templates apart (`... with error <*>` / `... resolve <*> error <*>`).
    if a == WILDCARD || b == WILDCARD {
        return false;
    }
    let skeleton = |s: &str| -> Vec<u8> { s.bytes().filter(|&c| is_delimiter(c)).collect() };
    if skeleton(a) != skeleton(b) {
        return false;
    }
    split_segments(a)
        .zip(split_segments(b))
        .all(|(x, y)| x == y || x == WILDCARD || y == WILDCARD)
}

/// The generalisation of two differing tokens: when both split into the same delimiter
/// skeleton only the differing segments become `<*>`, else the whole token does.
fn merge_token(template: &str, token: &str) -> String {
    if template == WILDCARD {
        return WILDCARD.to_string();
    }
    let (a, b) = (template.as_bytes(), token.as_bytes());
    let skeleton =
        |s: &[u8]| -> Vec<u8> { s.iter().copied().filter(|&c| is_delimiter(c)).collect() };
    if skeleton(a) != skeleton(b) || skeleton(a).is_empty() {
        return WILDCARD.to_string();
    }
    let mut out = String::with_capacity(template.len());
    let mut sa = template.split(|c: char| c.is_ascii() && is_delimiter(c as u8));
    let mut sb = token.split(|c: char| c.is_ascii() && is_delimiter(c as u8));
    let delims: Vec<u8> = skeleton(a);
    let mut di = 0usize;
    while let (Some(x), Some(y)) = (sa.next(), sb.next()) {
        if x == y {
            out.push_str(x);
        } else {
            out.push_str(WILDCARD);
        }
        if di < delims.len() {
            out.push(delims[di] as char);
            di += 1;
        }
    }
    out
}

fn truncate_sample(s: &str) -> &str {
    if s.len() <= SAMPLE_MAX_BYTES {
        return s;
    }
    let mut cut = SAMPLE_MAX_BYTES;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

fn new_error_alert(c: &Cluster, event: &LogEvent) -> Alert {
    let mut labels = BTreeMap::new();
    labels.insert(
        schemas::LABEL_ALERTNAME.to_string(),
        ALERT_NEW_ERROR_PATTERN.to_string(),
    );
    labels.insert(schemas::LABEL_SEVERITY.to_string(), "warning".to_string());
    labels.insert(LABEL_PATTERN_ID.to_string(), c.id.clone());
    if let Some(service) = &event.service.name {
        labels.insert("service".to_string(), service.clone());
    }
    let mut annotations = BTreeMap::new();
    annotations.insert(
        schemas::ANNOTATION_SUMMARY.to_string(),
        format!("new error log pattern: {}", truncate_sample(&c.template)),
    );
    annotations.insert("template".to_string(), c.template.clone());
    annotations.insert(
        "sample".to_string(),
        truncate_sample(&event.message).to_string(),
    );
    if !event.event.id.is_empty() {
        annotations.insert("event_id".to_string(), event.event.id.clone());
    }
    let fingerprint = schemas::alert_fingerprint(&labels);
    Alert {
        labels,
        annotations,
        starts_at: event.timestamp,
        ends_at: None,
        generator_url: String::new(),
        status: AlertStatus::Firing,
        fingerprint,
    }
}

fn spike_alert(c: &Cluster, window_start_secs: i64, width_secs: i64) -> Alert {
    let mut labels = BTreeMap::new();
    labels.insert(
        schemas::LABEL_ALERTNAME.to_string(),
        ALERT_PATTERN_SPIKE.to_string(),
    );
    labels.insert(schemas::LABEL_SEVERITY.to_string(), "warning".to_string());
    labels.insert(LABEL_PATTERN_ID.to_string(), c.id.clone());
    let mut annotations = BTreeMap::new();
    annotations.insert(
        schemas::ANNOTATION_SUMMARY.to_string(),
        format!(
            "log pattern rate spike: {} lines in {width_secs}s against a baseline of {:.1}",
            c.window_count, c.baseline
        ),
    );
    annotations.insert("template".to_string(), c.template.clone());
    annotations.insert("count".to_string(), c.window_count.to_string());
    annotations.insert("baseline".to_string(), format!("{:.2}", c.baseline));
    let starts_at = DateTime::from_timestamp(window_start_secs, 0).unwrap_or_default();
    let fingerprint = schemas::alert_fingerprint(&labels);
    Alert {
        labels,
        annotations,
        starts_at,
        // A spike is a window-long condition; Alertmanager resolves it unless it repeats.
        ends_at: DateTime::from_timestamp(window_start_secs + 2 * width_secs, 0),
        generator_url: String::new(),
        status: AlertStatus::Firing,
        fingerprint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(s: &str) -> String {
        let mut out = String::new();
        mask_message(s, &PatternConfig::default(), &mut out);
        out
    }

    #[test]
    fn masks_numbers_ips_and_keeps_words() {
        assert_eq!(
            masked("Accepted password for root from 10.0.0.1 port 22 ssh2"),
            "Accepted password for root from <*> port <*> ssh2"
        );
        assert_eq!(masked("uid=0 euid=0  tty=ssh"), "uid=<*> euid=<*> tty=ssh");
        assert_eq!(masked("/10.1.2.3:50010 served"), "<*>:<*> served");
        assert_eq!(masked("open /var/lib/x ok"), "open <*> ok");
        assert_eq!(masked(""), "");
        assert_eq!(masked("generating core.2275"), "generating core.<*>");
        assert_eq!(
            masked("illegal instruction......0"),
            "illegal instruction......<*>"
        );
        assert_eq!(
            masked("chip FF:F2:9C:00:11:22 ip=10.0.0.1"),
            "chip <*> ip=<*>"
        );
        assert_eq!(
            masked("at 07:57:30 from fe80::1"),
            "at <*>:<*>:<*> from <*>"
        );
        assert_eq!(masked("delete blk_1 blk_2 blk_3 now"), "delete <*> now");
        assert_eq!(
            masked("split: hdfs://10.1.2.3:9000/a/b:0+7"),
            "split: hdfs://<*>"
        );
        assert_eq!(
            masked("on [akka.tcp://sys@10.0.0.1:25]"),
            "on [akka.tcp://<*>]"
        );
        assert_eq!(masked("see https://example.com/docs"), "see https:<*>");
    }

    #[test]
    fn masks_booleans_hash_fields_and_keeps_full_stops() {
        assert_eq!(masked("isScreenOn true"), "isScreenOn <*>");
        assert_eq!(masked("obj=false done"), "obj=<*> done");
        assert_eq!(masked("trueness is a word"), "trueness is a word");
        assert_eq!(masked("Initializing CPU#0"), "Initializing CPU#<*>");
        assert_eq!(masked("steps= 1514##0##3428"), "steps= <*>##<*>##<*>");
        assert_eq!(masked("on port 55904."), "on port <*>.");
        assert_eq!(masked("mapped to ffff3000."), "mapped to <*>.");
        assert_eq!(masked("allocate /a/part-00590. now"), "allocate <*> now");
        assert_eq!(masked("fp cr field .....0"), "fp cr field .....<*>");
        assert_eq!(
            masked("portion of L3.........0 (0M)"),
            "portion of L3.........<*> (<*>)"
        );
        assert_eq!(masked("state (0=sup).......1"), "state (<*>=sup).......<*>");
        assert_eq!(masked("CPU: L2 cache: 256K"), "CPU: L2 cache: <*>");
        assert_eq!(masked("version v1.2 and 10.0.0.1."), "version <*> and <*>.");
    }

    #[test]
    fn second_word_names_the_event_until_it_takes_many_values() -> Result<(), PatternError> {
        let mut m = PatternMiner::try_new(&PatternConfig::default())?;
        m.assign("Failed password for invalid user x from 1.2.3.4 port 22 ssh2");
        m.assign("Failed password for invalid user w from 1.2.3.4 port 22 ssh2");
        let none = m
            .assign("Failed none for invalid user y from 1.2.3.5 port 23 ssh2")
            .template
            .to_string();
        assert_eq!(
            none,
            "Failed none for invalid user y from <*> port <*> ssh2"
        );
        let password = m.assign("Failed password for invalid user z from 1.2.3.6 port 24 ssh2");
        assert_eq!(
            password.template, "Failed password for invalid user <*> from <*> port <*> ssh2",
            "a keyword in second place names another event"
        );
        // Three or more distinct second words are values, not keywords: one template.
        for user in ["alice", "bob", "carol", "dave", "erin"] {
            m.assign(&format!("user {user} logged in from 10.0.0.1"));
        }
        let before = m.len();
        let t = m.assign("user frank logged in from 10.0.0.9");
        assert_eq!(t.template, "user <*> logged in from <*>");
        assert!(!t.is_new);
        assert_eq!(m.len(), before);
        assert_eq!(
            m.templates().filter(|t| t.1.starts_with("user ")).count(),
            1
        );
        let total: u64 = m
            .templates()
            .filter(|t| t.1.starts_with("user "))
            .map(|t| t.2)
            .sum();
        assert_eq!(total, 6, "the folded templates keep their counts");
        Ok(())
    }

    #[test]
    fn a_two_word_column_names_events_and_a_third_word_folds_it() -> Result<(), PatternError> {
        let mut m = PatternMiner::try_new(&PatternConfig::default())?;
        let line = |w: &str, n: u32| format!("Block b{n} stored as {w} in memory (size {n} KB)");
        for n in 10..13 {
            m.assign(&line("values", n));
            m.assign(&line("bytes", n));
        }
        let values = m.assign(&line("values", 19)).template.to_string();
        let bytes = m.assign(&line("bytes", 19)).template.to_string();
        assert_eq!(values, "Block <*> stored as values in memory (size <*> KB)");
        assert_eq!(bytes, "Block <*> stored as bytes in memory (size <*> KB)");
        let t = m.assign(&line("pages", 11)).template.to_string();
        assert_eq!(t, "Block <*> stored as <*> in memory (size <*> KB)");
        assert_eq!(
            m.len(),
            1,
            "the siblings folded: {:?}",
            m.templates().collect::<Vec<_>>()
        );
        assert_eq!(m.assign(&line("values", 12)).template, t);
        Ok(())
    }

    #[test]
    fn embedded_mac_addresses_are_one_variable() {
        assert_eq!(
            masked("NodeCard(mLp(FF:F2:9F:16:CF:0F:00:0D:60:E9:30:F0), mIp(10.2.2.80))"),
            "NodeCard(mLp(<*>), mIp(<*>))"
        );
        assert_eq!(masked("mac=aa:bb:cc:dd:ee:0f up"), "mac=<*> up");
        assert_eq!(masked("addr=[fe80::1]:8080"), "addr=[<*>]:<*>");
        assert_eq!(masked("at 07:57:30 ok"), "at <*>:<*>:<*> ok");
        assert_eq!(masked("cafe:beef:add"), "cafe:beef:add");
    }

    #[test]
    fn host_names_with_digits_are_one_variable() {
        assert_eq!(masked("cdn.e9377f.com:80 close"), "<*>:<*> close");
        assert_eq!(masked("xin.4399.cn:80 open"), "<*>:<*> open");
        assert_eq!(masked("generating core.2275"), "generating core.<*>");
    }

    #[test]
    fn shape_spans_absorb_units_after_variables() {
        let tokens = [
            "<*>", "bytes", "(<*>", "KB)", "sent,", "lifetime", "<*>:<*>",
        ];
        assert_eq!(
            shape(&tokens),
            vec![
                ShapeItem::Variable(0, 4),
                ShapeItem::Constant(4),
                ShapeItem::Constant(5),
                ShapeItem::Variable(6, 7),
            ]
        );
        // A unit word with no variable before it is a constant.
        assert_eq!(shape(&["bytes", "<*>"])[0], ShapeItem::Constant(0));
        assert_eq!(
            shape_key(&["<*>", "sent,", "lifetime", "<*>", "sec"]),
            shape_key(&["<*>", "bytes", "sent,", "lifetime", "<*>:<*>"])
        );
        assert_ne!(shape_key(&["<*>", "sent"]), shape_key(&["<*>", "received"]));
    }

    #[test]
    fn merge_spans_keeps_shared_punctuation() {
        let template: Vec<String> = ["size", "<*>", "B,", "free", "<*>", "KB)"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            merge_spans(&template, &["size", "<*>,", "free", "<*>", "KB)"]),
            Some(
                ["size", "<*>,", "free", "<*>", "KB)"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            )
        );
        assert_eq!(merge_spans(&template, &["size", "<*>"]), None);
    }

    #[test]
    fn quantities_with_and_without_units_share_a_template() -> Result<(), PatternError> {
        let mut m = PatternMiner::try_new(&PatternConfig::default())?;
        let lines = [
            "db.example.com:5432 close, 1165 bytes (1.13 KB) sent, 815 bytes received, lifetime <1 sec",
            "db.example.com:5432 close, 451 bytes sent, 18846 bytes (18.4 KB) received, lifetime <1 sec",
            "cache7.example.net:6379 close, 0 bytes sent, 0 bytes received, lifetime 00:01",
            "db.example.com:5432 close, 1190 bytes (1.16 KB) sent, 1671 bytes (1.63 MB) received, lifetime 00:02",
            "db.example.com:5432 open through proxy proxy.example.com:3128 HTTPS",
        ];
        let ids: Vec<String> = lines.iter().map(|l| m.assign(l).id.to_string()).collect();
        let again: Vec<String> = lines.iter().map(|l| m.assign(l).id.to_string()).collect();
        assert_eq!(again[0], again[1]);
        assert_eq!(again[0], again[2]);
        assert_eq!(again[0], again[3]);
        assert_ne!(again[0], again[4]);
        assert_eq!(ids[4], again[4], "an unrelated template is untouched");
        assert_eq!(
            m.assign(lines[2]).template,
            "<*>:<*> close, <*> sent, <*> received, lifetime <*>"
        );
        // The bucket index follows the template to its new token count.
        assert_eq!(
            m.assign("a.example.com:1 close, 5 bytes sent, 6 bytes received, lifetime 00:09")
                .id,
            again[0]
        );
        Ok(())
    }

    #[test]
    fn merges_only_differing_segments() {
        assert_eq!(merge_token("user=root", "user=admin"), "user=<*>");
        assert_eq!(merge_token("alpha", "beta"), "<*>");
        assert_eq!(merge_token("a:b", "a=b"), "<*>");
    }

    #[test]
    fn learns_a_template_and_keeps_its_id_stable() -> Result<(), PatternError> {
        let mut m = PatternMiner::try_new(&PatternConfig::default())?;
        let first = m
            .assign("Invalid user alice from 1.2.3.4 port 22")
            .id
            .to_string();
        // Two names could be an enum; the third makes the column a variable.
        assert!(m.assign("Invalid user bob from 1.2.3.5 port 23").is_new);
        let third = m.assign("Invalid user carol from 1.2.3.6 port 25");
        assert_eq!(third.template, "Invalid user <*> from <*> port <*>");
        assert!(!third.is_new);
        assert_ne!(first, third.id, "the id follows the template text");
        let id = third.id.to_string();
        assert_eq!(m.assign("Invalid user dave from 9.9.9.9 port 24").id, id);
        assert_eq!(m.assign("Invalid user alice from 1.2.3.4 port 22").id, id);
        assert_eq!(m.len(), 1);
        assert_eq!(id, template_id("Invalid user <*> from <*> port <*>"));
        Ok(())
    }

    #[test]
    fn eviction_bounds_templates() -> Result<(), PatternError> {
        let cfg = PatternConfig {
            max_templates: 10,
            ..PatternConfig::default()
        };
        let mut m = PatternMiner::try_new(&cfg)?;
        for i in 0..100 {
            // Each line has a different token count, so none can merge.
            let line = vec!["word"; i + 1].join(" ");
            m.assign(&line);
        }
        assert!(m.len() <= 10);
        assert!(m.stats().templates_evicted >= 90);
        Ok(())
    }

    fn event(secs: i64, msg: &str, level: Option<schemas::Level>) -> LogEvent {
        let ts = DateTime::from_timestamp(1_700_000_000 + secs, 0).expect("valid time");
        let mut ev = LogEvent::new(ts, msg);
        ev.log.level = level;
        ev.service.name = Some("checkout".into());
        ev
    }

    #[test]
    fn process_sets_pattern_fields() -> Result<(), PatternError> {
        let mut m = PatternMiner::try_new(&PatternConfig::default())?;
        let mut out = Vec::new();
        let mut ev = event(0, "order 42 shipped to alice in 3 days", None);
        m.process(&mut ev, &mut out);
        let mut ev = event(1, "order 43 shipped to bob in 5 days", None);
        m.process(&mut ev, &mut out);
        let mut ev = event(2, "order 44 shipped to carol in 2 days", None);
        m.process(&mut ev, &mut out);
        let template = "order <*> shipped to <*> in <*> days";
        assert_eq!(ev.sluice.pattern.template.as_deref(), Some(template));
        assert_eq!(ev.sluice.pattern.id, Some(template_id(template)));
        assert!(out.is_empty());
        Ok(())
    }

    #[test]
    fn new_error_pattern_after_learning_only() -> Result<(), PatternError> {
        let cfg = PatternConfig {
            learning_period_secs: 60,
            learning_min_events: 10,
            ..PatternConfig::default()
        };
        let mut m = PatternMiner::try_new(&cfg)?;
        let mut out = Vec::new();
        // Learning: a known error shape, seen before the period ends, never alerts.
        for i in 0..30 {
            let mut ev = event(i, &format!("request {i} served in {i} ms"), None);
            m.process(&mut ev, &mut out);
            let mut ev = event(
                i,
                &format!("cache timeout after {i} ms"),
                Some(schemas::Level::Error),
            );
            m.process(&mut ev, &mut out);
        }
        let mut ev = event(100, "cache timeout after 7 ms", Some(schemas::Level::Error));
        m.process(&mut ev, &mut out);
        assert!(out.is_empty(), "{out:?}");
        // A new error shape after learning alerts once, with a sample line.
        for i in 0..3 {
            let msg = format!("payment provider rejected card ending {i}1{i}2");
            let mut ev = event(200 + i, &msg, Some(schemas::Level::Error));
            m.process(&mut ev, &mut out);
        }
        assert_eq!(out.len(), 1);
        let a = &out[0];
        assert_eq!(a.name(), ALERT_NEW_ERROR_PATTERN);
        assert_eq!(a.labels["service"], "checkout");
        assert_eq!(
            a.annotations["sample"],
            "payment provider rejected card ending 0102"
        );
        assert_eq!(
            a.annotations["template"],
            "payment provider rejected card ending <*>"
        );
        // The same shape at info level would not have alerted.
        let mut ev = event(300, "user 5 changed avatar", Some(schemas::Level::Info));
        m.process(&mut ev, &mut out);
        assert_eq!(out.len(), 1);
        Ok(())
    }

    #[test]
    fn pattern_spike_fires_once_against_baseline() -> Result<(), PatternError> {
        let cfg = PatternConfig {
            spike_window_secs: 60,
            spike_min_windows: 5,
            spike_min_count: 20,
            spike_factor: 5.0,
            ..PatternConfig::default()
        };
        let mut m = PatternMiner::try_new(&cfg)?;
        let mut out = Vec::new();
        // 20 windows of a steady 10 lines per minute.
        for w in 0..20 {
            for i in 0..10 {
                let mut ev = event(w * 60 + i, &format!("retrying upstream call {i}"), None);
                m.process(&mut ev, &mut out);
            }
        }
        assert!(out.is_empty(), "steady traffic: {out:?}");
        // Then 200 in one minute, twice.
        for w in 20..22 {
            for i in 0..200 {
                let mut ev = event(
                    w * 60 + i % 60,
                    &format!("retrying upstream call {i}"),
                    None,
                );
                m.process(&mut ev, &mut out);
            }
        }
        m.advance_watermark(
            DateTime::from_timestamp(1_700_000_000 + 23 * 60, 0).expect("valid time"),
            &mut out,
        );
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].name(), ALERT_PATTERN_SPIKE);
        assert_eq!(out[0].annotations["count"], "200");
        Ok(())
    }

    #[test]
    fn snapshot_restore_keeps_ids_and_state() -> Result<(), Box<dyn std::error::Error>> {
        let mut m = PatternMiner::try_new(&PatternConfig::default())?;
        for i in 0..50 {
            m.assign(&format!("job {i} finished in {i} ms"));
            m.assign(&format!("user u{i}x logged out"));
        }
        let before: Vec<(String, String, u64)> = m
            .templates()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c))
            .collect();
        let json = serde_json::to_string(&m.snapshot())?;
        let mut r = PatternMiner::try_new(&PatternConfig::default())?;
        r.restore(serde_json::from_str(&json)?)?;
        let after: Vec<(String, String, u64)> = r
            .templates()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c))
            .collect();
        assert_eq!(before, after);
        let id = before[0].0.clone();
        assert_eq!(r.assign("job 999 finished in 1 ms").id, id);
        let mut bad = m.snapshot();
        bad.version = 7;
        assert_eq!(
            r.restore(bad).err().map(|e| e.error_code()),
            Some("pattern_snapshot_version")
        );
        Ok(())
    }

    #[test]
    fn edge_inputs_do_not_panic_and_are_bounded() -> Result<(), PatternError> {
        let cfg = PatternConfig {
            max_message_bytes: 64,
            max_tokens: 8,
            ..PatternConfig::default()
        };
        let mut m = PatternMiner::try_new(&cfg)?;
        assert_eq!(m.assign("").template, "");
        assert_eq!(m.assign("   \t\r\n ").template, "");
        let long = "é".repeat(100);
        assert!(m.assign(&long).template.len() <= 64);
        let many = "a b c d e f g h i j k l";
        assert_eq!(m.assign(many).template, "a b c d e f g <*>");
        assert!(m.stats().messages_truncated >= 2);
        let cfg_toml: Result<PatternConfig, _> = toml::from_str("similarity = 0.5");
        assert!(cfg_toml.is_err(), "unknown fields are rejected");
        Ok(())
    }

    proptest::proptest! {
        #[test]
        fn any_message_gets_a_stable_template(msg in "\\PC{0,200}") {
            let mut m = PatternMiner::try_new(&PatternConfig::default()).expect("valid");
            let first = m.assign(&msg).template.to_string();
            let again = m.assign(&msg);
            proptest::prop_assert_eq!(again.template, first.as_str());
            proptest::prop_assert_eq!(again.id, template_id(&first));
        }
    }

    /// A regex matching every message the template stands for: its constant text in order,
    /// anything where it has `<*>`, whitespace runs as one space.
    fn template_regex(template: &str) -> regex::Regex {
        let parts: Vec<String> = template.split(WILDCARD).map(regex::escape).collect();
        regex::Regex::new(&format!("^{}$", parts.join(".*"))).expect("escaped parts form a regex")
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn every_template_covers_its_messages(
            msgs in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::sample::select(vec![
                        "close,", "sent", "user", "root", "bob", "Failed", "password", "none",
                        "12", "3.5", "bytes", "(1.2", "KB)", "sec", "<1", "00:02", "a.b.com:80",
                        "x=1", "x=y", "true", "CPU#0", "L3.....0", "port", "55904.", "ms",
                    ]),
                    1..8,
                ),
                1..40,
            )
        ) {
            let mut m = PatternMiner::try_new(&PatternConfig::default()).expect("valid");
            let lines: Vec<String> = msgs.iter().map(|t| t.join(" ")).collect();
            for l in &lines {
                m.assign(l);
            }
            let mut regexes: HashMap<String, regex::Regex> = HashMap::new();
            for l in &lines {
                let t = m.assign(l).template.to_string();
                let re = regexes.entry(t.clone()).or_insert_with(|| template_regex(&t));
                proptest::prop_assert!(
                    re.is_match(l),
                    "template {:?} does not cover {:?}", t, l
                );
            }
        }
    }

    #[test]
    fn invalid_config_is_rejected() {
        let cfg = PatternConfig {
            similarity_threshold: 0.0,
            ..PatternConfig::default()
        };
        let err = PatternMiner::try_new(&cfg).err();
        assert_eq!(err.map(|e| e.error_code()), Some("pattern_invalid_config"));
    }
}
