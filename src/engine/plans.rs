//! The plans of `promote --dry-run` and `rollback --dry-run`: what the real command will
//! do, computed as a value from the same decisions ([`start`], [`decide`]) and the same
//! reads the command makes, without the lock and without a write.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::plan::{Step, secs, steps, write_steps};
use super::promote::{Start, start};
use super::rollback::{Decision, Move, decide, redeploy_step};
use super::{Engine, EngineError, Observed, PromoteOutcome, RollbackOutcome, RollbackPath};
use crate::config::settings::OldSlotPolicy;
use crate::history::record_release;
use crate::ports::{Cloud, Digest, Release, Slot, Status, Weights};
use crate::version::Version;

/// What `promote` of one version will do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromotePlan {
    pub version: Version,
    /// None only when the version is live but older than the history.
    pub digest: Option<Digest>,
    /// Production weights as read now.
    pub production: Weights,
    /// The slot traffic leaves and the slot it goes to.
    pub from: Slot,
    pub to: Slot,
    /// Already live and promoted: nothing to do.
    pub already: bool,
    /// Weight already on `to`: an interrupted shift holds that step again in full, then
    /// goes on above it.
    pub resume_from: u8,
    pub steps: Vec<Step>,
    /// Why `to` is not ready now: a promote would stop before its first step.
    pub not_ready: Option<String>,
    /// `from` is scaled to 0 once a read-back shows no traffic on it (else kept warm).
    pub scale_down_old: bool,
    /// The holds of the steps to take, the bake included.
    #[serde(with = "secs")]
    pub expected: Duration,
}

impl PromotePlan {
    /// What `promote` reports when it goes as planned.
    pub fn outcome(&self) -> PromoteOutcome {
        PromoteOutcome {
            version: self.version.clone(),
            slot: self.to,
            already: self.already,
        }
    }
}

/// What `rollback` (or `rollback --to`) will do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollbackPlan {
    /// Production weights as read now (mid-shift when a repair comes first).
    pub production: Weights,
    /// What the live slot runs now; None mid-shift.
    pub live: Option<Version>,
    pub path: RollbackPath,
    /// Mid-shift, production goes back to this slot first (the last good release's); a
    /// `--to` goes on from there.
    pub repair_to: Option<Slot>,
    /// What will be live, and on which slot.
    pub version: Option<Version>,
    pub slot: Slot,
    /// The target's image, when the target comes from the history.
    pub digest: Option<Digest>,
    /// Tasks the target runs (the live slot's count), brought up on the cold path.
    pub desired: u32,
    /// `--to`: validated, then promoted with this one step (100% held for the bake).
    pub redeploy: Option<Step>,
}

impl RollbackPlan {
    /// What `rollback` reports when it goes as planned.
    pub fn outcome(&self) -> RollbackOutcome {
        RollbackOutcome {
            version: self.version.clone(),
            slot: self.slot,
            path: self.path,
        }
    }
}

impl<C: Cloud> Engine<'_, C> {
    /// What `promote` of `version` would do now, or the error it would refuse with. Reads
    /// only (no lock): a refusal that repairs an interrupted shift first is the bare error.
    pub async fn promote_plan(&self, version: &Version) -> Result<PromotePlan, EngineError> {
        let observed = self.observe().await?;
        let production = observed.weights;
        let shift = match start(&observed, version, steps(&self.settings.strategy)?) {
            Start::Shift(shift) => *shift,
            Start::Already(slot) => {
                return Ok(PromotePlan {
                    version: version.clone(),
                    digest: observed.release_on(slot).map(|r| r.digest.clone()),
                    production,
                    from: slot.other(),
                    to: slot,
                    already: true,
                    resume_from: 100,
                    steps: vec![],
                    not_ready: None,
                    scale_down_old: false,
                    expected: Duration::ZERO,
                });
            }
            Start::Refuse { error, .. } => return Err(error),
        };
        let not_ready = self.shift_ready(&observed, &shift).await?.err();
        Ok(PromotePlan {
            version: version.clone(),
            digest: Some(shift.release.digest.clone()),
            production,
            from: shift.new.other(),
            to: shift.new,
            already: false,
            resume_from: shift.weight,
            expected: shift.steps.iter().map(|s| s.hold).sum(),
            steps: shift.steps,
            not_ready: not_ready.map(|n| n.to_string()),
            scale_down_old: self.settings.old_slot.policy == OldSlotPolicy::ScaleToZero,
        })
    }

    /// What `rollback` (to `to`, or the previous good release) would do now, or the error
    /// it would refuse with. Reads only (no lock).
    pub async fn rollback_plan(&self, to: Option<&Version>) -> Result<RollbackPlan, EngineError> {
        let observed = self.observe().await?;
        let depth = self.settings.history.depth;
        let repair_to = observed
            .weights
            .live()
            .is_none()
            .then(|| observed.safe_slot());
        let decided = if repair_to.is_some() {
            if to.is_none() {
                let safe = observed.safe_slot();
                return Ok(settled(&observed, safe, RollbackPath::Repair));
            }
            after_repair(&observed, depth)
        } else {
            observed.clone()
        };
        let mv = match decide(&decided, to, depth)? {
            Decision::Nothing { live } => {
                return Ok(RollbackPlan {
                    repair_to,
                    ..settled(&observed, live, RollbackPath::Nothing)
                });
            }
            Decision::Finish { live, .. } => {
                return Ok(RollbackPlan {
                    redeploy: Some(redeploy_step(&self.settings.strategy)?),
                    ..settled(&observed, live, RollbackPath::Finished)
                });
            }
            Decision::Move(mv) => mv,
        };
        let warm = self.check_target(&decided, &mv).await?;
        let redeploy = match to {
            Some(_) => Some(redeploy_step(&self.settings.strategy)?),
            None => None,
        };
        let Move {
            live,
            target,
            slot,
            desired,
            ..
        } = *mv;
        Ok(RollbackPlan {
            production: observed.weights,
            live: observed
                .slot(live)
                .version()
                .cloned()
                .filter(|_| repair_to.is_none()),
            path: RollbackPath::of(warm),
            repair_to,
            version: Some(target.version),
            slot,
            digest: Some(target.digest),
            desired,
            redeploy,
        })
    }
}

