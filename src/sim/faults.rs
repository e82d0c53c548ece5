//! Seeded fault profiles: what can go wrong in one simulated run.

use std::fmt;
use std::time::Duration;

use super::rng::Rng;
use crate::ports::Status;

/// What goes wrong in a run. Probabilities are per call; release faults hit only the
/// release being deployed, never the one already live.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// The call is refused with a throttling error (not applied).
    pub throttle: f64,
    /// A 5xx before the call applied.
    pub transient: f64,
    /// A write that applies but reports an error.
    pub ambiguous: f64,
    /// A read that returns what was true a few seconds ago.
    pub stale: f64,
    /// The new release's targets never pass health checks.
    pub never_healthy: bool,
    /// The new release fails its HTTP probes.
    pub bad_probe: bool,
    /// The new release's targets flap between healthy and unhealthy.
    pub flapping: bool,
    /// The new release fails from this time (from the start) whenever it takes production
    /// traffic: its slot's alarm fires.
    pub alarm_at: Option<Duration>,
    /// An incident: the release live at the start fails from this time whenever it takes
    /// production traffic (at zero, its slot's alarm is in ALARM from the first call).
    pub incident_at: Option<Duration>,
    /// The slot idle at the start has its alarm in ALARM until then, left over from the
    /// release it ran before.
    pub idle_alarm_until: Option<Duration>,
    /// The service-wide alarm fires with any failing release's (its SLO burns too).
    pub service_alarm: bool,
    /// The service-wide alarm is in ALARM over this window whatever runs (a dependency down).
    pub outage: Option<(Duration, Duration)>,
    /// The first runner is killed at its n-th call (then an operator re-runs).
    pub kill_at_call: Option<u32>,
    /// A second runner races the first with the same commands.
    pub race: bool,
    /// Calls whose name starts with one of these are refused with AccessDenied.
    pub deny: Vec<&'static str>,
    /// How long the test listener's traffic keeps reaching the slot it forwarded to before
    /// a repoint (the ALB applies listener changes within seconds, not at once).
    pub test_listener_lag: Duration,
    /// The green service registers its tasks in blue's target group.
    pub miswired: bool,
    /// One-shot AWS errors by code: the first call whose name starts with `op` at or after
    /// `from` (since the start) fails with `code`, classed as the adapter classes it.
    pub aws_errors: Vec<AwsErrorAt>,
    /// How ECS itself fails the new release's rollout, if it does.
    pub ecs_failure: Option<EcsFailure>,
    /// Correlated outages: one AWS service fails every call over a stretch of time.
    pub outages: Vec<Outage>,
    /// A call hangs (no answer) for [`HANG`] unless its caller gives up first; a hung write
    /// may apply at once, land later (within a call timeout), or never.
    pub hang: f64,
    /// kill -9 in a phase: the first runner to report it dies at its first call `after` later.
    pub kill_in: Option<KillAt>,
    /// kill -9 with a write in flight: the first runner to send a write whose name starts
    /// with this dies sending it, and the write lands later (within a call timeout).
    pub kill_in_flight: Option<&'static str>,
}

/// How long a hung call hangs: far past any call timeout, so an unbounded call shows (I8).
pub const HANG: Duration = Duration::from_secs(900);

/// An AWS service, as the sim routes its calls (an outage takes one down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    Ecs,
    Elb,
    Ssm,
    CloudWatch,
    Ecr,
}

impl Service {
    pub const ALL: [Service; 5] = [
        Service::Ecs,
        Service::Elb,
        Service::Ssm,
        Service::CloudWatch,
        Service::Ecr,
    ];

    /// The service a simulated call goes to, by its op name (`update_slot(…)` → ECS).
    pub fn of(op: &str) -> Service {
        let name = op.split('(').next().unwrap_or(op);
        match name {
            "read_slot"
            | "slot_services"
            | "register_task_definition"
            | "update_slot"
            | "list_task_definitions"
            | "describe_task_definition"
            | "deregister_task_definition" => Service::Ecs,
            "history" | "history_and_lock" | "record" | "create_lock" | "read_lock"
            | "renew_lock" | "delete_lock" => Service::Ssm,
            "alarm_states" => Service::CloudWatch,
            "digest_for_tag" | "image_exists" | "describe_images" | "batch_delete_image" => {
                Service::Ecr
            }
            _ => Service::Elb,
        }
    }
}

