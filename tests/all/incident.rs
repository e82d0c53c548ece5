//! The bad day (issue 14): the live release is failing, or the one just promoted starts to.
//! Alarms belong to a slot or to the whole service; nothing that moves traffic away from a
//! slot waits on or fails because of that slot's alarms (invariant 11).

use std::time::Duration;

use cutover::config::settings::OldSlotPolicy;
use cutover::engine::{Engine, EngineError, RollbackPath, StageRequest};
use cutover::ports::{Slot, Weights};
use cutover::sim::{Faults, NEW, OLD, Sim, SimCloud, StrategyKind, settings, version};

use crate::sim_support::block_on;

/// A world with these faults, and the runner `ci` in it.
fn world(faults: Faults, policy: OldSlotPolicy) -> (Sim, SimCloud) {
    let sim = Sim::new(14, faults, settings(StrategyKind::Canary, policy));
    let ci = sim.runner("ci", None);
    (sim, ci)
}

async fn stage(engine: &Engine<'_, SimCloud>, sim: &Sim) -> Result<(), EngineError> {
    let request = StageRequest {
        spec: sim.spec(NEW),
    };
    engine.stage(&request).await.map(|_| ())
}

/// NEW staged by the engine's runner, promoted when `promote`, then the clock at `then`
/// from the start of the run.
async fn ship(engine: &Engine<'_, SimCloud>, sim: &Sim, promote: bool, then: Duration) {
    let start = tokio::time::Instant::now();
    stage(engine, sim).await.expect("stage");
    if promote {
        engine.promote(&version(NEW)).await.expect("promote");
    }
    tokio::time::sleep_until(start + then).await;
}

fn logged(sim: &Sim, needle: &str) -> bool {
    sim.log().iter().any(|l| l.contains(needle))
}

fn assert_clean(sim: &Sim) {
    let v = sim.violations();
    assert!(v.is_empty(), "{v:?}\n{}", sim.log().join("\n"));
}

/// Staging the hotfix failed validation with "alarm in ALARM: web-blue-5xx": the alarm of
/// the live slot, the very release the hotfix replaces.
#[test]
fn a_hotfix_stages_while_the_live_slot_alarm_fires() {
    block_on(async {
        let incident = Faults {
            incident_at: Some(Duration::ZERO),
            ..Faults::default()
        };
        let (sim, ci) = world(incident, OldSlotPolicy::KeepWarm);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim)
            .await
            .expect("the live slot's alarm is no gate for staging on the idle slot");
        assert!(
            logged(
                &sim,
                "web-blue-5xx is in ALARM, not a gate for staging on green"
            ),
            "the timeline says why the firing alarm was not a gate"
        );
        engine
            .promote(&version(NEW))
            .await
            .expect("the hotfix is promoted away from the failing release");
        assert_eq!(sim.weights(), Weights::all_on(Slot::Green));
        assert_clean(&sim);
    });
}

/// The first shift step of a promote away from a failing release read every alarm of the
/// service, found the live slot's, and moved traffic back onto the failing release.
#[test]
fn promote_away_from_an_alarming_slot_says_so() {
    block_on(async {
        let incident = Faults {
            incident_at: Some(Duration::from_secs(600)),
            ..Faults::default()
        };
        let (sim, ci) = world(incident, OldSlotPolicy::KeepWarm);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim)
            .await
            .expect("staged before the incident");
        // The approval comes while v1.0.0 is failing.
        tokio::time::sleep(Duration::from_secs(660)).await;
        engine
            .promote(&version(NEW))
            .await
            .expect("promoting away from the alarming slot");
        assert!(
            logged(
                &sim,
                "traffic is moving away from blue, whose alarm web-blue-5xx is in ALARM"
            ),
            "the Shifting step says so"
        );
        assert_eq!(sim.weights(), Weights::all_on(Slot::Green));
        assert_clean(&sim);
    });
}

/// v1.1.0 was promoted and then started failing; with scale-to-zero the rollback has to
/// bring v1.0.0 up and validate it, and that validation failed on v1.1.0's own alarm:
/// ROLLBACK FAILED, exactly when it was needed.
#[test]
fn a_rollback_is_not_blocked_by_the_alarm_of_the_slot_it_leaves() {
    block_on(async {
        let failing_later = Faults {
            alarm_at: Some(Duration::from_secs(1200)),
            ..Faults::default()
        };
        let (sim, ci) = world(failing_later, OldSlotPolicy::ScaleToZero);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim).await.expect("stage");
        engine.promote(&version(NEW)).await.expect("promote");
        assert_eq!(
            sim.desired_on(Slot::Blue),
            0,
            "scaled to zero after the bake"
        );
        tokio::time::sleep(Duration::from_secs(1260)).await;
        let outcome = engine
            .rollback(None)
            .await
            .expect("green's alarm is no gate for the rollback to blue");
        assert_eq!(outcome.path, RollbackPath::Cold);
        assert_eq!(sim.weights(), Weights::all_on(Slot::Blue));
        assert_eq!(sim.version_on(Slot::Blue), Some(version(OLD)));
        assert!(logged(&sim, "not a gate for the rollback to blue"));
        assert_clean(&sim);
    });
}

