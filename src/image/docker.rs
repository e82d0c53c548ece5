//! The Docker Engine side: connect, pick the builder, build from a streamed context, tag,
//! pull a cache image, push. Build output goes to the log line by line; a failure is
//! summarised as the failing step plus its last lines (BuildKit's progress: `buildkit`).
//!
//! Both builders get the same context (the streamed tar, `.dockerignore` applied), the
//! Dockerfile path, build args, target stage, `platform` (selects the base image; no
//! cross-building), labels and cache-from.
//! - **classic**: cache-from only uses images present in the daemon (cutover pulls the
//!   live release's image first). BuildKit-only syntax (`RUN --mount`, heredocs,
//!   `# syntax=` frontends) fails with the daemon's parse error.
//! - **BuildKit** (bollard's `buildkit_providerless`: a gRPC session over the Engine API):
//!   the daemon's built-in Dockerfile frontend, so `RUN --mount=type=cache|bind|tmpfs`
//!   works; cache-from is read from the registry through the session's credentials, and
//!   `BUILDKIT_INLINE_CACHE=1` makes every pushed image usable as such a cache. The
//!   session serves only registry auth: secret and SSH mounts are not offered, and
//!   `# syntax=` frontends need the daemon to pull them. RUN needs the daemon's bridge
//!   network, which is why `auto` checks for one.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use anyhow::Context;
use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::models::{BuildInfoAux, ImageId};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, BuilderVersion, CreateImageOptionsBuilder, PushImageOptionsBuilder,
    TagImageOptionsBuilder,
};
use futures_util::StreamExt;
use secrecy::ExposeSecret;

use super::ImageError;
use super::context::{self, ContextStats};
use super::{BuildSpec, RegistryAuth, buildkit};
use crate::config::settings::ImageBuilder;

/// bollard's default 120 s request timeout covers the whole build request, and the daemon
/// sends no response headers until it has read the entire context: a large context or a
/// long build would be cut off. A build gets this long instead.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3 * 3600);

/// Lines of build output kept to explain a failure.
pub(super) const TAIL: usize = 20;

/// The oldest Engine API with BuildKit sessions outside experimental mode (Docker 18.09).
const BUILDKIT_MIN_API: (u32, u32) = (1, 39);

/// The builder a build runs on, once `[image] builder` is resolved against the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builder {
    Classic,
    BuildKit,
}

impl From<Builder> for ImageBuilder {
    fn from(builder: Builder) -> Self {
        match builder {
            Builder::Classic => ImageBuilder::Classic,
            Builder::BuildKit => ImageBuilder::Buildkit,
        }
    }
}

/// Connects to the daemon named by DOCKER_HOST (default: the local socket).
pub async fn connect() -> anyhow::Result<Docker> {
    let host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    connect_to(&host).await
}

/// Connects to `host` (`unix://…`, `tcp://…`) and agrees on an API version, so older
/// engines (e.g. Debian's 20.10) are spoken to in their version.
pub async fn connect_to(host: &str) -> anyhow::Result<Docker> {
    let docker = Docker::connect_with_host(host)
        .with_context(|| format!("cannot set up a Docker client for {host} (check DOCKER_HOST)"))?
        .with_timeout(REQUEST_TIMEOUT);
    docker.negotiate_version().await.with_context(|| {
        format!("cannot reach the Docker daemon at {host} (is it running? is DOCKER_HOST right?)")
    })
}

/// Resolves `[image] builder`: `auto` is BuildKit when the daemon is Linux, speaks API 1.39
/// or later and has a bridge network (BuildKit runs RUN steps on it; a daemon started with
/// `--bridge=none` cannot), else classic. An explicit choice is taken as given.
pub async fn choose_builder(docker: &Docker, wanted: ImageBuilder) -> Builder {
    match wanted {
        ImageBuilder::Classic => Builder::Classic,
        ImageBuilder::Buildkit => Builder::BuildKit,
        ImageBuilder::Auto => match buildkit_unusable(docker).await {
            None => {
                tracing::info!("builder: BuildKit (the daemon supports it)");
                Builder::BuildKit
            }
            Some(why) => {
                tracing::info!("builder: classic, because {why}");
                Builder::Classic
            }
        },
    }
}

