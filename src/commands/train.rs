//! Several services as one release from the CLI: `--service api,web` on `promote` and
//! `rollback` runs them as a train (the engine's `Train`): locks in order, one lockstep
//! shift, all or nothing (`build`, `stage` and `deploy`: `train_release`). One service is
//! today's single-service path, unchanged.

use super::load::load_config;
use super::session::{AccountCheck, Session, runtime};
use super::{Io, MemberEnd, Outcome, PromoteRequest, RollbackRequest, Target};
use crate::engine::{Member, Reach, Train, TrainOutcome};
use crate::exit::{Coded, ExitCode};
use crate::ports::{Reporter, StatusEvent};

/// The services of a train when `target` names several (`api,web`) or a worker; None for
/// one web service. A service named twice is refused here, before any config is read or
/// AWS called.
pub fn services(target: &Target) -> anyhow::Result<Option<Vec<String>>> {
    let names: Vec<String> = target
        .service
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(twice) = names
        .iter()
        .enumerate()
        .find_map(|(i, n)| names[..i].contains(n).then_some(n))
    {
        return Err(Coded::new(
            ExitCode::Usage,
            format!("--service names {twice} twice: name each service of the train once"),
        )
        .into());
    }
    let worker = |name: &String| is_worker(&target.config_dir, name);
    Ok((names.len() > 1 || names.iter().any(worker)).then_some(names))
}

/// The service's service.toml declares `[worker]`: it ships through the train's path
/// (rolled in place), even alone. A look at the table headers only: the full config is
/// loaded, rendered and checked later, and a missing file is reported there.
fn is_worker(config_dir: &std::path::Path, service: &str) -> bool {
    let file = crate::config::Layout::new(config_dir)
        .service_dir(service)
        .join("service.toml");
    std::fs::read_to_string(file).is_ok_and(|text| text.lines().any(|l| l.trim() == "[worker]"))
}

/// Every status line says which member it is about: members report side by side.
pub(super) struct Named<'a> {
    service: String,
    inner: &'a (dyn Reporter + Sync),
}

impl Reporter for Named<'_> {
    fn status(&self, event: &StatusEvent) {
        self.inner.status(&StatusEvent {
            detail: format!("[{}] {}", self.service, event.detail),
            ..event.clone()
        });
    }

    fn notice(&self, message: &str) {
        self.inner.notice(&format!("[{}] {message}", self.service));
    }

    fn rehearsed(&self, event: &crate::ports::RehearsalEvent) {
        self.inner.rehearsed(event);
    }
}

/// A train's dry run (and `plan`, `diff`): each member's own plan, one after another, under
/// a heading naming it; nothing is changed. The train itself holds each step as long as its
/// slowest member's strategy does (README, Release trains). Ends with the first refusal.
pub(super) fn each_planned(
    base: &Target,
    services: &[String],
    io: &mut Io<'_>,
    mut plan: impl FnMut(Target, &mut Io<'_>) -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    let mut first_error = None;
    for service in services {
        writeln!(io.out, "== {service}")?;
        let target = Target {
            service: service.clone(),
            ..base.clone()
        };
        if let Err(e) = plan(target, io) {
            writeln!(io.out, "   {}", super::error_text(&e))?;
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(ExitCode::Ok),
    }
}

/// Open one session per member (each with its own config and AWS clients), reporting to
/// `io`'s reporters and to the member's own (the action's deployment per service).
pub(super) async fn sessions(
    base: &Target,
    services: &[String],
    version: Option<&crate::version::Version>,
    io: &Io<'_>,
) -> anyhow::Result<Vec<(String, Session)>> {
    let mut out = Vec::new();
    // The members read together (one environment: one region, account and credentials):
    // reads made at the same moment go as one call (`aws::batch`).
    let batches = crate::aws::batch::Batches::new();
    let mut connections = Vec::new();
    for service in services {
        let target = Target {
            service: service.clone(),
            ..base.clone()
        };
        let loaded = load_config(&target, version, None, None)?;
        let mut reporters = io.reporters.clone();
        reporters.extend(io.member_reporters(service));
        let session = Session::open_on(
            &mut connections,
            &target,
            loaded,
            &reporters,
            AccountCheck::First,
        )
        .await?;
        session.cloud.share_batches(batches.clone());
        out.push((service.clone(), session));
    }
    Ok(out)
}

/// Each member's reporter: its session's, naming the member on every line.
pub(super) fn named(sessions: &[(String, Session)]) -> Vec<Named<'_>> {
    sessions
        .iter()
        .map(|(service, session)| Named {
            service: service.clone(),
            inner: session.reporter(),
        })
        .collect()
}

/// The train of `sessions`; `pins` (one per session, or none) are the digests `[versions]`
/// judged, which each member's promote then holds to.
pub(super) fn train_of<'a>(
    sessions: &'a [(String, Session)],
    named: &'a [Named<'a>],
    pins: Vec<Option<crate::ports::Digest>>,
) -> anyhow::Result<Train<'a, crate::aws::cloud::AwsCloud>> {
    let mut pins = pins.into_iter();
    let members = sessions
        .iter()
        .zip(named)
        .map(|((service, session), reporter)| Member {
            service: service.clone(),
            engine: session
                .engine_reporting(reporter)
                .with_pinned_digest(pins.next().flatten()),
        })
        .collect();
    Ok(Train::new(members)?)
}

