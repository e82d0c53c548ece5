//! `[versions]` rules across environments (issues 17.5, 18.1): the one pure decision
//! (`engine::versions::judge`) over other environments' histories, its wording, `check`'s
//! reads through the `Histories` port, and the decision driven by staging runs of the real
//! engine in the simulation. Named `engine_*` so `scripts/mutants.sh` runs it against every
//! mutant of `src/engine/versions.rs`. Against moto: `tests/all/versions.rs`.

use std::collections::BTreeMap;

use cutover::engine::{EngineError, Need, Rule, Shows, Verdict, check_versions, judge, short};
use cutover::ports::{Digest, Histories, PortResult, Rehearsal, Release, Slot, Status};
use cutover::version::Version;

fn digest(c: char) -> Digest {
    Digest(format!("sha256:{}", c.to_string().repeat(64)))
}

fn release(version: &str, d: char, status: Status) -> Release {
    Release {
        version: Version::parse(version).unwrap(),
        digest: digest(d),
        task_definition: format!("td:{version}"),
        slot: Slot::Blue,
        by: "test".into(),
        at: 1,
        status,
        fingerprint: String::new(),
        promoted_at: (status == Status::Promoted).then_some(1),
        transitions: Vec::new(),
        rehearsal: None,
        train: Vec::new(),
        train_id: String::new(),
    }
}

fn rehearsed(mut r: Release) -> Release {
    r.rehearsal = Some(Rehearsal {
        to: Version::parse("v0.9.0").unwrap(),
        back_ms: 1000,
        forward_ms: 2000,
        at: 2,
    });
    r
}

fn rule(env: &str, need: Need) -> Rule {
    Rule {
        env: env.into(),
        need,
        source: "[versions] require_promoted_in".into(),
    }
}

fn verdict(need: Need, history: Vec<Release>) -> Verdict {
    let histories = BTreeMap::from([("staging".to_string(), history)]);
    judge(
        "production",
        &Version::parse("v1.4.0").unwrap(),
        &digest('a'),
        &[rule("staging", need)],
        &histories,
    )
}

fn shows(need: Need, history: Vec<Release>) -> Shows {
    verdict(need, history).findings.remove(0).shows
}

#[test]
fn the_same_digest_promoted_there_is_allowed() {
    let v = verdict(
        Need::Promoted,
        vec![release("v1.4.0", 'a', Status::Promoted)],
    );
    assert_eq!(v.refusal(), None);
    assert!(v.enforce().is_ok());
    assert!(
        v.to_string()
            .starts_with("versions  ok: staging promoted v1.4.0 (sha256:aaaaaaaaaaaa)")
    );
}

#[test]
fn what_the_history_shows_decides_each_refusal() {
    use Need::*;
    assert_eq!(shows(Promoted, vec![]), Shows::NoHistory);
    assert_eq!(
        shows(Promoted, vec![release("v1.4.0", 'b', Status::Promoted)]),
        Shows::Missing {
            same_version: Some(digest('b'))
        }
    );
    assert_eq!(
        shows(Promoted, vec![release("v1.3.0", 'b', Status::Promoted)]),
        Shows::Missing { same_version: None }
    );
    assert!(matches!(
        shows(
            Promoted,
            vec![release("v1.4.0", 'a', Status::AwaitingApproval)]
        ),
        Shows::NotPromoted {
            status: Status::AwaitingApproval,
            ..
        }
    ));
    let mut rolled = release("v1.4.0", 'a', Status::RolledBack);
    rolled.promoted_at = Some(1);
    assert!(matches!(
        shows(Promoted, vec![rolled]),
        Shows::RolledBack { .. }
    ));
    // Only a rehearsal missing.
    assert!(matches!(
        shows(Rehearsed, vec![release("v1.4.0", 'a', Status::Promoted)]),
        Shows::NotRehearsed { .. }
    ));
    assert!(matches!(
        shows(
            Rehearsed,
            vec![rehearsed(release("v1.4.0", 'a', Status::Promoted))]
        ),
        Shows::Met {
            rehearsed: true,
            ..
        }
    ));
    // A rehearsal on a release later rolled back does not count.
    let mut gone = rehearsed(release("v1.4.0", 'a', Status::RolledBack));
    gone.promoted_at = Some(1);
    assert!(matches!(
        shows(Rehearsed, vec![gone]),
        Shows::RolledBack { .. }
    ));
}

#[test]
fn the_refusal_is_one_line_with_version_digest_environment_and_remedy() {
    let v = verdict(Need::Promoted, vec![release("v1.4.0", 'a', Status::Failed)]);
    let text = v.refusal().unwrap();
    assert!(!text.contains('\n'), "{text}");
    assert!(text.starts_with("v1.4.0 (sha256:aaaaaaaaaaaa) may not ship to `production`: staging's history shows v1.4.0 (sha256:aaaaaaaaaaaa) Failed, never promoted ([versions] require_promoted_in); promote v1.4.0 in staging first"), "{text}");
    assert!(!text.contains("Release {"), "no Debug dump: {text}");
    assert!(matches!(v.enforce(), Err(EngineError::Usage(_))));
    assert!(v.to_string().starts_with("versions  REFUSED: "));
}

