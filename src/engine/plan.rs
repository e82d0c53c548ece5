//! The plan: every decision of a deploy computed ahead of time as a value, so `plan` and
//! `--dry-run` can print it and tests can snapshot it. Pure: no port is called here.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::{EngineError, Observed};
use crate::config::settings::{ServiceSettings, Strategy};
use crate::ports::{Digest, Slot, Status, TaskSpec};
use crate::version::Version;

/// Rough time for new tasks to start and pass health checks, for the expected duration.
const TYPICAL_STABILIZE: Duration = Duration::from_secs(90);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "action", content = "id")]
pub enum TaskDefinitionAction {
    /// The idle slot already runs an identical task definition.
    Reuse(String),
    Register,
}

/// One weight step: this percent of production on the new slot, held (and watched) this long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub percent: u8,
    #[serde(with = "secs")]
    pub hold: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub version: Version,
    pub digest: Digest,
    /// None when nothing is live yet (a fresh service).
    pub live: Option<Slot>,
    pub idle: Slot,
    pub task_definition: TaskDefinitionAction,
    /// The live slot's current desired count (seed 000), or 1 when nothing is live.
    pub desired: u32,
    pub steps: Vec<Step>,
    #[serde(with = "secs")]
    pub stabilize_deadline: Duration,
    #[serde(with = "secs")]
    pub validate_deadline: Duration,
    #[serde(with = "secs")]
    pub lock_ttl: Duration,
    /// What a smooth run takes.
    #[serde(with = "secs")]
    pub expected: Duration,
    /// The longest it can take before a deadline stops it (waits plus steps).
    #[serde(with = "secs")]
    pub longest: Duration,
}

/// The weight steps of a strategy, ending at 100% held for the bake.
pub fn steps(strategy: &Strategy) -> Result<Vec<Step>, EngineError> {
    let step = |percent, hold: &crate::config::duration::Duration| Step {
        percent,
        hold: hold.0,
    };
    Ok(match strategy {
        Strategy::AllAtOnce { bake } => vec![step(100, bake)],
        Strategy::Canary {
            percent,
            wait,
            bake,
        } => {
            if !(1..100).contains(percent) {
                return Err(EngineError::Usage(format!(
                    "canary percent must be between 1 and 99, not {percent}"
                )));
            }
            vec![step(*percent, wait), step(100, bake)]
        }
        Strategy::Linear {
            step: by,
            interval,
            bake,
        } => {
            if !(1..=100).contains(by) {
                return Err(EngineError::Usage(format!(
                    "linear step must be between 1 and 100, not {by}"
                )));
            }
            let mut out: Vec<Step> = (1..)
                .map(|i| u32::from(*by) * i)
                .take_while(|p| *p < 100)
                .map(|p| step(p as u8, interval))
                .collect();
            out.push(step(100, bake));
            out
        }
    })
}

/// The bake of a strategy: how long 100% is watched before a release counts as good.
pub(crate) fn bake(strategy: &Strategy) -> Result<Duration, EngineError> {
    Ok(steps(strategy)?.last().map_or(Duration::ZERO, |s| s.hold))
}

/// How far a command takes a release: what its worst case is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// `stage`: stabilize and validate the idle slot; production does not move.
    Staged,
    /// `promote`: the weight steps with their holds and the bake.
    Shifted,
    /// `deploy`: both.
    Promoted,
}

/// The longest a command can run before a deadline stops it, from the settings alone
/// (no AWS state needed): what the credentials must outlast before anything starts.
pub fn longest(settings: &ServiceSettings, reach: Reach) -> Result<Duration, EngineError> {
    let d = &settings.deadlines;
    let staging = d.stabilize.0 + d.validate.0;
    let holds: Duration = steps(&settings.strategy)?.iter().map(|s| s.hold).sum();
    Ok(match reach {
        Reach::Staged => staging,
        Reach::Shifted => holds,
        Reach::Promoted => staging + holds,
    })
}

/// Compute the plan for deploying `spec` given the observed state. An interrupted shift
/// (no slot at 100%) must be repaired before planning.
pub fn plan(
    spec: &TaskSpec,
    observed: &Observed,
    settings: &ServiceSettings,
) -> Result<Plan, EngineError> {
    let live_slot = observed.weights.live().ok_or_else(|| {
        EngineError::Usage(format!(
            "production weights are mid-shift ({}); repair first",
            observed.weights
        ))
    })?;
    let live_state = observed.slot(live_slot);
    let live =
        (live_state.desired > 0 && live_state.task_definition.is_some()).then_some(live_slot);
    // Production on a release whose promote died mid-way: staging over the idle slot
    // would replace the last good release, the one a failing resume must fall back to.
    if let Some(r) = observed.release_on(live_slot)
        && matches!(r.status, Status::Shifting(_) | Status::Baking)
        && live_state.task_definition.as_ref().map(|t| &t.spec) != Some(spec)
    {
        return Err(EngineError::Usage(format!(
            "{} on {live_slot} carries production traffic but its promote was interrupted ({}); \
             finish it with `cutover promote {}` or run `cutover rollback`, then stage {}",
            r.version, r.status, r.version, spec.version
        )));
    }
    let idle = live_slot.other();
    let task_definition = match &observed.slot(idle).task_definition {
        Some(td) if td.spec == *spec => TaskDefinitionAction::Reuse(td.id.clone()),
        _ => TaskDefinitionAction::Register,
    };
    let desired = match live {
        Some(_) => live_state.desired,
        None => 1,
    };
    let steps = steps(&settings.strategy)?;
    let holds: Duration = steps.iter().map(|s| s.hold).sum();
    let v = &settings.validation;
    let typical_validation: Duration = v
        .probes
        .iter()
        .map(|p| p.interval.0 * p.consecutive_successes.saturating_sub(1))
        .sum();
    let d = &settings.deadlines;
    Ok(Plan {
        version: spec.version.clone(),
        digest: spec.digest.clone(),
        live,
        idle,
        task_definition,
        desired,
        expected: TYPICAL_STABILIZE + typical_validation + holds,
        longest: longest(settings, Reach::Promoted)?,
        steps,
        stabilize_deadline: d.stabilize.0,
        validate_deadline: d.validate.0,
        lock_ttl: d.lock_ttl.0,
    })
}

