//! The Docker Engine side: connect, build from a streamed context with the classic builder,
//! tag, pull a cache image, push. Build output goes to the log line by line; a failure is
//! summarised as the failing step plus its last lines.
//!
//! Only the classic builder is driven. It supports: a Dockerfile anywhere inside the
//! context, build args, a target stage, `platform` (picks the base image's platform; no
//! cross-building), labels, and cache-from with images present in the daemon (cutover
//! pulls the previous release first). It does not support BuildKit syntax: `RUN --mount`
//! (cache, secret, ssh), heredocs, `# syntax=` frontends, multi-platform indexes or
//! registry cache export; such Dockerfiles fail with the daemon's parse error (exit 4).
//! bollard's `buildkit` feature (a gRPC session over the API) is not compiled in: it pulls
//! tonic, prost and the BuildKit protos: too heavy a compile until a Dockerfile needs it.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use anyhow::Context;
use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateImageOptionsBuilder, PushImageOptionsBuilder,
    TagImageOptionsBuilder,
};
use futures_util::StreamExt;
use secrecy::ExposeSecret;

use super::context::{self, ContextStats};
use super::{BuildSpec, RegistryAuth};
use crate::exit::{Coded, ExitCode};

/// bollard's default 120 s request timeout covers the whole build request, and the daemon
/// sends no response headers until it has read the entire context: a large context or a
/// long build would be cut off. A build gets this long instead.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3 * 3600);

/// Lines of build output kept to explain a failure.
const TAIL: usize = 20;

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

/// Builds `spec` and returns the image id. The first tag is given to the build; the rest
/// are added afterwards (the API takes one `t` per request in bollard).
pub async fn build(docker: &Docker, spec: &BuildSpec) -> anyhow::Result<String> {
    let ignore = spec.ignore_matcher()?;
    let (body, walk) = context::stream(spec.context_dir.clone(), ignore);
    let mut options = BuildImageOptionsBuilder::default()
        .dockerfile(&spec.dockerfile)
        .rm(true)
        .forcerm(true)
        .buildargs(
            &spec
                .build_args
                .clone()
                .into_iter()
                .collect::<HashMap<_, _>>(),
        )
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
    let stream = docker.build_image(options.build(), None, Some(bollard::body_try_stream(body)));
    let outcome = follow(stream).await;
    let walked = walk.await.context("the build context task panicked")?;
    let stats: ContextStats = match walked {
        Ok(stats) => stats,
        // The daemon answered before reading everything (e.g. a refused option): its
        // answer is the real cause, not the broken pipe it left behind.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe && outcome.is_err() => {
            return outcome;
        }
        Err(e) => {
            return Err(Coded::new(
                ExitCode::BuildFailed,
                format!("cannot send the build context: {e}"),
            )
            .into());
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

/// Logs the build output and returns the image id, or the failure explained.
async fn follow(
    mut stream: impl futures_util::Stream<
        Item = Result<bollard::models::BuildInfo, bollard::errors::Error>,
    > + Unpin,
) -> anyhow::Result<String> {
    let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL);
    let mut step: Option<String> = None;
    let mut id: Option<String> = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(text) = info.stream.as_deref() {
                    for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
                        tracing::info!(target: "cutover::build::output", "{line}");
                        if line.starts_with("Step ") {
                            step = Some(line.to_string());
                        }
                        if tail.len() == TAIL {
                            tail.pop_front();
                        }
                        tail.push_back(line.to_string());
                    }
                }
                if let Some(aux_id) = info.aux.and_then(|a| a.id) {
                    id = Some(aux_id);
                }
            }
            Err(e) => return Err(failure(step.as_deref(), &tail, &e.to_string())),
        }
    }
    id.ok_or_else(|| failure(step.as_deref(), &tail, "the daemon reported no image id"))
}

fn failure(step: Option<&str>, tail: &VecDeque<String>, error: &str) -> anyhow::Error {
    let error = error
        .trim()
        .trim_start_matches("Docker stream error: ")
        .trim_start_matches("Docker responded with status code ");
    let mut msg = match step {
        Some(step) => format!("the image build failed at `{step}`: {error}"),
        None => format!("the image build failed: {error}"),
    };
    if !tail.is_empty() {
        msg.push_str("\nlast build output:");
        for line in tail {
            msg.push_str("\n  ");
            msg.push_str(line);
        }
    }
    Coded::new(ExitCode::BuildFailed, msg).into()
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

fn credentials(auth: &RegistryAuth, host: &str) -> DockerCredentials {
    DockerCredentials {
        username: Some(auth.username.clone()),
        password: Some(auth.password.expose_secret().to_string()),
        serveraddress: Some(host.to_string()),
        ..Default::default()
    }
}

/// Pushes `reference` (host/repo:tag). Progress goes to the debug log.
pub async fn push(
    docker: &Docker,
    auth: &RegistryAuth,
    host: &str,
    reference: &str,
) -> anyhow::Result<()> {
    let (repo, tag) = split_reference(reference);
    let mut stream = docker.push_image(
        repo,
        Some(PushImageOptionsBuilder::default().tag(tag).build()),
        Some(credentials(auth, host)),
    );
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(status) = info.status {
                    tracing::debug!(target: "cutover::build::push", "{status}");
                }
            }
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "pushing {reference} failed: {e}. Check that the repository exists in ECR \
                     and that the AWS identity may push to it"
                ));
            }
        }
    }
    tracing::info!(reference, "pushed");
    Ok(())
}

/// Pulls an image to seed the classic builder's cache (it only uses local images).
/// Best effort: a missing previous image only makes the build slower.
pub async fn pull_for_cache(docker: &Docker, auth: &RegistryAuth, host: &str, reference: &str) {
    let options = CreateImageOptionsBuilder::default()
        .from_image(reference)
        .build();
    let mut stream = docker.create_image(Some(options), None, Some(credentials(auth, host)));
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            tracing::warn!(reference, error = %e, "cannot pull the cache image; building without it");
            return;
        }
    }
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
        let tail: VecDeque<String> = ["Step 2/2 : RUN false", " ---> Running in abc"]
            .map(String::from)
            .into();
        let msg = failure(
            Some("Step 2/2 : RUN false"),
            &tail,
            "Docker stream error: The command '/bin/sh -c false' returned a non-zero code: 1",
        )
        .to_string();
        assert!(msg.starts_with("the image build failed at `Step 2/2 : RUN false`: The command"));
        assert!(msg.contains("\n   ---> Running in abc"));
    }
}
