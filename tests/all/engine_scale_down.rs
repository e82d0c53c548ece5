//! `[cleanup] scale_down_failed`: a release that failed validation or was rolled back ends
//! the run at 0 tasks on its slot; the live slot and a warm previous release never do.

use std::time::Duration;

use cutover::config::settings::OldSlotPolicy;
use cutover::engine::{Engine, EngineError, StageRequest};
use cutover::ports::{Compute, Slot, Weights};
use cutover::sim::{Faults, NEW, OLD, Sim, SimCloud, StrategyKind, settings, version};

use crate::sim_support::{block_on, ship_new};

fn world(faults: Faults, keep_failed: bool) -> Sim {
    let mut s = settings(StrategyKind::Canary, OldSlotPolicy::KeepWarm);
    s.cleanup.scale_down_failed = !keep_failed;
    Sim::new(18, faults, s)
}

async fn stage(engine: &Engine<'_, SimCloud>, sim: &Sim, tag: &str) -> Result<(), EngineError> {
    let request = StageRequest {
        spec: sim.spec(tag),
    };
    engine.stage(&request).await.map(|_| ())
}

fn assert_clean(sim: &Sim) {
    let v = sim.violations();
    assert!(v.is_empty(), "{v:?}\n{}", sim.log().join("\n"));
}

#[test]
fn a_release_that_fails_validation_ends_at_zero_tasks() {
    block_on(async {
        let sim = world(
            Faults {
                bad_probe: true,
                ..Faults::default()
            },
            false,
        );
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await.unwrap_err();
        assert_eq!(sim.version_on(Slot::Green), Some(version(NEW)));
        assert_eq!(sim.desired_on(Slot::Green), 0, "the failed release");
        assert_eq!(sim.desired_on(Slot::Blue), 2, "the live slot is untouched");
        assert_eq!(sim.weights(), Weights::all_on(Slot::Blue));
        assert!(
            sim.log().iter().any(|l| l.contains("scaled to 0 tasks")),
            "the run says so"
        );
        // The next stage brings the slot back to the live slot's capacity.
        assert_clean(&sim);
    });
}

#[test]
fn keep_failed_leaves_a_failed_release_running_for_debugging() {
    block_on(async {
        let sim = world(
            Faults {
                bad_probe: true,
                ..Faults::default()
            },
            true,
        );
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await.unwrap_err();
        assert_eq!(sim.desired_on(Slot::Green), 2);
        assert_clean(&sim);
    });
}

/// The release the bake rolled back from is scaled down; the slot now live (the previous
/// release, warm) keeps every task.
#[test]
fn a_release_rolled_back_during_its_bake_ends_at_zero_and_the_live_slot_keeps_its_tasks() {
    block_on(async {
        let sim = world(
            Faults {
                alarm_at: Some(Duration::from_secs(1)),
                ..Faults::default()
            },
            false,
        );
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await.unwrap();
        let err = engine.promote(&version(NEW)).await.unwrap_err();
        assert!(matches!(err, EngineError::RolledBack { .. }), "{err:?}");
        assert_eq!(sim.weights(), Weights::all_on(Slot::Blue));
        assert_eq!(sim.desired_on(Slot::Green), 0, "rolled away from");
        assert_eq!(sim.desired_on(Slot::Blue), 2, "live");
        sim.check_end_state(Some(&version(OLD)));
        assert_clean(&sim);
    });
}

/// `cutover rollback` from a promoted release: the slot it leaves holds the release rolled
/// back, scaled to 0; a second rollback never needs it (it was rolled back away from).
#[test]
fn a_manual_rollback_scales_the_release_it_leaves_to_zero() {
    block_on(async {
        let sim = world(Faults::default(), false);
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await.unwrap();
        engine.promote(&version(NEW)).await.unwrap();
        assert_eq!(sim.desired_on(Slot::Blue), 2, "kept warm after the promote");
        engine.rollback(None).await.unwrap();
        assert_eq!(sim.weights(), Weights::all_on(Slot::Blue));
        assert_eq!(sim.desired_on(Slot::Blue), 2, "now live");
        assert_eq!(sim.desired_on(Slot::Green), 0, "the release rolled back");
        sim.check_end_state(Some(&version(OLD)));
        assert_clean(&sim);
    });
}

/// A stage whose release never came up already sets the idle slot back to the warm
/// previous release: the scale-down must not touch that (it runs another release).
#[test]
fn a_stage_that_never_came_up_keeps_the_warm_previous_release() {
    block_on(async {
        let sim = world(
            Faults {
                never_healthy: true,
                ..Faults::default()
            },
            false,
        );
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        // v1.0.5 (healthy) live on green, OLD kept warm on blue.
        sim.push_image("v1.0.5");
        stage(&engine, &sim, "v1.0.5").await.unwrap();
        engine.promote(&version("v1.0.5")).await.unwrap();
        // NEW never gets healthy on blue: blue is set back to OLD, warm, and stays so.
        stage(&engine, &sim, NEW).await.unwrap_err();
        assert_eq!(sim.version_on(Slot::Blue), Some(version(OLD)));
        assert_eq!(sim.desired_on(Slot::Blue), 2);
        assert_eq!(sim.desired_on(Slot::Green), 2, "live");
        assert!(!sim.log().iter().any(|l| l.contains("scaled to 0 tasks")));
        assert_clean(&sim);
    });
}

/// A rollback away from a release whose slot someone already scaled to 0 (the outage it
/// is called for): nothing is left to scale down, so the run writes nothing more to that
/// slot and does not report a scale-down that did not happen.
#[test]
fn a_rollback_from_a_release_already_at_zero_does_not_scale_it_down_again() {
    block_on(async {
        let sim = world(Faults::default(), false);
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        ship_new(&sim, &engine).await;
        let new_td = sim
            .history()
            .into_iter()
            .find(|r| r.version == version(NEW))
            .expect("NEW in the history")
            .task_definition;
        sim.runner("hand", None)
            .update_slot(Slot::Green, &new_td, 0)
            .await
            .expect("scaled to 0 by hand");
        let from = sim.log().len();
        engine.rollback(None).await.unwrap();
        assert_eq!(sim.weights(), Weights::all_on(Slot::Blue));
        let after = &sim.log()[from..];
        assert!(
            !after
                .iter()
                .any(|l| l.contains(" ci update_slot") || l.contains("scaled to 0 tasks")),
            "{after:#?}"
        );
        assert_eq!(sim.desired_on(Slot::Green), 0);
    });
}
