//! The action's run: for each service, the verb with the runner's reporters (workflow
//! commands, GitHub deployments, Slack), then the job summary and the step outputs.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;

use super::ActionRequest;
use super::outputs::write_outputs;
use crate::commands::load::load_config;
use crate::commands::session::{owner, runtime};
use crate::commands::{Io, MemberEnd, Outcome, OutcomeStatus};
use crate::exit::ExitCode;
use crate::ports::{Reporter, Status, StatusEvent};
use crate::report::github::{GithubDeployments, GithubTarget};
use crate::report::slack::Slack;
use crate::report::summary::{self, RunSummary};
use crate::report::timeline::Timeline;
use crate::report::workflow::WorkflowCommands;
use crate::version::Version;

/// Where the runner wants results: the files behind `$GITHUB_OUTPUT` and
/// `$GITHUB_STEP_SUMMARY`, and the run's coordinates for links and deployments.
pub(super) struct Runner {
    pub(super) output: Option<PathBuf>,
    summary: Option<PathBuf>,
    api_url: String,
    repository: Option<(String, String)>,
    run_url: Option<String>,
}

impl Runner {
    fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let repository = var("GITHUB_REPOSITORY").and_then(|r| {
            r.split_once('/')
                .map(|(o, n)| (o.to_string(), n.to_string()))
        });
        let run_url = var("GITHUB_RUN_ID").map(|_| owner());
        Self {
            output: var("GITHUB_OUTPUT").map(PathBuf::from),
            summary: var("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            api_url: var("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into()),
            repository,
            run_url,
        }
    }
}

/// One service's run: what it did and how it ended, and its section of the job summary.
pub(super) struct ServiceRun {
    pub(super) service: String,
    pub(super) outcome: Outcome,
    summary: String,
}

pub fn run(req: &ActionRequest, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    // Mask the secrets before anything else is printed (GitHub masks inputs marked secret
    // only when they come from `secrets.*`; a token pasted through `with:` would not be).
    for secret in [&req.github_token, &req.slack_webhook]
        .into_iter()
        .flatten()
    {
        writeln!(out, "::add-mask::{}", secret.expose_secret())?;
    }
    out.flush()?;
    let runner = Runner::from_env();
    // The reporters' background tasks (GitHub, Slack) live on this runtime while each
    // verb runs on its own.
    let rt = runtime()?;
    if req.is_train() {
        return run_train(req, &runner, &rt, out);
    }
    let mut runs = Vec::new();
    for service in &req.services {
        let member = MemberRun::start(req, service, &runner, &rt);
        let mut io = Io::new(out);
        io.full_outcome = true;
        io.reporters = member.reporters();
        let result = crate::commands::run_with(req.request(service), &mut io);
        let mut outcome = io.outcome;
        if result.is_err() {
            // How the run ended is told from the error and the last step reported.
            outcome.status = None;
        }
        let run = member.finish(req, &runner, &rt, outcome, result.as_ref().err());
        let failed = result.is_err();
        runs.push((run, result));
        // Later services keep what they run: a failed release stops the rollout. A rollback
        // goes on: a recovery never waits on the service it cannot fix.
        if failed && !req.verb.rolls_back() {
            break;
        }
    }
    let (runs, results): (Vec<ServiceRun>, Vec<_>) = runs.into_iter().unzip();
    write_outputs(&runner, &runs)?;
    let mut first_error = None;
    for result in results {
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(ExitCode::Ok),
    }
}

