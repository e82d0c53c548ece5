//! Release trains in the simulation: one simulated world per member (its own lock, history,
//! slots and faults) on one virtual clock. A seed picks the train's size (2–20), each
//! member's strategy, which member fails and how, and the operator's moves. The train
//! invariant: members never end on different releases unless the train says RollbackFailed
//! and names them; each world keeps checking its own invariants on every call.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use super::{
    NEW, OLD, Profile, Rng, Sim, SimCloud, StrategyKind, settings, version, worker_settings,
};
use crate::config::settings::OldSlotPolicy;
use crate::engine::{Engine, Member, StageRequest, Train, TrainOutcome};
use crate::ports::Status;

/// What can go wrong in one member: any single-service fault that a release or the API
/// brings (a killed runner and a racing one are single-service scenarios).
const MEMBER_FAULTS: [Profile; 7] = [
    Profile::NeverHealthy,
    Profile::BadProbe,
    Profile::Flapping,
    Profile::Alarm,
    Profile::EcsFailure,
    Profile::ServiceAlarm,
    Profile::Incident,
];

/// Each train command must end within its deadlines; this is far beyond them.
const BUDGET: Duration = Duration::from_secs(4 * 3600);

#[derive(Debug, Clone, PartialEq)]
pub struct TrainScenario {
    pub seed: u64,
    /// Each member's fault profile (Calm or FlakyApi for most).
    pub profiles: Vec<Profile>,
    pub strategies: Vec<StrategyKind>,
    /// Which members are workers (no load balancer: rolled in place).
    pub workers: Vec<bool>,
    /// Stage and promote in one command (deploy), or as two.
    pub deploy: bool,
    /// Roll the whole train back once it is promoted.
    pub rollback: bool,
    /// At least this share of every member's calls is throttled (AWS's bad day).
    pub throttle: f64,
}

impl TrainScenario {
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x7A11);
        let size = rng.range(2, 21) as usize;
        let flaky = rng.chance(0.4);
        let mut profiles = vec![
            if flaky {
                Profile::FlakyApi
            } else {
                Profile::Calm
            };
            size
        ];
        // Most trains have a failing member; some have two.
        for _ in 0..rng.range(0, 3) {
            let who = rng.range(0, size as u64) as usize;
            profiles[who] = MEMBER_FAULTS[rng.range(0, MEMBER_FAULTS.len() as u64) as usize];
        }
        let strategies = (0..size)
            .map(|_| StrategyKind::ALL[rng.range(0, StrategyKind::ALL.len() as u64) as usize])
            .collect();
        // A quarter of the members are workers; what can go wrong in one is ECS's or what
        // its alarms see (it has no probes and no traffic to shift).
        let workers: Vec<bool> = (0..size).map(|_| rng.chance(0.25)).collect();
        for (profile, _) in profiles.iter_mut().zip(&workers).filter(|(_, w)| **w) {
            if matches!(
                profile,
                Profile::NeverHealthy | Profile::BadProbe | Profile::Flapping
            ) {
                *profile = Profile::EcsFailure;
            }
        }
        TrainScenario {
            seed,
            profiles,
            strategies,
            workers,
            deploy: rng.chance(0.5),
            rollback: rng.chance(0.3),
            throttle: 0.0,
        }
    }

    /// A calm train of `size` members, all with `strategy`: the benchmark's.
    pub fn calm(size: usize, strategy: StrategyKind) -> Self {
        TrainScenario {
            seed: 1,
            profiles: vec![Profile::Calm; size],
            strategies: vec![strategy; size],
            workers: vec![false; size],
            deploy: true,
            rollback: false,
            throttle: 0.0,
        }
    }
}

impl fmt::Display for TrainScenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let faulty: Vec<String> = self
            .profiles
            .iter()
            .enumerate()
            .filter(|(_, p)| !matches!(p, Profile::Calm | Profile::FlakyApi))
            .map(|(i, p)| format!("{} {p}", member_name(i)))
            .collect();
        let workers: Vec<String> = (0..self.workers.len())
            .filter(|i| self.workers[*i])
            .map(member_name)
            .collect();
        write!(
            f,
            "train seed {} ({} members, workers: [{}], faults: [{}], {})",
            self.seed,
            self.profiles.len(),
            workers.join(", "),
            faulty.join(", "),
            if self.deploy {
                "deploy"
            } else {
                "stage+promote"
            }
        )
    }
}

