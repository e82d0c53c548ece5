//! The library's entry point: plain request structs (built by `cli`) and `run`, which
//! dispatches to one module per verb. Data for the user goes to `out` (stdout in the
//! binary); logs go through `tracing` (stderr).

pub mod action;
mod build;
mod cleanup;
mod codes;
mod deploy;
mod diff;
mod init;
mod load;
mod promote;
mod render;
mod rollback;
mod session;
mod signals;
mod simulate;
mod status;
mod train;
mod train_release;
mod unlock;
mod verify;
mod versions;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::config::settings::StrategyKind;
use crate::exit::ExitCode;
use crate::ports::{Reporter, Status};
use crate::version::Version;
pub use action::ActionRequest;
pub use build::BuildRequest;
pub use cleanup::CleanupRequest;
pub use codes::{error_text, exit_code};
pub use deploy::{ReleaseRequest, Verb};
pub use promote::PromoteRequest;
pub use rollback::RollbackRequest;
pub use simulate::SimulateRequest;
pub use status::StatusRequest;

/// Which environment/service a request is about, and where its config lives.
#[derive(Debug, Clone)]
pub struct Target {
    pub config_dir: PathBuf,
    pub env: String,
    pub service: String,
    /// Overrides service.toml's `strategy.kind` for this run (`--strategy`, the action's
    /// `strategy` input).
    pub strategy: Option<StrategyKind>,
}

/// Where a verb's results go: data for the user (`out`, stdout in the binary), reporters
/// beside the console timeline (the action adds GitHub, Slack and its own timeline), and
/// the outcome the action turns into step outputs.
pub struct Io<'a> {
    pub out: &'a mut dyn Write,
    pub reporters: Vec<Arc<dyn Reporter + Send + Sync>>,
    pub outcome: Outcome,
    /// Fill the parts of the outcome that cost an extra read (the previous version); only
    /// the action asks, so plain CLI runs make no call they do not need.
    pub full_outcome: bool,
    /// Reporters of one member of a train only, by service (the action's GitHub deployment,
    /// Slack thread and timeline per service), beside `reporters`.
    pub by_member: Vec<(String, Vec<Arc<dyn Reporter + Send + Sync>>)>,
    /// A train's members as they ended, one outcome each (the action's per-service outputs
    /// and the job summary's train table).
    pub members: Vec<MemberEnd>,
}

/// How one member of a train ended.
#[derive(Debug, Clone, Default)]
pub struct MemberEnd {
    pub service: String,
    pub outcome: Outcome,
    /// What happened to it, in one line (the train's table).
    pub detail: String,
    /// Seconds from the train's start to this member's end (None: a build, not a train).
    pub seconds: Option<u64>,
}

impl<'a> Io<'a> {
    pub fn new(out: &'a mut dyn Write) -> Self {
        Self {
            out,
            reporters: Vec::new(),
            outcome: Outcome::default(),
            full_outcome: false,
            by_member: Vec::new(),
            members: Vec::new(),
        }
    }

    /// The reporters of `service` alone (none outside a train run by the action).
    fn member_reporters(&self, service: &str) -> Vec<Arc<dyn Reporter + Send + Sync>> {
        self.by_member
            .iter()
            .filter(|(s, _)| s == service)
            .flat_map(|(_, r)| r.iter().cloned())
            .collect()
    }
}

/// What a verb did, as far as it got: filled as the verb goes, so a failed run still
/// tells which image and version it was about. Names match action.yml's outputs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Outcome {
    pub version: Option<String>,
    pub image: Option<String>,
    pub digest: Option<String>,
    pub task_definition_arn: Option<String>,
    pub live_slot: Option<String>,
    pub previous_version: Option<String>,
    pub status: Option<OutcomeStatus>,
    /// The train run a member's release belongs to (see `TrainOutcome::id`).
    pub train_id: Option<String>,
    /// What a stage or deploy changes against the live slot, for the job summary; no output.
    #[serde(skip)]
    pub diff: Option<String>,
}

