//! The `build` verb: resolve settings, authenticate with ECR, publish the image, and print
//! its reference by digest on stdout (the one line of data this verb outputs).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;

use super::Target;
use crate::aws::{self, AwsTarget, ecr::Ecr};
use crate::build::{self, BuildSpec, ImageJob, Registry};
use crate::config::{self, Context, Layout};
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

pub fn run(request: BuildRequest, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let git_sha = match request.git_sha.clone() {
        Some(sha) if !sha.trim().is_empty() => sha.trim().to_string(),
        _ => head_commit()?,
    };
    check_tag_syntax(&git_sha)?;
    let t = &request.target;
    let context = Context {
        env: t.env.clone(),
        service: t.service.clone(),
        version: Some(request.version.clone()),
        // The image is what this verb produces; settings do not depend on it.
        image: None,
        git_sha: Some(git_sha.clone()),
        build_dir: PathBuf::from("build").join(&t.env).join(&t.service),
    };
    let loaded = config::load(&Layout::new(&t.config_dir), context)?;
    let (env, service) = (loaded.environment, loaded.service);
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
            for line in auth.github_masks() {
                writeln!(out, "{line}")?;
            }
            out.flush()?;
        }
        let registry = Registry::new(&auth)?;
        build::publish(&registry, &auth, job).await
    })?;
    writeln!(out, "{}", published.reference)?;
    Ok(ExitCode::Ok)
}

/// The commit becomes an image tag, so it must fit Docker's tag grammar.
fn check_tag_syntax(sha: &str) -> anyhow::Result<()> {
    let ok = (1..=128).contains(&sha.len())
        && !sha.starts_with(['.', '-'])
        && sha
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Coded::new(
            ExitCode::Usage,
            format!("--git-sha `{sha}` cannot be an image tag: use the commit's hex id"),
        )
        .into())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_must_fit_dockers_tag_grammar() {
        check_tag_syntax("0123456789abcdef0123456789abcdef01234567").unwrap();
        for bad in ["", "-x", ".x", "a/b", "a:b", &"a".repeat(129)] {
            let err = check_tag_syntax(bad).unwrap_err();
            assert_eq!(crate::exit::code_for(&err), ExitCode::Usage, "{bad}");
        }
    }
}
