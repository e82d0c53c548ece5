//! Kept transitions (issue 18.4): every status change of a release is kept with its time in
//! history, histories written before that still load, and the bound holds.

use cutover::config::settings::OldSlotPolicy;
use cutover::engine::Engine;
use cutover::history::record_release;
use cutover::ports::{Release, Status};
use cutover::sim::{Faults, NEW, Sim, StrategyKind, settings, version};

use crate::sim_support::{block_on, ship_new};

fn statuses(release: &Release) -> Vec<String> {
    release
        .transitions
        .iter()
        .map(|t| t.status.to_string())
        .collect()
}

/// A stage then a canary promote: the history entry holds each step in order, each with
/// its time, not only the last status.
#[test]
fn a_promoted_release_keeps_every_status_change_with_its_time() {
    block_on(async {
        let sim = Sim::new(
            7,
            Faults::default(),
            settings(StrategyKind::Canary, OldSlotPolicy::KeepWarm),
        );
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        ship_new(&sim, &engine).await;
        let history = sim.history();
        let entry = history
            .iter()
            .find(|r| r.version == version(NEW))
            .expect("the release is in history");
        assert_eq!(
            statuses(entry),
            [
                "Staging",
                "Validating",
                "AwaitingApproval",
                "Shifting(10%)",
                "Shifting(100%)",
                "Baking",
                "Promoted"
            ]
        );
        let at: Vec<u64> = entry.transitions.iter().map(|t| t.at).collect();
        assert!(at.windows(2).all(|w| w[0] <= w[1]), "{at:?}");
        // The canary holds 120 s before 100%, the bake 180 s before Promoted.
        assert!(
            at[4] - at[3] >= 120_000 && at[6] - at[5] >= 180_000,
            "{at:?}"
        );
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    });
}

/// A history the previous version wrote (no timelines) still loads, and recording onto it
/// starts the release's timeline without touching the others.
#[test]
fn a_history_written_before_timelines_still_loads() {
    let old = include_str!("../fixtures/history-before-timelines.json");
    let mut history: Vec<Release> = serde_json::from_str(old).expect("old history loads");
    assert_eq!(history.len(), 2);
    assert!(history.iter().all(|r| r.transitions.is_empty()));
    assert!(history[0].was_promoted() && history[0].status == Status::RolledBack);
    let mut next = history[1].clone();
    next.status = Status::RolledBack;
    next.at += 60_000;
    record_release(&mut history, &next, 10);
    assert_eq!(statuses(history.last().unwrap()), ["RolledBack"]);
    assert!(history[0].transitions.is_empty());
    // And it writes back in a form this version reads again.
    let again: Vec<Release> =
        serde_json::from_str(&serde_json::to_string(&history).unwrap()).unwrap();
    assert_eq!(again, history);
}
