//! `plan`, `stage` and `deploy`: get the image (build it, reuse it, or take `--image`),
//! compile the task definition with it, then plan, stage, or stage and promote.

use super::build::{build_in, head_commit, image_job, resolve_git_sha};
use super::load::load_config;
use super::session::{Session, runtime};
use super::{Io, Target};
use crate::config::{self, Loaded};
use crate::engine::{Reach, StageRequest};
use crate::exit::ExitCode;
use crate::image::PrebuiltImage;
use crate::ports::{Digest, Images, Status, TaskSpec};
use crate::read_only::ReadOnly;
use crate::version::Version;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Plan,
    /// What a deploy would change against the live slot; reads only.
    Diff,
    Stage,
    Deploy,
}

#[derive(Debug, Clone)]
pub struct ReleaseRequest {
    pub target: Target,
    pub version: Version,
    /// A pre-built image by digest; None: build (or reuse what the registry has).
    pub image: Option<String>,
    pub git_sha: Option<String>,
    pub force_rebuild: bool,
    pub dry_run: bool,
    /// `--require-promoted-in`: environments that must have promoted the same digest first,
    /// beside environment.toml's `[versions]` rules (deploy and its plan only).
    pub require_promoted_in: Vec<String>,
}

pub fn run(verb: Verb, req: &ReleaseRequest, io: &mut Io<'_>) -> anyhow::Result<ExitCode> {
    io.outcome.version = Some(req.version.to_string());
    let prebuilt = req.image.as_deref().map(PrebuiltImage::parse).transpose()?;
    let dry = req.dry_run || matches!(verb, Verb::Plan | Verb::Diff);
    // The commit, when known, is recorded in the trail; building requires it, but only
    // after the config has been checked, so bad config is reported first.
    let known_sha = req.git_sha.clone().or_else(|| head_commit().ok());
    let settings = load_config(
        &req.target,
        Some(&req.version),
        None,
        Some(known_sha.as_deref().unwrap_or("unknown")),
    )?;
    // `[versions]` rules guard what reaches production traffic: deploy (and its plan).
    let rules = if matches!(verb, Verb::Deploy | Verb::Plan) {
        super::versions::rules(&req.target, &settings, &req.require_promoted_in)?
    } else {
        super::versions::Rules::none()
    };
    let building = prebuilt.is_none() && !dry;
    let git_sha = if building {
        resolve_git_sha(known_sha.as_deref())?
    } else {
        known_sha.unwrap_or_else(|| "unknown".into())
    };
    let job = if building {
        Some(image_job(
            &settings,
            &req.version,
            git_sha.clone(),
            req.force_rebuild,
        )?)
    } else {
        None
    };
    runtime()?.block_on(async {
        let session = Session::open(&req.target, settings, &io.reporters).await?;
        if !dry {
            let promotes = verb == Verb::Deploy && !session.loaded.environment.approval.required;
            let reach = if promotes {
                Reach::Promoted
            } else {
                Reach::Staged
            };
            let name = if verb == Verb::Deploy {
                "deploy"
            } else {
                "stage"
            };
            session.check_credentials_outlast(reach, name)?;
        }
        // Stage says which version production stays on, so it always reads it.
        let staging = verb == Verb::Stage;
        session
            .note_previous_version(&mut io.outcome, (io.full_outcome || staging) && !dry)
            .await;
        let image = image(&session, req, prebuilt, job, &mut *io.out).await?;
        io.outcome.image = Some(image.reference.clone());
        io.outcome.digest = Some(image.digest.clone());
        let (loaded, spec) = compile(
            &req.target,
            &req.version,
            &image.reference,
            &image.digest,
            &git_sha,
        )?;
        if verb == Verb::Diff {
            let observed = session.engine().observe().await?;
            super::diff::write_diff(
                &mut *io.out,
                &session.cloud,
                &observed,
                &loaded.service,
                &spec,
            )
            .await?;
            io.outcome.status = Some(super::OutcomeStatus::Planned);
            io.outcome.live_slot = observed.weights.live().map(|s| s.to_string());
            return Ok(ExitCode::Ok);
        }
        let checked = rules.verdict(&req.target, &req.version, &spec.digest).await;
        // `plan` reports what it could not read (e.g. a stage role without the other
        // history); everything else stops on it, before any write.
        let (verdict, unread) = match checked {
            Err(e) if verb == Verb::Plan => (None, Some(super::error_text(&e))),
            other => (other?, None),
        };
        if dry {
            print_plan(verb, req, &session, &loaded, spec, &image, io).await?;
            if let Some(unread) = unread {
                writeln!(io.out, "versions  not checked: {unread}")?;
            }
            if let Some(verdict) = &verdict {
                write!(io.out, "{verdict}")?;
                // A dry run fails as the deploy would; `plan` only reports.
                if verb == Verb::Deploy {
                    verdict.enforce()?;
                }
            }
            return Ok(ExitCode::Ok);
        }
        if let Some(verdict) = &verdict {
            verdict.enforce()?;
        }
        if let Some(note) = &image.note {
            tracing::info!("{note}");
        }
        // The trail of exactly what is being deployed (seed 002).
        config::write_build(&loaded)?;
        if io.full_outcome {
            io.outcome.diff = summary_diff(&session, &loaded, &spec).await;
        }
        let request = StageRequest { spec };
        if verb == Verb::Deploy && !loaded.environment.approval.required {
            deploy(&session, &request, &image.reference, io).await
        } else {
            stage(&session, &request, &req.target, io).await
        }
    })
}

