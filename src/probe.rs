//! Validation checks that run on the runner itself, not in AWS: HTTP probes against the
//! test listener and the service's own validation command. The AWS adapter and any other
//! cloud delegate [`crate::ports::Prober`] here.

use std::time::Duration;

use crate::ports::{CheckResult, ProbeRequest};
use crate::version::Version;

/// Probes and the validation command for one service: its test listener's base URL and
/// one HTTP client, built once.
pub struct LocalChecks {
    test_url: String,
    http: reqwest::Client,
}

impl LocalChecks {
    pub fn new(test_url: &str) -> Self {
        Self {
            test_url: test_url.to_string(),
            http: reqwest::Client::builder()
                .user_agent(concat!("cutover/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("an HTTP client"),
        }
    }

    pub async fn probe(&self, request: &ProbeRequest) -> CheckResult {
        let url = format!("{}{}", self.test_url.trim_end_matches('/'), request.path);
        let response = match self.http.get(&url).timeout(request.timeout).send().await {
            Ok(r) => r,
            Err(e) => return CheckResult::Fail(format!("GET {url}: {}", error_chain(&e))),
        };
        let status = response.status().as_u16();
        if status != request.expect_status {
            return CheckResult::Fail(format!(
                "GET {url}: status {status}, expected {}",
                request.expect_status
            ));
        }
        if let Some(needle) = &request.body_contains {
            match response.text().await {
                Ok(body) if body.contains(needle.as_str()) => {}
                Ok(_) => {
                    return CheckResult::Fail(format!(
                        "GET {url}: body does not contain `{needle}`"
                    ));
                }
                Err(e) => {
                    return CheckResult::Fail(format!(
                        "GET {url}: reading the body: {}",
                        error_chain(&e)
                    ));
                }
            }
        }
        CheckResult::Pass
    }

    pub async fn run_command(
        &self,
        argv: &[String],
        version: &Version,
        timeout: Duration,
    ) -> CheckResult {
        let Some((program, args)) = argv.split_first() else {
            return CheckResult::Fail("[validation] command is empty".into());
        };
        let child = tokio::process::Command::new(program)
            .args(args)
            .env("CUTOVER_TEST_URL", &self.test_url)
            .env("CUTOVER_VERSION", version.to_string())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(timeout, child).await {
            Err(_) => CheckResult::Fail(format!(
                "`{program}` did not finish within {}s",
                timeout.as_secs()
            )),
            Ok(Err(e)) => CheckResult::Fail(format!("cannot run `{program}`: {e}")),
            Ok(Ok(out)) if out.status.success() => CheckResult::Pass,
            Ok(Ok(out)) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let tail: Vec<&str> = stderr
                    .lines()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                CheckResult::Fail(format!(
                    "`{program}` exited with {}: {}",
                    out.status,
                    tail.join(" | ")
                ))
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
