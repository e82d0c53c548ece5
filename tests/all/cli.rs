//! The CLI as users run it: init → render, exit codes, and every class of bad input.
//! Each bad input must exit 2, name the file (and line where there is one), say what to
//! do, and leave build/ as it was.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use clap::CommandFactory;
use tempfile::TempDir;

const IMAGE: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:0123456789abcdef";

fn cutover(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("cutover").unwrap();
    cmd.current_dir(dir);
    for var in [
        "CUTOVER_CONFIG_DIR",
        "CUTOVER_ENV",
        "CUTOVER_SERVICE",
        "CUTOVER_IMAGE",
        "GITHUB_REF",
        "GITHUB_SHA",
        "CUTOVER_LOG",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// A temp dir with a fresh `cutover init` scaffold.
fn scaffold() -> TempDir {
    let dir = TempDir::new().unwrap();
    cutover(dir.path()).arg("init").assert().success();
    dir
}

fn render(dir: &Path, tag: &str) -> assert_cmd::assert::Assert {
    cutover(dir)
        .args([
            "render",
            "--env",
            "production",
            "--service",
            "web",
            "--tag",
            tag,
            "--image",
            IMAGE,
            "--git-sha",
            "abc123",
        ])
        .assert()
}

fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has no `{from}`");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

fn stderr_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

fn build_dir(dir: &Path) -> PathBuf {
    dir.join("build/production/web")
}

/// Everything under build/, with contents, to prove a failure changed nothing.
fn snapshot_build(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.join("build")];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push((p.clone(), std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn clap_definition_is_consistent() {
    cutover::cli::Cli::command().debug_assert();
}

#[test]
fn init_then_render_writes_the_trail() {
    let dir = scaffold();
    let out = render(dir.path(), "v0.1.0").success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        stdout.contains("build/production/web/taskdef.json"),
        "{stdout}"
    );
    let taskdef = std::fs::read_to_string(build_dir(dir.path()).join("taskdef.json")).unwrap();
    insta::assert_snapshot!("rendered_taskdef", taskdef);
    let settings = std::fs::read_to_string(build_dir(dir.path()).join("settings.json")).unwrap();
    insta::assert_snapshot!("rendered_settings", settings);
    // No temporary folders left beside the trail.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("build/production"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers, ["web"]);
}

/// `init --worker`: a worker's scaffold beside the web service's, rendered unchanged into a
/// worker's settings (its one ECS service, no slots, traffic or port) and a task definition
/// whose container maps no port; its service.toml names the train it ships with.
#[test]
fn init_scaffolds_a_worker_that_renders_unchanged() {
    let dir = scaffold();
    cutover(dir.path())
        .args(["init", "--service", "jobs", "--worker", "jobs-worker"])
        .assert()
        .success();
    let toml =
        std::fs::read_to_string(dir.path().join("deploy/services/jobs/service.toml")).unwrap();
    assert!(toml.contains("--service web,jobs"), "{toml}");
    cutover(dir.path())
        .args([
            "render",
            "--env",
            "production",
            "--service",
            "jobs",
            "--tag",
            "v0.1.0",
        ])
        .args(["--image", IMAGE, "--git-sha", "abc123"])
        .assert()
        .success();
    let built = dir.path().join("build/production/jobs");
    let compiled: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(built.join("settings.json")).unwrap())
            .unwrap();
    let settings = &compiled["settings"];
    assert_eq!(settings["worker"]["service"], "jobs-worker", "{settings}");
    assert_eq!(settings["ecs"]["container"], "jobs", "{settings}");
    assert_eq!(settings["image"]["repository"], "jobs", "{settings}");
    let taskdef = std::fs::read_to_string(built.join("taskdef.json")).unwrap();
    assert!(!taskdef.contains("portMappings"), "{taskdef}");
    assert!(taskdef.contains(IMAGE), "{taskdef}");

    // With terraform, a worker's ECS service is its `cutover_workers` entry's: naming one
    // as well is refused, nothing written.
    let refused = cutover(dir.path())
        .args([
            "init",
            "--service",
            "jobs2",
            "--worker",
            "jobs2",
            "--from-terraform",
            "tf.json",
        ])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&refused.get_output().stderr).into_owned();
    assert!(
        stderr.contains("--worker with --from-terraform"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("deploy/services/jobs2").exists(),
        "nothing written"
    );
}

#[test]
fn render_accepts_describe_task_definition_output() {
    let dir = scaffold();
    let described = r#"{"taskDefinition": {"taskDefinitionArn": "arn:aws:ecs:eu-west-1:1:task-definition/web:3", "revision": 3,
          "status": "ACTIVE", "family": "web", "compatibilities": ["EC2", "FARGATE"], "requiresAttributes": [],
          "registeredAt": "2025-01-01T00:00:00Z", "registeredBy": "arn:aws:iam::1:user/me",
          "containerDefinitions": [{"name": "web", "image": "{{ cutover.image }}", "portMappings": [{"containerPort": 8080}]}]},
          "tags": []}"#;
    std::fs::write(
        dir.path().join("deploy/services/web/taskdef.json"),
        described,
    )
    .unwrap();
    render(dir.path(), "v0.1.0").success();
    let taskdef: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(build_dir(dir.path()).join("taskdef.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(taskdef["family"], "web");
    assert_eq!(taskdef["containerDefinitions"][0]["image"], IMAGE);
    for key in [
        "taskDefinitionArn",
        "revision",
        "status",
        "compatibilities",
        "requiresAttributes",
        "registeredAt",
        "registeredBy",
    ] {
        assert!(taskdef.get(key).is_none(), "{key} kept");
    }
}

#[test]
fn variables_merge_into_the_render() {
    let dir = scaffold();
    std::fs::write(dir.path().join("deploy/environments/production/variables.json"), r#"{"region": "eu-west-1", "cpu": "256", "memory": "512", "extra": {"a": 1, "tags": ["env"]}}"#).unwrap();
    edit(
        dir.path(),
        "deploy/services/web/variables.json",
        "{",
        r#"{"memory": "1024", "extra": {"b": 2, "tags": ["svc"]},"#,
    );
    edit(
        dir.path(),
        "deploy/services/web/taskdef.json",
        "\"essential\": true,",
        "\"essential\": true, \"dockerLabels\": {\"merged\": {{ var.extra | tojson | tojson }}},",
    );
    render(dir.path(), "v0.1.0").success();
    let taskdef: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(build_dir(dir.path()).join("taskdef.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(taskdef["memory"], "1024", "service wins");
    assert_eq!(taskdef["cpu"], "256", "environment kept");
    let merged: serde_json::Value = serde_json::from_str(
        taskdef["containerDefinitions"][0]["dockerLabels"]["merged"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        merged,
        serde_json::json!({"a": 1, "b": 2, "tags": ["env", "svc"]})
    );
}

#[test]
fn aws_verbs_refuse_bad_input_before_any_aws_call() {
    // No AWS endpoint or credentials exist here: reaching AWS would fail differently.
    let dir = scaffold();
    let cases: &[(&str, &[&str], &str)] = &[
        ("plan", &["--tag", "v1.0.0"], "unknown environment `nope`"),
        ("stage", &["--tag", "v1.0.0"], "unknown environment `nope`"),
        (
            "promote",
            &["--tag", "v1.0.0"],
            "unknown environment `nope`",
        ),
        ("rollback", &[], "unknown environment `nope`"),
        ("deploy", &["--tag", "v1.0.0"], "unknown environment `nope`"),
        ("status", &[], "unknown environment `nope`"),
        ("verify", &[], "unknown environment `nope`"),
        ("unlock", &[], "unknown environment `nope`"),
        (
            "rollback",
            &["--to", "latest"],
            "`latest` is not a release tag",
        ),
        ("promote", &["--tag", "v2"], "`v2` is not a release tag"),
        (
            "stage",
            &["--tag", "v1.0.0", "--image", "web:latest"],
            "is not pinned by digest",
        ),
    ];
    for (verb, extra, expect) in cases {
        let a = cutover(dir.path())
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .arg(verb)
            .args(["--env", "nope", "--service", "web"])
            .args(*extra)
            .assert()
            .code(2);
        let err = stderr_of(&a);
        assert!(err.contains(expect), "{verb} {extra:?}: {err}");
        assert!(a.get_output().stdout.is_empty(), "{verb} printed data");
    }
}

/// One bad-input case: how to break the scaffold, and what the error must say.
struct Bad {
    name: &'static str,
    file: &'static str,
    from: &'static str,
    to: &'static str,
    tag: &'static str,
    expect: &'static [&'static str],
}

const BAD: &[Bad] = &[
    Bad {
        name: "malformed toml",
        file: "deploy/environments/production/environment.toml",
        from: "region = ",
        to: "region = = ",
        tag: "v1.0.0",
        expect: &["environment.toml:5:"],
    },
    Bad {
        name: "malformed json",
        file: "deploy/environments/production/variables.json",
        from: "\"cpu\"",
        to: "cpu",
        tag: "v1.0.0",
        expect: &["variables.json:3:", "not valid JSON"],
    },
    Bad {
        name: "unknown key",
        file: "deploy/services/web/service.toml",
        from: "[ecs]\n",
        to: "[ecs]\nclutser = \"x\"\n",
        tag: "v1.0.0",
        expect: &["service.toml:16:", "unknown field `clutser`"],
    },
    Bad {
        name: "wrong type",
        file: "deploy/services/web/service.toml",
        from: "container_port = 8080",
        to: "container_port = \"8080\"",
        tag: "v1.0.0",
        expect: &[
            "service.toml:19:",
            "invalid type: string \"8080\", expected u16",
        ],
    },
    Bad {
        name: "bad duration",
        file: "deploy/services/web/service.toml",
        from: "wait = \"5m\"",
        to: "wait = \"5 minutes\"",
        tag: "v1.0.0",
        expect: &["service.toml:", "`5 minutes` is not a duration"],
    },
    Bad {
        name: "undefined variable",
        file: "deploy/services/web/taskdef.json",
        from: "{{ var.cpu }}",
        to: "{{ var.cpus }}",
        tag: "v1.0.0",
        expect: &["taskdef.json:5:", "undefined", "var.cpus"],
    },
    Bad {
        name: "undefined variable in service.toml",
        file: "deploy/services/web/service.toml",
        from: "repository = \"web\"",
        to: "repository = \"{{ var.repo }}\"",
        tag: "v1.0.0",
        expect: &["service.toml:7:", "undefined", "var.repo"],
    },
    Bad {
        name: "template syntax",
        file: "deploy/services/web/taskdef.json",
        from: "{{ var.cpu }}",
        to: "{{ var.cpu }",
        tag: "v1.0.0",
        expect: &["taskdef.json:5:", "syntax error"],
    },
    Bad {
        name: "not a task definition",
        file: "deploy/services/web/taskdef.json",
        from: "\"networkMode\"",
        to: "\"netwrokMode\"",
        tag: "v1.0.0",
        expect: &["taskdef.json:3:", "unknown field `netwrokMode`"],
    },
    Bad {
        name: "numeric cpu",
        file: "deploy/services/web/taskdef.json",
        from: "\"{{ var.cpu }}\"",
        to: "{{ var.cpu }}",
        tag: "v1.0.0",
        expect: &["taskdef.json:5:", "expected a string"],
    },
    Bad {
        name: "image not rendered in",
        file: "deploy/services/web/taskdef.json",
        from: "{{ cutover.image }}",
        to: "web:latest",
        tag: "v1.0.0",
        expect: &[
            "taskdef.json",
            "does not run the image",
            "{{ cutover.image }}",
        ],
    },
    Bad {
        name: "container missing",
        file: "deploy/services/web/service.toml",
        from: "container = \"web\"",
        to: "container = \"api\"",
        tag: "v1.0.0",
        expect: &["taskdef.json", "no container named `api`"],
    },
    Bad {
        name: "merge shape clash",
        file: "deploy/services/web/variables.json",
        from: "{",
        to: "{\"cpu\": {\"units\": 256},",
        tag: "v1.0.0",
        expect: &[
            "services/web/variables.json",
            "environments/production/variables.json",
            "`cpu`",
        ],
    },
    Bad {
        name: "variables not an object",
        file: "deploy/services/web/variables.json",
        from: "{",
        to: "[{",
        tag: "v1.0.0",
        expect: &["variables.json"],
    },
    Bad {
        name: "two production targets",
        file: "deploy/services/web/service.toml",
        from: "test_listener_arn",
        to: "production_rule_arn = \"arn:rule\"\ntest_listener_arn",
        tag: "v1.0.0",
        expect: &["service.toml", "exactly one of"],
    },
    Bad {
        name: "same slot twice",
        file: "deploy/services/web/service.toml",
        from: "service = \"web-green\"",
        to: "service = \"web-blue\"",
        tag: "v1.0.0",
        expect: &["service.toml", "different ECS services"],
    },
    Bad {
        name: "test listener is the production listener",
        file: "deploy/services/web/service.toml",
        from: "0123456789abcdef/fedcba9876543210",
        to: "0123456789abcdef/0123456789abcdef",
        tag: "v1.0.0",
        expect: &["service.toml", "test_listener_arn", "production listener"],
    },
    Bad {
        name: "version header without expect_version",
        file: "deploy/services/web/service.toml",
        from: "expect_version = true\n# version_header = \"x-app-version\"",
        to: "version_header = \"x-app-version\"",
        tag: "v1.0.0",
        expect: &["service.toml", "version_header", "expect_version = true"],
    },
    Bad {
        name: "history deeper than one SSM parameter holds",
        file: "deploy/services/web/service.toml",
        from: "depth = 10",
        to: "depth = 40",
        tag: "v1.0.0",
        expect: &["service.toml", "[history] depth = 40", "at most 12"],
    },
    Bad {
        name: "canary percent out of range",
        file: "deploy/services/web/service.toml",
        from: "percent = 10",
        to: "percent = 100",
        tag: "v1.0.0",
        expect: &["service.toml", "between 1 and 99"],
    },
    Bad {
        name: "non-semver tag",
        file: "deploy/services/web/service.toml",
        from: "",
        to: "",
        tag: "latest",
        expect: &["`latest` is not a release tag", "v1.2.3"],
    },
    Bad {
        name: "branch ref",
        file: "deploy/services/web/service.toml",
        from: "",
        to: "",
        tag: "refs/heads/main",
        expect: &["not a release tag", "branch"],
    },
    Bad {
        name: "prerelease to production",
        file: "deploy/services/web/service.toml",
        from: "",
        to: "",
        tag: "v1.0.0-rc.1",
        expect: &[
            "environment.toml",
            "prerelease v1.0.0-rc.1 may not deploy to `production`",
            "allow_prerelease",
        ],
    },
    Bad {
        name: "the flat alarm list of earlier versions",
        file: "deploy/services/web/service.toml",
        from: "[validation]\n",
        to: "[validation]\nalarms = [\"web-blue-5xx\", \"web-slo\"]\n",
        tag: "v1.0.0",
        expect: &[
            "service.toml:51:",
            "`[validation] alarms` is no longer read",
            "`alarms = [\"web-blue-5xx\"]` under [slots.blue]",
            "`service_alarms = [\"web-slo\"]` under [validation]",
        ],
    },
];

#[test]
fn every_bad_input_exits_2_names_the_place_and_changes_nothing() {
    for bad in BAD {
        let dir = scaffold();
        render(dir.path(), "v0.1.0").success();
        let before = snapshot_build(dir.path());
        if !bad.from.is_empty() {
            edit(dir.path(), bad.file, bad.from, bad.to);
        }
        let a = render(dir.path(), bad.tag).code(2);
        let err = stderr_of(&a);
        for needle in bad.expect {
            assert!(
                err.contains(needle),
                "{}: stderr lacks `{needle}`:\n{err}",
                bad.name
            );
        }
        assert!(err.contains("error:"), "{}: {err}", bad.name);
        assert_eq!(
            snapshot_build(dir.path()),
            before,
            "{}: build/ changed",
            bad.name
        );
    }
}

#[test]
fn missing_files_and_folders_are_named() {
    let dir = scaffold();
    std::fs::remove_file(dir.path().join("deploy/services/web/taskdef.json")).unwrap();
    let err = stderr_of(&render(dir.path(), "v1.0.0").code(2));
    assert!(
        err.contains("deploy/services/web/taskdef.json: cannot read"),
        "{err}"
    );

    let err = stderr_of(
        &cutover(dir.path())
            .args([
                "--config-dir",
                "nowhere",
                "render",
                "-e",
                "production",
                "-s",
                "web",
                "-t",
                "v1",
                "--image",
                IMAGE,
            ])
            .assert()
            .code(2),
    );
    assert!(err.contains("v1"), "a bad tag is caught first: {err}");
    let err = stderr_of(
        &cutover(dir.path())
            .args([
                "--config-dir",
                "nowhere",
                "render",
                "-e",
                "production",
                "-s",
                "web",
                "-t",
                "v1.0.0",
                "--image",
                IMAGE,
            ])
            .assert()
            .code(2),
    );
    assert!(
        err.contains("nowhere: config folder not found") && err.contains("cutover init"),
        "{err}"
    );

    let err = stderr_of(
        &cutover(dir.path())
            .args([
                "render", "-e", "prod", "-s", "web", "-t", "v1.0.0", "--image", IMAGE,
            ])
            .assert()
            .code(2),
    );
    assert!(
        err.contains("unknown environment `prod`") && err.contains("known: production"),
        "{err}"
    );
    let err = stderr_of(
        &cutover(dir.path())
            .args([
                "render",
                "-e",
                "production",
                "-s",
                "api",
                "-t",
                "v1.0.0",
                "--image",
                IMAGE,
            ])
            .assert()
            .code(2),
    );
    assert!(
        err.contains("unknown service `api`") && err.contains("known: web"),
        "{err}"
    );
}

#[test]
fn init_never_overwrites() {
    let dir = scaffold();
    let marker = "# my edits\n";
    let env_file = dir
        .path()
        .join("deploy/environments/production/environment.toml");
    let mut text = std::fs::read_to_string(&env_file).unwrap();
    text.push_str(marker);
    std::fs::write(&env_file, &text).unwrap();
    let err = stderr_of(&cutover(dir.path()).arg("init").assert().code(2));
    assert!(err.contains("web/service.toml: already exists"), "{err}");
    assert!(
        std::fs::read_to_string(&env_file)
            .unwrap()
            .ends_with(marker)
    );
    // A second service next to the first is fine, and nothing of the first changes: the
    // environment's files are kept as they are (before, this was refused because they
    // existed, so no second service of an environment could be scaffolded).
    let out = cutover(dir.path())
        .args(["init", "--service", "api"])
        .assert()
        .success();
    let written = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        written.contains("deploy/services/api/service.toml"),
        "{written}"
    );
    assert!(!written.contains("environment.toml"), "{written}");
    assert!(
        std::fs::read_to_string(&env_file)
            .unwrap()
            .ends_with(marker)
    );
    cutover(dir.path())
        .args(["init", "--env", "staging", "--service", "api"])
        .assert()
        .success();
    assert!(
        std::fs::read_to_string(&env_file)
            .unwrap()
            .ends_with(marker)
    );
}

/// `init --env staging --service SERVICE --from-terraform tf.json` in `dir`; the
/// service.toml it wrote.
fn staging_from_terraform(dir: &Path, service: &str) -> String {
    cutover(dir)
        .args(["init", "--env", "staging", "--service", service])
        .args(["--from-terraform", "tf.json"])
        .assert()
        .success();
    std::fs::read_to_string(dir.join(format!("deploy/services/{service}/service.toml"))).unwrap()
}

/// `render` of SERVICE's v2.0.0 in staging; the task definition it wrote.
fn staging_rendered(dir: &Path, service: &str) -> String {
    cutover(dir)
        .args([
            "render", "-e", "staging", "-s", service, "-t", "v2.0.0", "--image", IMAGE,
        ])
        .assert()
        .success();
    std::fs::read_to_string(dir.join(format!("build/staging/{service}/taskdef.json"))).unwrap()
}

#[test]
fn init_from_terraform_outputs() {
    let dir = TempDir::new().unwrap();
    let outputs = serde_json::json!({
        "cutover_service": {"sensitive": false, "value": {
            "image": {"repository": "shop"},
            "ecs": {"cluster": "shop-cluster", "container": "app", "container_port": 3000},
            "slots": {"blue": {"service": "shop-blue", "target_group_arn": "arn:tg/blue", "alarms": ["shop-blue-5xx"]},
                      "green": {"service": "shop-green", "target_group_arn": "arn:tg/green", "alarms": ["shop-green-5xx"]}},
            "traffic": {"production_listener_arn": "arn:listener/prod", "test_listener_arn": "arn:listener/test", "test_url": "http://alb:8443"},
            "validation": {"service_alarms": ["shop-slo"]}}},
        "cutover_environment": {"sensitive": false, "value": {"region": "ap-southeast-1", "account_id": "210987654321", "ssm_prefix": "/cutover"}},
        "execution_role_arn": {"value": "arn:aws:iam::210987654321:role/exec"},
        "task_role_arn": {"value": "arn:aws:iam::210987654321:role/task"},
        "log_group_name": {"value": "/ecs/shop"},
        "task_definition_family": {"value": "shop-staging"},
        "cutover_workers": {"sensitive": false, "value": {"jobs": {
            "image": {"repository": "shop"},
            "ecs": {"cluster": "shop-cluster", "container": "jobs"},
            "worker": {"service": "jobs-staging"},
            "history": {"depth": 10},
            "family": "jobs-staging"}}}
    });
    std::fs::write(dir.path().join("tf.json"), outputs.to_string()).unwrap();
    let service = staging_from_terraform(dir.path(), "shop");
    for needle in [
        "cluster = \"shop-cluster\"",
        "container_port = 3000",
        "target_group_arn = \"arn:tg/green\"",
        "alarms = [\"shop-blue-5xx\"]",
        "alarms = [\"shop-green-5xx\"]",
        "service_alarms = [\"shop-slo\"]",
    ] {
        assert!(service.contains(needle), "{needle}:\n{service}");
    }
    let env = std::fs::read_to_string(
        dir.path()
            .join("deploy/environments/staging/environment.toml"),
    )
    .unwrap();
    assert!(
        env.contains("account_id = \"210987654321\"")
            && env.contains("region = \"ap-southeast-1\"")
    );
    let taskdef = staging_rendered(dir.path(), "shop");
    assert!(
        taskdef.contains("\"family\": \"shop-staging\""),
        "{taskdef}"
    );

    // A worker of the stack (terraform's `workers`): named by --service, filled from its
    // `cutover_workers` entry — the shared image and cluster, its container, its ECS
    // service and its own family — and rendered unchanged.
    let jobs = staging_from_terraform(dir.path(), "jobs");
    for needle in [
        "[worker]\n",
        "service = \"jobs-staging\"",
        "repository = \"shop\"",
        "cluster = \"shop-cluster\"",
        "container = \"jobs\"",
    ] {
        assert!(jobs.contains(needle), "{needle}:\n{jobs}");
    }
    assert!(!jobs.contains("container_port"), "{jobs}");
    let taskdef = staging_rendered(dir.path(), "jobs");
    assert!(
        taskdef.contains("\"family\": \"jobs-staging\""),
        "{taskdef}"
    );
    assert!(!taskdef.contains("portMappings"), "{taskdef}");

    std::fs::write(
        dir.path().join("bad.json"),
        r#"{"cutover_service": {"value": {}}}"#,
    )
    .unwrap();
    let err = stderr_of(
        &cutover(dir.path())
            .args([
                "init",
                "--env",
                "e2",
                "--service",
                "s2",
                "--from-terraform",
                "bad.json",
            ])
            .assert()
            .code(2),
    );
    assert!(
        err.contains("bad.json: missing `cutover_service.slots.blue.alarms`"),
        "{err}"
    );
    assert!(!dir.path().join("deploy/services/s2").exists());

    // Outputs of a module from before alarms by slot: refused, saying what to update.
    let mut old = outputs.clone();
    old["cutover_service"]["value"]["validation"] =
        serde_json::json!({"alarms": ["shop-blue-5xx"]});
    std::fs::write(dir.path().join("old.json"), old.to_string()).unwrap();
    let err = stderr_of(
        &cutover(dir.path())
            .args([
                "init",
                "--env",
                "e3",
                "--service",
                "s3",
                "--from-terraform",
                "old.json",
            ])
            .assert()
            .code(2),
    );
    assert!(
        err.contains("old.json: `cutover_service.validation.alarms` is the flat alarm list")
            && err.contains("terraform/modules/ecs-blue-green-service"),
        "{err}"
    );
}

#[test]
fn render_replaces_the_previous_trail_whole() {
    let dir = scaffold();
    render(dir.path(), "v0.1.0").success();
    render(dir.path(), "v0.2.0").success();
    let settings = std::fs::read_to_string(build_dir(dir.path()).join("settings.json")).unwrap();
    assert!(settings.contains("\"version\": \"v0.2.0\""), "{settings}");
}

/// `cutover status --json | head`: the reader leaving early is not an error.
#[test]
fn a_reader_that_leaves_early_is_not_an_error() {
    let dir = TempDir::new().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .arg("init")
        .current_dir(dir.path())
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    // The work itself was done.
    assert!(dir.path().join("deploy/environments").is_dir());
}
