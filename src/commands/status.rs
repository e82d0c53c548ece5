//! `status`: what is live, the weights, what the idle slot holds, the release waiting for
//! approval, who holds the lock, and recent history — as text or `--json`.

use std::io::Write;

use serde::Serialize;

use super::load::load_config;
use super::session::{Session, runtime};
use super::{Io, Target};
use crate::engine::Observed;
use crate::exit::ExitCode;
use crate::ports::{Lock, Release, Slot, Status, Store};

#[derive(Debug, Clone)]
pub struct StatusRequest {
    pub target: Target,
    pub json: bool,
    /// Show this release's timeline (every status change with its time) instead.
    pub release: Option<crate::version::Version>,
}

#[derive(Serialize)]
struct Report<'a> {
    environment: &'a str,
    service: &'a str,
    live: Option<Slot>,
    live_version: Option<String>,
    weights: crate::ports::Weights,
    idle: Slot,
    idle_version: Option<String>,
    /// A validated release on the idle slot, waiting for `promote`.
    awaiting_approval: Option<&'a Release>,
    lock: Option<Lock>,
    /// A worker's ECS service (no slots: it runs in place).
    #[serde(skip_serializing_if = "Option::is_none")]
    worker: Option<&'a str>,
    observed: &'a Observed,
}

/// `status --service api,web`: every member's status, one after another (`--json`: an
/// array of them), so a train is seen whole: which members are live on which release, which
/// hold a staged release of the train, whose lock is held.
pub fn run_each(
    req: &StatusRequest,
    services: &[String],
    io: &mut Io<'_>,
) -> anyhow::Result<ExitCode> {
    let mut reports = Vec::new();
    let mut seen = Vec::new();
    for (i, service) in services.iter().enumerate() {
        let member = StatusRequest {
            target: Target {
                service: service.clone(),
                ..req.target.clone()
            },
            ..req.clone()
        };
        if !req.json {
            if i > 0 {
                writeln!(io.out)?;
            }
            seen.extend(show(&member, io)?);
            continue;
        }
        let mut text = Vec::new();
        run(&member, &mut Io::new(&mut text))?;
        reports.push(serde_json::from_slice::<serde_json::Value>(&text)?);
    }
    if req.json {
        serde_json::to_writer_pretty(&mut *io.out, &reports)?;
        writeln!(io.out)?;
    } else if seen.len() == services.len() {
        writeln!(io.out)?;
        writeln!(io.out, "{}", train_verdict(services, &seen))?;
    }
    Ok(ExitCode::Ok)
}

pub fn run(req: &StatusRequest, io: &mut Io<'_>) -> anyhow::Result<ExitCode> {
    show(req, io).map(|_| ExitCode::Ok)
}

/// One member as the train's verdict needs it: what it runs, and its newest history entry.
#[derive(Clone)]
struct Seen {
    service: String,
    live: Option<String>,
    newest: Option<Release>,
}

/// Print the status; what was seen (None for a release's timeline).
fn show(req: &StatusRequest, io: &mut Io<'_>) -> anyhow::Result<Option<Seen>> {
    let settings = load_config(&req.target, None, None, None)?;
    runtime()?.block_on(async {
        let session = Session::open(&req.target, settings, &io.reporters).await?;
        let out = &mut *io.out;
        let observed = session.engine().observe().await?;
        if let Some(version) = &req.release {
            return timeline(req, version, &observed.history, out).map(|_| None);
        }
        let lock = session
            .cloud
            .read_lock()
            .await
            .map_err(|e| anyhow::anyhow!("reading the lock: {e}"))?;
        let live = observed.weights.live();
        let idle = live.map_or(Slot::Green, Slot::other);
        let version = |slot: Slot| observed.slot(slot).version().map(ToString::to_string);
        let awaiting = observed
            .release_on(idle)
            .filter(|r| r.status == Status::AwaitingApproval && observed.weights.of(idle) == 0);
        let report = Report {
            environment: &req.target.env,
            service: &req.target.service,
            live,
            live_version: live.and_then(version),
            weights: observed.weights,
            idle,
            idle_version: version(idle),
            awaiting_approval: awaiting,
            lock,
            worker: session
                .loaded
                .service
                .worker
                .as_ref()
                .map(|w| w.service.as_str()),
            observed: &observed,
        };
        io.outcome.live_slot = live.map(|s| s.to_string());
        io.outcome.version = report.live_version.clone();
        // What `rollback` would return to, by the rule the rollback itself uses.
        let depth = session.loaded.service.history.depth;
        io.outcome.previous_version = live
            .and_then(|l| crate::engine::rollback_target(&observed, l, None, depth).ok())
            .map(|r| r.version.to_string());
        io.outcome.status = observed
            .release_on(live.unwrap_or(idle))
            .map(|r| r.status.into());
        if req.json {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
        } else {
            write_text(&report, out)?;
        }
        Ok(Some(Seen {
            service: req.target.service.clone(),
            live: report.live_version.clone(),
            newest: observed.history.iter().max_by_key(|r| r.at).cloned(),
        }))
    })
}

