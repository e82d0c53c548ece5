//! `build`, `stage` and `deploy` of several services as one release (`--service api,web`,
//! the action's `services: api,web`). Every member's config is checked before any AWS call;
//! images build concurrently (bounded), except that of members building the same context the
//! first builds alone, so the others reuse its layers (and a shared repository gets its tag
//! once); `[versions]` is judged for every member before any lock; then the engine's
//! `Train` stages them together (and, for `deploy`, promotes them together).

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

/// Publish every member's image (see [`grouped`]). Results in the members' order; the
/// first error is the train's (a failed build is before any deploy, so stopping there
/// loses nothing).
async fn publish_all(
    builds: Vec<Build<'_>>,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<Vec<Published>> {
    let same = |a: &Build<'_>, b: &Build<'_>| same_input(&a.job, &b.job);
    let ends = grouped(builds, same, BUILDS_AT_ONCE, |b| async move {
        // Each build's lines (the registry masks under GitHub Actions) are its own, written
        // out once it ends, never interleaved with another's.
        let mut lines = Vec::new();
        let r = build_in(b.session, b.job, &mut lines).await;
        (b.service, r, lines)
    })
    .await;
    let mut published = Vec::new();
    for (service, r, lines) in ends {
        out.write_all(&lines)?;
        published.push(r.map_err(|e| e.context(format!("building {service}")))?);
    }
    Ok(published)
}

/// Runs `run` on every item, at most `at_once` at a time: items `same` groups together
/// (members with one build input) run their first alone, then the rest of the group at
/// once — the rest find the first's layers in the daemon's cache, or its version already
/// pushed (a check, not a build), where started together they would all build the same
/// layers. Groups run concurrently. Results in the items' order.
async fn grouped<T, R, F: Future<Output = R>>(
    items: Vec<T>,
    same: impl Fn(&T, &T) -> bool,
    at_once: usize,
    run: impl Fn(T) -> F,
) -> Vec<R> {
    let mut groups: Vec<Vec<(usize, T)>> = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        match groups.iter_mut().find(|g| same(&g[0].1, &item)) {
            Some(g) => g.push((i, item)),
            None => groups.push(vec![(i, item)]),
        }
    }
    let slots = tokio::sync::Semaphore::new(at_once);
    let one = |(i, item): (usize, T)| {
        let (slots, run) = (&slots, &run);
        async move {
            let _slot = slots
                .acquire()
                .await
                .expect("the semaphore is never closed");
            (i, run(item).await)
        }
    };
    let ran = futures_util::future::join_all(groups.into_iter().map(|group| {
        let mut group = group.into_iter();
        let first = group.next().map(one);
        let rest: Vec<_> = group.map(one).collect();
        async move {
            let mut ends = Vec::new();
            if let Some(first) = first {
                ends.push(first.await);
            }
            ends.extend(futures_util::future::join_all(rest).await);
            ends
        }
    }))
    .await;
    let mut ends: Vec<_> = ran.into_iter().flatten().collect();
    ends.sort_by_key(|(i, _)| *i);
    ends.into_iter().map(|(_, r)| r).collect()
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use tokio::time::Instant;

    use super::grouped;

    /// Each item's result, when it started and ended (ms of virtual time, sorted by item),
    /// and the most that ran at once (spans are half-open: one ending as another starts at
    /// the same millisecond do not overlap).
    async fn schedule(
        items: &[&'static str],
        at_once: usize,
    ) -> (Vec<String>, Vec<(&'static str, u64, u64)>, usize) {
        let t0 = Instant::now();
        let spans = Mutex::new(Vec::new());
        let out = grouped(
            items.to_vec(),
            |a, b| a[..1] == b[..1],
            at_once,
            |item| {
                let spans = &spans;
                async move {
                    let start = t0.elapsed().as_millis() as u64;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    let end = t0.elapsed().as_millis() as u64;
                    spans.lock().unwrap().push((item, start, end));
                    item.to_uppercase()
                }
            },
        )
        .await;
        let mut spans = spans.into_inner().unwrap();
        spans.sort();
        let most = spans
            .iter()
            .map(|&(_, at, _)| spans.iter().filter(|s| s.1 <= at && at < s.2).count())
            .max()
            .unwrap_or(0);
        (out, spans, most)
    }

    /// a1, a2 and a3 share a build input, b1 and c1 have their own: a2 and a3 start only once
    /// a1 has ended (before, with the group run one after another, a3 also waited for a2),
    /// b1 and c1 beside a1; results in the items' order.
    #[tokio::test(start_paused = true)]
    async fn a_shared_input_builds_its_first_alone_then_the_rest_at_once() {
        let (out, spans, most) = schedule(&["a1", "b1", "a2", "c1", "a3"], 5).await;
        assert_eq!(out, ["A1", "B1", "A2", "C1", "A3"]);
        assert_eq!(
            spans,
            [
                ("a1", 0, 10),
                ("a2", 10, 20),
                ("a3", 10, 20),
                ("b1", 0, 10),
                ("c1", 0, 10)
            ]
        );
        assert_eq!(most, 3);
    }

    /// The bound holds across groups and within one: never more than `at_once` running.
    #[tokio::test(start_paused = true)]
    async fn never_more_builds_at_once_than_the_bound() {
        let (out, spans, most) = schedule(&["a1", "a2", "a3", "a4", "b1", "c1"], 2).await;
        assert_eq!(out.len(), 6);
        assert_eq!(most, 2);
        let end = spans.iter().map(|s| s.2).max().unwrap();
        // Six builds of 10 ms, two at a time, a1 before the other a's: 30 ms, no idle slot.
        assert_eq!(end, 30, "{spans:?}");
    }
}