/// A rollback that moves no release: back to the slot a repair settles on, or nothing.
fn settled(observed: &Observed, slot: Slot, path: RollbackPath) -> RollbackPlan {
    let outcome = RollbackOutcome::on(observed, slot, path);
    RollbackPlan {
        production: observed.weights,
        live: observed
            .weights
            .live()
            .and_then(|s| observed.slot(s).version().cloned()),
        path,
        repair_to: (path == RollbackPath::Repair).then_some(slot),
        slot,
        digest: observed.release_on(slot).map(|r| r.digest.clone()),
        desired: observed.slot(slot).desired,
        redeploy: None,
        version: outcome.version,
    }
}

/// The state a repair leaves: production all on the safe slot, the interrupted release
/// recorded rolled back. A run repairs and reads the state again; a plan cannot write, so
/// it works that state out.
fn after_repair(observed: &Observed, depth: u32) -> Observed {
    let safe = observed.safe_slot();
    let mut after = observed.clone();
    after.weights = Weights::all_on(safe);
    if let Some(interrupted) = observed.release_on(safe.other()) {
        let rolled_back = Release {
            status: Status::RolledBack,
            ..interrupted.clone()
        };
        record_release(&mut after.history, &rolled_back, depth as usize);
    }
    after
}

impl fmt::Display for PromotePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (version, from, to) = (&self.version, self.from, self.to);
        if self.already {
            return writeln!(
                f,
                "promote   {version} is already promoted: 100% on {to}, nothing to do"
            );
        }
        match &self.digest {
            Some(digest) => writeln!(f, "promote   {version} ({digest})")?,
            None => writeln!(f, "promote   {version}")?,
        }
        writeln!(f, "from      {from} (production {})", self.production)?;
        match &self.not_ready {
            None => writeln!(f, "to        {to}, ready (every target healthy)")?,
            Some(why) => writeln!(
                f,
                "to        {to}, NOT READY now: a promote would stop before its first step ({why})"
            )?,
        }
        if self.resume_from > 0 {
            writeln!(
                f,
                "resume    {}% already on {to} (an interrupted shift: that step is held again in full)",
                self.resume_from
            )?;
        }
        write_steps(f, &self.steps)?;
        if self.scale_down_old {
            writeln!(f, "then      {from} scaled to 0 once it reads 0%")?;
        } else {
            writeln!(f, "then      {from} kept warm for a fast rollback")?;
        }
        writeln!(f, "duration  ~{}s expected", self.expected.as_secs())
    }
}

impl fmt::Display for RollbackPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slot = self.slot;
        let version = |v: &Option<Version>| {
            v.as_ref()
                .map_or_else(|| "no task definition".to_string(), ToString::to_string)
        };
        match self.production.live() {
            Some(live) => writeln!(
                f,
                "live      {} on {live} (production {})",
                version(&self.live),
                self.production
            )?,
            None => writeln!(f, "live      mid-shift (production {})", self.production)?,
        }
        if let Some(safe) = self.repair_to
            && self.path != RollbackPath::Repair
        {
            writeln!(
                f,
                "repair    production back to {safe} first (an interrupted shift)"
            )?;
        }
        let target = version(&self.version);
        match &self.digest {
            Some(digest) => writeln!(f, "target    {target} on {slot} ({digest})")?,
            None => writeln!(f, "target    {target} on {slot}")?,
        }
        match self.path {
            RollbackPath::Nothing => {
                return writeln!(f, "path      nothing: {target} is already live on {slot}");
            }
            RollbackPath::Repair => {
                return writeln!(
                    f,
                    "path      repair: the interrupted shift goes back to {slot}, read back"
                );
            }
            RollbackPath::InPlace => {
                return writeln!(
                    f,
                    "path      in place: the worker's one service rolls back to it (ECS rolling deployment)"
                );
            }
            RollbackPath::Finished => writeln!(
                f,
                "path      finish: an interrupted rollback left production on {target}; baked again, then recorded"
            )?,
            RollbackPath::Fast => {
                writeln!(f, "path      fast: {slot} still runs it, warm and healthy")?
            }
            RollbackPath::Cold => writeln!(
                f,
                "path      cold: {slot} is scaled to {} task(s) of it, waited healthy and validated",
                self.desired
            )?,
        }
        match &self.redeploy {
            // Finishing: production is on it already; its bake again, no validation.
            Some(step) if self.path == RollbackPath::Finished => {
                write_steps(f, std::slice::from_ref(step))
            }
            Some(step) => {
                writeln!(
                    f,
                    "validate  on the test listener, then promoted like a release"
                )?;
                write_steps(f, std::slice::from_ref(step))
            }
            None => writeln!(f, "shift     production flips to {slot} at once, read back"),
        }
    }
}
