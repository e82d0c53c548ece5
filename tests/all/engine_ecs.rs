//! ECS failing a rollout (circuit breaker, image pull, exiting container, unplaceable
//! tasks) is terminal within one poll of ECS reporting it (issue 15.3).

use std::time::Duration;

use cutover::config::settings::OldSlotPolicy;
use cutover::engine::{Engine, StageRequest};
use cutover::ports::{Slot, Weights};
use cutover::sim::{EcsFailure, Faults, NEW, OLD, Sim, StrategyKind, settings};

use crate::sim_support::block_on;

/// One poll: the longest pause between two polls of a wait (`engine::calls::POLL_MAX`,
/// 8 s) plus the poll's own reads.
const ONE_POLL: Duration = Duration::from_secs(9);

/// Stage NEW against a sim where ECS fails its rollout; the error, and how long after ECS
/// said so the run reported Failed.
fn stage_failing(seed: u64, failure: EcsFailure, policy: OldSlotPolicy) -> (Sim, String, Duration) {
    block_on(async {
        let faults = Faults {
            ecs_failure: Some(failure),
            ..Faults::default()
        };
        let sim = Sim::new(seed, faults, settings(StrategyKind::Canary, policy));
        let ci = sim.runner("ci", None);
        let err = Engine::new(&ci, &ci, &sim.settings, "ci")
            .stage(&StageRequest {
                spec: sim.spec(NEW),
            })
            .await
            .expect_err("a failed rollout fails the stage");
        let m = sim.metrics();
        let from = m.ecs_failed_at.expect("ECS reported the failure");
        let to = m.failed_reported_at.expect("the run reported Failed");
        (
            sim,
            err.to_string(),
            Duration::from_millis(to.saturating_sub(from)),
        )
    })
}

/// Before the fix, a circuit-breaker FAILED rollout waited out the whole stabilize deadline
/// (300 s here, 10 min by default) since readiness only looked for `Completed`.
#[test]
fn regression_circuit_breaker_failed_rollout_waited_out_the_stabilize_deadline() {
    let (sim, message, lag) = stage_failing(7, EcsFailure::CircuitBreaker, OldSlotPolicy::KeepWarm);
    assert!(
        lag <= ONE_POLL,
        "Failed came {lag:?} after ECS said FAILED: {message}"
    );
    assert!(message.contains("rollout Failed"), "{message}");
    assert!(message.contains("deployment failed"), "{message}");
    assert_eq!(sim.weights(), Weights::all_on(Slot::Blue));
    assert_eq!(sim.desired_on(Slot::Green), 0);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

/// Tasks that cannot pull their image, exit at once or cannot be placed: the same, quoting
/// what ECS said; production untouched and the idle slot back to what it ran.
#[test]
fn failed_tasks_and_unplaceable_tasks_are_terminal_within_one_poll() {
    for (failure, quote) in [
        (EcsFailure::CannotPull, "CannotPullContainerError"),
        (
            EcsFailure::EssentialExit,
            "Essential container in task exited",
        ),
        (EcsFailure::Unplaceable, "was unable to place a task"),
    ] {
        for policy in [OldSlotPolicy::KeepWarm, OldSlotPolicy::ScaleToZero] {
            for seed in 0..20 {
                let (sim, message, lag) = stage_failing(seed, failure, policy);
                assert!(lag <= ONE_POLL, "{failure:?}: {lag:?}: {message}");
                assert!(message.contains(quote), "{failure:?}: {message}");
                assert_eq!(sim.weights(), Weights::all_on(Slot::Blue));
                assert_eq!(sim.version_on(Slot::Blue), Some(cutover::sim::version(OLD)));
                // Green ran nothing before the stage: its failing tasks are stopped.
                assert_eq!(sim.desired_on(Slot::Green), 0, "{failure:?}");
                assert!(sim.violations().is_empty(), "{:?}", sim.violations());
            }
        }
    }
}
