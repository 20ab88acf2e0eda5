//! Injected incidents, benign decoys, and the timeline that places them in event time.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How long each injected incident lasts: long enough for a 5-minute rule with a `for` to
/// fire, with time to spare for a detector's lateness allowance.
pub(crate) const INCIDENT_S: i64 = 8 * 60;
/// Quiet time after each incident or decoy, so windows drain and alerts resolve before the
/// next episode starts (a 5-minute window plus a minute of hysteresis).
pub(crate) const GAP_S: i64 = 6 * 60;
/// Normal traffic before the first episode, so baselines exist (capped at a tenth of the span
/// for short runs).
pub(crate) const WARMUP_S: i64 = 5 * 60;
/// Live mode warms up only briefly, so a demo shows its first alert within minutes.
pub(crate) const LIVE_WARMUP_S: i64 = 60;
/// The traffic-spike decoy: a few minutes at three times the rate.
pub(crate) const SPIKE_S: i64 = 4 * 60;
pub(crate) const SPIKE_MULTIPLIER: f64 = 3.0;
/// The slow-minute decoy: one minute whose own p95 exceeds 2 s.
pub(crate) const SLOW_MINUTE_S: i64 = 60;
const NANOS_PER_SEC: i64 = 1_000_000_000;

/// A kind of injected incident (the CLI's `--incidents` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// 5xx above 20% of the api's requests.
    ErrorBurst,
    /// p95 latency above 3 s on the api.
    LatencySpike,
    /// psycopg/asyncpg/SQLAlchemy connection failures on the api.
    DbConnectionErrors,
    /// httpx timeouts, 429s and 5xx from the LLM API (`api.x.ai`).
    LlmUpstreamFailure,
    /// Many 401s on `/api/auth/login` from one IP with many user names.
    BruteForce,
    /// SQLi/XSS/path traversal/JNDI/dotfile probes from a scanner IP.
    InjectionProbe,
    /// An API key or bearer JWT printed in an app log line.
    SecretLeak,
}

impl IncidentKind {
    /// Every kind, in the order `--incidents all` injects them.
    pub const ALL: [IncidentKind; 7] = [
        IncidentKind::ErrorBurst,
        IncidentKind::LatencySpike,
        IncidentKind::DbConnectionErrors,
        IncidentKind::LlmUpstreamFailure,
        IncidentKind::BruteForce,
        IncidentKind::InjectionProbe,
        IncidentKind::SecretLeak,
    ];

    /// The CLI and `incidents.json` name.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::ErrorBurst => "error_burst",
            IncidentKind::LatencySpike => "latency_spike",
            IncidentKind::DbConnectionErrors => "db_connection_errors",
            IncidentKind::LlmUpstreamFailure => "llm_upstream_failure",
            IncidentKind::BruteForce => "brute_force",
            IncidentKind::InjectionProbe => "injection_probe",
            IncidentKind::SecretLeak => "secret_leak",
        }
    }

    /// The alert a detector is expected to raise for this incident.
    pub fn expected_alert(self) -> &'static str {
        match self {
            IncidentKind::ErrorBurst => "HighErrorRate",
            IncidentKind::LatencySpike => "HighLatency",
            IncidentKind::DbConnectionErrors => "DatabaseConnectionError",
            IncidentKind::LlmUpstreamFailure => "ExternalApiFailures",
            IncidentKind::BruteForce => "BruteForce",
            IncidentKind::InjectionProbe => "WebAttack",
            IncidentKind::SecretLeak => "SecretLeak",
        }
    }
}

