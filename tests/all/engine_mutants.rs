//! Behaviours that mutation testing (scripts/mutants.sh, issue 19) found unchecked: each
//! test names what a user would see go wrong, not the line that once broke unnoticed.

use std::time::Duration;

use cutover::config::settings::OldSlotPolicy;
use cutover::engine::{Engine, EngineError, RollbackPath, StageRequest};
use cutover::ports::{Clock, Compute, Lock, Release, Slot, Status, Store, Traffic, Weights};
use cutover::sim::{
    AwsErrorAt, Degradation, Faults, NEW, NO_ANSWER, OLD, Sim, SimCloud, StrategyKind, settings,
    version,
};

use crate::sim_support::{all_at_once, block_on};

/// A calm all-at-once sim (a 180 s bake, a 300 s lease renewed every 100 s).
fn calm() -> Sim {
    all_at_once(Faults::default())
}

/// `code` answered once, to the first call whose name starts with `op` from `from` on.
fn error_once(op: &'static str, from: Duration, code: &'static str) -> Faults {
    Faults {
        aws_errors: vec![AwsErrorAt {
            op,
            from,
            code,
            lasting: false,
        }],
        ..Faults::default()
    }
}

pub(crate) async fn stage(engine: &Engine<'_, SimCloud>, sim: &Sim, tag: &str) {
    engine
        .stage(&StageRequest {
            spec: sim.spec(tag),
        })
        .await
        .expect("stage");
}

/// The statuses `tag`'s history entry went through, oldest first.
fn transitions(sim: &Sim, tag: &str) -> Vec<Status> {
    entry(sim, tag)
        .transitions
        .iter()
        .map(|t| t.status)
        .collect()
}

fn entry(sim: &Sim, tag: &str) -> Release {
    sim.history()
        .into_iter()
        .find(|r| r.version == version(tag))
        .unwrap_or_else(|| panic!("{tag} is not in the history"))
}

