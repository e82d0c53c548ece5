//! `rollback`: production back to the previous good release. Fast path when its slot is
//! still warm and healthy (a weight flip); cold path scales it up, waits and validates
//! first; `--to <version>` redeploys that release's digest and promotes it after validation.

use serde::Serialize;

use super::plan::{Step, bake};
use super::ready::readiness;
use super::{Engine, EngineError, Gate, Lease, Observed};
use crate::config::settings::Strategy;
use crate::ports::{Cloud, Release, Slot, Status};
use crate::version::Version;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RollbackPath {
    /// The previous slot was warm and healthy: a weight flip.
    Fast,
    /// The previous slot had to be scaled up, waited for and validated first.
    Cold,
    /// A shift had been interrupted; traffic went back to the last good release.
    Repair,
    /// The release was already live: nothing to do.
    Nothing,
    /// A `--to` redeploy had moved all traffic and then stopped before recording its bake
    /// (AWS unreachable, the runner lost): baked again and recorded.
    Finished,
    /// A worker (no load balancer): its one service rolled back to the previous task
    /// definition by ECS's rolling deployment.
    InPlace,
}

/// As `--json` spells it (`fast`, `cold`, …): what a member's line in a train's table says.
impl std::fmt::Display for RollbackPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RollbackPath::Fast => "fast",
            RollbackPath::Cold => "cold",
            RollbackPath::Repair => "repair",
            RollbackPath::Nothing => "nothing",
            RollbackPath::Finished => "finished",
            RollbackPath::InPlace => "in place",
        })
    }
}

impl RollbackPath {
    /// A release still warm on its slot is flipped to; any other is brought up first.
    pub(crate) fn of(warm: bool) -> Self {
        if warm {
            RollbackPath::Fast
        } else {
            RollbackPath::Cold
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollbackOutcome {
    /// What is live now (None only if its slot runs no task definition).
    pub version: Option<Version>,
    pub slot: Slot,
    pub path: RollbackPath,
}

impl RollbackOutcome {
    /// What `slot` runs, as `observed`, reached by `path`.
    pub(crate) fn on(observed: &Observed, slot: Slot, path: RollbackPath) -> Self {
        RollbackOutcome {
            version: observed.slot(slot).version().cloned(),
            slot,
            path,
        }
    }
}

/// What a rollback does once production is on one slot. Decided by [`decide`] alone, so
/// `rollback_plan` says what `rollback` then does.
pub(crate) enum Decision {
    /// The release asked for is the live one.
    Nothing { live: Slot },
    /// The release asked for is live at 100% from an interrupted `--to` redeploy that never
    /// recorded its bake: bake it again, then mark `left` (what it rolled away from) rolled
    /// back. Reported as nothing to do, the history would keep naming `left` good.
    Finish {
        live: Slot,
        left: Option<Box<Release>>,
    },
    /// Boxed: two releases, where the other variant is a slot.
    Move(Box<Move>),
}

/// A release to bring back onto the idle slot.
pub(crate) struct Move {
    pub(crate) live: Slot,
    pub(crate) target: Release,
    /// Always the idle slot: the live one keeps serving until the target is ready.
    pub(crate) slot: Slot,
    /// What is live now, as the history knows it: marked rolled back once traffic left it.
    pub(crate) current: Option<Release>,
    /// Tasks the target runs: the live slot's count, so it takes the same load.
    pub(crate) desired: u32,
}

/// The rollback from `observed`, whose weights must not be mid-shift (a repair comes
/// first). Pure: it reads nothing and writes nothing.
pub(crate) fn decide(
    observed: &Observed,
    to: Option<&Version>,
    depth: u32,
) -> Result<Decision, EngineError> {
    let live = observed
        .weights
        .live()
        .expect("an interrupted shift is repaired before a rollback decides");
    let target = rollback_target(observed, live, to, depth)?;
    let live_td = observed.slot(live).task_definition.as_ref().map(|t| &t.id);
    if live_td == Some(&target.task_definition) {
        let interrupted = observed.release_on(live).is_some_and(|r| {
            matches!(
                r.status,
                Status::AwaitingApproval | Status::Shifting(_) | Status::Baking
            )
        });
        if to.is_some() && interrupted {
            let left = rollback_target(observed, live, None, depth)
                .ok()
                .map(|r| Box::new(r.clone()));
            return Ok(Decision::Finish { live, left });
        }
        return Ok(Decision::Nothing { live });
    }
    Ok(Decision::Move(Box::new(Move {
        live,
        slot: live.other(),
        current: observed.release_on(live).cloned(),
        desired: observed.slot(live).desired.max(1),
        target: target.clone(),
    })))
}

/// `to` from the history — only a release that was once promoted —, or else the newest good
/// release that is not the live one (the live release can be the newest good one or not,
/// e.g. after a rollback). The one rule for the rollback, its dry run, `status` and the
/// action's outputs.
pub fn rollback_target<'a>(
    observed: &'a Observed,
    live: Slot,
    to: Option<&Version>,
    depth: u32,
) -> Result<&'a Release, EngineError> {
    let live_td = observed.slot(live).task_definition.as_ref().map(|t| &t.id);
    let Some(to) = to else {
        return observed
            .history
            .iter()
            .rev()
            .find(|r| r.status == Status::Promoted && Some(&r.task_definition) != live_td)
            .ok_or_else(|| {
                EngineError::Usage("no earlier good release in the history to roll back to".into())
            });
    };
    let found = observed.history.iter().rev().find(|r| &r.version == to);
    match found {
        Some(r) if r.was_promoted() => Ok(r),
        Some(r) => Err(EngineError::Usage(format!(
            "{to} never took production traffic (its history ends {}): roll back only to a release that was once promoted, or deploy {to} as a new release",
            r.status
        ))),
        None => Err(EngineError::Usage(format!(
            "{to} is not in the release history (the last {depth}); deploy it as a new release"
        ))),
    }
}

/// The one step a `--to` redeploy is promoted with: all at once, then the strategy's bake.
pub(crate) fn redeploy_step(strategy: &Strategy) -> Result<Step, EngineError> {
    Ok(Step {
        percent: 100,
        hold: bake(strategy)?,
    })
}

impl<C: Cloud> Engine<'_, C> {
    /// Roll back to the previous good release, or to `to` from the history.
    pub async fn rollback(&self, to: Option<&Version>) -> Result<RollbackOutcome, EngineError> {
        let lease = self.lock_to_recover().await?;
        let result = lease.hold(self, self.rollback_locked(&lease, to)).await;
        lease.release(self).await;
        result
    }