impl fmt::Display for IncidentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IncidentKind {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<IncidentKind> {
        let s = s.trim();
        IncidentKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = IncidentKind::ALL.iter().map(|k| k.as_str()).collect();
                anyhow::anyhow!(
                    "unknown incident kind {s:?}: expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// Which incidents to inject (`--incidents all|none|error_burst,brute_force`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum IncidentSelection {
    #[default]
    All,
    None,
    /// These kinds, in this order, each at most once.
    List(Vec<IncidentKind>),
}

impl IncidentSelection {
    /// The selected kinds in injection order, without duplicates.
    pub fn kinds(&self) -> Vec<IncidentKind> {
        match self {
            IncidentSelection::All => IncidentKind::ALL.to_vec(),
            IncidentSelection::None => Vec::new(),
            IncidentSelection::List(list) => {
                let mut out: Vec<IncidentKind> = Vec::with_capacity(list.len());
                for k in list {
                    if !out.contains(k) {
                        out.push(*k);
                    }
                }
                out
            }
        }
    }
}

impl FromStr for IncidentSelection {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<IncidentSelection> {
        match s.trim() {
            "all" => Ok(IncidentSelection::All),
            "none" | "" => Ok(IncidentSelection::None),
            list => {
                let kinds = list
                    .split(',')
                    .filter(|p| !p.trim().is_empty())
                    .map(IncidentKind::from_str)
                    .collect::<anyhow::Result<Vec<_>>>()?;
                Ok(IncidentSelection::List(kinds))
            }
        }
    }
}

/// A benign decoy: traffic that looks alarming to a naive rule and must raise no alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecoyKind {
    /// Three times the traffic for a few minutes, with the same error ratio.
    TrafficSpike,
    /// One minute whose own p95 latency exceeds 2 s, while every 5-minute p95 stays below.
    SlowMinute,
    /// Search queries containing SQL keywords (`select`, `union`, `drop`), all span long.
    SqlWordsSearch,
    /// A user name with an apostrophe (`conor.o'brien`), all span long.
    ApostropheUserName,
}

/// What an entry of `incidents.json` describes; serialized as the plain kind name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EpisodeKind {
    Incident(IncidentKind),
    Decoy(DecoyKind),
}

/// One entry of `incidents.json`: an injected incident (ground truth for detectors) or a
/// benign decoy (`benign: true`, `expected_alert: null`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub kind: EpisodeKind,
    /// First event time of the episode (inclusive).
    pub start: DateTime<Utc>,
    /// Event time the episode ends (exclusive).
    pub end: DateTime<Utc>,
    /// `service.name` of the affected service (the api's container name).
    pub service: String,
    pub namespace: String,
    /// The alert name a detector should raise, `null` for decoys.
    pub expected_alert: Option<String>,
    /// Labels the alert is expected to carry, e.g. `client_ip` or `upstream`.
    pub labels: BTreeMap<String, String>,
    pub benign: bool,
}

/// An episode placed on the timeline, in Unix nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Episode {
    pub(crate) kind: EpisodeKind,
    pub(crate) start_ns: i64,
    pub(crate) end_ns: i64,
}

/// What is going on at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Phase {
    pub(crate) incident: Option<IncidentKind>,
    pub(crate) spike: bool,
    pub(crate) slow_minute: bool,
}

/// The episodes of one run, in time order.
#[derive(Debug, Clone)]
pub(crate) struct Timeline {
    /// Windowed episodes (incidents, spike, slow minute), sorted and non-overlapping.
    pub(crate) episodes: Vec<Episode>,
    /// Span-long decoys.
    pub(crate) ambient: Vec<Episode>,
    pub(crate) skipped: Vec<IncidentKind>,
}

/// One slot to place: its kind, active length and the quiet time after it.
#[derive(Debug, Clone, Copy)]
struct Slot {
    kind: EpisodeKind,
    len_s: i64,
}

