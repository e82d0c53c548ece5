//! The release image (`ImageJob`): turn the repository at a tag into an image in ECR, by digest.
//! The plan is: ask the registry whether the version tag exists (then reuse it, never
//! rebuild), else build with the Docker Engine from a streamed context (BuildKit or the
//! classic builder, seeded with the live release's image), push the version and git-sha
//! tags, and read the pushed digest back from the registry. Every failure from the lookup
//! on is a build failure (exit 4), with the ECR secrets scrubbed from its message.

mod buildkit;
pub mod context;
pub mod docker;
pub mod dockerignore;
mod prebuilt;
pub mod registry;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use secrecy::SecretString;

use crate::config::settings::ImageBuilder;
use crate::ports::{Reporter, Status, StatusEvent};
use crate::version::Version;
pub use prebuilt::PrebuiltImage;
pub use registry::Registry;

/// Credentials for one registry host, from ECR's authorization token.
#[derive(Debug, Clone)]
pub struct RegistryAuth {
    /// The host pushed to and pulled from, e.g. `1234.dkr.ecr.eu-west-1.amazonaws.com`.
    pub host: String,
    pub username: String,
    /// The decoded password. Never logged.
    pub password: SecretString,
    /// The raw token (base64 of `user:password`). Never logged.
    pub token: SecretString,
}

impl RegistryAuth {
    /// Points the credentials at another host (environment.toml `registry`): a local
    /// registry in the sandbox, or a PrivateLink DNS name for ECR.
    pub fn with_host(mut self, host: Option<&str>) -> Self {
        if let Some(host) = host {
            self.host = host.trim_end_matches('/').to_string();
        }
        self
    }

    /// `::add-mask::` workflow commands for both secrets, so GitHub redacts them from
    /// every later log line. The caller writes them to stdout before anything else.
    pub fn github_masks(&self) -> [String; 2] {
        use secrecy::ExposeSecret;
        [
            format!("::add-mask::{}", self.password.expose_secret()),
            format!("::add-mask::{}", self.token.expose_secret()),
        ]
    }

    /// `text` with the password and the token blanked out: for messages that come from
    /// the daemon or the registry, which cutover does not control.
    pub fn redact(&self, text: &str) -> String {
        use secrecy::ExposeSecret;
        let mut text = text.to_string();
        for secret in [self.password.expose_secret(), self.token.expose_secret()] {
            if !secret.is_empty() {
                text = text.replace(secret, "[redacted]");
            }
        }
        text
    }

    /// `err` as a build failure unless it is bad input, its message redacted. The chain is
    /// flattened into the message, as `main` would print it.
    pub fn build_failure(&self, err: anyhow::Error) -> anyhow::Error {
        let message = self.redact(&format!("{err:#}"));
        let input = err
            .chain()
            .any(|c| matches!(c.downcast_ref(), Some(ImageError::Input(_))));
        if input {
            ImageError::Input(message).into()
        } else {
            ImageError::Failed(message).into()
        }
    }
}

/// Why an image could not be published: the build settings or `--image` are wrong
/// (nothing was tried), or the build, the push or the registry failed (nothing was
/// deployed and the version tag was not pushed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Failed(String),
}

/// One build: the inputs of `docker build`, with paths resolved.
#[derive(Debug, Clone, Default)]
pub struct BuildSpec {
    pub context_dir: PathBuf,
    /// Relative to `context_dir`, `/`-separated.
    pub dockerfile: String,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub platform: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Images whose layers may be reused: present in the daemon for the classic builder,
    /// in the registry for BuildKit.
    pub cache_from: Vec<String>,
    /// Full references (`host/repo:tag`); the first is given to the build.
    pub tags: Vec<String>,
    /// `[image] builder`; `auto` is resolved against the daemon when the build starts.
    pub builder: ImageBuilder,
}

