//! Alert lifecycle of one rule key: inactive → pending → firing → resolved, with hysteresis.
//!
//! Times are event-time Unix seconds at bucket ends, so the lifecycle is a pure function of the
//! events and a replay gives the same transitions.

use serde::{Deserialize, Serialize};

/// Where a key's alert stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "lowercase")]
pub(crate) enum Phase {
    #[default]
    Inactive,
    /// The condition holds since `since` but not yet for `for_secs`.
    Pending { since: i64 },
    /// Notified at `last_sent`; `calm_since` is when the value last fell to the resolve
    /// threshold, if it stays there.
    Firing {
        since: i64,
        last_sent: i64,
        calm_since: Option<i64>,
    },
}

/// What the caller must emit after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// Firing (first time, or a repeat): `starts_at` is when the condition began.
    Firing { starts_at: i64 },
    /// Resolved at `ends_at`.
    Resolved { starts_at: i64, ends_at: i64 },
}

/// Timing settings of a rule.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) for_secs: i64,
    pub(crate) resolve_for_secs: i64,
    /// 0: never repeat.
    pub(crate) repeat_secs: i64,
}

impl Phase {
    /// Advances the lifecycle at evaluation time `now`. `breach`: the firing condition holds;
    /// `still_bad`: the value is above the resolve threshold (hysteresis).
    pub(crate) fn step(
        &mut self,
        now: i64,
        breach: bool,
        still_bad: bool,
        t: Timing,
    ) -> Option<Transition> {
        match *self {
            Phase::Inactive if breach => {
                *self = Phase::Pending { since: now };
                self.promote(now, t)
            }
            Phase::Inactive => None,
            Phase::Pending { .. } if !breach => {
                *self = Phase::Inactive;
                None
            }
            Phase::Pending { .. } => self.promote(now, t),
            Phase::Firing {
                since,
                last_sent,
                calm_since,
            } => {
                if still_bad || breach {
                    let repeat = t.repeat_secs > 0 && now - last_sent >= t.repeat_secs;
                    *self = Phase::Firing {
                        since,
                        last_sent: if repeat { now } else { last_sent },
                        calm_since: None,
                    };
                    return repeat.then_some(Transition::Firing { starts_at: since });
                }
                let calm = calm_since.unwrap_or(now);
                if now - calm >= t.resolve_for_secs {
                    *self = Phase::Inactive;
                    return Some(Transition::Resolved {
                        starts_at: since,
                        ends_at: now,
                    });
                }
                *self = Phase::Firing {
                    since,
                    last_sent,
                    calm_since: Some(calm),
                };
                None
            }
        }
    }

    fn promote(&mut self, now: i64, t: Timing) -> Option<Transition> {
        match *self {
            Phase::Pending { since } if now - since >= t.for_secs => {
                *self = Phase::Firing {
                    since,
                    last_sent: now,
                    calm_since: None,
                };
                Some(Transition::Firing { starts_at: since })
            }
            _ => None,
        }
    }

    pub(crate) fn is_active(&self) -> bool {
        !matches!(self, Phase::Inactive)
    }

    pub(crate) fn is_firing(&self) -> bool {
        matches!(self, Phase::Firing { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_firing_repeat_hysteresis_resolved() {
        let t = Timing {
            for_secs: 20,
            resolve_for_secs: 20,
            repeat_secs: 60,
        };
        let mut p = Phase::default();
        // (now, breach, still_bad) → expected transition
        let steps: &[(i64, bool, bool, Option<Transition>)] = &[
            (0, true, true, None),
            (10, false, false, None), // back to inactive: one bucket is not enough
            (20, true, true, None),
            (30, true, true, None),
            (40, true, true, Some(Transition::Firing { starts_at: 20 })),
            (50, false, true, None), // below threshold, above resolve threshold: still firing
            (60, false, false, None),
            (70, false, true, None), // back up: calm clock resets
            (80, false, false, None),
            (90, false, false, None),
            (100, true, true, Some(Transition::Firing { starts_at: 20 })), // repeat after 60 s
            (110, false, false, None),
            (120, false, false, None),
            (
                130,
                false,
                false,
                Some(Transition::Resolved {
                    starts_at: 20,
                    ends_at: 130,
                }),
            ),
            (140, false, false, None),
        ];
        for (now, breach, bad, want) in steps {
            assert_eq!(p.step(*now, *breach, *bad, t), *want, "at {now}");
        }
    }

    #[test]
    fn zero_for_fires_immediately() {
        let t = Timing {
            for_secs: 0,
            resolve_for_secs: 0,
            repeat_secs: 0,
        };
        let mut p = Phase::default();
        assert_eq!(
            p.step(5, true, true, t),
            Some(Transition::Firing { starts_at: 5 })
        );
        assert_eq!(p.step(6, true, true, t), None);
        assert_eq!(
            p.step(7, false, false, t),
            Some(Transition::Resolved {
                starts_at: 5,
                ends_at: 7
            })
        );
    }
}
