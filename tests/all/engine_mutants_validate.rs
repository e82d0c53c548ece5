//! What a validation checks and reports, where mutation testing (scripts/mutants.sh) found
//! it unchecked.

use cutover::engine::{Engine, StageRequest};
use cutover::sim::{Faults, GREEN_ALARM, NEW, version};

use crate::engine_mutants::{at, stage, timeline};
use crate::sim_support::{all_at_once, block_on, ship_new};

/// A stage's validation passes: its status, which the job summary shows, lists each check
/// that passed — the probe, the command, and the alarms of the slot it gates on by name.
#[test]
fn a_passed_validation_names_the_alarms_it_checked() {
    block_on(async {
        let sim = all_at_once(Default::default());
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        let passed = timeline(&sim, "ci")
            .into_iter()
            .find(|s| s.starts_with("Validating passed: "))
            .expect("a passed validation");
        assert!(
            passed.contains("probe /health")
                && passed.contains("command ./smoke-test passed")
                && passed.ends_with(&format!("alarms OK: {GREEN_ALARM}")),
            "{passed}"
        );
    });
}

/// A release whose probe never passes: the stage fails as soon as the probe has used its
/// last attempt (12, 5 s apart) — it does not wait one more interval first.
#[test]
fn a_probe_out_of_attempts_fails_the_stage_at_once() {
    block_on(async {
        let sim = all_at_once(Faults {
            bad_probe: true,
            ..Faults::default()
        });
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        let err = engine
            .stage(&StageRequest {
                spec: sim.spec(NEW),
            })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("in 12 attempts"), "{err}");
        let log = sim.log();
        let probes: Vec<u64> = log
            .iter()
            .filter(|l| l.contains(" ci probe /health"))
            .map(|l| at(l))
            .collect();
        assert_eq!(probes.len(), 12, "{probes:?}");
        let failed = log
            .iter()
            .find(|l| l.contains(" ci STATUS Failed"))
            .map(|l| at(l))
            .expect("reported failed");
        let last = probes[11];
        assert!(
            failed < last + 5_000,
            "last probe at {last} ms, failure reported at {failed} ms"
        );
    });
}

/// While traffic is on a new release, alarms are read every 2.5 s and the probe runs at its
/// own interval (5 s): a 180 s bake reads the alarms about 70 times and probes about 36
/// times — not in a loop that floods CloudWatch or the service, nor so rarely that a
/// firing alarm waits long for the rollback.
#[test]
fn a_bake_reads_the_alarms_every_two_and_a_half_seconds_and_probes_every_five() {
    block_on(async {
        let sim = all_at_once(Default::default());
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        ship_new(&sim, &engine).await;
        let log = sim.log();
        let baking = log
            .iter()
            .position(|l| l.contains(" ci STATUS Baking"))
            .expect("baked");
        let bake: Vec<&String> = log[baking..]
            .iter()
            .take_while(|l| !l.contains(" ci STATUS Promoted"))
            .collect();
        let count = |what: &str| bake.iter().filter(|l| l.contains(what)).count();
        let reads = count(" ci alarm_states");
        assert!(
            (60..=80).contains(&reads),
            "{reads} alarm reads in a 180 s bake"
        );
        let probes = count(" ci probe /health");
        assert!(
            (30..=40).contains(&probes),
            "{probes} probes in a 180 s bake"
        );
    });
}

/// A release whose targets fail their health checks 10 s out of every 45 s, promoted: the
/// bake's watch fails it on the second failed probe in a row (5 s apart), not on the
/// first — one failed request is noise.
#[test]
fn a_bake_fails_a_release_on_two_failed_probes_in_a_row_not_one() {
    block_on(async {
        let sim = all_at_once(Faults {
            flapping: true,
            ..Faults::default()
        });
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        let from = sim.log().len();
        let err = engine.promote(&version(NEW)).await.unwrap_err();
        assert!(err.to_string().contains("probe /health failing"), "{err}");
        let log = &sim.log()[from..];
        let failed: Vec<u64> = log
            .iter()
            .take_while(|l| !l.contains(" ci STATUS RollingBack"))
            .filter(|l| l.contains(" ci probe /health -> Err"))
            .map(|l| at(l))
            .collect();
        assert!(
            failed.len() >= 2 && failed[failed.len() - 1] - failed[failed.len() - 2] >= 4_000,
            "failed probes before the rollback: {failed:?}"
        );
    });
}
