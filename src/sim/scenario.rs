//! Scenarios for the property test: a seed picks a strategy, a fault profile and the
//! operator's moves (stage, promote, a wrong promote, a crash and re-run, a race, a
//! rollback); the run ends with end-state checks. Same seed, same event log.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use super::{NEW, OLD, Profile, Rng, Sim, SimCloud, StrategyKind, settings, version};
use crate::config::settings::{OldSlotPolicy, ServiceSettings};
use crate::engine::{Engine, EngineError, StageRequest};
use crate::version::Version;

/// Each command must end within its deadlines; this is far beyond them (invariant 8).
const COMMAND_BUDGET: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    pub seed: u64,
    pub strategy: StrategyKind,
    pub profile: Profile,
}

impl Scenario {
    /// Every seed maps to one strategy × profile, cycling through all combinations.
    pub fn from_seed(seed: u64) -> Self {
        let n = StrategyKind::ALL.len() as u64;
        Self {
            seed,
            strategy: StrategyKind::ALL[(seed % n) as usize],
            profile: Profile::ALL[((seed / n) % Profile::ALL.len() as u64) as usize],
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} ({:?}, {})",
            self.seed, self.strategy, self.profile
        )
    }
}

#[derive(Debug, Clone)]
pub struct RunReport {
    pub scenario: Scenario,
    pub log: Vec<String>,
    pub violations: Vec<String>,
    /// What each command ended with, in order.
    pub outcomes: Vec<String>,
    pub metrics: super::Metrics,
}

impl RunReport {
    pub fn replay_command(&self) -> String {
        let s = self.scenario;
        let plain = Scenario::from_seed(s.seed) == s;
        let pinned = if plain {
            String::new()
        } else {
            format!(
                " CUTOVER_SIM_PROFILE={} CUTOVER_SIM_STRATEGY={:?}",
                s.profile, s.strategy
            )
        };
        format!(
            "CUTOVER_SIM_SEED={}{pinned} cargo nextest run --test all sim_replay --no-capture",
            s.seed
        )
    }
}

impl Scenario {
    /// The scenario a replay command names: the seed, and a profile and strategy when given.
    pub fn from_env() -> Option<Scenario> {
        let seed = std::env::var("CUTOVER_SIM_SEED").ok()?.parse().ok()?;
        let mut s = Scenario::from_seed(seed);
        if let Some(p) = std::env::var("CUTOVER_SIM_PROFILE")
            .ok()
            .and_then(|p| Profile::parse(&p))
        {
            s.profile = p;
        }
        if let Ok(name) = std::env::var("CUTOVER_SIM_STRATEGY") {
            s.strategy = StrategyKind::ALL
                .into_iter()
                .find(|k| format!("{k:?}") == name)
                .unwrap_or(s.strategy);
        }
        Some(s)
    }
}