    pub(crate) async fn rollback_locked(
        &self,
        lease: &Lease,
        to: Option<&Version>,
    ) -> Result<RollbackOutcome, EngineError> {
        let mut observed = self.observe_locked(lease).await?;
        if observed.weights.live().is_none() {
            self.repair_shift(lease, &observed).await?;
            if to.is_none() {
                let safe = observed.safe_slot();
                return Ok(RollbackOutcome::on(&observed, safe, RollbackPath::Repair));
            }
            observed = self.observe_locked(lease).await?;
        }
        let mv = match decide(&observed, to, self.settings.history.depth)? {
            Decision::Nothing { live } => {
                return Ok(RollbackOutcome::on(&observed, live, RollbackPath::Nothing));
            }
            Decision::Finish { live, left } => {
                let to = to.expect("only a --to redeploy is finished");
                self.finish_redeploy(lease, to, live, left.as_deref())
                    .await?;
                return Ok(RollbackOutcome::on(&observed, live, RollbackPath::Finished));
            }
            Decision::Move(mv) => mv,
        };
        let warm = self.check_target(&observed, &mv).await?;
        let (target, slot) = (&mv.target, mv.slot);
        self.report(
            Status::RollingBack,
            Some(&target.version),
            Some(slot),
            format!("to {} on {slot}", target.version),
        );
        self.bring_up(lease, &mv, warm, to.is_some()).await?;
        match to {
            Some(version) => self.redeploy(lease, &mv, version).await?,
            None => self.flip_to(lease, &mv).await?,
        }
        if let Some(cur) = &mv.current {
            self.record(lease, cur, Status::RolledBack).await?;
        }
        self.report(
            Status::RolledBack,
            Some(&target.version),
            Some(slot),
            format!("{} live on {slot}", target.version),
        );
        if let Some(cur) = &mv.current {
            self.scale_down_failed(lease, cur).await;
        }
        Ok(RollbackOutcome {
            version: Some(target.version.clone()),
            slot,
            path: RollbackPath::of(warm),
        })
    }

    /// Whether the target's slot is warm, once the target's image is known to be still in
    /// the registry (the slot cannot replace a task without it). Two independent reads,
    /// made together; a plan makes the same ones.
    pub(crate) async fn check_target(
        &self,
        observed: &Observed,
        mv: &Move,
    ) -> Result<bool, EngineError> {
        let ((), warm) = tokio::try_join!(
            self.require_image(&mv.target.digest),
            self.is_warm(observed, mv.slot, &mv.target),
        )?;
        Ok(warm)
    }

    /// Whether `slot` still runs `target` at capacity with every target healthy (the
    /// previous release kept warm): then a weight flip is all a rollback needs. The slot as
    /// just observed, and its target health read now.
    pub(crate) async fn is_warm(
        &self,
        observed: &Observed,
        slot: Slot,
        target: &Release,
    ) -> Result<bool, EngineError> {
        let state = observed.slot(slot);
        // Below the live slot's capacity (someone scaled it down) is not warm: flipping all
        // of production onto fewer tasks is an outage of its own.
        let capacity = observed.slot(slot.other()).desired.max(1);
        if state.task_definition.as_ref().map(|t| &t.id) != Some(&target.task_definition)
            || state.desired < capacity
        {
            return Ok(false);
        }
        let targets = self
            .read("read target health", || self.cloud.target_health(slot))
            .await?;
        Ok(readiness(slot, state, targets, &target.task_definition, state.desired).is_ok())
    }