/// An operator's `unlock` in the middle of a bake: the run that held the lock must stop at
/// its next heartbeat (a safe point), not bake on for minutes without a lock and learn it
/// only at its next write.
#[test]
fn a_run_whose_lock_is_broken_mid_bake_stops_at_its_next_heartbeat() {
    block_on(async {
        let sim = calm();
        let ci = sim.runner("ci", None);
        let ops = sim.runner("ops", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        let started = tokio::time::Instant::now();
        let (promoted, broken) = tokio::join!(
            async {
                let r = engine.promote(&version(NEW)).await;
                (r, started.elapsed())
            },
            async {
                tokio::time::sleep(Duration::from_secs(20)).await;
                assert_eq!(sim.weights(), Weights::all_on(Slot::Green), "baking by now");
                Engine::new(&ops, &ops, &sim.settings, "ops").unlock().await
            }
        );
        assert!(broken.expect("unlock").is_some());
        let (result, took) = promoted;
        assert!(
            matches!(result, Err(EngineError::LockLost { .. })),
            "{result:?}"
        );
        // The heartbeat beats every 100 s; the bake alone would last 180 s.
        assert!(took <= Duration::from_secs(110), "stopped after {took:?}");
        assert!(
            !sim.log().iter().any(|l| l.contains("STATUS Promoted")),
            "a run without its lock reported success"
        );
        // The same engine takes the lock afresh for the next command: the lost lease of
        // the last one does not end this one's waits.
        engine.promote(&version(NEW)).await.expect("promote again");
        assert_eq!(entry(&sim, NEW).status, Status::Promoted);
    });
}

/// The history says when a release reached its status: a release approved an hour after
/// it was staged is recorded as promoted at the promote, not at the stage.
#[test]
fn the_history_dates_a_promote_when_it_happened_not_when_it_was_staged() {
    block_on(async {
        let sim = calm();
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        let staged = entry(&sim, NEW);
        assert_eq!(staged.status, Status::AwaitingApproval);
        tokio::time::sleep(Duration::from_secs(3600)).await;
        engine.promote(&version(NEW)).await.expect("promote");
        let promoted = entry(&sim, NEW);
        assert_eq!(promoted.status, Status::Promoted);
        assert!(
            promoted.at >= staged.at + 3_600_000,
            "promoted at {} but staged at {}",
            promoted.at,
            staged.at
        );
        assert_eq!(promoted.promoted_at, Some(promoted.at));
    });
}

/// When a logged call containing every one of `what` happened (sim ms), and its line number,
/// searching from line `from`.
fn call_at(sim: &Sim, from: usize, what: &[&str]) -> (u64, usize) {
    let log = sim.log();
    let (i, line) = log
        .iter()
        .enumerate()
        .skip(from)
        .find(|(_, l)| what.iter().all(|w| l.contains(w)))
        .unwrap_or_else(|| panic!("no {what:?} after line {from}:\n{}", log.join("\n")));
    (at(line), i)
}

/// When a logged call happened (sim ms).
pub(crate) fn at(line: &str) -> u64 {
    line.split_whitespace().next().unwrap().parse().unwrap()
}

/// A weight write the ELB refused (throttled) or whose answer was lost: ELB reads are
/// eventually consistent, so the read-back that decides what applied waits out the
/// consistency window first. A read taken at once can show the weights from before an
/// earlier write — equal to a rollback's target — and confirm a flip that never happened.
#[test]
fn after_a_weight_write_that_failed_the_read_back_waits_for_the_elb_to_settle() {
    block_on(async {
        let sim = all_at_once(error_once(
            "set_production_weights",
            Duration::ZERO,
            "Throttling",
        ));
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        engine.promote(&version(NEW)).await.expect("promote");
        let (refused, line) = call_at(&sim, 0, &["ci set_production_weights", "Throttled"]);
        let (read_back, _) = call_at(&sim, line + 1, &["ci production_weights"]);
        assert!(
            read_back >= refused + 5_000,
            "write refused at {refused} ms, weights read back at {read_back} ms"
        );
        assert_eq!(sim.weights(), Weights::all_on(Slot::Green));
    });
}

/// A rollback whose flip applied but whose read-back failed once (access denied to one
/// DescribeListeners): a later read shows production back on the good release, so it is a
/// rollback (exit 1), not a failed one that pages a human (exit 3).
#[test]
fn a_flip_back_that_applied_is_a_rollback_even_when_its_first_read_back_failed() {
    block_on(async {
        let bake_failing = Duration::from_secs(120);
        let sim = all_at_once(Faults {
            alarm_at: Some(bake_failing),
            ..error_once("production_weights", bake_failing, "AccessDenied")
        });
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        let err = engine.promote(&version(NEW)).await.unwrap_err();
        let log = sim.log().join("\n");
        assert!(
            log.contains("AccessDenied"),
            "the read-back failed once:\n{log}"
        );
        assert!(
            matches!(
                err,
                EngineError::RolledBack {
                    slot: Slot::Blue,
                    ..
                }
            ),
            "{err:?}\n{log}"
        );
        assert!(!log.contains("STATUS RollbackFailed"), "{log}");
        assert_eq!(sim.weights(), Weights::all_on(Slot::Blue));
    });
}

/// What `stage` hands back is what the action outputs as `status` and the job summary
/// shows: the release as the history records it, awaiting approval — not the status it
/// had while it was validated.
#[test]
fn a_stage_returns_its_release_awaiting_approval_as_recorded() {
    block_on(async {
        let sim = calm();
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        let outcome = engine
            .stage(&StageRequest {
                spec: sim.spec(NEW),
            })
            .await
            .expect("stage");
        assert_eq!(outcome.release.status, Status::AwaitingApproval);
        assert_eq!(entry(&sim, NEW).status, Status::AwaitingApproval);
        assert_eq!(outcome.release.version, version(NEW));
    });
}

/// NEW staged on green and production left split 75/25 by hand, as an interrupted shift
/// leaves it; OLD is the last good release, on blue.
async fn interrupted_shift(sim: &Sim, engine: &Engine<'_, SimCloud>) {
    stage(engine, sim, NEW).await;
    sim.runner("hand", None)
        .set_production_weights(Weights::split(Slot::Green, 25))
        .await
        .expect("hand-made split");
}

/// `rollback --to OLD --dry-run` mid-shift, where OLD is the release production goes back
/// to anyway: the plan says production is first moved back to blue, as the run then does.
#[test]
fn a_rollback_plan_to_the_release_a_repair_lands_on_still_says_it_repairs_first() {
    block_on(async {
        let sim = calm();
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        interrupted_shift(&sim, &engine).await;
        let plan = engine
            .rollback_plan(Some(&version(OLD)))
            .await
            .expect("plan");
        assert_eq!(plan.repair_to, Some(Slot::Blue), "{plan:?}");
        assert_eq!(plan.path, RollbackPath::Nothing, "{plan:?}");
        assert!(
            plan.to_string()
                .contains("repair    production back to blue first (an interrupted shift)"),
            "{plan}"
        );
        let outcome = engine
            .rollback(Some(&version(OLD)))
            .await
            .expect("rollback");
        assert_eq!(outcome, plan.outcome());
        assert_eq!(sim.weights(), Weights::all_on(Slot::Blue));
    });
}

/// `rollback --to NEW --dry-run` mid-shift, where NEW is the release whose shift was
/// interrupted: refused, with the same reason the run gives once its repair has recorded
/// NEW rolled back.
#[test]
fn a_rollback_plan_to_the_interrupted_release_is_refused_as_the_run_refuses_it() {
    block_on(async {
        let sim = calm();
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        interrupted_shift(&sim, &engine).await;
        let planned = engine
            .rollback_plan(Some(&version(NEW)))
            .await
            .expect_err("a release that never took production is no rollback target");
        let ran = engine
            .rollback(Some(&version(NEW)))
            .await
            .expect_err("refused");
        assert_eq!(planned.to_string(), ran.to_string());
        assert!(ran.to_string().contains("RolledBack"), "{ran}");
    });
}

pub(crate) const RUN_URL: &str = "https://github.com/acme/web/actions/runs/42";

/// A calm sim whose lock a run took `age` ago for `ttl`, and never renewed.
async fn locked(age: u64, ttl: u64) -> Sim {
    let sim = calm();
    hold_lock(&sim, age, ttl).await;
    sim
}

/// Another run's lock in `sim`, taken `age` ago for `ttl`, and never renewed.
pub(crate) async fn hold_lock(sim: &Sim, age: u64, ttl: u64) {
    let other = sim.runner("other", None);
    let acquired_at = other.now() - age * 1000;
    other
        .create_lock(&Lock {
            owner: RUN_URL.into(),
            token: "other".into(),
            acquired_at,
            expires_at: acquired_at + ttl * 1000,
        })
        .await
        .expect("lock");
}

fn notices(sim: &Sim) -> Vec<String> {
    sim.log()
        .into_iter()
        .filter_map(|l| l.split_once("NOTICE ").map(|(_, n)| n.to_string()))
        .collect()
}

/// What an operator reads while a recovery waits for a lock that missed its heartbeats
/// (taken 200 s ago under a 300 s lease, never renewed; our lease is 300 s too): how long
/// since its last renewal, how often a live run renews, and how long until it expires.
#[test]
fn a_rollback_waiting_out_a_stale_lock_says_how_stale_it_is() {
    block_on(async {
        let sim = locked(200, 300).await;
        let ops = sim.runner("ops", None);
        let _ = Engine::new(&ops, &ops, &sim.settings, "ops")
            .rollback(None)
            .await;
        let expected = format!(
            "the deploy lock is held by {RUN_URL}, not renewed for 200s (a live run renews it every 100s): it expires in 100s: waiting for that, then taking it over"
        );
        assert!(notices(&sim).contains(&expected), "{:#?}", notices(&sim));
    });
}

/// `unlock` of a live lock says whose it was, how old, and how long it waits for its
/// holder to stop writing; a second run refused by a live lock says when it expires.
#[test]
fn unlock_and_a_refused_run_say_how_old_the_lock_is_and_when_it_expires() {
    block_on(async {
        let sim = locked(30, 600).await;
        let ci = sim.runner("ci", None);
        let err = Engine::new(&ci, &ci, &sim.settings, "ci")
            .promote(&version(NEW))
            .await
            .unwrap_err();
        // Refused one call's latency (20-250 ms) after the lock was taken: 569.8 s left.
        assert!(
            err.to_string().contains(&format!(
                "held by {RUN_URL} (taken 30s ago, expires in 569s)"
            )),
            "{err}"
        );
        let ops = sim.runner("ops", None);
        Engine::new(&ops, &ops, &sim.settings, "ops")
            .unlock()
            .await
            .expect("unlock");
        assert_eq!(
            notices(&sim),
            [
                format!("unlock: breaking the deploy lock held by {RUN_URL} (taken 30s ago)"),
                "unlock: waiting 35s for the run that held it to stop writing".to_string(),
            ]
        );
    });
}

/// The timeline of `runner`'s status reports: "<status> <detail>", in order.
pub(crate) fn timeline(sim: &Sim, runner: &str) -> Vec<String> {
    let tag = format!(" {runner} STATUS ");
    sim.log()
        .into_iter()
        .filter_map(|l| l.split_once(&tag).map(|(_, s)| s.to_string()))
        .collect()
}

/// A canary promote's timeline, as the job summary and the GitHub deployment show it: each
/// step once, Baking once traffic is all on the new release (and only then), then Promoted;
/// the history says Baking while it bakes.
#[test]
fn a_canary_promote_reports_each_step_then_bakes_at_100_percent() {
    block_on(async {
        let sim = Sim::new(
            21,
            Faults::default(),
            settings(StrategyKind::Canary, OldSlotPolicy::KeepWarm),
        );
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        let staged = timeline(&sim, "ci").len();
        let new = version(NEW);
        let (promoted, baking) = tokio::join!(engine.promote(&new), async {
            while sim.weights() != Weights::all_on(Slot::Green) {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
            entry(&sim, NEW).status
        });
        promoted.expect("promote");
        assert_eq!(baking, Status::Baking);
        assert_eq!(
            timeline(&sim, "ci")[staged..],
            [
                "Shifting(10%) 10% on green",
                "Shifting(100%) 100% on green",
                "Baking 180s",
                "Promoted 100% on green, bake passed"
            ]
        );
    });
}

/// A promote resuming an interrupted shift says so on the step it holds again, so the
/// timeline explains why traffic sits at a weight for a full step again.
#[test]
fn a_resumed_shift_says_it_holds_the_interrupted_step_again() {
    block_on(async {
        let sim = calm();
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        interrupted_shift(&sim, &engine).await;
        engine.promote(&version(NEW)).await.expect("promote");
        let shifting: Vec<String> = timeline(&sim, "ci")
            .into_iter()
            .filter(|s| s.starts_with("Shifting"))
            .collect();
        assert_eq!(
            shifting,
            [
                "Shifting(25%) 25% on green again, held in full after an interrupted shift",
                "Shifting(100%) 100% on green",
            ]
        );
    });
}

/// The lease's heartbeat: a renewal that fails (AWS refused it) with more than a third of
/// the lease left is ridden out; renewals that keep failing stop the run while a third of
/// the lease is still left, so a recovery that breaks it at expiry — give or take clock
/// skew between runners — never meets it writing.
#[test]
fn a_run_rides_out_one_failed_renewal_and_stops_a_third_of_a_lease_before_it_ends() {
    block_on(async {
        let mut s = settings(StrategyKind::AllAtOnce, OldSlotPolicy::KeepWarm);
        // Renewed every 40 s, within a 180 s bake.
        s.deadlines.lock_ttl = cutover::config::duration::Duration::from_secs(120);
        let failing = Duration::from_secs(100);
        let faults = Faults {
            aws_errors: vec![AwsErrorAt {
                op: "renew_lock",
                from: failing,
                code: "AccessDenied",
                lasting: true,
            }],
            ..Faults::default()
        };
        let sim = Sim::new(21, faults, s);
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        let started = tokio::time::Instant::now();
        let err = engine.promote(&version(NEW)).await.unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, EngineError::LockLost { .. }), "{err:?}");
        let refused = sim
            .log()
            .iter()
            .filter(|l| l.contains("ci renew_lock") && l.contains("AccessDenied"))
            .count();
        // Renewals come every TTL/4..TTL/3 (jittered): with two thirds of the lease left
        // one or two refusals are ridden out, never more.
        assert!(
            (2..=3).contains(&refused),
            "{refused} refused renewals: a failed renewal is ridden out, the lease's last third is not"
        );
        // The promote's lease was taken at its start (renewals failing from 15 s into it):
        // a third of it is 40 s.
        assert!(
            took <= Duration::from_secs(120 - 40 + 2),
            "stopped {took:?} into a 120 s lease"
        );
    });
}

