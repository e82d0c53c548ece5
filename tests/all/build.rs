//! `cutover build` against a real dockerd, an htpasswd registry and moto's ECR API.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::services::{BUSYBOX_IMAGE, Project, REGISTRY_PASSWORD, Services, cutover_bin};

pub(crate) const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub(crate) const SHA_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn simple_app(services: &Services) -> Project {
    let project = Project::new(Some(&services.registry), "Dockerfile");
    project.write(
        "app/Dockerfile",
        "FROM scratch\nCOPY hello.txt /hello.txt\n",
    );
    project.write("app/hello.txt", "hello\n");
    project
}

pub(crate) fn build(
    services: &Services,
    project: &Project,
    tag: &str,
    sha: &str,
) -> assert_cmd::Command {
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

pub(crate) fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub(crate) fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Daemon events between two instants that mention `needle` (a unique repository name):
/// a build ends with a tag event for it, a push with a push event.
pub(crate) fn events_mentioning(
    services: &Services,
    since: f64,
    until: f64,
    needle: &str,
) -> Vec<String> {
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
pub(crate) fn registry_digest(services: &Services, repo: &str, tag: &str) -> Option<String> {
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
    // Refused at the lookup of the version tag, before anything is built.
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("refused the ECR credentials"), "{err}");
    assert!(err.contains(&services.registry), "{err}");
    assert!(err.contains(&project.repository), "{err}");
    assert!(
        err.contains("ecr:GetAuthorizationToken"),
        "what to do: {err}"
    );
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

pub(crate) fn base64_of(text: &str) -> String {
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

/// A registry of the test's own (the shared one must stay up for the other tests): the
/// same htpasswd user as services.sh's, optionally read-only, stopped on drop.
struct OwnRegistry {
    child: std::process::Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl OwnRegistry {
    fn start(read_only: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let htpasswd = dir.path().join("htpasswd");
        let status = std::process::Command::new("htpasswd")
            .args(["-Bbc", htpasswd.to_str().unwrap(), "AWS", REGISTRY_PASSWORD])
            .stderr(std::process::Stdio::null())
            .status()
            .expect("htpasswd (apache2-utils, scripts/install.sh)");
        assert!(status.success());
        let maintenance = if read_only {
            "  maintenance:\n    readonly:\n      enabled: true\n"
        } else {
            ""
        };
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n{maintenance}\
                 http:\n  addr: {addr}\nauth:\n  htpasswd:\n    realm: cutover-test\n    path: {}\n",
                dir.path().join("data").display(),
                htpasswd.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = std::process::Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry (scripts/install.sh)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "the test registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            addr,
            _dir: dir,
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn a_registry_that_refuses_the_push_names_registry_and_repository_and_exits_4() {
    let Some(services) = Services::get() else {
        return;
    };
    let registry = OwnRegistry::start(true);
    let project = Project::new(Some(&registry.addr), "Dockerfile");
    project.write(
        "app/Dockerfile",
        "FROM scratch\nCOPY hello.txt /hello.txt\n",
    );
    project.write("app/hello.txt", &project.repository);
    let out = build(&services, &project, "v1.0.0", SHA_A)
        .arg("-vvv")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    let message = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or(&err);
    assert!(
        message.starts_with(&format!(
            "error: pushing {}/{}:",
            registry.addr, project.repository
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "The registry {} refused repository {}",
            registry.addr, project.repository
        )),
        "what to do: {err}"
    );
    let token = base64_of(&format!("AWS:{REGISTRY_PASSWORD}"));
    for secret in [REGISTRY_PASSWORD, token.as_str()] {
        assert!(!err.contains(secret) && !stdout(&out).contains(secret));
    }
}

#[test]
fn a_registry_gone_after_the_lookup_fails_the_push_with_exit_4_and_says_so() {
    let Some(services) = Services::get() else {
        return;
    };
    let base = services.busybox_image();
    let mut registry = OwnRegistry::start(false);
    let project = Project::new(Some(&registry.addr), "Dockerfile");
    // The RUN step keeps the build busy while the test stops the registry.
    project.write(
        "app/Dockerfile",
        &format!("FROM {base}\nRUN echo {} && sleep 3\n", project.repository),
    );
    let mut child = crate::services::cutover_std(&project.root)
        .env("DOCKER_HOST", &services.docker_host)
        .env("AWS_ENDPOINT_URL", &services.moto)
        .args([
            "build",
            "-e",
            "sandbox",
            "-s",
            "web",
            "-t",
            "v1.0.0",
            "--git-sha",
            SHA_A,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
    let mut err = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        err.push_str(&line);
        err.push('\n');
        // Logged once the registry said it has no such tag, just before the build starts.
        if line.contains(" building") {
            break;
        }
    }
    registry.stop();
    for line in lines {
        err.push_str(&line.unwrap());
        err.push('\n');
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(4), "{err}");
    assert!(
        err.contains(&format!(
            "error: pushing {}/{}:",
            registry.addr, project.repository
        )),
        "{err}"
    );
    assert!(err.contains("connection refused"), "{err}");
    assert!(
        err.contains(&format!(
            "The Docker daemon could not reach the registry {}",
            registry.addr
        )),
        "{err}"
    );
}

#[test]
fn auto_picks_the_classic_builder_on_a_daemon_without_a_bridge_network() {
    let Some(services) = Services::get() else {
        return;
    };
    let project = simple_app(&services);
    let out = build(&services, &project, "v1.0.0", SHA_A)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("builder: classic, because the daemon has no bridge network"),
        "{err}"
    );
    // The classic builder's own output, streamed into the log.
    assert!(err.contains("Step 1/"), "{err}");
}
