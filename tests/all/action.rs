//! The GitHub Action's entry point run the way the runner runs it: `cutover action` with
//! `INPUT_*` and `GITHUB_*` variables, files behind `GITHUB_OUTPUT` and
//! `GITHUB_STEP_SUMMARY`, against moto, the test registry and a wiremock GitHub and Slack.
//! Also: secrets never reach any output, and a real SIGINT stops a promote safely.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::e2e::{World, live};
use crate::github::deployment;

pub(crate) const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
pub(crate) const TOKEN: &str = "ghs_SENTINELgithubToken0042";
const SLACK_PATH: &str = "/services/T0SENTINEL/B0SENTINEL/SENTINELslackSecret42";
const TASKDEF_SECRET: &str = "SENTINEL-db-password-77";
/// moto's GetAuthorizationToken decodes to `AWS:<account>-auth-token` (services.sh gives
/// the registry that password): the ECR password cutover must never print.
const ECR_PASSWORD: &str = "123456789012-auth-token";

/// A runner's view of one job: the wiremock GitHub + Slack, and the file-command files.
pub(crate) struct Job {
    pub(crate) github: MockServer,
    pub(crate) dir: tempfile::TempDir,
}

/// What one `cutover action` run left behind.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    outputs: BTreeMap<String, String>,
    pub(crate) summary: String,
    raw_outputs: String,
}

impl Job {
    pub(crate) fn new(w: &World) -> Self {
        let github = w.rt.block_on(async {
            let server = MockServer::start().await;
            let uri = server.uri();
            // v1.1.0 has a deployment already (its stage job made it); others do not.
            Mock::given(method("GET"))
                .and(path("/repos/o/r/deployments"))
                .and(query_param("ref", "v1.1.0"))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!([deployment(&uri)])))
                .mount(&server)
                .await;
            crate::github::mount_deployments(&server).await;
            Mock::given(method("POST"))
                .and(path_regex("^/services/"))
                .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
                .mount(&server)
                .await;
            server
        });
        Self {
            github,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn slack_url(&self) -> String {
        format!("{}{SLACK_PATH}", self.github.uri())
    }

    /// The env the runner gives a Docker action: every declared input set (empty when not
    /// given), GITHUB_REF at the pushed tag, the file-command files.
    pub(crate) fn runner_env(
        &self,
        w: &World,
        tag_ref: &str,
        inputs: &[(&str, &str)],
    ) -> Vec<(String, String)> {
        let mut all: BTreeMap<&str, &str> = [
            ("COMMAND", "deploy"),
            ("ENVIRONMENT", "test"),
            ("SERVICES", w.stack.name.as_str()),
            ("CONFIG-DIR", "deploy"),
            ("TAG", ""),
            ("IMAGE", ""),
            ("ROLLBACK", ""),
            ("STRATEGY", ""),
            ("REQUIRE-PROMOTED-IN", ""),
            ("GITHUB-TOKEN", TOKEN),
            ("DRY-RUN", "false"),
            ("RELEASE-NOTES", "false"),
            ("LOG-LEVEL", "trace"),
        ]
        .into_iter()
        .collect();
        all.extend(inputs.iter().copied());
        let slack = self.slack_url();
        all.entry("SLACK-WEBHOOK").or_insert(&slack);
        let mut env: Vec<(String, String)> = all
            .into_iter()
            .map(|(k, v)| (format!("INPUT_{k}"), v.to_string()))
            .collect();
        env.extend(self.github_env(tag_ref));
        env
    }

    /// The `GITHUB_*` part of a step's env: the run at `git_ref`, the wiremock API, the
    /// file-command files.
    pub(crate) fn github_env(&self, git_ref: &str) -> Vec<(String, String)> {
        let file = |name: &str| self.dir.path().join(name).display().to_string();
        [
            ("GITHUB_ACTIONS", "true".to_string()),
            ("GITHUB_REF", git_ref.to_string()),
            ("GITHUB_SHA", SHA.to_string()),
            ("GITHUB_REPOSITORY", "o/r".to_string()),
            ("GITHUB_API_URL", self.github.uri()),
            ("GITHUB_SERVER_URL", "https://github.com".to_string()),
            ("GITHUB_RUN_ID", "7".to_string()),
            ("GITHUB_OUTPUT", file("output")),
            ("GITHUB_STEP_SUMMARY", file("summary")),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .to_vec()
    }

    /// `cutover action` as a local process.
    fn command(&self, w: &World, tag_ref: &str, inputs: &[(&str, &str)]) -> Command {
        let mut cmd = w.process();
        cmd.arg("action")
            .envs(self.runner_env(w, tag_ref, inputs))
            .env_remove("CUTOVER_ENV")
            .env_remove("CUTOVER_SERVICE")
            .env_remove("CUTOVER_LOG")
            .env_remove("RUST_LOG");
        cmd
    }

    /// Run one step as a local process.
    pub(crate) fn run(&self, w: &World, tag_ref: &str, inputs: &[(&str, &str)]) -> Run {
        self.run_command(self.command(w, tag_ref, inputs))
    }

    /// Run one step; the file-command files start empty, as each step's do.
    pub(crate) fn run_command(&self, mut cmd: Command) -> Run {
        for f in ["output", "summary"] {
            std::fs::write(self.dir.path().join(f), "").unwrap();
        }
        let out = cmd.stdin(Stdio::null()).output().unwrap();
        let raw_outputs = std::fs::read_to_string(self.dir.path().join("output")).unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            outputs: parse_outputs(&raw_outputs),
            summary: std::fs::read_to_string(self.dir.path().join("summary")).unwrap(),
            raw_outputs,
        }
    }

    /// The deployment statuses GitHub received, in order.
    fn states(&self, w: &World) -> Vec<Value> {
        let requests = w.rt.block_on(self.github.received_requests()).unwrap();
        requests
            .iter()
            .filter(|r| r.url.path().ends_with("/statuses"))
            .map(|r| r.body_json::<Value>().unwrap())
            .collect()
    }

    /// The deployment went queued → in_progress … → success; returns its statuses.
    pub(crate) fn assert_deployment_succeeded(&self, w: &World) -> Vec<Value> {
        let states = self.states(w);
        let names: Vec<&str> = states
            .iter()
            .map(|s| s["state"].as_str().unwrap())
            .collect();
        assert_eq!(names.first(), Some(&"queued"), "{names:?}");
        assert!(names.contains(&"in_progress"), "{names:?}");
        assert_eq!(names.last(), Some(&"success"), "{names:?}");
        states
    }

    fn requests_to(&self, w: &World, prefix: &str) -> Vec<wiremock::Request> {
        let requests = w.rt.block_on(self.github.received_requests()).unwrap();
        requests
            .into_iter()
            .filter(|r| r.url.path().starts_with(prefix))
            .collect()
    }
}

