//! `promote`: shift production traffic to the staged release step by step, watching alarms
//! and probes; on any failure move it back by itself. Refuses any version but the staged one.

use serde::Serialize;

use super::plan::{Step, steps};
use super::ready::{NotReady, slot_ready};
use super::{Engine, EngineError, Gate, Lease, Observed};
use crate::config::settings::OldSlotPolicy;
use crate::ports::{Cloud, Release, Slot, Status, Weights};
use crate::version::Version;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromoteOutcome {
    pub version: Version,
    pub slot: Slot,
    /// It was already live and promoted: nothing was done.
    pub already: bool,
}

/// What a promote of one version does from the observed state. Decided by [`start`] alone,
/// so `promote_plan` says what `promote` then does.
pub(crate) enum Start {
    Shift(Box<Shift>),
    /// Already live at 100% and promoted (or live and older than the history): nothing to do.
    Already(Slot),
    /// Refused. With `repair`, an interrupted shift goes back to the last good release
    /// first: a refused promote must not leave production split.
    Refuse {
        repair: bool,
        error: EngineError,
    },
}

/// A shift to take, as read from the real state.
pub(crate) struct Shift {
    pub(crate) new: Slot,
    pub(crate) release: Release,
    /// Production weight already on `new`: an interrupted shift resumes above it.
    pub(crate) weight: u8,
    /// Steps still to take (all of them, or the rest of an interrupted shift).
    pub(crate) steps: Vec<Step>,
}

/// Where a promote of `version` starts from `observed`, taking the steps `all`. Pure: it
/// reads nothing and writes nothing.
pub(crate) fn start(observed: &Observed, version: &Version, all: Vec<Step>) -> Start {
    let runs = |slot: Slot| observed.slot(slot).version() == Some(version);
    let (new, weight) = match observed.weights.live() {
        Some(live) if runs(live) => (live, 100),
        Some(live) => (live.other(), 0),
        None => match [Slot::Blue, Slot::Green]
            .into_iter()
            .find(|s| runs(*s) && observed.weights.of(*s) > 0)
        {
            Some(new) => (new, observed.weights.of(new)),
            None => {
                return Start::Refuse {
                    repair: true,
                    error: mismatch(observed, observed.safe_slot().other(), version),
                };
            }
        },
    };
    let entry = observed.release_on(new).filter(|_| runs(new));
    let Some(release) = entry else {
        if weight == 100 {
            // Live and not in history (older than its depth): nothing to promote.
            return Start::Already(new);
        }
        return Start::Refuse {
            repair: false,
            error: mismatch(observed, new, version),
        };
    };
    if weight == 100 && release.status == Status::Promoted {
        return Start::Already(new);
    }
    let resumable = matches!(
        release.status,
        Status::AwaitingApproval | Status::Shifting(_) | Status::Baking
    );
    if !resumable {
        return Start::Refuse {
            repair: weight > 0,
            error: EngineError::Usage(format!(
                "{version} on {new} is {} in the history, not awaiting approval; stage it again",
                release.status
            )),
        };
    }
    Start::Shift(Box::new(Shift {
        new,
        release: release.clone(),
        weight,
        steps: resume(all, weight),
    }))
}

/// The steps left when `weight` is already on the new slot. The step the shift was in is
/// held again for its full wait (nothing records how long it had held, and holding longer
/// is the safe side), then the steps above it; at 100% the whole bake. A weight between
/// two steps (set by hand) is held as long as the step below it.
pub(crate) fn resume(all: Vec<Step>, weight: u8) -> Vec<Step> {
    if weight == 0 {
        return all;
    }
    let below = all
        .iter()
        .take_while(|s| s.percent < weight)
        .last()
        .or(all.first())
        .map_or(std::time::Duration::ZERO, |s| s.hold);
    let mut steps: Vec<Step> = all.into_iter().filter(|s| s.percent >= weight).collect();
    if steps.first().is_none_or(|s| s.percent != weight) {
        steps.insert(
            0,
            Step {
                percent: weight,
                hold: below,
            },
        );
    }
    steps
}

