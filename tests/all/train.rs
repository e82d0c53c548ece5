//! Release trains (issue 17) in the simulation: trains of 2–20 members with faults in any
//! member; the train invariant and every member's own invariants; the benchmark figures.

use cutover::sim::{Profile, StrategyKind, TrainReport, TrainScenario, run_train, seeds_from_env};

use crate::sim_support::block_on;

fn assert_clean(r: &TrainReport) {
    assert!(
        r.violations.is_empty(),
        "{} broke invariants:\n  {}\noutcomes: {:#?}\nlog tail:\n{}\nreplay: CUTOVER_SIM_SEED={} cargo nextest run --test all train_replay --no-capture",
        r.scenario,
        r.violations.join("\n  "),
        r.outcomes,
        r.log.join("\n"),
        r.scenario.seed
    );
}

/// The report's `i`th outcome starts with `prefix` (all its outcomes shown if not).
fn assert_starts(r: &TrainReport, i: usize, prefix: &str) {
    assert!(r.outcomes[i].starts_with(prefix), "{:?}", r.outcomes);
}

/// The report's `i`th outcome says `text` (all its outcomes shown if not).
fn assert_says(r: &TrainReport, i: usize, text: &str) {
    assert!(r.outcomes[i].contains(text), "{:?}", r.outcomes);
}

#[test]
fn train_every_seed_keeps_the_train_invariant() {
    let seeds = seeds_from_env(150);
    let mut seen = std::collections::BTreeMap::<&str, u32>::new();
    for seed in 0..seeds {
        let report = block_on(run_train(TrainScenario::from_seed(seed)));
        assert_clean(&report);
        let text = report.outcomes.join("\n");
        for (name, marker) in [
            ("promoted", "deploy: Promoted"),
            ("promote after stage", "promote: Promoted"),
            ("failed stage", "stage: Failed"),
            ("rolled back mid-shift", ": RolledBack ["),
            ("train rollback", "rollback: RolledBack"),
        ] {
            if text.contains(marker) {
                *seen.entry(name).or_default() += 1;
            }
        }
        // Workers in each situation: promoted with the train, rolled back with it, and
        // the one whose rollout ECS failed.
        let workers = (0..report.scenario.workers.len()).filter(|i| report.scenario.workers[*i]);
        for i in workers {
            let member = cutover::sim::member_name(i);
            for (name, status) in [
                ("worker promoted", "Promoted"),
                ("worker rolled back", "RolledBack"),
            ] {
                if text.contains(&format!("{member} {status}")) {
                    *seen.entry(name).or_default() += 1;
                }
            }
            if report.scenario.profiles[i] == Profile::EcsFailure
                && text.contains(&format!("{member}: ECS failed the rollout"))
            {
                *seen.entry("worker failed by ECS").or_default() += 1;
            }
        }
    }
    // The sweep must reach every situation, or the invariants above proved little.
    for name in [
        "promoted",
        "promote after stage",
        "failed stage",
        "rolled back mid-shift",
        "train rollback",
        "worker promoted",
        "worker rolled back",
        "worker failed by ECS",
    ] {
        assert!(
            seen.contains_key(name),
            "no seed reached: {name} ({seen:?})"
        );
    }
}

#[test]
fn train_replay() {
    let Some(seed) = std::env::var("CUTOVER_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    else {
        return;
    };
    let report = block_on(run_train(TrainScenario::from_seed(seed)));
    println!("{}\n{}", report.scenario, report.outcomes.join("\n"));
    assert_clean(&report);
}

#[test]
fn train_one_member_failing_validation_leaves_every_member_on_its_old_release() {
    let mut s = TrainScenario::calm(2, StrategyKind::Canary);
    s.profiles[1] = Profile::BadProbe;
    let report = block_on(run_train(s));
    assert_clean(&report);
    assert_starts(&report, 0, "deploy: Failed [svc00 Failed, svc01 Failed]");
}

#[test]
fn train_alarm_in_one_member_during_the_canary_rolls_every_member_back() {
    let mut s = TrainScenario::calm(3, StrategyKind::Canary);
    s.profiles[2] = Profile::Alarm;
    // Alarm profiles draw their firing time from the member's seed: find one that fires
    // while the train shifts.
    let report = (1..200)
        .map(|seed| {
            let s = TrainScenario { seed, ..s.clone() };
            block_on(run_train(s))
        })
        .find(|r| r.outcomes[0].starts_with("deploy: RolledBack"))
        .expect("some seed fires the alarm mid-shift");
    assert_clean(&report);
    assert_says(
        &report,
        0,
        "svc00 RolledBack, svc01 RolledBack, svc02 RolledBack",
    );
}

/// A train of two web services and a worker (issue 17.4), the worker last in lock order.
fn with_worker(profile: Profile) -> TrainScenario {
    let mut s = TrainScenario::calm(3, StrategyKind::Canary);
    s.workers[2] = true;
    s.profiles[2] = profile;
    s
}

#[test]
fn train_a_worker_is_rolled_in_place_with_the_train_and_promoted_with_it() {
    let report = block_on(run_train(with_worker(Profile::Calm)));
    // The invariants: the worker rolled only after both web members validated, recorded
    // Promoted no sooner than its bake after the roll, every member on the new release.
    assert_clean(&report);
    assert!(
        report.outcomes[0]
            .starts_with("deploy: Promoted [svc00 Promoted, svc01 Promoted, svc02 Promoted]"),
        "{:?}",
        report.outcomes
    );
}

#[test]
fn train_a_worker_whose_rollout_ecs_fails_fails_the_train_before_any_traffic_moves() {
    // Every way ECS fails a rollout (the circuit breaker, an image it cannot pull, an
    // essential container exiting, tasks it cannot place): the seeds draw each.
    let mut kinds = std::collections::BTreeSet::new();
    for seed in 1..40 {
        let report = block_on(run_train(TrainScenario {
            seed,
            ..with_worker(Profile::EcsFailure)
        }));
        assert_clean(&report);
        let deploy = &report.outcomes[0];
        assert!(
            deploy.starts_with("deploy: RolledBack [svc00 Failed, svc01 Failed, svc02 RolledBack]"),
            "seed {seed}: {deploy}"
        );
        assert!(deploy.contains("svc02: ECS failed the rollout"), "{deploy}");
        kinds.insert(deploy.contains("deployment failed") as u8);
    }
    assert_eq!(
        kinds.len(),
        2,
        "the circuit breaker and the other failures both ran"
    );
}

#[test]
fn train_an_alarm_in_a_web_member_rolls_the_rolled_worker_back_too() {
    let mut s = with_worker(Profile::Calm);
    s.profiles[0] = Profile::Alarm;
    let report = (1..200)
        .map(|seed| block_on(run_train(TrainScenario { seed, ..s.clone() })))
        .find(|r| r.outcomes[0].starts_with("deploy: RolledBack"))
        .expect("some seed fires the alarm while the train shifts");
    // The invariants check the worker ended on the old release.
    assert_clean(&report);
    assert_says(
        &report,
        0,
        "svc00 RolledBack, svc01 RolledBack, svc02 RolledBack",
    );
}

