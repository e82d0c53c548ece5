//! Workers: services with no load balancer (`[worker]` in service.toml), shipped as members
//! of a release train (issue 17.4). ECS's rolling deployment updates their one service in
//! place, the deployment circuit breaker on and ECS's own rollback off: cutover's rollback
//! is the previous task definition, recorded in the history like any release. A worker has
//! no weights, no test listener and no target group, so its check is ECS's: the rollout
//! completes with every task on the new task definition. In the ports its one service is
//! the blue slot ([`SERVICE`]), and its history entries say so.

use super::calls::Progress;
use super::ready::{ecs_reports, rollout_failed, service_text};
use super::{Engine, EngineError, Lease};
use crate::ports::{Cloud, Release, Rollout, Slot, SlotState, Status, TaskSpec};
use crate::version::Version;

/// A worker's one ECS service, as the ports name it.
pub(crate) const SERVICE: Slot = Slot::Blue;

/// A worker as read under its lease.
pub(crate) struct WorkerState {
    pub(crate) service: SlotState,
    pub(crate) history: Vec<Release>,
}

impl WorkerState {
    /// The version the service runs now.
    pub(crate) fn version(&self) -> Option<Version> {
        self.service
            .task_definition
            .as_ref()
            .map(|t| t.spec.version.clone())
    }

    fn runs(&self, spec: &TaskSpec) -> bool {
        self.service
            .task_definition
            .as_ref()
            .is_some_and(|t| t.spec == *spec)
    }

    /// The history entry of what the service runs now, if any.
    pub(crate) fn running(&self) -> Option<&Release> {
        let td = self.service.task_definition.as_ref()?;
        self.history
            .iter()
            .rev()
            .find(|r| r.task_definition == td.id)
    }

    /// The newest good release the service does not run: a train rollback's target.
    pub(crate) fn previous_good(&self) -> Option<&Release> {
        let now = self.service.task_definition.as_ref().map(|t| &t.id);
        self.history
            .iter()
            .rev()
            .find(|r| r.status == Status::Promoted && Some(&r.task_definition) != now)
    }

    /// Where a rollback goes: `to` (once promoted), or the previous good release.
    fn rollback_target(&self, to: Option<&Version>) -> Result<&Release, EngineError> {
        let Some(to) = to else {
            return self.previous_good().ok_or_else(|| {
                EngineError::Usage(
                    "no earlier good release in the worker's history to roll back to".into(),
                )
            });
        };
        match self.history.iter().rev().find(|r| &r.version == to) {
            Some(r) if r.was_promoted() => Ok(r),
            Some(r) => Err(EngineError::Usage(format!(
                "{to} never took this worker to a promoted release (its history ends {}): roll back only to a release that was once promoted",
                r.status
            ))),
            None => Err(EngineError::Usage(format!(
                "{to} is not in this worker's release history; deploy it as a new release"
            ))),
        }
    }

    /// The entry of `version` a promote may roll: staged, or rolled by a train that died.
    pub(crate) fn staged(&self, version: &Version) -> Result<&Release, EngineError> {
        match self.history.iter().rev().find(|r| &r.version == version) {
            Some(r)
                if matches!(
                    r.status,
                    Status::AwaitingApproval | Status::Shifting(_) | Status::Baking
                ) =>
            {
                Ok(r)
            }
            Some(r) => Err(EngineError::Usage(format!(
                "{version} is {} in this worker's history, not staged: stage it again with the whole train",
                r.status
            ))),
            None => Err(EngineError::Usage(format!(
                "nothing is staged as {version} for this worker: stage it with the whole train first"
            ))),
        }
    }
}

/// A worker staged: nothing runs it yet.
pub(crate) struct WorkerStaged {
    pub(crate) release: Release,
    pub(crate) from: Option<Version>,
    /// The service already runs this very release.
    pub(crate) already_live: bool,
}

/// Is `state` done rolling out `td` at `desired`? Err: why not, and whether ECS says it
/// never will (the circuit breaker, tasks that cannot start or be placed).
fn rolled(state: &SlotState, td: &str, desired: u32) -> Result<(), (bool, String)> {
    let on_td = state.task_definition.as_ref().map(|t| t.id.as_str()) == Some(td);
    if on_td
        && state.rollout == Rollout::Completed
        && state.desired == desired
        && state.running == desired
        && state.pending == 0
    {
        return Ok(());
    }
    let terminal = rollout_failed(state, td);
    let mut text = format!(
        "worker service: {}; stopped tasks: [{}]",
        service_text(state),
        state.stopped_reasons.join("; "),
    );
    if terminal {
        text.push_str(&ecs_reports(state));
    }
    Err((terminal, text))
}