/// Why BuildKit cannot run on this daemon, if it cannot.
async fn buildkit_unusable(docker: &Docker) -> Option<String> {
    let version = match docker.version().await {
        Ok(version) => version,
        Err(e) => return Some(format!("the daemon's version is unknown ({e})")),
    };
    let os = version.os.unwrap_or_default();
    if !os.eq_ignore_ascii_case("linux") {
        return Some(format!("the daemon runs on {os}, not Linux"));
    }
    let api = version.api_version.unwrap_or_default();
    if parse_api_version(&api).is_none_or(|v| v < BUILDKIT_MIN_API) {
        return Some(format!("the daemon's API version {api} is older than 1.39"));
    }
    match docker.inspect_network("bridge", None).await {
        Ok(net) if net.driver.as_deref() == Some("bridge") => None,
        _ => Some(
            "the daemon has no bridge network, which BuildKit's RUN steps need \
             (dockerd --bridge=none?); set [image] builder = \"buildkit\" to use it anyway"
                .into(),
        ),
    }
}

fn parse_api_version(api: &str) -> Option<(u32, u32)> {
    let (major, minor) = api.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Builds `spec` and returns the image id. The first tag is given to the build; the rest
/// are added afterwards (the API takes one `t` per request in bollard). `auth` lets
/// BuildKit read cache-from images from the registry.
pub async fn build(
    docker: &Docker,
    spec: &BuildSpec,
    auth: Option<&RegistryAuth>,
) -> anyhow::Result<String> {
    let builder = choose_builder(docker, spec.builder).await;
    let ignore = spec.ignore_matcher()?;
    let mut build_args: HashMap<String, String> = spec.build_args.clone().into_iter().collect();
    if builder == Builder::BuildKit {
        // Cache metadata in the image itself, so the pushed image can seed the next build.
        build_args
            .entry("BUILDKIT_INLINE_CACHE".into())
            .or_insert_with(|| "1".into());
    }
    let mut options = BuildImageOptionsBuilder::default()
        .dockerfile(&spec.dockerfile)
        .rm(true)
        .forcerm(true)
        .buildargs(&build_args)
        .labels(&spec.labels.clone().into_iter().collect::<HashMap<_, _>>());
    if let Some(tag) = spec.tags.first() {
        options = options.t(tag);
    }
    if let Some(target) = &spec.target {
        options = options.target(target);
    }
    if let Some(platform) = &spec.platform {
        options = options.platform(platform);
    }
    if !spec.cache_from.is_empty() {
        options = options.cachefrom(&spec.cache_from);
    }
    let (body, walk) = context::stream(spec.context_dir.clone(), ignore);
    let body = Some(bollard::body_try_stream(body));
    let outcome = match builder {
        Builder::Classic => follow(docker.build_image(options.build(), None, body)).await,
        Builder::BuildKit => {
            let options = options
                .version(BuilderVersion::BuilderBuildKit)
                .session(&buildkit::session_id());
            let credentials = auth.map(|a| HashMap::from([(a.host.clone(), credentials(a))]));
            buildkit::follow(docker.build_image(options.build(), credentials, body)).await
        }
    };
    let walked = walk.await.context("the build context task panicked")?;
    let stats: ContextStats = match walked {
        Ok(stats) => stats,
        // The daemon answered before reading everything (e.g. a refused option): its
        // answer is the real cause, not the broken pipe it left behind.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe && outcome.is_err() => {
            return outcome;
        }
        Err(e) => {
            return Err(ImageError::Failed(format!("cannot send the build context: {e}")).into());
        }
    };
    tracing::info!(
        files = stats.files,
        bytes = stats.bytes,
        "build context sent"
    );
    let id = outcome?;
    for tag in spec.tags.iter().skip(1) {
        tag_image(docker, &id, tag).await?;
    }
    Ok(id)
}