/// A worker's only signal beyond ECS's rollout is its service-wide alarm: one that fires
/// once the worker runs the new release (mid-shift or in the bake) rolls every member back,
/// the worker to its previous task definition. (Before, a worker's alarms were never read.)
#[test]
fn train_a_workers_alarm_after_its_roll_rolls_the_whole_train_back() {
    let report = (1..300)
        .map(|seed| {
            block_on(run_train(TrainScenario {
                seed,
                ..with_worker(Profile::Alarm)
            }))
        })
        .find(|r| {
            r.outcomes[0].starts_with("deploy: RolledBack") && r.outcomes[0].contains("svc02: ")
        })
        .expect("some seed fires the worker's alarm after its roll");
    assert_clean(&report);
    assert_says(
        &report,
        0,
        "svc00 RolledBack, svc01 RolledBack, svc02 RolledBack",
    );
    assert_says(&report, 0, "in ALARM");
}

/// Issue 17's benchmark in virtual time: 1, 5 and 20 services in one run. Targets: 20
/// services within 1.5× one's wall time and 20× one's AWS calls.
#[test]
fn train_bench_twenty_services_take_about_the_time_of_one() {
    for strategy in [StrategyKind::AllAtOnce, StrategyKind::Canary] {
        let (one_ms, one_calls, _) = block_on(cutover::sim::bench_train(1, strategy));
        for size in [5usize, 20] {
            let (ms, calls, peaks) = block_on(cutover::sim::bench_train(size, strategy));
            let wall = ms as f64 / one_ms as f64;
            let per = calls as f64 / one_calls as f64;
            println!(
                "{strategy:?}: {size} services {:.1}s {calls} calls; 1 service {:.1}s {one_calls} calls; wall ×{wall:.2}, calls ×{per:.2} (per member ×{:.2})",
                ms as f64 / 1000.0,
                one_ms as f64 / 1000.0,
                per / size as f64
            );
            println!("  peak calls in one virtual second, all members: {peaks:?}");
            assert!(
                wall <= 1.5,
                "{size} services took ×{wall:.2} the wall time of one"
            );
            assert!(
                per <= size as f64,
                "{size} services made ×{per:.2} the calls of one"
            );
        }
    }
}

/// Two trains sharing a member, started at once: locks are taken in sorted order, so one
/// train is refused (exit 5, naming the member) and releases what it took; neither waits on
/// the other and no lock is left behind.
#[test]
fn train_overlapping_trains_never_deadlock_and_leave_no_lock() {
    use cutover::config::settings::OldSlotPolicy;
    use cutover::engine::{EngineError, StageRequest, Train};
    use cutover::ports::Status;
    use cutover::sim::{Faults, NEW, OLD, Sim, settings, version};

    block_on(async {
        let sims: Vec<Sim> = (0..3)
            .map(|i| {
                Sim::new(
                    70 + i,
                    Faults::default(),
                    settings(StrategyKind::AllAtOnce, OldSlotPolicy::KeepWarm),
                )
            })
            .collect();
        let train = |who: &str, ids: &[usize]| {
            ids.iter()
                .map(|&i| {
                    let cloud = sims[i].runner(who, None);
                    (i, cloud)
                })
                .collect::<Vec<_>>()
        };
        let a = train("a", &[0, 1]);
        let b = train("b", &[2, 1]);
        let (ta, tb) = (
            Train::new(members(&sims, &a, "a")).expect("train a"),
            Train::new(members(&sims, &b, "b")).expect("train b"),
        );
        let requests = |clouds: &[(usize, cutover::sim::SimCloud)]| {
            clouds
                .iter()
                .map(|(i, _)| {
                    (
                        cutover::sim::member_name(*i),
                        StageRequest {
                            spec: sims[*i].spec(NEW),
                        },
                    )
                })
                .collect::<Vec<_>>()
        };
        let (ra, rb) = (requests(&a), requests(&b));
        let (oa, ob) = tokio::join!(ta.deploy(&ra), tb.deploy(&rb));
        let refused = [&oa, &ob]
            .iter()
            .filter(|o| matches!(o.error, Some(EngineError::LockHeld { .. })))
            .count();
        let promoted = [&oa, &ob]
            .iter()
            .filter(|o| o.status == Status::Promoted)
            .count();
        assert_eq!(
            (refused, promoted),
            (1, 1),
            "a: {:?} {:?}\nb: {:?} {:?}",
            oa.status,
            oa.error,
            ob.status,
            ob.error
        );
        let held = [&oa, &ob]
            .into_iter()
            .find_map(|o| o.error.as_ref().map(ToString::to_string))
            .expect("one refusal");
        assert!(held.contains("service svc01"), "{held}");
        for (i, sim) in sims.iter().enumerate() {
            assert_eq!(sim.lock_holder(), None, "svc0{i} lock left behind");
            assert!(sim.violations().is_empty(), "{:?}", sim.violations());
            let live = sim.weights().live().and_then(|s| sim.version_on(s));
            assert!(
                live == Some(version(NEW)) || live == Some(version(OLD)),
                "{live:?}"
            );
        }
        // The refused train's members did not move: each train is all or nothing.
        let (winner, loser) = if oa.status == Status::Promoted {
            (&a, &b)
        } else {
            (&b, &a)
        };
        for (i, _) in winner {
            let s = &sims[*i];
            assert_eq!(
                s.weights().live().and_then(|x| s.version_on(x)),
                Some(version(NEW))
            );
        }
        for (i, _) in loser.iter().filter(|(i, _)| *i != 1) {
            let s = &sims[*i];
            assert_eq!(
                s.weights().live().and_then(|x| s.version_on(x)),
                Some(version(OLD))
            );
        }
    });
}

pub(crate) fn members<'a>(
    sims: &'a [cutover::sim::Sim],
    clouds: &'a [(usize, cutover::sim::SimCloud)],
    who: &str,
) -> Vec<cutover::engine::Member<'a, cutover::sim::SimCloud>> {
    clouds
        .iter()
        .map(|(i, c)| cutover::engine::Member {
            service: cutover::sim::member_name(*i),
            engine: cutover::engine::Engine::new(c, c, &sims[*i].settings, who.to_string()),
        })
        .collect()
}

/// Against moto (real SSM, ELBv2, ECS adapters): a train whose second member's lock is
/// held by a live run is refused naming that member (exit 5), and the first member's lock,
/// already taken, is released; once free, a promote of a release nobody staged is refused
/// for both members with their production weights untouched and no lock left behind.
#[test]
fn train_against_moto_locks_in_order_and_releases_every_lock_on_refusal() {
    // The binary runs a command on its main thread (8 MiB of stack); a debug build's
    // train over the AWS SDK polls deeper than a test thread's 2 MiB, so run it the same way.
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(moto_train_refusals())
        })
        .expect("thread")
        .join()
        .expect("the moto train test");
}

