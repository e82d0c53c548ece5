//! The compiled trail: `build/<env>/<service>/` holds exactly what was deployed. Files are
//! written into a fresh temporary folder beside it and swapped in by rename, so a failure
//! never leaves a half-written trail.

use std::path::Path;

use serde::Serialize;

use super::{ConfigError, Loaded};

/// The resolved settings, as written to `settings.json`.
#[derive(Serialize)]
struct Resolved<'a> {
    env: &'a str,
    service: &'a str,
    version: Option<String>,
    image: Option<&'a str>,
    git_sha: Option<&'a str>,
    environment: &'a super::EnvironmentSettings,
    settings: &'a super::ServiceSettings,
    variables: &'a serde_json::Value,
}

/// Write `taskdef.json` (when there is one) and `settings.json` to the context's build dir.
/// Returns the paths written.
pub fn write_build(loaded: &Loaded) -> Result<Vec<std::path::PathBuf>, ConfigError> {
    let dir = &loaded.context.build_dir;
    let parent = dir.parent().unwrap_or(Path::new("."));
    let io = |what: &str, e: std::io::Error| ConfigError::new(dir, format!("cannot {what}: {e}"));
    std::fs::create_dir_all(parent).map_err(|e| io("create the build folder", e))?;
    let staging = tempfile::Builder::new()
        .prefix(".cutover-")
        .tempdir_in(parent)
        .map_err(|e| io("create a temporary folder", e))?;

    let mut files = Vec::new();
    if let Some(td) = &loaded.task_definition {
        files.push(("taskdef.json", pretty(&td.0)));
    }
    let ctx = &loaded.context;
    let resolved = Resolved {
        env: &ctx.env,
        service: &ctx.service,
        version: ctx.version.as_ref().map(ToString::to_string),
        image: ctx.image.as_deref(),
        git_sha: ctx.git_sha.as_deref(),
        environment: &loaded.environment,
        settings: &loaded.service,
        variables: &loaded.variables,
    };
    files.push(("settings.json", pretty(&resolved)));
    for (name, text) in &files {
        std::fs::write(staging.path().join(name), text)
            .map_err(|e| io(&format!("write {name}"), e))?;
    }

    // Swap: move the old trail aside, move the new one in, then drop the old one.
    let old = tempfile::Builder::new()
        .prefix(".cutover-old-")
        .tempdir_in(parent)
        .map_err(|e| io("create a temporary folder", e))?;
    let had_old = dir.exists();
    if had_old {
        std::fs::rename(dir, old.path().join("trail"))
            .map_err(|e| io("move the previous trail aside", e))?;
    }
    let staged = staging.keep();
    if let Err(e) = std::fs::rename(&staged, dir) {
        if had_old {
            let _ = std::fs::rename(old.path().join("trail"), dir);
        }
        let _ = std::fs::remove_dir_all(&staged);
        return Err(io("move the new trail in", e));
    }
    Ok(files.iter().map(|(name, _)| dir.join(name)).collect())
}

fn pretty<T: Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("JSON values always serialize");
    text.push('\n');
    text
}
