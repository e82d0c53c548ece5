//! The release path that runs here: `scripts/pin.sh` builds the action image from a
//! binary with the repository's Dockerfile, pushes it to the test registry and pins a copy
//! of action.yml (and the examples) to it; then the pinned image runs the way GitHub runs
//! a Docker action, everything taken from the pinned action.yml (image, args, inputs and
//! their defaults): `docker run` with `INPUT_*`/`GITHUB_*` env, the workspace and the
//! file-command files mounted, the docker socket mounted, host networking — against moto
//! (over TLS, so the image's CA roots are what make it work), the registry and a wiremock
//! GitHub.
//!
//! Releases ship a static binary on an empty base. The test binary is the debug build,
//! linked dynamically, so the test adds its shared libraries to the image's root
//! (CUTOVER_PIN_EXTRA_ROOTFS); the Dockerfile stage and the script are the release's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::action::{Job, TOKEN, assert_no_secrets};
use crate::e2e::{World, live};
use crate::examples::{input_env, yaml};
use crate::services::{REGISTRY_PASSWORD, unique};

/// A test CA and a server certificate for localhost / 127.0.0.1 signed by it.
struct TestCa {
    dir: tempfile::TempDir,
}

impl TestCa {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl (scripts/install.sh)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=cutover test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            dir.path().join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// TLS in front of moto (tests/fixtures/tls_proxy.py), stopped by pid on drop.
struct TlsProxy {
    child: Child,
    url: String,
}

impl TlsProxy {
    fn start(ca: &TestCa, upstream: &str) -> Self {
        let port_file = ca.path("proxy.port");
        let upstream_port = upstream.rsplit(':').next().unwrap().trim_end_matches('/');
        let child = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/tls_proxy.py"
            ))
            .args([ca.path("server.pem"), ca.path("server.key")])
            .arg(upstream_port)
            .arg(&port_file)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file)
                && !p.trim().is_empty()
            {
                break p.trim().to_string();
            }
            assert!(Instant::now() < deadline, "tls_proxy.py did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        Self {
            child,
            url: format!("https://127.0.0.1:{port}"),
        }
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shared libraries `ldd` says the binary loads (and the loader itself).
fn shared_libraries(bin: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(bin).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let path = match line.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// What `scripts/pin.sh all` left: a checkout whose action.yml and examples are pinned,
/// and the image reference it pinned.
struct Pinned {
    checkout: tempfile::TempDir,
    reference: String,
}

/// `scripts/pin.sh all` (build, push, pin, check) for the test binary, on a copy of the
/// checkout's action.yml and examples. The image's CA bundle is the host's roots plus the
/// test CA; a second bundle without the test CA lets a run prove TLS depends on them.
fn pin(w: &World, ca: &TestCa, bin: &Path) -> Pinned {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let put = |rel: &str, bytes: &[u8]| {
        let dest = dir.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(&dest, bytes).unwrap();
        dest
    };
    // The binary as release.yml lays it out, and what a dynamic one needs besides.
    put("bin/amd64/cutover", &std::fs::read(bin).unwrap());
    for lib in shared_libraries(bin) {
        // The loader is exec'd by the kernel: it needs its mode bits, not just its bytes.
        let rel = format!("rootfs{}", lib.display());
        let dest = put(&rel, &std::fs::read(&lib).unwrap());
        std::fs::set_permissions(dest, std::fs::metadata(&lib).unwrap().permissions()).unwrap();
    }
    let system = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt")
        .expect("ca-certificates (scripts/install.sh)");
    let test_ca = std::fs::read_to_string(ca.path("ca.pem")).unwrap();
    let bundle = put("ca-bundle.crt", format!("{system}{test_ca}").as_bytes());
    put(
        "rootfs/etc/ssl/certs/without-test-ca.crt",
        system.as_bytes(),
    );
    // The registry login, as `docker login` would write it.
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{REGISTRY_PASSWORD}"));
    put(
        "docker/config.json",
        json!({ "auths": { &w.services.registry: { "auth": auth } } })
            .to_string()
            .as_bytes(),
    );

    let checkout = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(root.join("action.yml"), checkout.path().join("action.yml")).unwrap();
    let examples = checkout.path().join("examples/github-workflows");
    std::fs::create_dir_all(&examples).unwrap();
    for entry in std::fs::read_dir(root.join("examples/github-workflows")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, examples.join(path.file_name().unwrap())).unwrap();
    }

    let script = |args: &[&str]| {
        let out = Command::new("bash")
            .arg(root.join("scripts/pin.sh"))
            .args(args)
            .env("DOCKER_HOST", &w.services.docker_host)
            .env("DOCKER_CONFIG", dir.join("docker"))
            .env("DOCKER_BUILDKIT", "0")
            .env("CUTOVER_PIN_ROOT", checkout.path())
            .env("CA_BUNDLE", &bundle)
            .env("CUTOVER_PIN_EXTRA_ROOTFS", dir.join("rootfs"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "pin.sh {args:?}: {stderr}");
        String::from_utf8(out.stdout).unwrap()
    };
    let repository = format!("{}/{}", w.services.registry, unique("cutover-action"));
    let bins = dir.join("bin").display().to_string();
    let stdout = script(&["all", &repository, "v0.0.0-test", &bins]);
    let reference = stdout.trim().to_string();
    let digest = reference
        .strip_prefix(&format!("{repository}@sha256:"))
        .unwrap_or_else(|| panic!("pin.sh printed {stdout:?}"));
    assert!(
        digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
        "{reference}"
    );
    let action = std::fs::read_to_string(checkout.path().join("action.yml")).unwrap();
    assert!(
        action.contains(&format!("\n  image: docker://{reference}\n")),
        "{action}"
    );

    // The examples pin the action to the release commit that holds this action.yml.
    let sha = "89abcdef0123456789abcdef0123456789abcdef";
    script(&["examples", "o/cutover", sha, "v1.2.3"]);
    for entry in std::fs::read_dir(&examples).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let uses: Vec<&str> = text.lines().filter(|l| l.contains("/cutover@")).collect();
        assert!(!uses.is_empty(), "{text}");
        for line in uses {
            assert!(
                line.trim_start_matches([' ', '-'])
                    .eq(&format!("uses: o/cutover@{sha} # v1.2.3")),
                "{line}"
            );
        }
    }
    Pinned {
        checkout,
        reference,
    }
}

