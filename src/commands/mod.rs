//! The library's entry point: plain request structs (built by `cli`) and `run`, which
//! dispatches to one module per verb. Data for the user goes to `out` (stdout in the
//! binary); logs go through `tracing` (stderr).

pub mod action;
mod build;
mod init;
mod operate;
mod release;
mod render;
mod session;
mod status;
mod verify;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::exit::ExitCode;
use crate::ports::Reporter;
use crate::version::Version;
pub use action::ActionRequest;
pub use build::BuildRequest;
pub use operate::{PromoteRequest, RollbackRequest};
pub use release::{ReleaseRequest, Verb};
pub use session::ReadOnly;
pub use status::StatusRequest;

/// Which environment/service a request is about, and where its config lives.
#[derive(Debug, Clone)]
pub struct Target {
    pub config_dir: PathBuf,
    pub env: String,
    pub service: String,
    /// Overrides service.toml's `strategy.kind` for this run (the action's `strategy`
    /// input): all-at-once, canary or linear.
    pub strategy: Option<String>,
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
}

impl<'a> Io<'a> {
    pub fn new(out: &'a mut dyn Write) -> Self {
        Self {
            out,
            reporters: Vec::new(),
            outcome: Outcome::default(),
            full_outcome: false,
        }
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
    pub status: Option<String>,
}

#[derive(Debug, Clone)]
pub struct InitRequest {
    pub config_dir: PathBuf,
    pub env: String,
    pub service: String,
    pub from_terraform: Option<PathBuf>,
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
    Verify(Target),
    Unlock(Target),
    Action(ActionRequest),
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
        Request::Build(req) => build::run(req, io),
        Request::Init(req) => init::run(&req, io.out),
        Request::Render(req) => render::run(&req, io.out),
        Request::Release(verb, req) => release::run(verb, &req, io),
        Request::Promote(req) => operate::promote(&req, io),
        Request::Rollback(req) => operate::rollback(&req, io),
        Request::Status(req) => status::run(&req, io),
        Request::Verify(target) => verify::run(&target, io),
        Request::Unlock(target) => operate::unlock(&target, io),
        Request::Action(_) => anyhow::bail!("the action cannot run inside the action"),
    }
}