impl Plan {
    /// The plan in one line, for a status event (the timeline shows one line per step).
    pub fn one_line(&self) -> String {
        let task_definition = match &self.task_definition {
            TaskDefinitionAction::Reuse(_) => "reusing its task definition",
            TaskDefinitionAction::Register => "registering a task definition",
        };
        format!(
            "onto {} with {} task(s), {task_definition}; ~{}s expected, at most {}s",
            self.idle,
            self.desired,
            self.expected.as_secs(),
            self.longest.as_secs()
        )
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "release   {} ({})", self.version, self.digest)?;
        match self.live {
            Some(live) => writeln!(f, "live      {live}")?,
            None => writeln!(f, "live      nothing yet")?,
        }
        writeln!(f, "stage on  {} with {} task(s)", self.idle, self.desired)?;
        match &self.task_definition {
            TaskDefinitionAction::Reuse(id) => writeln!(f, "task def  reuse {id}")?,
            TaskDefinitionAction::Register => writeln!(f, "task def  register a new revision")?,
        }
        writeln!(
            f,
            "wait      healthy within {}s, validated within {}s",
            self.stabilize_deadline.as_secs(),
            self.validate_deadline.as_secs()
        )?;
        write_steps(f, &self.steps)?;
        write!(
            f,
            "duration  ~{}s expected, at most {}s",
            self.expected.as_secs(),
            self.longest.as_secs()
        )
    }
}

/// One line per weight step; the hold after the last (100%) step is the bake.
pub(super) fn write_steps(f: &mut fmt::Formatter<'_>, steps: &[Step]) -> fmt::Result {
    for (i, s) in steps.iter().enumerate() {
        let what = if i + 1 == steps.len() { "bake" } else { "hold" };
        writeln!(
            f,
            "shift     {:>3}% then {what} {}s",
            s.percent,
            s.hold.as_secs()
        )?;
    }
    Ok(())
}

pub(super) mod secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::duration::Duration as D;

    #[test]
    fn linear_steps_end_at_100_with_the_bake() {
        let s = steps(&Strategy::Linear {
            step: 30,
            interval: D::from_secs(60),
            bake: D::from_secs(300),
        })
        .unwrap();
        let p: Vec<u8> = s.iter().map(|s| s.percent).collect();
        assert_eq!(p, [30, 60, 90, 100]);
        assert_eq!(s.last().unwrap().hold, Duration::from_secs(300));
    }

    fn empty_service() -> Observed {
        let empty = crate::ports::SlotState {
            task_definition: None,
            desired: 0,
            running: 0,
            pending: 0,
            rollout: crate::ports::Rollout::Completed,
            events: vec![],
            stopped_reasons: vec![],
            failures: vec![],
            load_balancers: vec![],
        };
        Observed {
            weights: crate::ports::Weights::all_on(Slot::Blue),
            blue: empty.clone(),
            green: empty,
            test_listener: None,
            history: vec![],
            lock: None,
        }
    }

    fn spec() -> TaskSpec {
        TaskSpec::new(
            Version::parse("v1.0.0").unwrap(),
            Digest("sha256:00".into()),
            "{}".into(),
        )
    }

    #[test]
    fn a_fresh_service_stages_one_task_on_the_slot_without_weight() {
        let settings = crate::sim::settings(
            crate::sim::StrategyKind::Canary,
            crate::config::settings::OldSlotPolicy::KeepWarm,
        );
        let plan = plan(&spec(), &empty_service(), &settings).unwrap();
        assert_eq!((plan.live, plan.idle, plan.desired), (None, Slot::Green, 1));
        assert_eq!(plan.task_definition, TaskDefinitionAction::Register);
        let holds: Duration = plan.steps.iter().map(|s| s.hold).sum();
        assert_eq!(
            plan.longest,
            settings.deadlines.stabilize.0 + settings.deadlines.validate.0 + holds
        );
    }

    #[test]
    fn refuses_to_plan_over_an_interrupted_shift() {
        let mut observed = empty_service();
        observed.weights = crate::ports::Weights::split(Slot::Green, 30);
        let settings = crate::sim::settings(
            crate::sim::StrategyKind::AllAtOnce,
            crate::config::settings::OldSlotPolicy::KeepWarm,
        );
        assert!(matches!(
            plan(&spec(), &observed, &settings),
            Err(EngineError::Usage(_))
        ));
    }

    #[test]
    fn refuses_a_canary_of_zero_or_everything() {
        for percent in [0, 100] {
            let bad = Strategy::Canary {
                percent,
                wait: D::from_secs(60),
                bake: D::from_secs(60),
            };
            assert!(matches!(steps(&bad), Err(EngineError::Usage(_))));
        }
    }
}
