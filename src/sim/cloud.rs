//! One runner's connection to the simulated cloud: implements every port. Each call takes
//! a little virtual time, may hit a seeded fault, is logged, and is checked against the
//! invariants; a runner can be killed at any call.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use super::faults::{HANG, NO_ANSWER, Service};
use super::world::{EPOCH_MS, HEALTH_CHECK_INTERVAL_MS, HEALTHY_THRESHOLD, LateWrite, World};
use crate::ports::{
    AlarmState, CheckResult, Clock, Compute, Digest, HealthCheckTiming, Images, Millis, PortError,
    PortResult, ProbeRequest, Prober, Reporter, Signals, Slot, SlotState, StatusEvent,
    TargetHealth, TaskDefinition, TaskSpec, Traffic, Weights,
};
use crate::version::Version;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Read,
    /// A read that may be served stale.
    EventualRead,
    Write,
    /// Lock operations: writes to SSM that are not fenced by the lock itself.
    LockWrite,
}

/// A runner's handle on the shared simulated world.
#[derive(Clone)]
pub struct SimCloud {
    world: Arc<Mutex<World>>,
    start: tokio::time::Instant,
    runner: usize,
    killed: Arc<Notify>,
}

impl SimCloud {
    pub(crate) fn new(
        world: Arc<Mutex<World>>,
        start: tokio::time::Instant,
        runner: usize,
    ) -> Self {
        Self {
            world,
            start,
            runner,
            killed: Arc::new(Notify::new()),
        }
    }

    /// The runner's name, the usual engine owner (the lock check goes by token, not name).
    pub fn name(&self) -> String {
        self.world().runners[self.runner].name.clone()
    }

    /// Resolves when this runner has been killed (its in-flight call never returns).
    pub async fn killed(&self) {
        self.killed.notified().await;
    }

