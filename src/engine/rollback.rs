//! `rollback`: production back to the previous good release. Fast path when its slot is
//! still warm and healthy (a weight flip); cold path scales it up, waits and validates
//! first; `--to <version>` redeploys that release's digest and promotes it after validation.

use serde::Serialize;

use super::plan::Step;
use super::ready::readiness;
use super::{Engine, EngineError, Gate, Lease, Observed};
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
}

#[derive(Debug, Clone, Serialize)]
pub struct RollbackOutcome {
    /// What is live now (None only if its slot runs no task definition).
    pub version: Option<Version>,
    pub slot: Slot,
    pub path: RollbackPath,
}

impl<C: Cloud> Engine<'_, C> {
    /// Roll back to the previous good release, or to `to` from the history.
    pub async fn rollback(&self, to: Option<&Version>) -> Result<RollbackOutcome, EngineError> {
        let lease = self.lock().await?;
        let result = self.rollback_locked(&lease, to).await;
        lease.release(self).await;
        result
    }

    async fn rollback_locked(
        &self,
        lease: &Lease,
        to: Option<&Version>,
    ) -> Result<RollbackOutcome, EngineError> {
        let mut observed = self.observe_locked(lease).await?;
        if observed.weights.live().is_none() {
            self.repair_shift(lease, &observed).await?;
            let slot = observed.safe_slot();
            if to.is_none() {
                return Ok(self.outcome(&observed, slot, RollbackPath::Repair));
            }
            observed = self.observe_locked(lease).await?;
        }
        let live = observed.weights.live().expect("repaired above");
        let current = observed.release_on(live).cloned();
        let target = self.rollback_target(&observed, live, to)?;
        if observed.slot(live).task_definition.as_ref().map(|t| &t.id)
            == Some(&target.task_definition)
        {
            return Ok(self.outcome(&observed, live, RollbackPath::Nothing));
        }
        let slot = live.other();
        let desired = observed.slot(live).desired.max(1);
        // Independent reads, made together: the image must still be in the registry (the
        // slot cannot replace a task without it), and is the slot warm?
        let ((), warm) = tokio::try_join!(
            self.require_image(&target.digest),
            self.is_warm(&observed, slot, &target),
        )?;
        self.report(
            Status::RollingBack,
            Some(&target.version),
            Some(slot),
            format!("to {} on {slot}", target.version),
        );
        let path = match self
            .ensure_ready(lease, slot, &target, desired, warm, to.is_some())
            .await
        {
            Ok(path) => path,
            Err(e @ (EngineError::LockLost { .. } | EngineError::Cancelled { .. })) => {
                return Err(e);
            }
            Err(e) => {
                let reason = format!(
                    "could not bring {} up on {slot}: {e}; production is still on {live}",
                    target.version
                );
                self.report(
                    Status::RollbackFailed,
                    Some(&target.version),
                    Some(slot),
                    reason.clone(),
                );
                return Err(EngineError::RollbackFailed { reason });
            }
        };
        match to {
            Some(version) => {
                // A redeploy of an older release: validated, then promoted all at once and
                // baked like any release, so it is good only after its bake.
                let target = Release {
                    slot,
                    ..target.clone()
                };
                self.record(lease, &target, Status::AwaitingApproval)
                    .await?;
                let bake = super::plan::bake(&self.settings.strategy)?;
                self.promote_locked(
                    lease,
                    version,
                    Some(vec![Step {
                        percent: 100,
                        hold: bake,
                    }]),
                )
                .await?;
            }
            None => {
                if let Some(cur) = &current {
                    self.record(lease, cur, Status::RollingBack).await?;
                }
                self.flip_back(lease, slot, &format!("rollback to {}", target.version))
                    .await?;
            }
        }
        if let Some(cur) = &current {
            self.record(lease, cur, Status::RolledBack).await?;
        }
        self.report(
            Status::RolledBack,
            Some(&target.version),
            Some(slot),
            format!("{} live on {slot}", target.version),
        );
        Ok(RollbackOutcome {
            version: Some(target.version),
            slot,
            path,
        })
    }

    fn rollback_target(
        &self,
        observed: &Observed,
        live: Slot,
        to: Option<&Version>,
    ) -> Result<Release, EngineError> {
        let live_td = observed
            .slot(live)
            .task_definition
            .as_ref()
            .map(|t| t.id.clone());
        let found = observed.history.iter().rev().find(|r| match to {
            None => r.status == Status::Promoted && Some(&r.task_definition) != live_td.as_ref(),
            Some(v) => &r.version == v,
        });
        found.cloned().ok_or_else(|| {
            EngineError::Usage(match to {
                None => "no earlier good release in the history to roll back to".into(),
                Some(v) => format!(
                    "{v} is not in the release history (the last {}); deploy it as a new release",
                    self.settings.history.depth
                ),
            })
        })
    }

    /// Whether `slot` still runs `target` at capacity with every target healthy (the
    /// previous release kept warm): then a weight flip is all a rollback needs. The slot as
    /// just observed, and its target health read now.
    async fn is_warm(
        &self,
        observed: &Observed,
        slot: Slot,
        target: &Release,
    ) -> Result<bool, EngineError> {
        let state = observed.slot(slot);
        if state.task_definition.as_ref().map(|t| &t.id) != Some(&target.task_definition)
            || state.desired == 0
        {
            return Ok(false);
        }
        let targets = self
            .read("read target health", || self.cloud.target_health(slot))
            .await?;
        Ok(readiness(slot, state, targets, &target.task_definition, state.desired).is_ok())
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
    ) -> Result<RollbackPath, EngineError> {
        if warm && !validate {
            return Ok(RollbackPath::Fast);
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
        let test = self
            .read("read the test listener", || self.cloud.test_listener())
            .await?;
        if test != Some(slot) {
            self.write(
                lease,
                "point the test listener at the rollback slot",
                || self.cloud.point_test_listener(slot),
            )
            .await?;
        }
        self.validate(Gate::Recover(slot), &target.version).await?;
        Ok(if warm {
            RollbackPath::Fast
        } else {
            RollbackPath::Cold
        })
    }

    fn outcome(&self, observed: &Observed, slot: Slot, path: RollbackPath) -> RollbackOutcome {
        RollbackOutcome {
            version: observed.slot(slot).version().cloned(),
            slot,
            path,
        }
    }
}