impl Timeline {
    /// Places the selected incidents and the decoys in `[start_ns, start_ns + span_s)`.
    ///
    /// Incidents have priority (in selection order), then the decoys; whatever does not fit
    /// after the warm-up is skipped. Placed slots are laid out decoys first (batch: quiet
    /// baseline, then decoys, then incidents) or incidents first (`live`: a demo shows alerts
    /// soon).
    pub(crate) fn plan(
        start_ns: i64,
        span_s: f64,
        selected: &[IncidentKind],
        live: bool,
    ) -> Timeline {
        let span_ns = (span_s * NANOS_PER_SEC as f64) as i64;
        let end_ns = start_ns.saturating_add(span_ns);
        let warmup_s = if live {
            LIVE_WARMUP_S
        } else {
            WARMUP_S.min((span_s / 10.0) as i64)
        };
        // The quiet gap after the last slot may run past the end of the span: an incident
        // that ends with the span has still lasted long enough to fire.
        let mut budget_s = span_s as i64 - warmup_s + GAP_S;
        let mut incidents = Vec::new();
        let mut skipped = Vec::new();
        for &kind in selected {
            if budget_s >= INCIDENT_S + GAP_S {
                budget_s -= INCIDENT_S + GAP_S;
                incidents.push(Slot {
                    kind: EpisodeKind::Incident(kind),
                    len_s: INCIDENT_S,
                });
            } else {
                skipped.push(kind);
            }
        }
        let mut decoys = Vec::new();
        for (kind, len_s) in [
            (DecoyKind::TrafficSpike, SPIKE_S),
            (DecoyKind::SlowMinute, SLOW_MINUTE_S),
        ] {
            if budget_s >= len_s + GAP_S {
                budget_s -= len_s + GAP_S;
                decoys.push(Slot {
                    kind: EpisodeKind::Decoy(kind),
                    len_s,
                });
            }
        }
        let order: Vec<Slot> = if live {
            incidents.into_iter().chain(decoys).collect()
        } else {
            decoys.into_iter().chain(incidents).collect()
        };
        let mut t = start_ns + warmup_s * NANOS_PER_SEC;
        let mut episodes = Vec::with_capacity(order.len());
        for slot in order {
            let end = t + slot.len_s * NANOS_PER_SEC;
            episodes.push(Episode {
                kind: slot.kind,
                start_ns: t,
                end_ns: end,
            });
            t = end + GAP_S * NANOS_PER_SEC;
        }
        let ambient = [DecoyKind::SqlWordsSearch, DecoyKind::ApostropheUserName]
            .into_iter()
            .map(|d| Episode {
                kind: EpisodeKind::Decoy(d),
                start_ns,
                end_ns,
            })
            .collect();
        Timeline {
            episodes,
            ambient,
            skipped,
        }
    }

    /// Seconds of spike inside the span: the batch generator lowers the base rate so that
    /// the record budget still fills the whole span.
    pub(crate) fn spike_s(&self) -> f64 {
        self.episodes
            .iter()
            .filter(|e| e.kind == EpisodeKind::Decoy(DecoyKind::TrafficSpike))
            .map(|e| (e.end_ns - e.start_ns) as f64 / NANOS_PER_SEC as f64)
            .sum()
    }

    pub(crate) fn phase_at(&self, t_ns: i64) -> Phase {
        let mut phase = Phase::default();
        for e in &self.episodes {
            if t_ns < e.start_ns {
                break;
            }
            if t_ns >= e.end_ns {
                continue;
            }
            match e.kind {
                EpisodeKind::Incident(k) => phase.incident = Some(k),
                EpisodeKind::Decoy(DecoyKind::TrafficSpike) => phase.spike = true,
                EpisodeKind::Decoy(DecoyKind::SlowMinute) => phase.slow_minute = true,
                EpisodeKind::Decoy(_) => {}
            }
        }
        phase
    }

    /// The start of the episode of `kind` that contains `t_ns`, if any.
    pub(crate) fn episode_start(&self, kind: IncidentKind, t_ns: i64) -> Option<i64> {
        self.episodes
            .iter()
            .find(|e| {
                e.kind == EpisodeKind::Incident(kind) && e.start_ns <= t_ns && t_ns < e.end_ns
            })
            .map(|e| e.start_ns)
    }

    /// The ground truth, with each episode's end clipped to `until_ns` and episodes starting
    /// at or after it left out (live mode stopped early).
    pub(crate) fn incidents(
        &self,
        labels: &dyn Fn(EpisodeKind) -> BTreeMap<String, String>,
        until_ns: i64,
    ) -> Vec<Incident> {
        let mut out = Vec::new();
        for e in self.ambient.iter().chain(&self.episodes) {
            if e.start_ns >= until_ns {
                continue;
            }
            let (expected_alert, benign) = match e.kind {
                EpisodeKind::Incident(k) => (Some(k.expected_alert().to_owned()), false),
                EpisodeKind::Decoy(_) => (None, true),
            };
            out.push(Incident {
                kind: e.kind,
                start: ns_to_time(e.start_ns),
                end: ns_to_time(e.end_ns.min(until_ns)),
                service: crate::generate::workload::API_SERVICE.to_owned(),
                namespace: crate::generate::workload::API_NAMESPACE.to_owned(),
                expected_alert,
                labels: labels(e.kind),
                benign,
            });
        }
        out
    }
}

