//! `plan`, `stage` and `deploy`: get the image (build it, reuse it, or take `--image`),
//! compile the task definition with it, then plan, stage, or stage and promote.

use super::build::{build_in, head_commit, image_job, resolve_git_sha};
use super::session::{ReadOnly, Session, load_config, runtime};
use super::{Io, Target};
use crate::build::PrebuiltImage;
use crate::config;
use crate::engine::StageRequest;
use crate::exit::ExitCode;
use crate::ports::{Digest, Images, Status, TaskSpec};
use crate::version::Version;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Plan,
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
}

pub fn run(verb: Verb, req: &ReleaseRequest, io: &mut Io<'_>) -> anyhow::Result<ExitCode> {
    io.outcome.version = Some(req.version.to_string());
    let prebuilt = req.image.as_deref().map(PrebuiltImage::parse).transpose()?;
    let dry = req.dry_run || verb == Verb::Plan;
    // The commit, when known, is recorded in the trail; building requires it, but only
    // after the config has been checked, so bad config is reported first.
    let known_sha = req.git_sha.clone().or_else(|| head_commit().ok());
    let settings = load_config(
        &req.target,
        Some(&req.version),
        None,
        Some(known_sha.as_deref().unwrap_or("unknown")),
    )?;
    let git_sha = match (&prebuilt, dry) {
        (None, false) => Some(resolve_git_sha(known_sha.as_deref())?),
        _ => Some(known_sha.unwrap_or_else(|| "unknown".into())),
    };
    let job = match (&prebuilt, dry) {
        (None, false) => Some(image_job(
            &settings,
            &req.version,
            git_sha.clone().unwrap_or_default(),
            req.force_rebuild,
        )?),
        _ => None,
    };
    runtime()?.block_on(async {
        let session = Session::open(&req.target, settings, &io.reporters).await?;
        // Stage says which version production stays on, so it always reads it.
        let staging = verb == Verb::Stage;
        session.note_previous_version(&mut io.outcome, (io.full_outcome || staging) && !dry).await;
        let out = &mut *io.out;
        let (reference, digest, note) = match (prebuilt, job) {
            (Some(p), _) => (p.reference, p.digest, None),
            (None, Some(job)) => {
                let published = build_in(&session, job, out).await?;
                let note = (!published.built).then(|| "image already in the registry: build and push skipped".to_string());
                (published.reference, published.digest, note)
            }
            (None, None) => {
                // A dry run builds nothing: use what the registry has for this version.
                let tag = req.version.image_tag();
                match session.cloud.digest_for_tag(&tag).await? {
                    Some(d) => (session.cloud.image_reference(&d).await?, d.0, None),
                    None => {
                        let d = Digest(format!("sha256:{}", "0".repeat(64)));
                        (session.cloud.image_reference(&d).await?, d.0, Some(format!("image {tag} is not in the registry yet: a real run builds and pushes it first")))
                    }
                }
            }
        };
        io.outcome.image = Some(reference.clone());
        io.outcome.digest = Some(digest.clone());
        let loaded = load_config(&req.target, Some(&req.version), Some(&reference), git_sha.as_deref())?;
        let td = loaded.task_definition.as_ref().expect("an image was given, so the task definition was rendered");
        let spec = TaskSpec::new(req.version.clone(), Digest(digest), serde_json::to_string(&td.0)?);

        if dry {
            let guard = ReadOnly::new(&session.cloud);
            let plan = session.dry_engine(&guard).plan(&spec).await?;
            if let Some(note) = note {
                writeln!(out, "note      {note}")?;
            }
            writeln!(out, "image     {reference}")?;
            write!(out, "{plan}")?;
            if verb == Verb::Deploy && loaded.environment.approval.required {
                writeln!(out, "approval  required in `{}`: deploy stops after validation; promote with --tag {}", req.target.env, req.version)?;
            }
            io.outcome.status = Some("Planned".into());
            io.outcome.live_slot = plan.live.map(|s| s.to_string());
            return Ok(ExitCode::Ok);
        }
        if let Some(note) = note {
            tracing::info!("{note}");
        }
        // The trail of exactly what is being deployed (seed 002).
        config::write_build(&loaded)?;
        let request = StageRequest { spec };
        let engine = session.engine();
        let t = &req.target;
        if verb == Verb::Deploy && !loaded.environment.approval.required {
            let outcome = engine.deploy(&request).await?;
            writeln!(out, "{} promoted: 100% of production on {} ({})", outcome.version, outcome.slot, reference)?;
            io.outcome.live_slot = Some(outcome.slot.to_string());
            io.outcome.status = Some(Status::Promoted.to_string());
            if io.full_outcome {
                let observed = session.engine().observe().await.ok();
                io.outcome.task_definition_arn = observed.and_then(|o| o.release_on(outcome.slot).map(|r| r.task_definition.clone()));
            }
        } else {
            let outcome = engine.stage(&request).await?;
            io.outcome.task_definition_arn = Some(outcome.release.task_definition.clone());
            io.outcome.live_slot = outcome.plan.live.map(|s| s.to_string());
            io.outcome.status = Some(outcome.release.status.to_string());
            if outcome.already_live {
                writeln!(out, "{} is already live on {}: nothing staged", outcome.release.version, outcome.release.slot)?;
            } else {
                let production = match (outcome.plan.live, &io.outcome.previous_version) {
                    (Some(slot), Some(v)) => format!("production stays on {v} ({slot})"),
                    (Some(slot), None) => format!("production stays on {slot}"),
                    (None, _) => "nothing is live yet".to_string(),
                };
                writeln!(
                    out,
                    "{} staged on {} and validated; {production}.\npromote with: cutover promote --env {} --service {} --tag {}",
                    outcome.release.version, outcome.release.slot, t.env, t.service, outcome.release.version
                )?;
            }
        }
        Ok(ExitCode::Ok)
    })
}
