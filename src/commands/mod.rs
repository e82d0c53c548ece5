//! The library's entry point: plain request structs (built by `cli`) and `run`.

mod build;

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

pub fn run(request: Request) -> anyhow::Result<ExitCode> {
    match request {
        Request::Build(r) => build::run(r),
        Request::Init(_) | Request::Render(_) => Err(Coded::new(ExitCode::Usage, "todo").into()),
        Request::Unimplemented(Unimplemented(verb)) => {
            Err(Coded::new(ExitCode::Usage, format!("not implemented yet: {verb}")).into())
        }
    }
}