pub(crate) fn ns_to_time(t_ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(t_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_parses_names_and_rejects_unknown() -> anyhow::Result<()> {
        assert_eq!(
            "all".parse::<IncidentSelection>()?.kinds(),
            IncidentKind::ALL.to_vec()
        );
        assert!("none".parse::<IncidentSelection>()?.kinds().is_empty());
        assert_eq!(
            "error_burst, brute_force,error_burst"
                .parse::<IncidentSelection>()?
                .kinds(),
            vec![IncidentKind::ErrorBurst, IncidentKind::BruteForce]
        );
        let err = "error_burst,meteor"
            .parse::<IncidentSelection>()
            .err()
            .context("unknown kind must fail")?;
        assert!(err.to_string().contains("meteor"), "{err}");
        assert!(err.to_string().contains("secret_leak"), "{err}");
        Ok(())
    }

    use anyhow::Context;

    #[test]
    fn short_span_skips_what_does_not_fit_and_episodes_never_overlap() {
        // 35 minutes: warm-up 3.5 min, then two incidents of 8 + 6 min each; the rest is
        // skipped. 3.5 min remain (plus the last gap): not enough for the spike (4 + 6),
        // enough for the slow minute (1 + 6).
        let t = Timeline::plan(0, 35.0 * 60.0, &IncidentKind::ALL, false);
        assert_eq!(t.skipped.len(), 5);
        let kinds: Vec<EpisodeKind> = t.episodes.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            vec![
                EpisodeKind::Decoy(DecoyKind::SlowMinute),
                EpisodeKind::Incident(IncidentKind::ErrorBurst),
                EpisodeKind::Incident(IncidentKind::LatencySpike),
            ]
        );
        for w in t.episodes.windows(2) {
            assert!(w[0].end_ns + GAP_S * NANOS_PER_SEC <= w[1].start_ns);
        }
        let last = t.episodes.last().map(|e| e.end_ns).unwrap_or(0);
        assert!(last <= 35 * 60 * NANOS_PER_SEC);
        let mid = t.episodes[1].start_ns + 1;
        assert_eq!(t.phase_at(mid).incident, Some(IncidentKind::ErrorBurst));
        assert_eq!(t.phase_at(0), Phase::default());
    }

    #[test]
    fn live_plan_starts_with_incidents_after_a_short_warmup() {
        let t = Timeline::plan(0, 24.0 * 3600.0, &IncidentKind::ALL, true);
        assert!(t.skipped.is_empty());
        assert_eq!(t.episodes[0].start_ns, LIVE_WARMUP_S * NANOS_PER_SEC);
        assert_eq!(
            t.episodes[0].kind,
            EpisodeKind::Incident(IncidentKind::ErrorBurst)
        );
        assert_eq!(t.episodes.len(), 9);
        assert!(matches!(t.episodes[8].kind, EpisodeKind::Decoy(_)));
        // A ten-minute demo still shows one incident: the gap after it may pass the end.
        let short = Timeline::plan(0, 10.0 * 60.0, &[IncidentKind::BruteForce], true);
        assert!(short.skipped.is_empty());
    }

    #[test]
    fn incidents_json_shape() -> anyhow::Result<()> {
        let t = Timeline::plan(0, 3.0 * 3600.0, &[IncidentKind::BruteForce], false);
        let list = t.incidents(&|_| BTreeMap::new(), i64::MAX);
        let json = serde_json::to_value(&list)?;
        let arr = json.as_array().context("an array")?;
        let bf = arr
            .iter()
            .find(|v| v["kind"] == "brute_force")
            .context("brute force listed")?;
        assert_eq!(bf["expected_alert"], "BruteForce");
        assert_eq!(bf["benign"], false);
        assert_eq!(bf["service"], "api");
        let spike = arr
            .iter()
            .find(|v| v["kind"] == "traffic_spike")
            .context("spike listed")?;
        assert!(spike["expected_alert"].is_null());
        assert_eq!(spike["benign"], true);
        let back: Vec<Incident> = serde_json::from_value(json)?;
        assert_eq!(back, list);
        Ok(())
    }
}
