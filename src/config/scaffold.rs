//! `cutover init`: a commented deploy/ folder with one environment and one service that
//! `cutover render` accepts unchanged. Values come from placeholders or, with
//! `--from-terraform`, from `terraform output -json` of terraform/examples/complete.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{ConfigError, Layout};

const ENVIRONMENT_TOML: &str = include_str!("scaffold/environment.toml");
const ENV_VARIABLES: &str = include_str!("scaffold/env-variables.json");
const SERVICE_TOML: &str = include_str!("scaffold/service.toml");
const WORKER_TOML: &str = include_str!("scaffold/worker.toml");
const TASKDEF: &str = include_str!("scaffold/taskdef.json");
const SERVICE_VARIABLES: &str = include_str!("scaffold/service-variables.json");

/// Write the scaffold. Refuses to overwrite any existing file, and checks all of them
/// before writing one, so a refusal leaves the folder as it was. `worker`: the service is
/// a worker running as that ECS service (`[worker]`, no slots, traffic or port).
pub fn init(
    layout: &Layout,
    env: &str,
    service: &str,
    terraform: Option<&Path>,
    worker: Option<&str>,
) -> Result<Vec<PathBuf>, ConfigError> {
    for (kind, name) in [("environment", env), ("service", service)] {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ConfigError::new(
                &layout.root,
                format!("`{name}` is not a usable {kind} name"),
            )
            .hint("use letters, digits, - and _ (it becomes a folder and part of SSM paths)"));
        }
    }
    let (mut values, worker) = match (terraform, worker) {
        // A terraform worker's ECS service is its output's; naming one too could only
        // disagree with it.
        (Some(file), Some(_)) => {
            return Err(ConfigError::new(
                file,
                "--worker with --from-terraform: the worker's ECS service comes from the `cutover_workers` output",
            )
            .hint("drop --worker: `--from-terraform FILE --service <worker>` scaffolds a worker of terraform's `workers`"));
        }
        (Some(file), None) => from_terraform(file, service)?,
        (None, worker) => (placeholders(), worker.map(str::to_string)),
    };
    if let Some(ecs_service) = &worker {
        if ecs_service.trim().is_empty() {
            return Err(
                ConfigError::new(&layout.root, "--worker names no ECS service")
                    .hint("give the worker's ECS service, e.g. `--worker jobs`"),
            );
        }
        values.insert("WORKER_SERVICE", ecs_service.clone());
        if terraform.is_none() {
            for key in ["REPOSITORY", "CONTAINER"] {
                values.insert(key, "@@SERVICE@@".into());
            }
        }
    }
    let worker = worker.is_some();
    let fill = |template: &str| {
        // Values first: a placeholder value may itself name the environment or service.
        let mut out = template.to_string();
        for (key, value) in &values {
            out = out.replace(&format!("@@{key}@@"), value);
        }
        out.replace("@@ENV@@", env).replace("@@SERVICE@@", service)
    };
    let env_dir = layout.env_dir(env);
    let svc_dir = layout.service_dir(service);
    let files = [
        (env_dir.join("environment.toml"), fill(ENVIRONMENT_TOML)),
        (env_dir.join("variables.json"), fill(ENV_VARIABLES)),
        (
            svc_dir.join("service.toml"),
            fill(if worker { WORKER_TOML } else { SERVICE_TOML }),
        ),
        (svc_dir.join("taskdef.json"), fill(&taskdef(worker))),
        (svc_dir.join("variables.json"), fill(SERVICE_VARIABLES)),
    ];
    // Two units: the environment's files (shared by its services) and the service's (shared
    // by its environments). A unit whose files exist is kept as it is — a second service of
    // an environment, or a second environment of a service — and written only when none of
    // its files exists (never a half of one beside the other's edits). Both there: refused.
    let (env_files, service_files) = files.split_at(2);
    let absent = |unit: &[(PathBuf, String)]| unit.iter().all(|(path, _)| !path.exists());
    if !absent(env_files) && !absent(service_files) {
        let (path, _) = service_files
            .iter()
            .find(|(path, _)| path.exists())
            .expect("a service file exists");
        return Err(
            ConfigError::new(path, "already exists; cutover init never overwrites")
                .hint("remove it, or scaffold another --env / --service"),
        );
    }
    let files: Vec<_> = [env_files, service_files]
        .into_iter()
        .filter(|unit| absent(unit))
        .flatten()
        .collect();
    for (path, text) in &files {
        let dir = path.parent().expect("scaffold files live in folders");
        std::fs::create_dir_all(dir)
            .map_err(|e| ConfigError::new(dir, format!("cannot create: {e}")))?;
        std::fs::write(path, text)
            .map_err(|e| ConfigError::new(path, format!("cannot write: {e}")))?;
    }
    Ok(files.into_iter().map(|(path, _)| path.clone()).collect())
}

