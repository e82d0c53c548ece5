//! The action image, built with the local dockerd and run the way GitHub runs a Docker
//! action: `docker run` with `INPUT_*`/`GITHUB_*` env, the workspace and the file-command
//! files mounted, the docker socket mounted, host networking — against moto (over TLS, so
//! the image's CA roots are what make it work), the test registry and a wiremock GitHub.
//!
//! Nothing can be pulled here, so the runtime base is made locally: a rootfs with the
//! binary's shared libraries and a CA bundle, `docker import`ed and passed as the
//! Dockerfile's RUNTIME_IMAGE to its `runtime-prebuilt` target.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::action::{Job, TOKEN, assert_no_secrets};
use crate::e2e::{World, live};
use crate::services::{Services, unique};

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

/// A distroless/cc stand-in: glibc and libgcc as the binary needs them, /tmp, and a CA
/// bundle at Debian's path (the host's roots plus the test CA). A second bundle without
/// the test CA lets a run prove the roots are what TLS depends on.
fn import_runtime_base(services: &Services, ca: &TestCa, bin: &Path) -> String {
    let root = tempfile::tempdir().unwrap();
    let put = |path: &Path, bytes: &[u8]| {
        let dest = root.path().join(path.strip_prefix("/").unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(&dest, bytes).unwrap();
        dest
    };
    for lib in shared_libraries(bin) {
        // The loader is exec'd by the kernel: it needs its mode bits, not just its bytes.
        let dest = put(&lib, &std::fs::read(&lib).unwrap());
        let mode = std::fs::metadata(&lib).unwrap().permissions();
        std::fs::set_permissions(dest, mode).unwrap();
    }
    let system = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt")
        .expect("ca-certificates (scripts/install.sh)");
    let test_ca = std::fs::read_to_string(ca.path("ca.pem")).unwrap();
    put(
        Path::new("/etc/ssl/certs/ca-certificates.crt"),
        format!("{system}{test_ca}").as_bytes(),
    );
    put(
        Path::new("/etc/ssl/certs/without-test-ca.crt"),
        system.as_bytes(),
    );
    std::fs::create_dir_all(root.path().join("tmp")).unwrap();
    let tarball = root.path().with_extension("tar");
    let ok = Command::new("tar")
        .args(["-C"])
        .arg(root.path())
        .args(["-cf"])
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap()
        .success();
    assert!(ok, "tar of the runtime rootfs");
    let tag = format!("{}:local", unique("cutover-runtime"));
    services.docker_ok(&["import", tarball.to_str().unwrap(), &tag], root.path());
    std::fs::remove_file(tarball).unwrap();
    tag
}

/// `docker build --target runtime-prebuilt` with the repository's Dockerfile.
fn build_action_image(services: &Services, runtime: &str, bin: &Path) -> String {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile"),
        ctx.path().join("Dockerfile"),
    )
    .unwrap();
    std::fs::copy(bin, ctx.path().join("cutover")).unwrap();
    let tag = format!("{}:test", unique("cutover-action"));
    services.docker_ok(
        &[
            "build",
            "-q",
            "--build-arg",
            &format!("RUNTIME_IMAGE={runtime}"),
            "--target",
            "runtime-prebuilt",
            "-t",
            &tag,
            ".",
        ],
        ctx.path(),
    );
    tag
}

/// `docker run` the way the runner starts a Docker action.
fn docker_run(
    w: &World,
    job: &Job,
    image: &str,
    aws_endpoint: &str,
    env: Vec<(String, String)>,
) -> Command {
    let services = &w.services;
    let socket = services
        .docker_host
        .strip_prefix("unix://")
        .expect("the test daemon listens on a unix socket");
    let files = job.dir.path().display().to_string();
    let mut cmd = services.docker();
    cmd.args(["run", "--rm", "--network", "host"])
        .arg("-v")
        .arg(format!("{}:/github/workspace", w.root.display()))
        .args(["-w", "/github/workspace"])
        .arg("-v")
        .arg(format!("{files}:{files}"))
        .arg("-v")
        .arg(format!("{socket}:/var/run/docker.sock"));
    let mut all = env;
    all.extend(
        w.stack
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .filter(|(k, _)| k != "AWS_ENDPOINT_URL"),
    );
    all.push(("AWS_ENDPOINT_URL".into(), aws_endpoint.into()));
    all.push(("CI".into(), "true".into()));
    for (k, v) in all {
        cmd.arg("-e").arg(format!("{k}={v}"));
    }
    cmd.arg(image).arg("action");
    cmd
}

#[test]
fn the_action_image_runs_like_github_runs_it() {
    let Some(w) = World::new("i") else { return };
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_cutover"));
    let ca = TestCa::new();
    let proxy = TlsProxy::start(&ca, &w.stack.endpoint);
    let runtime = import_runtime_base(&w.services, &ca, &bin);
    let image = build_action_image(&w.services, &runtime, &bin);
    let job = Job::new(&w);
    let secrets = [TOKEN.to_string(), job.slack_url()];

    // verify over TLS: the AWS SDK in the image trusts the image's CA bundle.
    let env = job.runner_env(&w, "refs/tags/v1.0.0", &[("COMMAND", "verify")]);
    let run = job
        .run_command(docker_run(&w, &job, &image, &proxy.url, env))
        .expect(0);
    assert!(run.stdout.contains("checks passed"), "{}", run.all());

    // ... and only because of it: without the test CA the same call fails on the
    // certificate, with a clear error.
    let mut env = job.runner_env(&w, "refs/tags/v1.0.0", &[("COMMAND", "verify")]);
    env.push((
        "SSL_CERT_FILE".into(),
        "/etc/ssl/certs/without-test-ca.crt".into(),
    ));
    let refused = job.run_command(docker_run(&w, &job, &image, &proxy.url, env));
    assert_ne!(refused.code, 0, "{}", refused.all());
    assert!(
        refused.all().to_lowercase().contains("certificate"),
        "{}",
        refused.all()
    );

    // A tag push: build through the mounted socket, push, stage, promote, report.
    w.version_file("1.0.0");
    let env = job.runner_env(&w, "refs/tags/v1.0.0", &[]);
    let run = job
        .run_command(docker_run(&w, &job, &image, &proxy.url, env))
        .expect(0);
    assert_no_secrets(&run, &secrets);
    assert_eq!(run.output("version"), "v1.0.0", "{}", run.all());
    assert_eq!(run.output("status"), "Promoted", "{}", run.all());
    assert!(run.output("image").contains("@sha256:"), "{}", run.all());
    assert_eq!(run.output("live-slot"), live(w.weights()), "{}", run.all());
    assert!(run.summary.contains("v1.0.0"), "{}", run.all());
    job.assert_deployment_succeeded(&w);
}
