//! The compiled config for a verb: environment and service settings, with the run's
//! version, image and commit, and the strategy override applied.

use std::path::PathBuf;

use super::Target;
use crate::config::{self, Context, Layout, Loaded};
use crate::version::Version;

/// The compiled config for a verb: version and image when the verb has them.
pub fn load_config(
    target: &Target,
    version: Option<&Version>,
    image: Option<&str>,
    git_sha: Option<&str>,
) -> anyhow::Result<Loaded> {
    let context = Context {
        env: target.env.clone(),
        service: target.service.clone(),
        version: version.cloned(),
        image: image.map(str::to_string),
        git_sha: git_sha.map(str::to_string),
        build_dir: PathBuf::from("build")
            .join(&target.env)
            .join(&target.service),
    };
    let mut loaded = config::load(&Layout::new(&target.config_dir), context)?;
    if let Some(kind) = target.strategy {
        loaded.service.strategy = loaded.service.strategy.with_kind(kind);
    }
    Ok(loaded)
}
