//! `cutover action`: the GitHub Action's entry point. The runner passes the inputs of
//! action.yml as `INPUT_*` environment variables (read by clap, never through a shell);
//! this runs the chosen verb for each service with GitHub deployments, Slack, workflow
//! groups and annotations, then writes the job summary and the step outputs.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::session::{load_config, owner, runtime};
use super::{
    Io, Outcome, PromoteRequest, ReleaseRequest, Request, RollbackRequest, StatusRequest, Target,
    Verb,
};
use crate::exit::{Coded, ExitCode};
use crate::ports::{Reporter, Status, StatusEvent};
use crate::report::github::{GithubDeployments, GithubTarget};
use crate::report::slack::Slack;
use crate::report::summary::{self, RunSummary};
use crate::report::timeline::Timeline;
use crate::report::workflow::WorkflowCommands;
use crate::version::Version;

/// The action's inputs as the runner passes them: every declared input is set, and an
/// input left empty arrives as "" (read here as "not given").
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub command: Option<String>,
    pub environment: Option<String>,
    pub services: Option<String>,
    pub config_dir: Option<String>,
    pub tag: Option<String>,
    pub image: Option<String>,
    pub rollback: Option<String>,
    pub strategy: Option<String>,
    pub github_token: Option<String>,
    pub slack_webhook: Option<String>,
    pub dry_run: Option<String>,
    pub release_notes: Option<String>,
}

/// What the action was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionVerb {
    Deploy,
    Build,
    Stage,
    Promote,
    /// `rollback: true` (None) or `rollback: v1.2.3`.
    Rollback(Option<Version>),
    Status,
    Verify,
}

impl ActionVerb {
    fn name(&self) -> &'static str {
        match self {
            ActionVerb::Deploy => "deploy",
            ActionVerb::Build => "build",
            ActionVerb::Stage => "stage",
            ActionVerb::Promote => "promote",
            ActionVerb::Rollback(_) => "rollback",
            ActionVerb::Status => "status",
            ActionVerb::Verify => "verify",
        }
    }

    /// Verbs that change what runs, so they get a GitHub deployment and Slack messages.
    fn deploys(&self) -> bool {
        matches!(
            self,
            ActionVerb::Deploy | ActionVerb::Stage | ActionVerb::Promote | ActionVerb::Rollback(_)
        )
    }
}

#[derive(Debug, Clone)]
pub struct ActionRequest {
    pub verb: ActionVerb,
    pub config_dir: PathBuf,
    pub environment: String,
    pub services: Vec<String>,
    pub version: Option<Version>,
    pub image: Option<String>,
    pub strategy: Option<String>,
    pub github_token: Option<SecretString>,
    pub slack_webhook: Option<SecretString>,
    pub dry_run: bool,
    pub release_notes: bool,
}

fn usage(input: &str, problem: impl std::fmt::Display) -> anyhow::Error {
    Coded::new(
        ExitCode::Usage,
        format!("action input `{input}`: {problem}"),
    )
    .into()
}

fn flag(input: &str, value: Option<&str>) -> anyhow::Result<bool> {
    match value.map(str::trim) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(usage(input, format!("`{other}` is not true or false"))),
    }
}