#[derive(Debug, Clone)]
pub struct TrainReport {
    pub scenario: TrainScenario,
    pub violations: Vec<String>,
    /// What each train command ended with: its status and each member's.
    pub outcomes: Vec<String>,
    /// AWS calls made by every member together.
    pub calls: u64,
    /// Virtual milliseconds from the first call to the end.
    pub elapsed_ms: u64,
    /// The last lines of every member's event log, for a failing seed.
    pub log: Vec<String>,
    /// Per port call, the most made by all members together in one virtual second (how
    /// close a train comes to AWS's per-API rate limits).
    pub peak_per_second: BTreeMap<String, u32>,
}

pub fn member_name(i: usize) -> String {
    format!("svc{i:02}")
}

/// Run one train scenario; call it on a current-thread runtime with a paused clock.
pub async fn run_train(scenario: TrainScenario) -> TrainReport {
    let start = tokio::time::Instant::now();
    let sims: Vec<Sim> = scenario
        .profiles
        .iter()
        .zip(&scenario.strategies)
        .zip(&scenario.workers)
        .enumerate()
        .map(|(i, ((profile, strategy), worker))| {
            let seed = scenario.seed.wrapping_mul(1000) + i as u64;
            let mut rng = Rng::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
            let mut faults = profile.faults(&mut rng);
            faults.throttle = faults.throttle.max(scenario.throttle);
            let policy = if rng.chance(0.5) {
                OldSlotPolicy::KeepWarm
            } else {
                OldSlotPolicy::ScaleToZero
            };
            let settings = if *worker {
                worker_settings(*strategy)
            } else {
                settings(*strategy, policy)
            };
            Sim::new(seed, faults, settings)
        })
        .collect();
    let mut outcomes = Vec::new();
    let mut violations = Vec::new();
    let alice: Vec<SimCloud> = sims.iter().map(|s| s.runner("alice", None)).collect();
    let train = train_of(&sims, &alice, "alice");
    let requests: Vec<(String, StageRequest)> = sims
        .iter()
        .enumerate()
        .map(|(i, s)| (member_name(i), StageRequest { spec: s.spec(NEW) }))
        .collect();
    let mut last = if scenario.deploy {
        let deployed = budget(train.deploy(&requests), &mut violations).await;
        outcomes.push(describe("deploy", &deployed));
        deployed
    } else {
        let staged = budget(train.stage(&requests), &mut violations).await;
        outcomes.push(describe("stage", &staged));
        check_stage(&sims, &staged, &mut violations);
        if staged.status == Status::AwaitingApproval {
            let versions: Vec<_> = (0..sims.len())
                .map(|i| (member_name(i), version(NEW)))
                .collect();
            let promoted = budget(train.promote(&versions), &mut violations).await;
            outcomes.push(describe("promote", &promoted));
            promoted
        } else {
            staged
        }
    };
    check_train(&sims, &last, &mut violations);
    check_workers_rolled_last(&sims, &mut violations);
    check_run_recorded(&sims, train.id(), &last, &mut violations);
    if scenario.rollback && last.status == Status::Promoted {
        let ops: Vec<SimCloud> = sims.iter().map(|s| s.runner("ops", None)).collect();
        let back = train_of(&sims, &ops, "ops");
        // Half the seeds name the release (`rollback --to v1.0.0`, every member to its
        // own entry of that tag), half take each member's previous good release.
        let to = scenario.seed.is_multiple_of(2).then(|| version(OLD));
        last = budget(back.rollback_to(to.as_ref()), &mut violations).await;
        outcomes.push(describe("rollback", &last));
        check_train(&sims, &last, &mut violations);
    }
    let expect = match last.status {
        Status::Promoted => Some(version(NEW)),
        Status::RollbackFailed => None,
        _ => Some(version(OLD)),
    };
    let mut calls = 0;
    let mut log = Vec::new();
    let mut per_second = BTreeMap::<(String, u64), u32>::new();
    for (i, sim) in sims.iter().enumerate() {
        let expect = expect.as_ref().filter(|_| {
            // An alarm that fires after the bake is the on-call's business, as for one
            // service; a flapping or ECS-failed member may not be healthy at the end.
            !last.stranded().contains(&member_name(i).as_str())
        });
        sim.check_end_state(expect);
        for v in sim.violations() {
            violations.push(format!("{}: {v}", member_name(i)));
        }
        calls += sim
            .metrics()
            .calls
            .iter()
            .map(|c| u64::from(*c))
            .sum::<u64>();
        let l = sim.log();
        for line in &l {
            // "{ms} {runner} {op} -> {result}"
            let mut words = line.split_whitespace();
            if let (Some(ms), Some(_), Some(op), Some("->")) =
                (words.next(), words.next(), words.next(), words.next())
                && let Ok(ms) = ms.parse::<u64>()
            {
                *per_second.entry((op.to_string(), ms / 1000)).or_default() += 1;
            }
        }
        log.extend(
            l[l.len().saturating_sub(8)..]
                .iter()
                .map(|line| format!("{} {line}", member_name(i))),
        );
    }
    TrainReport {
        scenario,
        violations,
        outcomes,
        calls,
        elapsed_ms: start.elapsed().as_millis() as u64,
        log,
        peak_per_second: per_second
            .into_iter()
            .fold(BTreeMap::new(), |mut peak, ((op, _), n)| {
                let p = peak.entry(op).or_default();
                *p = n.max(*p);
                peak
            }),
    }
}