/// Where a failed shift sends traffic back: the other slot, and what it runs when that is
/// not a release that ever took production.
pub(crate) struct Fallback {
    slot: Slot,
    unproven: Option<String>,
}

impl Fallback {
    /// Before any traffic moved, the other slot is the live one: good by definition.
    pub(crate) fn of(observed: &Observed, old: Slot, weight: u8) -> Self {
        let td = observed.slot(old).task_definition.as_ref();
        let proven = weight == 0
            || td.is_some_and(|td| {
                observed
                    .history
                    .iter()
                    .any(|r| r.task_definition == td.id && r.was_promoted())
            });
        Fallback {
            slot: old,
            unproven: (!proven)
                .then(|| td.map_or("nothing".to_string(), |td| td.spec.version.to_string())),
        }
    }
}

fn mismatch(observed: &Observed, idle: Slot, asked: &Version) -> EngineError {
    let staged = observed
        .release_on(idle)
        .filter(|r| r.status == Status::AwaitingApproval)
        .map(|r| r.version.clone());
    EngineError::VersionMismatch {
        staged,
        asked: asked.clone(),
    }
}

impl<C: Cloud> Engine<'_, C> {
    /// Promote exactly `version`, which must be the validated release on the idle slot
    /// (or one whose shift was interrupted).
    pub async fn promote(&self, version: &Version) -> Result<PromoteOutcome, EngineError> {
        let lease = self.lock().await?;
        let result = lease
            .hold(self, self.promote_locked(&lease, version, None))
            .await;
        lease.release(self).await;
        result
    }

    /// `steps`: the strategy's unless given (a redeploy of an old release uses one step).
    pub(crate) async fn promote_locked(
        &self,
        lease: &Lease,
        version: &Version,
        steps_override: Option<Vec<Step>>,
    ) -> Result<PromoteOutcome, EngineError> {
        let observed = self.observe_locked(lease).await?;
        // A `rollback --to` redeploy promotes too; only a real promote rehearses.
        let rehearse = steps_override.is_none();
        let all = match steps_override {
            Some(s) => s,
            None => steps(&self.settings.strategy)?,
        };
        let start = match start(&observed, version, all) {
            Start::Shift(shift) => *shift,
            Start::Already(slot) => {
                return Ok(PromoteOutcome {
                    version: version.clone(),
                    slot,
                    already: true,
                });
            }
            Start::Refuse { repair, error } => {
                if repair {
                    self.repair_shift(lease, &observed).await?;
                }
                return Err(error);
            }
        };
        if let Some(pin) = self.pinned.as_ref().filter(|d| **d != start.release.digest) {
            return Err(EngineError::Usage(format!(
                "{version} on {} is now {}, not {} which the [versions] rules judged: it was \
                 staged again in between; run promote again to judge the image now staged",
                start.new,
                super::short(&start.release.digest),
                super::short(pin)
            )));
        }
        // A release staged by a train moves with its whole train (issue 17.3): promoting one
        // member alone would run production on half a release. A `rollback --to` redeploy
        // (steps given) is a recovery and never refused for it.
        if rehearse {
            self.staged_by_this_train(&start.release, &start.new.to_string())?;
        }
        let new = start.new;
        let old = new.other();
        // Resuming after a crash, the slot to fall back to may no longer run a good
        // release (a stage of another version replaced it, and moved the test listener).
        let fallback = Fallback::of(&observed, old, start.weight);
        if observed.test_listener != Some(new) {
            // The probes must judge the release being promoted (invariant 12).
            self.aim_test_listener(lease, new, "point the test listener at the new slot")
                .await?;
        }
        if let Err(state) = self.shift_ready(&observed, &start).await? {
            let reason = format!("{version} on {new} is not healthy: {state}");
            if start.weight == 0 {
                self.report(
                    Status::Failed,
                    Some(version),
                    Some(new),
                    format!("{reason}; production traffic was not moved"),
                );
                return Err(EngineError::failed("Shifting", reason));
            }
            return Err(self
                .fall_back(lease, &start.release, &fallback, reason)
                .await);
        }
        match self.shift(lease, &start).await {
            Ok(()) => {}
            Err(e @ (EngineError::LockLost { .. } | EngineError::RollbackFailed { .. })) => {
                return Err(e);
            }
            Err(EngineError::Cancelled { detail }) => {
                let e = self
                    .fall_back(
                        lease,
                        &start.release,
                        &fallback,
                        format!("cancelled: {detail}"),
                    )
                    .await;
                return Err(match e {
                    EngineError::RolledBack { .. } => EngineError::Cancelled {
                        detail: format!("{detail}; traffic is back on {old}"),
                    },
                    other => other,
                });
            }
            Err(e) => {
                return Err(self
                    .fall_back(lease, &start.release, &fallback, e.to_string())
                    .await);
            }
        }
        self.record(lease, &start.release, Status::Promoted).await?;
        self.report(
            Status::Promoted,
            Some(version),
            Some(new),
            format!("100% on {new}, bake passed"),
        );
        if rehearse {
            self.rehearse(lease, &observed, &start.release, new).await?;
        }
        if self.settings.old_slot.policy == OldSlotPolicy::ScaleToZero {
            self.scale_down_old(lease, old).await?;
        }
        Ok(PromoteOutcome {
            version: version.clone(),
            slot: new,
            already: false,
        })
    }

    /// Whether the slot a shift goes to is ready now: a promote takes no step otherwise.
    pub(crate) async fn shift_ready(
        &self,
        observed: &Observed,
        shift: &Shift,
    ) -> Result<Result<(), NotReady>, EngineError> {
        let desired = observed.slot(shift.new).desired;
        slot_ready(self, shift.new, &shift.release.task_definition, desired).await
    }

    async fn shift(&self, lease: &Lease, start: &Shift) -> Result<(), EngineError> {
        let version = &start.release.version;
        let new = start.new;
        let first = start.steps.first().map_or(100, |s| s.percent);
        let alarms = (self.watch_alarms(Gate::Traffic(new)).await?)
            .map_err(|reason| EngineError::failed(Status::Shifting(first), reason))?;
        self.left_alarming
            .fetch_or(alarms.left_firing, std::sync::atomic::Ordering::Relaxed);
        self.record(lease, &start.release, Status::Shifting(first))
            .await?;
        for step in &start.steps {
            self.check_cancel()?;
            self.report(
                Status::Shifting(step.percent),
                Some(version),
                Some(new),
                alarms.noted(if step.percent == start.weight && step.percent < 100 {
                    format!(
                        "{}% on {new} again, held in full after an interrupted shift",
                        step.percent
                    )
                } else {
                    format!("{}% on {new}", step.percent)
                }),
            );
            self.set_weights(lease, Weights::split(new, step.percent), Some(&alarms))
                .await?;
            if step.percent == 100 {
                self.record(lease, &start.release, Status::Baking).await?;
                self.report(
                    Status::Baking,
                    Some(version),
                    Some(new),
                    format!("{}s", step.hold.as_secs()),
                );
            }
            if let Err(reason) = self.watch(&alarms, step.hold).await? {
                // The hold at 100% is the bake: name it so.
                let during = if step.percent == 100 {
                    Status::Baking
                } else {
                    Status::Shifting(step.percent)
                };
                return Err(EngineError::failed(during, reason));
            }
        }
        self.verify_live(new, &start.release).await
    }

    /// Verifiably live (invariant 9): weights read back all on `new` and the slot still
    /// healthy. The end of every shift, a train's members' too.
    pub(crate) async fn verify_live(
        &self,
        new: Slot,
        release: &Release,
    ) -> Result<(), EngineError> {
        let weights = self
            .read("read back production weights", || {
                self.cloud.production_weights()
            })
            .await?;
        if weights != Weights::all_on(new) {
            return Err(EngineError::failed(
                "Baking",
                format!("weights changed under us: {weights}"),
            ));
        }
        let desired = self
            .read("read the new slot", || self.cloud.read_slot(new))
            .await?
            .desired;
        if let Err(state) = slot_ready(self, new, &release.task_definition, desired).await? {
            return Err(EngineError::failed(
                "Baking",
                format!("unhealthy after the bake: {state}"),
            ));
        }
        Ok(())
    }

    /// [`Self::roll_back`] to the fallback slot, unless it runs a release that never took
    /// production: then nothing moves and a human is paged (`cutover rollback` brings the
    /// last good release back up), since flipping would put production on a release no
    /// validation passed (invariant 1).
    pub(crate) async fn fall_back(
        &self,
        lease: &Lease,
        release: &Release,
        fallback: &Fallback,
        reason: String,
    ) -> EngineError {
        let Some(unproven) = &fallback.unproven else {
            return self.roll_back(lease, release, fallback.slot, reason).await;
        };
        let reason = format!(
            "{reason}; not rolled back: {} runs {unproven}, which never took production \
             traffic; production stays on {} ({}); run `cutover rollback` to bring the last \
             good release back up",
            fallback.slot, release.version, release.slot
        );
        self.report(
            Status::RollbackFailed,
            Some(&release.version),
            Some(release.slot),
            reason.clone(),
        );
        EngineError::RollbackFailed { reason }
    }

    /// Traffic back on `old`, the release marked rolled back; returns the error to end with.
    pub(crate) async fn roll_back(
        &self,
        lease: &Lease,
        release: &Release,
        old: Slot,
        reason: String,
    ) -> EngineError {
        let eng = self.uncancellable();
        // RollingBack first: a run that dies mid-rollback must not be resumed as a promote.
        if let Err(e) = eng.record(lease, release, Status::RollingBack).await
            && matches!(e, EngineError::LockLost { .. })
        {
            return e;
        }
        if let Err(e) = eng.flip_back(lease, old, &reason).await {
            return e;
        }
        let _ = eng.record(lease, release, Status::RolledBack).await;
        self.report(
            Status::RolledBack,
            Some(&release.version),
            Some(release.slot),
            format!(
                "{} rolled back, production is on {old}: {reason}",
                release.version
            ),
        );
        self.scale_down_failed(lease, release).await;
        EngineError::RolledBack { slot: old, reason }
    }

    /// Scale the previous slot to 0, only once a read-back shows no traffic on it.
    pub(crate) async fn scale_down_old(&self, lease: &Lease, old: Slot) -> Result<(), EngineError> {
        let weights = self
            .read("read back production weights", || {
                self.cloud.production_weights()
            })
            .await?;
        if weights.of(old) != 0 {
            return Ok(());
        }
        let state = self
            .read("read the old slot", || self.cloud.read_slot(old))
            .await?;
        if let Some(td) = state.task_definition.filter(|_| state.desired > 0) {
            self.write(lease, "scale the old slot to 0", || {
                self.cloud.update_slot(old, &td.id, 0)
            })
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn step(percent: u8, secs: u64) -> Step {
        Step {
            percent,
            hold: Duration::from_secs(secs),
        }
    }

    #[test]
    fn resume_holds_the_interrupted_step_again() {
        let canary = vec![step(10, 300), step(100, 600)];
        assert_eq!(resume(canary.clone(), 0), canary);
        assert_eq!(resume(canary.clone(), 10), canary);
        assert_eq!(resume(canary.clone(), 100), vec![step(100, 600)]);
        let linear = vec![step(25, 60), step(50, 60), step(75, 60), step(100, 300)];
        assert_eq!(resume(linear.clone(), 50), linear[1..].to_vec());
        // Set by hand between two steps: held as long as the step below, then onward.
        assert_eq!(
            resume(linear.clone(), 60),
            vec![step(60, 60), step(75, 60), step(100, 300)]
        );
    }
}
