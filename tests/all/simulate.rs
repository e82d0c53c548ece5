//! `cutover simulate` (issue 18.5): a user's settings through the seeded scenarios, folded
//! into phase figures, outcomes and broken invariants.

use std::time::Duration;

use cutover::config::duration::Duration as ConfigDuration;
use cutover::config::settings::OldSlotPolicy;
use cutover::sim::report::{Outcome, Summary, user_settings};
use cutover::sim::{Profile, Scenario, StrategyKind, run_as, settings};

use crate::sim_support::block_on;

fn simulate(
    user: &cutover::config::settings::ServiceSettings,
    seeds: std::ops::Range<u64>,
) -> Summary {
    let sim = user_settings(user);
    let reports: Vec<_> = seeds
        .map(|seed| {
            let scenario = Scenario {
                seed,
                strategy: sim.strategy.kind(),
                profile: Profile::ALL[(seed % Profile::ALL.len() as u64) as usize],
            };
            block_on(run_as(scenario, &sim))
        })
        .collect();
    Summary::of(&reports)
}

/// A canary of 10% for 2 minutes: every profile keeps the invariants, calm runs promote,
/// and the longest split is at least the canary's hold.
#[test]
fn a_canary_config_keeps_every_invariant_and_splits_for_its_hold() {
    let user = settings(StrategyKind::Canary, OldSlotPolicy::KeepWarm);
    let summary = simulate(&user, 0..26);
    assert!(summary.broken.is_empty(), "{:#?}", summary.broken);
    assert!(
        summary.calm_blocked.is_empty(),
        "{:#?}",
        summary.calm_blocked
    );
    assert!(
        summary.outcomes[&Outcome::Promoted] >= 2,
        "{:?}",
        summary.outcomes
    );
    assert!(summary.outcomes.get(&Outcome::Failed).copied().unwrap_or(0) >= 2);
    let split = summary.longest_split.expect("a canary splits traffic");
    assert!(split.p50_s >= 120.0, "{split:?}");
    let bake = summary
        .phases
        .iter()
        .find(|p| p.phase == "bake")
        .expect("a bake");
    assert!(bake.p50_s >= 180.0, "{bake:?}");
}

/// Issue 18.5: three probe successes a minute apart cannot fit in a 90 s validation: with
/// nothing going wrong, no deploy promotes, and the summary says why.
#[test]
fn a_validation_deadline_shorter_than_the_probes_need_blocks_every_calm_deploy() {
    let mut user = settings(StrategyKind::AllAtOnce, OldSlotPolicy::KeepWarm);
    user.validation.probes[0].interval = ConfigDuration(Duration::from_secs(60));
    user.deadlines.validate = ConfigDuration(Duration::from_secs(90));
    let summary = simulate(&user, 0..13);
    assert_eq!(summary.outcomes.get(&Outcome::Promoted), None);
    let calm = summary
        .calm_blocked
        .first()
        .expect("the calm seed is blocked");
    assert!(
        calm.why.contains("did not finish within 90s"),
        "{}",
        calm.why
    );
    assert!(summary.broken.is_empty(), "{:#?}", summary.broken);
}
