//! What runs where: history entries matched to slots, the slot a repair settles on, the
//! idle slot's count — checked where mutation testing (scripts/mutants.sh) found it
//! unchecked.

use std::time::Duration;

use cutover::engine::{Engine, StageRequest};
use cutover::ports::{Compute, Slot, Status, TaskSpec, Traffic, Weights};
use cutover::sim::{NEW, OLD, Sim, SimCloud, digest, version};

use crate::engine_mutants::{stage, timeline};
use crate::sim_support::{all_at_once, block_on};

/// NEW promoted on green, then staged again on blue under the same version with another
/// configuration (a new task definition, the same image): the history holds two entries
/// of NEW. A rollback marks rolled back the one production ran — matched by its task
/// definition and version — not the newer staging that merely shares its version.
#[test]
fn a_rollback_marks_rolled_back_the_entry_that_was_live_not_a_restaging_of_its_version() {
    block_on(async {
        let sim = all_at_once(Default::default());
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        engine.promote(&version(NEW)).await.expect("promote");
        let live_td = entry_of(&sim, NEW, Status::Promoted);
        let reconfigured = TaskSpec::new(
            version(NEW),
            digest(NEW),
            format!(
                r#"{{"image":"web@{}","environment":[{{"name":"LOG_LEVEL","value":"debug"}}]}}"#,
                digest(NEW)
            ),
        );
        engine
            .stage(&StageRequest { spec: reconfigured })
            .await
            .expect("stage again");
        let restaged_td = entry_of(&sim, NEW, Status::AwaitingApproval);
        assert_ne!(live_td, restaged_td);
        engine.rollback(None).await.expect("rollback");
        assert_eq!(sim.weights(), Weights::all_on(Slot::Blue));
        assert_eq!(sim.version_on(Slot::Blue), Some(version(OLD)));
        let statuses: Vec<(String, Status)> = sim
            .history()
            .into_iter()
            .filter(|r| r.version == version(NEW))
            .map(|r| (r.task_definition, r.status))
            .collect();
        assert!(
            statuses.contains(&(live_td.clone(), Status::RolledBack)),
            "{live_td} was live: {statuses:?}"
        );
    });
}

/// The task definition of `tag`'s history entry with `status`.
fn entry_of(sim: &Sim, tag: &str, status: Status) -> String {
    sim.history()
        .into_iter()
        .find(|r| r.version == version(tag) && r.status == status)
        .unwrap_or_else(|| panic!("no {tag} {status} in {:#?}", sim.history()))
        .task_definition
}

/// A first release (no release in the history ever passed its bake) whose shift stopped
/// midway: a rollback has no good release to return to, so it puts production on the slot
/// that already carries most of it — green at 75%, blue at 25% — and on blue, where
/// production was, when the split is even.
#[test]
fn an_interrupted_first_release_goes_back_to_the_slot_with_most_of_the_traffic() {
    for (green, back_to) in [(75, Slot::Green), (25, Slot::Blue), (50, Slot::Blue)] {
        block_on(async {
            let sim = all_at_once(Default::default());
            let ci = sim.runner("ci", None);
            let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
            stage(&engine, &sim, NEW).await;
            let never_promoted = sim
                .history()
                .into_iter()
                .filter(|r| r.version == version(NEW))
                .collect();
            sim.put_history(never_promoted);
            sim.runner("hand", None)
                .set_production_weights(Weights::split(Slot::Green, green))
                .await
                .expect("hand-made split");
            engine.rollback(None).await.expect("rollback");
            assert_eq!(
                sim.weights(),
                Weights::all_on(back_to),
                "{green}% on green at first"
            );
        });
    }
}

/// NEW staged on green, then green scaled to 0 by hand (to save money over a weekend, say):
/// staging NEW again reuses its task definition and brings green back to the live slot's
/// count before it validates — it does not wait for tasks nobody asked for.
#[test]
fn staging_again_onto_a_slot_scaled_to_zero_brings_it_back_to_capacity() {
    block_on(async {
        let sim = all_at_once(Default::default());
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        let staged_td = staged_then_scaled_to_zero(&sim, &engine).await;
        let outcome = engine
            .stage(&StageRequest {
                spec: sim.spec(NEW),
            })
            .await
            .expect("stage again");
        assert_eq!(outcome.release.task_definition, staged_td, "reused");
        assert_eq!(sim.desired_on(Slot::Green), sim.desired_on(Slot::Blue));
        assert_eq!(sim.desired_on(Slot::Green), 2);
    });
}

/// NEW staged on green, then green scaled to 0 by hand: a promote finds no task to send
/// traffic to, so it moves none — a slot asked to run nothing is not ready for production,
/// even once its last tasks have drained (nothing pending, no target at all, so none
/// unhealthy).
#[test]
fn a_promote_onto_a_staged_slot_scaled_to_zero_moves_no_traffic() {
    block_on(async {
        let sim = all_at_once(Default::default());
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        staged_then_scaled_to_zero(&sim, &engine).await;
        // Past the target group's deregistration delay (30 s): green's targets are gone.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let err = engine.promote(&version(NEW)).await.unwrap_err();
        assert!(err.to_string().contains("is not healthy"), "{err}");
        assert_eq!(sim.weights(), Weights::all_on(Slot::Blue));
    });
}

/// NEW staged on green, then green scaled to 0 by hand; returns NEW's task definition.
async fn staged_then_scaled_to_zero(sim: &Sim, engine: &Engine<'_, SimCloud>) -> String {
    stage(engine, sim, NEW).await;
    let staged_td = entry_of(sim, NEW, Status::AwaitingApproval);
    sim.runner("hand", None)
        .update_slot(Slot::Green, &staged_td, 0)
        .await
        .expect("scaled to 0 by hand");
    staged_td
}

/// Production's own slot scaled to 0 by hand (the service shut down over a weekend, say):
/// nothing runs to copy a task count from, so a stage brings the new release up with one
/// task, as on a fresh service — not with the live slot's zero, which never turns ready.
#[test]
fn a_stage_while_production_is_scaled_to_zero_runs_one_task() {
    block_on(async {
        let sim = all_at_once(Default::default());
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        let hand = sim.runner("hand", None);
        let live_td = hand
            .read_slot(Slot::Blue)
            .await
            .expect("read")
            .task_definition
            .expect("blue runs OLD")
            .id;
        hand.update_slot(Slot::Blue, &live_td, 0)
            .await
            .expect("scaled to 0 by hand");
        let outcome = engine
            .stage(&StageRequest {
                spec: sim.spec(NEW),
            })
            .await
            .expect("stage");
        assert_eq!(outcome.plan.desired, 1);
        assert_eq!(sim.desired_on(Slot::Green), 1);
    });
}

/// What a stage says when it starts (the job summary's and the deployment's first line):
/// the slot it stages on, with how many tasks, whether it registers a task definition, and
/// how long it should and may take.
#[test]
fn a_stage_says_where_it_stages_with_how_many_tasks_and_how_long_it_may_take() {
    block_on(async {
        let sim = all_at_once(Default::default());
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        let first = timeline(&sim, "ci").into_iter().next().expect("a status");
        assert!(
            first
                .starts_with("Staging onto green with 2 task(s), registering a task definition; ~")
                && first.contains("s expected, at most "),
            "{first}"
        );
    });
}
