//! The simulated cloud's state and physics: two ECS slots (whose tasks take time to start
//! and pass health checks: `ecs.rs`), weights, a test listener, ECR, SSM (history +
//! lock); alarms in `alarms.rs`.
//! Time is tokio's (paused in tests), so a run is a pure function of its seed.

use std::collections::{BTreeMap, BTreeSet};

use super::faults::Faults;
use super::rng::Rng;
use crate::ports::{
    Lock, PortError, PortResult, Release, Slot, StoredImage, TargetState, TaskDefinition, TaskSpec,
    Weights,
};
use crate::version::Version;

/// ALB health checks: a target is healthy after interval × threshold.
pub const HEALTH_CHECK_INTERVAL_MS: u64 = 10_000;
pub const HEALTHY_THRESHOLD: u64 = 3;
pub const DEREGISTRATION_DELAY_MS: u64 = 30_000;
/// How far behind a stale read is.
const STALE_MS: u64 = 3_000;
/// Wall time at the start of every simulated run.
pub const EPOCH_MS: u64 = 1_767_225_600_000;

#[derive(Debug, Clone)]
pub(crate) struct TaskSim {
    pub(super) id: u32,
    pub(super) td: String,
    pub(super) running_at: u64,
    /// None: never passes health checks.
    pub(super) healthy_at: Option<u64>,
    /// Set when deregistered: draining until then, gone after.
    pub(super) gone_at: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct SlotSim {
    pub(crate) td: Option<String>,
    pub(crate) desired: u32,
    pub(super) tasks: Vec<TaskSim>,
    pub(super) events: Vec<String>,
    pub(super) stopped: Vec<String>,
    /// How ECS fails the current rollout, and from when it says so.
    pub(super) failure: Option<(u64, super::faults::EcsFailure)>,
}

/// One runner (a CI job or a laptop) as the sim sees it.
#[derive(Debug, Clone)]
pub(crate) struct RunnerSim {
    pub(crate) name: String,
    pub(crate) calls: u32,
    pub(crate) kill_at: Option<u32>,
    /// Killed at its first call at or after this time (`faults.kill_in`).
    pub(crate) kill_after: Option<u64>,
    pub(crate) killed: bool,
    /// How far this runner's wall clock runs ahead of the world's (clock skew).
    pub(crate) skew_ms: u64,
    /// The last lock token this runner created, and when it last wrote.
    pub(crate) token: Option<String>,
    pub(crate) last_write: Option<u64>,
}

/// What the invariant checker knows independently of the engine's own claims.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ghost {
    /// Task definitions that passed probes on the test listener (or were live at start).
    pub(crate) validated: BTreeSet<String>,
    pub(super) streak: BTreeMap<String, u32>,
    pub(crate) required_successes: u32,
    /// No probes configured: a release reported AwaitingApproval counts as validated.
    pub(crate) trust_engine_validation: bool,
    /// Runners that changed weights and have not read them back yet.
    pub(crate) pending_readback: BTreeSet<usize>,
    /// The task definition at 100% and since when.
    pub(crate) full_since: Option<(String, u64)>,
    pub(crate) bake_ms: u64,
    /// Each shift step's percent and hold (ms), and the latest write that set the new
    /// release's slot to a step's weight: a step is held in full before any weight above
    /// it, also across a crash and a re-run (issue 15.2).
    pub(crate) step_holds: Vec<(u8, u64)>,
    pub(super) step_set: Option<(Slot, u8, u64)>,
    /// When the release under test first got production traffic.
    pub(crate) new_traffic_since: Option<u64>,
    /// Per slot: whether the last target health read showed every target healthy at the
    /// slot's desired count (what the engine may act on, invariant I14).
    pub(crate) health_read: [Option<bool>; 2],
}