/// Several services as one train (`build`, `stage`, `deploy`, `promote`, `rollback`): one
/// run of the verb over all of them, each member with its own deployment, Slack thread,
/// log group and summary section, and one table for the train at the top of the summary.
fn run_train(
    req: &ActionRequest,
    runner: &Runner,
    rt: &tokio::runtime::Runtime,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let members: Vec<MemberRun> = req
        .services
        .iter()
        .map(|service| MemberRun::start(req, service, runner, rt))
        .collect();
    let mut io = Io::new(out);
    io.full_outcome = true;
    io.by_member = members
        .iter()
        .map(|m| (m.service.clone(), m.reporters()))
        .collect();
    let result = crate::commands::run_with(req.request(&req.services.join(",")), &mut io);
    // The train's own end (RolledBack, RollbackFailed…) when it got that far.
    let train_status = io
        .outcome
        .status
        .or_else(|| result.as_ref().err().map(|e| failed_status(e, None)));
    let mut ends = std::mem::take(&mut io.members);
    let mut runs = Vec::new();
    for member in members {
        let end = ends
            .iter()
            .position(|e| e.service == member.service)
            .map(|i| ends.swap_remove(i))
            .unwrap_or_else(|| MemberEnd {
                service: member.service.clone(),
                outcome: Outcome {
                    version: req.version.as_ref().map(ToString::to_string),
                    ..Outcome::default()
                },
                detail: result
                    .as_ref()
                    .err()
                    .map(crate::commands::error_text)
                    .unwrap_or_default(),
                seconds: None,
            });
        let run = member.finish(req, runner, rt, end.outcome.clone(), result.as_ref().err());
        runs.push((run, end));
    }
    write_train_summary(req, runner, train_status, &runs);
    let runs: Vec<ServiceRun> = runs.into_iter().map(|(run, _)| run).collect();
    write_outputs(runner, &runs)?;
    result
}

/// The train's table goes first in the summary, then each member's own section.
fn write_train_summary(
    req: &ActionRequest,
    runner: &Runner,
    status: Option<OutcomeStatus>,
    runs: &[(ServiceRun, MemberEnd)],
) {
    let Some(path) = &runner.summary else {
        return;
    };
    let rows: Vec<summary::TrainRow<'_>> = runs
        .iter()
        .map(|(_, end)| summary::TrainRow {
            service: &end.service,
            from: end.outcome.previous_version.as_deref(),
            to: end.outcome.version.as_deref(),
            status: end
                .outcome
                .status
                .map_or_else(|| "not started".to_string(), |s| s.to_string()),
            seconds: end.seconds,
            detail: &end.detail,
        })
        .collect();
    let md = summary::train_markdown(&summary::TrainSummary {
        verb: req.verb.name(),
        environment: &req.environment,
        status: status.map_or_else(|| "unknown".to_string(), |s| s.to_string()),
        id: runs
            .iter()
            .find_map(|(_, end)| end.outcome.train_id.as_deref()),
        rows: &rows,
    });
    let mut all = md;
    for (run, _) in runs {
        all.push_str(&run.summary);
    }
    if let Err(e) = summary::append_summary(path, &all) {
        tracing::warn!("writing the job summary to {}: {e}", path.display());
    }
}

/// One service's reporters for a run: its timeline, its log group, and (for the verbs that
/// change what runs) its GitHub deployment and Slack thread.
struct MemberRun {
    service: String,
    heading: String,
    timeline: Timeline,
    workflow: Arc<WorkflowCommands>,
    external: External,
}

impl MemberRun {
    fn start(
        req: &ActionRequest,
        service: &str,
        runner: &Runner,
        rt: &tokio::runtime::Runtime,
    ) -> Self {
        let heading = format!("{}/{service}", req.environment);
        let timeline = Timeline::default();
        let workflow = Arc::new(WorkflowCommands::new(
            Box::new(std::io::stdout()),
            heading.clone(),
        ));
        let deploys = req.verb.deploys() && !req.dry_run;
        let external = if deploys {
            External::start(req, service, runner, rt)
        } else {
            External::default()
        };
        if deploys {
            // GitHub shows the deployment as queued and Slack says it started before the
            // first real step (a build can take minutes). Not in the log: the build's
            // `::add-mask::` lines must come before anything else there.
            let queued = event(
                req,
                Status::Pending,
                format!("cutover {} started", req.verb.name()),
            );
            timeline.status(&queued);
            for r in external.reporters() {
                r.status(&queued);
            }
        }
        MemberRun {
            service: service.to_string(),
            heading,
            timeline,
            workflow,
            external,
        }
    }

    fn reporters(&self) -> Vec<Arc<dyn Reporter + Send + Sync>> {
        let mut all: Vec<Arc<dyn Reporter + Send + Sync>> =
            vec![Arc::new(self.timeline.clone()), self.workflow.clone()];
        all.extend(self.external.reporters());
        all
    }

