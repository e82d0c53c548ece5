//! `promote`: shift production traffic to the staged release, exactly the version named.

use super::load::load_config;
use super::session::{Session, runtime};
use super::{Io, Target};
use crate::exit::ExitCode;
use crate::version::Version;

#[derive(Debug, Clone)]
pub struct PromoteRequest {
    pub target: Target,
    pub version: Version,
    pub dry_run: bool,
}

pub fn run(req: &PromoteRequest, io: &mut Io<'_>) -> anyhow::Result<ExitCode> {
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
