//! The `build` verb: resolve settings, authenticate with ECR, publish the image, and print
//! its reference by digest on stdout (the one line of data this verb outputs).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::Target;
use crate::aws::{self, AwsTarget, ecr::Ecr};
use crate::build::{self, BuildSpec, ImageJob, Registry};
use crate::config::settings::{EnvironmentSettings, ServiceSettings};
use crate::exit::{Coded, ExitCode};
use crate::version::Version;

#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub target: Target,
    pub version: Version,
    /// The commit being built (GITHUB_SHA); default: `git rev-parse HEAD`.
    pub git_sha: Option<String>,
    pub force_rebuild: bool,
}

pub fn run(request: BuildRequest) -> anyhow::Result<ExitCode> {
    let (env, service) = load_settings(&request.target)?;
    let git_sha = match request.git_sha.clone() {
        Some(sha) if !sha.trim().is_empty() => sha.trim().to_string(),
        _ => head_commit()?,
    };
    let repo_root = std::env::current_dir().context("reading the current directory")?;
    let image = &service.image;
    let spec = BuildSpec {
        context_dir: repo_root.join(&image.context),
        dockerfile: image.dockerfile.clone(),
        build_args: image.build_args.clone(),
        target: image.target.clone(),
        platform: image.platform.clone(),
        ..Default::default()
    };
    // Bad input fails before any AWS call.
    spec.validate()?;
    let job = ImageJob {
        spec,
        repository: image.repository.clone(),
        version: request.version,
        git_sha,
        source_url: source_url(),
        // The previous release comes from history, which `deploy` reads; a bare `build`
        // has none and builds without a cache image.
        previous_image: None,
        force_rebuild: request.force_rebuild,
    };
    let aws_target = AwsTarget {
        environment: request.target.env.clone(),
        region: env.region.clone(),
        profile: env.profile.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let published = runtime.block_on(async {
        let sdk = aws::load(&aws_target).await;
        let auth = Ecr::new(&sdk)
            .authorization()
            .await?
            .with_host(env.registry.as_deref());
        if std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") {
            let mut out = std::io::stdout().lock();
            for line in auth.github_masks() {
                writeln!(out, "{line}")?;
            }
            out.flush()?;
        }
        let registry = Registry::new(&auth)?;
        build::publish(&registry, &auth, job).await
    })?;
    writeln!(std::io::stdout().lock(), "{}", published.reference)?;
    Ok(ExitCode::Ok)
}

/// Stop-gap until `config::load` lands: the two settings files parsed as they are
/// (no template rendering, no variables). Replaced by the loader on merge.
fn load_settings(target: &Target) -> anyhow::Result<(EnvironmentSettings, ServiceSettings)> {
    fn read<T: serde::de::DeserializeOwned>(path: PathBuf) -> anyhow::Result<T> {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Coded::new(
                ExitCode::Usage,
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        toml::from_str(&text)
            .map_err(|e| Coded::new(ExitCode::Usage, format!("{}: {e}", path.display())).into())
    }
    let file =
        |kind: &str, name: &str, file: &str| target.config_dir.join(kind).join(name).join(file);
    let env = read(file("environments", &target.env, "environment.toml"))?;
    let service = read(file("services", &target.service, "service.toml"))?;
    Ok((env, service))
}

fn head_commit() -> anyhow::Result<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        _ => Err(Coded::new(
            ExitCode::Usage,
            "cannot tell which commit is being built: pass --git-sha (or GITHUB_SHA), or run inside the git repository",
        )
        .into()),
    }
}

/// `https://github.com/owner/repo` on GitHub Actions.
fn source_url() -> Option<String> {
    let server = std::env::var("GITHUB_SERVER_URL").ok()?;
    let repo = std::env::var("GITHUB_REPOSITORY").ok()?;
    Some(format!("{}/{repo}", server.trim_end_matches('/')))
}
