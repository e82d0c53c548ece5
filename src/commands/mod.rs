//! The library's entry point: plain request structs (built by `cli`) and `run`, which
//! dispatches to one module per verb. Data for the user goes to `out` (stdout in the
//! binary); logs go through `tracing` (stderr).

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

use crate::exit::ExitCode;
use crate::version::Version;
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
}

pub fn run(request: Request, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match request {
        Request::Build(req) => build::run(req, out),
        Request::Init(req) => init::run(&req, out),
        Request::Render(req) => render::run(&req, out),
        Request::Release(verb, req) => release::run(verb, &req, out),
        Request::Promote(req) => operate::promote(&req, out),
        Request::Rollback(req) => operate::rollback(&req, out),
        Request::Status(req) => status::run(&req, out),
        Request::Verify(target) => verify::run(&target, out),
        Request::Unlock(target) => operate::unlock(&target, out),
    }
}
