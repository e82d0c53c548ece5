//! The `build` verb: resolve settings, authenticate with ECR, publish the image, and print
//! its reference by digest on stdout (the one line of data this verb outputs). Also the
//! build phase shared with `stage`/`deploy`: the job, the live release's image as cache,
//! and publishing.

use std::io::Write;

use anyhow::Context as _;

use super::session::Session;
use super::{Io, Target};
use crate::aws::cloud::AwsCloud;
use crate::config::Loaded;
use crate::exit::{Coded, ExitCode};
use crate::image::{self, BuildSpec, ImageJob, Published, Registry};
use crate::ports::{Compute, Digest, PortResult, Reporter, Slot, Traffic};
use crate::version::Version;

#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub target: Target,
    pub version: Version,
    /// The commit being built (GITHUB_SHA); default: `git rev-parse HEAD`.
    pub git_sha: Option<String>,
    pub force_rebuild: bool,
}

pub fn run(request: BuildRequest, io: &mut Io<'_>) -> anyhow::Result<ExitCode> {
    io.outcome.version = Some(request.version.to_string());
    let git_sha = resolve_git_sha(request.git_sha.as_deref())?;
    let t = &request.target;
    let loaded = super::load::load_config(t, Some(&request.version), None, Some(&git_sha))?;
    let job = image_job(&loaded, &request.version, git_sha, request.force_rebuild)?;
    let published = super::session::runtime()?.block_on(async {
        let session = Session::open(t, loaded, &io.reporters).await?;
        build_in(&session, job, io.out).await
    })?;
    writeln!(io.out, "{}", published.reference)?;
    io.outcome.image = Some(published.reference.clone());
    io.outcome.digest = Some(published.digest.clone());
    io.outcome.status = Some(if published.built {
        super::OutcomeStatus::Built
    } else {
        super::OutcomeStatus::AlreadyBuilt
    });
    Ok(ExitCode::Ok)
}

/// The commit being built: `--git-sha`/GITHUB_SHA, else `git rev-parse HEAD`; it must fit
/// Docker's tag grammar because it becomes a tag.
pub fn resolve_git_sha(given: Option<&str>) -> anyhow::Result<String> {
    let sha = match given {
        Some(sha) if !sha.trim().is_empty() => sha.trim().to_string(),
        _ => head_commit()?,
    };
    check_tag_syntax(&sha)?;
    Ok(sha)
}

/// What to build for a loaded service. Bad build settings fail here, before any AWS call.
pub fn image_job(
    loaded: &Loaded,
    version: &Version,
    git_sha: String,
    force_rebuild: bool,
) -> anyhow::Result<ImageJob> {
    let repo_root = std::env::current_dir().context("reading the current directory")?;
    let image = &loaded.service.image;
    let spec = BuildSpec {
        context_dir: repo_root.join(&image.context),
        dockerfile: image.dockerfile.clone(),
        build_args: image.build_args.clone(),
        target: image.target.clone(),
        platform: image.platform.clone(),
        builder: image.builder,
        ..Default::default()
    };
    spec.validate()?;
    Ok(ImageJob {
        spec,
        repository: image.repository.clone(),
        version: version.clone(),
        git_sha,
        source_url: source_url(),
        force_rebuild,
    })
}

/// The image the live slot runs, as the build's cache (`[image] cache_from_previous`).
/// Best effort: when nothing is live, or the slots cannot be read, the build goes on
/// without a cache and says why.
pub async fn live_release_cache(cloud: &AwsCloud, loaded: &Loaded) -> Option<String> {
    if !loaded.service.image.cache_from_previous {
        return None;
    }
    let reference = match live_digest(cloud).await {
        Ok(Some(digest)) => cloud.image_reference(&digest).await.map(Some),
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    };
    match reference {
        Ok(Some(reference)) => {
            tracing::info!(%reference, "build cache: the live release's image");
            Some(reference)
        }
        Ok(None) => {
            tracing::info!("build cache: none (no release is live yet)");
            None
        }
        Err(e) => {
            tracing::warn!("build cache: none, cannot tell what is live: {e}");
            None
        }
    }
}

/// The digest the live slot runs: the slot with all production weight, or the larger share
/// mid-shift (either image is a good cache). None before the first release.
pub async fn live_digest<C: Traffic + Compute>(cloud: &C) -> PortResult<Option<Digest>> {
    let weights = cloud.production_weights().await?;
    let slot = match weights.blue.cmp(&weights.green) {
        std::cmp::Ordering::Greater => Slot::Blue,
        std::cmp::Ordering::Less => Slot::Green,
        std::cmp::Ordering::Equal => return Ok(None),
    };
    Ok(cloud
        .read_slot(slot)
        .await?
        .task_definition
        .map(|td| td.spec.digest))
}

/// The build phase of `build`, `stage` and `deploy`: the live release's image as cache,
/// then publish. A cancel stops it; nothing is deployed yet, so that is a safe point.
pub async fn build_in(
    session: &Session,
    job: ImageJob,
    out: &mut dyn Write,
) -> anyhow::Result<Published> {
    session
        .cancellable("the image build", async {
            let previous = live_release_cache(&session.cloud, &session.loaded);
            publish(&session.cloud, job, out, &session.reporter, previous).await
        })
        .await
}

/// ECR auth (masked under GitHub Actions before anything else is printed), then build and
/// push — or reuse what the registry already has.
async fn publish(
    cloud: &AwsCloud,
    job: ImageJob,
    out: &mut dyn Write,
    reporter: &dyn Reporter,
    previous: impl Future<Output = Option<String>>,
) -> anyhow::Result<Published> {
    let auth = cloud.registry_auth().await?;
    if std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") {
        for line in auth.github_masks() {
            writeln!(out, "{line}")?;
        }
        out.flush()?;
    }
    let registry = Registry::new(&auth)?;
    image::publish(&registry, &auth, job, reporter, previous).await
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

pub(super) fn head_commit() -> anyhow::Result<String> {
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
            assert_eq!(crate::commands::exit_code(&err), ExitCode::Usage, "{bad}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_cache_is_the_image_on_the_slot_with_production_traffic() {
        use crate::config::settings::OldSlotPolicy;
        use crate::ports::Weights;
        use crate::sim::{Faults, OLD, Sim, StrategyKind, digest, settings};
        let sim = Sim::new(
            4,
            Faults::default(),
            settings(StrategyKind::AllAtOnce, OldSlotPolicy::KeepWarm),
        );
        let cloud = sim.runner("build", None);
        assert_eq!(live_digest(&cloud).await.unwrap(), Some(digest(OLD)));
        // Mid-shift, the slot with the larger share; an even split names neither.
        cloud
            .set_production_weights(Weights::split(Slot::Green, 50))
            .await
            .unwrap();
        assert_eq!(live_digest(&cloud).await.unwrap(), None);
        cloud
            .set_production_weights(Weights::split(Slot::Blue, 90))
            .await
            .unwrap();
        assert_eq!(live_digest(&cloud).await.unwrap(), Some(digest(OLD)));
    }
}
