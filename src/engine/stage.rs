//! `stage`: roll a release onto the idle slot, wait until it is healthy, point the test
//! listener at it and validate it. Production traffic does not move.

use serde::Serialize;

use super::{Engine, EngineError, Gate, Lease, Observed, Plan, TaskDefinitionAction, plan};
use crate::ports::{Cloud, Release, Slot, Status, TaskDefinition, TaskSpec};

#[derive(Debug, Clone)]
pub struct StageRequest {
    pub spec: TaskSpec,
}

/// What a failed stage leaves to clean up once its failure is reported.
struct Undo {
    /// Recorded Failed in the history.
    release: Release,
    /// The idle slot's task definition and count to set back (the release never came up).
    set_back: Option<(String, u32)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageOutcome {
    pub plan: Plan,
    pub release: Release,
    /// The release was already live at 100%: nothing was staged.
    pub already_live: bool,
    /// What production ran when the stage began (a train's "from").
    #[serde(skip)]
    pub from: Option<crate::version::Version>,
}

impl<C: Cloud> Engine<'_, C> {
    /// The plan for staging `spec` now (for `plan` and `--dry-run`); changes nothing.
    pub async fn plan(&self, spec: &TaskSpec) -> Result<Plan, EngineError> {
        plan(spec, &self.observe().await?, self.settings)
    }

    /// Stage and validate; ends at AwaitingApproval.
    pub async fn stage(&self, request: &StageRequest) -> Result<StageOutcome, EngineError> {
        let lease = self.lock().await?;
        let result = lease.hold(self, self.stage_locked(&lease, request)).await;
        lease.release(self).await;
        result
    }

    /// Stage, then promote the same version under the same lock (no approval required).
    pub async fn deploy(
        &self,
        request: &StageRequest,
    ) -> Result<super::PromoteOutcome, EngineError> {
        let lease = self.lock().await?;
        let result = lease
            .hold(self, async {
                self.stage_locked(&lease, request).await?;
                self.promote_locked(&lease, &request.spec.version, None)
                    .await
            })
            .await;
        lease.release(self).await;
        result
    }

    pub(crate) async fn stage_locked(
        &self,
        lease: &Lease,
        request: &StageRequest,
    ) -> Result<StageOutcome, EngineError> {
        let spec = &request.spec;
        let mut observed = self.observe_locked(lease).await?;
        if observed.weights.live().is_none() {
            self.repair_shift(lease, &observed).await?;
            observed = self.observe_locked(lease).await?;
        }
        let plan = plan(spec, &observed, self.settings)?;
        let from = plan
            .live
            .and_then(|live| observed.slot(live).version().cloned());
        self.require_image(&spec.digest).await?;
        if let Some(live) = plan.live
            && let Some(td) = &observed.slot(live).task_definition
            && td.spec == *spec
        {
            let release = observed
                .release_on(live)
                .cloned()
                .unwrap_or_else(|| self.release(td, live));
            return Ok(StageOutcome {
                plan,
                release,
                already_live: true,
                from,
            });
        }
        self.report(
            Status::Staging,
            Some(&spec.version),
            Some(plan.idle),
            plan.one_line(),
        );
        let mut undo = None;
        let result = self
            .stage_steps(lease, &observed, &plan, spec, &mut undo)
            .await;
        match result {
            Ok(release) => {
                self.report(
                    Status::AwaitingApproval,
                    Some(&spec.version),
                    Some(plan.idle),
                    // Neutral wording: `deploy` promotes right after this, `stage` waits.
                    format!(
                        "validated on {}; production traffic has not moved",
                        plan.idle
                    ),
                );
                Ok(StageOutcome {
                    plan,
                    release,
                    already_live: false,
                    from,
                })
            }
            Err(e @ EngineError::LockLost { .. }) => Err(e),
            Err(e) => {
                // Said first, as soon as it is known; the clean-up comes after.
                self.report(
                    Status::Failed,
                    Some(&spec.version),
                    Some(plan.idle),
                    format!("{e}; production traffic was not moved"),
                );
                if let Some(undo) = undo {
                    self.undo_stage(lease, plan.idle, undo).await;
                }
                Err(e)
            }
        }
    }

