//! `cutover build` against a real dockerd, an htpasswd registry and moto's ECR API.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::services::{BUSYBOX_IMAGE, Project, REGISTRY_PASSWORD, Services, cutover_bin};

const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SHA_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn simple_app(services: &Services) -> Project {
    let project = Project::new(Some(&services.registry), "Dockerfile");
    project.write(
        "app/Dockerfile",
        "FROM scratch\nCOPY hello.txt /hello.txt\n",
    );
    project.write("app/hello.txt", "hello\n");
    project
}

fn build(services: &Services, project: &Project, tag: &str, sha: &str) -> assert_cmd::Command {
    let mut cmd = services.cutover(project);
    cmd.args([
        "build",
        "-e",
        "sandbox",
        "-s",
        "web",
        "-t",
        tag,
        "--git-sha",
        sha,
    ]);
    cmd
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Daemon events between two instants that mention `needle` (a unique repository name):
/// a build ends with a tag event for it, a push with a push event.
fn events_mentioning(services: &Services, since: f64, until: f64, needle: &str) -> Vec<String> {
    let dir = std::env::temp_dir();
    services
        .docker_ok(
            &[
                "events",
                "--since",
                &format!("{since:.6}"),
                "--until",
                &format!("{until:.6}"),
                "--format",
                "{{json .}}",
            ],
            &dir,
        )
        .lines()
        .filter(|l| l.contains(needle))
        .map(String::from)
        .collect()
}

/// The digest the registry holds for `repo:tag`, asked the way the daemon would.
fn registry_digest(services: &Services, repo: &str, tag: &str) -> Option<String> {
    let out = std::process::Command::new("curl")
        .args(["-s", "-I", "-u", &format!("AWS:{REGISTRY_PASSWORD}"), "-H"])
        .arg("Accept: application/vnd.docker.distribution.manifest.v2+json")
        .arg(format!(
            "http://{}/v2/{repo}/manifests/{tag}",
            services.registry
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("docker-content-digest: ")
            .map(|d| d.trim().to_string())
    })
}

#[test]
fn build_pushes_both_tags_and_prints_the_digest_then_a_rerun_builds_and_pushes_nothing() {
    let Some(services) = Services::get() else {
        return;
    };
    let project = simple_app(&services);
    let repo = &project.repository;

    let t0 = now();
    let out = build(&services, &project, "v1.2.3", SHA_A)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let reference = stdout(&out).trim().to_string();
    let digest = registry_digest(&services, repo, "v1.2.3").expect("the version tag was pushed");
    assert_eq!(reference, format!("{}/{repo}@{digest}", services.registry));
    assert_eq!(
        registry_digest(&services, repo, SHA_A).as_deref(),
        Some(digest.as_str()),
        "the git-sha tag points at the same image"
    );
    std::thread::sleep(Duration::from_millis(1100));
    let t1 = now();
    assert!(
        !events_mentioning(&services, t0, t1, repo).is_empty(),
        "the first run's build and push show up as daemon events"
    );

    // The re-run may not touch the daemon at all: point it at a socket that does not exist.
    let started = Instant::now();
    let out = build(&services, &project, "v1.2.3", SHA_A)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), reference);
    assert!(elapsed < Duration::from_secs(2), "re-run took {elapsed:?}");
    std::thread::sleep(Duration::from_millis(1100));
    let t2 = now();
    assert_eq!(
        events_mentioning(&services, t1, t2, repo),
        Vec::<String>::new(),
        "no build or push happened on the re-run"
    );
}

#[test]
fn a_version_built_from_another_commit_is_refused_unless_forced() {
    let Some(services) = Services::get() else {
        return;
    };
    let project = simple_app(&services);
    build(&services, &project, "v2.0.0", SHA_A)
        .assert()
        .success();
    let first = registry_digest(&services, &project.repository, "v2.0.0").unwrap();

    let out = build(&services, &project, "v2.0.0", SHA_B)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(SHA_A) && err.contains(SHA_B), "{err}");
    assert!(err.contains("--force-rebuild"), "{err}");

    let out = build(&services, &project, "v2.0.0", SHA_B)
        .arg("--force-rebuild")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let second = registry_digest(&services, &project.repository, "v2.0.0").unwrap();
    assert_ne!(first, second);
    assert!(stdout(&out).trim().ends_with(&second));
}