impl Run {
    pub(crate) fn expect(self, code: i32) -> Self {
        assert_eq!(self.code, code, "{}", self.all());
        self
    }

    /// Everything for a failure message; stderr (trace level) cut to its last lines.
    pub(crate) fn all(&self) -> String {
        let lines: Vec<&str> = self.stderr.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!(
            "exit {}\nstdout:\n{}\nstderr (tail):\n{tail}\noutputs:\n{}\nsummary:\n{}",
            self.code, self.stdout, self.raw_outputs, self.summary
        )
    }

    pub(crate) fn output(&self, name: &str) -> &str {
        self.outputs.get(name).map_or("", String::as_str)
    }
}

/// `$GITHUB_OUTPUT` in the runner's two forms: `name=value` and the heredoc
/// `name<<DELIM` … `DELIM`.
fn parse_outputs(text: &str) -> BTreeMap<String, String> {
    let mut outputs = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delim)) = line.split_once("<<") {
            let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delim).collect();
            outputs.insert(name.to_string(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            outputs.insert(name.to_string(), value.to_string());
        }
    }
    outputs
}

/// Every form a secret could leak in: raw, base64 and percent-encoded.
fn leak_forms(secret: &str) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let encoded: String = secret
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect();
    let mut forms = vec![secret.to_string(), b64.encode(secret), encoded];
    forms.dedup();
    forms
}

/// No secret in any output of a run, except the `::add-mask::` commands, which exist to
/// hand the runner the secret to redact (the runner does not print them) and must come
/// before anything else.
pub(crate) fn assert_no_secrets(run: &Run, secrets: &[String]) {
    let mut masks_done = false;
    for (i, line) in run.stdout.lines().enumerate() {
        if line.starts_with("::add-mask::") {
            assert!(
                !masks_done,
                "::add-mask:: after other output (line {i}):\n{}",
                run.stdout
            );
            continue;
        }
        masks_done = true;
        check_clean(&format!("stdout line {i}"), line, secrets);
    }
    check_clean("stderr", &run.stderr, secrets);
    check_clean("outputs", &run.raw_outputs, secrets);
    check_clean("summary", &run.summary, secrets);
}

fn check_clean(place: &str, text: &str, secrets: &[String]) {
    for secret in secrets {
        for form in leak_forms(secret) {
            assert!(
                !text.contains(&form),
                "{place} leaks a secret ({form}):\n{text}"
            );
        }
    }
}