/// The seeds to sweep: `CUTOVER_SIM_SEEDS` (a count) or `default`.
pub fn seeds_from_env(default: u64) -> u64 {
    std::env::var("CUTOVER_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// How a command ended, or that its runner was killed.
enum Ended<T> {
    Done(Result<T, EngineError>),
    Killed,
}

async fn until_killed<T>(
    cloud: &SimCloud,
    work: impl Future<Output = Result<T, EngineError>>,
) -> Ended<T> {
    tokio::select! {
        r = work => Ended::Done(r),
        () = cloud.killed() => Ended::Killed,
    }
}

struct Driver {
    sim: Sim,
    // Shared by racing pipelines polled in the same task: never borrowed across an await.
    rng: RefCell<Rng>,
    outcomes: RefCell<Vec<String>>,
}

/// Run one scenario. Call it on a current-thread runtime whose clock is paused
/// (`start_paused(true)`, tokio's `test-util`): the sim's time is tokio's time.
pub async fn run(scenario: Scenario) -> RunReport {
    drive(scenario, |_| {}, None).await
}

/// [`run`] with the profile's faults adjusted first: e.g. a kill pinned to one phase.
pub async fn run_with(scenario: Scenario, adjust: impl FnOnce(&mut super::Faults)) -> RunReport {
    drive(scenario, adjust, None).await
}

/// Run one scenario with fixed service settings (`cutover simulate`: the user's own)
/// instead of the ones the seed draws; the faults and the operator's moves still come from
/// the seed.
pub async fn run_as(scenario: Scenario, fixed: &ServiceSettings) -> RunReport {
    drive(scenario, |_| {}, Some(fixed)).await
}

async fn drive(
    scenario: Scenario,
    adjust: impl FnOnce(&mut super::Faults),
    fixed: Option<&ServiceSettings>,
) -> RunReport {
    let mut rng = Rng::new(scenario.seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut faults = scenario.profile.faults(&mut rng);
    adjust(&mut faults);
    let policy = if rng.chance(0.5) {
        OldSlotPolicy::KeepWarm
    } else {
        OldSlotPolicy::ScaleToZero
    };
    let mut settings = settings(scenario.strategy, policy);
    if let Some(k) = &mut faults.kill_in {
        k.phase = fit_phase(k.phase, &settings.strategy);
    }
    // Either way, a service-wide alarm of an incident must not block its hotfix.
    settings.validation.gate_on_service_alarms = rng.chance(0.5);
    if let Some(fixed) = fixed {
        settings = fixed.clone();
    }
    let sim = Sim::new(scenario.seed, faults.clone(), settings);
    let d = Driver {
        sim,
        rng: RefCell::new(rng),
        outcomes: RefCell::new(Vec::new()),
    };
    let alice = d.sim.runner("alice", faults.kill_at_call);
    let mut killed = if faults.race {
        let bob = d.sim.runner("bob", None);
        let (a, b) = tokio::join!(d.pipeline(&alice), d.pipeline(&bob));
        a || b
    } else {
        d.pipeline(&alice).await
    };
    if killed && d.chance(0.4) {
        d.rollback_workflow().await;
        killed = false;
    } else if killed {
        // The operator notices the dead run: waits out its lock, or unlocks explicitly.
        if d.chance(0.5) {
            tokio::time::sleep(d.sim.settings.deadlines.lock_ttl.0 + Duration::from_secs(1)).await;
        } else {
            let ops = d.sim.runner("ops", None);
            let unlock = Engine::new(&ops, &ops, &d.sim.settings, "ops")
                .unlock()
                .await;
            d.note("unlock", unlock.map(|l| l.map(|l| l.owner)));
        }
        let carol = d.sim.runner("carol", None);
        // The operator re-runs the whole pipeline, or only the approval job's promote
        // (which resumes an interrupted shift).
        killed = if d.chance(0.5) {
            d.pipeline(&carol).await
        } else {
            d.promote(&carol).await
        };
        d.sim.check_recovered(None);
    }
    // A run that ended with production split (an outage outlasting its retries, a failed
    // rollback): the team runs the rollback workflow.
    if !killed && (d.sim.weights().live().is_none() || d.outcomes_say("RollbackFailed")) {
        d.rollback_workflow().await;
    } else if !killed && !d.live_is_last_good() {
        // A promote that ended on an error with its release at 100% but not recorded good
        // (SSM down when it came to record the bake's end): the team re-runs the approval
        // job a little later, which resumes and records it.
        tokio::time::sleep(Duration::from_secs(120)).await;
        let carol = d.sim.runner("carol", None);
        killed = d.promote(&carol).await;
    }
    // A run that could not release its lock (SSM down) leaves it to expire; the team
    // re-runs the failed workflow, which takes the expired lock over and finishes.
    if !killed && d.sim.lock_holder().is_some() {
        d.outcomes
            .borrow_mut()
            .push("lock left behind: re-run after its expiry".into());
        tokio::time::sleep(d.sim.settings.deadlines.lock_ttl.0 + Duration::from_secs(3)).await;
        let carol = d.sim.runner("carol", None);
        killed = d.pipeline(&carol).await;
    }
    let mut expect = match scenario.profile {
        // A hotfix during an incident is a good release: the live slot's alarm is no reason
        // to refuse it (invariant 11).
        Profile::Calm | Profile::FlakyApi | Profile::Race | Profile::Incident => Some(version(NEW)),
        p if p.bad_release() && !matches!(p, Profile::Alarm) => Some(version(OLD)),
        _ => None,
    };
    let live = d.sim.weights().live();
    let promoted = live.and_then(|s| d.sim.version_on(s)) == Some(version(NEW));
    // A release whose alarm fires after its bake: the on-call sees it and rolls back.
    let on_call = (scenario.profile == Profile::Alarm)
        .then_some(faults.alarm_at)
        .flatten();
    // A kill planned for a rollback needs one to happen.
    let kill_in_rollback = faults
        .kill_in
        .is_some_and(|k| k.phase == crate::ports::Status::RollingBack);
    if !killed && promoted && (on_call.is_some() || kill_in_rollback || d.chance(0.4)) {
        if let Some(at) = on_call {
            let noticed = d.sim.start + at + Duration::from_secs(30);
            tokio::time::sleep_until(noticed).await;
        }
        let dave = d.sim.runner("dave", None);
        let eng = Engine::new(&dave, &dave, &d.sim.settings, "dave");
        // Half the time by name (`--to`): a redeploy of OLD's digest, validated and baked.
        let old = version(OLD);
        let to = d.chance(0.5).then_some(&old);
        let leaves = d.sim.weights().live();
        let r = match until_killed(&dave, d.budget(eng.rollback(to))).await {
            Ended::Done(r) => r,
            Ended::Killed => {
                d.rollback_workflow().await;
                d.sim.check_end_state(None);
                return d.report(scenario);
            }
        };
        let what = if to.is_some() {
            "rollback --to"
        } else {
            "rollback"
        };
        if let (Err(e), Some(leaves)) = (&r, leaves) {
            d.sim.check_blame(what, leaves.other(), &e.to_string());
        }
        // A rollback that ended on an AWS error with production whole but its bookkeeping
        // unwritten (SSM down when it came to record, or to release its lock): the on-call
        // re-runs the same command a little later, which must finish the job.
        let r = if matches!(&r, Err(e) if !matches!(e, EngineError::RollbackFailed { .. }))
            && d.sim.weights().live().is_some()
            && (!d.live_is_last_good() || d.sim.lock_holder().is_some())
        {
            d.note(what, r.map(|o| o.path));
            tokio::time::sleep(d.sim.settings.deadlines.lock_ttl.0 + Duration::from_secs(3)).await;
            let erin = d.sim.runner("erin", None);
            let eng = Engine::new(&erin, &erin, &d.sim.settings, "erin");
            Box::pin(d.budget(eng.rollback(to))).await
        } else {
            r
        };
        // A failed rollback (production split, or its read-back lost in an outage): the team
        // runs the rollback workflow, as after any RollbackFailed.
        let failed = matches!(r, Err(EngineError::RollbackFailed { .. }));
        if failed || d.sim.weights().live().is_none() {
            d.note(what, r.as_ref().map(|o| o.path).map_err(Clone::clone));
            Box::pin(d.rollback_workflow()).await;
            d.sim.check_end_state(None);
            return d.report(scenario);
        }
        // Nothing stands in the way of these rollbacks: they must succeed.
        if on_call.is_some()
            || matches!(
                scenario.profile,
                Profile::Calm | Profile::FlakyApi | Profile::Race
            )
        {
            expect = Some(version(OLD));
        }
        let done = r.is_ok();
        if done {
            expect = Some(version(OLD));
        }
        d.note(what, r.map(|o| o.path));
        // It rolled back but could not release its lock (SSM down), which then expires on
        // its own: the next run after the expiry takes it over (here a `rollback --to` of
        // what is live, which changes nothing and releases it).
        if done && d.sim.lock_holder().is_some() {
            tokio::time::sleep(d.sim.settings.deadlines.lock_ttl.0 + Duration::from_secs(3)).await;
            let next = d.sim.runner("frank", None);
            let eng = Engine::new(&next, &next, &d.sim.settings, "frank");
            let again = Box::pin(d.budget(eng.rollback(Some(&old)))).await;
            d.note("next run after the lock's expiry", again.map(|o| o.path));
        }
    }
    // Which version should end live is what this driver knows of its own settings; with
    // a user's (`cutover simulate`) the outcome is the finding, not a check.
    let expect = expect.filter(|_| fixed.is_none());
    d.sim.check_end_state(expect.as_ref());
    d.report(scenario)
}

/// A kill planned in a shift step the strategy does not have moves to one it has.
fn fit_phase(
    phase: crate::ports::Status,
    strategy: &crate::config::settings::Strategy,
) -> crate::ports::Status {
    use crate::ports::Status;
    let steps: Vec<u8> = crate::engine::steps(strategy)
        .unwrap_or_default()
        .iter()
        .map(|s| s.percent)
        .collect();
    match phase {
        Status::Shifting(p) if !steps.contains(&p) && !steps.is_empty() => {
            Status::Shifting(steps[usize::from(p) % steps.len()])
        }
        other => other,
    }
}

impl Driver {
    fn report(self, scenario: Scenario) -> RunReport {
        RunReport {
            scenario,
            log: self.sim.log(),
            violations: self.sim.violations(),
            outcomes: self.outcomes.into_inner(),
            metrics: self.sim.metrics(),
        }
    }

    /// The rollback workflow re-run until it succeeds, then the recovery invariant with its
    /// time bound (from a kill, when there was one).
    async fn rollback_workflow(&self) {
        let ops = self.sim.runner("recovery", None);
        let (done, errors) = super::recovery::rollback_workflow(&self.sim, &ops).await;
        self.outcomes.borrow_mut().push(format!(
            "rollback workflow: {:?} after {} refusals/failures",
            done.map(|d| d.path),
            errors.len()
        ));
        self.sim
            .check_recovered(Some(super::recovery::bound(&self.sim)));
    }

    /// Whether any outcome so far mentions `needle`.
    fn outcomes_say(&self, needle: &str) -> bool {
        self.outcomes.borrow().iter().any(|o| o.contains(needle))
    }

    /// Production is 100% on one slot whose release the history names as the last good one.
    fn live_is_last_good(&self) -> bool {
        let live = self
            .sim
            .weights()
            .live()
            .and_then(|s| self.sim.version_on(s));
        let good = self
            .sim
            .history()
            .iter()
            .rev()
            .find(|r| r.status == crate::ports::Status::Promoted)
            .map(|r| r.version.clone());
        live.is_some() && live == good
    }

    fn chance(&self, p: f64) -> bool {
        self.rng.borrow_mut().chance(p)
    }

    fn note<T: fmt::Debug>(&self, what: &str, r: Result<T, EngineError>) {
        if let Err(e) = &r {
            self.sim.check_output(&e.to_string());
        }
        self.outcomes.borrow_mut().push(format!("{what}: {r:?}"));
    }

    async fn budget<T>(
        &self,
        work: impl Future<Output = Result<T, EngineError>>,
    ) -> Result<T, EngineError> {
        match tokio::time::timeout(COMMAND_BUDGET, work).await {
            Ok(r) => r,
            Err(_) => {
                self.sim
                    .violation("I8: a command ran past every deadline".into());
                Err(EngineError::Usage("budget exceeded".into()))
            }
        }
    }

    /// Stage then promote NEW, as a tag push followed by an approval would. Sometimes an
    /// approval for the wrong version comes first (invariant 7). Returns whether killed.
    async fn pipeline(&self, cloud: &SimCloud) -> bool {
        let name = cloud.name();
        let settings = self.sim.settings.clone();
        let eng = Engine::new(cloud, cloud, &settings, name);
        let request = StageRequest {
            spec: self.sim.spec(NEW),
        };
        let staged = match until_killed(cloud, self.budget(eng.stage(&request))).await {
            Ended::Killed => return true,
            Ended::Done(r) => r.map(|o| o.already_live),
        };
        let ok = staged.is_ok();
        self.note("stage", staged);
        if !ok {
            return false;
        }
        if self.chance(0.3) {
            let before = self.sim.weights();
            let wrong: Version = version("v1.2.0");
            match until_killed(cloud, self.budget(eng.promote(&wrong))).await {
                Ended::Killed => return true,
                // Refused, or failed on the way (an outage): either way not promoted.
                Ended::Done(r @ Err(_)) => {
                    self.note("wrong promote", r);
                }
                Ended::Done(other) => self
                    .sim
                    .violation(format!("I7: promote of an unstaged version gave {other:?}")),
            }
            if self.sim.weights() != before {
                self.sim
                    .violation("I7: a refused promote moved traffic".into());
            }
        }
        self.promote(cloud).await
    }

    /// Promote NEW. Returns whether killed.
    async fn promote(&self, cloud: &SimCloud) -> bool {
        let settings = self.sim.settings.clone();
        let eng = Engine::new(cloud, cloud, &settings, cloud.name());
        match until_killed(cloud, self.budget(eng.promote(&version(NEW)))).await {
            Ended::Killed => true,
            Ended::Done(r) => {
                self.note("promote", r.map(|o| o.already));
                false
            }
        }
    }
}