    async fn stage_steps(
        &self,
        lease: &Lease,
        observed: &Observed,
        plan: &Plan,
        spec: &TaskSpec,
        undo: &mut Option<Undo>,
    ) -> Result<Release, EngineError> {
        let idle = plan.idle;
        let td = match &plan.task_definition {
            TaskDefinitionAction::Reuse(id) => observed
                .slot(idle)
                .task_definition
                .clone()
                .filter(|td| &td.id == id)
                .expect("reuse names the idle slot's task definition"),
            TaskDefinitionAction::Register => {
                self.write(lease, "register the task definition", || {
                    self.cloud.register_task_definition(spec)
                })
                .await?
            }
        };
        let release = self.release(&td, idle);
        let current = observed.slot(idle);
        if current.task_definition.as_ref().map(|t| &t.id) != Some(&td.id)
            || current.desired != plan.desired
        {
            self.write(lease, "update the idle slot", || {
                self.cloud.update_slot(idle, &td.id, plan.desired)
            })
            .await?;
        }
        // From here a failure records the attempt in the history.
        *undo = Some(Undo {
            release: release.clone(),
            set_back: None,
        });
        if let Err(e) = self
            .wait_ready(
                "Staging",
                idle,
                &td.id,
                plan.desired,
                plan.stabilize_deadline,
            )
            .await
        {
            // The release never came up: give the idle slot back what it ran before (its
            // task definition and count; nothing, for a slot that ran nothing), so failing
            // tasks stop and a warm previous release stays warm.
            let back = match &current.task_definition {
                Some(prev) => (prev.id.clone(), current.desired),
                None => (td.id.clone(), 0),
            };
            if let Some(undo) = undo.as_mut() {
                undo.set_back = Some(back);
            }
            return Err(e);
        }
        self.aim_test_listener(lease, idle, "point the test listener at the idle slot")
            .await?;
        self.report(
            Status::Validating,
            Some(&spec.version),
            Some(idle),
            format!("on {}", idle),
        );
        match self.validate(Gate::Stage(idle), &spec.version).await {
            Ok(passed) => self.report(
                Status::Validating,
                Some(&spec.version),
                Some(idle),
                format!("passed: {passed}"),
            ),
            Err(e) => return Err(e),
        }
        self.record(lease, &release, Status::AwaitingApproval)
            .await?;
        // What callers report is the release as recorded, not as it was while staging.
        Ok(Release {
            status: Status::AwaitingApproval,
            ..release
        })
    }

    /// After a failed stage, best effort (the stage has failed anyway, and production
    /// traffic never depended on this slot): the idle slot set back, the attempt recorded.
    async fn undo_stage(&self, lease: &Lease, idle: Slot, undo: Undo) {
        let eng = self.uncancellable();
        if let Some((td, desired)) = &undo.set_back {
            match eng
                .write(lease, "set the idle slot back", || {
                    self.cloud.update_slot(idle, td, *desired)
                })
                .await
            {
                Ok(()) => tracing::info!(%idle, td, desired, "idle slot set back to what it ran"),
                Err(e) => tracing::warn!(%idle, error = %e, "could not set the idle slot back"),
            }
        }
        let _ = eng.record(lease, &undo.release, Status::Failed).await;
        if undo.set_back.is_none() {
            // It came up and failed validation: its tasks still run at full capacity.
            self.scale_down_failed(lease, &undo.release).await;
        }
    }

    /// Deploy only what the registry has: a missing digest fails before anything changes.
    pub(crate) async fn require_image(
        &self,
        digest: &crate::ports::Digest,
    ) -> Result<(), EngineError> {
        if self
            .read("look the image up in the registry", || {
                self.cloud.exists(digest)
            })
            .await?
        {
            return Ok(());
        }
        Err(EngineError::Usage(format!(
            "image {digest} is not in the registry (deleted by a lifecycle policy, or never pushed); build and push it first"
        )))
    }

    pub(crate) fn release(&self, td: &TaskDefinition, slot: Slot) -> Release {
        Release {
            version: td.spec.version.clone(),
            digest: td.spec.digest.clone(),
            task_definition: td.id.clone(),
            slot,
            by: self.owner.clone(),
            at: self.cloud.now(),
            status: Status::Staging,
            fingerprint: td.spec.fingerprint.clone(),
            promoted_at: None,
            transitions: Vec::new(),
            rehearsal: None,
            train: self.train.clone(),
            train_id: self.train_id.clone(),
        }
    }

    /// An earlier shift was interrupted (a runner died mid-way): put all traffic back on
    /// the last good release and mark the interrupted release rolled back.
    pub(crate) async fn repair_shift(
        &self,
        lease: &Lease,
        observed: &Observed,
    ) -> Result<(), EngineError> {
        let safe = observed.safe_slot();
        let reason = format!(
            "an earlier shift was interrupted at {}; returning to {safe}",
            observed.weights
        );
        let eng = self.uncancellable();
        if let Some(interrupted) = observed.release_on(safe.other()) {
            eng.record(lease, interrupted, Status::RollingBack).await?;
        }
        eng.flip_back(lease, safe, &reason).await?;
        if let Some(interrupted) = observed.release_on(safe.other()) {
            eng.record(lease, interrupted, Status::RolledBack).await?;
        }
        let version = observed.slot(safe).version();
        self.report(Status::RolledBack, version, Some(safe), reason);
        Ok(())
    }
}