impl BuildSpec {
    /// Bad input is a usage error that names the path, before anything talks to AWS.
    pub fn validate(&self) -> anyhow::Result<()> {
        let usage = |msg: String| -> anyhow::Error { ImageError::Input(msg).into() };
        if !self.context_dir.is_dir() {
            return Err(usage(format!(
                "the build context {} is not a directory (image.context in service.toml)",
                self.context_dir.display()
            )));
        }
        let rel = Path::new(&self.dockerfile);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| c == std::path::Component::ParentDir)
        {
            return Err(usage(format!(
                "the Dockerfile {} must be a path inside the build context {} (image.dockerfile)",
                self.dockerfile,
                self.context_dir.display()
            )));
        }
        let path = self.context_dir.join(rel);
        if !path.is_file() {
            return Err(usage(format!(
                "no Dockerfile at {} (image.dockerfile is relative to image.context)",
                path.display()
            )));
        }
        Ok(())
    }

    /// The context's `.dockerignore`, with the Dockerfile and itself always kept.
    pub fn ignore_matcher(&self) -> anyhow::Result<dockerignore::Matcher> {
        let path = self.context_dir.join(".dockerignore");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        dockerignore::Matcher::parse(&text)
            .and_then(|m| m.keep_build_files(&self.dockerfile))
            .map_err(|e| ImageError::Input(format!("{}: {e}", path.display())).into())
    }
}

/// What to publish and from which commit.
#[derive(Debug, Clone)]
pub struct ImageJob {
    /// Context, Dockerfile, args, target, platform. Tags and OCI labels are filled in here.
    pub spec: BuildSpec,
    /// Repository name in the registry (not the URI).
    pub repository: String,
    pub version: Version,
    pub git_sha: String,
    /// `org.opencontainers.image.source`, e.g. the GitHub repository URL.
    pub source_url: Option<String>,
    pub force_rebuild: bool,
}

/// The result: what gets deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// `host/repo@sha256:…`
    pub reference: String,
    pub digest: String,
    /// False when the registry already had this version and nothing was built or pushed.
    pub built: bool,
}

/// Publishes `job` to the registry `auth` names: reuse, or build + push, then resolve.
/// Bad input is a usage error (exit 2); anything else that fails is a build failure (4).
/// `reporter` hears Building and Pushing, the lifecycle's first steps. `previous` finds the
/// image the live slot runs (`host/repo@sha256:…`) to seed the build cache; it is awaited
/// only when there is something to build (finding it reads the slots and the registry).
pub async fn publish(
    registry: &Registry,
    auth: &RegistryAuth,
    job: ImageJob,
    reporter: &dyn Reporter,
    previous: impl Future<Output = Option<String>>,
) -> anyhow::Result<Published> {
    job.spec.validate()?;
    build_and_push(registry, auth, job, reporter, previous)
        .await
        .map_err(|e| auth.build_failure(e))
}