    pub(super) fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    pub(super) fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().expect("sim world")
    }

    pub(super) async fn call<T: std::fmt::Debug>(
        &self,
        op: &str,
        kind: Kind,
        apply: impl FnOnce(&mut World, u64, usize) -> PortResult<T>,
    ) -> PortResult<T> {
        let latency = self.world().rng.range(20, 250);
        tokio::time::sleep(Duration::from_millis(latency)).await;
        let now = self.now_ms();
        let (result, killed, hung) = {
            let mut w = self.world();
            let r = self.runner;
            w.land_late(now, false);
            w.runners[r].calls += 1;
            w.metrics.calls[r] += 1;
            let f = w.faults.clone();
            let in_flight =
                kind == Kind::Write && f.kill_in_flight.is_some_and(|k| op.starts_with(k));
            if in_flight {
                // One kill: the next runner sending this write lives.
                w.faults.kill_in_flight = None;
            }
            let killed = w.runners[r].kill_at == Some(w.runners[r].calls)
                || w.runners[r].kill_after.is_some_and(|t| now >= t)
                || in_flight;
            let is_write = matches!(kind, Kind::Write | Kind::LockWrite);
            let service = Service::of(op);
            let down = f.outages.iter().find(|o| {
                o.service == service
                    && u128::from(now) >= o.from.as_millis()
                    && u128::from(now) < o.to.as_millis()
            });
            let injected = w
                .faults
                .aws_errors
                .iter()
                .position(|e| op.starts_with(e.op) && u128::from(now) >= e.from.as_millis());
            let no_answer = injected.filter(|at| w.faults.aws_errors[*at].code == NO_ANSWER);
            let hung = !killed && down.is_none() && (no_answer.is_some() || w.rng.chance(f.hang));
            if let Some(at) = no_answer.filter(|at| hung && !w.faults.aws_errors[*at].lasting) {
                w.faults.aws_errors.remove(at);
            }
            let result = if let Some(o) = down {
                // Correlated: every call to the service fails until the outage ends.
                Err(if o.throttling {
                    PortError::Throttled(format!("{service:?}: Rate exceeded (outage)"))
                } else {
                    PortError::Transient(format!("{service:?}: 503 Service Unavailable (outage)"))
                })
            } else if hung {
                // No answer comes back. A write may still apply: at once, or later within a
                // call timeout (the request sat in a queue), or never.
                if is_write {
                    match w.rng.range(0, 3) {
                        0 => {
                            let _ = apply(&mut w, now, r);
                        }
                        1 => {
                            w.deferring = true;
                            let _ = apply(&mut w, now, r);
                            w.deferring = false;
                        }
                        _ => {}
                    }
                }
                w.metrics.hung_calls += 1;
                Err(PortError::Ambiguous("no answer (hung)".into()))
            } else if let Some(at) = injected.filter(|_| no_answer.is_none()) {
                let code = match w.faults.aws_errors[at].lasting {
                    true => w.faults.aws_errors[at].code,
                    false => w.faults.aws_errors.remove(at).code,
                };
                Err(PortError::from_code(
                    code,
                    format!("{op}: {code}"),
                    is_write,
                ))
            } else if f.deny.iter().any(|d| op.starts_with(d)) {
                Err(PortError::AccessDenied(format!(
                    "not authorized to perform {op}"
                )))
            } else if w.rng.chance(f.throttle) {
                Err(PortError::Throttled("Rate exceeded".into()))
            } else if w.rng.chance(f.transient) {
                Err(PortError::Transient("500 InternalFailure".into()))
            } else if in_flight || (killed && kind == Kind::Write && w.rng.chance(0.3)) {
                // Sent just before the runner died; lands up to a call timeout later (weight
                // changes, ECS updates and history writes are delayed; others apply now).
                w.deferring = true;
                let _ = apply(&mut w, now, r);
                w.deferring = false;
                Err(PortError::Ambiguous(
                    "killed with the request in flight".into(),
                ))
            } else if (is_write && w.rng.chance(f.ambiguous)) || (killed && w.rng.chance(0.5)) {
                // Applied, but the answer is lost.
                let _ = apply(&mut w, now, r);
                Err(PortError::Ambiguous(
                    "connection reset after sending".into(),
                ))
            } else if killed {
                Err(PortError::Ambiguous("killed before sending".into()))
            } else {
                apply(&mut w, now, r)
            };
            let name = w.runners[r].name.clone();
            // The cloud's own answers may hold the secret (a task definition); the sim's log
            // redacts it. Only the engine's outputs are checked for it (invariant 10).
            let shown = if hung {
                "HUNG".to_string()
            } else {
                format!("{result:?}")
            };
            let line = format!("{now:>9} {name} {op} -> {shown}").replace(&w.secret, "***");
            w.log.push(line);
            w.after_call(now);
            if killed {
                w.runners[r].killed = true;
                w.metrics.killed_at.get_or_insert(now);
                w.log.push(format!("{now:>9} {name} KILLED"));
            }
            (result, killed, hung)
        };
        if killed {
            self.killed.notify_one();
            std::future::pending::<()>().await;
        }
        if hung {
            self.hang(op, now).await;
        }
        result
    }

    /// A hung call: no answer for [`HANG`]. The engine's per-attempt timeout must give up
    /// long before (invariant 8); the guard records how long the caller waited.
    async fn hang(&self, op: &str, since: u64) {
        struct Waiting<'a> {
            cloud: &'a SimCloud,
            op: &'a str,
            since: u64,
        }
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                let now = self.cloud.now_ms();
                let Ok(mut w) = self.cloud.world.lock() else {
                    return;
                };
                let waited = now - self.since;
                w.metrics.longest_hang_ms = w.metrics.longest_hang_ms.max(waited);
                let name = w.runners[self.cloud.runner].name.clone();
                w.log.push(format!(
                    "{now:>9} {name} gave up on {} after {waited} ms",
                    self.op
                ));
                if waited >= HANG.as_millis() as u64 {
                    w.violation(
                        now,
                        format!(
                            "I8: {name} waited on a hung {} for {waited} ms: nothing bounded it",
                            self.op
                        ),
                    );
                }
            }
        }
        let _waiting = Waiting {
            cloud: self,
            op,
            since,
        };
        tokio::time::sleep(HANG).await;
    }

    pub(super) async fn write<T: std::fmt::Debug>(
        &self,
        op: &str,
        apply: impl FnOnce(&mut World, u64) -> PortResult<T>,
    ) -> PortResult<T> {
        self.call(op, Kind::Write, |w, now, r| {
            w.before_write(now, r, op);
            apply(w, now)
        })
        .await
    }

    /// Staleness: an eventually consistent read sees the world a few seconds back.
    pub(super) fn read_time(w: &mut World, now: u64) -> u64 {
        if w.rng.chance(w.faults.stale) {
            now.saturating_sub(3_000)
        } else {
            now
        }
    }
}

