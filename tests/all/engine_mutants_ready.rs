//! When a slot counts as ready, and when ECS has failed its rollout: checked where mutation
//! testing (scripts/mutants.sh) found it unchecked.

use std::time::Duration;

use cutover::config::settings::OldSlotPolicy;
use cutover::engine::{Engine, StageRequest};
use cutover::ports::{Compute, Slot};
use cutover::sim::{EcsFailure, Faults, NEW, Sim, StrategyKind, settings};

use crate::engine_mutants::stage;
use crate::sim_support::{all_at_once, block_on};

/// `v1.2.0` staged onto green while someone redeploys green by hand with NEW, whose tasks
/// ECS cannot place: what ECS reports is the failure of NEW's deployment, not of the one
/// being staged. The stage waits for its own rollout and, at its deadline, reports the
/// slot as it really is (running NEW's task definition) — it does not tell the operator
/// that ECS failed the rollout of `v1.2.0`.
#[test]
fn a_failing_deployment_of_another_task_definition_is_not_taken_for_the_stages_own() {
    block_on(async {
        let sim = all_at_once(Faults {
            ecs_failure: Some(EcsFailure::Unplaceable),
            ..Faults::default()
        });
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        let hand = sim.runner("hand", None);
        let request = StageRequest {
            spec: sim.spec("v1.2.0"),
        };
        let (staged, other_td) = tokio::join!(engine.stage(&request), async {
            // Once the stage has updated green (its tasks take 5 s or more to start).
            tokio::time::sleep(Duration::from_secs(3)).await;
            let td = hand
                .register_task_definition(&sim.spec(NEW))
                .await
                .expect("registered by hand");
            hand.update_slot(Slot::Green, &td.id, 2)
                .await
                .expect("redeployed by hand");
            td.id
        });
        let text = staged.expect_err("green never ran v1.2.0").to_string();
        assert!(!text.contains("ECS failed the rollout"), "{text}");
        assert!(text.contains("timed out after 300s"), "{text}");
        assert!(
            text.contains(&format!("task definition {other_td}")),
            "the real state names what green runs: {text}"
        );
    });
}

/// Health checks make "healthy" predictable: a target registered since the last look
/// cannot pass before the checks' interval × threshold (30 s here). A stage sleeps through
/// that and then looks every 1.2 s, so it moves on (to the test listener) within about a
/// poll of the slot turning ready — not after a back-off grown to 8 s by then.
#[test]
fn a_stage_notices_its_slot_ready_within_a_poll_of_it_turning_ready() {
    for seed in 0..6 {
        block_on(async {
            let sim = Sim::new(
                seed,
                Faults::default(),
                settings(StrategyKind::AllAtOnce, OldSlotPolicy::KeepWarm),
            );
            let ci = sim.runner("ci", None);
            let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
            stage(&engine, &sim, NEW).await;
            let m = sim.metrics();
            let (ready, acted) = (m.ready_at.expect("ready"), m.ready_acted_at.expect("acted"));
            // A poll: a 1.2 s pause and two reads of 20-250 ms; then the listener's read.
            assert!(
                acted - ready <= 1_200 + 2 * 250 + 250,
                "seed {seed}: ready at {ready} ms, acted on at {acted} ms"
            );
        });
    }
}
