//! `cutover init`: scaffold a deploy/ folder.

use std::io::Write;

use super::InitRequest;
use crate::config::{Layout, scaffold};
use crate::exit::ExitCode;

pub fn run(req: &InitRequest, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let layout = Layout::new(&req.config_dir);
    let written = scaffold::init(
        &layout,
        &req.env,
        &req.service,
        req.from_terraform.as_deref(),
        req.worker.as_deref(),
    )?;
    for path in written {
        writeln!(out, "{}", path.display())?;
    }
    tracing::info!(
        "scaffolded {}/{}; try: cutover render --env {} --service {} --tag v0.1.0 --image REPO@sha256:…",
        req.env,
        req.service,
        req.env,
        req.service
    );
    Ok(ExitCode::Ok)
}