/// Figures for the lag benchmark, measured on the sim's side.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// When the idle slot became fully ready (rolled out, every target healthy).
    pub ready_at: Option<u64>,
    /// When the engine next acted after that (its first call past the wait).
    pub ready_acted_at: Option<u64>,
    /// When an alarm was first in ALARM with the new release taking traffic.
    pub alarm_true_at: Option<u64>,
    /// When the engine moved traffic off the new release after that.
    pub alarm_acted_at: Option<u64>,
    /// When ECS first reported the new release's rollout as failed (`faults.ecs_failure`).
    pub ecs_failed_at: Option<u64>,
    /// When a run first reported Failed after that.
    pub failed_reported_at: Option<u64>,
    /// When a runner was first killed, and when a recovery run had production back.
    pub killed_at: Option<u64>,
    pub recovered_at: Option<u64>,
    /// Calls that hung, and the longest any of them was left hanging before its caller gave
    /// up (the engine's per-attempt timeout bounds it).
    pub hung_calls: u32,
    pub longest_hang_ms: u64,
    /// Late writes of killed or hung calls that landed, by kind.
    pub late_landed: Vec<String>,
    /// AWS calls per runner.
    pub calls: Vec<u32>,
    /// Virtual milliseconds the run took.
    pub elapsed_ms: u64,
    /// Every status reported (`cutover simulate`'s phases and outcomes).
    pub statuses: Vec<StatusAt>,
    /// Since when production traffic has been split, and the longest split so far (ms).
    pub split_since: Option<u64>,
    /// When the release under test first passed validation (the checker's judgement).
    pub new_validated_at: Option<u64>,
    /// A worker: when its service was first updated to the release under test.
    pub new_rolled_at: Option<u64>,
    pub longest_split_ms: u64,
}

/// One status report as the sim saw it.
#[derive(Debug, Clone)]
pub struct StatusAt {
    pub at_ms: u64,
    pub runner: usize,
    pub status: crate::ports::Status,
    /// About the release being deployed (not the one live at the start).
    pub new: bool,
    /// The report's detail, kept for the ends (Failed, RolledBack, RollbackFailed) only.
    pub detail: Option<String>,
}

pub struct World {
    pub(crate) rng: Rng,
    /// The engine's retry jitter: its own stream, so retries do not shift the faults'.
    pub(crate) jitter: Rng,
    pub(crate) faults: Faults,
    pub(crate) log: Vec<String>,
    pub(crate) violations: Vec<String>,
    pub(crate) slots: [SlotSim; 2],
    pub(super) tds: Vec<TaskDefinition>,
    pub(crate) weights: Weights,
    pub(super) prev_weights: Weights,
    pub(super) weights_changed: u64,
    pub(crate) test_listener: Option<Slot>,
    /// After a repoint, the slot that still answers the test listener's traffic, until
    /// when: the ALB's data plane lags its configuration (`faults.test_listener_lag`).
    pub(super) test_listener_lagging: Option<(Option<Slot>, u64)>,
    /// The ECR repository: each image once by digest, with its tags (`inventory.rs`).
    pub(super) images: Vec<StoredImage>,
    /// Task definitions deregistered (INACTIVE): still described, no longer listed.
    pub(super) inactive: BTreeSet<String>,
    pub(crate) history: Vec<Release>,
    pub(crate) history_cap: usize,
    pub(crate) lock: Option<Lock>,
    /// Which runner created each lock token: the invariant checker's own record of who
    /// holds the lock (owner names can repeat: two jobs of one run, two shells of a user).
    pub(crate) lock_tokens: BTreeMap<String, usize>,
    /// When each token stopped being the lock (deleted or replaced), in sim time.
    pub(crate) lock_lost_at: BTreeMap<String, u64>,
    /// Set while a killed runner's (or a hung call's) write is being sent: a weight change,
    /// an ECS update or a history write then lands later.
    pub(crate) deferring: bool,
    /// Writes still on their way: (lands at, sent at, runner, what).
    pub(crate) late: Vec<(u64, u64, usize, LateWrite)>,
    /// Whether `faults.kill_in` has picked its runner.
    pub(crate) kill_armed: bool,
    /// Stretches of production traffic per slot, for the alarms (`alarms.rs`).
    pub(crate) carried: Vec<super::alarms::Carried>,
    /// The release live when the run started (an incident makes it fail).
    pub(crate) first_live_td: Option<String>,
    /// The release under test: release faults apply to it only.
    pub(crate) new_version: Version,
    pub(crate) ghost: Ghost,
    pub(crate) runners: Vec<RunnerSim>,
    pub(super) next_task: u32,
    /// Planted in the task definition; must never appear in any output (invariant 10).
    pub(crate) secret: String,
    pub(crate) metrics: Metrics,
    /// Abort injection: cancel the engine when a status matching this is reported.
    pub(crate) cancel_on: Option<(crate::ports::Status, crate::engine::CancelHandle)>,
    /// A worker (`[worker]`): its one service is the blue slot, updated in place, and no
    /// traffic moves; the slot invariants about traffic do not apply (I1, I3).
    pub(crate) worker: bool,
}