/// The service's config with its image, and the task definition compiled from it.
pub(super) fn compile(
    target: &Target,
    version: &Version,
    reference: &str,
    digest: &str,
    git_sha: &str,
) -> anyhow::Result<(Loaded, TaskSpec)> {
    let loaded = load_config(target, Some(version), Some(reference), Some(git_sha))?;
    let td = loaded
        .task_definition
        .as_ref()
        .expect("an image was given, so the task definition was rendered");
    let spec = TaskSpec::new(
        version.clone(),
        Digest(digest.to_string()),
        serde_json::to_string(&td.0)?,
    );
    Ok((loaded, spec))
}

/// The image a release deploys, by digest, and a note on how it was had.
struct Image {
    reference: String,
    digest: String,
    note: Option<String>,
}

/// `--image` as given; else built and pushed (or found in the registry); a dry run builds
/// nothing and uses what the registry has for the version, or a placeholder.
async fn image(
    session: &Session,
    req: &ReleaseRequest,
    prebuilt: Option<PrebuiltImage>,
    job: Option<crate::image::ImageJob>,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<Image> {
    if let Some(p) = prebuilt {
        return Ok(Image {
            reference: p.reference,
            digest: p.digest,
            note: None,
        });
    }
    if let Some(job) = job {
        let published = build_in(session, job, out).await?;
        let note = (!published.built)
            .then(|| "image already in the registry: build and push skipped".to_string());
        return Ok(Image {
            reference: published.reference,
            digest: published.digest,
            note,
        });
    }
    let tag = req.version.image_tag();
    let (digest, note) = match session.cloud.digest_for_tag(&tag).await? {
        Some(d) => (d, None),
        None => (
            Digest(format!("sha256:{}", "0".repeat(64))),
            Some(format!(
                "image {tag} is not in the registry yet: a real run builds and pushes it first"
            )),
        ),
    };
    Ok(Image {
        reference: session.cloud.image_reference(&digest).await?,
        digest: digest.0,
        note,
    })
}

/// `plan` and `--dry-run`: the engine's plan over a cloud that refuses every write.
async fn print_plan(
    verb: Verb,
    req: &ReleaseRequest,
    session: &Session,
    loaded: &Loaded,
    spec: TaskSpec,
    image: &Image,
    io: &mut Io<'_>,
) -> anyhow::Result<ExitCode> {
    let out = &mut *io.out;
    if let Some(note) = &image.note {
        writeln!(out, "note      {note}")?;
    }
    writeln!(out, "image     {}", image.reference)?;
    if let Some(worker) = &loaded.service.worker {
        let observed = session.engine().observe().await?;
        write_worker_plan(out, &worker.service, loaded, &observed, &spec)?;
        io.outcome.status = Some(super::OutcomeStatus::Planned);
        return Ok(ExitCode::Ok);
    }
    let guard = ReadOnly::new(&session.cloud);
    let plan = session.dry_engine(&guard).plan(&spec).await?;
    write!(out, "{plan}")?;
    if verb == Verb::Plan {
        // What the deploy changes, read from what the plan already observed.
        let observed = session.engine().observe().await?;
        super::diff::write_diff(out, &session.cloud, &observed, &loaded.service, &spec).await?;
    }
    if verb == Verb::Deploy && loaded.environment.approval.required {
        writeln!(
            out,
            "approval  required in `{}`: deploy stops after validation; promote with --tag {}",
            req.target.env, req.version
        )?;
    }
    io.outcome.status = Some(super::OutcomeStatus::Planned);
    io.outcome.live_slot = plan.live.map(|s| s.to_string());
    Ok(ExitCode::Ok)
}

/// A worker's plan (issue 17.4): no slots to choose, it rolls in place with its train.
fn write_worker_plan(
    out: &mut dyn std::io::Write,
    service: &str,
    loaded: &Loaded,
    observed: &crate::engine::Observed,
    spec: &TaskSpec,
) -> anyhow::Result<()> {
    let now = &observed.blue;
    let runs = now
        .version()
        .map_or_else(|| "an unknown release".to_string(), ToString::to_string);
    let bake = crate::engine::steps(&loaded.service.strategy)?
        .last()
        .map_or(0, |s| s.hold.as_secs());
    writeln!(
        out,
        "worker    ECS service {service}: runs {runs} at {} task(s)",
        now.desired
    )?;
    writeln!(
        out,
        "roll      in place to {} (ECS rolling deployment, circuit breaker on) once every web member of the train validated, before the shift",
        spec.version
    )?;
    writeln!(
        out,
        "bake      {bake}s from the roll, then checked still rolled out"
    )?;
    writeln!(
        out,
        "rollback  in place, to the task definition it runs now"
    )?;
    Ok(())
}

/// The diff for the job summary, best effort: a summary without it beats a failed deploy.
pub(super) async fn summary_diff(
    session: &Session,
    loaded: &Loaded,
    spec: &TaskSpec,
) -> Option<String> {
    let observed = session.engine().observe().await.ok()?;
    let mut text = Vec::new();
    match super::diff::write_diff(&mut text, &session.cloud, &observed, &loaded.service, spec).await
    {
        Ok(()) => String::from_utf8(text).ok(),
        Err(e) => {
            tracing::warn!("the job summary goes without the diff: {e:#}");
            None
        }
    }
}

/// Stage and promote in one run (no approval required).
async fn deploy(
    session: &Session,
    request: &StageRequest,
    reference: &str,
    io: &mut Io<'_>,
) -> anyhow::Result<ExitCode> {
    let outcome = session.engine().deploy(request).await?;
    writeln!(
        io.out,
        "{} promoted: 100% of production on {} ({reference})",
        outcome.version, outcome.slot
    )?;
    io.outcome.live_slot = Some(outcome.slot.to_string());
    io.outcome.status = Some(Status::Promoted.into());
    if io.full_outcome {
        let observed = session.engine().observe().await.ok();
        io.outcome.task_definition_arn = observed.and_then(|o| {
            o.release_on(outcome.slot)
                .map(|r| r.task_definition.clone())
        });
    }
    Ok(ExitCode::Ok)
}

/// Stage and hold: production stays where it is until `promote`.
async fn stage(
    session: &Session,
    request: &StageRequest,
    t: &Target,
    io: &mut Io<'_>,
) -> anyhow::Result<ExitCode> {
    let outcome = session.engine().stage(request).await?;
    io.outcome.task_definition_arn = Some(outcome.release.task_definition.clone());
    io.outcome.live_slot = outcome.plan.live.map(|s| s.to_string());
    io.outcome.status = Some(outcome.release.status.into());
    let release = &outcome.release;
    if outcome.already_live {
        writeln!(
            io.out,
            "{} is already live on {}: nothing staged",
            release.version, release.slot
        )?;
        return Ok(ExitCode::Ok);
    }
    let production = match (outcome.plan.live, &io.outcome.previous_version) {
        (Some(slot), Some(v)) => format!("production stays on {v} ({slot})"),
        (Some(slot), None) => format!("production stays on {slot}"),
        (None, _) => "nothing is live yet".to_string(),
    };
    writeln!(
        io.out,
        "{} staged on {} and validated; {production}.\npromote with: cutover promote --env {} --service {} --tag {}",
        release.version, release.slot, t.env, t.service, release.version
    )?;
    Ok(ExitCode::Ok)
}
