//! The library's entry point: plain request structs (built by `cli`) and `run`, which
//! dispatches to one module per verb. Data for the user goes to `out` (stdout in the
//! binary); logs go through `tracing` (stderr).

mod build;
mod init;
mod render;

use std::io::Write;
use std::path::PathBuf;

use crate::exit::{Coded, ExitCode};
use crate::version::Version;
pub use build::BuildRequest;

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

/// A verb whose implementation has not landed yet. Running it is an error, never a fake success.
#[derive(Debug, Clone)]
pub struct Unimplemented(pub &'static str);

#[derive(Debug, Clone)]
pub enum Request {
    Init(InitRequest),
    Render(RenderRequest),
    Build(BuildRequest),
    Unimplemented(Unimplemented),
}

pub fn run(request: Request, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match request {
        Request::Build(req) => build::run(req, out),
        Request::Init(req) => init::run(&req, out),
        Request::Render(req) => render::run(&req, out),
        Request::Unimplemented(Unimplemented(verb)) => Err(Coded::new(
            ExitCode::Usage,
            format!("not implemented yet: {verb} (see README.md, \"Commands\", for what is built)"),
        )
        .into()),
    }
}