/// A resumed shift whose release then fails (its alarm fires at 25%): production goes back
/// to the last good release on the other slot (exit 1), as for a shift that was never
/// interrupted — not a failed rollback paging a human.
#[test]
fn a_resumed_shift_of_a_failing_release_rolls_back_to_the_last_good_one() {
    block_on(async {
        let sim = all_at_once(Faults {
            alarm_at: Some(Duration::ZERO),
            ..Faults::default()
        });
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        interrupted_shift(&sim, &engine).await;
        let err = engine.promote(&version(NEW)).await.unwrap_err();
        assert!(
            matches!(
                err,
                EngineError::RolledBack {
                    slot: Slot::Blue,
                    ..
                }
            ),
            "{err:?}"
        );
        // It failed holding 25%, not in a bake it never reached.
        assert!(err.to_string().contains("Shifting(25%) failed"), "{err}");
        assert_eq!(sim.weights(), Weights::all_on(Slot::Blue));
        assert_eq!(entry(&sim, NEW).status, Status::RolledBack);
    });
}

/// A weight set by hand below the canary step (5% under a 10% canary): the resumed shift
/// holds it as long as the canary step waits (120 s), not as long as the bake (180 s).
#[test]
fn a_weight_set_below_the_first_step_is_held_as_long_as_that_step() {
    block_on(async {
        let sim = Sim::new(
            21,
            Faults::default(),
            settings(StrategyKind::Canary, OldSlotPolicy::KeepWarm),
        );
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        sim.runner("hand", None)
            .set_production_weights(Weights::split(Slot::Green, 5))
            .await
            .expect("hand-made split");
        engine.promote(&version(NEW)).await.expect("promote");
        let (held, line) = call_at(&sim, 0, &["ci STATUS Shifting(5%)"]);
        let (next, _) = call_at(&sim, line, &["ci STATUS Shifting(10%)"]);
        let hold = next - held;
        assert!(
            (120_000..150_000).contains(&hold),
            "5% held {hold} ms before the 10% step"
        );
    });
}

