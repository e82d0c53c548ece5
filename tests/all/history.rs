//! The release history over a long life (issue 14): more releases than `[history] depth`,
//! plain rollbacks and `rollback --to` interleaved, stages that never got approved. After
//! every step the live release is still in the history, a plain rollback returns to the
//! release that was live before the current one (of those still good: a release rolled
//! back away from is no plain rollback's target, so a second `rollback` never brings a
//! failing release back), and `rollback --to` only accepts a release that once took
//! production traffic.

use cutover::config::settings::OldSlotPolicy;
use cutover::engine::{Engine, EngineError, StageRequest};
use cutover::ports::Status;
use cutover::sim::{Faults, Sim, SimCloud, StrategyKind, settings, version};

use crate::sim_support::block_on;

async fn stage(engine: &Engine<'_, SimCloud>, sim: &Sim, tag: &str) {
    sim.push_image(tag);
    engine
        .stage(&StageRequest {
            spec: sim.spec(tag),
        })
        .await
        .expect("stage");
}

fn live(sim: &Sim) -> String {
    let slot = sim.weights().live().expect("one slot carries production");
    sim.version_on(slot).expect("it runs a release").to_string()
}

#[test]
fn a_long_history_keeps_the_live_release_and_rolls_back_to_the_one_before() {
    block_on(async {
        let sim = Sim::new(
            41,
            Faults::default(),
            settings(StrategyKind::AllAtOnce, OldSlotPolicy::KeepWarm),
        );
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        // The good releases in the order they last became live: what rollbacks return to.
        let mut good = vec![live(&sim)];
        for n in 1..=18u32 {
            let tag = format!("v2.{n}.0");
            stage(&engine, &sim, &tag).await;
            if n % 3 == 0 {
                // Staged, never approved: the next stage replaces it on the idle slot.
                let err = engine.rollback(Some(&version(&tag))).await.unwrap_err();
                assert!(
                    matches!(&err, EngineError::Usage(m) if m.contains("never took production traffic")),
                    "{tag}: {err}"
                );
                continue;
            }
            engine.promote(&version(&tag)).await.expect("promote");
            good.push(tag.clone());
            if n % 4 == 0 {
                // A plain rollback: back to the release live before this one.
                let back = engine.rollback(None).await.expect("rollback");
                good.pop();
                let before = good.last().unwrap().clone();
                assert_eq!(back.version.map(|v| v.to_string()), Some(before.clone()));
                assert_eq!(live(&sim), before);
            }
            if n % 5 == 0 && good.len() > 3 {
                // `rollback --to` an older good release: it is live (newest), the release
                // it replaced is rolled back; a plain rollback then returns to the good
                // release live before those.
                let to = good[good.len() - 3].clone();
                engine.rollback(Some(&version(&to))).await.expect("--to");
                assert_eq!(live(&sim), to);
                good.pop();
                good.retain(|g| *g != to);
                good.push(to.clone());
                let back = engine.rollback(None).await.expect("rollback after --to");
                good.pop();
                let before = good.last().unwrap().clone();
                assert_eq!(back.version.map(|v| v.to_string()), Some(before.clone()));
                assert_eq!(live(&sim), before);
            }
            let history = sim.history();
            assert!(history.len() <= 10, "{} entries", history.len());
            let current = live(&sim);
            assert!(
                history
                    .iter()
                    .any(|r| r.version.to_string() == current && r.status == Status::Promoted),
                "{current} fell out of {:?}",
                history
                    .iter()
                    .map(|r| r.version.to_string())
                    .collect::<Vec<_>>()
            );
        }
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    });
}

/// A release recorded again without its rehearsal (a later status written from a copy made
/// before the rehearsal, e.g. RolledBack) keeps the rehearsal it passed: `[versions]
/// require_rehearsal_in` and `status` read it from there.
#[test]
fn a_release_recorded_again_keeps_the_rehearsal_it_passed() {
    use cutover::ports::{Digest, Rehearsal, Release, Slot};
    let release = |status: Status, rehearsal: Option<Rehearsal>| Release {
        version: version("v1.1.0"),
        digest: Digest("sha256:ab".into()),
        task_definition: "web:2".into(),
        slot: Slot::Green,
        by: "ci".into(),
        at: 1_000,
        status,
        fingerprint: String::new(),
        promoted_at: Some(1_000),
        transitions: Vec::new(),
        rehearsal,
        train: Vec::new(),
        train_id: String::new(),
    };
    let passed = Rehearsal {
        to: version("v1.0.0"),
        back_ms: 6_200,
        forward_ms: 7_100,
        at: 2_000,
    };
    let mut history = Vec::new();
    cutover::history::record_release(
        &mut history,
        &release(Status::Promoted, Some(passed.clone())),
        10,
    );
    cutover::history::record_release(&mut history, &release(Status::RolledBack, None), 10);
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].status, Status::RolledBack);
    assert_eq!(history[0].rehearsal, Some(passed));
}
