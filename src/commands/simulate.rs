//! `simulate`: the user's own service settings run through many seeded scenarios of the
//! fault simulation, in virtual time, before a first real deploy. Pure simulation: no AWS
//! call, no credentials.

use std::io::Write;
use std::time::Instant;

use super::Target;
use super::load::load_config;
use crate::exit::ExitCode;
use crate::sim::report::{Summary, user_settings};
use crate::sim::{Profile, RunReport, Scenario};

#[derive(Debug, Clone)]
pub struct SimulateRequest {
    pub target: Target,
    pub seeds: u64,
    /// Every seed in this profile, instead of cycling through them all.
    pub profile: Option<String>,
    /// Replay this one seed and print its event log.
    pub seed: Option<u64>,
    pub json: bool,
}

pub fn run(req: &SimulateRequest, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let profile = match req.profile.as_deref() {
        None => None,
        Some(name) => Some(Profile::parse(name).ok_or_else(|| {
            let names: Vec<String> = Profile::ALL.iter().map(ToString::to_string).collect();
            crate::exit::Coded::new(
                ExitCode::Usage,
                format!("unknown --profile {name:?}; one of: {}", names.join(", ")),
            )
        })?),
    };
    let loaded = load_config(&req.target, None, None, None)?;
    let settings = user_settings(&loaded.service);
    let scenario = |seed: u64| Scenario {
        seed,
        strategy: settings.strategy.kind(),
        profile: profile.unwrap_or(Profile::ALL[(seed % Profile::ALL.len() as u64) as usize]),
    };
    let replay = |seed: u64, profile: Profile| {
        format!(
            "cutover simulate --env {} --service {} --seed {seed} --profile {profile}",
            req.target.env, req.target.service
        )
    };
    if let Some(seed) = req.seed {
        let report = run_one(scenario(seed), &settings);
        return replay_one(&report, req.json, out);
    }
    let started = Instant::now();
    let reports = sweep((0..req.seeds).map(scenario).collect(), &settings);
    let wall = started.elapsed().as_secs_f64();
    let summary = Summary::of(&reports);
    let mut notes = Vec::new();
    if loaded.service.validation.probes.is_empty() {
        notes.push("no [[validation.probes]]: nothing checks that the staged release answers before production traffic moves; only alarms and the validation command judge it".to_string());
    }
    if req.json {
        let mut value = serde_json::to_value(&summary)?;
        value["notes"] = serde_json::json!(notes);
        value["seeds_per_second"] = serde_json::json!(reports.len() as f64 / wall.max(1e-9));
        serde_json::to_writer_pretty(&mut *out, &value)?;
        writeln!(out)?;
    } else {
        write_text(req, &summary, wall, &notes, &replay, out)?;
    }
    Ok(if summary.clean() {
        ExitCode::Ok
    } else {
        ExitCode::Failed
    })
}

/// One scenario on its own paused-clock runtime: virtual time, so a bake of an hour costs
/// microseconds.
/// The engine's logs are silenced: thousands of simulated deploys would bury the summary.
fn run_one(scenario: Scenario, settings: &crate::config::settings::ServiceSettings) -> RunReport {
    let quiet = tracing::subscriber::NoSubscriber::default();
    tracing::subscriber::with_default(quiet, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime builds")
            .block_on(crate::sim::run_as(scenario, settings))
    })
}

/// Every scenario, spread over the machine's cores; reports in seed order.
fn sweep(
    scenarios: Vec<Scenario>,
    settings: &crate::config::settings::ServiceSettings,
) -> Vec<RunReport> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = scenarios.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = scenarios
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|s| run_one(*s, settings))
                        .collect::<Vec<RunReport>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect::<Vec<RunReport>>()
    })
}

fn replay_one(report: &RunReport, json: bool, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    if json {
        let value = serde_json::json!({
            "seed": report.scenario.seed,
            "profile": report.scenario.profile.to_string(),
            "violations": report.violations,
            "log": report.log,
        });
        serde_json::to_writer_pretty(&mut *out, &value)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", report.scenario)?;
        for line in &report.log {
            writeln!(out, "{line}")?;
        }
        for v in &report.violations {
            writeln!(out, "VIOLATION {v}")?;
        }
    }
    Ok(if report.violations.is_empty() {
        ExitCode::Ok
    } else {
        ExitCode::Failed
    })
}

/// How many broken seeds the text output lists.
const SHOWN: usize = 5;

fn secs(s: f64) -> String {
    let s = s.round() as u64;
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

fn write_text(
    req: &SimulateRequest,
    summary: &Summary,
    wall: f64,
    notes: &[String],
    replay: &dyn Fn(u64, Profile) -> String,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let which = req
        .profile
        .as_deref()
        .map_or("all fault profiles".to_string(), |p| format!("profile {p}"));
    writeln!(
        out,
        "{}/{}: {} seeds ({which}) in virtual time, {:.1}s ({:.0} seeds/s)",
        req.target.env,
        req.target.service,
        summary.seeds,
        wall,
        summary.seeds as f64 / wall.max(1e-9)
    )?;
    let count = |o| summary.outcomes.get(&o).copied().unwrap_or(0);
    use crate::sim::report::Outcome as O;
    writeln!(
        out,
        "outcomes   promoted {}, rolled back {}, failed {}, rollback failed {}",
        count(O::Promoted),
        count(O::RolledBack),
        count(O::Failed),
        count(O::RollbackFailed)
    )?;
    writeln!(
        out,
        "phase                          runs      p50      p99      max"
    )?;
    for p in summary.phases.iter().chain(&summary.longest_split) {
        writeln!(
            out,
            "  {:<28} {:>5} {:>8} {:>8} {:>8}",
            p.phase,
            p.runs,
            secs(p.p50_s),
            secs(p.p99_s),
            secs(p.max_s)
        )?;
    }
    if summary.longest_split.is_none() {
        writeln!(
            out,
            "  production traffic split     never (no run split traffic)"
        )?;
    }
    if summary.broken.is_empty() {
        writeln!(out, "invariants held in every seed")?;
    } else {
        writeln!(
            out,
            "{} seed(s) broke an invariant (cutover's bug, not your settings: please report it with the replay command):",
            summary.broken.len()
        )?;
        for b in summary.broken.iter().take(SHOWN) {
            let profile = Profile::parse(&b.profile).unwrap_or(Profile::Calm);
            let more = b.violations.len() - 1;
            let first = b.violations.first().map_or("", String::as_str);
            let more = if more > 0 {
                format!(" (and {more} more)")
            } else {
                String::new()
            };
            writeln!(out, "  seed {} ({}): {first}{more}", b.seed, b.profile)?;
            writeln!(out, "    replay: {}", replay(b.seed, profile))?;
        }
        if summary.broken.len() > SHOWN {
            writeln!(
                out,
                "  … and {} more (--json lists them all)",
                summary.broken.len() - SHOWN
            )?;
        }
    }
    for note in notes {
        writeln!(out, "note: {note}")?;
    }
    if let Some(first) = summary.calm_blocked.first() {
        writeln!(
            out,
            "with nothing going wrong, {} seed(s) did not promote: these settings stop a deploy by themselves",
            summary.calm_blocked.len()
        )?;
        writeln!(
            out,
            "  seed {} ({}): {}",
            first.seed, first.outcome, first.why
        )?;
        writeln!(out, "    replay: {}", replay(first.seed, Profile::Calm))?;
    }
    Ok(())
}
