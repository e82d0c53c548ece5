//! Finding the real components `scripts/services.sh start` runs (dockerd, registry, moto),
//! and the fixtures tests build on them. A missing service skips the test with a reason,
//! except under CI, where a missing prerequisite fails loudly.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// moto's ECR token for its default account decodes to `AWS:<this>`; services.sh gives
/// the registry the same password.
pub const REGISTRY_PASSWORD: &str = "123456789012-auth-token";

/// A FROM-scratch image with busybox-static as /bin/sh, so Dockerfiles can RUN commands.
pub const BUSYBOX_IMAGE: &str = "cutover-test-busybox:1";

pub struct Services {
    pub docker_host: String,
    pub registry: String,
    pub moto: String,
}

impl Services {
    pub fn get() -> Option<Self> {
        let values = required_env(&[
            "CUTOVER_TEST_DOCKER_HOST",
            "CUTOVER_TEST_REGISTRY",
            "CUTOVER_TEST_MOTO_ENDPOINT",
        ])?;
        let mut values = values.into_iter();
        Some(Self {
            docker_host: values.next().unwrap(),
            registry: values.next().unwrap(),
            moto: values.next().unwrap(),
        })
    }

    /// The docker CLI against the test daemon, classic builder, with its own config dir so
    /// no login or setting from the machine leaks in.
    pub fn docker(&self) -> Command {
        static CONFIG: OnceLock<tempfile::TempDir> = OnceLock::new();
        let config = CONFIG.get_or_init(|| tempfile::tempdir().unwrap());
        let mut cmd = Command::new("docker");
        cmd.arg("-H")
            .arg(&self.docker_host)
            .env("DOCKER_BUILDKIT", "0")
            .env("DOCKER_CONFIG", config.path());
        cmd
    }

    /// Runs the docker CLI and returns stdout; panics with its stderr on failure.
    pub fn docker_ok(&self, args: &[&str], dir: &Path) -> String {
        let out = self.docker().args(args).current_dir(dir).output().unwrap();
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Builds [`BUSYBOX_IMAGE`] once per daemon. nextest runs each test in a process of
    /// its own, so a `OnceLock` alone let several tests build it at the same moment: the
    /// classic builder then reused another build's intermediate image, which a third
    /// test's `rmi` (of an image whose untagged parents they were) deleted mid-build
    /// ("unable to find image sha256:…"). One process builds it under a lock (a directory:
    /// `mkdir` is atomic, and std's file locks need a newer Rust than the crate's minimum);
    /// the others wait and find it built.
    pub fn busybox_image(&self) -> &'static str {
        static BUILT: OnceLock<()> = OnceLock::new();
        BUILT.get_or_init(|| {
            let _lock = DirLock::take(&std::env::temp_dir().join(format!(
                "cutover-busybox-{:x}.lock",
                self.docker_host.bytes().fold(0u64, |h, b| h.wrapping_mul(31) ^ u64::from(b))
            )));
            let present = self
                .docker()
                .args(["image", "inspect", "--format", "{{.Id}}", BUSYBOX_IMAGE])
                .output()
                .unwrap()
                .status
                .success();
            if present {
                return;
            }
            let dir = tempfile::tempdir().unwrap();
            std::fs::copy("/bin/busybox", dir.path().join("busybox"))
                .expect("busybox-static (scripts/install.sh) provides /bin/busybox");
            std::fs::write(
                dir.path().join("Dockerfile"),
                "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
            )
            .unwrap();
            self.docker_ok(&["build", "-q", "-t", BUSYBOX_IMAGE, "."], dir.path());
        });
        BUSYBOX_IMAGE
    }

    /// The cutover binary with AWS pointed at moto (through the SDK's standard
    /// AWS_ENDPOINT_URL) and Docker at the test daemon; nothing inherited from the runner.
    pub fn cutover(&self, project: &Project) -> assert_cmd::Command {
        let mut cmd = cutover_bin(project);
        cmd.env("DOCKER_HOST", &self.docker_host)
            .env("AWS_ENDPOINT_URL", &self.moto);
        cmd
    }

