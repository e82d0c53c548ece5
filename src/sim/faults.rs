//! Seeded fault profiles: what can go wrong in one simulated run.

use std::fmt;
use std::time::Duration;

use super::rng::Rng;

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
    /// The named alarms fire at this time (from the start) while the new release takes traffic.
    pub alarm_at: Option<Duration>,
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
    Crash,
    Race,
    Chaos,
}

impl Profile {
    pub const ALL: [Profile; 9] = [
        Profile::Calm,
        Profile::FlakyApi,
        Profile::NeverHealthy,
        Profile::BadProbe,
        Profile::Flapping,
        Profile::Alarm,
        Profile::Crash,
        Profile::Race,
        Profile::Chaos,
    ];

    pub fn parse(s: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.to_string() == s)
    }

    /// Whether the release itself is bad: the run must end on the old release.
    pub fn bad_release(self) -> bool {
        matches!(
            self,
            Profile::NeverHealthy | Profile::BadProbe | Profile::Alarm
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
                ..Faults::default()
            },
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
                ..flaky
            },
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
            Profile::Crash => "crash",
            Profile::Race => "race",
            Profile::Chaos => "chaos",
        })
    }
}
