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
        Self::with_client(test_url, Self::client())
    }

    /// Probing through `http` (from [`LocalChecks::client`]), which others may share: a
    /// client loads the system's root certificates when built (about 17 ms in a debug
    /// build), once per train rather than once per member.
    pub fn with_client(test_url: &str, http: reqwest::Client) -> Self {
        Self {
            test_url: test_url.to_string(),
            http,
        }
    }

    /// The probes' HTTP client: redirects are not followed (see [`LocalChecks::probe`]).
    pub fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .user_agent(concat!("cutover/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client")
    }

    /// One GET of the test listener. Redirects are not followed: a 3xx that was not asked
    /// for fails and shows where it pointed, since whatever answers there (a login page,
    /// the live site) is no evidence about the staged release.
    pub async fn probe(&self, request: &ProbeRequest) -> CheckResult {
        let url = format!("{}{}", self.test_url.trim_end_matches('/'), request.path);
        match self.check(&url, request).await {
            Ok(()) => CheckResult::Pass,
            Err(why) => CheckResult::Fail(format!("GET {url}: {why}")),
        }
    }

    async fn check(&self, url: &str, request: &ProbeRequest) -> Result<(), String> {
        let response = self
            .http
            .get(url)
            .timeout(request.timeout)
            .send()
            .await
            .map_err(|e| error_chain(&e))?;
        let status = response.status().as_u16();
        if status != request.expect_status {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(|l| format!(" (a redirect to {l}; probes do not follow redirects)"))
                .unwrap_or_default();
            return Err(format!(
                "status {status}{location}, expected {}",
                request.expect_status
            ));
        }
        let header = request
            .expect_version
            .as_ref()
            .and_then(|e| e.header.as_deref())
            .map(|name| {
                let value = response.headers().get(name).and_then(|v| v.to_str().ok());
                (name.to_string(), value.unwrap_or_default().to_string())
            });
        let needs_body = request.body_contains.is_some()
            || request
                .expect_version
                .as_ref()
                .is_some_and(|e| e.header.is_none());
        let body = if needs_body {
            response
                .text()
                .await
                .map_err(|e| format!("reading the body: {}", error_chain(&e)))?
        } else {
            String::new()
        };
        if let Some(needle) = &request.body_contains
            && !body.contains(needle.as_str())
        {
            return Err(format!("body does not contain `{needle}`"));
        }
        if let Some(evidence) = &request.expect_version {
            let (place, text) = match &header {
                Some((name, value)) => (format!("header {name}"), value.as_str()),
                None => ("body".to_string(), body.as_str()),
            };
            if !evidence.found_in(text) {
                return Err(format!(
                    "answered by another release: its {place} does not carry {} (the test listener may still point at the live slot)",
                    evidence.version
                ));
            }
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use wiremock::matchers::path;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::ports::VersionEvidence;

    fn request(path: &str, expect_version: Option<Option<&str>>) -> ProbeRequest {
        ProbeRequest {
            path: path.into(),
            expect_status: 200,
            body_contains: None,
            timeout: Duration::from_secs(5),
            expect_version: expect_version.map(|header| VersionEvidence {
                version: Version::parse("v1.2.4").unwrap(),
                header: header.map(str::to_string),
            }),
        }
    }

    async fn server() -> MockServer {
        let server = MockServer::start().await;
        let routes = [
            (
                "/health",
                ResponseTemplate::new(302).insert_header("location", "/login"),
            ),
            (
                "/login",
                ResponseTemplate::new(200).set_body_string("sign in"),
            ),
            (
                "/new",
                ResponseTemplate::new(200).set_body_string("1.2.4\n"),
            ),
            (
                "/old",
                ResponseTemplate::new(200).set_body_string("version 1.2.3"),
            ),
            (
                "/longer",
                ResponseTemplate::new(200).set_body_string("1.2.40"),
            ),
            (
                "/header",
                ResponseTemplate::new(200).insert_header("x-version", "v1.2.4"),
            ),
        ];
        for (route, response) in routes {
            Mock::given(path(route))
                .respond_with(response)
                .mount(&server)
                .await;
        }
        server
    }

    fn failed(result: CheckResult) -> String {
        match result {
            CheckResult::Fail(why) => why,
            CheckResult::Pass => panic!("the probe passed"),
        }
    }

    /// Issue 14: the probe client followed redirects, so a health page that redirects to a
    /// login page passed validation.
    #[tokio::test]
    async fn a_redirect_is_a_failure_that_shows_where_it_pointed() {
        let server = server().await;
        let checks = LocalChecks::new(&server.uri());
        let why = failed(checks.probe(&request("/health", None)).await);
        assert!(
            why.contains("status 302") && why.contains("/login"),
            "{why}"
        );
    }

    /// Issue 14: a probe answered by the live release is no evidence about the staged one.
    #[tokio::test]
    async fn only_the_staged_version_counts_when_the_probe_asks_for_it() {
        let server = server().await;
        let checks = LocalChecks::new(&server.uri());
        assert_eq!(
            checks.probe(&request("/new", Some(None))).await,
            CheckResult::Pass
        );
        assert_eq!(
            checks
                .probe(&request("/header", Some(Some("x-version"))))
                .await,
            CheckResult::Pass
        );
        for (route, header) in [
            ("/old", None),
            ("/longer", None),
            ("/new", Some("x-version")),
        ] {
            let why = failed(checks.probe(&request(route, Some(header))).await);
            assert!(why.contains("does not carry v1.2.4"), "{route}: {why}");
        }
        // Without the option the old release passes, as a plain health check should.
        assert_eq!(
            checks.probe(&request("/old", None)).await,
            CheckResult::Pass
        );
    }
}
