//! The abort matrix: for every strategy and every lifecycle stage, a failure or an abort
//! injected there ends with the last good release at 100% (read back) and history intact.

use cutover::config::settings::OldSlotPolicy;
use cutover::engine::{Engine, EngineError, StageRequest, steps};
use cutover::ports::{Slot, Status, Weights};
use cutover::sim::{Faults, NEW, OLD, Sim, StrategyKind, settings, version};

use crate::sim_support::block_on;

/// Where and how the run is disturbed.
#[derive(Debug, Clone)]
enum Inject {
    /// A fault of the simulated cloud.
    Fault(Box<Faults>),
    /// An abort (cancel) when this status is reported.
    AbortAt(Status),
}

fn injections(strategy: StrategyKind) -> Vec<(String, Inject)> {
    let fault = |f: Faults| Inject::Fault(Box::new(f));
    let mut rows = vec![
        (
            "Staging: register denied".to_string(),
            fault(Faults {
                deny: vec!["register_task_definition"],
                ..Faults::default()
            }),
        ),
        (
            "Staging: slot update denied".into(),
            fault(Faults {
                deny: vec!["update_slot"],
                ..Faults::default()
            }),
        ),
        (
            "Staging: tasks never healthy".into(),
            fault(Faults {
                never_healthy: true,
                ..Faults::default()
            }),
        ),
        (
            "Validating: probes fail".into(),
            fault(Faults {
                bad_probe: true,
                ..Faults::default()
            }),
        ),
        (
            "Shifting: alarm as traffic arrives".into(),
            fault(Faults {
                alarm_at: Some(std::time::Duration::ZERO),
                ..Faults::default()
            }),
        ),
        (
            "Shifting: weights write denied".into(),
            fault(Faults {
                deny: vec!["set_production_weights"],
                ..Faults::default()
            }),
        ),
        (
            "Promoting: history write denied".into(),
            fault(Faults {
                deny: vec!["record(v1.1.0 web:2 Shifting"],
                ..Faults::default()
            }),
        ),
        ("abort at Staging".into(), Inject::AbortAt(Status::Staging)),
        (
            "abort at Validating".into(),
            Inject::AbortAt(Status::Validating),
        ),
        (
            "abort at AwaitingApproval".into(),
            Inject::AbortAt(Status::AwaitingApproval),
        ),
        ("abort at Baking".into(), Inject::AbortAt(Status::Baking)),
    ];
    let s = settings(strategy, OldSlotPolicy::KeepWarm);
    for step in steps(&s.strategy).expect("valid strategy") {
        rows.push((
            format!("abort at Shifting({}%)", step.percent),
            Inject::AbortAt(Status::Shifting(step.percent)),
        ));
    }
    rows
}

#[test]
fn engine_abort_matrix_every_stage_every_strategy_ends_on_the_last_good_release() {
    let mut checked = 0;
    for strategy in StrategyKind::ALL {
        for (name, inject) in injections(strategy) {
            block_on(abort_case(strategy, &name, inject));
            checked += 1;
        }
    }
    assert!(checked >= 3 * 12, "matrix rows: {checked}");
}

/// The abort matrix found it: a cancel while a weight write settled skipped the read-back
/// and the rollback wrote first (invariant 3).
#[test]
fn regression_cancel_while_weights_settle_skipped_the_read_back() {
    block_on(abort_case(
        StrategyKind::AllAtOnce,
        "abort at Shifting(100%)",
        Inject::AbortAt(Status::Shifting(100)),
    ));
}

async fn abort_case(strategy: StrategyKind, name: &str, inject: Inject) {
    let abort_at = match &inject {
        Inject::AbortAt(s) => Some(*s),
        Inject::Fault(_) => None,
    };
    let faults = match &inject {
        Inject::Fault(f) => (**f).clone(),
        Inject::AbortAt(_) => Faults::default(),
    };
    let sim = Sim::new(11, faults, settings(strategy, OldSlotPolicy::KeepWarm));
    let history_before = sim.history();
    let ci = sim.runner("ci", None);
    let mut engine = Engine::new(&ci, &ci, &sim.settings, "ci");
    if let Inject::AbortAt(status) = inject {
        engine = engine.with_cancel(sim.cancel_at(status));
    }
    let case = format!("{strategy:?} / {name}");
    let staged = engine
        .stage(&StageRequest {
            spec: sim.spec(NEW),
        })
        .await;
    let end = match staged {
        Ok(_) => engine.promote(&version(NEW)).await.map(|_| ()),
        Err(e) => Err(e),
    };
    let err = end.expect_err(&format!("{case}: the injected failure must end the deploy"));
    assert!(
        matches!(
            err,
            EngineError::Failed { .. }
                | EngineError::RolledBack { .. }
                | EngineError::Cancelled { .. }
                | EngineError::Port { .. }
        ),
        "{case}: ended with {err:?}"
    );
    // The last good release is at 100%, read back through the port, and healthy.
    let reader = sim.runner("reader", None);
    let weights = cutover::ports::Traffic::production_weights(&reader)
        .await
        .expect("read weights");
    assert_eq!(weights, Weights::all_on(Slot::Blue), "{case}");
    assert_eq!(sim.version_on(Slot::Blue), Some(version(OLD)), "{case}");
    // History intact: the good release is still there, still the last good one.
    let history = sim.history();
    assert!(
        history.starts_with(&history_before),
        "{case}: history lost entries: {history:?}"
    );
    let last_good = history
        .iter()
        .rev()
        .find(|r| r.status == Status::Promoted)
        .expect("a good release");
    assert_eq!(last_good.version, version(OLD), "{case}");
    if let Some(status) = abort_at {
        let marker = format!("ABORT injected at {status}");
        assert!(
            sim.log().iter().any(|l| l.contains(&marker)),
            "{case}: the run never reached {status}"
        );
    }
    sim.check_end_state(Some(&version(OLD)));
    assert!(
        sim.violations().is_empty(),
        "{case}: {:?}\n{}",
        sim.violations(),
        sim.log().join("\n")
    );
}
