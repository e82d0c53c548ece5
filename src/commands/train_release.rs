//! `build`, `stage` and `deploy` of several services as one release (`--service api,web`,
//! the action's `services: api,web`). Every member's config is checked before any AWS call;
//! images build concurrently (bounded), except that members building the same context one
//! after another, so the later ones reuse the daemon's layers and a shared repository gets
//! its tag once; `[versions]` is judged for every member before any lock; then the engine's
//! `Train` stages them together (and, for `deploy`, promotes them together).

use futures_util::StreamExt as _;

use super::build::{build_in, head_commit, image_job, resolve_git_sha};
use super::deploy::{ReleaseRequest, Verb};
use super::load::load_config;
use super::session::{Session, runtime};
use super::train::{MemberOutcomes, each_planned, end, named, sessions, train_of};
use super::versions::Rules;
use super::{BuildRequest, Io, MemberEnd, Outcome, OutcomeStatus, Target};
use crate::engine::{Reach, StageRequest};
use crate::exit::{Coded, ExitCode};
use crate::image::{ImageJob, Published};
use crate::ports::TaskSpec;

/// Images built at once: each build is a docker daemon's CPU and a push's bandwidth, and a
/// runner has two to four cores.
const BUILDS_AT_ONCE: usize = 3;

/// How one build ended: its member's index and name, the result, the lines it printed.
type Built = (usize, String, anyhow::Result<Published>, Vec<u8>);

/// One member's build: its job, and the session that publishes it.
struct Build<'s> {
    service: &'s str,
    session: &'s Session,
    job: ImageJob,
}

fn builds(sessions: &[(String, Session)], jobs: Vec<ImageJob>) -> Vec<Build<'_>> {
    sessions
        .iter()
        .zip(jobs)
        .map(|((service, session), job)| Build {
            service,
            session,
            job,
        })
        .collect()
}

