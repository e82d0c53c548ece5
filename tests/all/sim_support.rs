//! Shared by the simulation tests: a paused-clock runtime and a way to run one scenario.

use std::future::Future;

use cutover::sim::{RunReport, Scenario};

/// A current-thread runtime with tokio's clock paused: the simulation's virtual time.
pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("tokio runtime")
        .block_on(f)
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