/// The task definition template; a worker's container maps no port (nothing routes to it).
fn taskdef(worker: bool) -> String {
    if !worker {
        return TASKDEF.to_string();
    }
    TASKDEF
        .lines()
        .filter(|line| !line.contains("\"portMappings\""))
        .map(|line| format!("{line}\n"))
        .collect()
}

fn placeholders() -> BTreeMap<&'static str, String> {
    let arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012";
    BTreeMap::from([
        ("REGION", "eu-west-1".into()),
        ("ACCOUNT_LINE", "# account_id = \"123456789012\"".into()),
        ("SSM_PREFIX", "/cutover".into()),
        ("REPOSITORY", "web".into()),
        ("CLUSTER", "web".into()),
        ("CONTAINER", "web".into()),
        ("CONTAINER_PORT", "8080".into()),
        ("BLUE_SERVICE", "web-blue".into()),
        ("GREEN_SERVICE", "web-green".into()),
        (
            "BLUE_TG",
            format!("{arn}:targetgroup/web-blue/0123456789abcdef"),
        ),
        (
            "GREEN_TG",
            format!("{arn}:targetgroup/web-green/0123456789abcdef"),
        ),
        (
            "PROD_LISTENER",
            format!("{arn}:listener/app/web/0123456789abcdef/0123456789abcdef"),
        ),
        (
            "TEST_LISTENER",
            format!("{arn}:listener/app/web/0123456789abcdef/fedcba9876543210"),
        ),
        (
            "TEST_URL",
            "http://web-123456789.eu-west-1.elb.amazonaws.com:8443".into(),
        ),
        ("BLUE_ALARMS", "\"web-blue-5xx\"".into()),
        ("GREEN_ALARMS", "\"web-green-5xx\"".into()),
        ("SERVICE_ALARMS", String::new()),
        (
            "EXECUTION_ROLE",
            "arn:aws:iam::123456789012:role/web-execution".into(),
        ),
        (
            "TASK_ROLE",
            "arn:aws:iam::123456789012:role/web-task".into(),
        ),
        ("LOG_GROUP", "/ecs/web".into()),
        // terraform/ names the family <service>-<env>; the deploy role may register only it.
        ("FAMILY", "@@SERVICE@@-{{ cutover.env }}".into()),
    ])
}

