//! `[image] builder = "buildkit"` against the test dockerd. It runs with `--bridge=none`, so
//! BuildKit cannot give RUN steps a network: these builds COPY only (README, "Builders").

use std::path::Path;

use crate::build::{SHA_A, base64_of, build, registry_digest, stderr, stdout};
use crate::services::{Project, REGISTRY_PASSWORD, Services};

/// Sets `[image] builder` in a service.toml.
pub(crate) fn set_builder(service_toml: &Path, builder: &str) {
    let text = std::fs::read_to_string(service_toml).unwrap();
    let text = text.replacen(
        "[image]\n",
        &format!("[image]\nbuilder = \"{builder}\"\n"),
        1,
    );
    std::fs::write(service_toml, text).unwrap();
}

fn buildkit_app(dockerfile: &str) -> Option<(Services, Project)> {
    let services = Services::get()?;
    let project = Project::new(Some(&services.registry), "Dockerfile");
    set_builder(
        &project.root.join("deploy/services/web/service.toml"),
        "buildkit",
    );
    project.write("app/Dockerfile", dockerfile);
    // Unique content: nothing in BuildKit's cache from other tests can stand in for it.
    project.write("app/hello.txt", &project.repository);
    Some((services, project))
}

/// A registry blob or manifest, read with the test registry's credentials.
fn registry_get(services: &Services, path: &str, accept: &str) -> Vec<u8> {
    let out = std::process::Command::new("curl")
        .args(["-sf", "-u", &format!("AWS:{REGISTRY_PASSWORD}"), "-H"])
        .arg(format!("Accept: {accept}"))
        .arg(format!("http://{}/v2/{path}", services.registry))
        .output()
        .unwrap();
    assert!(out.status.success(), "GET {path}");
    out.stdout
}

#[test]
fn buildkit_builds_and_pushes_an_image_that_carries_its_own_cache() {
    let Some((services, project)) = buildkit_app("FROM scratch\nCOPY hello.txt /hello.txt\n")
    else {
        return;
    };
    let out = build(&services, &project, "v1.0.0", SHA_A)
        .env("CUTOVER_LOG", "trace")
        .arg("-vvv")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let repo = &project.repository;
    let digest = registry_digest(&services, repo, "v1.0.0").expect("the version tag was pushed");
    assert!(stdout(&out).trim().ends_with(&digest));

    // BuildKit's progress, streamed into the log like `--progress=plain`.
    assert!(err.contains("builder=BuildKit"), "{err}");
    assert!(
        err.lines()
            .any(|l| l.contains(" #") && l.ends_with("[1/1] COPY hello.txt /hello.txt")),
        "{err}"
    );
    assert!(err.contains(" DONE "), "{err}");
    assert!(!err.contains("Step 1/"), "not the classic builder: {err}");

    // BUILDKIT_INLINE_CACHE=1: the pushed image's config holds BuildKit's cache metadata.
    let manifest: serde_json::Value = serde_json::from_slice(&registry_get(
        &services,
        &format!("{repo}/manifests/{digest}"),
        "application/vnd.docker.distribution.manifest.v2+json",
    ))
    .unwrap();
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config: serde_json::Value = serde_json::from_slice(&registry_get(
        &services,
        &format!("{repo}/blobs/{config_digest}"),
        "*/*",
    ))
    .unwrap();
    assert!(
        config.get("moby.buildkit.cache.v0").is_some(),
        "no inline cache in {config}"
    );
    assert_eq!(
        config["config"]["Labels"]["org.opencontainers.image.revision"],
        SHA_A
    );

    // The session carries the registry credentials; they never reach the log.
    let token = base64_of(&format!("AWS:{REGISTRY_PASSWORD}"));
    for secret in [REGISTRY_PASSWORD, token.as_str()] {
        assert!(!err.contains(secret), "stderr leaks {secret}");
    }
}

#[test]
fn buildkit_a_failing_step_shows_the_step_and_its_error_and_exits_4() {
    let dockerfile = "FROM scratch\nCOPY hello.txt /hello.txt\nCOPY missing.txt /missing.txt\n";
    let Some((services, project)) = buildkit_app(dockerfile) else {
        return;
    };
    let out = build(&services, &project, "v1.0.0", SHA_A)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("error: the image build failed at `[2/2] COPY missing.txt /missing.txt`"),
        "{err}"
    );
    assert!(
        err.contains("\"/missing.txt\" not found"),
        "the daemon's reason: {err}"
    );
    assert_eq!(
        registry_digest(&services, &project.repository, "v1.0.0"),
        None,
        "nothing was pushed"
    );
}