impl<C: Cloud> Engine<'_, C> {
    pub(crate) fn is_worker(&self) -> bool {
        self.settings.worker.is_some()
    }

    /// The service and the history, the lock read with them still ours.
    pub(crate) async fn observe_worker(&self, lease: &Lease) -> Result<WorkerState, EngineError> {
        let started = tokio::time::Instant::now();
        let c = self.cloud;
        let ((history, lock), service) = tokio::try_join!(
            self.read("read the release history and the lock", || c
                .history_and_lock()),
            self.read("read the worker's service", || c.read_slot(SERVICE)),
        )?;
        lease.note(self, lock.as_ref(), started)?;
        Ok(WorkerState { service, history })
    }

    /// Register the release's task definition and record it staged. Nothing runs it until
    /// the train moves: rolling a worker is a production change.
    pub(crate) async fn stage_worker(
        &self,
        lease: &Lease,
        spec: &TaskSpec,
    ) -> Result<WorkerStaged, EngineError> {
        let state = self.observe_worker(lease).await?;
        let from = state.version();
        self.require_image(&spec.digest).await?;
        if state.runs(spec)
            && let Some(td) = &state.service.task_definition
        {
            let release = state
                .running()
                .cloned()
                .unwrap_or_else(|| self.release(td, SERVICE));
            return Ok(WorkerStaged {
                release,
                from,
                already_live: true,
            });
        }
        let version = Some(&spec.version);
        self.report(
            Status::Staging,
            version,
            None,
            "worker: register the task definition; it rolls in place when the train moves".into(),
        );
        let td = self
            .write(lease, "register the task definition", || {
                self.cloud.register_task_definition(spec)
            })
            .await?;
        let release = self.release(&td, SERVICE);
        self.record(lease, &release, Status::AwaitingApproval)
            .await?;
        self.report(
            Status::AwaitingApproval,
            version,
            None,
            format!(
                "worker: {} registered; rolls in place after every web member validated",
                td.id
            ),
        );
        Ok(WorkerStaged {
            release: Release {
                status: Status::AwaitingApproval,
                ..release
            },
            from,
            already_live: false,
        })
    }

    /// Roll the service onto `td` at `desired` and wait until ECS completes the rollout
    /// (the stabilize deadline; the circuit breaker ends it at once).
    pub(crate) async fn roll_worker(
        &self,
        lease: &Lease,
        what: &str,
        td: &str,
        desired: u32,
    ) -> Result<(), EngineError> {
        self.write(lease, what, || self.cloud.update_slot(SERVICE, td, desired))
            .await?;
        self.wait_until(what, self.settings.deadlines.stabilize.0, async || {
            let state = self
                .read("read the worker's service", || {
                    self.cloud.read_slot(SERVICE)
                })
                .await?;
            Ok(match rolled(&state, td, desired) {
                Ok(()) => Progress::Done(()),
                Err((true, state)) => {
                    return Err(EngineError::failed(
                        what,
                        format!("ECS failed the rollout; real state: {state}"),
                    ));
                }
                Err((false, state)) => Progress::NotYet { hint: None, state },
            })
        })
        .await
    }

    /// After the bake: the service still runs `td` at `desired`, rolled out (a worker's
    /// `verify_live`).
    pub(crate) async fn verify_worker(&self, td: &str, desired: u32) -> Result<(), EngineError> {
        let state = self
            .read("read the worker's service", || {
                self.cloud.read_slot(SERVICE)
            })
            .await?;
        rolled(&state, td, desired).map_err(|(_, state)| {
            EngineError::failed(
                Status::Baking,
                format!("the worker no longer runs the release: {state}"),
            )
        })
    }

    /// A train rollback of a worker: back to `to`, or to its previous good release, in
    /// place.
    pub(crate) async fn rollback_worker(
        &self,
        lease: &Lease,
        to: Option<&Version>,
    ) -> Result<super::RollbackOutcome, EngineError> {
        let state = self.observe_worker(lease).await?;
        let target = state.rollback_target(to)?.clone();
        if state.running().map(|r| &r.task_definition) == Some(&target.task_definition) {
            return Ok(super::RollbackOutcome {
                version: Some(target.version.clone()),
                slot: SERVICE,
                path: super::RollbackPath::Nothing,
            });
        }
        let current = state.running().cloned();
        let desired = state.service.desired;
        self.report(
            Status::RollingBack,
            Some(&target.version),
            None,
            format!("worker: back to {} in place", target.task_definition),
        );
        if let Some(cur) = &current {
            self.record(lease, cur, Status::RollingBack).await?;
        }
        let back = self
            .roll_worker(
                lease,
                "roll the worker back",
                &target.task_definition,
                desired,
            )
            .await;
        if let Err(e) = back {
            return Err(EngineError::RollbackFailed {
                reason: format!("the worker did not return to {}: {e}", target.version),
            });
        }
        if let Some(cur) = &current {
            self.record(lease, cur, Status::RolledBack).await?;
        }
        self.report(
            Status::RolledBack,
            Some(&target.version),
            None,
            format!("worker: on {} again", target.version),
        );
        Ok(super::RollbackOutcome {
            version: Some(target.version.clone()),
            slot: SERVICE,
            path: super::RollbackPath::InPlace,
        })
    }
}
