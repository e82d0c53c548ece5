//! A train's failure paths that only a member losing its lock reaches: which members go
//! back, which are stranded, and what the train's error quotes — checked where mutation
//! testing (scripts/mutants.sh) found them unchecked. (The module name keeps these tests
//! in the mutants' filter.)

use std::time::Duration;

use cutover::config::settings::OldSlotPolicy;
use cutover::engine::{MemberOutcome, Train, TrainOutcome};
use cutover::ports::{Slot, Status, Store, Traffic, Weights};
use cutover::sim::{
    AwsErrorAt, Faults, NEW, OLD, Sim, StrategyKind, member_name, settings, version,
    worker_settings,
};

use crate::engine_mutants::hold_lock;
use crate::sim_support::block_on;
use crate::train::{members, new_release, pair};

/// Every member as one train, NEW staged on each (awaiting approval).
async fn staged_train<'a>(
    sims: &'a [Sim],
    clouds: &'a [(usize, cutover::sim::SimCloud)],
) -> Train<'a, cutover::sim::SimCloud> {
    let train = Train::new(members(sims, clouds, "ci")).expect("train");
    let staged = train.stage(&new_release(sims)).await;
    assert_eq!(
        staged.status,
        Status::AwaitingApproval,
        "{:?}",
        staged.error
    );
    train
}

/// Stage NEW on every member as one train (awaiting approval), then promote it, no sooner
/// than `at` into the simulation, while `meanwhile` runs.
async fn staged_then_promoted(
    sims: &[Sim],
    clouds: &[(usize, cutover::sim::SimCloud)],
    at: Duration,
    meanwhile: impl Future<Output = ()>,
) -> TrainOutcome {
    let train = staged_train(sims, clouds).await;
    tokio::time::sleep_until(sims[0].start() + at).await;
    let versions: Vec<_> = (0..sims.len())
        .map(|i| (member_name(i), version(NEW)))
        .collect();
    let (out, ()) = tokio::join!(train.promote(&versions), meanwhile);
    out
}

/// Two calm all-at-once services (seeds `seed`, `seed + 1`), the first with `faults`, and
/// a runner's cloud for each.
fn pair_faulty(seed: u64, faults: Faults) -> (Vec<Sim>, Vec<(usize, cutover::sim::SimCloud)>) {
    let sims: Vec<Sim> = [faults, Faults::default()]
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            Sim::new(
                seed + i as u64,
                f,
                settings(StrategyKind::AllAtOnce, OldSlotPolicy::KeepWarm),
            )
        })
        .collect();
    let clouds = (0..2).map(|i| (i, sims[i].runner("ci", None))).collect();
    (sims, clouds)
}

/// Every call whose name starts with `op` is throttled from `from` on.
fn throttled_from(op: &'static str, from: Duration) -> Faults {
    Faults {
        aws_errors: vec![AwsErrorAt {
            op,
            from,
            code: "ThrottlingException",
            lasting: true,
        }],
        ..Faults::default()
    }
}

/// Wait (in virtual time) until `done`; a train that never gets there (a broken engine)
/// fails the test after 20 virtual minutes instead of spinning it until the wall-clock
/// timeout of the mutants' run.
async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..12_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never: {what}");
}

/// An operator unlocks `sim` and another run takes its lock at once.
async fn lock_taken_by_another_run(sim: &Sim) {
    sim.runner("ops", None).delete_lock().await.expect("unlock");
    hold_lock(sim, 0, 300).await;
}

fn status_of(out: &TrainOutcome, i: usize) -> Status {
    let service = member_name(i);
    let m: &MemberOutcome = out
        .members
        .iter()
        .find(|m| m.service == service)
        .unwrap_or_else(|| panic!("no {service} in {:#?}", out.members));
    m.status
}