async fn build_and_push(
    registry: &Registry,
    auth: &RegistryAuth,
    job: ImageJob,
    reporter: &dyn Reporter,
    previous: impl Future<Output = Option<String>>,
) -> anyhow::Result<Published> {
    let step = |status: Status, detail: String| {
        reporter.status(&StatusEvent {
            status,
            version: Some(job.version.clone()),
            slot: None,
            detail,
        });
    };
    let host = &auth.host;
    let repo = &job.repository;
    let version_tag = job.version.image_tag();
    let version_ref = format!("{host}/{repo}:{version_tag}");
    let by_digest = |digest: &str| format!("{host}/{repo}@{digest}");

    if let Some(digest) = registry.digest(repo, &version_tag).await? {
        let revision = registry.revision(repo, &digest).await?;
        match registry::check_same_revision(&version_ref, revision.as_deref(), &job.git_sha) {
            Ok(()) => {
                tracing::info!(reference = %version_ref, %digest, "the registry already has this version; nothing to build or push");
                return Ok(Published {
                    reference: by_digest(&digest),
                    digest,
                    built: false,
                });
            }
            Err(e) if !job.force_rebuild => return Err(e),
            Err(e) => tracing::warn!("{e:#}; rebuilding because of --force-rebuild"),
        }
    }

    let mut spec = job.spec.clone();
    spec.labels.extend(oci_labels(&job));
    spec.tags = vec![
        version_ref.clone(),
        format!("{host}/{repo}:{}", job.git_sha),
    ];
    let docker = docker::connect().await?;
    let builder = docker::choose_builder(&docker, spec.builder).await;
    spec.builder = builder.into();
    if let Some(previous) = &previous.await {
        // BuildKit reads the cache from the registry itself; the classic builder only
        // uses what the daemon holds.
        if builder == docker::Builder::Classic {
            docker::pull_for_cache(&docker, auth, previous).await;
        }
        spec.cache_from.push(previous.clone());
    }
    tracing::info!(reference = %version_ref, ?builder, "building");
    step(
        Status::Building,
        format!("{version_ref} with the {builder:?} builder"),
    );
    docker::build(&docker, &spec, Some(auth)).await?;
    step(Status::Pushing, format!("to {host}/{repo}"));
    // The version tag goes last: once it exists, the git-sha tag does too, so a re-run that
    // finds the version tag has nothing left to do.
    for tag in spec.tags.iter().rev() {
        docker::push(&docker, auth, tag).await?;
    }
    let digest = registry
        .digest(repo, &version_tag)
        .await?
        .with_context(|| format!("pushed {version_ref}, but the registry does not list it"))?;
    Ok(Published {
        reference: by_digest(&digest),
        digest,
        built: true,
    })
}

/// The OCI annotations every image carries: where it came from and when.
fn oci_labels(job: &ImageJob) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    if let Some(source) = &job.source_url {
        labels.insert("org.opencontainers.image.source".into(), source.clone());
    }
    labels.insert(registry::REVISION_LABEL.into(), job.git_sha.clone());
    labels.insert(
        "org.opencontainers.image.version".into(),
        job.version.to_string(),
    );
    labels.insert(
        "org.opencontainers.image.created".into(),
        crate::clock::rfc3339(crate::clock::wall_now()),
    );
    labels
}

/// Credentials for unit tests, with recognisable secrets.
#[cfg(test)]
pub(crate) fn test_auth(host: &str, password: &str, token: &str) -> RegistryAuth {
    RegistryAuth {
        host: host.into(),
        username: "AWS".into(),
        password: password.to_string().into(),
        token: token.to_string().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_dockerfile_is_a_usage_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let spec = BuildSpec {
            context_dir: dir.path().to_path_buf(),
            dockerfile: "docker/Dockerfile".into(),
            ..Default::default()
        };
        let err = spec.validate().unwrap_err();
        assert!(
            matches!(err.downcast_ref(), Some(ImageError::Input(_))),
            "{err}"
        );
        assert!(err.to_string().contains("docker/Dockerfile"), "{err}");
        let outside = BuildSpec {
            dockerfile: "../Dockerfile".into(),
            ..spec
        };
        assert!(outside.validate().is_err());
    }

    #[test]
    fn masks_cover_password_and_token() {
        let auth = test_auth("h", "pw", "tok");
        assert_eq!(auth.github_masks(), ["::add-mask::pw", "::add-mask::tok"]);
        assert!(!format!("{auth:?}").contains("pw"));
    }

    #[test]
    fn a_build_failure_is_a_failure_without_the_secrets_and_keeps_bad_input_as_such() {
        let auth = test_auth("h", "pw-123", "tok-456");
        let err = auth.build_failure(
            anyhow::anyhow!("the daemon said pw-123 and tok-456").context("pushing h/web:v1"),
        );
        assert!(
            matches!(err.downcast_ref(), Some(ImageError::Failed(_))),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "pushing h/web:v1: the daemon said [redacted] and [redacted]"
        );
        let usage = auth.build_failure(ImageError::Input("bad pw-123".into()).into());
        assert_eq!(
            usage.downcast_ref(),
            Some(&ImageError::Input("bad [redacted]".into()))
        );
    }
}