/// A write that lands after its call ended (see [`World::defer`]).
#[derive(Debug, Clone)]
pub(crate) enum LateWrite {
    Weights(Weights),
    Update {
        slot: Slot,
        td: String,
        desired: u32,
    },
    /// Boxed: a release with its kept transitions dwarfs the other variants.
    Record {
        release: Box<Release>,
        cap: usize,
    },
}

impl LateWrite {
    fn kind(&self) -> &'static str {
        match self {
            LateWrite::Weights(_) => "weights",
            LateWrite::Update { .. } => "update_slot",
            LateWrite::Record { .. } => "record",
        }
    }
}

impl std::fmt::Display for LateWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LateWrite::Weights(w) => write!(f, "set_production_weights({w})"),
            LateWrite::Update { slot, td, desired } => {
                write!(f, "update_slot({slot}, {td}, {desired})")
            }
            LateWrite::Record { release, .. } => write!(
                f,
                "record({} {} {})",
                release.version, release.task_definition, release.status
            ),
        }
    }
}

pub(crate) fn idx(slot: Slot) -> usize {
    match slot {
        Slot::Blue => 0,
        Slot::Green => 1,
    }
}

impl World {
    pub(crate) fn new(seed: u64, faults: Faults, new_version: Version) -> Self {
        Self {
            rng: Rng::new(seed),
            jitter: Rng::new(seed.rotate_left(32) ^ 0x6A09_E667_F3BC_C908),
            faults,
            log: Vec::new(),
            violations: Vec::new(),
            slots: Default::default(),
            tds: Vec::new(),
            weights: Weights::all_on(Slot::Blue),
            prev_weights: Weights::all_on(Slot::Blue),
            weights_changed: 0,
            test_listener: None,
            test_listener_lagging: None,
            images: Vec::new(),
            inactive: BTreeSet::new(),
            history: Vec::new(),
            history_cap: 10,
            lock: None,
            lock_tokens: BTreeMap::new(),
            lock_lost_at: BTreeMap::new(),
            deferring: false,
            late: Vec::new(),
            kill_armed: false,
            carried: Vec::new(),
            first_live_td: None,
            new_version,
            ghost: Ghost::default(),
            runners: Vec::new(),
            next_task: 1,
            secret: format!("s3cr3t-{seed:x}"),
            metrics: Metrics::default(),
            cancel_on: None,
            worker: false,
        }
    }

    /// Put a release live on `slot` at 100% from the start, healthy and validated.
    pub(crate) fn seed_live(&mut self, slot: Slot, spec: TaskSpec, desired: u32, release_by: &str) {
        let td = self.register(spec).id;
        let s = &mut self.slots[idx(slot)];
        s.td = Some(td.clone());
        s.desired = desired;
        for _ in 0..desired {
            s.tasks.push(TaskSim {
                id: self.next_task,
                td: td.clone(),
                running_at: 0,
                healthy_at: Some(0),
                gone_at: None,
            });
            self.next_task += 1;
        }
        self.weights = Weights::all_on(slot);
        self.prev_weights = self.weights;
        // As after a promote: the test listener still forwards to the slot that was staged,
        // now live, so probes answered before a repoint lands reach the live release.
        self.test_listener = Some(slot);
        self.first_live_td = Some(td.clone());
        self.carry(0);
        self.ghost.validated.insert(td.clone());
        self.ghost.full_since = Some((td.clone(), 0));
        let spec = &self.tds.last().expect("registered").spec;
        self.history.push(Release {
            version: spec.version.clone(),
            digest: spec.digest.clone(),
            task_definition: td,
            slot,
            by: release_by.into(),
            at: EPOCH_MS,
            status: crate::ports::Status::Promoted,
            fingerprint: spec.fingerprint.clone(),
            promoted_at: Some(EPOCH_MS),
            transitions: Vec::new(),
            rehearsal: None,
            train: Vec::new(),
            train_id: String::new(),
        });
    }

    pub(crate) fn add_runner(&mut self, name: &str, kill_at: Option<u32>) -> usize {
        self.runners.push(RunnerSim {
            name: name.into(),
            calls: 0,
            kill_at,
            kill_after: None,
            killed: false,
            skew_ms: 0,
            token: None,
            last_write: None,
        });
        self.metrics.calls.push(0);
        self.runners.len() - 1
    }

