//! Bugs the simulation found. Each test hunts seeds of the fault profile that found the bug
//! until enough runs reach the exact situation (a marker in the event log), and requires
//! every one of them to keep every invariant. Hunting, rather than pinning one seed, keeps
//! the test aimed at the situation when engine timing changes move seeds around.

use cutover::sim::{Profile, Scenario, StrategyKind};

use crate::sim_support::{assert_clean, run};

fn hunt(profile: Profile, marker: &str, want: usize) {
    let mut found = 0;
    for seed in 0..20_000 {
        let strategy = StrategyKind::ALL[(seed % 3) as usize];
        let report = run(Scenario {
            seed,
            strategy,
            profile,
        });
        if report.log.iter().any(|l| l.contains(marker)) {
            assert_clean(&report);
            found += 1;
            if found == want {
                return;
            }
        }
    }
    panic!("only {found} runs of {profile} reached {marker:?}");
}

/// A rollback's weight write was throttled; the read-back then hit a stale read showing
/// the weights from before the shift (equal to the rollback target) and took it as done,
/// leaving 25% on the bad release (seed 6047, chaos). Fixed: only a read at least
/// `CONSISTENCY` after the write counts as a read-back.
#[test]
fn regression_stale_read_confirmed_a_rollback_whose_write_was_throttled() {
    hunt(
        Profile::Chaos,
        "set_production_weights(blue 100% / green 0%) -> Err(Throttled",
        5,
    );
}

/// Breaking a stale lock: the delete applied but answered an error, the retry answered
/// NotFound, and the re-run gave up, leaving an interrupted shift unrepaired (seeds 6479,
/// 1833, chaos). Fixed: deleting an absent lock counts as done. Since a lock taken on the
/// first try is used without a settle pause, a lock delete re-reads the lock before every
/// attempt (a blind retry could delete the next run's fresh lock), so the retry no longer
/// happens: this hunts the same situation, a lock delete whose answer was lost.
#[test]
fn regression_retried_lock_delete_answering_not_found_stopped_the_rerun() {
    hunt(Profile::Chaos, "delete_lock -> Err(Ambiguous", 5);
}

/// Not an engine bug: the checker demanded healthy targets at the very instant of the
/// Promoted report, while a flapping target can fail a check between the engine's read and
/// its report (seed 5331). The check now accepts health seen within the last 5 s. Since the
/// watch reads alarms every 2.5 s and probes every 5 s, a flapping release is caught before
/// its bake ends; this keeps it that way.
#[test]
fn regression_flapping_release_is_caught_during_the_bake() {
    hunt(Profile::Flapping, "STATUS RolledBack", 20);
    let promoted = (0..60)
        .map(|seed| {
            run(Scenario {
                seed,
                strategy: StrategyKind::ALL[(seed % 3) as usize],
                profile: Profile::Flapping,
            })
        })
        .filter(|r| r.log.iter().any(|l| l.contains("STATUS Promoted")))
        .count();
    assert_eq!(promoted, 0, "a flapping release was promoted");
}

/// Validation counted probes the live release answered: right after the test listener was
/// repointed, the ALB still sent its traffic to the slot it left (the live one), the first
/// probes passed there, and the staged release was promoted on evidence from the old one
/// (invariant 1 broke in flaky-api, flapping and chaos runs once the sim's test listener
/// lagged its configuration by 3 s, as an ALB does). Fixed: the test listener is read back
/// after pointing it, then the consistency window passes before the first probe.
#[test]
fn regression_probes_answered_by_the_live_release_after_a_repoint_were_counted() {
    hunt(Profile::FlakyApi, "point_test_listener(", 25);
}

/// A runner killed with a weight change in flight (it lands up to a call timeout later);
/// the operator's `unlock` waited 5 s and the next run wrote at once, so the dead run's
/// late 25/75 split landed after the new holder's writes (seed 1439, linear, chaos; I13).
/// Fixed: a takeover (or an unlock of a live lock) waits the call timeout plus the settle.
#[test]
fn regression_a_dead_holders_late_weight_change_landed_after_the_next_run_wrote() {
    // Hunted, not pinned: merging other sim changes moved seed 1439 off the situation.
    hunt(Profile::Chaos, "LATE set_production_weights", 3);
}

/// `rollback --to` redeployed the old release and moved all traffic to it, then SSM went
/// down past every retry before the bake's end was recorded (seeds 3353, 3879, 4553, 10361,
/// 13240, 18233 of the 20,000 sweep). The on-call's re-run said "already live" and did
/// nothing: production on the old release, the history still naming the release it left
/// as the last good one. Fixed: the re-run finishes the interrupted redeploy (bakes it
/// again, records it, marks what it left rolled back).
#[test]
fn regression_a_rerun_of_an_interrupted_rollback_to_finishes_it() {
    hunt(Profile::Outage, "finishing an interrupted rollback", 2);
}

/// A promote's weight write landed and ELB went down before the read-back (seed 10024):
/// the run marked the release RollingBack and moved traffic back without knowing the
/// weights, which the simulation called a write before the read-back. It is what a run
/// must do when AWS refuses the read-back past every retry; the simulation now counts the
/// refused read-back as asked, and the other invariants judge what follows.
#[test]
fn regression_a_read_back_lost_in_an_elb_outage_still_ends_safe() {
    hunt(
        Profile::Outage,
        "production_weights -> Err(Transient(\"Elb: 503",
        5,
    );
}