impl ActionRequest {
    /// Check the inputs; `github_ref` is the runner's GITHUB_REF (the default tag).
    pub fn from_inputs(inputs: Inputs, github_ref: Option<String>) -> anyhow::Result<Self> {
        let given = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let rollback = given(inputs.rollback).filter(|r| r != "false");
        let verb = match (rollback, given(inputs.command).as_deref()) {
            (Some(r), _) if r == "true" => ActionVerb::Rollback(None),
            (Some(v), _) => ActionVerb::Rollback(Some(Version::parse(&v).map_err(|e| {
                usage(
                    "rollback",
                    format!("{e}; use `true` or a version such as v1.2.3"),
                )
            })?)),
            (None, None | Some("deploy")) => ActionVerb::Deploy,
            (None, Some("build")) => ActionVerb::Build,
            (None, Some("stage")) => ActionVerb::Stage,
            (None, Some("promote")) => ActionVerb::Promote,
            (None, Some("rollback")) => ActionVerb::Rollback(None),
            (None, Some("status")) => ActionVerb::Status,
            (None, Some("verify")) => ActionVerb::Verify,
            (None, Some(other)) => {
                return Err(usage(
                    "command",
                    format!(
                        "`{other}` is not one of deploy, build, stage, promote, rollback, status, verify"
                    ),
                ));
            }
        };
        let environment = given(inputs.environment).ok_or_else(|| {
            usage(
                "environment",
                "required: name a folder under <config-dir>/environments/",
            )
        })?;
        let services: Vec<String> = given(inputs.services)
            .unwrap_or_default()
            .split([',', '\n', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if services.is_empty() {
            return Err(usage(
                "services",
                "required: name one or more folders under <config-dir>/services/, comma separated",
            ));
        }
        let needs_tag = matches!(
            verb,
            ActionVerb::Deploy | ActionVerb::Build | ActionVerb::Stage | ActionVerb::Promote
        );
        let version = match given(inputs.tag).or_else(|| given(github_ref)) {
            Some(tag) if needs_tag => Some(
                Version::parse(&tag)
                    .map_err(|e| usage("tag", format!("{e}; run on a tag push or set `tag`")))?,
            ),
            None if needs_tag => {
                return Err(usage(
                    "tag",
                    "no tag: run on a `v*` tag push, or set `tag: v1.2.3`",
                ));
            }
            _ => None,
        };
        let image = given(inputs.image);
        if let Some(image) = &image {
            crate::build::PrebuiltImage::parse(image).map_err(|e| usage("image", e))?;
        }
        let strategy = given(inputs.strategy);
        if let Some(kind) = &strategy {
            crate::config::settings::Strategy::default()
                .with_kind(kind)
                .map_err(|e| usage("strategy", e))?;
        }
        Ok(Self {
            verb,
            config_dir: PathBuf::from(given(inputs.config_dir).unwrap_or_else(|| "deploy".into())),
            environment,
            services,
            version,
            image,
            strategy,
            github_token: given(inputs.github_token).map(SecretString::from),
            slack_webhook: given(inputs.slack_webhook).map(SecretString::from),
            dry_run: flag(
                "dry-run",
                inputs.dry_run.as_deref().filter(|s| !s.trim().is_empty()),
            )?,
            release_notes: flag(
                "release-notes",
                inputs
                    .release_notes
                    .as_deref()
                    .filter(|s| !s.trim().is_empty()),
            )?,
        })
    }

    fn target(&self, service: &str) -> Target {
        Target {
            config_dir: self.config_dir.clone(),
            env: self.environment.clone(),
            service: service.to_string(),
            strategy: self.strategy.clone(),
        }
    }

    /// The CLI request for one service.
    fn request(&self, service: &str) -> Request {
        let target = self.target(service);
        let version = self.version.clone();
        let release = |version: Version| ReleaseRequest {
            target: target.clone(),
            version,
            image: self.image.clone(),
            git_sha: std::env::var("GITHUB_SHA").ok().filter(|s| !s.is_empty()),
            force_rebuild: false,
            dry_run: self.dry_run,
        };
        let tagged = || {
            version
                .clone()
                .expect("checked in from_inputs: the verb has a tag")
        };
        match &self.verb {
            ActionVerb::Deploy => Request::Release(Verb::Deploy, release(tagged())),
            ActionVerb::Stage => Request::Release(Verb::Stage, release(tagged())),
            ActionVerb::Build => Request::Build(super::BuildRequest {
                target,
                version: tagged(),
                git_sha: std::env::var("GITHUB_SHA").ok().filter(|s| !s.is_empty()),
                force_rebuild: false,
            }),
            ActionVerb::Promote => Request::Promote(PromoteRequest {
                target,
                version: tagged(),
                dry_run: self.dry_run,
            }),
            ActionVerb::Rollback(to) => Request::Rollback(RollbackRequest {
                target,
                to: to.clone(),
                dry_run: self.dry_run,
            }),
            ActionVerb::Status => Request::Status(StatusRequest {
                target,
                json: false,
            }),
            ActionVerb::Verify => Request::Verify(target),
        }
    }
}

/// Where the runner wants results: the files behind `$GITHUB_OUTPUT` and
/// `$GITHUB_STEP_SUMMARY`, and the run's coordinates for links and deployments.
struct Runner {
    output: Option<PathBuf>,
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

/// One service's run: what it did and how it ended.
struct ServiceRun {
    service: String,
    outcome: Outcome,
    result: anyhow::Result<ExitCode>,
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
    let mut runs = Vec::new();
    for service in &req.services {
        let run = run_service(req, service, &runner, &rt, out);
        let failed = run.result.is_err();
        runs.push(run);
        if failed {
            // Later services keep what they run: a failed release stops the rollout.
            break;
        }
    }
    write_outputs(&runner, &runs)?;
    let mut first_error = None;
    for run in runs {
        if let Err(e) = run.result {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(ExitCode::Ok),
    }
}

fn run_service(
    req: &ActionRequest,
    service: &str,
    runner: &Runner,
    rt: &tokio::runtime::Runtime,
    out: &mut dyn Write,
) -> ServiceRun {
    let heading = format!("{}/{service}", req.environment);
    let timeline = Timeline::default();
    let workflow = Arc::new(WorkflowCommands::new(
        Box::new(std::io::stdout()),
        heading.clone(),
    ));
    let external = if req.verb.deploys() && !req.dry_run {
        External::start(req, service, runner, rt)
    } else {
        External::default()
    };
    let mut io = Io::new(out);
    io.full_outcome = true;
    io.reporters.push(Arc::new(timeline.clone()));
    io.reporters.push(workflow.clone());
    io.reporters.extend(external.reporters());
    if req.verb.deploys() && !req.dry_run {
        // GitHub shows the deployment as queued and Slack says it started before the
        // first real step (a build can take minutes). Not in the log: the build's
        // `::add-mask::` lines must come before anything else there.
        let queued = StatusEvent {
            status: Status::Pending,
            version: req.version.clone(),
            slot: None,
            detail: format!("cutover {} started", req.verb.name()),
        };
        timeline.status(&queued);
        for r in external.reporters() {
            r.status(&queued);
        }
    }
    let result = super::run_with(req.request(service), &mut io);
    let mut outcome = io.outcome;
    let last = timeline.entries().last().map(|e| e.event.status);
    match &result {
        Ok(_) => {
            if req.release_notes
                && outcome.status.as_deref() == Some("Promoted")
                && let Some(notes) = &external.notes
            {
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
        }
        Err(e) => {
            let code = crate::exit::code_for(e);
            let cancelled = code == ExitCode::Cancelled;
            let step = last.map_or_else(|| "start".to_string(), |s| s.to_string());
            outcome.status = Some(if cancelled {
                "Cancelled".into()
            } else {
                match last {
                    Some(s @ (Status::RolledBack | Status::RollbackFailed)) => s.to_string(),
                    _ => Status::Failed.to_string(),
                }
            });
            workflow.annotate(
                "error",
                &format!("cutover {} {heading} failed at {step}", req.verb.name()),
                &format!("{e:#}"),
            );
            // The engine reports its own failures; anything that stopped before it (bad
            // config, a failed build) still has to end the GitHub deployment.
            if !matches!(
                last,
                Some(Status::Failed | Status::RolledBack | Status::RollbackFailed)
            ) {
                let event = StatusEvent {
                    status: Status::Failed,
                    version: req.version.clone(),
                    slot: None,
                    detail: if cancelled {
                        "cancelled".into()
                    } else {
                        format!("{e:#}")
                    },
                };
                for r in external.reporters() {
                    r.status(&event);
                }
            }
        }
    }
    workflow.end();
    rt.block_on(external.finish());
    let entries = timeline.entries();
    if let Some(path) = &runner.summary {
        let md = summary::markdown(&RunSummary {
            verb: req.verb.name(),
            environment: &req.environment,
            service,
            from_version: outcome.previous_version.clone(),
            to_version: outcome.version.clone(),
            image: outcome.image.clone(),
            final_status: outcome.status.clone(),
            entries: &entries,
        });
        if let Err(e) = summary::append_summary(path, &md) {
            tracing::warn!("writing the job summary to {}: {e}", path.display());
        }
    }
    ServiceRun {
        service: service.to_string(),
        outcome,
        result,
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
                environment: req.environment.clone(),
                environment_url,
                log_url: runner.run_url.clone(),
                service: service.to_string(),
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

/// The step outputs: one service's values as they are; with several services, one
/// `service=value` line each.
fn write_outputs(runner: &Runner, runs: &[ServiceRun]) -> anyhow::Result<()> {
    let Some(path) = &runner.output else {
        return Ok(());
    };
    let outcomes: Vec<(&str, &Outcome)> = runs
        .iter()
        .map(|r| (r.service.as_str(), &r.outcome))
        .collect();
    summary::append_outputs(path, &output_values(&outcomes))
        .map_err(|e| anyhow::anyhow!("writing step outputs to {}: {e}", path.display()))
}

/// action.yml's outputs: one service's values as they are; with several, one
/// `service=value` line each, in the order the services ran.
fn output_values(runs: &[(&str, &Outcome)]) -> Vec<(&'static str, String)> {
    let field = |o: &Outcome, name: &str| -> Option<String> {
        match name {
            "version" => o.version.clone(),
            "image" => o.image.clone(),
            "digest" => o.digest.clone(),
            "task-definition-arn" => o.task_definition_arn.clone(),
            "live-slot" => o.live_slot.clone(),
            "previous-version" => o.previous_version.clone(),
            _ => o.status.clone(),
        }
    };
    let names = [
        "version",
        "image",
        "digest",
        "task-definition-arn",
        "live-slot",
        "previous-version",
        "status",
    ];
    names
        .into_iter()
        .map(|name| {
            let value = match runs {
                [(_, one)] => field(one, name).unwrap_or_default(),
                many => many
                    .iter()
                    .map(|(service, o)| format!("{service}={}", field(o, name).unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join("\n"),
            };
            (name, value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Inputs {
        Inputs {
            command: Some("deploy".into()),
            environment: Some("production".into()),
            services: Some("web".into()),
            config_dir: Some("deploy".into()),
            tag: Some(String::new()),
            image: Some(String::new()),
            rollback: Some(String::new()),
            strategy: Some(String::new()),
            github_token: Some(String::new()),
            slack_webhook: Some(String::new()),
            dry_run: Some("false".into()),
            release_notes: Some("false".into()),
        }
    }

    #[test]
    fn empty_inputs_are_unset_and_the_tag_comes_from_github_ref() {
        let req = ActionRequest::from_inputs(inputs(), Some("refs/tags/v1.4.0".into())).unwrap();
        assert_eq!(req.verb, ActionVerb::Deploy);
        assert_eq!(req.version.unwrap().to_string(), "v1.4.0");
        assert!(req.github_token.is_none() && req.image.is_none() && !req.dry_run);
    }

    #[test]
    fn rollback_input_wins_over_command() {
        let mut i = inputs();
        i.rollback = Some("true".into());
        let req = ActionRequest::from_inputs(i.clone(), None).unwrap();
        assert_eq!(req.verb, ActionVerb::Rollback(None));
        i.rollback = Some("v1.2.0".into());
        let req = ActionRequest::from_inputs(i, None).unwrap();
        assert_eq!(
            req.verb,
            ActionVerb::Rollback(Some(Version::parse("v1.2.0").unwrap()))
        );
    }

    #[test]
    fn services_split_on_commas_and_lines() {
        let mut i = inputs();
        i.services = Some("web, api\nworker".into());
        let req = ActionRequest::from_inputs(i, Some("v1.0.0".into())).unwrap();
        assert_eq!(req.services, ["web", "api", "worker"]);
    }

    #[test]
    fn outputs_are_plain_for_one_service_and_per_service_lines_for_several() {
        let web = Outcome {
            version: Some("v1.2.0".into()),
            status: Some("Promoted".into()),
            live_slot: Some("green".into()),
            ..Outcome::default()
        };
        let api = Outcome {
            version: Some("v1.2.0".into()),
            status: Some("Failed".into()),
            ..Outcome::default()
        };
        let one = output_values(&[("web", &web)]);
        assert!(one.contains(&("status", "Promoted".to_string())), "{one:?}");
        assert!(one.contains(&("digest", String::new())), "{one:?}");
        let two = output_values(&[("web", &web), ("api", &api)]);
        assert!(
            two.contains(&("status", "web=Promoted\napi=Failed".to_string())),
            "{two:?}"
        );
        assert!(
            two.contains(&("live-slot", "web=green\napi=".to_string())),
            "{two:?}"
        );
        assert_eq!(two.len(), 7, "every output of action.yml");
    }

    /// The keys of a top-level mapping of action.yml (`inputs:` or `outputs:`).
    fn action_yml_keys(section: &str) -> Vec<String> {
        let yml = include_str!("../../action.yml");
        let mut keys: Vec<String> = yml
            .lines()
            .skip_while(|l| *l != format!("{section}:"))
            .skip(1)
            .take_while(|l| l.is_empty() || l.starts_with(' ') || l.starts_with('#'))
            .filter_map(|l| l.strip_prefix("  "))
            .filter(|l| !l.starts_with(' ') && !l.starts_with('#'))
            .filter_map(|l| l.strip_suffix(':'))
            .map(str::to_string)
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn action_yml_declares_what_the_binary_reads_and_writes() {
        use clap::CommandFactory;
        let cli = crate::cli::Cli::command();
        let action = cli.find_subcommand("action").expect("the action verb");
        let mut read: Vec<String> = action
            .get_arguments()
            .filter_map(|a| a.get_env())
            .filter_map(|e| e.to_str()?.strip_prefix("INPUT_").map(str::to_lowercase))
            .collect();
        read.sort();
        assert_eq!(action_yml_keys("inputs"), read);
        let mut written: Vec<String> = output_values(&[("web", &Outcome::default())])
            .into_iter()
            .map(|(name, _)| name.to_string())
            .collect();
        written.sort();
        assert_eq!(action_yml_keys("outputs"), written);
    }

    /// An input name and how to break it.
    type BadInput = (&'static str, Box<dyn Fn(&mut Inputs)>);

    #[test]
    fn bad_inputs_name_the_input_and_are_usage_errors() {
        let cases: Vec<BadInput> = vec![
            ("command", Box::new(|i| i.command = Some("ship".into()))),
            (
                "environment",
                Box::new(|i| i.environment = Some(" ".into())),
            ),
            ("services", Box::new(|i| i.services = Some(",".into()))),
            ("tag", Box::new(|i| i.tag = Some("main".into()))),
            (
                "rollback",
                Box::new(|i| i.rollback = Some("yesterday".into())),
            ),
            ("image", Box::new(|i| i.image = Some("repo:latest".into()))),
            (
                "strategy",
                Box::new(|i| i.strategy = Some("big-bang".into())),
            ),
            ("dry-run", Box::new(|i| i.dry_run = Some("yes".into()))),
            (
                "release-notes",
                Box::new(|i| i.release_notes = Some("1".into())),
            ),
        ];
        for (input, edit) in cases {
            let mut i = inputs();
            i.tag = Some("v1.0.0".into());
            edit(&mut i);
            let err = ActionRequest::from_inputs(i, None).unwrap_err();
            assert_eq!(crate::exit::code_for(&err), ExitCode::Usage, "{input}");
            assert!(
                err.to_string().contains(&format!("`{input}`")),
                "{input}: {err}"
            );
        }
        let mut i = inputs();
        i.tag = None;
        let err = ActionRequest::from_inputs(i, None).unwrap_err();
        assert!(err.to_string().contains("`tag`"), "{err}");
    }
}