/// How a verb ended, as the action's `status` output spells it: a lifecycle status for the
/// verbs that move a release, or what the other verbs did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeStatus {
    Lifecycle(Status),
    /// `plan` or a dry run: nothing was changed.
    Planned,
    Built,
    /// The registry already had the image: build and push skipped.
    AlreadyBuilt,
    Verified,
    /// `cleanup --apply` removed what nothing references.
    Cleaned,
    /// Stopped by a signal at a safe point.
    Cancelled,
}

impl From<Status> for OutcomeStatus {
    fn from(status: Status) -> Self {
        OutcomeStatus::Lifecycle(status)
    }
}

impl std::fmt::Display for OutcomeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutcomeStatus::Lifecycle(status) => status.fmt(f),
            other => write!(f, "{other:?}"),
        }
    }
}

impl Serialize for OutcomeStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[derive(Debug, Clone)]
pub struct InitRequest {
    pub config_dir: PathBuf,
    pub env: String,
    pub service: String,
    pub from_terraform: Option<PathBuf>,
    /// The worker's ECS service (`init --worker`).
    pub worker: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RenderRequest {
    pub target: Target,
    pub version: Version,
    pub image: String,
    pub git_sha: String,
    pub build_root: PathBuf,
}

#[derive(Debug, Clone)]
pub enum Request {
    Init(InitRequest),
    Render(RenderRequest),
    Build(BuildRequest),
    Release(Verb, ReleaseRequest),
    Promote(PromoteRequest),
    Rollback(RollbackRequest),
    Status(StatusRequest),
    Simulate(SimulateRequest),
    Verify(Target),
    Unlock(Target),
    Cleanup(CleanupRequest),
    Action(ActionRequest),
}

/// A dry run's end: the engine's plan printed for the user; nothing was changed.
fn print_plan(
    io: &mut Io<'_>,
    plan: &dyn std::fmt::Display,
    production: crate::ports::Weights,
) -> anyhow::Result<ExitCode> {
    write!(io.out, "{plan}")?;
    io.outcome.status = Some(OutcomeStatus::Planned);
    io.outcome.live_slot = production.live().map(|s| s.to_string());
    Ok(ExitCode::Ok)
}

pub fn run(request: Request, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match request {
        Request::Action(req) => action::run(&req, out),
        other => run_with(other, &mut Io::new(out)),
    }
}

/// Run one verb with `io`'s reporters, filling `io.outcome`.
pub fn run_with(request: Request, io: &mut Io<'_>) -> anyhow::Result<ExitCode> {
    match request {
        Request::Build(req) => match train::services(&req.target)? {
            Some(services) => train_release::build(&req, services, io),
            None => build::run(req, io),
        },
        Request::Init(req) => init::run(&req, io.out),
        Request::Render(req) => render::run(&req, io.out),
        Request::Release(verb, req) => match train::services(&req.target)? {
            Some(services) => train_release::release(verb, &req, services, io),
            None => deploy::run(verb, &req, io),
        },
        Request::Promote(req) => match train::services(&req.target)? {
            Some(services) => train::promote(&req, services, io),
            None => promote::run(&req, io),
        },
        Request::Rollback(req) => match train::services(&req.target)? {
            Some(services) => train::rollback(&req, services, io),
            None => rollback::run(&req, io),
        },
        Request::Status(req) => match train::services(&req.target)? {
            // A worker alone reads as one service (one JSON object).
            Some(services) if services.len() > 1 => status::run_each(&req, &services, io),
            _ => status::run(&req, io),
        },
        Request::Simulate(req) => simulate::run(&req, io.out),
        Request::Verify(target) => verify::run(&target, io),
        Request::Unlock(target) => unlock::run(&target, io),
        Request::Cleanup(req) => cleanup::run(&req, io),
        Request::Action(_) => anyhow::bail!("the action cannot run inside the action"),
    }
}