#[test]
fn a_failing_run_step_shows_the_step_and_its_last_lines_and_exits_4() {
    let Some(services) = Services::get() else {
        return;
    };
    let base = services.busybox_image();
    let project = Project::new(Some(&services.registry), "Dockerfile");
    project.write(
        "app/Dockerfile",
        &format!("FROM {base}\nRUN echo preparing\nRUN echo about-to-fail && exit 3\n"),
    );
    let out = build(&services, &project, "v0.1.0", SHA_A)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        // The classic builder appends the OCI labels as steps of its own, hence no "/3".
        err.contains("failed at `Step 3/") && err.contains(" : RUN echo about-to-fail && exit 3`"),
        "{err}"
    );
    assert!(err.contains("returned a non-zero code: 3"), "{err}");
    assert!(err.contains("last build output:"), "{err}");
    assert!(err.contains("  about-to-fail"), "{err}");
    assert_eq!(
        registry_digest(&services, &project.repository, "v0.1.0"),
        None,
        "nothing was pushed"
    );
}

#[test]
fn a_missing_dockerfile_is_a_usage_error_that_names_the_path() {
    // Fails before any AWS or Docker call, so it needs no services.
    let project = Project::new(None, "docker/Dockerfile.prod");
    project.write("app/README", "no Dockerfile here\n");
    let out = cutover_bin(&project)
        .args(["build", "-e", "sandbox", "-s", "web", "-t", "v1.0.0"])
        .args(["--git-sha", SHA_A])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("app/docker/Dockerfile.prod"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn wrong_registry_credentials_give_a_clear_error_without_the_secret() {
    let Some(services) = Services::get() else {
        return;
    };
    let key = services.foreign_access_key().await;
    let project = simple_app(&services);
    let out = build(&services, &project, "v1.0.0", SHA_A)
        .env("AWS_ACCESS_KEY_ID", &key)
        .arg("-vvv")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("refused the ECR credentials"), "{err}");
    assert!(err.contains(&services.registry), "{err}");
    let foreign_password = "999999999999-auth-token";
    let foreign_token = base64_of(&format!("AWS:{foreign_password}"));
    for secret in [foreign_password, &foreign_token] {
        assert!(!err.contains(secret) && !stdout(&out).contains(secret));
    }
}

#[test]
fn secrets_are_masked_first_on_github_actions_and_never_logged_at_any_verbosity() {
    let Some(services) = Services::get() else {
        return;
    };
    // The sentinel: moto's ECR password and the token that carries it.
    let token = base64_of(&format!("AWS:{REGISTRY_PASSWORD}"));
    let project = simple_app(&services);
    let out = build(&services, &project, "v3.0.0", SHA_A)
        .env("GITHUB_ACTIONS", "true")
        .env("CUTOVER_LOG", "trace")
        .arg("-vvv")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = stdout(&out);
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next(),
        Some(format!("::add-mask::{REGISTRY_PASSWORD}").as_str())
    );
    assert_eq!(lines.next(), Some(format!("::add-mask::{token}").as_str()));
    let rest: Vec<&str> = lines.collect();
    assert_eq!(rest.len(), 1, "then only the image reference: {rest:?}");
    let err = stderr(&out);
    assert!(err.len() > 1000, "trace logging was on");
    for secret in [REGISTRY_PASSWORD, token.as_str()] {
        assert!(!err.contains(secret), "stderr leaks {secret}");
        assert!(!rest[0].contains(secret));
    }
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn the_busybox_base_image_runs_commands() {
    let Some(services) = Services::get() else {
        return;
    };
    assert_eq!(services.busybox_image(), BUSYBOX_IMAGE);
    let out = services.docker_ok(
        &[
            "run",
            "--rm",
            "--network",
            "host",
            BUSYBOX_IMAGE,
            "echo",
            "ok",
        ],
        &std::env::temp_dir(),
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn a_prebuilt_image_must_be_pinned_by_digest() {
    let project = Project::new(None, "Dockerfile");
    for verb in ["stage", "deploy"] {
        let out = cutover_bin(&project)
            .args([verb, "-e", "sandbox", "-s", "web", "-t", "v1.0.0"])
            .args(["--image", "127.0.0.1:5000/web:v1.0.0"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{verb}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("is not pinned by digest"),
            "{}",
            stderr(&out)
        );
    }
}