struct Fake(
    BTreeMap<String, Vec<Release>>,
    std::sync::atomic::AtomicUsize,
);

impl Histories for Fake {
    async fn history_in(&self, env: &str) -> PortResult<Vec<Release>> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(self.0.get(env).cloned().unwrap_or_default())
    }
}

#[test]
fn check_reads_each_environment_once() {
    let fake = Fake(
        BTreeMap::from([(
            "staging".to_string(),
            vec![release("v1.4.0", 'a', Status::Promoted)],
        )]),
        Default::default(),
    );
    let rules = [
        rule("staging", Need::Promoted),
        rule("staging", Need::Rehearsed),
    ];
    let v = crate::sim_support::block_on(check_versions(
        &fake,
        "production",
        &Version::parse("v1.4.0").unwrap(),
        &digest('a'),
        &rules,
    ))
    .unwrap();
    assert_eq!(fake.1.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert!(v.findings[0].met() && !v.findings[1].met());
    assert!(
        v.refusal()
            .unwrap()
            .contains("without a rollback rehearsal")
    );
}

/// The decision driven by the real engine in the simulation: a staging world ships NEW
/// (stage, then promote with its rollback rehearsal) under fault profiles, and production's
/// verdict on NEW's digest follows what staging's history then shows: allowed after a calm
/// run (promoted and rehearsed), refused for a release that never came up or failed its
/// probes (never promoted),
/// never a broken invariant on the way.
#[test]
fn staging_worlds_in_the_simulation_decide_the_production_verdict() {
    use cutover::config::settings::OldSlotPolicy;
    use cutover::engine::{Engine, StageRequest};
    use cutover::sim::{NEW, Profile, Rng, Sim, StrategyKind, digest, settings, version};

    let profiles = [
        Profile::Calm,
        Profile::NeverHealthy,
        Profile::BadProbe,
        Profile::Alarm,
        Profile::EcsFailure,
        Profile::FlakyApi,
    ];
    let rules = [
        Rule {
            env: "staging".into(),
            need: Need::Promoted,
            source: "[versions] require_promoted_in".into(),
        },
        Rule {
            env: "staging".into(),
            need: Need::Rehearsed,
            source: "[versions] require_rehearsal_in".into(),
        },
    ];
    let mut allowed = 0;
    for (seed, profile) in (0..36u64).zip(profiles.iter().cycle()) {
        let faults = profile.faults(&mut Rng::new(seed));
        let sim = crate::sim_support::block_on(async {
            let mut s = settings(StrategyKind::Canary, OldSlotPolicy::KeepWarm);
            s.validation.rehearse_rollback = Some(true);
            let sim = Sim::new(seed, faults, s);
            let ci = sim.runner("ci", None);
            let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
            let request = StageRequest {
                spec: sim.spec(NEW),
            };
            if engine.stage(&request).await.is_ok() {
                let _ = engine.promote(&version(NEW)).await;
            }
            sim
        });
        assert!(
            sim.violations().is_empty(),
            "seed {seed} {profile}: {:?}",
            sim.violations()
        );
        let history = sim.history();
        let entry = history.iter().rev().find(|r| r.digest == digest(NEW));
        let promoted = entry.is_some_and(|r| r.status == cutover::ports::Status::Promoted);
        let rehearsed = promoted && entry.is_some_and(|r| r.rehearsal.is_some());
        let verdict = judge(
            "production",
            &version(NEW),
            &digest(NEW),
            &rules,
            &BTreeMap::from([("staging".to_string(), history.clone())]),
        );
        let why = format!("seed {seed} {profile}: {verdict}{history:?}");
        assert_eq!(verdict.findings[0].met(), promoted, "{why}");
        assert_eq!(verdict.findings[1].met(), rehearsed, "{why}");
        if *profile == Profile::Calm {
            assert!(verdict.refusal().is_none(), "{why}");
        }
        // (An alarm may fire after the run: the alarm profile can end promoted here.)
        if profile.bad_release() && *profile != Profile::Alarm {
            let refusal = verdict.refusal().expect(&why);
            assert!(refusal.contains("promote v"), "{refusal}");
        }
        allowed += usize::from(verdict.refusal().is_none());
    }
    assert!(
        allowed >= 6,
        "only {allowed} of 36 staging runs allowed production"
    );
}

#[test]
fn each_finding_reads_as_one_clause_naming_what_the_history_shows() {
    assert_eq!(short(&digest('a')), "sha256:aaaaaaaaaaaa");
    assert_eq!(short(&Digest("sha256:abc".into())), "sha256:abc");
    assert_eq!(short(&Digest("0123456789abcdef".into())), "0123456789ab");
    let text = |need: Need, history: Vec<Release>| {
        let v = verdict(need, history);
        (v.refusal(), v.to_string())
    };
    let (refusal, lines) = text(Need::Promoted, vec![]);
    assert!(
        refusal.unwrap().contains(": staging has no history for this service (nothing deployed there yet) ([versions] require_promoted_in); promote v1.4.0 in staging first (the very same image: `--image <repository>@sha256:aaaa"),
        "{lines}"
    );
    assert_eq!(
        lines,
        "versions  REFUSED: staging has no history for this service (nothing deployed there yet) ([versions] require_promoted_in)\n"
    );
    let (refusal, _) = text(
        Need::Promoted,
        vec![release("v1.4.0", 'b', Status::Promoted)],
    );
    assert!(
        refusal.unwrap().contains("staging's history shows v1.4.0 with another image (sha256:bbbbbbbbbbbb), never sha256:aaaaaaaaaaaa"),
    );
    let (refusal, _) = text(
        Need::Promoted,
        vec![release("v1.3.0", 'b', Status::Promoted)],
    );
    assert!(
        refusal
            .unwrap()
            .contains("staging's history does not have v1.4.0 (sha256:aaaaaaaaaaaa)")
    );
    let mut rolled = release("v1.4.0", 'a', Status::RolledBack);
    rolled.promoted_at = Some(1);
    let (refusal, _) = text(Need::Promoted, vec![rolled]);
    assert!(
        refusal
            .unwrap()
            .contains("staging promoted v1.4.0 (sha256:aaaaaaaaaaaa) and then rolled it back")
    );
    // The same image promoted under another name there still counts, and says so.
    let (refusal, lines) = text(
        Need::Rehearsed,
        vec![rehearsed(release("v1.4.0-rc.1", 'a', Status::Promoted))],
    );
    assert_eq!(refusal, None);
    assert_eq!(
        lines,
        "versions  ok: staging promoted v1.4.0 (sha256:aaaaaaaaaaaa) as v1.4.0-rc.1, its rollback rehearsal passed ([versions] require_promoted_in)\n"
    );
    // Two environments unmet: both named, each once in the remedy.
    let histories = BTreeMap::from([
        ("staging".to_string(), vec![]),
        (
            "qa".to_string(),
            vec![release("v1.4.0", 'a', Status::Promoted)],
        ),
    ]);
    let v = judge(
        "production",
        &Version::parse("v1.4.0").unwrap(),
        &digest('a'),
        &[
            rule("staging", Need::Promoted),
            rule("staging", Need::Rehearsed),
            rule("qa", Need::Promoted),
            rule("qa", Need::Rehearsed),
        ],
        &histories,
    );
    let refusal = v.refusal().unwrap();
    assert!(
        refusal.contains("; promote v1.4.0 in staging and qa first"),
        "{refusal}"
    );
    assert_eq!(v.findings.iter().filter(|f| f.met()).count(), 1);
    assert!(matches!(
        v.findings[2].shows,
        Shows::Met {
            rehearsed: false,
            ..
        }
    ));
}

#[test]
fn a_history_that_cannot_be_read_is_an_error_naming_the_environment() {
    struct Broken;
    impl Histories for Broken {
        async fn history_in(&self, _env: &str) -> PortResult<Vec<Release>> {
            Err(cutover::ports::PortError::AccessDenied(
                "ssm:GetParameter".into(),
            ))
        }
    }
    let err = crate::sim_support::block_on(check_versions(
        &Broken,
        "production",
        &Version::parse("v1.4.0").unwrap(),
        &digest('a'),
        &[rule("staging", Need::Promoted)],
    ))
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("reading staging's history for [versions]: access denied"),
        "{err}"
    );
    // No rule: nothing to read, nothing refused.
    let v: Verdict = crate::sim_support::block_on(check_versions(
        &Broken,
        "production",
        &Version::parse("v1.4.0").unwrap(),
        &digest('a'),
        &[],
    ))
    .unwrap();
    assert!(v.findings.is_empty() && v.refusal().is_none() && v.enforce().is_ok());
    assert!(matches!(
        verdict(Need::Promoted, vec![]).enforce(),
        Err(EngineError::Usage(_))
    ));
}

/// `[versions]` judges the staged digest before the promote takes its lock; a stage of the
/// same version with another image in between must not be promoted on the first image's
/// verdict: the promote, pinned to the judged digest, refuses before any write.
#[test]
fn a_promote_refuses_a_release_staged_again_after_the_versions_check() {
    use cutover::engine::{Engine, StageRequest};
    use cutover::sim::{NEW, version};
    crate::sim_support::block_on(async {
        let sim = crate::sim_support::all_at_once(cutover::sim::Faults::default());
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        let request = StageRequest {
            spec: sim.spec(NEW),
        };
        engine.stage(&request).await.expect("stage");
        let before = (sim.weights(), sim.history());
        let judged = Digest("sha256:000000000000111111111111".into());
        let err = Engine::new(&ci, &ci, &sim.settings, "ci")
            .with_pinned_digest(Some(judged))
            .promote(&version(NEW))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("staged again in between") && text.contains("not sha256:000000000000"),
            "{text}"
        );
        assert_eq!((sim.weights(), sim.history()), before, "nothing written");
    });
}
