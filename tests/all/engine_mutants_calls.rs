//! How the engine retries a failing AWS call (full jitter, a bounded number of attempts
//! and of time spent pausing): checked where mutation testing (scripts/mutants.sh) found
//! it unchecked.

use std::time::Duration;

use cutover::config::settings::OldSlotPolicy;
use cutover::engine::{Engine, EngineError};
use cutover::ports::{Slot, Status, Weights};
use cutover::sim::{AwsErrorAt, Faults, NEW, Sim, StrategyKind, settings, version};

use crate::engine_mutants::{at, stage};
use crate::sim_support::{all_at_once, block_on};

/// `unlock` in a calm sim (seeded `seed`) where every read of the lock is answered with
/// `code`; returns its error and when each read was answered (sim ms).
fn unlock_with_lock_reads_failing(seed: u64, code: &'static str) -> (String, Vec<u64>) {
    block_on(async {
        let faults = Faults {
            aws_errors: vec![AwsErrorAt {
                op: "read_lock",
                from: Duration::ZERO,
                code,
                lasting: true,
            }],
            ..Faults::default()
        };
        let sim = Sim::new(
            seed,
            faults,
            settings(StrategyKind::AllAtOnce, OldSlotPolicy::KeepWarm),
        );
        let ops = sim.runner("ops", None);
        let err = Engine::new(&ops, &ops, &sim.settings, "ops")
            .unlock()
            .await
            .expect_err("the lock cannot be read");
        let reads = sim
            .log()
            .iter()
            .filter(|l| l.contains(" ops read_lock"))
            .map(|l| at(l))
            .collect();
        (err.to_string(), reads)
    })
}

/// A read that AWS answers with a 5xx every time (`unlock`'s read of the lock): tried 8
/// times in all, each retry after a pause drawn between zero and a ceiling that starts at
/// a quarter of a second and doubles (full jitter): never past its ceiling, so a blip
/// costs little, and growing, so a longer outage is not hammered. Then the error is the
/// answer.
#[test]
fn a_read_failing_throughout_is_retried_eight_times_with_growing_jittered_pauses() {
    let (err, reads) = unlock_with_lock_reads_failing(21, "InternalFailure");
    assert!(err.contains("InternalFailure"), "{err}");
    assert_eq!(reads.len(), 8, "{reads:?}");
    // A call takes 20 to 250 ms: a gap is the pause before the retry plus that.
    let gaps: Vec<u64> = reads.windows(2).map(|w| w[1] - w[0]).collect();
    for (n, gap) in gaps.iter().enumerate() {
        let ceiling = (250u64 << n).min(8_000);
        assert!(
            *gap <= ceiling + 250,
            "retry {} came {gap} ms after the last, its pause over the {ceiling} ms ceiling: {gaps:?}",
            n + 1
        );
    }
    assert!(
        gaps.iter().any(|g| *g > 2 * 250),
        "no pause grew past the first ceiling: {gaps:?}"
    );
}

/// A canary promote cancelled at its first step (the runner's job cancelled): production
/// goes back to blue, and the run stops there — the cancelled release keeps its tasks for
/// the next stage to replace, rather than the run spending the runner's short grace period
/// scaling them down.
#[test]
fn a_cancelled_promote_moves_traffic_back_and_leaves_scaling_down_to_the_next_stage() {
    block_on(async {
        let sim = Sim::new(
            11,
            Faults::default(),
            settings(StrategyKind::Canary, OldSlotPolicy::KeepWarm),
        );
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci")
            .with_cancel(sim.cancel_at(Status::Shifting(10)));
        stage(&engine, &sim, NEW).await;
        let err = engine.promote(&version(NEW)).await.unwrap_err();
        assert!(matches!(err, EngineError::Cancelled { .. }), "{err:?}");
        assert_eq!(sim.weights(), Weights::all_on(Slot::Blue));
        assert_eq!(sim.desired_on(Slot::Green), 2, "{:#?}", sim.log());
    });
}

/// A stage waiting for green's targets to pass their health checks. Until a target is
/// registered nothing says when it can be healthy: it looks again soon after the update,
/// backing off by half again each time (0.5 s, 0.75 s, ...), so a quick rollout is seen
/// quickly. Once the targets may turn healthy any moment (and past that, while ECS is a
/// little late), it looks every 1.2 s — never back to back, which would only spend API
/// calls (the account's rate limit is shared with everything else).
#[test]
fn a_wait_for_healthy_targets_looks_soon_then_backs_off_and_never_polls_back_to_back() {
    block_on(async {
        let sim = all_at_once(Faults::default());
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        let polls: Vec<u64> = sim
            .log()
            .iter()
            .filter(|l| l.contains(" ci target_health"))
            .map(|l| at(l))
            .collect();
        let gaps: Vec<u64> = polls.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.len() >= 3, "{polls:?}");
        // A poll's two reads take 20 to 250 ms each: a gap is the pause plus 20 to 480 ms.
        // Tasks take 5 s or more to start, so the first two pauses have no hint.
        assert!(gaps[0] <= 500 + 480 && gaps[1] <= 750 + 480, "{gaps:?}");
        assert!(gaps.iter().all(|g| *g >= 500), "{gaps:?}");
    });
}

/// A read that AWS throttles every time: the retries back off longer than for a 5xx
/// (from a second, doubling to 20 s) and stop once 45 s have been spent pausing, even
/// before the eighth attempt — the error is then the answer, and the wait that made the
/// read decides what happens next; no retry comes after the budget is spent, and no pause
/// outlasts what is left of it.
#[test]
fn a_read_throttled_throughout_stops_retrying_once_45_seconds_are_spent_pausing() {
    // Whether the budget or the attempt count ends the retries depends on the jitter's
    // draws: the budget runs out first in a few runs in a thousand.
    let budget_ended = (0..1000).find(|seed| {
        let (err, reads) = unlock_with_lock_reads_failing(*seed, "ThrottlingException");
        assert!(err.contains("ThrottlingException"), "{err}");
        // At most 45 s of pauses, plus each attempt's own 20 to 250 ms.
        let retries = reads.len() as u64 - 1;
        let span = reads.last().unwrap() - reads[0];
        assert!(span <= 45_000 + 250 * retries, "seed {seed}: {reads:?}");
        reads.len() < 8
    });
    assert!(
        budget_ended.is_some(),
        "in a thousand runs the 45 s never ran out before the eighth attempt"
    );
}