/// Logs the classic builder's output and returns the image id, or the failure explained.
async fn follow(
    mut stream: impl futures_util::Stream<
        Item = Result<bollard::models::BuildInfo, bollard::errors::Error>,
    > + Unpin,
) -> anyhow::Result<String> {
    let mut tail = Tail::default();
    let mut step: Option<String> = None;
    let mut id: Option<String> = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(text) = info.stream.as_deref() {
                    for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
                        tracing::info!(target: "cutover::image::output", "{line}");
                        if line.starts_with("Step ") {
                            step = Some(line.to_string());
                        }
                        tail.push(line);
                    }
                }
                if let Some(BuildInfoAux::Default(ImageId { id: Some(aux_id) })) = info.aux {
                    id = Some(aux_id);
                }
            }
            Err(e) => return Err(failure(step.as_deref(), &tail, &e.to_string())),
        }
    }
    id.ok_or_else(|| failure(step.as_deref(), &tail, "the daemon reported no image id"))
}

/// The last [`TAIL`] lines of some build output.
#[derive(Debug, Default)]
pub(super) struct Tail(VecDeque<String>);

impl Tail {
    pub(super) fn push(&mut self, line: &str) {
        if self.0.len() == TAIL {
            self.0.pop_front();
        }
        self.0.push_back(line.to_string());
    }
}

/// A failed build: the step, the daemon's error, the last lines (exit 4).
pub(super) fn failure(step: Option<&str>, tail: &Tail, error: &str) -> anyhow::Error {
    let error = error
        .trim()
        .trim_start_matches("Docker stream error: ")
        .trim_start_matches("Docker responded with status code ");
    let mut msg = match step {
        Some(step) => format!("the image build failed at `{step}`: {error}"),
        None => format!("the image build failed: {error}"),
    };
    if !tail.0.is_empty() {
        msg.push_str("\nlast build output:");
        for line in &tail.0 {
            msg.push_str("\n  ");
            msg.push_str(line);
        }
    }
    ImageError::Failed(msg).into()
}

async fn tag_image(docker: &Docker, id: &str, reference: &str) -> anyhow::Result<()> {
    let (repo, tag) = split_reference(reference);
    docker
        .tag_image(
            id,
            Some(
                TagImageOptionsBuilder::default()
                    .repo(repo)
                    .tag(tag)
                    .build(),
            ),
        )
        .await
        .with_context(|| format!("tagging the image as {reference}"))
}

fn credentials(auth: &RegistryAuth) -> DockerCredentials {
    DockerCredentials {
        username: Some(auth.username.clone()),
        password: Some(auth.password.expose_secret().to_string()),
        serveraddress: Some(auth.host.clone()),
        ..Default::default()
    }
}

/// Pushes `reference` (host/repo:tag). Progress goes to the debug log; a refusal says
/// which registry and repository, and what to check.
pub async fn push(docker: &Docker, auth: &RegistryAuth, reference: &str) -> anyhow::Result<()> {
    let (repo, tag) = split_reference(reference);
    let mut stream = docker.push_image(
        repo,
        Some(PushImageOptionsBuilder::default().tag(tag).build()),
        Some(credentials(auth)),
    );
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(status) = info.status {
                    tracing::debug!(target: "cutover::image::push", "{status}");
                }
            }
            Err(e) => return Err(push_failure(auth, reference, &e.to_string())),
        }
    }
    tracing::info!(reference, "pushed");
    Ok(())
}

/// What a failed push means, from the daemon's message (moby relays the registry's error
/// code: `unauthorized`, `denied`, `name unknown`, or the connection error).
fn push_failure(auth: &RegistryAuth, reference: &str, error: &str) -> anyhow::Error {
    let error = auth.redact(
        error
            .trim()
            .trim_start_matches("Docker stream error: ")
            .trim_start_matches("Docker responded with status code "),
    );
    let host = &auth.host;
    let repository = split_reference(reference)
        .0
        .strip_prefix(&format!("{host}/"))
        .unwrap_or(reference)
        .to_string();
    let lower = error.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    let what_to_do = if has(&[
        "unauthorized",
        "authentication required",
        "denied",
        "forbidden",
    ]) {
        format!(
            "The registry {host} refused the ECR credentials for repository {repository}: \
             check that the AWS identity may push to it (ecr:InitiateLayerUpload, \
             ecr:UploadLayerPart, ecr:CompleteLayerUpload, ecr:PutImage) and that `registry` \
             in environment.toml names the right host"
        )
    } else if has(&["name unknown", "does not exist", "repository not found"]) {
        format!(
            "The registry {host} has no repository {repository}: create it (terraform/ does) \
             or fix [image] repository in service.toml"
        )
    } else if has(&[
        "connection refused",
        "no such host",
        "i/o timeout",
        "connection reset",
        ": eof",
        "no route to host",
        "tls handshake",
    ]) {
        format!(
            "The Docker daemon could not reach the registry {host}: check that it is up and \
             reachable from the daemon (network, proxy, `registry` in environment.toml), then \
             re-run"
        )
    } else {
        format!(
            "The registry {host} refused repository {repository}: check that the repository \
             exists, accepts this tag (an immutable repository refuses to overwrite one) and \
             that the AWS identity may push to it"
        )
    };
    ImageError::Failed(format!("pushing {reference} failed: {error}\n{what_to_do}")).into()
}