/// The same with `rollback --to`: validated, then baked with the slot's own alarms and the
/// service-wide one — which was still in ALARM from the release being left.
#[test]
fn a_rollback_to_a_release_is_not_failed_by_the_alarms_of_the_release_it_leaves() {
    block_on(async {
        let failing_later = Faults {
            alarm_at: Some(Duration::from_secs(1200)),
            service_alarm: true,
            ..Faults::default()
        };
        let (sim, ci) = world(failing_later, OldSlotPolicy::KeepWarm);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        ship(&engine, &sim, true, Duration::from_secs(1260)).await;
        engine
            .rollback(Some(&version(OLD)))
            .await
            .expect("neither green's alarm nor the SLO it burnt fail the rollback to v1.0.0");
        assert_eq!(sim.weights(), Weights::all_on(Slot::Blue));
        assert!(logged(
            &sim,
            "service-wide alarm web-slo was already in ALARM"
        ));
        assert_clean(&sim);
    });
}

/// A service-wide alarm burnt by the failing live release: the hotfix's promote is not
/// rolled back for it (it was in ALARM before any traffic moved).
#[test]
fn a_hotfix_promotes_while_the_incident_burns_the_service_wide_alarm() {
    block_on(async {
        let incident = Faults {
            incident_at: Some(Duration::ZERO),
            service_alarm: true,
            ..Faults::default()
        };
        let (sim, ci) = world(incident, OldSlotPolicy::KeepWarm);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        ship(&engine, &sim, true, Duration::ZERO).await;
        assert_eq!(sim.weights(), Weights::all_on(Slot::Green));
        assert_clean(&sim);
    });
}

/// The other side of the rule: the staged slot's own alarm still fails its validation.
#[test]
fn the_staged_slots_own_alarm_fails_its_stage() {
    block_on(async {
        let left_over = Faults {
            idle_alarm_until: Some(Duration::from_secs(3600)),
            ..Faults::default()
        };
        let (sim, ci) = world(left_over, OldSlotPolicy::KeepWarm);
        let err = stage(&Engine::new(&ci, &ci, &sim.settings, "ci"), &sim)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("in ALARM: web-green-5xx"), "{err}");
        assert_eq!(sim.weights(), Weights::all_on(Slot::Blue));
        assert_clean(&sim);
    });
}

/// With `gate_on_service_alarms`, validation gates on web-slo too: one already in ALARM
/// when it begins is the incident the hotfix is for (noted, no gate), one that goes into
/// ALARM while it runs fails it.
#[test]
fn gate_on_service_alarms_counts_what_fires_during_validation() {
    let gated = || {
        let mut s = settings(StrategyKind::Canary, OldSlotPolicy::KeepWarm);
        s.validation.gate_on_service_alarms = true;
        s
    };
    let stage_with = |faults: Faults| {
        block_on(async {
            let sim = Sim::new(14, faults, gated());
            let ci = sim.runner("ci", None);
            let result = stage(&Engine::new(&ci, &ci, &sim.settings, "ci"), &sim).await;
            assert_clean(&sim);
            (result, sim.log())
        })
    };
    let burning = Faults {
        incident_at: Some(Duration::ZERO),
        service_alarm: true,
        ..Faults::default()
    };
    let (result, log) = stage_with(burning);
    result.expect("the incident's own SLO alarm is no gate for its hotfix");
    assert!(
        log.iter()
            .any(|l| l.contains("service-wide alarm web-slo was already in ALARM"))
    );

    // The same run, with web-slo going into ALARM a second after validation began.
    let validating = log
        .iter()
        .find(|l| l.contains("STATUS Validating on green"))
        .and_then(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .expect("validation began");
    let outage = Faults {
        outage: Some((
            Duration::from_millis(validating + 1_000),
            Duration::from_secs(3600),
        )),
        ..Faults::default()
    };
    let err = stage_with(outage).0.unwrap_err();
    assert!(err.to_string().contains("in ALARM: web-slo"), "{err}");
}
