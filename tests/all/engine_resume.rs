//! A promote killed mid-step, then re-run, holds the step it was in again (issue 15.2).

use std::time::Duration;

use cutover::config::settings::OldSlotPolicy;
use cutover::engine::{Engine, StageRequest};
use cutover::ports::{Slot, Weights};
use cutover::sim::{Faults, NEW, Sim, StrategyKind, settings, version};

use crate::sim_support::block_on;

/// Virtual milliseconds and green's weight of every weight write that applied, from the log.
fn green_writes(sim: &Sim, runner: &str) -> Vec<(u64, u8)> {
    sim.log()
        .iter()
        .filter(|l| {
            l.contains(&format!(" {runner} set_production_weights(")) && l.contains("-> Ok")
        })
        .filter_map(|l| {
            let at = l.split_whitespace().next()?.parse().ok()?;
            let green = l.split("green ").nth(1)?.split('%').next()?.parse().ok()?;
            Some((at, green))
        })
        .collect()
}

/// A crash 10 s into the canary step, then a re-run of promote, went straight to 100%: the
/// resume took only the steps above the weight already on the new slot.
#[test]
fn regression_rerun_after_a_crash_mid_canary_went_straight_to_100() {
    for policy in [OldSlotPolicy::KeepWarm, OldSlotPolicy::ScaleToZero] {
        block_on(async {
            let sim = Sim::new(5, Faults::default(), settings(StrategyKind::Canary, policy));
            let hold = Duration::from_secs(120);
            let ci = sim.runner("ci", None);
            let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
            engine
                .stage(&StageRequest {
                    spec: sim.spec(NEW),
                })
                .await
                .expect("stage");
            // kill -9 of the runner 10 s into the 10% step: the future is dropped.
            let killed = async {
                while sim.weights() != Weights::split(Slot::Green, 10) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                tokio::time::sleep(Duration::from_secs(10)).await;
            };
            let v = version(NEW);
            tokio::select! {
                r = engine.promote(&v) => panic!("promote ended before the kill: {r:?}"),
                () = killed => {}
            }
            assert_eq!(sim.weights(), Weights::split(Slot::Green, 10));
            let ops = sim.runner("ops", None);
            Engine::new(&ops, &ops, &sim.settings, "ops")
                .unlock()
                .await
                .expect("unlock");
            let rerun = sim.runner("rerun", None);
            Engine::new(&rerun, &rerun, &sim.settings, "rerun")
                .promote(&version(NEW))
                .await
                .expect("the re-run promotes");
            let writes = green_writes(&sim, "rerun");
            let first = writes.first().expect("the re-run set weights").0;
            let above = writes
                .iter()
                .find(|(_, green)| *green > 10)
                .expect("the re-run went to 100%");
            assert!(
                Duration::from_millis(above.0 - first) >= hold,
                "{policy:?}: above 10% {} ms after the re-run's first weight write; writes {writes:?}",
                above.0 - first
            );
            assert_eq!(sim.weights(), Weights::all_on(Slot::Green));
            assert!(sim.violations().is_empty(), "{:?}", sim.violations());
        });
    }
}

/// A promote killed during its bake, then a stage of another version (which moved the test
/// listener and failed its probes), then a re-run: the resumed bake probed the other
/// slot's failed release and the automatic rollback put production on it, a release that
/// never passed validation (found in review: AllAtOnce, scale-to-zero, v1.1.0 failing its
/// probes: deploy v1.2.0 killed at call 74, stage v1.1.0, deploy v1.2.0).
#[test]
fn regression_resumed_bake_probed_the_other_slot_and_rolled_back_onto_a_failed_release() {
    block_on(async {
        let faults = Faults {
            bad_probe: true,
            ..Faults::default()
        };
        let sim = Sim::new(
            9,
            faults,
            settings(StrategyKind::AllAtOnce, OldSlotPolicy::ScaleToZero),
        );
        let v12 = "v1.2.0";
        sim.push_image(v12);
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        let request = StageRequest {
            spec: sim.spec(v12),
        };
        let killed = async {
            while sim.weights() != Weights::all_on(Slot::Green) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
        };
        tokio::select! {
            r = engine.deploy(&request) => panic!("deploy ended before the kill: {r:?}"),
            () = killed => {}
        }
        let ops = sim.runner("ops", None);
        let ops = Engine::new(&ops, &ops, &sim.settings, "ops");
        ops.unlock().await.expect("unlock");
        // Refused now: staging would replace the release a failing resume falls back to.
        // `plan` and `--dry-run` refuse the same way.
        let planned = ops.plan(&sim.spec(NEW)).await;
        assert!(
            matches!(planned, Err(cutover::engine::EngineError::Usage(_))),
            "{planned:?}"
        );
        let refused = ops
            .stage(&StageRequest {
                spec: sim.spec(NEW),
            })
            .await
            .expect_err("a stage over an interrupted promote");
        assert!(
            matches!(refused, cutover::engine::EngineError::Usage(_)),
            "{refused}"
        );
        assert_eq!(sim.version_on(Slot::Blue), Some(version(cutover::sim::OLD)));
        let rerun = sim.runner("rerun", None);
        let result = Engine::new(&rerun, &rerun, &sim.settings, "rerun")
            .deploy(&request)
            .await;
        let live = sim.weights().live().expect("not split");
        assert_ne!(
            sim.version_on(live),
            Some(version(NEW)),
            "production on the failed release: {result:?}"
        );
        assert_eq!(sim.version_on(live), Some(version(v12)), "{result:?}");
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    });
}
