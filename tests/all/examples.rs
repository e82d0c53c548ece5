//! The example workflows users copy, run the way the runner runs them: each cutover step's
//! `with:` map read verbatim from `examples/github-workflows/*.yml`, its `${{ }}`
//! expressions resolved with the values that job would see, turned into `INPUT_*` exactly
//! as the runner does (declared defaults from action.yml included), and `cutover action`
//! run against moto, the test registry and a wiremock GitHub: the tag push (stage), the
//! approval job with the stage job's output (promote), then the rollback dispatch.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::action::{Job, Run, TOKEN};
use crate::e2e::{World, live};

/// A YAML file as JSON, parsed by PyYAML from the test venv (the workflow linters' own
/// parser family), so the test needs no YAML crate.
pub(crate) fn yaml(path: &Path) -> Value {
    let venv = std::env::var("CUTOVER_VENV")
        .unwrap_or_else(|_| format!("{}/.cache/cutover/venv", std::env::var("HOME").unwrap()));
    let out = std::process::Command::new(format!("{venv}/bin/python"))
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(path)
        .output()
        .expect("the test venv's python (scripts/install.sh)");
    assert!(
        out.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `${{ expr }}` replaced from `values` (keyed by the trimmed expression); an expression
/// the test has no value for fails the test, naming it.
pub(crate) fn resolve(text: &str, values: &BTreeMap<&str, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        let end = rest[start..]
            .find("}}")
            .unwrap_or_else(|| panic!("unclosed expression in {text:?}"))
            + start;
        let expr = rest[start + 3..end].trim();
        let value = values
            .get(expr)
            .unwrap_or_else(|| panic!("no test value for `${{{{ {expr} }}}}` in {text:?}"));
        out.push_str(&rest[..start]);
        out.push_str(value);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The env the runner gives a Docker action's container for one step: `INPUT_<NAME>` for
/// every `with:` key and every declared input with a default, the name upper-cased with
/// spaces turned into underscores (hyphens stay), values with expressions resolved.
pub(crate) fn input_env(
    action: &Value,
    with: &serde_json::Map<String, Value>,
    values: &BTreeMap<&str, String>,
) -> Vec<(String, String)> {
    let declared = action["inputs"].as_object().expect("action.yml has inputs");
    let mut inputs: BTreeMap<String, String> = BTreeMap::new();
    for (name, spec) in declared {
        if let Some(default) = spec.get("default") {
            inputs.insert(name.clone(), scalar(default));
        }
    }
    for (name, value) in with {
        assert!(
            declared.contains_key(name),
            "`with: {name}` is no input of action.yml"
        );
        inputs.insert(name.clone(), scalar(value));
    }
    inputs
        .into_iter()
        .map(|(name, value)| {
            (
                format!("INPUT_{}", name.replace(' ', "_").to_uppercase()),
                resolve(&value, values),
            )
        })
        .collect()
}

/// A YAML scalar as the runner hands it over: a string (booleans and numbers as written).
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Whether a step runs the cutover action (the examples name it `<owner>/cutover@<ref>`).
fn is_cutover(step: &Value) -> bool {
    step["uses"]
        .as_str()
        .is_some_and(|u| u.split('@').next().is_some_and(|a| a.ends_with("/cutover")))
}

/// The `with:` map of the one cutover step of a job.
fn cutover_with<'a>(workflow: &'a Value, job: &str) -> &'a serde_json::Map<String, Value> {
    let steps = workflow["jobs"][job]["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("job {job} has no steps"));
    let mut cutover = steps.iter().filter(|s| is_cutover(s));
    let step = cutover
        .next()
        .unwrap_or_else(|| panic!("job {job} has no cutover step"));
    assert!(cutover.next().is_none(), "job {job} has two cutover steps");
    step["with"]
        .as_object()
        .expect("the cutover step has `with:`")
}

fn repo_file(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The scaffold of `World` (environment `test`, service = the stack's name) renamed to the
/// names the examples use, with the production approval the scaffold writes, and its own
/// SSM prefix so runs never share a lock or history.
fn as_the_examples_name_it(w: &World) {
    let deploy = w.root.join("deploy");
    std::fs::rename(
        deploy.join("environments/test"),
        deploy.join("environments/production"),
    )
    .unwrap();
    std::fs::rename(
        deploy.join(format!("services/{}", w.stack.name)),
        deploy.join("services/web"),
    )
    .unwrap();
    let env = deploy.join("environments/production/environment.toml");
    let text = std::fs::read_to_string(&env).unwrap();
    assert!(text.contains("required = false"), "{text}");
    assert!(text.contains("ssm_prefix = \"/cutover\""), "{text}");
    let text = text.replace("required = false", "required = true").replace(
        "ssm_prefix = \"/cutover\"",
        &format!("ssm_prefix = \"/cutover/{}\"", w.stack.name),
    );
    std::fs::write(&env, text).unwrap();
}

/// One step of an example job: `cutover action` with the runner's env for that step.
fn run_step(
    w: &World,
    job: &Job,
    action: &Value,
    with: &serde_json::Map<String, Value>,
    values: &BTreeMap<&str, String>,
    git_ref: &str,
) -> Run {
    let mut cmd = w.process();
    cmd.arg(
        action["runs"]["args"][0]
            .as_str()
            .expect("action.yml runs.args"),
    )
    .env_remove("CUTOVER_ENV")
    .env_remove("CUTOVER_SERVICE")
    .env_remove("CUTOVER_LOG")
    .env_remove("RUST_LOG")
    .envs(input_env(action, with, values))
    .envs(job.github_env(git_ref));
    job.run_command(cmd)
}

#[test]
fn the_example_workflows_run_as_the_runner_runs_them() {
    let Some(w) = World::new("x") else { return };
    as_the_examples_name_it(&w);
    let action = yaml(&repo_file("action.yml"));
    let deploy = yaml(&repo_file("examples/github-workflows/deploy.yml"));
    let rollback = yaml(&repo_file("examples/github-workflows/rollback.yml"));
    let job = Job::new(&w);
    let mut values: BTreeMap<&str, String> = BTreeMap::new();
    values.insert("github.token", TOKEN.to_string());

    // The stage job (deploy.yml on a tag push) and the approved promote job after it, for
    // two tags, so the rollback has a release to return to.
    let stage = cutover_with(&deploy, "stage");
    let promote = cutover_with(&deploy, "promote");
    let mut live_of = BTreeMap::new();
    for version in ["1.0.0", "1.1.0"] {
        w.version_file(version);
        let tag = format!("v{version}");
        let git_ref = format!("refs/tags/{tag}");
        let before = w.weights();
        let staged = run_step(&w, &job, &action, stage, &values, &git_ref).expect(0);
        // Held for approval, and production did not move.
        let held = (staged.output("status"), w.weights());
        assert_eq!(held, ("AwaitingApproval", before), "{}", staged.all());
        // The stage job's `outputs.version` is its cutover step's `version` output.
        let output = deploy["jobs"]["stage"]["outputs"]["version"]
            .as_str()
            .expect("deploy.yml's stage job exports version");
        assert_eq!(output, "${{ steps.stage.outputs.version }}");
        values.insert(
            "needs.stage.outputs.version",
            staged.output("version").to_string(),
        );

        let promoted = run_step(&w, &job, &action, promote, &values, &git_ref).expect(0);
        assert_eq!(promoted.output("status"), "Promoted", "{}", promoted.all());
        assert_eq!(promoted.output("version"), tag, "{}", promoted.all());
        let slot = live(w.weights());
        assert_eq!(promoted.output("live-slot"), slot, "{}", promoted.all());
        live_of.insert(tag, slot);
    }
    assert_ne!(live_of["v1.0.0"], live_of["v1.1.0"], "{live_of:?}");

    // The rollback dispatch with its default input (`true`: the previous release). The
    // runner takes a dispatch's inputs from the form, which starts at the declared default.
    // YAML 1.1 (PyYAML) reads the key `on` as the boolean true.
    let on = rollback.get("on").unwrap_or(&rollback["true"]);
    let default = on["workflow_dispatch"]["inputs"]["rollback"]["default"]
        .as_str()
        .expect("rollback.yml's input has a default");
    values.insert("inputs.rollback", default.to_string());
    let back = cutover_with(&rollback, "rollback");
    let run = run_step(&w, &job, &action, back, &values, "refs/heads/main").expect(0);
    assert_eq!(run.output("status"), "RolledBack", "{}", run.all());
    assert_eq!(live(w.weights()), live_of["v1.0.0"], "{}", run.all());
}

#[test]
fn input_names_follow_the_runner() {
    let action = serde_json::json!({ "inputs": {
        "config-dir": { "default": "deploy" },
        "dry run": { "default": false },
        "github-token": { "default": "${{ github.token }}" },
        "tag": {},
    }});
    let with = serde_json::json!({ "tag": "${{ needs.stage.outputs.version }}" });
    let values = BTreeMap::from([
        ("github.token", "t0k".to_string()),
        ("needs.stage.outputs.version", "v1.2.3".to_string()),
    ]);
    let env = input_env(&action, with.as_object().unwrap(), &values);
    assert_eq!(
        env,
        [
            ("INPUT_CONFIG-DIR", "deploy"),
            ("INPUT_DRY_RUN", "false"),
            ("INPUT_GITHUB-TOKEN", "t0k"),
            ("INPUT_TAG", "v1.2.3"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    );
}