async fn moto_train_refusals() {
    use cutover::engine::{Engine, EngineError, Member, Train};
    use cutover::ports::{Clock, Lock, Slot, Status, Store, Traffic, Weights};

    let (Some(a), Some(b)) = (
        crate::moto::Stack::create("ta"),
        crate::moto::Stack::create("tb"),
    ) else {
        return;
    };
    let (api, api_settings) = crate::aws::cloud_and_settings(&a).await;
    let (web, web_settings) = crate::aws::cloud_and_settings(&b).await;
    let reporter = cutover::report::console::Console::stderr();
    let train = || {
        Train::new(vec![
            Member {
                service: "web".into(),
                engine: Engine::new(&web, &reporter, &web_settings, "ci"),
            },
            Member {
                service: "api".into(),
                engine: Engine::new(&api, &reporter, &api_settings, "ci"),
            },
        ])
        .expect("train")
    };
    let now = web.now();
    let live = Lock {
        owner: "another run".into(),
        token: "other".into(),
        acquired_at: now,
        expires_at: now + 3_600_000,
    };
    web.create_lock(&live).await.unwrap();
    let v = cutover::version::Version::parse("v9.9.9").unwrap();
    let versions = vec![("api".to_string(), v.clone()), ("web".to_string(), v)];
    let refused = train().promote(&versions).await;
    let err = refused.error.expect("refused");
    assert!(matches!(err, EngineError::LockHeld { .. }), "{err}");
    assert!(err.to_string().contains("service web"), "{err}");
    assert_eq!(api.read_lock().await.unwrap(), None, "api's lock was left");
    assert_eq!(web.read_lock().await.unwrap(), Some(live));

    web.delete_lock().await.unwrap();
    let refused = train().promote(&versions).await;
    assert_eq!(refused.status, Status::Failed);
    assert_eq!(refused.members.len(), 2);
    assert!(
        refused.members.iter().all(|m| m.status == Status::Failed),
        "{:?}",
        refused.members
    );
    for cloud in [&api, &web] {
        assert_eq!(cloud.read_lock().await.unwrap(), None);
        assert_eq!(
            cloud.production_weights().await.unwrap(),
            Weights::all_on(Slot::Blue)
        );
    }
}

/// The CLI against moto: `promote --service a,b` runs the two as a train. Nothing is
/// staged, so both members refuse (exit 2), the table names both, and neither service's
/// production weights nor locks changed; `rollback --service a,b` with no earlier release
/// is refused the same way, and a dry run plans (and refuses) each member in turn.
#[test]
fn train_cli_promote_of_two_services_refuses_as_one_and_changes_nothing() {
    use cutover::ports::{Slot, Store, Traffic, Weights};

    let (Some(a), Some(b)) = (
        crate::moto::Stack::create("tca"),
        crate::moto::Stack::create("tcb"),
    ) else {
        return;
    };
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let root = a.config_dir(dir_a.path());
    let root_b = b.config_dir(dir_b.path());
    // One deploy/ folder holding both services (one environment).
    let from = root_b.join("services").join(&b.name);
    let to = root.join("services").join(&b.name);
    std::fs::create_dir_all(&to).unwrap();
    for f in std::fs::read_dir(&from).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
    }
    let services = format!("{},{}", a.name, b.name);
    let run = |args: &[&str]| {
        let mut cmd = crate::services::cutover_in(dir_a.path());
        cmd.args(["--config-dir", root.to_str().unwrap()])
            .args(args);
        for (k, v) in a.env() {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = run(&[
        "promote",
        "--env",
        "test",
        "--service",
        &services,
        "--tag",
        "v9.9.9",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stdout.contains("train Failed"), "{stdout}");
    assert!(
        stdout.contains(&a.name) && stdout.contains(&b.name),
        "{stdout}"
    );
    assert!(stderr.contains("refusing to promote v9.9.9"), "{stderr}");
    let out = run(&["rollback", "--env", "test", "--service", &services]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("train Failed"), "{stdout}");
    // A dry run plans each member under its own heading; each says why it would refuse.
    let out = run(&[
        "promote",
        "--env",
        "test",
        "--service",
        &services,
        "--tag",
        "v9.9.9",
        "--dry-run",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    let (at_a, at_b) = (
        stdout.find(&format!("== {}", a.name)),
        stdout.find(&format!("== {}", b.name)),
    );
    assert!(at_a.is_some() && at_b > at_a, "{stdout}");
    assert_eq!(
        stdout
            .matches("refusing to promote v9.9.9: nothing is staged")
            .count(),
        2,
        "{stdout}"
    );
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    for stack in [&a, &b] {
                        let (cloud, _) = crate::aws::cloud_and_settings(stack).await;
                        assert_eq!(cloud.read_lock().await.unwrap(), None);
                        assert_eq!(
                            cloud.production_weights().await.unwrap(),
                            Weights::all_on(Slot::Blue)
                        );
                    }
                })
        })
        .unwrap()
        .join()
        .unwrap();
}

/// The bad day: a third of every call throttled while one member's alarm fires during the
/// canary — every member still goes back to its old release, and a promoted train is still
/// rolled back whole under the same throttling.
#[test]
fn train_rolls_back_whole_while_a_member_fails_and_aws_throttles() {
    let mut failing = TrainScenario::calm(4, StrategyKind::Canary);
    failing.profiles[1] = Profile::Alarm;
    failing.throttle = 0.33;
    let report = (1..300)
        .map(|seed| {
            block_on(run_train(TrainScenario {
                seed,
                ..failing.clone()
            }))
        })
        .find(|r| r.outcomes[0].starts_with("deploy: RolledBack"))
        .expect("some seed fires the alarm mid-shift");
    assert_clean(&report);
    assert!(
        report.outcomes[0]
            .contains("svc00 RolledBack, svc01 RolledBack, svc02 RolledBack, svc03 RolledBack"),
        "{:?}",
        report.outcomes
    );

    let mut calm = TrainScenario::calm(4, StrategyKind::Linear);
    calm.rollback = true;
    calm.throttle = 0.33;
    let report = block_on(run_train(calm));
    assert_clean(&report);
    assert_starts(&report, 0, "deploy: Promoted");
    assert_starts(&report, 1, "rollback: RolledBack [svc00 RolledBack");
}

