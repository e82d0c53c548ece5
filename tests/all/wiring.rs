//! Mis-wired infrastructure is refused by every verb that takes the lock, before its first
//! write (issue 14): a slot's ECS service registered in the other slot's target group would
//! let a "weight flip" send production to the wrong release.

use cutover::commands::exit_code;
use cutover::config::settings::OldSlotPolicy;
use cutover::engine::{Engine, EngineError, StageRequest};
use cutover::exit::ExitCode;
use cutover::ports::{Slot, Weights};
use cutover::sim::{Faults, NEW, Sim, StrategyKind, settings, version};

use crate::sim_support::block_on;

/// Calls that change ECS, the load balancer or the history (the lock is cutover's own).
const WRITES: [&str; 5] = [
    "register_task_definition",
    "update_slot",
    "set_production_weights",
    "point_test_listener",
    "record",
];

fn miswired() -> Sim {
    Sim::new(
        31,
        Faults {
            miswired: true,
            ..Faults::default()
        },
        settings(StrategyKind::AllAtOnce, OldSlotPolicy::KeepWarm),
    )
}

fn assert_refused(sim: &Sim, verb: &str, result: Result<(), EngineError>) {
    let err = result.expect_err(verb);
    let message = err.to_string();
    assert!(matches!(err, EngineError::Miswired(_)), "{verb}: {err:?}");
    assert!(
        message.contains("web-green") && message.contains("tg/blue"),
        "{verb}: {message}"
    );
    assert!(message.contains("[slots.green]"), "{verb}: {message}");
    assert_eq!(
        exit_code(&anyhow::Error::from(err)),
        ExitCode::Usage,
        "{verb}"
    );
    let writes: Vec<String> = sim
        .log()
        .into_iter()
        .filter(|l| WRITES.iter().any(|w| l.contains(&format!(" {w}"))))
        .collect();
    assert!(writes.is_empty(), "{verb} wrote: {writes:?}");
    assert_eq!(sim.weights(), Weights::all_on(Slot::Blue), "{verb}");
    assert_eq!(sim.lock_holder(), None, "{verb} left its lock");
}

#[test]
fn a_slot_registered_in_the_other_slots_target_group_is_refused_before_any_write() {
    block_on(async {
        let sim = miswired();
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        let staged = engine
            .stage(&StageRequest {
                spec: sim.spec(NEW),
            })
            .await;
        assert_refused(&sim, "stage", staged.map(|_| ()));
        let promoted = engine.promote(&version(NEW)).await;
        assert_refused(&sim, "promote", promoted.map(|_| ()));
        let rolled = engine.rollback(None).await;
        assert_refused(&sim, "rollback", rolled.map(|_| ()));
    });
}

/// Each slot's service registers container `web` on port 8080 in its own target group;
/// service.toml naming another container, or another port, is refused before any write:
/// the target group alone is not the wiring.
#[test]
fn a_service_registering_another_container_or_port_than_configured_is_refused() {
    for (container, port) in [("api", 8080), ("web", 9090)] {
        block_on(async {
            let mut s = settings(StrategyKind::AllAtOnce, OldSlotPolicy::KeepWarm);
            s.ecs.container = container.into();
            s.ecs.container_port = port;
            let sim = Sim::new(31, Faults::default(), s);
            let ci = sim.runner("ci", None);
            let err = Engine::new(&ci, &ci, &sim.settings, "ci")
                .stage(&StageRequest {
                    spec: sim.spec(NEW),
                })
                .await
                .expect_err("miswired");
            let expected = format!("does not register container {container} port {port}");
            assert!(
                matches!(&err, EngineError::Miswired(m) if m.contains(&expected)),
                "{err}"
            );
            assert_eq!(sim.lock_holder(), None);
        });
    }
}
