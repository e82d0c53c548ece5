//! A simulated cloud for deterministic tests and benchmarks: every port in memory, virtual
//! time (tokio's paused clock), seeded faults (per call, correlated outages, hung calls,
//! kills in any phase), and the invariants checked on every call; `recovery` drives the
//! rollback workflow after a kill. Public so tests and benches can drive the engine.

mod alarms;
mod cloud;
mod ecs;
mod faults;
mod invariants;
mod inventory;
mod recovery;
pub mod report;
mod rng;
mod scenario;
mod store;
mod train;
mod world;

use std::sync::{Arc, Mutex, MutexGuard};

use crate::config::duration::Duration;
use crate::config::settings::{
    Deadlines, EcsSettings, HistorySettings, ImageSettings, OldSlotPolicy, OldSlotSettings, Probe,
    ServiceSettings, SlotSettings, Slots, Strategy, TrafficSettings, ValidationSettings,
};
use crate::ports::{Digest, Release, Slot, StoredImage, TaskSpec, Weights};
use crate::version::Version;

pub use crate::config::settings::StrategyKind;
pub use alarms::{BLUE_ALARM, GREEN_ALARM, LINGER_MS, SERVICE_ALARM};
pub use cloud::SimCloud;
pub use faults::{
    AwsErrorAt, EcsFailure, Faults, HANG, KillAt, NO_ANSWER, Outage, Profile, Service,
};
pub use inventory::IMAGE_MANIFEST;
pub use recovery::rollback_workflow;
pub use rng::Rng;
pub use scenario::{RunReport, Scenario, run, run_as, run_with, seeds_from_env};
pub use train::{TrainReport, TrainScenario, bench as bench_train, member_name, run_train};
pub use world::{EPOCH_MS, Metrics, StatusAt};

/// The release live when a simulation starts, and the one being deployed.
pub const OLD: &str = "v1.0.0";
pub const NEW: &str = "v1.1.0";
/// Tasks the live release runs when a simulation starts.
pub const CAPACITY: u32 = 2;

/// A simulated world shared by any number of runners.
pub struct Sim {
    world: Arc<Mutex<world::World>>,
    pub(crate) start: tokio::time::Instant,
    pub settings: ServiceSettings,
}

impl Sim {
    /// `OLD` live on blue at 100% with 2 healthy tasks, green empty, history [`OLD`].
    /// Must be called inside a tokio runtime (its clock is the sim's clock).
    pub fn new(seed: u64, faults: Faults, settings: ServiceSettings) -> Self {
        let mut w = world::World::new(seed, faults, version(NEW));
        w.ghost.required_successes = settings
            .validation
            .probes
            .iter()
            .map(|p| p.consecutive_successes)
            .max()
            .unwrap_or(1);
        // With no probes, validation is the engine's other checks (alarms, a command):
        // `cutover simulate` runs such configs, and its pass is all the evidence there is.
        w.ghost.trust_engine_validation = settings.validation.probes.is_empty();
        let steps = crate::engine::steps(&settings.strategy).unwrap_or_default();
        w.ghost.bake_ms = steps.last().map_or(0, |s| s.hold.as_millis() as u64);
        w.ghost.step_holds = steps
            .iter()
            .filter(|s| s.percent < 100)
            .map(|s| (s.percent, s.hold.as_millis() as u64))
            .collect();
        w.history_cap = settings.history.depth as usize;
        w.worker = settings.worker.is_some();
        // Pushed an hour apart before the run, oldest first.
        for (hours_ago, tag) in [(3, OLD), (2, NEW), (1, "v1.2.0")] {
            w.add_image(tag, digest(tag), EPOCH_MS - hours_ago * 3_600_000);
        }
        let sim = Self {
            start: tokio::time::Instant::now(),
            world: Arc::new(Mutex::new(w)),
            settings,
        };
        let old = sim.spec(OLD);
        sim.world().seed_live(Slot::Blue, old, CAPACITY, "seed");
        sim
    }

    /// When the simulation started, in tokio's (virtual) time.
    pub fn start(&self) -> tokio::time::Instant {
        self.start
    }