/// Publish every member's image: groups sharing a build input run one member after another,
/// groups run concurrently. Results in the members' order; the first error is the train's
/// (a failed build is before any deploy, so stopping there loses nothing).
async fn publish_all(
    builds: Vec<Build<'_>>,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<Vec<Published>> {
    let mut groups: Vec<Vec<(usize, Build<'_>)>> = Vec::new();
    for (i, b) in builds.into_iter().enumerate() {
        match groups.iter_mut().find(|g| same_input(&g[0].1.job, &b.job)) {
            Some(g) => g.push((i, b)),
            None => groups.push(vec![(i, b)]),
        }
    }
    let ran: Vec<Vec<Built>> =
        futures_util::stream::iter(groups.into_iter().map(|group| async move {
            let mut ends = Vec::new();
            for (i, b) in group {
                // Each build's lines (the registry masks under GitHub Actions) are its own,
                // written out once it ends, never interleaved with another's.
                let mut lines = Vec::new();
                let r = build_in(b.session, b.job, &mut lines).await;
                ends.push((i, b.service.to_string(), r, lines));
            }
            ends
        }))
        .buffer_unordered(BUILDS_AT_ONCE)
        .collect()
        .await;
    let mut ends: Vec<_> = ran.into_iter().flatten().collect();
    ends.sort_by_key(|(i, ..)| *i);
    let mut published = Vec::new();
    for (_, service, r, lines) in ends {
        out.write_all(&lines)?;
        published.push(r.map_err(|e| e.context(format!("building {service}")))?);
    }
    Ok(published)
}

/// Two jobs that make the same image from the same inputs (the repository aside).
fn same_input(a: &ImageJob, b: &ImageJob) -> bool {
    let (x, y) = (&a.spec, &b.spec);
    x.context_dir == y.context_dir
        && x.dockerfile == y.dockerfile
        && x.build_args == y.build_args
        && x.target == y.target
        && x.platform == y.platform
}

/// `--image` is one service's image: a train builds (or reuses) each member's own.
fn refuse_one_image(image: Option<&str>) -> anyhow::Result<()> {
    match image {
        Some(_) => Err(Coded::new(
            ExitCode::Usage,
            "--image names one service's image: leave it out for several services (each member's image is built, or reused from its registry)",
        )
        .into()),
        None => Ok(()),
    }
}

/// `build --service api,web`: every member's image, concurrently; one reference per line.
pub fn build(
    req: &BuildRequest,
    services: Vec<String>,
    io: &mut Io<'_>,
) -> anyhow::Result<ExitCode> {
    io.outcome.version = Some(req.version.to_string());
    let git_sha = resolve_git_sha(req.git_sha.as_deref())?;
    let mut jobs = Vec::new();
    for t in targets(&req.target, &services) {
        let loaded = load_config(&t, Some(&req.version), None, Some(&git_sha))?;
        jobs.push(image_job(
            &loaded,
            &req.version,
            git_sha.clone(),
            req.force_rebuild,
        )?);
    }
    let published = runtime()?.block_on(async {
        let sessions = sessions(&req.target, &services, Some(&req.version), io).await?;
        let builds = builds(&sessions, jobs);
        publish_all(builds, &mut *io.out).await
    })?;
    let mut all_reused = true;
    for (service, p) in services.iter().zip(&published) {
        writeln!(io.out, "{service} {}", p.reference)?;
        all_reused &= !p.built;
        io.members.push(MemberEnd {
            service: service.clone(),
            outcome: built_outcome(&req.version, p),
            detail: p.reference.clone(),
            seconds: None,
        });
    }
    io.outcome.status = Some(if all_reused {
        OutcomeStatus::AlreadyBuilt
    } else {
        OutcomeStatus::Built
    });
    Ok(ExitCode::Ok)
}

fn built_outcome(version: &crate::version::Version, p: &Published) -> Outcome {
    Outcome {
        version: Some(version.to_string()),
        image: Some(p.reference.clone()),
        digest: Some(p.digest.clone()),
        status: Some(if p.built {
            OutcomeStatus::Built
        } else {
            OutcomeStatus::AlreadyBuilt
        }),
        ..Outcome::default()
    }
}

fn targets(base: &Target, services: &[String]) -> Vec<Target> {
    services
        .iter()
        .map(|service| Target {
            service: service.clone(),
            ..base.clone()
        })
        .collect()
}

/// `stage`/`deploy --service api,web`: one release of every member, staged together and
/// (deploy, no approval required) promoted together.
pub fn release(
    verb: Verb,
    req: &ReleaseRequest,
    services: Vec<String>,
    io: &mut Io<'_>,
) -> anyhow::Result<ExitCode> {
    if req.dry_run || matches!(verb, Verb::Plan | Verb::Diff) {
        return each_planned(&req.target, &services, io, |target, io| {
            super::deploy::run(
                verb,
                &ReleaseRequest {
                    target,
                    ..req.clone()
                },
                io,
            )
        });
    }
    refuse_one_image(req.image.as_deref())?;
    io.outcome.version = Some(req.version.to_string());
    let known_sha = req.git_sha.clone().or_else(|| head_commit().ok());
    // Every member's config and build settings first: a bad file anywhere stops the train
    // before any AWS call.
    let mut checked: Vec<(Target, Rules)> = Vec::new();
    let mut jobs = Vec::new();
    let sha_for_config = known_sha.as_deref().unwrap_or("unknown");
    for t in targets(&req.target, &services) {
        let loaded = load_config(&t, Some(&req.version), None, Some(sha_for_config))?;
        let rules = if verb == Verb::Deploy {
            super::versions::rules(&t, &loaded, &req.require_promoted_in)?
        } else {
            Rules::none()
        };
        jobs.push(loaded);
        checked.push((t, rules));
    }
    let git_sha = resolve_git_sha(known_sha.as_deref())?;
    let jobs = jobs
        .iter()
        .map(|loaded| image_job(loaded, &req.version, git_sha.clone(), req.force_rebuild))
        .collect::<anyhow::Result<Vec<_>>>()?;
    runtime()?.block_on(async {
        let sessions = sessions(&req.target, &services, Some(&req.version), io).await?;
        let promotes = verb == Verb::Deploy
            && !sessions
                .iter()
                .any(|(_, s)| s.loaded.environment.approval.required);
        let (reach, name) = if promotes {
            (Reach::Promoted, "deploy")
        } else {
            (Reach::Staged, verb_name(verb))
        };
        let mut outcomes = Vec::new();
        for (_, s) in &sessions {
            s.check_credentials_outlast(reach, name)?;
            let mut o = Outcome::default();
            s.note_previous_version(&mut o, true).await;
            outcomes.push(o);
        }
        let builds = builds(&sessions, jobs);
        let published = publish_all(builds, &mut *io.out).await?;
        let mut requests = Vec::new();
        for ((((service, session), (t, rules)), image), o) in sessions
            .iter()
            .zip(&checked)
            .zip(&published)
            .zip(&mut outcomes)
        {
            let spec = compile(t, req, &git_sha, image)?;
            if let Some(verdict) = rules.verdict(t, &req.version, &spec.digest).await? {
                verdict.enforce()?;
            }
            o.image = Some(image.reference.clone());
            o.digest = Some(image.digest.clone());
            if io.full_outcome {
                o.diff = super::deploy::summary_diff(session, &session.loaded, &spec).await;
            }
            requests.push((service.clone(), StageRequest { spec }));
        }
        let named = named(&sessions);
        let train = train_of(&sessions, &named, Vec::new())?;
        let outcome = if promotes {
            train.deploy(&requests).await
        } else {
            train.stage(&requests).await
        };
        let prepared = MemberOutcomes(services.iter().cloned().zip(outcomes).collect());
        end(outcome, io, prepared)
    })
}

fn verb_name(verb: Verb) -> &'static str {
    match verb {
        Verb::Deploy => "deploy",
        _ => "stage",
    }
}

/// The member's task definition compiled with its image, its trail written (seed 002).
fn compile(
    target: &Target,
    req: &ReleaseRequest,
    git_sha: &str,
    image: &Published,
) -> anyhow::Result<TaskSpec> {
    let (loaded, spec) = super::deploy::compile(
        target,
        &req.version,
        &image.reference,
        &image.digest,
        git_sha,
    )?;
    crate::config::write_build(&loaded)?;
    Ok(spec)
}