/// The task definition carries a secret value (as teams do, wrongly, with plain env).
fn plant_taskdef_secret(w: &World) {
    let taskdef = w
        .root
        .join(format!("deploy/services/{}/taskdef.json", w.stack.name));
    let text = std::fs::read_to_string(&taskdef).unwrap();
    let text = text.replacen(
        "{ \"name\": \"APP_ENV\"",
        &format!("{{ \"name\": \"DB_PASSWORD\", \"value\": \"{TASKDEF_SECRET}\" }},\n        {{ \"name\": \"APP_ENV\""),
        1,
    );
    assert!(
        text.contains(TASKDEF_SECRET),
        "taskdef template changed shape"
    );
    std::fs::write(&taskdef, text).unwrap();
}

#[test]
fn the_action_deploys_reports_to_github_and_never_prints_a_secret() {
    let Some(w) = World::new("a") else { return };
    plant_taskdef_secret(&w);
    let job = Job::new(&w);
    let secrets = vec![
        TOKEN.to_string(),
        job.slack_url(),
        SLACK_PATH.to_string(),
        ECR_PASSWORD.to_string(),
        format!("AWS:{ECR_PASSWORD}"),
        TASKDEF_SECRET.to_string(),
    ];

    // A tag push: build, push, stage, validate, promote (no approval in this environment).
    w.version_file("1.0.0");
    let first = job.run(&w, "refs/tags/v1.0.0", &[]).expect(0);
    assert!(
        first.stdout.starts_with(&format!("::add-mask::{TOKEN}\n")),
        "{}",
        first.all()
    );
    assert_no_secrets(&first, &secrets);
    assert_eq!(first.output("version"), "v1.0.0", "{}", first.all());
    assert_eq!(first.output("status"), "Promoted", "{}", first.all());
    let image = first.output("image");
    let digest = first.output("digest");
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    assert!(image.ends_with(&format!("@{digest}")), "{image} / {digest}");
    assert!(
        first
            .output("task-definition-arn")
            .starts_with("arn:aws:ecs:"),
        "{}",
        first.all()
    );
    let slot = live(w.weights());
    assert_eq!(first.output("live-slot"), slot);
    // Workflow commands: a group per phase, closed.
    assert!(first.stdout.contains("::group::test/"), "{}", first.all());
    assert!(first.stdout.contains(": build\n"), "{}", first.all());
    assert!(first.stdout.contains("::endgroup::"), "{}", first.all());
    // Summary: versions, digest, traffic chart, how to roll back.
    for part in [
        "v1.0.0",
        digest,
        "```mermaid",
        "rollback",
        "Building",
        "Pushing",
        // What the deploy changed against the live slot (cutover diff), values hidden.
        "### Changes",
        "container web: image",
    ] {
        assert!(
            first.summary.contains(part),
            "summary lacks {part}:\n{}",
            first.summary
        );
    }
    // GitHub: one deployment for the tag and environment; statuses end in success.
    let created = job.requests_to(&w, "/repos/o/r/deployments");
    let create: Value = created
        .iter()
        .find(|r| r.method.as_str() == "POST" && r.url.path() == "/repos/o/r/deployments")
        .expect("a deployment was created")
        .body_json()
        .unwrap();
    assert_eq!(create["ref"], "v1.0.0");
    assert_eq!(create["environment"], "test");
    assert_eq!(create["auto_merge"], false);
    let states = job.assert_deployment_succeeded(&w);
    assert_eq!(
        // The run's attempt, as the lock names it (GITHUB_RUN_ATTEMPT unset: the first).
        states[0]["log_url"],
        "https://github.com/o/r/actions/runs/7/attempts/1",
        "{states:?}"
    );
    // Slack: a message at start and at the end.
    let slack = job.requests_to(&w, "/services/");
    assert!(slack.len() >= 2, "{} Slack messages", slack.len());

    // The next tag, staged only: production stays where it was, and the outputs say so.
    w.version_file("1.1.0");
    let before = w.weights();
    let staged = job
        .run(&w, "refs/tags/v1.1.0", &[("COMMAND", "stage")])
        .expect(0);
    assert_no_secrets(&staged, &secrets);
    assert_eq!(w.weights(), before, "stage moved production traffic");
    assert_eq!(
        staged.output("status"),
        "AwaitingApproval",
        "{}",
        staged.all()
    );
    assert_eq!(
        staged.output("previous-version"),
        "v1.0.0",
        "{}",
        staged.all()
    );
    assert_eq!(staged.output("live-slot"), slot, "{}", staged.all());

    // The require-promoted-in input: qa never had v1.1.0, so the approval job is refused
    // before any write (exit 2), saying what qa's history shows and what to do.
    w.add_environment("qa");
    let refused = job
        .run(
            &w,
            "refs/tags/v1.1.0",
            &[("COMMAND", "promote"), ("REQUIRE-PROMOTED-IN", "qa")],
        )
        .expect(2);
    assert!(
        refused
            .stderr
            .contains("qa has no history for this service")
            && refused.stderr.contains("promote v1.1.0 in qa first"),
        "{}",
        refused.all()
    );
    assert_eq!(w.weights(), before, "a refused promote moved traffic");

    // The approval job promotes exactly that tag.
    let promoted = job
        .run(&w, "refs/tags/v1.1.0", &[("COMMAND", "promote")])
        .expect(0);
    // Its rollback rehearsal (back to v1.0.0 and forward), both ways with durations, in
    // the job summary and as the deployment's last status.
    assert!(
        promoted.summary.contains("### Rollback rehearsal")
            && promoted.summary.contains("| back | v1.0.0 | ")
            && promoted.summary.contains("| forward | v1.1.0 on "),
        "{}",
        promoted.all()
    );
    let last = job.states(&w).last().cloned().unwrap();
    assert_eq!(last["state"], "success");
    assert!(
        last["description"]
            .as_str()
            .unwrap()
            .starts_with("Promoted: rollback rehearsal passed: back to v1.0.0 in "),
        "{last}"
    );
    assert_no_secrets(&promoted, &secrets);
    assert_eq!(promoted.output("status"), "Promoted", "{}", promoted.all());
    assert_eq!(promoted.output("version"), "v1.1.0");
    assert_eq!(promoted.output("previous-version"), "v1.0.0");
    let new_slot = live(w.weights());
    assert_ne!(new_slot, slot);
    assert_eq!(promoted.output("live-slot"), new_slot);

    // The rollback input, from a workflow_dispatch on a branch (no tag in GITHUB_REF).
    let before = job.states(&w).len();
    let back = job
        .run(&w, "refs/heads/main", &[("ROLLBACK", "true")])
        .expect(0);
    assert_no_secrets(&back, &secrets);
    assert_eq!(live(w.weights()), slot, "{}", back.all());
    assert_eq!(back.output("live-slot"), slot, "{}", back.all());
    assert_eq!(back.output("version"), "v1.0.0", "{}", back.all());
    // GitHub: a rollback that worked is v1.0.0's success, and v1.1.0 goes inactive.
    let states: Vec<String> = job.states(&w)[before..]
        .iter()
        .map(|s| s["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        states.first().map(String::as_str),
        Some("queued"),
        "{states:?}"
    );
    assert!(
        states.ends_with(&["success".to_string(), "inactive".to_string()]),
        "{states:?}\n{}",
        back.all()
    );
    let refs: Vec<String> = job
        .requests_to(&w, "/repos/o/r/deployments")
        .iter()
        .filter(|r| r.method.as_str() == "GET")
        .filter_map(|r| r.url.query().map(str::to_string))
        .collect();
    assert!(
        refs.iter().rev().take(2).any(|q| q.contains("ref=v1.0.0"))
            && refs.last().is_some_and(|q| q.contains("ref=v1.1.0")),
        "{refs:?}"
    );

    // Error paths at trace level: an approval for a version that was never staged, and a
    // bad input. Both name the problem, annotate it, and leak nothing.
    let refused = job
        .run(&w, "refs/tags/v9.9.9", &[("COMMAND", "promote")])
        .expect(2);
    assert_no_secrets(&refused, &secrets);
    assert!(refused.stdout.contains("::error"), "{}", refused.all());
    assert_eq!(refused.output("status"), "Failed", "{}", refused.all());
    assert_eq!(live(w.weights()), slot);
    let bad = job
        .run(&w, "refs/heads/main", &[("ROLLBACK", "yes please")])
        .expect(2);
    assert_no_secrets(&bad, &secrets);
    assert!(
        bad.stderr.contains("action input `rollback`"),
        "{}",
        bad.all()
    );
}

#[test]
fn a_bad_github_token_is_reported_without_being_printed() {
    let Some(w) = World::new("t") else { return };
    let job = Job::new(&w);
    // GitHub refuses the token: the deploy itself still runs (reporting is not the
    // release), and the refusal is logged without the token.
    w.rt.block_on(async {
        job.github.reset().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(401).set_body_json(
                json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}),
            ))
            .mount(&job.github)
            .await;
    });
    w.version_file("2.0.0");
    let run = job
        .run(&w, "refs/tags/v2.0.0", &[("COMMAND", "verify")])
        .expect(0);
    assert_no_secrets(&run, &[TOKEN.to_string(), job.slack_url()]);
    let run = job.run(&w, "refs/tags/v2.0.0", &[]).expect(0);
    assert_no_secrets(&run, &[TOKEN.to_string(), job.slack_url()]);
    assert_eq!(run.output("status"), "Promoted", "{}", run.all());
    assert!(run.stderr.contains("Bad credentials"), "{}", run.all());
}