    /// After the verb: release notes or the failure's annotation, the deployment ended,
    /// queued messages sent, this service's summary section made.
    fn finish(
        self,
        req: &ActionRequest,
        runner: &Runner,
        rt: &tokio::runtime::Runtime,
        mut outcome: Outcome,
        failure: Option<&anyhow::Error>,
    ) -> ServiceRun {
        let last = self.timeline.entries().last().map(|e| e.event.status);
        match failure {
            None => {
                // The tag has one GitHub Release: a train's first member publishes its notes.
                if req.services.first() == Some(&self.service) {
                    publish_notes(req, &outcome, &self.external, rt);
                }
                retire_left_release(req, &outcome, &self.external);
            }
            Some(e) => {
                // A train member's own end (from the train's table) is kept.
                if outcome.status.is_none() {
                    outcome.status = Some(failed_status(e, last));
                }
                let step = last.map_or_else(|| "start".to_string(), |s| s.to_string());
                self.workflow.annotate(
                    "error",
                    &format!(
                        "cutover {} {} failed at {step}",
                        req.verb.name(),
                        self.heading
                    ),
                    &crate::commands::error_text(e),
                );
                end_deployment(req, e, last, &self.external);
            }
        }
        self.workflow.end();
        rt.block_on(self.external.finish());
        let summary = summary_of(req, &self.service, runner, &outcome, &self.timeline);
        if !req.is_train() {
            append(runner, &summary);
        }
        ServiceRun {
            service: self.service,
            outcome,
            summary,
        }
    }
}

fn event(req: &ActionRequest, status: Status, detail: String) -> StatusEvent {
    StatusEvent {
        status,
        version: req.version.clone(),
        slot: None,
        detail,
    }
}

/// GitHub's generated release notes on the tag's Release, once the version is promoted.
fn publish_notes(
    req: &ActionRequest,
    outcome: &Outcome,
    external: &External,
    rt: &tokio::runtime::Runtime,
) {
    let promoted = outcome.status == Some(Status::Promoted.into());
    let (true, true, Some(notes)) = (req.release_notes, promoted, &external.notes) else {
        return;
    };
    let version = req.version.clone().or_else(|| {
        outcome
            .version
            .as_deref()
            .and_then(|v| Version::parse(v).ok())
    });
    if let Some(version) = version {
        rt.block_on(notes.publish(&version));
    }
}

/// After a rollback that worked, the release production left is no longer deployed: its
/// GitHub deployment goes inactive (GitHub does not do that itself for production
/// environments).
fn retire_left_release(req: &ActionRequest, outcome: &Outcome, external: &External) {
    let (true, Some(github)) = (req.verb.rolls_back(), &external.github) else {
        return;
    };
    if let (Some(left), Some(live)) = (&outcome.previous_version, &outcome.version)
        && left != live
    {
        github.inactive(left, &format!("rolled back to {live}"));
    }
}

/// The `status` output of a run that failed: Cancelled, the rollback's own end, or Failed.
fn failed_status(err: &anyhow::Error, last: Option<Status>) -> OutcomeStatus {
    if crate::commands::exit_code(err) == ExitCode::Cancelled {
        return OutcomeStatus::Cancelled;
    }
    match last {
        Some(s @ (Status::RolledBack | Status::RollbackFailed)) => s.into(),
        _ => Status::Failed.into(),
    }
}

/// The engine reports its own failures; anything that stopped before it (bad config, a
/// failed build) still has to end the GitHub deployment and tell Slack.
fn end_deployment(
    req: &ActionRequest,
    err: &anyhow::Error,
    last: Option<Status>,
    external: &External,
) {
    if matches!(
        last,
        Some(Status::Failed | Status::RolledBack | Status::RollbackFailed)
    ) {
        return;
    }
    let detail = if crate::commands::exit_code(err) == ExitCode::Cancelled {
        "cancelled".into()
    } else {
        crate::commands::error_text(err)
    };
    let failed = event(req, Status::Failed, detail);
    for r in external.reporters() {
        r.status(&failed);
    }
}

