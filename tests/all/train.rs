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
    }
    // The sweep must reach every situation, or the invariants above proved little.
    for name in [
        "promoted",
        "promote after stage",
        "failed stage",
        "rolled back mid-shift",
        "train rollback",
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
    assert!(
        report.outcomes[0].starts_with("deploy: Failed [svc00 Failed, svc01 Failed]"),
        "{:?}",
        report.outcomes
    );
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
    assert!(
        report.outcomes[0].contains("svc00 RolledBack, svc01 RolledBack, svc02 RolledBack"),
        "{:?}",
        report.outcomes
    );
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
