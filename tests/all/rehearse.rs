//! Rollback rehearsal (issue 18.1): after the bake, production goes back to the previous
//! release on its warm slot and forward again, each direction read back and probed; the
//! simulation's invariants are checked after every call throughout.

use std::time::Duration;

use cutover::config::settings::{OldSlotPolicy, ServiceSettings};
use cutover::engine::{Engine, EngineError, StageRequest};
use cutover::ports::{Slot, Status, Weights};
use cutover::sim::{
    AwsErrorAt, Degradation, Faults, NEW, OLD, Profile, Scenario, Sim, StrategyKind, run_as,
    settings, version,
};

use crate::sim_support::{assert_clean, block_on};

fn rehearsing(strategy: StrategyKind) -> ServiceSettings {
    let mut s = settings(strategy, OldSlotPolicy::KeepWarm);
    s.validation.rehearse_rollback = Some(true);
    s
}

async fn stage(sim: &Sim, engine: &Engine<'_, cutover::sim::SimCloud>) {
    engine
        .stage(&StageRequest {
            spec: sim.spec(NEW),
        })
        .await
        .expect("stage");
}

fn new_entry(sim: &Sim) -> cutover::ports::Release {
    sim.history()
        .into_iter()
        .find(|r| r.version == version(NEW))
        .expect("the new release is in history")
}

#[test]
fn a_rehearsal_goes_back_and_forth_and_is_kept_in_history() {
    let sim = block_on(async {
        let sim = Sim::new(3, Faults::default(), rehearsing(StrategyKind::Canary));
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&sim, &engine).await;
        engine.promote(&version(NEW)).await.expect("promote");
        sim
    });
    assert_eq!(sim.weights(), Weights::all_on(Slot::Green));
    let entry = new_entry(&sim);
    assert_eq!(entry.status, Status::Promoted);
    let r = entry.rehearsal.expect("the rehearsal is recorded");
    assert_eq!(r.to, version(OLD));
    // Each way: a read-back, the test listener's settle and three probes 5 s apart, in a
    // calm world well under a minute.
    let each_way = 10_000..60_000;
    assert!(
        each_way.contains(&r.back_ms) && each_way.contains(&r.forward_ms),
        "{r:?}"
    );
    let went_back = sim
        .log()
        .iter()
        .any(|l| l.contains("set_production_weights(blue 100% / green 0%)"));
    assert!(went_back, "production never went back to blue");
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[test]
fn a_previous_slot_that_is_not_warm_is_skipped_with_a_notice() {
    let sim = block_on(async {
        let sim = Sim::new(4, Faults::default(), rehearsing(StrategyKind::AllAtOnce));
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&sim, &engine).await;
        sim.degrade(Slot::Blue, Degradation::ScaledDown);
        engine.promote(&version(NEW)).await.expect("promote");
        sim
    });
    assert_eq!(sim.weights(), Weights::all_on(Slot::Green));
    assert_eq!(new_entry(&sim).rehearsal, None);
    let notice = sim
        .log()
        .into_iter()
        .find(|l| l.contains("NOTICE rollback rehearsal skipped"));
    let notice = notice.expect("a notice says the rehearsal was skipped");
    assert!(notice.contains("does not run v1.0.0 warm"), "{notice}");
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

/// The way back is refused (the role may not move production back): production stays on
/// the new release, which just passed its bake, and the run fails saying what failed.
#[test]
fn a_rehearsal_that_cannot_go_back_leaves_production_on_the_new_release_and_fails() {
    let faults = Faults {
        aws_errors: vec![AwsErrorAt {
            op: "set_production_weights(blue 100%",
            from: Duration::ZERO,
            code: "AccessDeniedException",
            lasting: true,
        }],
        ..Faults::default()
    };
    let (sim, result) = block_on(async {
        let sim = Sim::new(5, faults, rehearsing(StrategyKind::AllAtOnce));
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&sim, &engine).await;
        let result = engine.promote(&version(NEW)).await;
        (sim, result)
    });
    let err = result.expect_err("a failed rehearsal fails the run");
    assert!(matches!(err, EngineError::Failed { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("rollback rehearsal to v1.0.0 failed"),
        "{text}"
    );
    assert!(text.contains("production is back on v1.1.0"), "{text}");
    assert_eq!(sim.weights(), Weights::all_on(Slot::Green));
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

/// Coming forward, the new release's slot is no longer healthy: production stays on the
/// previous release, which just answered its probes, and the new one is recorded RolledBack.
#[test]
fn a_rehearsal_that_cannot_come_forward_leaves_production_on_the_previous_release() {
    let (sim, result) = block_on(async {
        let sim = Sim::new(6, Faults::default(), rehearsing(StrategyKind::AllAtOnce));
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&sim, &engine).await;
        let watcher = async {
            while sim.weights() != Weights::all_on(Slot::Green) {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            while sim.weights() != Weights::all_on(Slot::Blue) {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            sim.degrade(Slot::Green, Degradation::TargetsUnhealthy);
        };
        let new = version(NEW);
        let (result, ()) = tokio::join!(engine.promote(&new), watcher);
        (sim, result)
    });
    let err = result.expect_err("a failed rehearsal fails the run");
    assert!(
        err.to_string().contains("coming forward to v1.1.0 failed"),
        "{err}"
    );
    assert_eq!(sim.weights(), Weights::all_on(Slot::Blue));
    assert_eq!(new_entry(&sim).status, Status::RolledBack);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

/// Every fault profile with the rehearsal on: crashes, races, flaky APIs, alarms during it;
/// the invariants hold after every call.
#[test]
fn rehearsals_under_every_fault_profile_keep_the_invariants() {
    let mut rehearsed = 0;
    for strategy in StrategyKind::ALL {
        let user = rehearsing(strategy);
        for seed in 0..Profile::ALL.len() as u64 * 2 {
            let scenario = Scenario {
                seed,
                strategy,
                profile: Profile::ALL[(seed % Profile::ALL.len() as u64) as usize],
            };
            let report = block_on(run_as(scenario, &user));
            assert_clean(&report);
            let passed = |l: &String| l.contains("NOTICE rollback rehearsal passed");
            rehearsed += usize::from(report.log.iter().any(passed));
        }
    }
    // Not a vacuous sweep: most promoted runs rehearsed.
    assert!(rehearsed >= 30, "only {rehearsed} runs rehearsed");
}

/// Found writing the sandbox story: a hotfix shipped away from an incident rehearsed its
/// rollback onto the failing release (production back onto an alarming slot) and failed
/// the hotfix for it. The rehearsal is skipped instead, and the hotfix stands (invariant 11).
#[test]
fn regression_a_hotfix_never_rehearses_onto_the_incident_it_left() {
    let faults = Faults {
        incident_at: Some(Duration::ZERO),
        ..Faults::default()
    };
    let (sim, result) = block_on(async {
        let sim = Sim::new(8, faults, rehearsing(StrategyKind::AllAtOnce));
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&sim, &engine).await;
        let result = engine.promote(&version(NEW)).await;
        (sim, result)
    });
    result.expect("the hotfix is promoted");
    assert_eq!(sim.weights(), Weights::all_on(Slot::Green));
    let skipped = sim
        .log()
        .into_iter()
        .find(|l| l.contains("NOTICE rollback rehearsal skipped"))
        .expect("a notice says the rehearsal was skipped");
    assert!(
        skipped.contains("had an alarm in ALARM when traffic left it"),
        "{skipped}"
    );
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}