    fn world(&self) -> MutexGuard<'_, world::World> {
        self.world.lock().expect("sim world")
    }

    /// A new runner; `kill_at_call` kills it at its n-th call.
    pub fn runner(&self, name: &str, kill_at_call: Option<u32>) -> SimCloud {
        let r = self.world().add_runner(name, kill_at_call);
        SimCloud::new(self.world.clone(), self.start, r)
    }

    /// A runner whose wall clock runs `skew` ahead of the others' (it sees locks expire early).
    pub fn runner_skewed(&self, name: &str, skew: std::time::Duration) -> SimCloud {
        let cloud = self.runner(name, None);
        self.world().runners.last_mut().expect("just added").skew_ms = skew.as_millis() as u64;
        cloud
    }

    /// The task spec of a version: its digest and a rendered task definition that holds a
    /// secret environment value (which must never be printed).
    pub fn spec(&self, tag: &str) -> TaskSpec {
        let secret = self.world().secret.clone();
        TaskSpec::new(
            version(tag),
            digest(tag),
            format!(
                r#"{{"image":"web@{}","environment":[{{"name":"DB_PASSWORD","value":"{secret}"}}]}}"#,
                digest(tag)
            ),
        )
    }

    /// Put an image for `tag` in the simulated registry.
    pub fn push_image(&self, tag: &str) {
        let now = EPOCH_MS + self.start.elapsed().as_millis() as u64;
        self.world().add_image(tag, digest(tag), now);
    }

    /// Test hook: an image stored as given (untagged, a multi-platform index…), in place of
    /// any with its digest.
    pub fn put_image(&self, image: StoredImage) {
        self.world().put_image(image);
    }

    /// The repository's images, as ECR holds them now.
    pub fn images(&self) -> Vec<StoredImage> {
        self.world().images.clone()
    }

    /// Test hook: register `spec` as an earlier deploy did; its task definition's id.
    pub fn register(&self, spec: TaskSpec) -> String {
        self.world().register(spec).id
    }

    /// The task definitions ECS lists ACTIVE, oldest first.
    pub fn active_task_definitions(&self) -> Vec<String> {
        let w = self.world();
        w.tds
            .iter()
            .filter(|t| !w.is_inactive(&t.id))
            .map(|t| t.id.clone())
            .collect()
    }

    /// The secret planted in every task definition (invariant 10 checks outputs for it).
    pub fn secret(&self) -> String {
        self.world().secret.clone()
    }

    pub fn weights(&self) -> Weights {
        self.world().weights
    }

    pub fn history(&self) -> Vec<Release> {
        self.world().history.clone()
    }

    pub fn lock_holder(&self) -> Option<String> {
        self.world().lock.as_ref().map(|l| l.owner.clone())
    }

    /// The version running on a slot.
    pub fn version_on(&self, slot: Slot) -> Option<Version> {
        let w = self.world();
        let td = w.slots[world::idx(slot)].td.clone()?;
        w.td_spec(&td).map(|s| s.version.clone())
    }

    pub fn desired_on(&self, slot: Slot) -> u32 {
        self.world().slots[world::idx(slot)].desired
    }

    pub fn violations(&self) -> Vec<String> {
        self.world().violations.clone()
    }

    pub fn log(&self) -> Vec<String> {
        self.world().log.clone()
    }

    pub fn metrics(&self) -> Metrics {
        let mut m = self.world().metrics.clone();
        m.elapsed_ms = self.start.elapsed().as_millis() as u64;
        m
    }

    /// End-of-run checks; `expect` is the version that must be live, when known.
    pub fn check_end_state(&self, expect: Option<&Version>) {
        let now = self.start.elapsed().as_millis() as u64;
        self.world().end_state(now, expect);
    }

    /// The recovery invariant, checked once a recovery run after a kill has ended: production
    /// 100% on the last good release at capacity ([`CAPACITY`] healthy tasks), history
    /// agreeing, the lock free; with `within`, no later than that after the kill.
    pub fn check_recovered(&self, within: Option<std::time::Duration>) {
        let now = self.start.elapsed().as_millis() as u64;
        let within = within.map(|d| d.as_millis() as u64);
        self.world().recovered(now, CAPACITY, within);
    }

    /// Record a violation found by the scenario driver (e.g. a deadline overrun).
    pub fn violation(&self, what: String) {
        let now = self.start.elapsed().as_millis() as u64;
        self.world().violation(now, what);
    }

    /// Invariant 11 for a command's error: moving toward `toward` (staging on it, shifting or
    /// rolling back to it), it never fails because of an alarm of the other slot.
    pub fn check_blame(&self, what: &str, toward: Slot, text: &str) {
        let now = self.start.elapsed().as_millis() as u64;
        self.world().check_blame(now, what, toward, text);
    }

    /// Check any text the run produced (errors included) for the planted secret.
    pub fn check_output(&self, text: &str) {
        let now = self.start.elapsed().as_millis() as u64;
        self.world().check_secret(now, text);
    }

    /// Abort injection: the returned [`Cancel`] fires when any runner reports `status`.
    pub fn cancel_at(&self, status: crate::ports::Status) -> crate::engine::Cancel {
        let (handle, cancel) = crate::engine::Cancel::new();
        self.world().cancel_on = Some((status, handle));
        cancel
    }

    /// Test hook: the history as SSM holds it, e.g. one an older cutover wrote in its order.
    pub fn put_history(&self, history: Vec<Release>) {
        self.world().history = history;
    }

    /// Someone else's hand on a slot (issue 19): its capacity cut, its tasks stopped, or its
    /// targets failing health checks — what a rollback must notice before trusting the
    /// previous release's slot to be warm.
    pub fn degrade(&self, slot: Slot, how: Degradation) {
        let at = self.start.elapsed().as_millis() as u64;
        let mut w = self.world();
        let s = &mut w.slots[world::idx(slot)];
        let live: Vec<usize> = (0..s.tasks.len())
            .filter(|i| s.tasks[*i].gone_at.is_none())
            .collect();
        match how {
            Degradation::ScaledDown => {
                s.desired = 1;
                for i in live.into_iter().skip(1) {
                    s.tasks[i].gone_at = Some(at);
                }
            }
            Degradation::TasksStopped => {
                for i in live {
                    s.tasks[i].gone_at = Some(at);
                }
                s.stopped.insert(0, "Task stopped by user".into());
            }
            Degradation::TargetsUnhealthy => {
                for i in live {
                    s.tasks[i].healthy_at = None;
                }
            }
        }
    }

    /// Test hook: mark a task definition as having passed validation outside the engine.
    pub fn mark_validated(&self, task_definition: &str) {
        self.world()
            .ghost
            .validated
            .insert(task_definition.to_string());
    }
}

