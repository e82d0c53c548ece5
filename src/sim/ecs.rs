//! The simulated ECS and target groups: task definitions, slots whose tasks take time to
//! start and pass health checks, and the target health the load balancer reports.

use super::faults::EcsFailure;
use super::world::*;
use crate::ports::*;

impl World {
    pub(crate) fn register(&mut self, spec: TaskSpec) -> TaskDefinition {
        // The same spec again reuses its revision, unless deregistered since (ECS would
        // register a new one; an INACTIVE one cannot be deployed).
        if let Some(td) = self
            .tds
            .iter()
            .find(|t| t.spec == spec && !self.is_inactive(&t.id))
        {
            return td.clone();
        }
        let td = TaskDefinition {
            id: format!("web:{}", self.tds.len() + 1),
            spec,
        };
        self.tds.push(td.clone());
        td
    }

    pub(crate) fn update_slot(
        &mut self,
        now: u64,
        slot: Slot,
        td: &str,
        desired: u32,
    ) -> PortResult<()> {
        if !self.tds.iter().any(|t| t.id == td) {
            return Err(PortError::NotFound(format!("task definition {td}")));
        }
        if self.is_inactive(td) {
            // ECS: "TaskDefinition is inactive" (a ClientException).
            return Err(PortError::from_code(
                "ClientException",
                format!("task definition {td} is inactive"),
                true,
            ));
        }
        let never = self.faults.never_healthy && self.is_new(td);
        let failure = self.faults.ecs_failure.filter(|_| self.is_new(td));
        // ECS says so a little after the update: a pull or an exit within seconds, a
        // placement failure at once, the circuit breaker after several failed tasks.
        let failing_at = failure.map(|f| {
            now + match f {
                EcsFailure::CircuitBreaker => self.rng.range(60_000, 240_000),
                EcsFailure::CannotPull | EcsFailure::EssentialExit => self.rng.range(5_000, 40_000),
                EcsFailure::Unplaceable => self.rng.range(1_000, 5_000),
            }
        });
        if let Some(at) = failing_at
            && self.metrics.ecs_failed_at.is_none()
        {
            self.metrics.ecs_failed_at = Some(at);
        }
        let s = &mut self.slots[idx(slot)];
        let replace = s.td.as_deref() != Some(td);
        let mut live: Vec<usize> = (0..s.tasks.len())
            .filter(|i| s.tasks[*i].gone_at.is_none())
            .collect();
        if replace {
            for i in live.drain(..) {
                s.tasks[i].gone_at = Some(now + DEREGISTRATION_DELAY_MS);
            }
        }
        while live.len() > desired as usize {
            let i = live.pop().expect("non-empty");
            s.tasks[i].gone_at = Some(now + DEREGISTRATION_DELAY_MS);
        }
        // Unplaceable tasks never exist; tasks that cannot pull or exit at once never run.
        let placed = if failure == Some(EcsFailure::Unplaceable) {
            live.len()
        } else {
            desired as usize
        };
        for _ in live.len()..placed {
            let running_at = match failure {
                Some(EcsFailure::CannotPull | EcsFailure::EssentialExit) => u64::MAX,
                _ => now + self.rng.range(5_000, 40_000),
            };
            let healthy = !never && failure.is_none();
            s.tasks.push(TaskSim {
                id: self.next_task,
                td: td.to_string(),
                running_at,
                healthy_at: healthy
                    .then(|| running_at + HEALTH_CHECK_INTERVAL_MS * HEALTHY_THRESHOLD),
                gone_at: None,
            });
            self.next_task += 1;
        }
        if replace || failure.is_none() {
            s.failure = failing_at.zip(failure);
        }
        s.td = Some(td.to_string());
        s.desired = desired;
        s.events
            .insert(0, format!("updated to {td} with desired {desired}"));
        s.events.truncate(5);
        if never {
            s.stopped.insert(
                0,
                "Task failed ELB health checks in (target-group web-tg)".into(),
            );
            s.stopped.truncate(5);
        }
        // When the slot is fully ready, for the lag benchmark.
        let ready = s
            .tasks
            .iter()
            .try_fold(now, |at, t| match (t.gone_at, t.healthy_at) {
                (Some(gone), _) => Some(at.max(gone)),
                (None, Some(h)) => Some(at.max(h)),
                (None, None) => None,
            });
        if desired > 0 && self.weights.of(slot) == 0 {
            self.metrics.ready_at = ready;
            self.metrics.ready_acted_at = None;
        }
        // A worker's one service does all its work: a new task definition there is the
        // release the alarms judge from now on.
        if self.worker {
            self.carry(now);
        }
        Ok(())
    }