pub fn promote(
    req: &PromoteRequest,
    services: Vec<String>,
    io: &mut Io<'_>,
) -> anyhow::Result<ExitCode> {
    if req.dry_run {
        return each_planned(&req.target, &services, io, |target, io| {
            super::promote::run(
                &PromoteRequest {
                    target,
                    ..req.clone()
                },
                io,
            )
        });
    }
    io.outcome.version = Some(req.version.to_string());
    runtime()?.block_on(async {
        let sessions = sessions(&req.target, &services, Some(&req.version), io).await?;
        for (_, s) in &sessions {
            s.check_credentials_outlast(Reach::Shifted, "promote")?;
        }
        // `[versions]` rules hold for every member, before any member's lock is taken.
        let mut pins = Vec::new();
        for (service, s) in &sessions {
            let target = Target {
                service: service.clone(),
                ..req.target.clone()
            };
            let rules = super::versions::rules(&target, &s.loaded, &req.require_promoted_in)?;
            let verdict = super::promote::staged_verdict(s, &rules, &target, &req.version).await?;
            if let Some(verdict) = &verdict {
                verdict.enforce()?;
            }
            pins.push(verdict.map(|v| v.digest));
        }
        let named = named(&sessions);
        let train = train_of(&sessions, &named, pins)?;
        let versions: Vec<_> = services
            .iter()
            .map(|s| (s.clone(), req.version.clone()))
            .collect();
        let outcome = train.promote(&versions).await;
        end(outcome, io, MemberOutcomes::default())
    })
}

pub fn rollback(
    req: &RollbackRequest,
    services: Vec<String>,
    io: &mut Io<'_>,
) -> anyhow::Result<ExitCode> {
    if req.dry_run && req.to.is_none() {
        return each_planned(&req.target, &services, io, |target, io| {
            super::rollback::run(
                &RollbackRequest {
                    target,
                    ..req.clone()
                },
                io,
            )
        });
    }
    runtime()?.block_on(async {
        let sessions = sessions(&req.target, &services, None, io).await?;
        let named = named(&sessions);
        let train = train_of(&sessions, &named, Vec::new())?;
        // With --to: every member to its own entry of that tag (a train's members share
        // its tags), concurrently; a member that cannot is named, the others still go.
        let outcome = train.rollback_to(req.to.as_ref()).await;
        end(outcome, io, MemberOutcomes::default())
    })
}

/// What each member's outcome already holds before the train runs (its image, digest and
/// the version production ran), by service.
#[derive(Default)]
pub(super) struct MemberOutcomes(pub Vec<(String, Outcome)>);

/// One table for the train on stdout, its status as the outcome, its error as the exit;
/// each member's own outcome in `io.members` (the action's per-service outputs).
pub(super) fn end(
    outcome: TrainOutcome,
    io: &mut Io<'_>,
    mut prepared: MemberOutcomes,
) -> anyhow::Result<ExitCode> {
    match &outcome.id {
        Some(id) => writeln!(io.out, "train {}  id {id}", outcome.status)?,
        None => writeln!(io.out, "train {}", outcome.status)?,
    }
    let show = |v: &Option<crate::version::Version>| {
        v.as_ref().map_or("-".to_string(), ToString::to_string)
    };
    for m in &outcome.members {
        writeln!(
            io.out,
            "  {:<20} {} -> {}  {}  ({}s) {}",
            m.service,
            show(&m.from),
            show(&m.to),
            m.status,
            m.seconds,
            m.detail
        )?;
        let mut o = prepared
            .0
            .iter()
            .position(|(s, _)| *s == m.service)
            .map(|i| prepared.0.swap_remove(i).1)
            .unwrap_or_default();
        o.version = m.to.as_ref().map(ToString::to_string);
        if let Some(from) = &m.from {
            o.previous_version = Some(from.to_string());
        }
        o.status = Some(m.status.into());
        o.train_id = outcome.id.clone();
        io.members.push(MemberEnd {
            service: m.service.clone(),
            outcome: o,
            detail: m.detail.clone(),
            seconds: Some(m.seconds),
        });
    }
    io.outcome.status = Some(outcome.status.into());
    match outcome.error {
        Some(e) => Err(e.into()),
        None => Ok(ExitCode::Ok),
    }
}
