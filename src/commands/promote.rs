//! `promote`: shift production traffic to the staged release, exactly the version named.

use super::load::load_config;
use super::session::{Session, runtime};
use super::{Io, Target};
use crate::engine::Reach;
use crate::exit::ExitCode;
use crate::read_only::ReadOnly;
use crate::version::Version;

#[derive(Debug, Clone)]
pub struct PromoteRequest {
    pub target: Target,
    pub version: Version,
    pub dry_run: bool,
    /// `--require-promoted-in`: environments that must have promoted the same digest first,
    /// beside environment.toml's `[versions]` rules.
    pub require_promoted_in: Vec<String>,
}

pub fn run(req: &PromoteRequest, io: &mut Io<'_>) -> anyhow::Result<ExitCode> {
    io.outcome.version = Some(req.version.to_string());
    let settings = load_config(&req.target, Some(&req.version), None, None)?;
    let rules = super::versions::rules(&req.target, &settings, &req.require_promoted_in)?;
    runtime()?.block_on(async {
        let session = Session::open(&req.target, settings, &io.reporters).await?;
        let verdict = staged_verdict(&session, &rules, &req.target, &req.version).await?;
        if !req.dry_run {
            session.check_credentials_outlast(Reach::Shifted, "promote")?;
        }
        session
            .note_previous_version(&mut io.outcome, io.full_outcome && !req.dry_run)
            .await;
        if req.dry_run {
            // The engine's plan over a guard that refuses every write: what the promote
            // will do, or the error it would refuse with (another version staged).
            let guard = ReadOnly::new(&session.cloud);
            let plan = session
                .dry_engine(&guard)
                .promote_plan(&req.version)
                .await?;
            let code = super::print_plan(io, &plan, plan.production)?;
            if let Some(verdict) = &verdict {
                write!(io.out, "{verdict}")?;
                verdict.enforce()?;
            }
            return Ok(code);
        }
        if let Some(verdict) = &verdict {
            verdict.enforce()?;
        }
        let out = &mut *io.out;
        // The rules judged the digest staged before the lock: the promote holds to it.
        let pinned = verdict.as_ref().map(|v| v.digest.clone());
        let outcome = session
            .engine()
            .with_pinned_digest(pinned)
            .promote(&req.version)
            .await?;
        io.outcome.live_slot = Some(outcome.slot.to_string());
        io.outcome.status = Some(crate::ports::Status::Promoted.into());
        if outcome.already {
            writeln!(
                out,
                "{} is already promoted on {}",
                outcome.version, outcome.slot
            )?;
        } else {
            writeln!(
                out,
                "{} promoted: 100% of production on {}",
                outcome.version, outcome.slot
            )?;
        }
        Ok(ExitCode::Ok)
    })
}

/// The `[versions]` verdict on the digest this environment's history records for the
/// version (the staged release); None without rules, or when the history has no such
/// release (the promote then refuses it by itself, moving no traffic to it).
pub(super) async fn staged_verdict(
    session: &Session,
    rules: &super::versions::Rules,
    target: &Target,
    version: &Version,
) -> anyhow::Result<Option<crate::engine::Verdict>> {
    if rules.is_empty() {
        return Ok(None);
    }
    let history = crate::ports::Store::history(&session.cloud).await?;
    let Some(staged) = history.iter().rev().find(|r| &r.version == version) else {
        return Ok(None);
    };
    rules.verdict(target, version, &staged.digest).await
}
