//! Shared by the simulation tests: a paused-clock runtime and a way to run one scenario.

use std::future::Future;

use cutover::config::settings::OldSlotPolicy;
use cutover::sim::{Faults, RunReport, Scenario, Sim, StrategyKind, settings};

/// A current-thread runtime with tokio's clock paused: the simulation's virtual time.
pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

/// A calm all-at-once sim (seed 21, old slot kept warm: a 180 s bake, a 300 s lease
/// renewed every 100 s) with `faults`.
pub fn all_at_once(faults: Faults) -> Sim {
    Sim::new(
        21,
        faults,
        settings(StrategyKind::AllAtOnce, OldSlotPolicy::KeepWarm),
    )
}

pub fn run(scenario: Scenario) -> RunReport {
    block_on(cutover::sim::run(scenario))
}

/// Panic with everything needed to understand and replay a failing run.
pub fn assert_clean(report: &RunReport) {
    if report.violations.is_empty() {
        return;
    }
    panic!(
        "{} broke invariants:\n  {}\noutcomes: {:#?}\nlast log lines:\n{}\nreplay: {}",
        report.scenario,
        report.violations.join("\n  "),
        report.outcomes,
        report.log[report.log.len().saturating_sub(40)..].join("\n"),
        report.replay_command()
    );
}

/// Stage then promote `NEW` with `engine`, as a tag push and its approval would.
pub async fn ship_new(
    sim: &cutover::sim::Sim,
    engine: &cutover::engine::Engine<'_, cutover::sim::SimCloud>,
) {
    engine
        .stage(&cutover::engine::StageRequest {
            spec: sim.spec(cutover::sim::NEW),
        })
        .await
        .expect("stage");
    engine
        .promote(&cutover::sim::version(cutover::sim::NEW))
        .await
        .expect("promote");
}