    pub(crate) fn read_slot(&self, at: u64, slot: Slot) -> SlotState {
        let s = &self.slots[idx(slot)];
        let current = |t: &&TaskSim| t.gone_at.is_none();
        let running = s
            .tasks
            .iter()
            .filter(current)
            .filter(|t| t.running_at <= at)
            .count() as u32;
        let pending = s
            .tasks
            .iter()
            .filter(current)
            .filter(|t| t.running_at > at)
            .count() as u32;
        let draining = s.tasks.iter().any(|t| t.gone_at.is_some_and(|g| g > at));
        // ECS keeps a deployment IN_PROGRESS while its circuit breaker counts failing
        // tasks: it is never COMPLETED before it is FAILED.
        let mut rollout =
            if pending == 0 && !draining && running == s.desired && s.failure.is_none() {
                Rollout::Completed
            } else {
                Rollout::InProgress
            };
        let mut events = s.events.clone();
        let mut stopped = s.stopped.clone();
        let mut failures = Vec::new();
        if let Some((_, failure)) = s.failure.filter(|(from, _)| *from <= at) {
            let svc = format!("web-{slot}");
            let td = s.td.as_deref().unwrap_or("-");
            match failure {
                EcsFailure::CircuitBreaker => {
                    rollout = Rollout::Failed;
                    events.insert(
                        0,
                        format!("(service {svc}) (deployment of {td}) deployment failed: tasks failed to start."),
                    );
                    stopped.insert(
                        0,
                        "Task failed ELB health checks in (target-group web-tg)".into(),
                    );
                }
                EcsFailure::CannotPull => failures.push(format!(
                    "task of {td}: CannotPullContainerError: pull image manifest has been retried 5 time(s): not found"
                )),
                EcsFailure::EssentialExit => failures.push(format!(
                    "task of {td}: Essential container in task exited (web: exit code 1)"
                )),
                EcsFailure::Unplaceable => events.insert(
                    0,
                    format!(
                        "(service {svc}) was unable to place a task because no container instance met all of its requirements."
                    ),
                ),
            }
            stopped.splice(0..0, failures.iter().cloned());
            failures.extend(
                events
                    .iter()
                    .filter(|e| crate::model::is_placement_failure(e))
                    .cloned(),
            );
        }
        SlotState {
            task_definition: s
                .td
                .as_ref()
                .and_then(|id| self.tds.iter().find(|t| &t.id == id).cloned()),
            desired: s.desired,
            running,
            pending,
            rollout,
            events,
            stopped_reasons: stopped,
            failures,
            load_balancers: vec![self.binding(slot)],
        }
    }

    /// Where `slot`'s service registers its tasks, as `sim::settings()` names the target
    /// groups, container and port; with `faults.miswired` the green service registers in
    /// blue's group (a copy-paste in the infrastructure code).
    pub(crate) fn binding(&self, slot: Slot) -> LoadBalancer {
        let group = match (slot, self.faults.miswired) {
            (Slot::Blue, _) | (Slot::Green, true) => "tg/blue",
            (Slot::Green, false) => "tg/green",
        };
        LoadBalancer {
            target_group: group.into(),
            container: "web".into(),
            port: 8080,
        }
    }

    pub(crate) fn target_health(&self, at: u64, slot: Slot) -> Vec<TargetHealth> {
        let flapping = self.faults.flapping;
        self.slots[idx(slot)]
            .tasks
            .iter()
            .filter(|t| t.running_at <= at && t.gone_at.is_none_or(|g| g > at))
            .map(|t| {
                let (state, reason) = match (t.gone_at, t.healthy_at) {
                    (Some(_), _) => (
                        TargetState::Draining,
                        Some("Target.DeregistrationInProgress"),
                    ),
                    (None, None) => (
                        TargetState::Unhealthy,
                        Some("Target.ResponseCodeMismatch: 502"),
                    ),
                    (None, Some(h)) if h > at => {
                        (TargetState::Initial, Some("Elb.RegistrationInProgress"))
                    }
                    // Flapping: the new release's targets fail 10 s out of every 45 s.
                    (None, Some(_)) if flapping && self.is_new(&t.td) && at % 45_000 < 10_000 => {
                        (TargetState::Unhealthy, Some("Target.Timeout"))
                    }
                    _ => (TargetState::Healthy, None),
                };
                TargetHealth {
                    id: format!("task-{}", t.id),
                    state,
                    reason: reason.map(str::to_string),
                }
            })
            .collect()
    }

    /// Every target of the slot's current task definition healthy, nothing else registered.
    pub(crate) fn slot_healthy(&self, at: u64, slot: Slot) -> bool {
        let s = &self.slots[idx(slot)];
        let health = self.target_health(at, slot);
        s.desired > 0
            && health.len() == s.desired as usize
            && health.iter().all(|t| t.state == TargetState::Healthy)
    }

    // ---- ELBv2 ----
}