/// An operator breaks svc00's lock in the middle of the bake and another run takes it.
/// svc00 is left to that run: stranded (RollbackFailed, production still on the new
/// release, a human must look), not reported as merely failed. svc01 goes back to its old
/// release as for any failure of the train — it does not inherit svc00's lost lock. The
/// train's error says why the stranded member is stranded, and quotes nothing of the
/// member that went back fine.
#[test]
fn a_train_member_whose_lock_is_taken_mid_bake_is_stranded_and_the_others_go_back() {
    block_on(async {
        let (sims, clouds) = pair(120);
        let out = staged_then_promoted(&sims, &clouds, Duration::ZERO, async {
            // The shift to 100% is done well within a minute; the bake lasts 180 s and
            // svc00's heartbeat first reads its lock 75-100 s into the promote.
            tokio::time::sleep(Duration::from_secs(60)).await;
            assert_eq!(sims[0].weights(), Weights::all_on(Slot::Green), "baking");
            lock_taken_by_another_run(&sims[0]).await;
        })
        .await;
        let error = out.error.as_ref().map(ToString::to_string);
        assert_eq!(out.status, Status::RollbackFailed, "{error:?}");
        assert_eq!(out.stranded(), vec![member_name(0).as_str()], "{error:?}");
        assert_eq!(status_of(&out, 0), Status::RollbackFailed);
        assert_eq!(status_of(&out, 1), Status::RolledBack, "{error:?}");
        assert_eq!(sims[0].weights(), Weights::all_on(Slot::Green));
        assert_eq!(sims[1].weights(), Weights::all_on(Slot::Blue));
        let error = error.expect("an error");
        // Once: svc00 is both the member the train failed in and a stranded one, and its
        // lost lock used to be quoted for each.
        assert_eq!(
            error.matches(&format!("{}: ", member_name(0))).count(),
            1,
            "{error}"
        );
        assert!(
            !error.contains(&member_name(1)),
            "quotes a member that went back: {error}"
        );
    });
}

/// The train fails before any traffic moved (svc00's history writes throttled until its
/// retries give up) while svc01's lock was broken: svc01 never moved, so it is Failed, not
/// stranded — nobody needs to look at it — and the train is not a failed rollback.
#[test]
fn a_train_member_that_lost_its_lock_before_moving_traffic_is_failed_not_stranded() {
    block_on(async {
        let promote_at = Duration::from_secs(1000);
        let (sims, clouds) = pair_faulty(130, throttled_from("record(", promote_at));
        let throttled = || {
            sims[0]
                .log()
                .iter()
                .any(|l| l.contains(" ci record(") && l.contains("ThrottlingException"))
        };
        let out = staged_then_promoted(&sims, &clouds, promote_at, async {
            // svc00's first record of the shift is refused and retried for up to 45 s;
            // svc01's went through. The operator breaks svc01's lock meanwhile.
            until("svc00's record is throttled", throttled).await;
            sims[1]
                .runner("ops", None)
                .delete_lock()
                .await
                .expect("unlock");
        })
        .await;
        let error = out.error.as_ref().map(ToString::to_string);
        assert_eq!(status_of(&out, 1), Status::Failed, "{:#?}", out.members);
        assert!(out.stranded().is_empty(), "{:#?}", out.members);
        assert_ne!(out.status, Status::RollbackFailed, "{error:?}");
        for sim in &sims {
            assert_eq!(sim.weights(), Weights::all_on(Slot::Blue));
        }
    });
}

