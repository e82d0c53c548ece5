//! Is a slot ready (rolled out, running == desired, every target healthy)? And waiting for
//! it cheaply: health checks make "healthy" predictable, so the wait sleeps through the
//! quiet part and looks closely only when a target can turn healthy.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::calls::Progress;
use super::{Engine, EngineError};
use crate::ports::{Cloud, Rollout, Slot, SlotState, TargetHealth, TargetState};

/// Why a slot is not ready: the real state, for the deadline report (invariant 8).
pub(crate) struct NotReady {
    pub(crate) state: String,
    targets: Vec<TargetHealth>,
    /// ECS says the rollout cannot succeed (a FAILED rollout, tasks that failed to start or
    /// exited, tasks it cannot place): waiting longer changes nothing.
    pub(crate) terminal: bool,
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.state)
    }
}

pub(crate) async fn slot_ready<C: Cloud>(
    eng: &Engine<'_, C>,
    slot: Slot,
    td: &str,
    desired: u32,
) -> Result<Result<(), NotReady>, EngineError> {
    let c = eng.cloud;
    let (state, targets) = tokio::try_join!(
        eng.read("read the slot", || c.read_slot(slot)),
        eng.read("read target health", || c.target_health(slot)),
    )?;
    Ok(readiness(slot, &state, targets, td, desired))
}

/// Whether `state` (as read) and `targets` make the slot ready to run `td` at `desired`.
pub(crate) fn readiness(
    slot: Slot,
    state: &SlotState,
    targets: Vec<TargetHealth>,
    td: &str,
    desired: u32,
) -> Result<(), NotReady> {
    let healthy = targets
        .iter()
        .filter(|t| t.state == TargetState::Healthy)
        .count() as u32;
    let on_td = state.task_definition.as_ref().map(|t| t.id.as_str()) == Some(td);
    let ready = on_td
        && state.rollout == Rollout::Completed
        && state.desired == desired
        && state.running == desired
        && state.pending == 0
        && desired > 0
        && healthy == desired
        && targets.iter().all(|t| t.state == TargetState::Healthy);
    if ready {
        return Ok(());
    }
    let terminal = rollout_failed(state, td);
    let reasons: Vec<String> = targets
        .iter()
        .filter(|t| t.state != TargetState::Healthy)
        .map(|t| {
            format!(
                "{} {:?}: {}",
                t.id,
                t.state,
                t.reason.as_deref().unwrap_or("-")
            )
        })
        .collect();
    // Say how many targets the load balancer has at all: "0 of 2 registered" is often
    // the whole story (tasks that never pass the container's own checks, a wrong port).
    let mut text = format!(
        "{slot}: {}; targets healthy {healthy} of {desired} ({} registered); \
         stopped tasks: [{}]; unhealthy targets: [{}]",
        service_text(state),
        targets.len(),
        state.stopped_reasons.join("; "),
        reasons.join("; "),
    );
    if terminal {
        text.push_str(&ecs_reports(state));
    }
    Err(NotReady {
        state: text,
        targets,
        terminal,
    })
}

/// The service's task definition, rollout and counts, as an operator reads them.
pub(crate) fn service_text(state: &SlotState) -> String {
    format!(
        "task definition {}, rollout {:?}, desired {} running {} pending {}",
        state
            .task_definition
            .as_ref()
            .map_or("none", |t| t.id.as_str()),
        state.rollout,
        state.desired,
        state.running,
        state.pending,
    )
}

/// What ECS said about a rollout that cannot succeed.
pub(crate) fn ecs_reports(state: &SlotState) -> String {
    format!(
        "; ECS reports: [{}]; service events: [{}]",
        state.failures.join("; "),
        state.events.join("; "),
    )
}

/// ECS says the rollout of `td` cannot succeed. `failures` describe the service's current
/// deployment (the adapters see to it), or name the task definition whose deployment
/// failed (the circuit breaker rolled the service back from it); a FAILED rollout counts
/// when it is the rollout of `td`, not one left from before.
pub(crate) fn rollout_failed(state: &SlotState, td: &str) -> bool {
    let on_td = state.task_definition.as_ref().map(|t| t.id.as_str()) == Some(td);
    let names_td = |f: &String| f.split_whitespace().any(|w| w == td);
    (on_td && (state.rollout == Rollout::Failed || !state.failures.is_empty()))
        || state.failures.iter().any(names_td)
}