/// One service refusing every call from `from` to `to` (since the start): with 503s, or
/// throttling everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    pub service: Service,
    pub from: Duration,
    pub to: Duration,
    pub throttling: bool,
}

/// A kill -9 in a phase: the first runner that reports `phase` is killed at its first call
/// at least `after` later (a call in flight then dies with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KillAt {
    pub phase: Status,
    pub after: Duration,
}

impl KillAt {
    /// Every phase a run of a strategy with these step percents goes through, in order:
    /// staging, validating, holding for approval, each shift step, the bake, a rollback.
    pub fn phases(step_percents: &[u8]) -> Vec<Status> {
        let mut all = vec![
            Status::Staging,
            Status::Validating,
            Status::AwaitingApproval,
        ];
        all.extend(step_percents.iter().map(|p| Status::Shifting(*p)));
        all.extend([Status::Baking, Status::RollingBack]);
        all
    }

    /// How long a phase can last in the sim's settings: a kill is drawn within it.
    pub fn span(phase: Status) -> Duration {
        Duration::from_secs(match phase {
            Status::Staging => 90,
            Status::Validating => 30,
            Status::AwaitingApproval => 5,
            Status::Shifting(100) => 10,
            Status::Shifting(_) => 120,
            Status::Baking => 180,
            _ => 60,
        })
    }
}

/// The [`AwsErrorAt::code`] of a call that gets no answer: it hangs as in
/// [`Faults::hang`], for that call only.
pub const NO_ANSWER: &str = "(no answer)";

/// One AWS error code answered at or after a time (see [`Faults::aws_errors`]), or
/// [`NO_ANSWER`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsErrorAt {
    pub op: &'static str,
    pub from: Duration,
    pub code: &'static str,
    /// Answered to every later call, not once (e.g. `ExpiredToken` with `op` empty: the
    /// session's credentials expired).
    pub lasting: bool,
}

/// Ways ECS fails a rollout of the new release, each reported a little after the update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcsFailure {
    /// Tasks run but never pass health checks; the deployment circuit breaker then marks
    /// the rollout FAILED (minutes later).
    CircuitBreaker,
    /// Tasks stop before running: the image cannot be pulled.
    CannotPull,
    /// Tasks stop at once: the essential container exits.
    EssentialExit,
    /// No task can be placed (no capacity, a constraint nothing meets).
    Unplaceable,
}

impl EcsFailure {
    pub const ALL: [EcsFailure; 4] = [
        EcsFailure::CircuitBreaker,
        EcsFailure::CannotPull,
        EcsFailure::EssentialExit,
        EcsFailure::Unplaceable,
    ];
}

/// Named fault profiles the property test sweeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Calm,
    FlakyApi,
    NeverHealthy,
    BadProbe,
    Flapping,
    Alarm,
    /// The live release is failing when the run starts: the new one is its hotfix.
    Incident,
    /// An incident, and the idle slot's alarm still in ALARM from its previous release.
    IncidentBothSlots,
    /// A service-wide alarm fires for a while, whichever release runs.
    ServiceAlarm,
    Crash,
    Race,
    Chaos,
    /// ECS fails the new release's rollout (circuit breaker, image pull, exiting container,
    /// unplaceable tasks).
    EcsFailure,
    /// One AWS service down or throttling for 30–120 s, every call to it failing.
    Outage,
    /// Calls that hang until the engine's timeout; hung writes landing late.
    Hanging,
    /// kill -9 in a phase drawn from the seed, then a recovery run.
    KillInPhase,
}

impl Profile {
    pub const ALL: [Profile; 16] = [
        Profile::Calm,
        Profile::FlakyApi,
        Profile::NeverHealthy,
        Profile::BadProbe,
        Profile::Flapping,
        Profile::Alarm,
        Profile::Incident,
        Profile::IncidentBothSlots,
        Profile::ServiceAlarm,
        Profile::Crash,
        Profile::Race,
        Profile::Chaos,
        Profile::EcsFailure,
        Profile::Outage,
        Profile::Hanging,
        Profile::KillInPhase,
    ];

