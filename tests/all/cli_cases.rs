//! The CLI contract as data: one small case file per exit code and input class in
//! tests/cmd/*.toml (format in tests/cmd/README.md), run against the real binary, and every
//! verb's `--help` as a snapshot, so a change to the CLI surface shows up in review.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use clap::CommandFactory;
use serde::Deserialize;
use tempfile::TempDir;

/// One case file. Strict, so a misspelt key fails instead of checking nothing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// Arguments after `cutover`.
    args: Vec<String>,
    /// Variables set on top of the controlled environment.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// A folder under tests/cmd/fixtures/ whose contents become the working directory.
    config: Option<String>,
    /// The expected exit code.
    code: i32,
    /// Substrings that must appear in stderr, in this order.
    #[serde(default)]
    stderr: Vec<String>,
    /// Substrings that must appear in stdout, in this order.
    #[serde(default)]
    stdout: Vec<String>,
    /// The run must end within this many seconds (a failure that retries is not fast).
    max_secs: Option<u64>,
}

/// What Rust's Debug output looks like. No error message may contain it, in any case:
/// every case is an error path reached offline (issue 15: an SDK error printed as
/// `DispatchFailure(DispatchFailure { … })`).
const DEBUG_SHAPES: &[&str] = &[
    "Error {",
    "Error(",
    "Failure(",
    "Failure {",
    "Some(",
    "None,",
    "kind:",
    "source:",
    "{ source",
    "HeaderValue",
];

fn debug_shape(stderr: &str) -> Option<&'static str> {
    DEBUG_SHAPES.iter().copied().find(|s| stderr.contains(s))
}

/// Host variables that would change what cutover does: the runner's own GitHub and AWS
/// set-up, a developer's CUTOVER_* defaults, log filters, terminal width.
const HOST_PREFIXES: &[&str] = &[
    "GITHUB_", "INPUT_", "CUTOVER_", "AWS_", "ACTIONS_", "RUNNER_", "DOCKER_",
];
const HOST_VARS: &[&str] = &["CI", "RUST_LOG", "COLUMNS", "LINES"];

/// A case's longest allowed run: every case is offline, so anything slower is retrying
/// something it should not reach.
const TIMEOUT: Duration = Duration::from_secs(20);

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cmd")
}

/// `cutover` in `work`, with `home` as HOME and nothing from the host that matters.
/// AWS points at a closed port and instance metadata is off, so a case that reaches AWS
/// fails fast instead of calling out.
fn cutover(work: &Path, home: &Path) -> Command {
    let mut cmd = Command::cargo_bin("cutover").unwrap();
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if HOST_VARS.contains(&name.as_ref()) || HOST_PREFIXES.iter().any(|p| name.starts_with(p)) {
            cmd.env_remove(name.as_ref());
        }
    }
    cmd.current_dir(work)
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .timeout(TIMEOUT);
    cmd
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// The first needle (in order) that `text` lacks.
fn missing<'a>(text: &str, needles: &'a [String]) -> Option<&'a str> {
    let mut rest = text;
    for needle in needles {
        match rest.find(needle.as_str()) {
            Some(at) => rest = &rest[at + needle.len()..],
            None => return Some(needle),
        }
    }
    None
}

/// Runs one case file; `Err` says what differed, with the full output.
fn run(file: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let case: Case = toml::from_str(&text).map_err(|e| format!("not a case: {e}"))?;
    let dir = TempDir::new().unwrap();
    let (work, home) = (dir.path().join("work"), dir.path().join("home"));
    std::fs::create_dir_all(&home).unwrap();
    if let Some(name) = &case.config {
        let from = cases_dir().join("fixtures").join(name);
        copy_dir(&from, &work).map_err(|e| format!("fixture {}: {e}", from.display()))?;
    }
    std::fs::create_dir_all(&work).unwrap();
    let started = std::time::Instant::now();
    let out = cutover(&work, &home)
        .args(&case.args)
        .envs(&case.env)
        .output()
        .map_err(|e| format!("did not finish: {e}"))?;
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let problem = match out.status.code() {
        None => Some(format!(
            "no exit code: killed by a signal or at the {TIMEOUT:?} limit"
        )),
        Some(code) if code != case.code => Some(format!("exit {code}, expected {}", case.code)),
        Some(_) if case.max_secs.is_some_and(|s| took > Duration::from_secs(s)) => Some(format!(
            "took {took:?}, more than {}s",
            case.max_secs.unwrap_or_default()
        )),
        Some(_) if debug_shape(&stderr).is_some() => Some(format!(
            "stderr holds Debug output (`{}`)",
            debug_shape(&stderr).unwrap_or_default()
        )),
        Some(_) => missing(&stderr, &case.stderr)
            .map(|needle| format!("stderr lacks (in order) `{needle}`"))
            .or_else(|| {
                missing(&stdout, &case.stdout)
                    .map(|needle| format!("stdout lacks (in order) `{needle}`"))
            }),
    };
    match problem {
        None => Ok(()),
        Some(p) => Err(format!(
            "{p}\n--- stderr ---\n{stderr}--- stdout ---\n{stdout}"
        )),
    }
}

#[test]
fn every_case_file_holds() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no case files in {}",
        cases_dir().display()
    );
    let failures: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let name = file
                .strip_prefix(env!("CARGO_MANIFEST_DIR"))
                .unwrap_or(file);
            run(file)
                .err()
                .map(|why| format!("=== {}: {why}", name.display()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

/// `cutover --help` and `cutover <verb> --help` for every verb clap knows, one snapshot
/// each (`help`, `help_<verb>`).
#[test]
fn help_of_every_verb() {
    let dir = TempDir::new().unwrap();
    let verbs = cutover::cli::Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect::<Vec<_>>();
    let pages = std::iter::once((String::from("help"), vec![]))
        .chain(verbs.into_iter().map(|v| (format!("help_{v}"), vec![v])));
    for (name, mut args) in pages {
        args.push("--help".to_string());
        let out = cutover(dir.path(), dir.path())
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?} wrote to stderr: {stderr}");
        let help = String::from_utf8_lossy(&out.stdout);
        insta::assert_snapshot!(name, help);
    }
}