    /// [`Self::ensure_ready`], where any failure but a lost lock or a cancel is a failed
    /// rollback (production still on the live slot, which a human must look at).
    async fn bring_up(
        &self,
        lease: &Lease,
        mv: &Move,
        warm: bool,
        validate: bool,
    ) -> Result<(), EngineError> {
        let (target, slot) = (&mv.target, mv.slot);
        match self
            .ensure_ready(lease, slot, target, mv.desired, warm, validate)
            .await
        {
            Ok(()) => Ok(()),
            Err(e @ (EngineError::LockLost { .. } | EngineError::Cancelled { .. })) => Err(e),
            Err(e) => {
                let reason = format!(
                    "could not bring {} up on {slot}: {e}; production is still on {}",
                    target.version, mv.live
                );
                self.report(
                    Status::RollbackFailed,
                    Some(&target.version),
                    Some(slot),
                    reason.clone(),
                );
                Err(EngineError::RollbackFailed { reason })
            }
        }
    }

    /// Make `slot` run `target` warm and healthy; validate it when it had to be brought up
    /// or when `validate` asks (a redeploy).
    async fn ensure_ready(
        &self,
        lease: &Lease,
        slot: Slot,
        target: &Release,
        desired: u32,
        warm: bool,
        validate: bool,
    ) -> Result<(), EngineError> {
        if warm && !validate {
            return Ok(());
        }
        if !warm {
            self.write(lease, "bring the rollback slot up", || {
                self.cloud
                    .update_slot(slot, &target.task_definition, desired)
            })
            .await?;
            let deadline = self.settings.deadlines.stabilize.0;
            self.wait_ready(
                "RollingBack",
                slot,
                &target.task_definition,
                desired,
                deadline,
            )
            .await?;
        }
        self.aim_test_listener(lease, slot, "point the test listener at the rollback slot")
            .await?;
        self.validate(Gate::Recover(slot), &target.version).await?;
        Ok(())
    }

    /// `--to`: a redeploy of an older release, validated, then promoted all at once and
    /// baked like any release, so it is good only after its bake.
    async fn redeploy(
        &self,
        lease: &Lease,
        mv: &Move,
        version: &Version,
    ) -> Result<(), EngineError> {
        let staged = Release {
            slot: mv.slot,
            ..mv.target.clone()
        };
        self.record(lease, &staged, Status::AwaitingApproval)
            .await?;
        let step = redeploy_step(&self.settings.strategy)?;
        self.promote_locked(lease, version, Some(vec![step]))
            .await?;
        Ok(())
    }

    /// [`Decision::Finish`]: the interrupted redeploy's promote resumed (at 100% already: its
    /// bake again, then Promoted), then what it left marked rolled back.
    async fn finish_redeploy(
        &self,
        lease: &Lease,
        to: &Version,
        live: Slot,
        left: Option<&Release>,
    ) -> Result<(), EngineError> {
        self.report(
            Status::RollingBack,
            Some(to),
            Some(live),
            format!("finishing an interrupted rollback to {to}: production is on it, its bake was never recorded"),
        );
        let step = redeploy_step(&self.settings.strategy)?;
        // Boxed: a promote's future inside a rollback's would double what every rollback
        // keeps on the stack (a debug build's 2 MiB test thread overflows).
        Box::pin(self.promote_locked(lease, to, Some(vec![step]))).await?;
        if let Some(left) = left {
            self.record(lease, left, Status::RolledBack).await?;
        }
        self.report(
            Status::RolledBack,
            Some(to),
            Some(live),
            format!("{to} live on {live}"),
        );
        Ok(())
    }

    /// Back to the previous release: the live one is marked RollingBack first (a re-run
    /// after a crash must not roll forward to it), then the flip.
    async fn flip_to(&self, lease: &Lease, mv: &Move) -> Result<(), EngineError> {
        if let Some(cur) = &mv.current {
            self.record(lease, cur, Status::RollingBack).await?;
        }
        let reason = format!("rollback to {}", mv.target.version);
        self.flip_back(lease, mv.slot, &reason).await
    }
}

#[cfg(test)]
mod tests {
    use super::RollbackPath;

    /// The words a person reads are the ones `--json` writes.
    #[test]
    fn a_path_reads_as_json_spells_it() {
        for path in [
            RollbackPath::Fast,
            RollbackPath::Cold,
            RollbackPath::Repair,
            RollbackPath::Nothing,
            RollbackPath::Finished,
        ] {
            let json = serde_json::to_string(&path).unwrap();
            assert_eq!(json, format!("\"{path}\""));
        }
    }
}