/// One line on the train as a whole (issue 17.3), from every member's live release and
/// newest history entry: on one release, staged and waiting, or left half-way by a run
/// that died — with the command that finishes or undoes it.
fn train_verdict(services: &[String], seen: &[Seen]) -> String {
    let names = services.join(",");
    let live: Vec<String> = seen
        .iter()
        .map(|m| format!("{} {}", m.service, m.live.as_deref().unwrap_or("nothing")))
        .collect();
    let newest: Vec<&Release> = seen.iter().filter_map(|m| m.newest.as_ref()).collect();
    let one_train = newest.len() == seen.len()
        && newest.iter().all(|r| {
            let mut members = r.train.clone();
            members.sort();
            let mut wanted = services.to_vec();
            wanted.sort();
            members == wanted && r.version == newest[0].version && r.train_id == newest[0].train_id
        });
    // Which run staged it, when the entries say (written before train ids: they do not).
    let run = newest
        .first()
        .filter(|r| !r.train_id.is_empty())
        .map_or_else(String::new, |r| format!(" (train run {})", r.train_id));
    let moving = |r: &&&Release| {
        matches!(
            r.status,
            Status::Staging
                | Status::Validating
                | Status::Shifting(_)
                | Status::Baking
                | Status::RollingBack
        )
    };
    if one_train && newest.iter().any(|r| moving(&r)) {
        let v = &newest[0].version;
        let states: Vec<String> = seen
            .iter()
            .zip(&newest)
            .map(|(m, r)| format!("{} {}", m.service, r.status))
            .collect();
        return format!(
            "train      {v}{run} left half-way by a run that stopped ({}): finish it with `cutover promote --service {names} --tag {v}`, or return every member with `cutover rollback --service {names}`",
            states.join(", ")
        );
    }
    if one_train && newest.iter().all(|r| r.status == Status::AwaitingApproval) {
        let v = &newest[0].version;
        return format!(
            "train      {v} staged on every member{run}, waiting for `cutover promote --service {names} --tag {v}`"
        );
    }
    let first = seen.first().and_then(|m| m.live.as_ref());
    if seen.iter().all(|m| m.live.as_ref() == first) {
        return format!(
            "train      every member runs {}",
            first.map_or("nothing", String::as_str)
        );
    }
    format!(
        "train      members run different releases: {}",
        live.join(", ")
    )
}

fn write_text(r: &Report<'_>, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "{}/{}", r.environment, r.service)?;
    if let Some(service) = r.worker {
        let s = &r.observed.blue;
        writeln!(
            out,
            "live       {} (worker: ECS service {service}, rolled in place; {}/{} tasks running)",
            r.live_version
                .as_deref()
                .unwrap_or("not deployed by cutover"),
            s.running,
            s.desired
        )?;
        return write_lock_and_history(r, out);
    }
    match r.live {
        Some(slot) => writeln!(
            out,
            "live       {slot} ({})",
            r.live_version
                .as_deref()
                .unwrap_or("not deployed by cutover")
        )?,
        None => writeln!(
            out,
            "live       split: {} (a shift is in progress or was interrupted)",
            r.weights
        )?,
    }
    writeln!(out, "weights    {}", r.weights)?;
    let idle = r.observed.slot(r.idle);
    writeln!(
        out,
        "idle       {} ({}, {}/{} tasks running)",
        r.idle,
        r.idle_version.as_deref().unwrap_or("empty"),
        idle.running,
        idle.desired
    )?;
    if let Some(rel) = r.awaiting_approval {
        // A train's member is promoted with its whole train (issue 17.3).
        let services = if rel.train.len() > 1 {
            rel.train.join(",")
        } else {
            r.service.to_string()
        };
        writeln!(
            out,
            "staged     {} on {}, validated, waiting for `cutover promote --service {services} --tag {}`",
            rel.version, rel.slot, rel.version
        )?;
        if rel.train.len() > 1 {
            writeln!(out, "train      {}", train_of(rel))?;
        }
    }
    write_lock_and_history(r, out)
}

/// A train's members, after the id of the run that staged them when recorded:
/// `3fa9c1e2: api, web`.
fn train_of(rel: &Release) -> String {
    let members = rel.train.join(", ");
    if rel.train_id.is_empty() {
        members
    } else {
        format!("{}: {members}", rel.train_id)
    }
}

fn write_lock_and_history(r: &Report<'_>, out: &mut dyn Write) -> std::io::Result<()> {
    match &r.lock {
        Some(l) => writeln!(out, "lock       held by {}", l.owner)?,
        None => writeln!(out, "lock       free")?,
    }
    writeln!(out, "history    (newest change first)")?;
    // Entries are updated in place (a staged release later promoted or rolled back keeps
    // its place), so order by when each last changed.
    let mut history: Vec<_> = r.observed.history.iter().rev().collect();
    history.sort_by_key(|rel| std::cmp::Reverse(rel.at));
    for rel in history {
        writeln!(
            out,
            "  {:<14} {:<6} {:<17} by {}{}",
            rel.version.to_string(),
            // A worker runs in place: its entries' slot means nothing.
            if r.worker.is_some() {
                "-".to_string()
            } else {
                rel.slot.to_string()
            },
            rel.status.to_string(),
            rel.by,
            if rel.train.len() > 1 {
                format!(" (train {})", train_of(rel))
            } else {
                String::new()
            }
        )?;
    }
    if r.observed.history.is_empty() {
        writeln!(out, "  none yet")?;
    }
    Ok(())
}