/// The runner dies mid-train (the process gone at an await point: every member stops at
/// once, locks left behind). After the locks expire, a re-run of the train — the approval
/// job's promote, or a rollback — converges every member onto one release (invariant 6 for
/// the train), wherever the crash happened: staging, canary, bake.
#[test]
fn train_rerun_after_a_crash_converges_every_member_onto_one_release() {
    use cutover::config::settings::OldSlotPolicy;
    use cutover::engine::{StageRequest, Train};
    use cutover::ports::Status;
    use cutover::sim::{Faults, NEW, OLD, Sim, member_name, settings, version};
    use std::time::Duration;

    for (n, kill_after) in [5u64, 40, 90, 150, 230, 300, 420].into_iter().enumerate() {
        for rerun_promotes in [true, false] {
            block_on(async {
                let sims: Vec<Sim> = (0..3)
                    .map(|i| {
                        let strategy = [StrategyKind::Canary, StrategyKind::Linear][i % 2];
                        Sim::new(
                            90 + i as u64,
                            Faults::default(),
                            settings(strategy, OldSlotPolicy::KeepWarm),
                        )
                    })
                    .collect();
                let ci: Vec<_> = (0..3).map(|i| (i, sims[i].runner("ci", None))).collect();
                let train = Train::new(members(&sims, &ci, "ci")).expect("train");
                let requests: Vec<_> = (0..3)
                    .map(|i| {
                        (
                            member_name(i),
                            StageRequest {
                                spec: sims[i].spec(NEW),
                            },
                        )
                    })
                    .collect();
                let crashed =
                    tokio::time::timeout(Duration::from_secs(kill_after), train.deploy(&requests))
                        .await
                        .is_err();
                assert!(crashed, "kill at {kill_after}s came after the deploy ended");
                drop(train);
                tokio::time::sleep(Duration::from_secs(301)).await;
                let ops: Vec<_> = (0..3).map(|i| (i, sims[i].runner("ops", None))).collect();
                let again = Train::new(members(&sims, &ops, "ops")).expect("train");
                let end = if rerun_promotes {
                    let versions: Vec<_> = (0..3).map(|i| (member_name(i), version(NEW))).collect();
                    again.promote(&versions).await
                } else {
                    again.rollback().await
                };
                let live: Vec<_> = sims
                    .iter()
                    .map(|s| s.weights().live().and_then(|x| s.version_on(x)))
                    .collect();
                let what = format!(
                    "case {n}: killed at {kill_after}s, re-run {}: {} {:?} live {live:?}",
                    if rerun_promotes {
                        "promote"
                    } else {
                        "rollback"
                    },
                    end.status,
                    end.error
                );
                println!("{what}");
                assert!(live.iter().all(|v| v == &live[0]), "{what}");
                let want = if end.status == Status::Promoted {
                    NEW
                } else {
                    OLD
                };
                assert_eq!(live[0], Some(version(want)), "{what}");
                for s in &sims {
                    s.check_end_state(live[0].as_ref());
                    assert!(s.violations().is_empty(), "{what}: {:?}", s.violations());
                    assert_eq!(s.lock_holder(), None, "{what}");
                }
            });
        }
    }
}

/// Two calm simulated services (seeds `seed`, `seed + 1`) and a runner's cloud for each.
pub(crate) fn pair(seed: u64) -> (Vec<cutover::sim::Sim>, Vec<(usize, cutover::sim::SimCloud)>) {
    pair_with(seed, StrategyKind::AllAtOnce)
}

fn pair_with(
    seed: u64,
    kind: StrategyKind,
) -> (Vec<cutover::sim::Sim>, Vec<(usize, cutover::sim::SimCloud)>) {
    pair_kept(
        seed,
        kind,
        cutover::config::settings::OldSlotPolicy::KeepWarm,
    )
}

fn pair_kept(
    seed: u64,
    kind: StrategyKind,
    policy: cutover::config::settings::OldSlotPolicy,
) -> (Vec<cutover::sim::Sim>, Vec<(usize, cutover::sim::SimCloud)>) {
    use cutover::sim::{Faults, Sim, settings};
    let sims: Vec<Sim> = (0..2)
        .map(|i| Sim::new(seed + i, Faults::default(), settings(kind, policy)))
        .collect();
    let clouds = (0..2).map(|i| (i, sims[i].runner("ci", None))).collect();
    (sims, clouds)
}

/// Every member's request to stage the new release.
pub(crate) fn new_release(
    sims: &[cutover::sim::Sim],
) -> Vec<(String, cutover::engine::StageRequest)> {
    (0..sims.len())
        .map(|i| {
            let spec = sims[i].spec(cutover::sim::NEW);
            (
                cutover::sim::member_name(i),
                cutover::engine::StageRequest { spec },
            )
        })
        .collect()
}

/// Issue 17.3: the train is recorded beside each member's history. A member staged by a
/// train (one that then died, or is waiting for approval) cannot be promoted alone — that
/// would run production on half a release; the train's own promote moves both. (Before
/// the record, a single-service promote of the member went through.)
#[test]
fn train_a_member_staged_by_a_train_is_not_promoted_alone() {
    use cutover::engine::{Engine, EngineError, Train};
    use cutover::ports::Status;
    use cutover::sim::{NEW, OLD, member_name, version};

    block_on(async {
        let (sims, clouds) = pair(90);
        let requests = new_release(&sims);
        let staged = Train::new(members(&sims, &clouds, "ci"))
            .unwrap()
            .stage(&requests)
            .await;
        assert_eq!(
            staged.status,
            Status::AwaitingApproval,
            "{:?}",
            staged.error
        );

        let (_, cloud) = &clouds[0];
        let alone = Engine::new(cloud, cloud, &sims[0].settings, "laptop")
            .promote(&version(NEW))
            .await;
        let Err(EngineError::Usage(why)) = alone else {
            panic!("a member promoted alone: {alone:?}");
        };
        assert!(why.contains("staged as one train"), "{why}");
        assert!(
            why.contains(&format!("{},{}", member_name(0), member_name(1))),
            "{why}"
        );
        for sim in &sims {
            assert_eq!(
                sim.weights().live().and_then(|s| sim.version_on(s)),
                Some(version(OLD))
            );
            assert_eq!(sim.lock_holder(), None);
        }

        promote_whole_train(&sims, &clouds).await;
    });
}

/// The way out the refusal names: a member staged again on its own is its own release
/// again (its entry no longer lists the train) and is promoted alone.
#[test]
fn train_a_member_staged_again_alone_is_promoted_alone() {
    use cutover::engine::{Engine, StageRequest, Train};
    use cutover::ports::Status;
    use cutover::sim::{NEW, version};

    block_on(async {
        let (sims, clouds) = pair(95);
        let requests = new_release(&sims);
        let train = Train::new(members(&sims, &clouds, "ci")).unwrap();
        assert_eq!(
            train.stage(&requests).await.status,
            Status::AwaitingApproval
        );

        let (_, cloud) = &clouds[0];
        let alone = Engine::new(cloud, cloud, &sims[0].settings, "laptop");
        let staged = alone
            .stage(&StageRequest {
                spec: sims[0].spec(NEW),
            })
            .await
            .expect("staged again alone");
        assert!(
            staged.release.train.is_empty(),
            "{:?}",
            staged.release.train
        );
        let promoted = alone.promote(&version(NEW)).await.expect("promoted alone");
        assert_eq!(promoted.version, version(NEW));
        assert!(
            sims[0].violations().is_empty(),
            "{:?}",
            sims[0].violations()
        );
    });
}

/// Two canary services staged as one train, awaiting approval.
async fn staged_canary_pair(
    seed: u64,
) -> (Vec<cutover::sim::Sim>, Vec<(usize, cutover::sim::SimCloud)>) {
    let (sims, clouds) = pair_with(seed, StrategyKind::Canary);
    let staged = cutover::engine::Train::new(members(&sims, &clouds, "ci"))
        .unwrap()
        .stage(&new_release(&sims))
        .await;
    assert_eq!(
        staged.status,
        cutover::ports::Status::AwaitingApproval,
        "{:?}",
        staged.error
    );
    (sims, clouds)
}