    /// A write sent at `now` by `runner` that lands later, within a call timeout: what a
    /// killed runner had in flight, or a hung call applied after its caller gave up.
    pub(crate) fn defer(&mut self, now: u64, runner: usize, write: LateWrite) {
        let lands = now + self.rng.range(1_000, 30_000);
        self.late.push((lands, now, runner, write));
    }

    /// Land the late writes due by `now` (all of them with `all`): a dead holder's write
    /// (weights, ECS update, history) must never land after another runner's first write
    /// (invariant 13).
    pub(crate) fn land_late(&mut self, now: u64, all: bool) {
        let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.late)
            .into_iter()
            .partition(|l| all || l.0 <= now);
        self.late = rest;
        for (_, sent, runner, write) in due {
            let name = self.runners[runner].name.clone();
            let after = self
                .runners
                .iter()
                .enumerate()
                .find(|(i, x)| *i != runner && x.last_write.is_some_and(|w| w >= sent))
                .map(|(_, x)| x.name.clone());
            if let Some(other) = after {
                self.violation(
                    now,
                    format!("I13: {name}'s late {write} landed after {other} wrote"),
                );
            }
            self.log
                .push(format!("{now:>9} {name} LATE {write} landed"));
            self.metrics.late_landed.push(write.kind().into());
            let _ = match write {
                LateWrite::Weights(w) => self.set_weights(now, w),
                LateWrite::Update { slot, td, desired } => {
                    self.before_update(now, slot, &td, desired);
                    self.update_slot(now, slot, &td, desired)
                }
                LateWrite::Record { release, cap } => {
                    self.before_record(now, &release, cap);
                    self.record(&release, cap);
                    Ok(())
                }
            };
        }
    }

    /// The lock changes from `before` (if any) at `now`: remember when its token was lost.
    pub(crate) fn lock_replaced(&mut self, now: u64, before: Option<&Lock>) {
        if let Some(old) = before
            && self.lock.as_ref().map(|l| &l.token) != Some(&old.token)
        {
            self.lock_lost_at.entry(old.token.clone()).or_insert(now);
        }
    }

    pub(crate) fn violation(&mut self, now: u64, what: String) {
        self.log.push(format!("{now:>9} VIOLATION {what}"));
        self.violations.push(format!("t={now}ms {what}"));
    }

    /// `td` passed validation (the invariant checker's own judgement), now.
    pub(crate) fn validated(&mut self, now: u64, td: String) {
        if self.is_new(&td) {
            self.metrics.new_validated_at.get_or_insert(now);
        }
        self.ghost.validated.insert(td);
    }

    pub(super) fn is_new(&self, td: &str) -> bool {
        self.tds
            .iter()
            .any(|t| t.id == td && t.spec.version == self.new_version)
    }

    pub(crate) fn td_spec(&self, td: &str) -> Option<&TaskSpec> {
        self.tds.iter().find(|t| t.id == td).map(|t| &t.spec)
    }

    // ---- ECS ----

    /// Where the test listener forwards; the first look after the idle slot turned ready is
    /// when the engine acted on it (for the lag benchmark).
    pub(crate) fn test_listener_read(&mut self, now: u64) -> Option<Slot> {
        if self.metrics.ready_at.is_some_and(|t| t <= now) && self.metrics.ready_acted_at.is_none()
        {
            self.metrics.ready_acted_at = Some(now);
        }
        self.test_listener
    }

    pub(crate) fn production_weights(&mut self, now: u64) -> Weights {
        if now.saturating_sub(self.weights_changed) < STALE_MS && self.rng.chance(self.faults.stale)
        {
            return self.prev_weights;
        }
        self.weights
    }

    /// Traffic toward the release under test never rises above a step before that step
    /// was held for its wait since the latest write that set it.
    fn check_step_held(&mut self, now: u64, w: Weights) {
        for slot in [Slot::Blue, Slot::Green] {
            let td = self.slots[idx(slot)].td.clone().unwrap_or_default();
            if !self.is_new(&td) {
                continue;
            }
            let (before, after) = (self.weights.of(slot), w.of(slot));
            if after > before
                && let Some((s, p, since)) = self.ghost.step_set
                && s == slot
                && p == before
                && let Some((_, hold)) = self.ghost.step_holds.iter().find(|(q, _)| *q == p)
                && now.saturating_sub(since) < *hold
            {
                self.violation(
                    now,
                    format!(
                        "I6: {slot} went from {p}% to {after}% {} ms after {p}% was set, before its {hold} ms hold",
                        now - since
                    ),
                );
            }
            if self.ghost.step_holds.iter().any(|(q, _)| *q == after) {
                self.ghost.step_set = Some((slot, after, now));
            }
        }
    }

    pub(crate) fn set_weights(&mut self, now: u64, w: Weights) -> PortResult<()> {
        if u16::from(w.blue) + u16::from(w.green) != 100 {
            return Err(PortError::Conflict(format!(
                "weights must add up to 100: {w}"
            )));
        }
        self.before_weights(now, w);
        self.check_step_held(now, w);
        self.prev_weights = self.weights;
        self.weights = w;
        self.weights_changed = now;
        match (w.live(), self.metrics.split_since) {
            (None, None) => self.metrics.split_since = Some(now),
            (Some(_), Some(since)) => {
                self.metrics.split_since = None;
                self.metrics.longest_split_ms = self.metrics.longest_split_ms.max(now - since);
            }
            _ => {}
        }
        let live_td = |s: Slot| self.slots[idx(s)].td.clone().unwrap_or_default();
        self.ghost.full_since = match (w.live(), self.ghost.full_since.take()) {
            (Some(s), Some((td, since))) if td == live_td(s) => Some((td, since)),
            (Some(s), _) => Some((live_td(s), now)),
            (None, _) => None,
        };
        let on_new = [Slot::Blue, Slot::Green]
            .into_iter()
            .any(|s| w.of(s) > 0 && self.is_new(&live_td(s)));
        match (on_new, self.ghost.new_traffic_since) {
            (true, None) => self.ghost.new_traffic_since = Some(now),
            (false, Some(_)) => {
                self.ghost.new_traffic_since = None;
                if self.metrics.alarm_true_at.is_some() && self.metrics.alarm_acted_at.is_none() {
                    self.metrics.alarm_acted_at = Some(now);
                }
            }
            _ => {}
        }
        self.carry(now);
        Ok(())
    }

    // ---- probes ----

    /// Point the test listener at `slot`; its traffic follows after the configured lag.
    pub(crate) fn point_test_listener(&mut self, now: u64, slot: Slot) {
        if self.test_listener != Some(slot) {
            let lag = self.faults.test_listener_lag.as_millis() as u64;
            self.test_listener_lagging = Some((self.answering_test_listener(now), now + lag));
        }
        self.test_listener = Some(slot);
    }

    /// The slot that answers test listener traffic now.
    fn answering_test_listener(&self, now: u64) -> Option<Slot> {
        match self.test_listener_lagging {
            Some((slot, until)) if now < until => slot,
            _ => self.test_listener,
        }
    }

    /// A probe through the test listener: passes when the slot answering it has a healthy
    /// target, the release answers well and, when the probe asks, it is `expect`. Counts
    /// consecutive passes per answering release for invariants 1 and 12: a pass by another
    /// release breaks the run.
    pub(crate) fn probe(&mut self, now: u64, expect: Option<&Version>) -> Result<(), String> {
        let Some(slot) = self.answering_test_listener(now) else {
            return Err("test listener forwards nowhere".into());
        };
        let td = self.slots[idx(slot)].td.clone().unwrap_or_default();
        let healthy = self
            .target_health(now, slot)
            .iter()
            .any(|t| t.state == TargetState::Healthy);
        let answered = self.td_spec(&td).map(|spec| spec.version.clone());
        let result = if !healthy {
            Err("503 Service Unavailable (no healthy target)".to_string())
        } else if let Some(v) = expect.filter(|v| answered.as_ref() != Some(*v)) {
            Err(format!("answered by another release, not {v}"))
        } else if self.faults.bad_probe && self.is_new(&td) {
            Err("500 Internal Server Error".to_string())
        } else {
            Ok(())
        };
        let passed = result.is_ok() && self.slot_healthy(now, slot);
        self.ghost.streak.retain(|other, _| *other == td);
        let streak = self.ghost.streak.entry(td.clone()).or_default();
        if passed {
            *streak += 1;
            if *streak >= self.ghost.required_successes {
                self.validated(now, td);
            }
        } else {
            *streak = 0;
        }
        result
    }

    // ---- SSM ----

    pub(crate) fn record(&mut self, release: &Release, cap: usize) {
        crate::history::record_release(&mut self.history, release, cap);
    }
}