impl Clock for SimCloud {
    fn now(&self) -> Millis {
        EPOCH_MS + self.now_ms() + self.world().runners[self.runner].skew_ms
    }
    fn token(&self) -> PortResult<String> {
        // Seeded, so a seed replays the same log; drawn from the one world, so unique.
        let mut w = self.world();
        Ok(format!(
            "{:016x}{:016x}",
            w.rng.next_u64(),
            w.rng.next_u64()
        ))
    }
    fn random(&self) -> u64 {
        self.world().jitter.next_u64()
    }
}

impl Compute for SimCloud {
    async fn read_slot(&self, slot: Slot) -> PortResult<SlotState> {
        self.call("read_slot", Kind::EventualRead, |w, now, _| {
            let at = Self::read_time(w, now);
            Ok(w.read_slot(at, slot))
        })
        .await
    }

    async fn slot_services(&self) -> PortResult<(SlotState, SlotState)> {
        self.call("slot_services", Kind::EventualRead, |w, now, _| {
            let at = Self::read_time(w, now);
            Ok((w.read_slot(at, Slot::Blue), w.read_slot(at, Slot::Green)))
        })
        .await
    }

    async fn register_task_definition(&self, spec: &TaskSpec) -> PortResult<TaskDefinition> {
        self.write("register_task_definition", |w, _| {
            Ok(w.register(spec.clone()))
        })
        .await
    }

    async fn update_slot(&self, slot: Slot, task_definition: &str, desired: u32) -> PortResult<()> {
        let op = format!("update_slot({slot}, {task_definition}, {desired})");
        self.call(&op, Kind::Write, |w, now, r| {
            w.before_write(now, r, &op);
            if w.deferring {
                let td = task_definition.to_string();
                w.defer(now, r, LateWrite::Update { slot, td, desired });
                return Ok(());
            }
            w.before_update(now, slot, task_definition, desired);
            w.update_slot(now, slot, task_definition, desired)
        })
        .await
    }
}

impl SimCloud {
    /// A read-back that AWS refused (ELB unreachable past every retry) settles invariant 3
    /// too: the engine asked before doing anything else, and what it may do next without
    /// knowing the weights — mark the release RollingBack, write the weights back to the
    /// old slot (a write that is right whatever they are) — the other invariants judge.
    fn read_back_refused<T>(&self, read: &PortResult<T>) {
        if read.is_err() {
            self.world().ghost.pending_readback.remove(&self.runner);
        }
    }
}

impl Traffic for SimCloud {
    async fn production_weights(&self) -> PortResult<Weights> {
        let read = self
            .call("production_weights", Kind::EventualRead, |w, now, r| {
                w.ghost.pending_readback.remove(&r);
                Ok(w.production_weights(now))
            })
            .await;
        self.read_back_refused(&read);
        read
    }

    async fn set_production_weights(&self, weights: Weights) -> PortResult<()> {
        let op = format!("set_production_weights({weights})");
        self.call(&op, Kind::Write, |w, now, r| {
            w.before_write(now, r, &op);
            w.ghost.pending_readback.insert(r);
            if w.deferring {
                w.defer(now, r, LateWrite::Weights(weights));
                return Ok(());
            }
            w.set_weights(now, weights)
        })
        .await
    }

