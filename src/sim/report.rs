//! `cutover simulate`'s side of the simulation: the user's own settings mapped onto the
//! simulated world, and many seeded runs folded into the figures a user wants before a
//! first deploy (phase durations, the longest split, outcomes, broken invariants).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{BLUE_ALARM, GREEN_ALARM, Profile, RunReport, SERVICE_ALARM, StatusAt};
use crate::config::settings::ServiceSettings;
use crate::ports::Status;

/// The user's settings as the simulated world runs them: strategy, probes, validation
/// command, deadlines, lock TTL, history depth and old-slot policy are the user's; the
/// names of AWS resources are the sim's, and each alarm list the user filled becomes the
/// sim's alarm for that owner (the sim fires one alarm per slot and one service-wide).
pub fn user_settings(user: &ServiceSettings) -> ServiceSettings {
    let mut sim = super::settings(user.strategy.kind(), user.old_slot.policy);
    sim.strategy = user.strategy.clone();
    sim.deadlines = user.deadlines.clone();
    sim.history = user.history.clone();
    sim.old_slot = user.old_slot.clone();
    let alarm = |names: &[String], sim_name: &str| {
        if names.is_empty() {
            Vec::new()
        } else {
            vec![sim_name.to_string()]
        }
    };
    sim.slots.blue.alarms = alarm(&user.slots.blue.alarms, BLUE_ALARM);
    sim.slots.green.alarms = alarm(&user.slots.green.alarms, GREEN_ALARM);
    sim.validation = crate::config::settings::ValidationSettings {
        service_alarms: alarm(&user.validation.service_alarms, SERVICE_ALARM),
        ..user.validation.clone()
    };
    sim
}

/// How one seeded run ended for the release being deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// It took all production traffic and passed its bake.
    Promoted,
    /// It took production traffic, then traffic went back to the previous release.
    RolledBack,
    /// It never took production traffic (its stage or its shift's first check failed).
    Failed,
    /// A rollback could not be made: a human would be paged.
    RollbackFailed,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Promoted => "promoted",
            Outcome::RolledBack => "rolled back",
            Outcome::Failed => "failed",
            Outcome::RollbackFailed => "rollback failed",
        })
    }
}

impl Outcome {
    fn of(statuses: &[StatusAt]) -> Outcome {
        let any = |f: &dyn Fn(&StatusAt) -> bool| statuses.iter().any(f);
        if any(&|s| s.status == Status::RollbackFailed) {
            Outcome::RollbackFailed
        } else if any(&|s| s.new && s.status == Status::Promoted) {
            Outcome::Promoted
        } else if any(&|s| s.new && matches!(s.status, Status::Shifting(_))) {
            Outcome::RolledBack
        } else {
            Outcome::Failed
        }
    }
}

/// The phase a status begins; the time until the same runner's next status is spent in it.
fn phase(status: Status) -> Option<&'static str> {
    Some(match status {
        Status::Staging => "roll out on the idle slot",
        Status::Validating => "validate",
        Status::Shifting(_) => "shift (every step)",
        Status::Baking => "bake",
        Status::RollingBack => "roll back",
        _ => return None,
    })
}

/// Seconds spent per phase in one run, summed over its runners' reports.
fn phase_times(statuses: &[StatusAt]) -> BTreeMap<&'static str, u64> {
    let mut times = BTreeMap::new();
    for (i, s) in statuses.iter().enumerate() {
        let Some(name) = phase(s.status) else {
            continue;
        };
        if let Some(next) = statuses[i + 1..].iter().find(|n| n.runner == s.runner) {
            *times.entry(name).or_insert(0) += next.at_ms - s.at_ms;
        }
    }
    // From the first report about the release to its Promoted: what a deploy takes.
    let first = statuses.iter().find(|s| s.new).map(|s| s.at_ms);
    let promoted = statuses
        .iter()
        .find(|s| s.new && s.status == Status::Promoted)
        .map(|s| s.at_ms);
    if let (Some(a), Some(b)) = (first, promoted) {
        times.insert("stage to promoted", b - a);
    }
    times
}

/// p50, p99 and max of one phase over the runs that went through it (seconds).
#[derive(Debug, Clone, Serialize)]
pub struct PhaseFigures {
    pub phase: &'static str,
    pub runs: usize,
    pub p50_s: f64,
    pub p99_s: f64,
    pub max_s: f64,
}

impl PhaseFigures {
    fn of(phase: &'static str, mut ms: Vec<u64>) -> Self {
        ms.sort_unstable();
        let at = |q: usize| ms[(ms.len() * q).div_ceil(100).max(1) - 1] as f64 / 1000.0;
        Self {
            phase,
            runs: ms.len(),
            p50_s: at(50),
            p99_s: at(99),
            max_s: at(100),
        }
    }
}