/// Stage a canary train of two, then promote it; `between` runs after the stage (a crash's
/// or a person's change). Returns the promote's outcome and each member's log from then on.
async fn canary_train_promote(
    seed: u64,
    between: impl AsyncFnOnce(&[cutover::sim::Sim], &[(usize, cutover::sim::SimCloud)]),
) -> (
    cutover::engine::TrainOutcome,
    Vec<Vec<String>>,
    Vec<cutover::sim::Sim>,
) {
    use cutover::engine::Train;
    use cutover::sim::{NEW, member_name, version};
    let (sims, clouds) = staged_canary_pair(seed).await;
    between(&sims, &clouds).await;
    let marks: Vec<usize> = sims.iter().map(|s| s.log().len()).collect();
    let versions: Vec<_> = (0..2).map(|i| (member_name(i), version(NEW))).collect();
    let out = Train::new(members(&sims, &clouds, "ci"))
        .unwrap()
        .promote(&versions)
        .await;
    let logs = sims
        .iter()
        .zip(marks)
        .map(|(s, m)| s.log()[m..].to_vec())
        .collect();
    (out, logs, sims)
}

/// The staged slot of a simulated service (its newest history entry).
fn staged_slot(sim: &cutover::sim::Sim) -> cutover::ports::Slot {
    sim.history().last().expect("a staged release").slot
}

/// A train resumed with one member further along (a hand-set 50%, or a crash between two
/// members' writes) never moves that member back to a lower step: the others catch up, then
/// all go on together.
#[test]
fn train_a_member_further_along_is_never_moved_back() {
    use cutover::ports::{Status, Traffic, Weights};
    block_on(async {
        let (out, logs, sims) = canary_train_promote(101, async |sims, clouds| {
            let new = staged_slot(&sims[0]);
            clouds[0]
                .1
                .set_production_weights(Weights::split(new, 50))
                .await
                .unwrap();
            let mut history = sims[0].history();
            history.last_mut().unwrap().status = Status::Shifting(50);
            sims[0].put_history(history);
        })
        .await;
        assert_eq!(out.status, Status::Promoted, "{:?}", out.error);
        let new = staged_slot(&sims[0]);
        let on_new: Vec<u8> = logs[0]
            .iter()
            .filter(|l| l.contains(" set_production_weights("))
            .map(|l| {
                let w = if new == cutover::ports::Slot::Blue {
                    l.split("(blue ").nth(1)
                } else {
                    l.split("/ green ").nth(1)
                };
                w.and_then(|w| w.split('%').next())
                    .and_then(|p| p.parse().ok())
                    .expect("a weight")
            })
            .collect();
        assert!(!on_new.is_empty(), "{:#?}", logs[0]);
        assert!(
            on_new.iter().all(|p| *p >= 50),
            "moved back from 50%: {on_new:?}"
        );
    });
}

/// The probes of a train's shift judge the release being promoted (invariant 12): a member
/// whose test listener was pointed elsewhere after the stage has it pointed back first.
#[test]
fn train_a_members_test_listener_moved_away_is_pointed_back_before_the_shift() {
    use cutover::ports::{Status, Traffic};
    block_on(async {
        let (out, _, sims) = canary_train_promote(103, async |sims, clouds| {
            let old = staged_slot(&sims[1]).other();
            clouds[1].1.point_test_listener(old).await.unwrap();
        })
        .await;
        assert_eq!(out.status, Status::Promoted, "{:?}", out.error);
        let runner = sims[1].runner("check", None);
        assert_eq!(
            runner.test_listener().await.unwrap(),
            Some(staged_slot(&sims[1])),
            "the test listener was left on the old slot"
        );
        assert!(
            sims[1].violations().is_empty(),
            "{:?}",
            sims[1].violations()
        );
    });
}

/// A train's bake is recorded when it starts, after the last step: each member's kept
/// timeline reads Shifting(10%), Shifting(100%), Baking, Promoted — not Baking at 10%.
#[test]
fn train_members_record_the_bake_after_the_last_step() {
    use cutover::ports::Status;
    block_on(async {
        let (out, _, sims) = canary_train_promote(105, async |_, _| {}).await;
        assert_eq!(out.status, Status::Promoted, "{:?}", out.error);
        for sim in &sims {
            let entry = sim.history().last().cloned().unwrap();
            let statuses: Vec<Status> = entry.transitions.iter().map(|t| t.status).collect();
            let at = |s: Status| statuses.iter().position(|x| *x == s);
            let (full, bake) = (at(Status::Shifting(100)), at(Status::Baking));
            assert!(
                full.is_some() && bake > full,
                "the bake before the last step: {statuses:?}"
            );
            assert_eq!(
                statuses.iter().filter(|s| **s == Status::Baking).count(),
                1,
                "{statuses:?}"
            );
        }
    });
}

/// Reports a member's statuses on, and when it reports Baking, notes what the member's
/// history said at that moment.
struct SeesHistory<'a> {
    sim: &'a cutover::sim::Sim,
    inner: &'a cutover::sim::SimCloud,
    at_bake: std::sync::Mutex<Vec<cutover::ports::Status>>,
}

impl cutover::ports::Reporter for SeesHistory<'_> {
    fn status(&self, event: &cutover::ports::StatusEvent) {
        if event.status == cutover::ports::Status::Baking {
            let recorded = self.sim.history().last().map(|r| r.status);
            self.at_bake.lock().unwrap().extend(recorded);
        }
        self.inner.status(event);
    }

    fn notice(&self, message: &str) {
        self.inner.notice(message);
    }
}

/// Every step of a train is in each member's history as it happens (what `status` and a
/// re-run after a crash read): when a member reports its bake, its history already says
/// Baking.
#[test]
fn train_members_history_says_baking_when_the_bake_is_reported() {
    use cutover::engine::{Engine, Member, Train};
    use cutover::ports::Status;
    use cutover::sim::{NEW, member_name, version};
    block_on(async {
        let (sims, clouds) = staged_canary_pair(107).await;
        let seeing: Vec<SeesHistory<'_>> = clouds
            .iter()
            .map(|(i, c)| SeesHistory {
                sim: &sims[*i],
                inner: c,
                at_bake: Default::default(),
            })
            .collect();
        let train = Train::new(
            clouds
                .iter()
                .zip(&seeing)
                .map(|((i, c), r)| Member {
                    service: member_name(*i),
                    engine: Engine::new(c, r, &sims[*i].settings, "ci"),
                })
                .collect(),
        )
        .unwrap();
        let versions: Vec<_> = (0..2).map(|i| (member_name(i), version(NEW))).collect();
        let out = train.promote(&versions).await;
        assert_eq!(out.status, Status::Promoted, "{:?}", out.error);
        for s in &seeing {
            assert_eq!(*s.at_bake.lock().unwrap(), vec![Status::Baking]);
        }
    });
}