/// A web service and a worker as one train; svc00's lock is broken and taken by another
/// run once its traffic is all on the new release (in the bake). svc00 is stranded, left to
/// that run; the worker, rolled in place before the shift, goes back to the release it ran
/// before — it does not inherit svc00's lost lock as if the train had failed in it.
#[test]
fn a_worker_goes_back_when_a_web_member_of_its_train_loses_its_lock() {
    block_on(async {
        let sims = vec![
            Sim::new(
                140,
                Faults::default(),
                settings(StrategyKind::AllAtOnce, OldSlotPolicy::KeepWarm),
            ),
            Sim::new(
                141,
                Faults::default(),
                worker_settings(StrategyKind::AllAtOnce),
            ),
        ];
        let clouds: Vec<_> = (0..2).map(|i| (i, sims[i].runner("ci", None))).collect();
        let out = staged_then_promoted(&sims, &clouds, Duration::ZERO, async {
            until("svc00 all on green", || {
                sims[0].weights() == Weights::all_on(Slot::Green)
            })
            .await;
            assert_eq!(sims[1].version_on(Slot::Blue), Some(version(NEW)), "rolled");
            lock_taken_by_another_run(&sims[0]).await;
        })
        .await;
        let error = out.error.as_ref().map(ToString::to_string);
        assert_eq!(out.stranded(), vec![member_name(0).as_str()], "{error:?}");
        assert_eq!(status_of(&out, 1), Status::RolledBack, "{:#?}", out.members);
        assert_eq!(sims[1].version_on(Slot::Blue), Some(version(OLD)));
    });
}

/// A canary train resumed with svc00 at 50% on the new release, whose old slot runs a
/// release no history entry shows ever took production (its record is gone: SSM was
/// restored, or the history was cut). svc00's lock is then taken by another run in the
/// bake. svc00 is stranded for the lock it lost — left to that run, which its detail
/// says — not judged as a fall-back refused because its old slot is unproven: with the
/// lock gone it has no business deciding about its slots at all.
#[test]
fn a_train_member_that_lost_its_lock_is_not_judged_by_its_fall_back() {
    block_on(async {
        let sims: Vec<Sim> = (0..2)
            .map(|i| {
                Sim::new(
                    150 + i,
                    Faults::default(),
                    settings(StrategyKind::Canary, OldSlotPolicy::KeepWarm),
                )
            })
            .collect();
        let clouds: Vec<_> = (0..2).map(|i| (i, sims[i].runner("ci", None))).collect();
        let train = staged_train(&sims, &clouds).await;
        let mut history = sims[0].history();
        let new = history.last().expect("staged").slot;
        clouds[0]
            .1
            .set_production_weights(Weights::split(new, 50))
            .await
            .expect("weights");
        history.retain(|r| r.version != version(OLD));
        history.last_mut().expect("staged").status = Status::Shifting(50);
        sims[0].put_history(history);
        let versions: Vec<_> = (0..2).map(|i| (member_name(i), version(NEW))).collect();
        let (out, ()) = tokio::join!(train.promote(&versions), async {
            until("svc00 all on the new slot", || {
                sims[0].weights() == Weights::all_on(new)
            })
            .await;
            lock_taken_by_another_run(&sims[0]).await;
        });
        let error = out.error.as_ref().map(ToString::to_string);
        assert_eq!(out.stranded(), vec![member_name(0).as_str()], "{error:?}");
        let stranded = out
            .members
            .iter()
            .find(|m| m.service == member_name(0))
            .expect("svc00");
        assert!(
            stranded.detail.starts_with("lost the deploy lock"),
            "{}",
            stranded.detail
        );
    });
}

/// A train `rollback --to` a release the worker only ever staged (awaiting approval, never
/// promoted) is refused for the worker, which stays on the release it runs: a rollback
/// goes back to something that once ran in production, never forward to something no
/// one approved.
#[test]
fn a_train_rollback_to_a_release_a_worker_never_promoted_is_refused() {
    block_on(async {
        let sims = vec![Sim::new(
            160,
            Faults::default(),
            worker_settings(StrategyKind::AllAtOnce),
        )];
        let clouds: Vec<_> = vec![(0, sims[0].runner("ci", None))];
        let train = staged_train(&sims, &clouds).await;
        let out = train.rollback_to(Some(&version(NEW))).await;
        let error = out
            .error
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(
            error.contains("v1.1.0 never took this worker to a promoted release"),
            "{:?}: {error}",
            out.status
        );
        assert_eq!(sims[0].version_on(Slot::Blue), Some(version(OLD)));
    });
}