/// `docker run` the way the runner starts a Docker action from its action.yml: the image
/// and args it names, `INPUT_*` for `with` and the declared defaults, the workspace at
/// /github/workspace (also the working directory), the file-command files under
/// /github/file_commands, the docker socket.
fn docker_run(
    w: &World,
    job: &Job,
    action: &Value,
    with: &Map<String, Value>,
    aws_endpoint: &str,
    extra: &[(&str, &str)],
) -> Command {
    let services = &w.services;
    let socket = services
        .docker_host
        .strip_prefix("unix://")
        .expect("the test daemon listens on a unix socket");
    let image = action["runs"]["image"].as_str().unwrap();
    let image = image
        .strip_prefix("docker://")
        .unwrap_or_else(|| panic!("action.yml runs.image is {image}, not a pinned image"));
    let values = BTreeMap::from([("github.token", TOKEN.to_string())]);
    let mut env = input_env(action, with, &values);
    for (k, v) in job.github_env("refs/tags/v1.0.0") {
        // The runner's file-command files live under /github/file_commands.
        let v = match k.as_str() {
            "GITHUB_OUTPUT" => "/github/file_commands/output".to_string(),
            "GITHUB_STEP_SUMMARY" => "/github/file_commands/summary".to_string(),
            _ => v,
        };
        env.push((k, v));
    }
    env.push(("GITHUB_WORKSPACE".into(), "/github/workspace".into()));
    env.extend(
        w.stack
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .filter(|(k, _)| k != "AWS_ENDPOINT_URL"),
    );
    env.push(("AWS_ENDPOINT_URL".into(), aws_endpoint.into()));
    env.push(("CI".into(), "true".into()));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));

    let mut cmd = services.docker();
    cmd.args(["run", "--rm", "--network", "host"])
        .args(["--workdir", "/github/workspace"])
        .arg("-v")
        .arg(format!("{}:/github/workspace", w.root.display()))
        .arg("-v")
        .arg(format!(
            "{}:/github/file_commands",
            job.dir.path().display()
        ))
        .arg("-v")
        .arg(format!("{socket}:/var/run/docker.sock"));
    for (k, v) in env {
        cmd.arg("-e").arg(format!("{k}={v}"));
    }
    cmd.arg(image);
    for arg in action["runs"]["args"]
        .as_array()
        .expect("action.yml runs.args")
    {
        cmd.arg(arg.as_str().unwrap());
    }
    cmd
}

#[test]
fn the_pinned_action_image_runs_like_github_runs_it() {
    let Some(w) = World::new("i") else { return };
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_cutover"));
    let ca = TestCa::new();
    let proxy = TlsProxy::start(&ca, &w.stack.endpoint);
    let pinned = pin(&w, &ca, &bin);
    let action = yaml(&pinned.checkout.path().join("action.yml"));
    assert_eq!(
        action["runs"]["image"],
        format!("docker://{}", pinned.reference)
    );
    let job = Job::new(&w);
    let secrets = [TOKEN.to_string(), job.slack_url()];
    let with = |command: &str| {
        let mut with = json!({
            "environment": "test",
            "services": w.stack.name,
            "slack-webhook": job.slack_url(),
            "log-level": "trace",
        });
        if !command.is_empty() {
            with["command"] = command.into();
        }
        with.as_object().unwrap().clone()
    };

    // verify over TLS: the AWS SDK in the image trusts the image's CA bundle.
    let cmd = docker_run(&w, &job, &action, &with("verify"), &proxy.url, &[]);
    let run = job.run_command(cmd).expect(0);
    assert!(run.stdout.contains("checks passed"), "{}", run.all());

    // ... and only because of it: without the test CA the same call fails on the
    // certificate, with a clear error.
    let without = [("SSL_CERT_FILE", "/etc/ssl/certs/without-test-ca.crt")];
    let cmd = docker_run(&w, &job, &action, &with("verify"), &proxy.url, &without);
    let refused = job.run_command(cmd);
    assert_ne!(refused.code, 0, "{}", refused.all());
    assert!(
        refused.all().to_lowercase().contains("certificate"),
        "{}",
        refused.all()
    );

    // A tag push with action.yml's default command (deploy): build through the mounted
    // socket, push, stage, promote, report.
    w.version_file("1.0.0");
    let cmd = docker_run(&w, &job, &action, &with(""), &proxy.url, &[]);
    let run = job.run_command(cmd).expect(0);
    assert_no_secrets(&run, &secrets);
    assert_eq!(run.output("version"), "v1.0.0", "{}", run.all());
    assert_eq!(run.output("status"), "Promoted", "{}", run.all());
    assert!(run.output("image").contains("@sha256:"), "{}", run.all());
    assert_eq!(run.output("live-slot"), live(w.weights()), "{}", run.all());
    assert!(run.summary.contains("v1.0.0"), "{}", run.all());
    job.assert_deployment_succeeded(&w);
}