/// After a train's promote each member's old slot follows the old-slot policy: kept at
/// capacity under keep-warm (the fast rollback), scaled to zero under scale-to-zero.
#[test]
fn train_members_old_slots_follow_the_old_slot_policy() {
    use cutover::config::settings::OldSlotPolicy;
    use cutover::engine::Train;
    use cutover::ports::Status;
    block_on(async {
        for (policy, warm) in [
            (OldSlotPolicy::KeepWarm, true),
            (OldSlotPolicy::ScaleToZero, false),
        ] {
            let (sims, clouds) = pair_kept(109, StrategyKind::AllAtOnce, policy);
            let out = Train::new(members(&sims, &clouds, "ci"))
                .unwrap()
                .deploy(&new_release(&sims))
                .await;
            assert_eq!(out.status, Status::Promoted, "{:?}", out.error);
            for sim in &sims {
                let old = staged_slot(sim).other();
                assert_eq!(sim.desired_on(old) > 0, warm, "{policy:?}");
            }
        }
    });
}

/// A member's alarm during the canary's first step ends the train saying where it failed:
/// at Shifting(10%), not at a bake it never reached.
#[test]
fn train_failure_names_the_step_it_failed_at() {
    use cutover::config::settings::OldSlotPolicy;
    use cutover::engine::{EngineError, Train};
    use cutover::ports::Status;
    use cutover::sim::{Faults, Sim, settings};
    block_on(async {
        let sims: Vec<Sim> = (0..2)
            .map(|i| {
                let faults = Faults {
                    alarm_at: (i == 1).then_some(std::time::Duration::ZERO),
                    ..Faults::default()
                };
                let settings = settings(StrategyKind::Canary, OldSlotPolicy::KeepWarm);
                Sim::new(111 + i, faults, settings)
            })
            .collect();
        let clouds: Vec<_> = (0..2).map(|i| (i, sims[i].runner("ci", None))).collect();
        let out = Train::new(members(&sims, &clouds, "ci"))
            .unwrap()
            .deploy(&new_release(&sims))
            .await;
        assert_eq!(out.status, Status::RolledBack, "{:?}", out.error);
        match out.error {
            Some(EngineError::Failed { status_reached, .. }) => {
                assert_eq!(status_reached, "Shifting(10%)");
            }
            other => panic!("{other:?}"),
        }
        // The culprit says what failed; the others, that the train failed in it.
        let culprit = cutover::sim::member_name(1);
        for m in &out.members {
            let blamed = m.detail.contains(&format!("the train failed in {culprit}"));
            assert_eq!(blamed, m.service != culprit, "{}: {}", m.service, m.detail);
        }
    });
}

/// A train's stranded members are the ones that may not be on a good release: exactly its
/// RollbackFailed members (what the simulation's train invariant and the exit code read).
#[test]
fn train_stranded_names_exactly_the_members_not_back() {
    use cutover::engine::{MemberOutcome, TrainOutcome};
    use cutover::ports::Status;
    let member = |service: &str, status| MemberOutcome {
        service: service.into(),
        from: None,
        to: None,
        status,
        detail: String::new(),
        seconds: 0,
    };
    let outcome = TrainOutcome {
        status: Status::RollbackFailed,
        members: vec![
            member("api", Status::RolledBack),
            member("web", Status::RollbackFailed),
            member("worker", Status::Failed),
        ],
        error: None,
        id: None,
    };
    assert_eq!(outcome.stranded(), vec!["web"]);
}

/// A train rollback with nothing to roll back to (each member's first release is live) is
/// refused for every member — Failed, production untouched — not a stranded RollbackFailed.
#[test]
fn train_rollback_with_nothing_earlier_is_refused_not_stranded() {
    use cutover::engine::Train;
    use cutover::ports::Status;
    use cutover::sim::{OLD, version};
    block_on(async {
        let (sims, clouds) = pair(113);
        let out = Train::new(members(&sims, &clouds, "ci"))
            .unwrap()
            .rollback()
            .await;
        assert_eq!(out.status, Status::Failed, "{:?}", out.error);
        assert!(
            out.members.iter().all(|m| m.status == Status::Failed),
            "{:?}",
            out.members
        );
        assert!(out.stranded().is_empty());
        for sim in &sims {
            assert_eq!(
                sim.weights().live().and_then(|s| sim.version_on(s)),
                Some(version(OLD))
            );
        }
    });
}

/// Issue 17.3 with a worker: a release staged by a train of three (two web services and a
/// worker) is refused to a train promote of fewer members — the two web services without
/// the worker, or one web service with the worker — nothing moves, no lock is left; the
/// whole train then promotes, the worker rolled in place. (Before, a train's own promote
/// never compared the members: a promote of two of the three went through.)
#[test]
fn train_a_train_staged_release_is_not_promoted_by_part_of_the_train() {
    use cutover::engine::Train;
    use cutover::ports::Status;
    use cutover::sim::{NEW, OLD, member_name, version};

    block_on(async {
        let sims = with_a_worker(300);
        let clouds: Vec<_> = (0..3).map(|i| (i, sims[i].runner("ci", None))).collect();
        let staged = Train::new(members(&sims, &clouds, "ci"))
            .unwrap()
            .stage(&new_release(&sims))
            .await;
        assert_eq!(
            staged.status,
            Status::AwaitingApproval,
            "{:?}",
            staged.error
        );
        for part in [[0, 1], [1, 2]] {
            let some: Vec<_> = part.iter().map(|i| clouds[*i].clone()).collect();
            let versions: Vec<_> = part
                .iter()
                .map(|i| (member_name(*i), version(NEW)))
                .collect();
            let refused = Train::new(members(&sims, &some, "ci"))
                .unwrap()
                .promote(&versions)
                .await;
            assert_eq!(
                refused.status,
                Status::Failed,
                "{part:?}: {:?}",
                refused.error
            );
            let why = refused.error.map(|e| e.to_string()).unwrap_or_default();
            assert!(
                why.contains("staged as one train of svc00, svc01, svc02"),
                "{why}"
            );
            for sim in &sims {
                assert_eq!(
                    sim.weights().live().and_then(|s| sim.version_on(s)),
                    Some(version(OLD)),
                    "{part:?}"
                );
                assert_eq!(sim.lock_holder(), None);
            }
        }
        promote_whole_train(&sims, &clouds).await;
    });
}

/// The whole train's promote of the new release: every member on it, no invariant broken.
async fn promote_whole_train(
    sims: &[cutover::sim::Sim],
    clouds: &[(usize, cutover::sim::SimCloud)],
) -> cutover::engine::TrainOutcome {
    use cutover::sim::{NEW, member_name, version};
    let versions: Vec<_> = (0..sims.len())
        .map(|i| (member_name(i), version(NEW)))
        .collect();
    let promoted = cutover::engine::Train::new(members(sims, clouds, "ci"))
        .unwrap()
        .promote(&versions)
        .await;
    assert_eq!(
        promoted.status,
        cutover::ports::Status::Promoted,
        "{:?}",
        promoted.error
    );
    for sim in sims {
        assert_eq!(
            sim.weights().live().and_then(|s| sim.version_on(s)),
            Some(version(NEW))
        );
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    }
    promoted
}