    async fn weights_and_test_listener(&self) -> PortResult<(Weights, Option<Slot>)> {
        let read = self
            .call(
                "weights_and_test_listener",
                Kind::EventualRead,
                |w, now, r| {
                    w.ghost.pending_readback.remove(&r);
                    Ok((w.production_weights(now), w.test_listener_read(now)))
                },
            )
            .await;
        self.read_back_refused(&read);
        read
    }

    async fn test_listener(&self) -> PortResult<Option<Slot>> {
        self.call("test_listener", Kind::Read, |w, now, _| {
            Ok(w.test_listener_read(now))
        })
        .await
    }

    async fn point_test_listener(&self, slot: Slot) -> PortResult<()> {
        self.write(&format!("point_test_listener({slot})"), |w, now| {
            w.point_test_listener(now, slot);
            Ok(())
        })
        .await
    }

    async fn health_check_timing(&self, _: Slot) -> PortResult<HealthCheckTiming> {
        self.call("health_check_timing", Kind::Read, |_, _, _| {
            Ok(HealthCheckTiming {
                interval: Duration::from_millis(HEALTH_CHECK_INTERVAL_MS),
                healthy_threshold: HEALTHY_THRESHOLD as u32,
            })
        })
        .await
    }

    async fn target_health(&self, slot: Slot) -> PortResult<Vec<TargetHealth>> {
        self.call("target_health", Kind::EventualRead, |w, now, _| {
            let at = Self::read_time(w, now);
            let health = w.target_health(at, slot);
            w.ghost.health_read[super::world::idx(slot)] = Some(w.slot_healthy(at, slot));
            Ok(health)
        })
        .await
    }
}

impl Images for SimCloud {
    async fn digest_for_tag(&self, tag: &str) -> PortResult<Option<Digest>> {
        self.call("digest_for_tag", Kind::Read, |w, _, _| Ok(w.image(tag)))
            .await
    }

    async fn exists(&self, digest: &Digest) -> PortResult<bool> {
        self.call(
            "image_exists",
            Kind::Read,
            |w, _, _| Ok(w.has_image(digest)),
        )
        .await
    }
}

impl Signals for SimCloud {
    async fn alarm_states(&self, names: &[String]) -> PortResult<BTreeMap<String, AlarmState>> {
        self.call("alarm_states", Kind::Read, |w, now, _| {
            Ok(w.alarm_states(now, names))
        })
        .await
    }
}

impl Prober for SimCloud {
    async fn probe(&self, request: &ProbeRequest) -> CheckResult {
        tokio::time::sleep(Duration::from_millis(40)).await;
        let now = self.now_ms();
        let mut w = self.world();
        let result = w.probe(now, request.expect_version.as_ref().map(|e| &e.version));
        let name = w.runners[self.runner].name.clone();
        w.log.push(format!(
            "{now:>9} {name} probe {} -> {result:?}",
            request.path
        ));
        match result {
            Ok(()) => CheckResult::Pass,
            Err(why) => CheckResult::Fail(why),
        }
    }

    async fn run_command(&self, argv: &[String], version: &Version, _: Duration) -> CheckResult {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut w = self.world();
        let now = self.now_ms();
        let bad = w.faults.bad_probe && *version == w.new_version;
        w.log.push(format!(
            "{now:>9} command {argv:?} {version} -> ok={}",
            !bad
        ));
        if bad {
            CheckResult::Fail("exit status 1".into())
        } else {
            CheckResult::Pass
        }
    }
}

impl Reporter for SimCloud {
    fn status(&self, event: &StatusEvent) {
        let now = self.now_ms();
        self.world().on_report(now, self.runner, event);
    }

    fn notice(&self, message: &str) {
        let now = self.now_ms();
        let mut w = self.world();
        w.check_secret(now, message);
        let name = w.runners[self.runner].name.clone();
        w.log.push(format!("{now:>9} {name} NOTICE {message}"));
    }
}