    /// An IAM access key in another moto account: its ECR token does not open the registry.
    pub async fn foreign_access_key(&self) -> String {
        let http = reqwest::Client::new();
        let user = unique("intruder");
        let call = |action: &str| {
            http.post(&self.moto)
                // moto routes by the signing scope and does not check signatures.
                .header(
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/iam/aws4_request, \
                     SignedHeaders=host, Signature=0",
                )
                .header("x-moto-account-id", "999999999999")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!(
                    "Action={action}&UserName={user}&Version=2010-05-08"
                ))
                .send()
        };
        call("CreateUser").await.unwrap();
        let body = call("CreateAccessKey").await.unwrap().text().await.unwrap();
        let start = body.find("<AccessKeyId>").expect(&body) + "<AccessKeyId>".len();
        let end = body[start..].find('<').unwrap() + start;
        body[start..end].to_string()
    }
}

/// The cutover binary with a clean environment: fake static AWS credentials, no GitHub
/// variables, no user config.
pub fn cutover_bin(project: &Project) -> assert_cmd::Command {
    cutover_in(&project.root)
}

/// The cutover binary run in `dir` with a clean environment: fake static AWS credentials,
/// no GitHub variables, no user AWS config.
pub fn cutover_in(dir: &Path) -> assert_cmd::Command {
    assert_cmd::Command::from_std(cutover_std(dir))
}

/// [`cutover_in`] as a plain process, for tests that run several at once.
pub fn cutover_std(dir: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("cutover"));
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_")
            || key.starts_with("GITHUB_")
            || key.starts_with("CUTOVER_")
            || key == "DOCKER_HOST"
            || key == "RUST_LOG"
        {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(dir)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.join("no-aws-credentials"),
        )
        .env("NO_COLOR", "1");
    cmd
}

/// A unique name: the registry keeps its data between runs.
pub fn unique(prefix: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}-{n}", std::process::id())
}

/// A repository with a deploy/ folder for environment `sandbox` and service `web`, and
/// the build context in `app/`.
pub struct Project {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub repository: String,
}

impl Project {
    /// `dockerfile` is relative to `app/`; `registry` overrides the ECR host.
    pub fn new(registry: Option<&str>, dockerfile: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let repository = unique("web");
        let project = Self {
            _dir: dir,
            root,
            repository,
        };
        let registry_line = registry.map_or(String::new(), |r| format!("registry = \"{r}\"\n"));
        project.write(
            "deploy/environments/sandbox/environment.toml",
            &format!("region = \"us-east-1\"\n{registry_line}"),
        );
        project.write(
            "deploy/services/web/service.toml",
            include_str!("../../examples/build-sandbox/deploy/services/web/service.toml"),
        );
        project.write(
            "deploy/services/web/variables.json",
            &serde_json::json!({ "repository": project.repository, "dockerfile": dockerfile })
                .to_string(),
        );
        project
    }

    pub fn write(&self, rel: &str, content: &str) {
        let path = self.root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

/// The values of `vars` as `scripts/services.sh env` exports them. When one is missing the
/// test is skipped with the reason printed, except under CI, where a missing prerequisite
/// fails loudly.
pub fn required_env(vars: &[&str]) -> Option<Vec<String>> {
    let values: Vec<Option<String>> = vars.iter().map(|v| std::env::var(v).ok()).collect();
    let missing: Vec<&str> = vars
        .iter()
        .zip(&values)
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| *n)
        .collect();
    if missing.is_empty() {
        return Some(values.into_iter().flatten().collect());
    }
    let msg = format!(
        "{} not set; run `scripts/services.sh start` and `eval \"$(scripts/services.sh env)\"`",
        missing.join(", ")
    );
    if std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!("skipping: {msg}");
    None
}

/// A lock between test processes: held while its directory exists. One left behind by a
/// killed process is taken over after two minutes (a build of the busybox image takes
/// seconds).
struct DirLock(PathBuf);

impl DirLock {
    fn take(path: &Path) -> Self {
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while std::fs::create_dir(path).is_err() && std::time::Instant::now() < give_up {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Self(path.to_path_buf())
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}