/// The train run id on each member's entry of the new release.
fn staged_run_ids(sims: &[cutover::sim::Sim]) -> Vec<String> {
    use cutover::sim::{NEW, version};
    sims.iter()
        .map(|sim| {
            let h = sim.history();
            let e = h
                .iter()
                .find(|r| r.version == version(NEW))
                .expect("staged");
            e.train_id.clone()
        })
        .collect()
}

/// Two web services and a worker (last), each its own calm world; their runner `ci`; and
/// the release each stages.
#[allow(clippy::type_complexity)]
fn worker_train(
    seed: u64,
) -> (
    Vec<cutover::sim::Sim>,
    Vec<(usize, cutover::sim::SimCloud)>,
    Vec<(String, cutover::engine::StageRequest)>,
) {
    let sims = with_a_worker(seed);
    let clouds = (0..3).map(|i| (i, sims[i].runner("ci", None))).collect();
    let requests = new_release(&sims);
    (sims, clouds, requests)
}

/// Two web services and a worker (last), each its own calm world.
fn with_a_worker(seed: u64) -> Vec<cutover::sim::Sim> {
    use cutover::sim::{Faults, Sim, settings, worker_settings};
    (0..3)
        .map(|i| {
            let s = if i == 2 {
                worker_settings(StrategyKind::AllAtOnce)
            } else {
                settings(
                    StrategyKind::AllAtOnce,
                    cutover::config::settings::OldSlotPolicy::KeepWarm,
                )
            };
            Sim::new(seed + i as u64, Faults::default(), s)
        })
        .collect()
}

/// A worker's staged entry is promotable only while staged (or rolled by a train that
/// died): one recorded Failed with its failed train is refused with its own reason, and a
/// worker already running the release stages nothing.
#[test]
fn train_a_worker_is_promoted_only_from_a_staged_entry() {
    use cutover::ports::Status;
    use cutover::sim::{NEW, member_name, version};

    block_on(async {
        let sims = with_a_worker(700);
        let clouds: Vec<_> = (0..3).map(|i| (i, sims[i].runner("ci", None))).collect();
        let train = || cutover::engine::Train::new(members(&sims, &clouds, "ci")).unwrap();
        let deployed = train().deploy(&new_release(&sims)).await;
        assert_eq!(deployed.status, Status::Promoted, "{:?}", deployed.error);
        // Staged again: the worker already runs it, nothing to stage.
        let again = train().stage(&new_release(&sims)).await;
        let worker = again
            .members
            .iter()
            .find(|m| m.service == member_name(2))
            .expect("the worker's outcome");
        assert_eq!(worker.status, Status::Promoted, "{worker:?}");
        assert_eq!(
            sims[2]
                .history()
                .iter()
                .filter(|r| r.version == version(NEW))
                .count(),
            1,
            "nothing recorded again"
        );
    });
    block_on(async {
        let mut sims = with_a_worker(710);
        // The first web member never validates: the stage fails, the worker's entry is
        // recorded Failed with the train.
        sims[0] = cutover::sim::Sim::new(
            710,
            cutover::sim::Faults {
                bad_probe: true,
                ..Default::default()
            },
            sims[0].settings.clone(),
        );
        let clouds: Vec<_> = (0..3).map(|i| (i, sims[i].runner("ci", None))).collect();
        let train = || cutover::engine::Train::new(members(&sims, &clouds, "ci")).unwrap();
        let staged = train().stage(&new_release(&sims)).await;
        assert_eq!(staged.status, Status::Failed, "{:?}", staged.error);
        let versions: Vec<_> = (0..3).map(|i| (member_name(i), version(NEW))).collect();
        let refused = train().promote(&versions).await;
        let worker = refused
            .members
            .iter()
            .find(|m| m.service == member_name(2))
            .expect("the worker's outcome");
        assert_eq!(worker.status, Status::Failed, "{worker:?}");
        assert!(
            worker
                .detail
                .contains("stage it again with the whole train"),
            "{worker:?}"
        );
    });
}

/// A promote of a train already promoted moves nothing: every member, the worker too,
/// says it already runs the release.
#[test]
fn train_a_promote_of_a_train_already_promoted_moves_nothing() {
    use cutover::ports::Status;
    use cutover::sim::{NEW, member_name, version};

    block_on(async {
        let sims = with_a_worker(730);
        let clouds: Vec<_> = (0..3).map(|i| (i, sims[i].runner("ci", None))).collect();
        let train = || cutover::engine::Train::new(members(&sims, &clouds, "ci")).unwrap();
        let deployed = train().deploy(&new_release(&sims)).await;
        assert_eq!(deployed.status, Status::Promoted, "{:?}", deployed.error);
        let versions: Vec<_> = (0..3).map(|i| (member_name(i), version(NEW))).collect();
        let again = train().promote(&versions).await;
        assert_eq!(again.status, Status::Promoted, "{:?}", again.error);
        let worker = &again.members[2];
        assert_eq!(
            (worker.status, worker.detail.as_str()),
            (Status::Promoted, "already running it"),
            "{worker:?}"
        );
    });
}

/// A train of workers only (no web member to shift) still bakes each worker for its
/// whole bake before recording it Promoted (the simulation's I9 judges it).
#[test]
fn train_of_workers_only_bakes_them_in_full() {
    let mut s = TrainScenario::calm(2, StrategyKind::AllAtOnce);
    s.workers = vec![true, true];
    let report = block_on(run_train(s));
    assert_clean(&report);
    assert_starts(
        &report,
        0,
        "deploy: Promoted [svc00 Promoted, svc01 Promoted]",
    );
}

/// A worker whose service stops running the release during the bake (someone scaled it
/// down by hand) fails the train at the check after the bake: every member back on the
/// release from before the train, the worker rolled back in place.
#[test]
fn train_a_worker_no_longer_rolled_out_after_the_bake_rolls_the_train_back() {
    use cutover::ports::{Slot, Status};
    use cutover::sim::{Degradation, NEW, OLD, member_name, version};

    block_on(async {
        let sims = with_a_worker(720);
        let clouds: Vec<_> = (0..3).map(|i| (i, sims[i].runner("ci", None))).collect();
        let train = cutover::engine::Train::new(members(&sims, &clouds, "ci")).unwrap();
        let staged = train.stage(&new_release(&sims)).await;
        assert_eq!(
            staged.status,
            Status::AwaitingApproval,
            "{:?}",
            staged.error
        );
        let versions: Vec<_> = (0..3).map(|i| (member_name(i), version(NEW))).collect();
        // Half-way through the 180 s bake (the roll and the shift take well under 2 min).
        let by_hand = async {
            tokio::time::sleep(std::time::Duration::from_secs(200)).await;
            sims[2].degrade(Slot::Blue, Degradation::ScaledDown);
        };
        let (promoted, ()) = tokio::join!(train.promote(&versions), by_hand);
        assert_eq!(promoted.status, Status::RolledBack, "{:?}", promoted.error);
        let why = promoted.error.map(|e| e.to_string()).unwrap_or_default();
        assert!(why.contains("no longer runs the release"), "{why}");
        let live = |s: &cutover::sim::Sim| s.weights().live().and_then(|slot| s.version_on(slot));
        for sim in &sims {
            assert_eq!(live(sim), Some(version(OLD)));
        }
    });
}