/// `promote` of a release that was rolled back is refused (stage it again), and the
/// refusal touches nothing: no weight write, no status reported, the history unchanged.
#[test]
fn a_refused_promote_of_a_rolled_back_release_changes_nothing() {
    block_on(async {
        let sim = calm();
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        engine.promote(&version(NEW)).await.expect("promote");
        engine.rollback(None).await.expect("rollback");
        let history = sim.history();
        let again = sim.runner("again", None);
        let err = Engine::new(&again, &again, &sim.settings, "again")
            .promote(&version(NEW))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("stage it again"), "{err}");
        assert_eq!(sim.history(), history);
        assert!(
            timeline(&sim, "again").is_empty(),
            "{:#?}",
            timeline(&sim, "again")
        );
        assert!(
            !sim.log()
                .iter()
                .any(|l| l.contains("again set_production_weights")),
            "a refused promote wrote production weights"
        );
        assert_eq!(sim.weights(), Weights::all_on(Slot::Blue));
    });
}

/// A run whose lock an operator broke and another run then took says who holds it now, so
/// the operator knows which run carries on.
#[test]
fn a_run_that_lost_its_lock_to_another_run_names_the_new_holder() {
    block_on(async {
        let sim = calm();
        let ci = sim.runner("ci", None);
        let ops = sim.runner("ops", None);
        let carol = sim.runner("carol", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        let new = version(NEW);
        let (promoted, ()) = tokio::join!(engine.promote(&new), async {
            tokio::time::sleep(Duration::from_secs(20)).await;
            Engine::new(&ops, &ops, &sim.settings, "ops")
                .unlock()
                .await
                .expect("unlock");
            // carol finishes the promote: its bake holds the lock past ci's next heartbeat.
            Engine::new(&carol, &carol, &sim.settings, "carol")
                .promote(&version(NEW))
                .await
                .expect("carol's promote");
        });
        match promoted {
            Err(EngineError::LockLost { detail }) => {
                assert_eq!(detail, "it is now held by carol")
            }
            other => panic!("{other:?}"),
        }
    });
}

/// A live run keeps its lock looking live: 170 s into a promote (in its bake, a 300 s
/// lease), a recovery `rollback` from elsewhere is refused at once as the lock is held —
/// it does not take the lock for one that missed its renewals and wait to take it over.
#[test]
fn a_recovery_never_mistakes_a_baking_runs_lock_for_a_stale_one() {
    block_on(async {
        let sim = calm();
        let ci = sim.runner("ci", None);
        let ops = sim.runner("ops", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        let new = version(NEW);
        let (promoted, (refused, waited)) = tokio::join!(engine.promote(&new), async {
            tokio::time::sleep(Duration::from_secs(170)).await;
            let asked = tokio::time::Instant::now();
            let r = Engine::new(&ops, &ops, &sim.settings, "ops")
                .rollback(None)
                .await;
            (r, asked.elapsed())
        });
        promoted.expect("promote");
        assert!(
            matches!(refused, Err(EngineError::LockHeld { .. })),
            "{refused:?}"
        );
        assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    });
}

/// A resumed shift whose release then fails, after someone redeployed the slot it would
/// fall back to by hand with a release that never took production: traffic is not flipped
/// onto a release no validation passed. Production stays where it is, the run pages a
/// human (exit 3) and says why.
#[test]
fn a_failing_resumed_shift_never_falls_back_onto_a_release_that_never_took_production() {
    block_on(async {
        let sim = all_at_once(Faults {
            alarm_at: Some(Duration::ZERO),
            ..Faults::default()
        });
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        interrupted_shift(&sim, &engine).await;
        let hand = sim.runner("hand", None);
        let hotfix = hand
            .register_task_definition(&sim.spec("v1.0.1"))
            .await
            .expect("register by hand");
        hand.update_slot(Slot::Blue, &hotfix.id, sim.desired_on(Slot::Blue))
            .await
            .expect("deploy by hand");
        tokio::time::sleep(Duration::from_secs(120)).await;
        let err = engine.promote(&version(NEW)).await.unwrap_err();
        assert!(matches!(err, EngineError::RollbackFailed { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("not rolled back: blue runs v1.0.1, which never took production"),
            "{err}"
        );
        assert_eq!(sim.weights(), Weights::split(Slot::Green, 25));
    });
}

/// A `rollback --to NEW` whose redeploy moved all traffic and then stopped before it
/// recorded its bake (AWS unreachable, the runner lost): the history still has NEW baking.
/// The on-call's re-run does not answer "already live": it bakes NEW again, records it
/// promoted and marks OLD, the release it rolled away from, rolled back — so the history
/// stops naming OLD the last good release. Its dry run says so first.
#[test]
fn a_rerun_of_a_rollback_to_that_stopped_before_recording_its_bake_finishes_it() {
    block_on(async {
        let sim = calm();
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        engine.promote(&version(NEW)).await.expect("promote");
        let interrupted = sim
            .history()
            .into_iter()
            .map(|mut r| {
                if r.version == version(NEW) {
                    r.status = Status::Baking;
                }
                r
            })
            .collect();
        sim.put_history(interrupted);
        let oncall = sim.runner("oncall", None);
        let engine = Engine::new(&oncall, &oncall, &sim.settings, "oncall");
        let new = version(NEW);
        let plan = engine.rollback_plan(Some(&new)).await.expect("plan");
        assert_eq!(plan.path, RollbackPath::Finished, "{plan:?}");
        // Production is on NEW already: nothing to repair first.
        assert_eq!(plan.repair_to, None, "{plan:?}");
        let text = plan.to_string();
        assert!(
            text.contains("100% then bake 180s") && !text.contains("validate"),
            "finishing bakes again, it validates nothing: {plan}"
        );
        let outcome = engine.rollback(Some(&new)).await.expect("rollback");
        assert_eq!(outcome, plan.outcome());
        assert_eq!(outcome.slot, Slot::Green);
        assert_eq!(entry(&sim, NEW).status, Status::Promoted);
        assert_eq!(entry(&sim, OLD).status, Status::RolledBack);
        assert!(
            timeline(&sim, "oncall")
                .iter()
                .any(|s| s.starts_with("Baking")),
            "{:#?}",
            timeline(&sim, "oncall")
        );
        assert_eq!(sim.weights(), Weights::all_on(Slot::Green));
    });
}

/// A release's history entry keeps its whole timeline: after the promote it still shows
/// the stage that came before (awaiting approval), then the bake and the promote — what
/// `cutover history` shows of how a release got where it is.
#[test]
fn the_history_keeps_a_releases_stage_in_its_timeline_after_its_promote() {
    block_on(async {
        let sim = calm();
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        engine.promote(&version(NEW)).await.expect("promote");
        let statuses = transitions(&sim, NEW);
        assert!(
            statuses.contains(&Status::AwaitingApproval)
                && statuses.contains(&Status::Baking)
                && statuses.last() == Some(&Status::Promoted),
            "{statuses:?}"
        );
    });
}

/// Settings for a calm all-at-once deploy with a lease of `ttl`.
pub(crate) fn with_lease(ttl: u64) -> cutover::config::settings::ServiceSettings {
    let mut s = settings(StrategyKind::AllAtOnce, OldSlotPolicy::KeepWarm);
    s.deadlines.lock_ttl = cutover::config::duration::Duration::from_secs(ttl);
    s
}

/// Renewals that get no answer (SSM hangs): the heartbeat gives each up after a third of
/// the lease, so the run stops by the time its lease runs out — not minutes later (a
/// renewal's own retries of hung calls last four), when a recovery may have broken the lock
/// and be writing.
#[test]
fn a_run_whose_renewals_get_no_answer_stops_by_the_end_of_its_lease() {
    block_on(async {
        // A 120 s lease, renewed every 30-40 s, within a 180 s bake.
        let faults = Faults {
            aws_errors: vec![AwsErrorAt {
                op: "renew_lock",
                from: Duration::from_secs(100),
                code: NO_ANSWER,
                lasting: true,
            }],
            ..Faults::default()
        };
        let sim = Sim::new(21, faults, with_lease(120));
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        let started = tokio::time::Instant::now();
        let err = engine.promote(&version(NEW)).await.unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, EngineError::LockLost { .. }), "{err:?}");
        assert!(
            sim.log()
                .iter()
                .any(|l| l.contains("ci renew_lock -> HUNG")),
            "no renewal hung"
        );
        assert!(
            took <= Duration::from_secs(122),
            "stopped {took:?} into a 120 s lease"
        );
    });
}

/// A run that takes over a stale lock waits out the takeover pause (35 s) before its first
/// write; under a 60 s lease more than half of it is gone by then, so that first check
/// renews the lock. A recovery started just after finds the lock live and is refused at
/// once — it does not take it for one whose holder missed its renewals and wait to take it
/// over. (The config refuses a lease under 2 minutes; the engine's rule — a lock read with
/// less than half the lease left is renewed — is what a run relies on after a heartbeat
/// that failed to renew, which this reaches without timing a write into that window.)
#[test]
fn a_run_that_took_over_a_stale_lock_renews_it_before_it_looks_stale() {
    block_on(async {
        let sim = Sim::new(21, Faults::default(), with_lease(60));
        let ci = sim.runner("ci", None);
        let ops = sim.runner("ops", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        // Left behind by a run that died: expired 100 s ago.
        hold_lock(&sim, 160, 60).await;
        let new = version(NEW);
        let (promoted, (refused, waited)) = tokio::join!(engine.promote(&new), async {
            // Past the takeover pause and its check, before the heartbeat's first beat
            // (15-20 s after it).
            tokio::time::sleep(Duration::from_secs(40)).await;
            let asked = tokio::time::Instant::now();
            let r = Engine::new(&ops, &ops, &sim.settings, "ops")
                .rollback(None)
                .await;
            (r, asked.elapsed())
        });
        promoted.expect("promote");
        assert!(
            notices(&sim)
                .iter()
                .any(|n| n.starts_with("breaking a stale deploy lock")),
            "{:#?}",
            notices(&sim)
        );
        assert!(
            matches!(refused, Err(EngineError::LockHeld { .. })),
            "{refused:?}"
        );
        assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    });
}

/// A release rolled back mid-shift (its tasks stopped at 50% of a linear shift): its
/// history timeline shows the step it failed at, then the rollback — not a jump from the
/// first step straight to rolling back.
#[test]
fn a_release_rolled_back_mid_shift_keeps_the_step_it_failed_at_in_its_timeline() {
    block_on(async {
        let sim = Sim::new(
            21,
            Faults::default(),
            settings(StrategyKind::Linear, OldSlotPolicy::KeepWarm),
        );
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        let new = version(NEW);
        let (promoted, ()) = tokio::join!(engine.promote(&new), async {
            while !timeline(&sim, "ci")
                .iter()
                .any(|s| s.starts_with("Shifting(50%)"))
            {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            sim.degrade(Slot::Green, Degradation::TasksStopped);
        });
        let err = promoted.unwrap_err();
        assert!(matches!(err, EngineError::RolledBack { .. }), "{err:?}");
        let statuses = transitions(&sim, NEW);
        let failed_at = statuses.iter().position(|s| *s == Status::Shifting(50));
        assert!(
            failed_at.is_some_and(|i| statuses[i..].contains(&Status::RollingBack)),
            "{statuses:?}"
        );
    });
}

/// `unlock` without permission to delete the lock (AccessDenied) fails at once with that
/// error: a refusal no retry can fix is not retried for a quarter of a minute first.
#[test]
fn an_unlock_refused_access_fails_at_once_without_retrying() {
    block_on(async {
        let sim = all_at_once(Faults {
            deny: vec!["delete_lock"],
            ..Faults::default()
        });
        hold_lock(&sim, 0, 300).await;
        let ops = sim.runner("ops", None);
        let asked = tokio::time::Instant::now();
        let err = Engine::new(&ops, &ops, &sim.settings, "ops")
            .unlock()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not authorized"), "{err}");
        let deletes = sim
            .log()
            .iter()
            .filter(|l| l.contains(" ops delete_lock"))
            .count();
        assert_eq!(deletes, 1, "{:#?}", sim.log());
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "{:?}",
            asked.elapsed()
        );
    });
}

/// `unlock` while SSM throttles every lock delete: retried, backing off (a quarter of a
/// second, then twice as long each time), then given up with the throttling error — not
/// given up at the first throttle, nor retried in a burst that feeds the throttling.
#[test]
fn an_unlock_throttled_throughout_backs_off_between_its_retries_then_gives_up() {
    block_on(async {
        let sim = all_at_once(Faults {
            aws_errors: vec![AwsErrorAt {
                op: "delete_lock",
                from: Duration::ZERO,
                code: "ThrottlingException",
                lasting: true,
            }],
            ..Faults::default()
        });
        hold_lock(&sim, 0, 300).await;
        let ops = sim.runner("ops", None);
        let err = Engine::new(&ops, &ops, &sim.settings, "ops")
            .unlock()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("throttled"), "{err}");
        let deletes: Vec<u64> = sim
            .log()
            .iter()
            .filter(|l| l.contains(" ops delete_lock"))
            .map(|l| at(l))
            .collect();
        assert_eq!(deletes.len(), 6, "{deletes:?}");
        // 0.25 + 0.5 + 1 + 2 + 4 s of pauses between the six, plus each retry's lock read.
        let span = deletes[5] - deletes[0];
        assert!((7_750..11_000).contains(&span), "{deletes:?}");
    });
}

/// Production left split (25% by hand) onto a release that was rolled back: `promote` of
/// it is refused (stage it again), and the refusal does not leave production split — it
/// goes back to the last good release first.
#[test]
fn a_refused_promote_of_a_rolled_back_release_left_split_moves_production_back() {
    block_on(async {
        let sim = calm();
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        engine.promote(&version(NEW)).await.expect("promote");
        engine.rollback(None).await.expect("rollback");
        sim.runner("hand", None)
            .set_production_weights(Weights::split(Slot::Green, 25))
            .await
            .expect("hand-made split");
        let err = engine.promote(&version(NEW)).await.unwrap_err();
        assert!(err.to_string().contains("stage it again"), "{err}");
        assert_eq!(sim.weights(), Weights::all_on(Slot::Blue));
    });
}

/// A promote whose new slot is not healthy at the moment it would move traffic (its tasks
/// stopped after the stage): no traffic moves, the run says so, and the release is left
/// awaiting approval — promotable again once its slot is healthy, not marked rolled back.
#[test]
fn a_promote_onto_an_unhealthy_slot_moves_no_traffic_and_leaves_the_release_promotable() {
    block_on(async {
        let sim = calm();
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        sim.degrade(Slot::Green, Degradation::TasksStopped);
        let from = sim.log().len();
        let err = engine.promote(&version(NEW)).await.unwrap_err();
        // The error says what was read: counts and target health, not just "not healthy".
        let text = err.to_string();
        let why = text
            .split_once("is not healthy: ")
            .map(|(_, why)| why.trim());
        assert!(why.is_some_and(|w| !w.is_empty()), "{err}");
        let last = timeline(&sim, "ci").pop().expect("a status");
        assert!(
            last.starts_with("Failed") && last.ends_with("production traffic was not moved"),
            "{last}"
        );
        assert!(
            !sim.log()[from..]
                .iter()
                .any(|l| l.contains("ci set_production_weights")),
            "weights were written"
        );
        assert_eq!(sim.weights(), Weights::all_on(Slot::Blue));
        assert_eq!(entry(&sim, NEW).status, Status::AwaitingApproval);
    });
}

/// A promote finds the test listener pointed at the live slot (by hand, or by a run that
/// stopped midway): it points it back at the release it promotes first, so the probes of
/// the shift and the bake judge that release.
#[test]
fn a_promote_points_a_test_listener_moved_elsewhere_back_at_the_release_it_promotes() {
    block_on(async {
        let sim = calm();
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        let hand = sim.runner("hand", None);
        hand.point_test_listener(Slot::Blue)
            .await
            .expect("pointed by hand");
        engine.promote(&version(NEW)).await.expect("promote");
        assert_eq!(hand.test_listener().await.expect("read"), Some(Slot::Green));
    });
}

/// All of production flipped onto a staged release by hand (or a shift stopped right at
/// 100%): the promote bakes it in full, and its timeline reads as a plain bake — the step
/// at 100% is not announced as a step held again.
#[test]
fn a_promote_of_a_release_already_at_100_percent_bakes_it_in_full() {
    block_on(async {
        let sim = calm();
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        sim.runner("hand", None)
            .set_production_weights(Weights::all_on(Slot::Green))
            .await
            .expect("hand-made flip");
        let staged = timeline(&sim, "ci").len();
        engine.promote(&version(NEW)).await.expect("promote");
        assert_eq!(
            timeline(&sim, "ci")[staged..],
            [
                "Shifting(100%) 100% on green",
                "Baking 180s",
                "Promoted 100% on green, bake passed"
            ]
        );
    });
}

/// A release whose alarm fires during its bake (all traffic on it for 30 s): the error and
/// the timeline name the bake as the phase that failed, not a shift step.
#[test]
fn a_release_failing_in_its_bake_is_reported_as_failed_in_the_bake() {
    block_on(async {
        let sim = all_at_once(Faults {
            alarm_at: Some(Duration::from_secs(120)),
            ..Faults::default()
        });
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        let err = engine.promote(&version(NEW)).await.unwrap_err();
        assert!(err.to_string().contains("Baking failed"), "{err}");
    });
}
