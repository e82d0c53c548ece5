//! `rollback`: production back to the previous release, or `--to` one from history.

use super::load::load_config;
use super::session::{AccountCheck, Session, runtime};
use super::{Io, Target};
use crate::engine::RollbackPath;
use crate::exit::ExitCode;
use crate::read_only::ReadOnly;
use crate::version::Version;

#[derive(Debug, Clone)]
pub struct RollbackRequest {
    pub target: Target,
    pub to: Option<Version>,
    pub dry_run: bool,
}

pub fn run(req: &RollbackRequest, io: &mut Io<'_>) -> anyhow::Result<ExitCode> {
    let settings = load_config(&req.target, None, None, None)?;
    runtime()?.block_on(async {
        // The account is checked only if the rollback fails: it is one call less between
        // the command and production traffic back on the good release.
        let session = Session::open_with(
            &req.target,
            settings,
            &io.reporters,
            AccountCheck::OnFailure,
        )
        .await?;
        match rollback_in(&session, req, io).await {
            Ok(code) => Ok(code),
            Err(e) => Err(session.explain(e).await),
        }
    })
}

async fn rollback_in(
    session: &Session,
    req: &RollbackRequest,
    io: &mut Io<'_>,
) -> anyhow::Result<ExitCode> {
    session
        .note_previous_version(&mut io.outcome, io.full_outcome && !req.dry_run)
        .await;
    if req.dry_run {
        // The engine's plan over a guard that refuses every write: what the rollback will
        // do, or the error it would refuse with.
        let guard = ReadOnly::new(&session.cloud);
        let plan = session
            .dry_engine(&guard)
            .rollback_plan(req.to.as_ref())
            .await?;
        return super::print_plan(io, &plan, plan.production);
    }
    let out = &mut *io.out;
    let outcome = session.engine().rollback(req.to.as_ref()).await?;
    io.outcome.version = outcome.version.as_ref().map(ToString::to_string);
    io.outcome.live_slot = Some(outcome.slot.to_string());
    io.outcome.status = Some(crate::ports::Status::RolledBack.into());
    let version = outcome.version.map_or_else(
        || "the previous task definition".to_string(),
        |v| v.to_string(),
    );
    let how = match outcome.path {
        RollbackPath::Fast => {
            "fast path: the previous slot was warm, weights flipped and read back"
        }
        RollbackPath::Cold => "cold path: the previous slot was scaled up, validated, then flipped",
        RollbackPath::Repair => "an interrupted shift was returned to the last good release",
        RollbackPath::Nothing => "it was already live",
        RollbackPath::Finished => {
            "an interrupted rollback had moved production to it; baked again and recorded"
        }
        RollbackPath::InPlace => "the worker's service rolled back to it in place",
    };
    writeln!(out, "{version} live on {} ({how})", outcome.slot)?;
    Ok(ExitCode::Ok)
}
