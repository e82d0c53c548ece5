//! Issue 15, failure dynamics in the simulation: correlated outages of one AWS service,
//! calls that hang until the engine gives up, a dead holder's late ECS and history writes,
//! kill -9 in every phase followed by a recovery run, and the lease heartbeat's jitter.

use std::collections::BTreeMap;
use std::time::Duration;

use cutover::config::settings::OldSlotPolicy;
use cutover::engine::{Engine, StageRequest};
use cutover::ports::{Compute, Slot, Status};
use cutover::sim::{
    Faults, HANG, KillAt, NEW, Outage, Profile, RunReport, Scenario, Service, Sim, StrategyKind,
    run_with, settings, version,
};

use crate::sim_support::{assert_clean, block_on, run};

fn step_percents(strategy: StrategyKind) -> Vec<u8> {
    let s = settings(strategy, OldSlotPolicy::KeepWarm);
    cutover::engine::steps(&s.strategy)
        .unwrap()
        .iter()
        .map(|s| s.percent)
        .collect()
}

/// A canary deploy's world with these faults, for the checks that the checker can fail.
fn canary(faults: Faults) -> Sim {
    Sim::new(
        1,
        faults,
        settings(StrategyKind::Canary, OldSlotPolicy::KeepWarm),
    )
}

fn pct(sorted: &[u64], p: usize) -> u64 {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// kill -9 in every phase (staging, validating, holding for approval, each shift step, the
/// bake, a rollback), at a moment drawn within the phase, then a recovery run: the rollback
/// workflow retried until it succeeds, or a re-run of the pipeline or of `promote`. After
/// it, production is 100% on one slot running the last good release at capacity, history
/// agrees, the lock is free, and a rollback-workflow recovery came within TTL + slack.
#[test]
fn sim_dynamics_kill_in_every_phase_then_a_recovery_run_restores_production() {
    // Twenty runs per phase at least, as in the normal suite: the mutation run's 100 seeds
    // would leave one, too few to see most runs of a phase killed.
    let per_phase = (cutover::sim::seeds_from_env(2_000) / 100).max(20);
    let mut kills: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    let mut took = Vec::new();
    let (mut by_rollback, mut by_rerun) = (0, 0);
    for strategy in StrategyKind::ALL {
        for phase in KillAt::phases(&step_percents(strategy)) {
            let span = KillAt::span(phase).as_millis() as u64;
            for seed in 0..per_phase {
                let after = Duration::from_millis((seed * 7919 + 13) % span);
                let scenario = Scenario {
                    seed,
                    strategy,
                    profile: Profile::KillInPhase,
                };
                let report = block_on(run_with(scenario, |f| {
                    f.kill_in = Some(KillAt { phase, after });
                }));
                assert_clean(&report);
                let m = &report.metrics;
                let entry = kills.entry(format!("{strategy:?} {phase}")).or_default();
                entry.0 += 1;
                if let Some(killed) = m.killed_at {
                    entry.1 += 1;
                    let workflow = report
                        .outcomes
                        .iter()
                        .any(|o| o.starts_with("rollback workflow"));
                    if workflow {
                        by_rollback += 1;
                        let back = m.recovered_at.expect("checked by assert_clean");
                        took.push((back - killed) / 1000);
                    } else {
                        by_rerun += 1;
                    }
                }
            }
        }
    }
    took.sort_unstable();
    eprintln!(
        "kill in phase -> rollback workflow: production back in p50 {}s, p99 {}s, max {}s ({by_rollback} runs; {by_rerun} re-runs); kills per phase (runs, killed): {kills:?}",
        pct(&took, 50),
        pct(&took, 99),
        took.last().unwrap(),
    );
    // Every phase was reached and killed in most of its runs.
    for (phase, (runs, killed)) in &kills {
        assert!(killed * 2 > *runs, "{phase}: killed in {killed} of {runs}");
    }
    assert!(by_rollback > 0 && by_rerun > 0, "{by_rollback} {by_rerun}");
}

/// One AWS service down (503s) or throttling everyone for 30–120 s at any moment of a
/// deploy: no invariant breaks during it, and a run it ends leaves production on a good
/// release (the rollback workflow repairs a split one, a re-run finishes a lock left
/// behind).
#[test]
fn sim_dynamics_an_outage_of_any_service_breaks_no_invariant() {
    // Ten seeds per service and throttling at least: the mutation run's 100 seeds would
    // leave none (and fewer leave some service's outage missed by every call).
    let per = (cutover::sim::seeds_from_env(2_000) / 200).max(10);
    let mut ended: BTreeMap<String, u32> = BTreeMap::new();
    for service in Service::ALL {
        for throttling in [false, true] {
            for seed in 0..per {
                let strategy = StrategyKind::ALL[(seed % 3) as usize];
                let from = Duration::from_secs((seed * 37) % 600);
                let long = Duration::from_secs(30 + (seed * 53) % 91);
                let report = block_on(run_with(
                    Scenario {
                        seed,
                        strategy,
                        profile: Profile::Outage,
                    },
                    |f| {
                        f.outages = vec![Outage {
                            service,
                            from,
                            to: from + long,
                            throttling,
                        }];
                    },
                ));
                assert_clean(&report);
                let failed_calls = report.log.iter().filter(|l| l.contains("(outage)"));
                *ended
                    .entry(format!("{service:?} calls failed"))
                    .or_default() += failed_calls.count() as u32;
                *ended.entry(ending(&report)).or_default() += 1;
            }
        }
    }
    eprintln!("outage runs: {ended:?}");
    for service in Service::ALL {
        let failed = ended[&format!("{service:?} calls failed")];
        assert!(failed > 0, "no call to {service:?} hit its outage");
    }
}

fn ending(report: &RunReport) -> String {
    let o = report.outcomes.join(" | ");
    let kind = if o.contains("rollback workflow") {
        "split, repaired by the rollback workflow"
    } else if o.contains("lock left behind") {
        "lock left behind, re-run"
    } else if report.log.iter().any(|l| l.contains("STATUS Promoted")) {
        "promoted"
    } else {
        "failed or rolled back, production on the old release"
    };
    kind.into()
}

/// Calls that hang (no answer; a write maybe applied, maybe landing later, maybe never):
/// the engine gives up on each within its per-attempt timeout and the deploy still goes
/// through. The sim flags any caller still waiting when a hang ends (15 minutes).
#[test]
fn sim_dynamics_hung_calls_are_bounded_by_the_call_timeout() {
    let mut hung = 0;
    let mut longest = 0;
    // Fifty runs at least, as in the normal suite: fewer meet too few hangs to judge.
    for seed in 0..(cutover::sim::seeds_from_env(2_000) / 40).max(50) {
        let report = run(Scenario {
            seed,
            strategy: StrategyKind::ALL[(seed % 3) as usize],
            profile: Profile::Hanging,
        });
        assert_clean(&report);
        hung += report.metrics.hung_calls;
        longest = longest.max(report.metrics.longest_hang_ms);
    }
    eprintln!("{hung} hung calls; the longest wait on one: {longest} ms");
    assert!(hung > 20, "{hung}");
    // The engine's per-attempt timeout (30 s), plus the call's own latency.
    assert!(longest <= 30_500, "{longest}");
}

/// The checker behind the test above can fail: a caller that does not bound a hung call
/// waits the whole hang, and the sim reports it (I8).
#[test]
fn sim_dynamics_an_unbounded_wait_on_a_hung_call_is_a_violation() {
    block_on(async {
        let sim = canary(Faults {
            hang: 1.0,
            ..Faults::default()
        });
        let raw = sim.runner("raw", None);
        let started = tokio::time::Instant::now();
        let answer = raw.read_slot(Slot::Blue).await;
        assert!(answer.is_err());
        assert!(started.elapsed() >= HANG);
        let v = sim.violations();
        assert!(
            v.iter().any(|v| v.contains("I8") && v.contains("hung")),
            "{v:?}"
        );
    });
}

/// A dead holder's ECS UpdateService, SSM history write or weight change, in flight when
/// it was killed, lands later (within a call timeout): never after the recovering run's
/// first write (I13), whichever recovery comes (the rollback workflow, a re-run).
#[test]
fn sim_dynamics_a_dead_holders_late_ecs_and_history_writes_land_before_the_next_writer() {
    let per = cutover::sim::seeds_from_env(2_000) / 40;
    let mut landed: BTreeMap<&str, u32> = BTreeMap::new();
    for (op, kind) in [
        ("update_slot", "update_slot"),
        ("record", "record"),
        ("set_production_weights", "weights"),
    ] {
        for seed in 0..per {
            let report = block_on(run_with(
                Scenario {
                    seed,
                    strategy: StrategyKind::ALL[(seed % 3) as usize],
                    profile: Profile::KillInPhase,
                },
                |f| {
                    f.kill_in = None;
                    f.kill_in_flight = Some(op);
                },
            ));
            assert_clean(&report);
            let n = report.metrics.late_landed.iter().filter(|k| *k == kind);
            *landed.entry(kind).or_default() += n.count() as u32;
        }
        // Every run sends this write at least once, so every run dies with one in flight.
        assert_eq!(landed[kind], per as u32, "{kind}: {landed:?}");
    }
    eprintln!("late writes landed: {landed:?}");
}

/// The checker behind the test above can fail: a write made while a dead runner's write is
/// still on its way makes that late write a violation when it lands.
#[test]
fn sim_dynamics_a_late_write_landing_after_another_runners_write_is_a_violation() {
    block_on(async {
        let sim = canary(Faults {
            kill_in_flight: Some("update_slot"),
            ..Faults::default()
        });
        let (alice, bob) = (sim.runner("alice", None), sim.runner("bob", None));
        let spec = sim.spec(NEW);
        tokio::select! {
            _ = alice.update_slot(Slot::Green, "web:1", 2) => unreachable!("killed"),
            () = alice.killed() => {}
        }
        let _ = bob.register_task_definition(&spec).await;
        sim.check_end_state(None);
        let v = sim.violations();
        assert!(
            v.iter().any(|v| v.contains("I13") && v.contains("late")),
            "{v:?}"
        );
    });
}

/// Two runs holding two services' locks, started together: their heartbeats draw each
/// pause between TTL/4 and TTL/3, so their renewals drift apart instead of hitting SSM
/// at the same instant every beat. Without the jitter every pause is TTL/3 and the two
/// stay within a second of each other.
#[test]
fn sim_dynamics_two_holders_renewals_do_not_stay_in_lockstep() {
    block_on(async {
        let sims = [1, 2].map(|seed| {
            Sim::new(
                seed,
                Faults::default(),
                settings(StrategyKind::Linear, OldSlotPolicy::KeepWarm),
            )
        });
        let runners = [sims[0].runner("web", None), sims[1].runner("api", None)];
        let engines = [0, 1].map(|i| {
            Engine::new(
                &runners[i],
                &runners[i],
                &sims[i].settings,
                runners[i].name(),
            )
        });
        let stage = async |i: usize| {
            let spec = sims[i].spec(NEW);
            engines[i].stage(&StageRequest { spec }).await.unwrap();
        };
        tokio::join!(stage(0), stage(1));
        // Both promotes start at the same instant: their leases are taken together.
        let together = Duration::from_secs(600);
        tokio::time::sleep_until(sims[0].start() + together).await;
        let promote = async |i: usize| {
            engines[i].promote(&version(NEW)).await.unwrap();
        };
        tokio::join!(promote(0), promote(1));
        let renewals = |sim: &Sim| -> Vec<u64> {
            sim.log()
                .iter()
                .filter(|l| l.contains("renew_lock -> Ok"))
                .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
                .filter(|t| *t > together.as_millis() as u64)
                .collect()
        };
        let (a, b) = (renewals(&sims[0]), renewals(&sims[1]));
        assert!(a.len() >= 3 && b.len() >= 3, "{a:?} {b:?}");
        let apart = a.iter().zip(&b).map(|(x, y)| x.abs_diff(*y)).max().unwrap();
        assert!(apart > 5_000, "renewals stayed in lockstep: {a:?} vs {b:?}");
        let ttl = sims[0].settings.deadlines.lock_ttl.0.as_millis() as u64;
        for w in a.windows(2).chain(b.windows(2)) {
            // Never longer than TTL/3 (plus the renewal's own calls): a live lock never
            // looks stale.
            assert!(w[1] - w[0] <= ttl / 3 + 2_000, "{a:?} {b:?}");
        }
    });
}

/// The phase a kill lands in is reported as it happens: one check that a pinned phase kill
/// fires where asked (the sweep above relies on it).
#[test]
fn sim_dynamics_a_kill_pinned_to_the_bake_fires_in_the_bake() {
    let report = block_on(run_with(
        Scenario {
            seed: 5,
            strategy: StrategyKind::Canary,
            profile: Profile::KillInPhase,
        },
        |f| {
            f.kill_in = Some(KillAt {
                phase: Status::Baking,
                after: Duration::from_secs(60),
            })
        },
    ));
    assert_clean(&report);
    let log = report.log.join("\n");
    let baking = log.find("STATUS Baking").expect("reached the bake");
    let killed = log.find("KILLED").expect("killed");
    assert!(killed > baking, "killed before the bake");
}