/// Predicts when registered targets can first be healthy. A target first seen in `initial`
/// registered after the previous poll, so it cannot pass `threshold` checks before
/// previous poll + interval × threshold.
struct Predictor {
    healthy_after: Duration,
    previous_poll: Option<Instant>,
    earliest: BTreeMap<String, Instant>,
}

impl Predictor {
    /// How long until the last unhealthy target can be healthy; None when unknown.
    fn hint(&mut self, targets: &[TargetHealth]) -> Option<Duration> {
        let now = Instant::now();
        let since = self.previous_poll.unwrap_or(now);
        self.previous_poll = Some(now);
        for t in targets.iter().filter(|t| t.state == TargetState::Initial) {
            self.earliest
                .entry(t.id.clone())
                .or_insert(since + self.healthy_after);
        }
        targets
            .iter()
            .filter(|t| t.state == TargetState::Initial)
            .filter_map(|t| self.earliest.get(&t.id))
            .max()
            .map(|at| at.saturating_duration_since(now))
    }
}

impl<C: Cloud> Engine<'_, C> {
    /// Wait until `slot` runs `td` at `desired` with every target healthy, within `deadline`.
    pub(crate) async fn wait_ready(
        &self,
        what: &str,
        slot: Slot,
        td: &str,
        desired: u32,
        deadline: Duration,
    ) -> Result<(), EngineError> {
        let timing = self
            .read("read the health check settings", || {
                self.cloud.health_check_timing(slot)
            })
            .await?;
        let mut predictor = Predictor {
            healthy_after: timing.interval * timing.healthy_threshold,
            previous_poll: None,
            earliest: BTreeMap::new(),
        };
        self.wait_until(what, deadline, async || {
            Ok(match slot_ready(self, slot, td, desired).await? {
                Ok(()) => Progress::Done(()),
                Err(not) if not.terminal => {
                    return Err(EngineError::failed(
                        what,
                        format!("ECS failed the rollout; real state: {}", not.state),
                    ));
                }
                Err(not) => Progress::NotYet {
                    hint: predictor.hint(&not.targets),
                    state: not.state,
                },
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{Digest, TaskDefinition, TaskSpec};
    use crate::version::Version;

    fn state(td: &str, rollout: Rollout, failures: &[&str]) -> SlotState {
        SlotState {
            task_definition: Some(TaskDefinition {
                id: td.into(),
                spec: TaskSpec {
                    version: Version::parse("v1.0.0").expect("tag"),
                    digest: Digest(format!("sha256:{}", "a".repeat(64))),
                    content: String::new(),
                    fingerprint: String::new(),
                },
            }),
            desired: 2,
            running: 0,
            pending: 2,
            rollout,
            events: vec![],
            stopped_reasons: vec![],
            failures: failures.iter().map(|f| f.to_string()).collect(),
            load_balancers: vec![],
        }
    }

    fn terminal(s: &SlotState, td: &str) -> bool {
        readiness(Slot::Green, s, vec![], td, 2).is_err_and(|n| n.terminal)
    }

    #[test]
    fn what_ends_a_rollout_at_once() {
        // The rollout of the task definition being rolled out, FAILED.
        assert!(terminal(&state("td:2", Rollout::Failed, &[]), "td:2"));
        // A FAILED rollout of another task definition (read before the update) is not.
        assert!(!terminal(&state("td:1", Rollout::Failed, &[]), "td:2"));
        // Tasks of the current deployment that failed, tasks ECS cannot place.
        assert!(terminal(
            &state(
                "td:2",
                Rollout::InProgress,
                &["CannotPullContainerError: not found"]
            ),
            "td:2"
        ));
        // The circuit breaker rolled the service back to td:1 from td:2.
        let rolled_back = state(
            "td:1",
            Rollout::InProgress,
            &["deployment of td:2 FAILED: tasks failed to start"],
        );
        assert!(terminal(&rolled_back, "td:2"));
        assert!(!terminal(&rolled_back, "td:21"));
        assert!(!terminal(&rolled_back, "td:3"));
        assert!(!terminal(&state("td:2", Rollout::InProgress, &[]), "td:2"));
    }
}