/// Pulls an image to seed the classic builder's cache (it only uses local images).
/// Best effort: a missing or unreachable image only makes the build slower.
pub async fn pull_for_cache(docker: &Docker, auth: &RegistryAuth, reference: &str) {
    let options = CreateImageOptionsBuilder::default()
        .from_image(reference)
        .build();
    let mut stream = docker.create_image(Some(options), None, Some(credentials(auth)));
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            let error = auth.redact(&e.to_string());
            tracing::warn!(reference, %error, "cannot pull the cache image; building without it");
            return;
        }
    }
    tracing::info!(reference, "pulled the cache image");
}

/// `host:port/repo:tag` → (`host:port/repo`, `tag`). A digest reference has no tag.
pub fn split_reference(reference: &str) -> (&str, &str) {
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(i) => (
            &reference[..last_slash + i],
            &reference[last_slash + i + 1..],
        ),
        None => (reference, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_references_with_registry_ports() {
        assert_eq!(
            split_reference("127.0.0.1:5000/web:v1.2.3"),
            ("127.0.0.1:5000/web", "v1.2.3")
        );
        assert_eq!(split_reference("web"), ("web", "latest"));
    }

    #[test]
    fn a_failure_names_the_step_and_the_last_lines() {
        let mut tail = Tail::default();
        tail.push("Step 2/2 : RUN false");
        tail.push(" ---> Running in abc");
        let msg = failure(
            Some("Step 2/2 : RUN false"),
            &tail,
            "Docker stream error: The command '/bin/sh -c false' returned a non-zero code: 1",
        )
        .to_string();
        assert!(msg.starts_with("the image build failed at `Step 2/2 : RUN false`: The command"));
        assert!(msg.contains("\n   ---> Running in abc"));
    }

    #[test]
    fn api_versions_compare_numerically() {
        assert_eq!(parse_api_version("1.41"), Some((1, 41)));
        assert!(parse_api_version("1.9").unwrap() < BUILDKIT_MIN_API);
        assert!(parse_api_version("1.100").unwrap() > BUILDKIT_MIN_API);
        assert_eq!(parse_api_version("garbage"), None);
    }

    fn auth() -> RegistryAuth {
        crate::image::test_auth("127.0.0.1:5000", "s3cret", "QVdTOnMzY3JldA==")
    }

    #[test]
    fn a_refused_push_names_registry_and_repository_and_never_the_password() {
        let msg = push_failure(
            &auth(),
            "127.0.0.1:5000/web:v1",
            "Docker stream error: unauthorized: authentication required for s3cret",
        );
        assert!(matches!(msg.downcast_ref(), Some(ImageError::Failed(_))));
        let msg = msg.to_string();
        assert!(
            msg.starts_with("pushing 127.0.0.1:5000/web:v1 failed: unauthorized"),
            "{msg}"
        );
        assert!(
            msg.contains("refused the ECR credentials for repository web"),
            "{msg}"
        );
        assert!(!msg.contains("s3cret"), "{msg}");
    }

    #[test]
    fn an_unreachable_registry_is_told_apart_from_a_refusal() {
        let msg = push_failure(
            &auth(),
            "127.0.0.1:5000/web:v1",
            "Get \"http://127.0.0.1:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection refused",
        )
        .to_string();
        assert!(
            msg.contains("could not reach the registry 127.0.0.1:5000"),
            "{msg}"
        );
        let msg = push_failure(
            &auth(),
            "127.0.0.1:5000/web:v1",
            "name unknown: repository name not known to registry",
        )
        .to_string();
        assert!(msg.contains("has no repository web"), "{msg}");
    }
}
