//! A rollback trusts the previous release's slot only when it is really warm (issue 19):
//! someone scaled it down, stopped its tasks, or its targets fail health checks — then the
//! cold path (scale up, wait, validate) is the right answer, and production traffic never
//! moves onto a slot below capacity or with unhealthy targets (invariant I14, checked on
//! every weight write).

use cutover::config::settings::OldSlotPolicy;
use cutover::engine::{Engine, EngineError, RollbackPath, StageRequest};
use cutover::ports::{Slot, Weights};
use cutover::sim::{Degradation, Faults, NEW, OLD, Sim, StrategyKind, settings, version};

use crate::sim_support::block_on;

/// OLD on blue (kept warm), NEW promoted on green, then `how` done to blue, then a rollback.
fn rollback_after(how: Degradation) -> (Sim, Result<RollbackPath, EngineError>) {
    let sim = Sim::new(
        51,
        Faults::default(),
        settings(StrategyKind::AllAtOnce, OldSlotPolicy::KeepWarm),
    );
    let result = block_on(async {
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        engine
            .stage(&StageRequest {
                spec: sim.spec(NEW),
            })
            .await
            .expect("stage");
        engine.promote(&version(NEW)).await.expect("promote");
        assert_eq!(sim.weights(), Weights::all_on(Slot::Green));
        sim.degrade(Slot::Blue, how);
        engine.rollback(None).await.map(|o| o.path)
    });
    (sim, result)
}

#[test]
fn a_warm_slot_scaled_down_by_someone_else_is_brought_back_to_capacity_first() {
    let (sim, result) = rollback_after(Degradation::ScaledDown);
    assert_eq!(result.expect("rollback"), RollbackPath::Cold);
    assert_eq!(sim.weights(), Weights::all_on(Slot::Blue));
    assert_eq!(
        sim.desired_on(Slot::Blue),
        sim.desired_on(Slot::Green).max(2)
    );
    assert_eq!(sim.version_on(Slot::Blue), Some(version(OLD)));
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[test]
fn a_warm_slot_whose_tasks_were_stopped_takes_the_cold_path() {
    let (sim, result) = rollback_after(Degradation::TasksStopped);
    assert_eq!(result.expect("rollback"), RollbackPath::Cold);
    assert_eq!(sim.weights(), Weights::all_on(Slot::Blue));
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

/// Unhealthy targets on the previous slot: no flip onto them. The same task definition at
/// the same count is no change to ECS, so the slot stays unhealthy and the rollback fails
/// honestly, with production still on the live release.
#[test]
fn a_warm_slot_with_unhealthy_targets_never_gets_production_traffic() {
    let (sim, result) = rollback_after(Degradation::TargetsUnhealthy);
    assert!(
        !matches!(result, Ok(RollbackPath::Fast)),
        "flipped onto unhealthy targets: {result:?}"
    );
    assert!(
        sim.violations().iter().all(|v| !v.contains("I14")),
        "{:?}",
        sim.violations()
    );
}