/// How [`Sim::degrade`] hurts a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Degradation {
    /// Desired count cut to 1 and the other tasks stopped.
    ScaledDown,
    /// Every task stopped; the desired count stays.
    TasksStopped,
    /// The tasks run but their targets fail health checks.
    TargetsUnhealthy,
}

pub fn version(tag: &str) -> Version {
    Version::parse(tag).expect("sim versions are valid")
}

pub fn digest(tag: &str) -> Digest {
    let mut rng = Rng::new(
        tag.bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))),
    );
    Digest(format!(
        "sha256:{:016x}{:016x}",
        rng.next_u64(),
        rng.next_u64()
    ))
}

/// A worker's settings for simulations: [`settings`] with `[worker]`.
pub fn worker_settings(strategy: StrategyKind) -> ServiceSettings {
    let web = settings(strategy, OldSlotPolicy::KeepWarm);
    ServiceSettings {
        worker: Some(crate::config::settings::WorkerSettings {
            service: "jobs".into(),
        }),
        // As a worker's service.toml must be: no slots, no traffic, nothing to probe;
        // the service-wide alarm is its signal.
        slots: Default::default(),
        traffic: Default::default(),
        validation: ValidationSettings {
            probes: Vec::new(),
            command: None,
            ..web.validation.clone()
        },
        ..web
    }
}

/// Service settings for simulations: one probe, each slot's alarm and a service-wide one, a validation command, short
/// deadlines, history of 10.
pub fn settings(strategy: StrategyKind, old_slot: OldSlotPolicy) -> ServiceSettings {
    let s = Duration::from_secs;
    let bake = s(180);
    ServiceSettings {
        image: ImageSettings {
            repository: "web".into(),
            context: ".".into(),
            dockerfile: "Dockerfile".into(),
            target: None,
            platform: None,
            build_args: Default::default(),
            cache_from_previous: true,
            builder: Default::default(),
        },
        ecs: EcsSettings {
            cluster: "sim".into(),
            container: "web".into(),
            container_port: 8080,
        },
        slots: Slots {
            blue: SlotSettings {
                service: "web-blue".into(),
                target_group_arn: "tg/blue".into(),
                alarms: vec![BLUE_ALARM.into()],
            },
            green: SlotSettings {
                service: "web-green".into(),
                target_group_arn: "tg/green".into(),
                alarms: vec![GREEN_ALARM.into()],
            },
        },
        traffic: TrafficSettings {
            production_listener_arn: Some("listener/prod".into()),
            production_rule_arn: None,
            test_listener_arn: "listener/test".into(),
            test_url: "http://test.sim:8443".into(),
        },
        strategy: match strategy {
            StrategyKind::AllAtOnce => Strategy::AllAtOnce { bake },
            StrategyKind::Canary => Strategy::Canary {
                percent: 10,
                wait: s(120),
                bake,
            },
            StrategyKind::Linear => Strategy::Linear {
                step: 25,
                interval: s(60),
                bake,
            },
        },
        validation: ValidationSettings {
            probes: vec![Probe {
                path: "/health".into(),
                expect_version: false,
                version_header: None,
                expect_status: 200,
                body_contains: Some("ok".into()),
                timeout: s(5),
                interval: s(5),
                consecutive_successes: 3,
                attempts: 12,
            }],
            service_alarms: vec![SERVICE_ALARM.into()],
            command: Some(vec!["./smoke-test".into()]),
            command_timeout: s(60),
            ..Default::default()
        },
        deadlines: Deadlines {
            stabilize: s(300),
            validate: s(180),
            lock_ttl: s(300),
        },
        history: HistorySettings { depth: 10 },
        old_slot: OldSlotSettings { policy: old_slot },
        cleanup: Default::default(),
        worker: None,
    }
}
