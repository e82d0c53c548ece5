//! `promote`, `rollback` and `unlock`: verbs that act on what is already staged or live.

use super::session::{AccountCheck, Session, load_config, runtime};
use super::{Io, Target};
use crate::engine::RollbackPath;
use crate::exit::ExitCode;
use crate::version::Version;

#[derive(Debug, Clone)]
pub struct PromoteRequest {
    pub target: Target,
    pub version: Version,
    pub dry_run: bool,
}

#[derive(Debug, Clone)]
pub struct RollbackRequest {
    pub target: Target,
    pub to: Option<Version>,
    pub dry_run: bool,
}

pub fn promote(req: &PromoteRequest, io: &mut Io<'_>) -> anyhow::Result<ExitCode> {
    io.outcome.version = Some(req.version.to_string());
    let settings = load_config(&req.target, Some(&req.version), None, None)?;
    runtime()?.block_on(async {
        let session = Session::open(&req.target, settings, &io.reporters).await?;
        session
            .note_previous_version(&mut io.outcome, io.full_outcome && !req.dry_run)
            .await;
        let out = &mut *io.out;
        let engine = session.engine();
        if req.dry_run {
            let observed = engine.observe().await?;
            let steps = crate::engine::steps(&session.loaded.service.strategy)?;
            writeln!(out, "production {}", observed.weights)?;
            for slot in [crate::ports::Slot::Blue, crate::ports::Slot::Green] {
                let v = observed
                    .slot(slot)
                    .version()
                    .map_or_else(|| "nothing".to_string(), ToString::to_string);
                writeln!(out, "{slot:<10} {v}")?;
            }
            let total: u64 = steps.iter().map(|s| s.hold.as_secs()).sum();
            for s in &steps {
                writeln!(
                    out,
                    "shift      {:>3}% on {} then hold {}s",
                    s.percent,
                    req.version,
                    s.hold.as_secs()
                )?;
            }
            writeln!(
                out,
                "expected   {total}s (a promote refuses unless {} is the staged release)",
                req.version
            )?;
            return Ok(ExitCode::Ok);
        }
        let outcome = engine.promote(&req.version).await?;
        io.outcome.live_slot = Some(outcome.slot.to_string());
        io.outcome.status = Some(crate::ports::Status::Promoted.to_string());
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

pub fn rollback(req: &RollbackRequest, io: &mut Io<'_>) -> anyhow::Result<ExitCode> {
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
    let out = &mut *io.out;
    let engine = session.engine();
    if req.dry_run {
        let observed = engine.observe().await?;
        let target = match &req.to {
            Some(v) => observed
                .history
                .iter()
                .rev()
                .find(|r| &r.version == v)
                .map(|r| format!("{} on {} (from history)", r.version, r.slot)),
            None => observed
                .history
                .iter()
                .rev()
                .filter(|r| r.status == crate::ports::Status::Promoted)
                .nth(1)
                .map(|r| format!("{} on {}", r.version, r.slot)),
        };
        writeln!(out, "production {}", observed.weights)?;
        writeln!(
            out,
            "roll back to {}",
            target.unwrap_or_else(|| "nothing: no earlier good release in history".into())
        )?;
        return Ok(ExitCode::Ok);
    }
    let outcome = engine.rollback(req.to.as_ref()).await?;
    io.outcome.version = outcome.version.as_ref().map(ToString::to_string);
    io.outcome.live_slot = Some(outcome.slot.to_string());
    io.outcome.status = Some(crate::ports::Status::RolledBack.to_string());
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
    };
    writeln!(out, "{version} live on {} ({how})", outcome.slot)?;
    Ok(ExitCode::Ok)
}

pub fn unlock(target: &Target, io: &mut Io<'_>) -> anyhow::Result<ExitCode> {
    let settings = load_config(target, None, None, None)?;
    runtime()?.block_on(async {
        let session = Session::open(target, settings, &io.reporters).await?;
        let out = &mut *io.out;
        match session.engine().unlock().await? {
            Some(lock) => writeln!(
                out,
                "broke the lock held by {} (token {})",
                lock.owner, lock.token
            )?,
            None => writeln!(out, "no lock was held")?,
        }
        Ok(ExitCode::Ok)
    })
}