/// `status --release vX.Y.Z`: the release's kept transitions (issue 18.4), oldest first.
fn timeline(
    req: &StatusRequest,
    version: &crate::version::Version,
    history: &[Release],
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let entries: Vec<&Release> = history.iter().filter(|r| r.version == *version).collect();
    if entries.is_empty() {
        return Err(crate::exit::Coded::new(
            ExitCode::Usage,
            format!(
                "{version} is not in the history of {}/{} (it keeps the last [history] depth releases); `cutover status` lists them",
                req.target.env, req.target.service
            ),
        )
        .into());
    }
    if req.json {
        serde_json::to_writer_pretty(&mut *out, &entries)?;
        writeln!(out)?;
        return Ok(ExitCode::Ok);
    }
    for r in entries {
        writeln!(
            out,
            "{}/{} {} on {} ({}), {} by {}",
            req.target.env,
            req.target.service,
            r.version,
            r.slot,
            r.task_definition,
            r.status,
            r.by
        )?;
        let Some(first) = r.transitions.first() else {
            writeln!(
                out,
                "  {}  {}  (recorded before cutover kept timelines)",
                crate::clock::rfc3339(r.at),
                r.status
            )?;
            continue;
        };
        for t in &r.transitions {
            writeln!(
                out,
                "  {}  +{:<6} {}",
                crate::clock::rfc3339(t.at),
                format!("{}s", (t.at - first.at) / 1000),
                t.status
            )?;
        }
    }
    Ok(ExitCode::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::Digest;
    use crate::version::Version;

    fn member(service: &str, live: &str, newest: Option<(&str, Status)>) -> Seen {
        Seen {
            service: service.into(),
            live: Some(live.into()),
            newest: newest.map(|(version, status)| Release {
                version: Version::parse(version).expect("tag"),
                digest: Digest(format!("sha256:{}", "a".repeat(64))),
                task_definition: format!("{service}:2"),
                slot: Slot::Green,
                by: "ci".into(),
                at: 1,
                status,
                fingerprint: String::new(),
                promoted_at: None,
                transitions: Vec::new(),
                rehearsal: None,
                train: vec!["api".into(), "web".into()],
                train_id: String::new(),
            }),
        }
    }

    #[test]
    fn a_train_left_half_way_is_named_with_the_commands_that_finish_or_undo_it() {
        let services = ["web".to_string(), "api".to_string()];
        let half = [
            member("web", "v1.7.0", Some(("v1.7.0", Status::Baking))),
            member("api", "v1.6.0", Some(("v1.7.0", Status::Shifting(50)))),
        ];
        let line = train_verdict(&services, &half);
        assert!(line.contains("v1.7.0 left half-way"), "{line}");
        assert!(line.contains("web Baking, api Shifting(50%)"), "{line}");
        assert!(
            line.contains("`cutover promote --service web,api --tag v1.7.0`")
                && line.contains("`cutover rollback --service web,api`"),
            "{line}"
        );
        let staged = [
            member("web", "v1.6.0", Some(("v1.7.0", Status::AwaitingApproval))),
            member("api", "v1.6.0", Some(("v1.7.0", Status::AwaitingApproval))),
        ];
        assert!(
            train_verdict(&services, &staged).contains("v1.7.0 staged on every member"),
            "{}",
            train_verdict(&services, &staged)
        );
        // Staged by one train run: the line names it. By two runs (one member staged
        // again by another train of the same tag): not one train's staging.
        let by = |mut m: Seen, id: &str| {
            m.newest.as_mut().expect("an entry").train_id = id.into();
            m
        };
        let one_run = staged.clone().map(|m| by(m, "0a1b2c3d"));
        assert!(
            train_verdict(&services, &one_run)
                .contains("v1.7.0 staged on every member (train run 0a1b2c3d), waiting"),
            "{}",
            train_verdict(&services, &one_run)
        );
        let [web, api] = staged;
        let two_runs = [by(web, "0a1b2c3d"), by(api, "ffff0000")];
        assert_eq!(
            train_verdict(&services, &two_runs),
            "train      every member runs v1.6.0"
        );
        let done = [
            member("web", "v1.7.0", Some(("v1.7.0", Status::Promoted))),
            member("api", "v1.7.0", Some(("v1.7.0", Status::Promoted))),
        ];
        assert_eq!(
            train_verdict(&services, &done),
            "train      every member runs v1.7.0"
        );
        // Not one train (each released alone), on different releases: said as it is.
        let apart = [member("web", "v1.7.0", None), member("api", "v1.5.0", None)];
        assert_eq!(
            train_verdict(&services, &apart),
            "train      members run different releases: web v1.7.0, api v1.5.0"
        );
    }
}