/// The SSM parameters cutover keeps for this service, as moto holds them.
fn parameters(w: &World) -> Vec<String> {
    let snapshot = w.snapshot();
    snapshot["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_str().unwrap().to_string())
        .collect()
}

/// Send `signal` to a live process the way the runner does (by pid, from outside).
fn kill(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{signal} {pid}");
}

#[test]
fn sigint_during_a_shift_returns_traffic_and_releases_the_lock() {
    let Some(w) = World::new("c") else { return };
    // Slow canary steps so the signal lands while production is split.
    let svc = w
        .root
        .join(format!("deploy/services/{}/service.toml", w.stack.name));
    let text = std::fs::read_to_string(&svc).unwrap();
    let slow = text.replace("wait = \"1s\"", "wait = \"60s\"");
    assert_ne!(slow, text, "service.toml changed shape");
    std::fs::write(&svc, slow).unwrap();
    w.version_file("1.0.0");
    w.expect(
        0,
        &[
            "deploy",
            "--tag",
            "v1.0.0",
            "--git-sha",
            SHA,
            "--strategy",
            "all-at-once",
        ],
    );
    w.version_file("1.1.0");
    w.expect(0, &["stage", "--tag", "v1.1.0", "--git-sha", SHA]);
    let good = w.weights();
    let lock_free = parameters(&w);

    let child = w
        .process()
        .args(["promote", "--tag", "v1.1.0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = w.weights();
        if now != good && now.0 != 0 && now.1 != 0 {
            break; // split: the canary step is baking
        }
        assert!(
            Instant::now() < deadline,
            "promote never split traffic: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let signalled = Instant::now();
    kill(child.id(), "INT");
    let out = child.wait_with_output().unwrap();
    let took = signalled.elapsed();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{text}");
    assert!(text.contains("cancelled"), "{text}");
    // The runner sends SIGTERM 7.5 s after SIGINT and kills 2.5 s later: cutover must be
    // done before the kill.
    assert!(took < Duration::from_secs(10), "cancel took {took:?}");
    assert_eq!(
        w.weights(),
        good,
        "traffic must be back on the last good slot"
    );
    assert_eq!(parameters(&w), lock_free, "the lock was left behind");
    let status = w.expect(0, &["status"]);
    assert!(status.contains("lock       free"), "{status}");
}

/// When AWS stops answering, the safe stop cannot finish: the runner's SIGTERM (or a
/// second Ctrl-C) makes cutover say what may be left and exit before the runner's kill.
#[test]
fn a_second_signal_stops_at_once_when_aws_does_not_answer() {
    let Some(w) = World::new("h") else { return };
    // An AWS endpoint that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().collect();
        drop(held);
    });
    let mut child = w
        .process()
        .args(["status"])
        .env("AWS_ENDPOINT_URL", &url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    kill(child.id(), "INT");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first signal waits for a safe point, it does not kill"
    );
    kill(child.id(), "TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "a second signal did not stop cutover"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("second signal") && stderr.contains("cutover status"),
        "{stderr}"
    );
}

/// Ctrl-C during the image build stops the build: nothing is deployed, exit 130.
#[test]
fn sigint_during_the_build_stops_before_anything_is_deployed() {
    let Some(w) = World::new("b") else { return };
    let busybox = w.services.busybox_image();
    std::fs::write(
        w.root.join("app/Dockerfile"),
        format!("FROM {busybox}\nRUN sleep 60\nCOPY version.txt /version.txt\n"),
    )
    .unwrap();
    w.version_file("1.0.0");
    let before = w.snapshot();
    let child = w
        .process()
        .args(["deploy", "--tag", "v1.0.0", "--git-sha", SHA])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let signalled = Instant::now();
    kill(child.id(), "INT");
    let out = child.wait_with_output().unwrap();
    let took = signalled.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("cancelled during the image build"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(10), "cancel took {took:?}");
    assert_eq!(w.snapshot(), before, "a cancelled build changed AWS state");
}