/// Values from `terraform output -json`: the `cutover_service` and `cutover_environment`
/// outputs mirror service.toml and environment.toml; role ARNs and the log group come from
/// their own outputs. A `service` that `cutover_workers` names is a worker of the stack:
/// its values are that entry's, and its ECS service is returned.
fn from_terraform(
    file: &Path,
    service: &str,
) -> Result<(BTreeMap<&'static str, String>, Option<String>), ConfigError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| ConfigError::new(file, format!("cannot read: {e}")))?;
    let outputs: Value = serde_json::from_str(&text).map_err(|e| {
        ConfigError::new(file, format!("not valid JSON: {e}"))
            .at_line(e.line())
            .hint("write it with `terraform output -json > FILE`")
    })?;
    let missing = |path: &str| {
        ConfigError::new(file, format!("missing `{path}`"))
            .hint("run `terraform output -json` in terraform/examples/complete (or a root using the module's outputs)")
    };
    let get = |path: &str| -> Result<&Value, ConfigError> {
        let mut parts = path.split('.');
        let output = parts.next().unwrap_or_default();
        let mut v = outputs
            .get(output)
            .and_then(|o| o.get("value"))
            .ok_or_else(|| missing(path))?;
        for key in parts {
            v = v.get(key).ok_or_else(|| missing(path))?;
        }
        Ok(v)
    };
    let text_of = |path: &str| -> Result<String, ConfigError> {
        match get(path)? {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(ConfigError::new(
                file,
                format!("`{path}` should be a string, found {other}"),
            )),
        }
    };
    if get("cutover_service.validation.alarms").is_ok() {
        return Err(ConfigError::new(file, "`cutover_service.validation.alarms` is the flat alarm list of an older terraform/ module")
            .hint("update terraform/modules/ecs-blue-green-service (its outputs now give slots.<slot>.alarms and validation.service_alarms), run `terraform apply`, then `terraform output -json` again"));
    }
    let names = |path: &str| -> Result<String, ConfigError> {
        let list = get(path)?.as_array().ok_or_else(|| {
            ConfigError::new(file, format!("`{path}` should be a list of alarm names"))
        })?;
        Ok(list
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", "))
    };
    let worker = format!("cutover_workers.{service}");
    let is_worker = get(&worker).is_ok();
    let blue_alarms = names("cutover_service.slots.blue.alarms")?;
    let green_alarms = names("cutover_service.slots.green.alarms")?;
    let service_alarms = names("cutover_service.validation.service_alarms")?;
    let mut values = BTreeMap::from([
        ("REGION", text_of("cutover_environment.region")?),
        (
            "ACCOUNT_LINE",
            format!(
                "account_id = \"{}\"",
                text_of("cutover_environment.account_id")?
            ),
        ),
        ("SSM_PREFIX", text_of("cutover_environment.ssm_prefix")?),
        ("REPOSITORY", text_of("cutover_service.image.repository")?),
        ("CLUSTER", text_of("cutover_service.ecs.cluster")?),
        ("CONTAINER", text_of("cutover_service.ecs.container")?),
        (
            "CONTAINER_PORT",
            text_of("cutover_service.ecs.container_port")?,
        ),
        (
            "BLUE_SERVICE",
            text_of("cutover_service.slots.blue.service")?,
        ),
        (
            "GREEN_SERVICE",
            text_of("cutover_service.slots.green.service")?,
        ),
        (
            "BLUE_TG",
            text_of("cutover_service.slots.blue.target_group_arn")?,
        ),
        (
            "GREEN_TG",
            text_of("cutover_service.slots.green.target_group_arn")?,
        ),
        (
            "PROD_LISTENER",
            text_of("cutover_service.traffic.production_listener_arn")?,
        ),
        (
            "TEST_LISTENER",
            text_of("cutover_service.traffic.test_listener_arn")?,
        ),
        ("TEST_URL", text_of("cutover_service.traffic.test_url")?),
        ("BLUE_ALARMS", blue_alarms),
        ("GREEN_ALARMS", green_alarms),
        ("SERVICE_ALARMS", service_alarms),
        ("EXECUTION_ROLE", text_of("execution_role_arn")?),
        ("TASK_ROLE", text_of("task_role_arn")?),
        ("LOG_GROUP", text_of("log_group_name")?),
        ("FAMILY", text_of("task_definition_family")?),
    ]);
    if !is_worker {
        return Ok((values, None));
    }
    for (key, path) in [
        ("REPOSITORY", "image.repository"),
        ("CLUSTER", "ecs.cluster"),
        ("CONTAINER", "ecs.container"),
        ("FAMILY", "family"),
    ] {
        values.insert(key, text_of(&format!("{worker}.{path}"))?);
    }
    Ok((values, Some(text_of(&format!("{worker}.worker.service"))?)))
}