fn train_of<'a>(sims: &'a [Sim], clouds: &'a [SimCloud], owner: &str) -> Train<'a, SimCloud> {
    let members = sims
        .iter()
        .zip(clouds)
        .enumerate()
        .map(|(i, (sim, cloud))| Member {
            service: member_name(i),
            engine: Engine::new(cloud, cloud, &sim.settings, owner),
        })
        .collect();
    Train::new(members).expect("member names are distinct")
}

async fn budget(
    work: impl Future<Output = TrainOutcome>,
    violations: &mut Vec<String>,
) -> TrainOutcome {
    match tokio::time::timeout(BUDGET, work).await {
        Ok(o) => o,
        Err(_) => {
            violations.push("I8: a train command ran past every deadline".into());
            TrainOutcome {
                status: Status::RollbackFailed,
                members: Vec::new(),
                error: None,
                id: None,
            }
        }
    }
}

fn describe(what: &str, o: &TrainOutcome) -> String {
    let members: Vec<String> = o
        .members
        .iter()
        .map(|m| format!("{} {}", m.service, m.status))
        .collect();
    format!(
        "{what}: {} [{}]{}",
        o.status,
        members.join(", "),
        o.error.as_ref().map_or(String::new(), |e| format!(": {e}"))
    )
}

/// The version production runs in each member, as the simulated worlds hold it.
fn live_versions(sims: &[Sim]) -> Vec<Option<crate::version::Version>> {
    sims.iter()
        .map(|s| s.weights().live().and_then(|slot| s.version_on(slot)))
        .collect()
}

/// The train invariant and the honesty of its status.
fn check_train(sims: &[Sim], o: &TrainOutcome, violations: &mut Vec<String>) {
    let live = live_versions(sims);
    let stranded = o.stranded();
    let named = |i: usize| stranded.contains(&member_name(i).as_str());
    // Promoted: all on NEW; anything else (failed, rolled back, a train rollback): OLD.
    let want = version(if o.status == Status::Promoted {
        NEW
    } else {
        OLD
    });
    for (i, v) in live.iter().enumerate() {
        if v.as_ref() != Some(&want) && !named(i) {
            violations.push(format!(
                "train: {} ended {} but {} runs {v:?} (expected {want}) and is not named stranded",
                member_name(i),
                o.status,
                member_name(i)
            ));
        }
    }
    if o.status != Status::RollbackFailed && !stranded.is_empty() {
        violations.push(format!(
            "train: members {stranded:?} are RollbackFailed but the train says {}",
            o.status
        ));
    }
    for m in &o.members {
        let i = sims
            .iter()
            .enumerate()
            .position(|(i, _)| member_name(i) == m.service);
        let Some(i) = i else { continue };
        let is_new = live[i].as_ref() == Some(&version(NEW));
        if m.status == Status::Promoted && !is_new {
            violations.push(format!(
                "train: {} says Promoted but runs {:?} (I9)",
                m.service, live[i]
            ));
        }
    }
}