    pub fn parse(s: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.to_string() == s)
    }

    /// Whether the release itself is bad: the run must end on the old release.
    pub fn bad_release(self) -> bool {
        matches!(
            self,
            Profile::NeverHealthy | Profile::BadProbe | Profile::Alarm | Profile::EcsFailure
        )
    }

    /// The concrete faults for this profile, drawn from the seed.
    pub fn faults(self, rng: &mut Rng) -> Faults {
        let flaky = Faults {
            throttle: 0.05,
            transient: 0.03,
            ambiguous: 0.03,
            stale: 0.10,
            test_listener_lag: Duration::from_secs(3),
            ..Faults::default()
        };
        match self {
            Profile::Calm => Faults::default(),
            Profile::FlakyApi => flaky,
            Profile::NeverHealthy => Faults {
                never_healthy: true,
                ..Faults::default()
            },
            Profile::BadProbe => Faults {
                bad_probe: true,
                ..Faults::default()
            },
            Profile::Flapping => Faults {
                flapping: true,
                ..flaky
            },
            Profile::Alarm => Faults {
                alarm_at: Some(Duration::from_millis(rng.range(0, 900_000))),
                service_alarm: rng.chance(0.5),
                ..Faults::default()
            },
            Profile::Incident => Faults {
                incident_at: Some(Duration::ZERO),
                service_alarm: rng.chance(0.5),
                ..Faults::default()
            },
            Profile::IncidentBothSlots => Faults {
                incident_at: Some(Duration::ZERO),
                idle_alarm_until: Some(Duration::from_millis(rng.range(0, 600_000))),
                service_alarm: rng.chance(0.5),
                ..Faults::default()
            },
            Profile::ServiceAlarm => {
                let from = rng.range(0, 600_000);
                let to = from + rng.range(30_000, 300_000);
                Faults {
                    outage: Some((Duration::from_millis(from), Duration::from_millis(to))),
                    ..Faults::default()
                }
            }
            Profile::Crash => Faults {
                kill_at_call: Some(rng.range(1, 160) as u32),
                ..Faults::default()
            },
            Profile::Race => Faults {
                race: true,
                ..Faults::default()
            },
            Profile::Chaos => Faults {
                kill_at_call: rng.chance(0.5).then(|| rng.range(1, 200) as u32),
                race: rng.chance(0.3),
                alarm_at: rng
                    .chance(0.3)
                    .then(|| Duration::from_millis(rng.range(0, 900_000))),
                incident_at: rng
                    .chance(0.2)
                    .then(|| Duration::from_millis(rng.range(0, 600_000))),
                service_alarm: rng.chance(0.3),
                ..flaky
            },
            Profile::EcsFailure => Faults {
                ecs_failure: Some(EcsFailure::ALL[rng.range(0, 4) as usize]),
                ..Faults::default()
            },
            Profile::Outage => {
                let from = rng.range(0, 700_000);
                let to = from + rng.range(30_000, 120_000);
                Faults {
                    outages: vec![Outage {
                        service: Service::ALL[rng.range(0, 5) as usize],
                        from: Duration::from_millis(from),
                        to: Duration::from_millis(to),
                        throttling: rng.chance(0.5),
                    }],
                    ..Faults::default()
                }
            }
            Profile::Hanging => Faults {
                hang: 0.02,
                ..Faults::default()
            },
            Profile::KillInPhase => {
                // Any strategy's steps; the scenario fits the step to its strategy.
                let phases = KillAt::phases(&[10, 25, 50, 75, 100]);
                let phase = phases[rng.range(0, phases.len() as u64) as usize];
                let span = KillAt::span(phase).as_millis() as u64;
                Faults {
                    kill_in: Some(KillAt {
                        phase,
                        after: Duration::from_millis(rng.range(0, span)),
                    }),
                    ..Faults::default()
                }
            }
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Calm => "calm",
            Profile::FlakyApi => "flaky-api",
            Profile::NeverHealthy => "never-healthy",
            Profile::BadProbe => "bad-probe",
            Profile::Flapping => "flapping",
            Profile::Alarm => "alarm",
            Profile::Incident => "incident",
            Profile::IncidentBothSlots => "incident-both-slots",
            Profile::ServiceAlarm => "service-alarm",
            Profile::Crash => "crash",
            Profile::Race => "race",
            Profile::Chaos => "chaos",
            Profile::EcsFailure => "ecs-failure",
            Profile::Outage => "outage",
            Profile::Hanging => "hanging",
            Profile::KillInPhase => "kill-in-phase",
        })
    }
}
