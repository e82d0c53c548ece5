//! Recovery after a kill -9 or a run that ended mid-shift: the rollback workflow (the
//! action's `rollback` input) re-run until it succeeds, as a team would wire it, and the
//! bound it must meet (invariant 13: within the lock's TTL plus a bounded slack).

use std::time::Duration;

use super::{Sim, SimCloud};
use crate::engine::{Engine, EngineError, RollbackOutcome};

/// How long the rollback workflow waits before running `rollback` again (a refused one
/// exits 5 while the lock looks live; a failed one may have met an outage).
pub const RETRY_EVERY: Duration = Duration::from_secs(30);
const ATTEMPTS: u32 = 40;

/// Past the lock's TTL, how long a recovery may take: a stale lock's expiry slack and the
/// takeover settle (35 s), the rollback workflow's retry period, and a cold slot brought up
/// (tasks started, health checks passed, validated).
pub const SLACK: Duration = Duration::from_secs(240);

/// The most a kill may strand production for with these settings.
pub fn bound(sim: &Sim) -> Duration {
    sim.settings.deadlines.lock_ttl.0 + SLACK
}

/// Run `rollback` until it succeeds. A rollback with nothing earlier to go to (the kill
/// came before the new release was ever live) also ends it: production never left the
/// last good release. Every error on the way is returned in order, for the report.
pub async fn rollback_workflow(
    sim: &Sim,
    cloud: &SimCloud,
) -> (Option<RollbackOutcome>, Vec<String>) {
    let eng = Engine::new(cloud, cloud, &sim.settings, cloud.name());
    let mut errors = Vec::new();
    for _ in 0..ATTEMPTS {
        match eng.rollback(None).await {
            Ok(done) => return (Some(done), errors),
            Err(EngineError::Usage(why)) if why.starts_with("no earlier good release") => {
                errors.push(why);
                return (None, errors);
            }
            Err(e) => {
                sim.check_output(&e.to_string());
                errors.push(e.to_string());
            }
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
    sim.violation(format!(
        "I13: the rollback workflow failed {ATTEMPTS} times, last: {}",
        errors.last().map_or("", String::as_str)
    ));
    (None, errors)
}