/// A seed that broke an invariant, and what replays it.
#[derive(Debug, Clone, Serialize)]
pub struct Broken {
    pub seed: u64,
    pub profile: String,
    pub violations: Vec<String>,
}

/// A seed without faults whose release did not reach production: the settings themselves
/// stop every deploy (a probe that cannot pass in its deadline, a wait past a deadline…).
#[derive(Debug, Clone, Serialize)]
pub struct Blocked {
    pub seed: u64,
    pub outcome: Outcome,
    pub why: String,
}

/// Everything `cutover simulate` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub seeds: usize,
    pub outcomes: BTreeMap<Outcome, usize>,
    pub phases: Vec<PhaseFigures>,
    /// Over the runs where traffic was split at all.
    pub longest_split: Option<PhaseFigures>,
    pub broken: Vec<Broken>,
    pub calm_blocked: Vec<Blocked>,
}

impl Summary {
    pub fn of(reports: &[RunReport]) -> Self {
        let mut outcomes = BTreeMap::new();
        let mut phases: BTreeMap<&'static str, Vec<u64>> = BTreeMap::new();
        let mut splits = Vec::new();
        let mut broken = Vec::new();
        let mut calm_blocked = Vec::new();
        for r in reports {
            let statuses = &r.metrics.statuses;
            let outcome = Outcome::of(statuses);
            *outcomes.entry(outcome).or_insert(0) += 1;
            for (name, ms) in phase_times(statuses) {
                phases.entry(name).or_default().push(ms);
            }
            if r.metrics.longest_split_ms > 0 {
                splits.push(r.metrics.longest_split_ms);
            }
            if !r.violations.is_empty() {
                broken.push(Broken {
                    seed: r.scenario.seed,
                    profile: r.scenario.profile.to_string(),
                    violations: r.violations.clone(),
                });
            }
            if r.scenario.profile == Profile::Calm && outcome != Outcome::Promoted {
                let why = statuses
                    .iter()
                    .rev()
                    .find_map(|s| s.detail.clone())
                    .unwrap_or_else(|| "no status said why".into());
                calm_blocked.push(Blocked {
                    seed: r.scenario.seed,
                    outcome,
                    why,
                });
            }
        }
        // Deploy order, not alphabetical.
        let order = [
            "roll out on the idle slot",
            "validate",
            "shift (every step)",
            "bake",
            "stage to promoted",
            "roll back",
        ];
        let phases = order
            .iter()
            .filter_map(|name| phases.remove(name).map(|ms| PhaseFigures::of(name, ms)))
            .collect();
        Self {
            seeds: reports.len(),
            outcomes,
            phases,
            longest_split: (!splits.is_empty())
                .then(|| PhaseFigures::of("production traffic split", splits)),
            broken,
            calm_blocked,
        }
    }

    /// Whether anything needs the user's attention: a broken invariant, or settings that
    /// keep a release out of production with nothing going wrong.
    pub fn clean(&self) -> bool {
        self.broken.is_empty() && self.calm_blocked.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let f = PhaseFigures::of("x", (1..=100).map(|s| s * 1000).collect());
        assert_eq!((f.p50_s, f.p99_s, f.max_s), (50.0, 99.0, 100.0));
        let one = PhaseFigures::of("x", vec![7000]);
        assert_eq!((one.p50_s, one.p99_s, one.max_s), (7.0, 7.0, 7.0));
    }

    fn at(at_ms: u64, runner: usize, status: Status) -> StatusAt {
        StatusAt {
            at_ms,
            runner,
            status,
            new: true,
            detail: None,
        }
    }

    #[test]
    fn a_phase_lasts_until_the_same_runners_next_status() {
        let s = [
            at(0, 0, Status::Staging),
            at(5_000, 1, Status::Staging),
            at(30_000, 0, Status::Validating),
            at(40_000, 0, Status::AwaitingApproval),
            at(41_000, 0, Status::Shifting(100)),
            at(42_000, 0, Status::Baking),
            at(102_000, 0, Status::Promoted),
        ];
        let t = phase_times(&s);
        assert_eq!(t["roll out on the idle slot"], 30_000);
        assert_eq!(t["validate"], 10_000);
        assert_eq!(t["bake"], 60_000);
        assert_eq!(t["stage to promoted"], 102_000);
        assert_eq!(Outcome::of(&s), Outcome::Promoted);
        assert_eq!(Outcome::of(&s[..5]), Outcome::RolledBack);
        assert_eq!(Outcome::of(&s[..3]), Outcome::Failed);
    }
}