fn summary_of(
    req: &ActionRequest,
    service: &str,
    runner: &Runner,
    outcome: &Outcome,
    timeline: &Timeline,
) -> String {
    if runner.summary.is_none() {
        return String::new();
    }
    let entries = timeline.entries();
    let rehearsals = timeline.rehearsals();
    summary::markdown(&RunSummary {
        verb: req.verb.name(),
        environment: &req.environment,
        service,
        from_version: outcome.previous_version.clone(),
        to_version: outcome.version.clone(),
        image: outcome.image.clone(),
        final_status: outcome.status.map(|s| s.to_string()),
        entries: &entries,
        diff: outcome.diff.as_deref(),
        rehearsals: &rehearsals,
    })
}

fn append(runner: &Runner, markdown: &str) {
    let Some(path) = &runner.summary else {
        return;
    };
    if let Err(e) = summary::append_summary(path, markdown) {
        tracing::warn!("writing the job summary to {}: {e}", path.display());
    }
}

/// Where a service's GitHub deployment goes: the GitHub environment itself for one service;
/// `production/api`, `production/web` for several, since GitHub keeps one deployment active
/// per environment and the members of a train would otherwise mark each other inactive (or
/// append to each other's deployment of the same tag). The deployments view then shows
/// which release every service runs.
fn deployment_environment(req: &ActionRequest, service: &str) -> String {
    if req.services.len() > 1 {
        format!("{}/{service}", req.environment)
    } else {
        req.environment.clone()
    }
}

/// The reporters outside the runner's log: GitHub deployments and Slack, plus the release
/// notes publisher. Each is present only when its input was given.
#[derive(Default)]
struct External {
    github: Option<Arc<GithubDeployments>>,
    slack: Option<Arc<Slack>>,
    notes: Option<crate::report::release_notes::ReleaseNotes>,
}

impl External {
    fn start(
        req: &ActionRequest,
        service: &str,
        runner: &Runner,
        rt: &tokio::runtime::Runtime,
    ) -> Self {
        let _guard = rt.enter();
        let mut external = External::default();
        // environment.toml's `url` is the deployment's environment_url; a config error
        // here is reported by the verb itself, with its file and line.
        let environment_url = load_config(&req.target(service), None, None, None)
            .ok()
            .and_then(|l| l.environment.url);
        if let (Some(token), Some((owner, repo))) = (&req.github_token, &runner.repository) {
            let git_ref = req
                .version
                .as_ref()
                .map(ToString::to_string)
                .or_else(|| std::env::var("GITHUB_SHA").ok().filter(|s| !s.is_empty()))
                .unwrap_or_else(|| "HEAD".into());
            let target = GithubTarget {
                api_url: runner.api_url.clone(),
                token: token.clone(),
                owner: owner.clone(),
                repo: repo.clone(),
                git_ref,
                environment: deployment_environment(req, service),
                production: req.environment == "production",
                environment_url,
                log_url: runner.run_url.clone(),
                service: service.to_string(),
                rollback: req.verb.rolls_back(),
            };
            if req.release_notes {
                match crate::report::release_notes::ReleaseNotes::new(&target) {
                    Ok(n) => external.notes = Some(n),
                    Err(e) => tracing::warn!("release notes disabled: {e}"),
                }
            }
            match GithubDeployments::start(target) {
                Ok(g) => external.github = Some(Arc::new(g)),
                Err(e) => tracing::warn!("GitHub deployments disabled: {e}"),
            }
        }
        if let Some(webhook) = &req.slack_webhook {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build();
            match http {
                Ok(http) => {
                    external.slack = Some(Arc::new(Slack::start(
                        webhook.clone(),
                        format!("{}/{service}", req.environment),
                        http,
                        req.verb.rolls_back(),
                    )));
                }
                Err(e) => tracing::warn!("Slack disabled: {e}"),
            }
        }
        external
    }

    fn reporters(&self) -> Vec<Arc<dyn Reporter + Send + Sync>> {
        let mut all: Vec<Arc<dyn Reporter + Send + Sync>> = Vec::new();
        if let Some(g) = &self.github {
            all.push(g.clone());
        }
        if let Some(s) = &self.slack {
            all.push(s.clone());
        }
        all
    }

    /// Wait (bounded) for queued GitHub statuses and Slack messages to be sent.
    async fn finish(&self) {
        let limit = Duration::from_secs(15);
        if let Some(g) = &self.github {
            g.finish(limit).await;
        }
        if let Some(s) = &self.slack {
            s.finish(limit).await;
        }
    }
}
