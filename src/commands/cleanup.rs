//! `cleanup`: list the task definition revisions, images and expired lock nothing
//! references any more (a dry run by default), and remove them with `--apply`.

use super::load::load_config;
use super::session::{Session, runtime};
use super::{Io, OutcomeStatus, Target};
use crate::exit::ExitCode;

#[derive(Debug, Clone)]
pub struct CleanupRequest {
    pub target: Target,
    /// Remove what the listing says; without it nothing changes.
    pub apply: bool,
    pub json: bool,
}

pub fn run(req: &CleanupRequest, io: &mut Io<'_>) -> anyhow::Result<ExitCode> {
    let settings = load_config(&req.target, None, None, None)?;
    runtime()?.block_on(async {
        let session = Session::open(&req.target, settings, &io.reporters).await?;
        let engine = session.engine();
        let plan = if req.apply {
            engine.cleanup().await?
        } else {
            engine.cleanup_plan().await?
        };
        let out = &mut *io.out;
        if req.json {
            serde_json::to_writer_pretty(&mut *out, &plan)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "cleanup of {}/{}{}",
                req.target.env,
                req.target.service,
                if req.apply { "" } else { " (dry run)" }
            )?;
            write!(out, "{plan}")?;
        }
        io.outcome.status = Some(if req.apply {
            OutcomeStatus::Cleaned
        } else {
            OutcomeStatus::Planned
        });
        Ok(ExitCode::Ok)
    })
}