/// Workers roll only once every web member validated the release (issue 17.4): a worker
/// is production the moment it rolls, so nothing unvalidated may go first.
fn check_workers_rolled_last(sims: &[Sim], violations: &mut Vec<String>) {
    let metrics: Vec<_> = sims.iter().map(Sim::metrics).collect();
    let web: Vec<Option<u64>> = sims
        .iter()
        .zip(&metrics)
        .filter(|(s, _)| s.settings.worker.is_none())
        .map(|(_, m)| m.new_validated_at)
        .collect();
    for (i, m) in metrics.iter().enumerate() {
        let Some(rolled) = m.new_rolled_at else {
            continue;
        };
        if let Some(first) = web.iter().find(|v| v.is_none_or(|at| at > rolled)) {
            violations.push(format!(
                "train: worker {} rolled at {rolled} ms before every web member validated (one validated at {})",
                member_name(i),
                first.map_or("never".into(), |at| format!("{at} ms"))
            ));
        }
    }
}

/// The train run is recorded (issue 17.3): every member's entry of the release names the
/// run that staged it, whatever path wrote it last (a rollback's, a repair's), and the
/// outcome names that run.
fn check_run_recorded(sims: &[Sim], id: &str, o: &TrainOutcome, violations: &mut Vec<String>) {
    for (i, sim) in sims.iter().enumerate() {
        let history = sim.history();
        if let Some(e) = history.iter().find(|r| r.version == version(NEW))
            && e.train_id != id
        {
            violations.push(format!(
                "train: {}'s entry of {NEW} ({}) records train run {:?}, not this run {id}",
                member_name(i),
                e.status,
                e.train_id
            ));
        }
    }
    if let Some(named) = o.id.as_deref().filter(|named| *named != id) {
        violations.push(format!(
            "train: the outcome names run {named}, not this run {id}"
        ));
    }
}

/// A stage never moves production: every member still runs OLD.
fn check_stage(sims: &[Sim], o: &TrainOutcome, violations: &mut Vec<String>) {
    for (i, v) in live_versions(sims).iter().enumerate() {
        if v.as_ref() != Some(&version(OLD)) {
            violations.push(format!(
                "train stage ({}): {} runs {v:?} in production",
                o.status,
                member_name(i)
            ));
        }
    }
}

/// The benchmark's figures for `size` services deployed in one run, all calm: virtual
/// wall time (ms) and AWS calls. One service goes through today's single-service
/// `deploy`, so the ratios compare a train with what it replaces.
pub async fn bench(size: usize, strategy: StrategyKind) -> (u64, u64, BTreeMap<String, u32>) {
    if size > 1 {
        let r = run_train(TrainScenario::calm(size, strategy)).await;
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        return (r.elapsed_ms, r.calls, r.peak_per_second);
    }
    let start = tokio::time::Instant::now();
    let mut rng = Rng::new(1u64.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let _ = Profile::Calm.faults(&mut rng);
    let policy = if rng.chance(0.5) {
        OldSlotPolicy::KeepWarm
    } else {
        OldSlotPolicy::ScaleToZero
    };
    let sim = Sim::new(1000, Default::default(), settings(strategy, policy));
    let cloud = sim.runner("alice", None);
    let eng = Engine::new(&cloud, &cloud, &sim.settings, "alice");
    let r = eng
        .deploy(&StageRequest {
            spec: sim.spec(NEW),
        })
        .await;
    assert!(r.is_ok(), "{r:?}");
    let calls = sim.metrics().calls.iter().map(|c| u64::from(*c)).sum();
    (start.elapsed().as_millis() as u64, calls, BTreeMap::new())
}
