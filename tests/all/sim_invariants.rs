//! The invariant checker must catch a broken engine: each test drives the simulated ports
//! the way a buggy engine would and expects the matching violation. A checker that cannot
//! fail would let every property test pass.

use std::time::Duration;

use cutover::config::settings::OldSlotPolicy;
use cutover::ports::{
    Clock, Compute, Lock, Release, Reporter, Slot, Status, StatusEvent, Store, Traffic, Weights,
};
use cutover::sim::{BLUE_ALARM, Faults, NEW, Sim, SimCloud, StrategyKind, settings, version};

use crate::sim_support::block_on;

fn sim() -> Sim {
    Sim::new(
        5,
        Faults::default(),
        settings(StrategyKind::AllAtOnce, OldSlotPolicy::KeepWarm),
    )
}

/// A runner that holds the lock, as a (buggy) engine would after acquiring it.
async fn locked(sim: &Sim, name: &str) -> SimCloud {
    let cloud = sim.runner(name, None);
    let now = cloud.now();
    let lock = Lock {
        owner: name.into(),
        token: format!("{name}-token"),
        acquired_at: now,
        expires_at: now + 3_600_000,
    };
    cloud.create_lock(&lock).await.expect("lock is free");
    cloud
}

/// NEW running healthy on green (not validated); returns its task definition id.
async fn new_on_green(cloud: &SimCloud, sim: &Sim) -> String {
    let td = cloud
        .register_task_definition(&sim.spec(NEW))
        .await
        .unwrap()
        .id;
    cloud.update_slot(Slot::Green, &td, 2).await.unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
    td
}

fn assert_caught(sim: &Sim, invariant: &str) {
    let v = sim.violations();
    assert!(
        v.iter().any(|v| v.contains(invariant)),
        "expected a {invariant} violation, got {v:?}"
    );
}

#[test]
fn invariant_checker_catches_traffic_on_a_slot_that_never_passed_validation() {
    block_on(async {
        let sim = sim();
        let bad = locked(&sim, "bad").await;
        new_on_green(&bad, &sim).await;
        bad.set_production_weights(Weights::split(Slot::Green, 10))
            .await
            .unwrap();
        assert_caught(&sim, "I1:");
        sim.check_end_state(None);
        assert_caught(&sim, "end: I2");
    });
}

#[test]
fn invariant_checker_catches_a_write_without_the_lock() {
    block_on(async {
        let sim = sim();
        let bad = sim.runner("bad", None);
        bad.register_task_definition(&sim.spec(NEW)).await.unwrap();
        assert_caught(&sim, "I5:");
    });
}

#[test]
fn invariant_checker_catches_scaling_down_the_slot_that_carries_traffic() {
    block_on(async {
        let sim = sim();
        let bad = locked(&sim, "bad").await;
        bad.update_slot(Slot::Blue, "web:1", 0).await.unwrap();
        assert_caught(&sim, "I3: blue replaced or scaled down while carrying 100%");
    });
}

#[test]
fn invariant_checker_catches_a_write_before_the_weights_are_read_back() {
    block_on(async {
        let sim = sim();
        let bad = locked(&sim, "bad").await;
        bad.set_production_weights(Weights::all_on(Slot::Blue))
            .await
            .unwrap();
        bad.point_test_listener(Slot::Green).await.unwrap();
        assert_caught(&sim, "before reading back its weight change");
        assert_eq!(
            sim.violations().len(),
            1,
            "a read-back clears it: {:?}",
            sim.violations()
        );
        bad.production_weights().await.unwrap();
        bad.point_test_listener(Slot::Green).await.unwrap();
        assert_eq!(sim.violations().len(), 1);
    });
}

#[test]
fn invariant_checker_catches_promoted_recorded_before_the_bake() {
    block_on(async {
        let sim = sim();
        let bad = locked(&sim, "bad").await;
        let td = new_on_green(&bad, &sim).await;
        sim.mark_validated(&td);
        bad.set_production_weights(Weights::all_on(Slot::Green))
            .await
            .unwrap();
        bad.production_weights().await.unwrap();
        let release = Release {
            version: version(NEW),
            digest: sim.spec(NEW).digest,
            task_definition: td,
            slot: Slot::Green,
            by: "bad".into(),
            at: bad.now(),
            status: Status::Promoted,
            fingerprint: sim.spec(NEW).fingerprint,
            promoted_at: None,
            transitions: Vec::new(),
            rehearsal: None,
            train: Vec::new(),
            train_id: String::new(),
        };
        bad.record(&release, 10).await.unwrap();
        assert_caught(&sim, "I9:");
    });
}

#[test]
fn invariant_checker_catches_a_false_success_and_a_failure_left_off_the_last_good_release() {
    block_on(async {
        let sim = sim();
        let bad = locked(&sim, "bad").await;
        let event = |status| StatusEvent {
            status,
            version: Some(version(NEW)),
            slot: Some(Slot::Green),
            detail: String::new(),
        };
        bad.status(&event(Status::Promoted));
        assert_caught(&sim, "I9: reported Promoted");
        let td = new_on_green(&bad, &sim).await;
        sim.mark_validated(&td);
        bad.set_production_weights(Weights::all_on(Slot::Green))
            .await
            .unwrap();
        bad.status(&event(Status::RolledBack));
        assert_caught(&sim, "I4:");
    });
}

#[test]
fn invariant_checker_catches_a_secret_in_output() {
    block_on(async {
        let sim = sim();
        let bad = sim.runner("bad", None);
        bad.notice(&format!("task definition: {}", sim.spec(NEW).content));
        assert_caught(&sim, "I10:");
        assert!(sim.spec(NEW).content.contains(&sim.secret()));
    });
}

#[test]
fn invariant_checker_catches_a_stage_failed_by_the_alarm_of_the_live_slot() {
    block_on(async {
        let sim = sim();
        let bad = sim.runner("bad", None);
        bad.status(&StatusEvent {
            status: Status::Failed,
            version: Some(version(NEW)),
            slot: Some(Slot::Green),
            detail: format!("Validating failed: alarm in ALARM: {BLUE_ALARM}"),
        });
        assert_caught(&sim, "I11:");
    });
}
