//! A moto server with one service's worth of AWS resources (what terraform/ creates),
//! for adapter and CLI tests. Every fixture gets its own names, so tests can share the one
//! moto server that `scripts/services.sh` starts.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

/// moto's endpoint from services.sh (see [`crate::services::required_env`]).
pub fn endpoint() -> Option<String> {
    crate::services::required_env(&["CUTOVER_TEST_MOTO_ENDPOINT"]).map(|mut v| v.remove(0))
}

pub struct Stack {
    pub endpoint: String,
    pub region: String,
    pub name: String,
    /// `terraform output -json`-shaped description of what was created.
    pub outputs: Value,
}

impl Stack {
    /// Create a fresh stack named `<prefix><pid><n>` in moto.
    pub fn create(prefix: &str) -> Option<Self> {
        static N: AtomicU32 = AtomicU32::new(0);
        let endpoint = endpoint()?;
        // The pid alone repeats across runs (each CI run starts the same processes in the
        // same order), and the registry keeps its images between runs: a stack named as
        // in an earlier run found that run's images already pushed (and built nothing).
        // The second, modulo 13 hours, in 3 base-36 digits tells runs apart; names stay
        // short (a target group's name, `<name>-green`, may have 32 characters).
        let second = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            % 46_656;
        let run: String = [second / 1296, second / 36 % 36, second % 36]
            .iter()
            .map(|d| char::from_digit(*d as u32, 36).expect("a base-36 digit"))
            .collect();
        let name = format!(
            "{prefix}{}x{}{run}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let region = "us-east-1".to_string();
        let venv = std::env::var("CUTOVER_VENV")
            .unwrap_or_else(|_| format!("{}/.cache/cutover/venv", std::env::var("HOME").unwrap()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/moto_stack.py");
        let out = std::process::Command::new(format!("{venv}/bin/python"))
            .arg(script)
            .args([&endpoint, &region, &name])
            .output()
            .expect("run the moto fixture");
        assert!(
            out.status.success(),
            "moto fixture failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let outputs = serde_json::from_slice(&out.stdout).unwrap();
        Some(Self {
            endpoint,
            region,
            name,
            outputs,
        })
    }

    pub fn value(&self, path: &str) -> &Value {
        let mut v = &self.outputs;
        for (i, key) in path.split('.').enumerate() {
            v = &v[key];
            if i == 0 {
                v = &v["value"];
            }
        }
        v
    }

    pub fn str(&self, path: &str) -> String {
        self.value(path)
            .as_str()
            .unwrap_or_else(|| panic!("{path} is not a string"))
            .to_string()
    }

    /// An SDK config pointed at moto, as the standard `AWS_ENDPOINT_URL` would.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(self.region.clone()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_ecs::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .load()
            .await
    }

    /// Environment variables that point the cutover binary at this moto.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", self.region.clone()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// A deploy/ folder for this stack, written by `cutover init --from-terraform`.
    pub fn config_dir(&self, dir: &Path) -> std::path::PathBuf {
        std::fs::write(dir.join("tf.json"), self.outputs.to_string()).unwrap();
        let layout = cutover::config::Layout::new(dir.join("deploy"));
        cutover::config::scaffold::init(
            &layout,
            "test",
            &self.name,
            Some(&dir.join("tf.json")),
            None,
        )
        .unwrap();
        // The HTTP server these tests put at `test_url` answers /health for whatever is
        // "behind" it and cannot tell which release that is, so the scaffold's version probe
        // stays out here; the sandbox (real containers behind a test listener that follows
        // moto's weights) and the simulation check version evidence.
        let service = layout.service_dir(&self.name).join("service.toml");
        let text = std::fs::read_to_string(&service).unwrap();
        let probe = "[[validation.probes]]\npath = \"/version\"\nexpect_version = true\n";
        assert!(text.contains(probe), "the scaffold's version probe moved");
        std::fs::write(&service, text.replace(probe, "")).unwrap();
        // moto's ECR has no registry behind it: images live in the test registry, reached
        // with moto's ECR token (services.sh gives the registry that password).
        if let Ok(registry) = std::env::var("CUTOVER_TEST_REGISTRY") {
            let env = layout.env_dir("test").join("environment.toml");
            let text = std::fs::read_to_string(&env).unwrap();
            let text = text.replacen(
                "\nssm_prefix = ",
                &format!("\nregistry = \"{registry}\"\nssm_prefix = "),
                1,
            );
            std::fs::write(&env, text).unwrap();
        }
        layout.root
    }
}