/// `rollback --to` of a train (the action's `rollback: v1.0.0` with several services):
/// every member, workers too, back to its own entry of that tag at once; a tag no member
/// ran is refused for each, nothing moved. (Before, `--to` was refused for a train and the
/// action rolled services back one after another.)
#[test]
fn train_rollback_to_a_tag_returns_every_member_to_it() {
    use cutover::ports::Status;
    use cutover::sim::{NEW, OLD, Sim, version};

    block_on(async {
        let sims = with_a_worker(500);
        let clouds: Vec<_> = (0..3).map(|i| (i, sims[i].runner("ci", None))).collect();
        let train = || cutover::engine::Train::new(members(&sims, &clouds, "ci")).unwrap();
        let staged = train().stage(&new_release(&sims)).await;
        let checked: Vec<_> = staged.members.iter().map(|m| m.detail.as_str()).collect();
        assert_eq!(
            checked,
            [
                "validated on green",
                "validated on green",
                "registered; rolls in place with the train"
            ],
            "{:?}",
            staged.members
        );
        let deployed = train().deploy(&new_release(&sims)).await;
        assert_eq!(deployed.status, Status::Promoted, "{:?}", deployed.error);
        // Each member's "from → to", the worker's read from its one service.
        for m in &deployed.members {
            assert_eq!(
                (m.from.clone(), m.to.clone()),
                (Some(version(OLD)), Some(version(NEW))),
                "{m:?}"
            );
        }

        let unknown = version("v9.9.9");
        let refused = train().rollback_to(Some(&unknown)).await;
        assert_eq!(refused.status, Status::Failed, "{:?}", refused.error);
        assert!(
            refused
                .members
                .iter()
                .all(|m| m.status == Status::Failed && m.detail.contains("v9.9.9")),
            "{:?}",
            refused.members
        );
        let live = |s: &Sim| s.weights().live().and_then(|slot| s.version_on(slot));
        assert!(sims.iter().all(|s| live(s) == Some(version(NEW))));

        let back = train().rollback_to(Some(&version(OLD))).await;
        assert_eq!(back.status, Status::RolledBack, "{:?}", back.error);
        // Each member's line: from what it ran, how it went back.
        let lines: Vec<_> = back
            .members
            .iter()
            .map(|m| (m.from.clone(), m.detail.as_str()))
            .collect();
        assert_eq!(
            lines,
            [
                (Some(version(NEW)), "fast path, on blue"),
                (Some(version(NEW)), "fast path, on blue"),
                (Some(version(NEW)), "in place path, on blue"),
            ],
            "{:?}",
            back.members
        );
        for sim in &sims {
            assert_eq!(live(sim), Some(version(OLD)));
            assert!(sim.violations().is_empty(), "{:?}", sim.violations());
            assert_eq!(sim.lock_holder(), None);
        }
    });
}

/// Members staged on their own — web services alone, a worker alone (a train of one) —
/// may be promoted together as one train: only a train of several binds its members.
#[test]
fn train_members_staged_on_their_own_are_promoted_together() {
    use cutover::ports::Status;
    use cutover::sim::{NEW, member_name, version};

    block_on(async {
        let (sims, clouds, requests) = worker_train(740);
        for (i, (_, request)) in requests.iter().enumerate().take(2) {
            let cloud = &clouds[i].1;
            let staged = cutover::engine::Engine::new(cloud, cloud, &sims[i].settings, "ci")
                .stage(request)
                .await;
            assert!(staged.is_ok(), "{staged:?}");
        }
        let worker = cutover::engine::Train::new(members(&sims, &clouds[2..], "ci"))
            .unwrap()
            .stage(&requests[2..])
            .await;
        assert_eq!(
            worker.status,
            Status::AwaitingApproval,
            "{:?}",
            worker.error
        );
        let versions: Vec<_> = (0..3).map(|i| (member_name(i), version(NEW))).collect();
        let promoted = cutover::engine::Train::new(members(&sims, &clouds, "ci"))
            .unwrap()
            .promote(&versions)
            .await;
        assert_eq!(promoted.status, Status::Promoted, "{:?}", promoted.error);
    });
}

/// The train run is recorded (issue 17.3): a stage writes one id on every member's entry
/// (the worker's too) and names it in its outcome; staging the same train and tag again is
/// another run with another id; the promote names the run whose staging it moved.
#[test]
fn train_a_stage_records_one_run_id_on_every_member_and_the_promote_names_it() {
    use cutover::engine::Train;
    use cutover::ports::Status;

    block_on(async {
        let sims = with_a_worker(310);
        let clouds: Vec<_> = (0..3).map(|i| (i, sims[i].runner("ci", None))).collect();
        let stage = || async {
            Train::new(members(&sims, &clouds, "ci"))
                .unwrap()
                .stage(&new_release(&sims))
                .await
        };
        let first = stage().await;
        assert_eq!(first.status, Status::AwaitingApproval, "{:?}", first.error);
        let id = first.id.clone().expect("a stage names its run");
        assert!(
            id.len() == 8 && id.chars().all(|c| c.is_ascii_hexdigit()),
            "{id}"
        );
        assert_eq!(staged_run_ids(&sims), vec![id.clone(); 3]);

        let again = stage().await;
        assert_eq!(again.status, Status::AwaitingApproval, "{:?}", again.error);
        let second = again.id.clone().expect("a stage names its run");
        assert_ne!(second, id, "staging again is another run");
        assert_eq!(staged_run_ids(&sims), vec![second.clone(); 3]);

        let promoted = promote_whole_train(&sims, &clouds).await;
        assert_eq!(promoted.id, Some(second.clone()), "the run it promoted");
        assert_eq!(
            staged_run_ids(&sims),
            vec![second; 3],
            "kept through the promote"
        );
    });
}

/// Members staged by different runs (the train's, then one member again on its own): the
/// promote moves them together but names no run — none staged the release it shipped.
#[test]
fn train_a_promote_of_members_staged_by_different_runs_names_no_run() {
    use cutover::engine::{Engine, Train};

    block_on(async {
        let (sims, clouds, requests) = worker_train(320);
        let staged = Train::new(members(&sims, &clouds, "ci"))
            .unwrap()
            .stage(&requests)
            .await;
        let run = staged.id.expect("a stage names its run");
        let cloud = &clouds[1].1;
        let again = Engine::new(cloud, cloud, &sims[1].settings, "ci")
            .stage(&requests[1].1)
            .await;
        assert!(again.is_ok(), "{again:?}");
        let ids = staged_run_ids(&sims);
        assert_eq!(
            ids,
            [run.clone(), String::new(), run],
            "svc01 staged on its own"
        );
        assert_eq!(promote_whole_train(&sims, &clouds).await.id, None);
    });
}
