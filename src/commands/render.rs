//! `cutover render`: compile a service's task definition and settings into
//! `build/<env>/<service>/`, the trail of exactly what a deploy would register.

use std::io::Write;

use super::RenderRequest;
use crate::config::{self, Context, Layout};
use crate::exit::ExitCode;

pub fn run(req: &RenderRequest, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let t = &req.target;
    let context = Context {
        env: t.env.clone(),
        service: t.service.clone(),
        version: Some(req.version.clone()),
        image: Some(req.image.clone()),
        git_sha: Some(req.git_sha.clone()),
        build_dir: req.build_root.join(&t.env).join(&t.service),
    };
    let loaded = config::load(&Layout::new(&t.config_dir), context)?;
    for path in config::write_build(&loaded)? {
        writeln!(out, "{}", path.display())?;
    }
    Ok(ExitCode::Ok)
}
