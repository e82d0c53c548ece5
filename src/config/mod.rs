//! Configuration: layout discovery, settings, variables merge, template rendering, and the
//! compiled trail in `build/<env>/<service>/`.
//!
//!     <config-dir>/environments/<env>/environment.toml + variables.json
//!     <config-dir>/services/<service>/service.toml + taskdef.json + variables.json

mod alarms;
pub mod duration;
mod error;
pub mod render;
pub mod scaffold;
pub mod settings;
pub mod strategy;
pub mod taskdef;
pub mod variables;
mod write;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

pub use error::ConfigError;
pub use render::Context;
pub use settings::{EnvironmentSettings, ServiceSettings};
pub use taskdef::TaskDefinition;
pub use write::write_build;

/// Where an environment's and a service's files are.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn env_dir(&self, env: &str) -> PathBuf {
        self.root.join("environments").join(env)
    }

    pub fn service_dir(&self, service: &str) -> PathBuf {
        self.root.join("services").join(service)
    }

    /// The folder of an environment or service, or an error listing the ones that exist.
    fn existing(&self, kind: &str, dir: PathBuf, name: &str) -> Result<PathBuf, ConfigError> {
        if dir.is_dir() {
            return Ok(dir);
        }
        if !self.root.is_dir() {
            return Err(
                ConfigError::new(&self.root, "config folder not found").hint(
                    "run `cutover init` to scaffold one, or pass --config-dir / CUTOVER_CONFIG_DIR",
                ),
            );
        }
        let parent = dir.parent().unwrap_or(&self.root);
        let known = list_dirs(parent);
        Err(
            ConfigError::new(&dir, format!("unknown {kind} `{name}`")).hint(if known.is_empty() {
                format!("no {kind} is defined yet under {}", parent.display())
            } else {
                format!("known: {}", known.join(", "))
            }),
        )
    }
}

fn list_dirs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// Everything cutover knows about one environment/service after compiling its config.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub context: Context,
    pub environment: EnvironmentSettings,
    pub service: ServiceSettings,
    pub variables: Value,
    /// Present when the context has an image (the task definition needs one).
    pub task_definition: Option<TaskDefinition>,
}

/// Read, merge, render and validate an environment/service. Nothing is written.
pub fn load(layout: &Layout, context: Context) -> Result<Loaded, ConfigError> {
    let env_dir = layout.existing("environment", layout.env_dir(&context.env), &context.env)?;
    let svc_dir = layout.existing(
        "service",
        layout.service_dir(&context.service),
        &context.service,
    )?;

    let env_file = env_dir.join("environment.toml");
    let env_text = read(&env_file)?;
    let environment: EnvironmentSettings = parse_toml(&env_text, &env_file)?;
    check_version_rules(layout, &context.env, &environment, &env_file, &env_text)?;
    if let Some(version) = &context.version {
        check_prerelease(&environment, &context.env, version, &env_file)?;
    }

    let env_vars_file = env_dir.join("variables.json");
    let svc_vars_file = svc_dir.join("variables.json");
    let variables = variables::merge(
        read_variables(&env_vars_file)?,
        &env_vars_file,
        read_variables(&svc_vars_file)?,
        &svc_vars_file,
    )?;

    let svc_file = svc_dir.join("service.toml");
    let rendered = render::render(&read(&svc_file)?, &svc_file, &context, &variables)?;
    let mut service: ServiceSettings = parse_toml(&rendered, &svc_file)?;
    // Resolved here, where the environment's name is known.
    service
        .validation
        .rehearse_rollback
        .get_or_insert(!production_named(&context.env));
    check_service(&service, &svc_file)?;
    check_region(&environment, &env_file, &service, &svc_file)?;

    let task_definition = match &context.image {
        Some(image) => {
            let td_file = svc_dir.join("taskdef.json");
            let text = render::render(&read(&td_file)?, &td_file, &context, &variables)?;
            let td = taskdef::parse(&text, &td_file)?;
            check_taskdef_against_service(&td, &service, image, &td_file)?;
            Some(td)
        }
        None => None,
    };
    Ok(Loaded {
        context,
        environment,
        service,
        variables,
        task_definition,
    })
}

/// Another environment's `environment.toml` (for `[versions]` rules: where its history
/// lives). `asked_by` says who named it, for the error.
pub fn environment(
    layout: &Layout,
    name: &str,
    asked_by: &str,
) -> Result<EnvironmentSettings, ConfigError> {
    let dir = layout
        .existing("environment", layout.env_dir(name), name)
        .map_err(|e| ConfigError {
            message: format!("{asked_by} names an unknown environment `{name}`"),
            ..e
        })?;
    let file = dir.join("environment.toml");
    parse_toml(&read(&file)?, &file)
}

/// The ARNs in service.toml carry their region: one that differs from environment.toml's
/// `region` is a wrong region (a newcomer's copy of another environment, a default left in
/// place), refused before any AWS call instead of as a list of "not found" for every
/// resource, each pointing at the wrong field.
fn check_region(
    environment: &EnvironmentSettings,
    env_file: &Path,
    service: &ServiceSettings,
    svc_file: &Path,
) -> Result<(), ConfigError> {
    let t = &service.traffic;
    let arns = [
        (
            "[traffic] production_listener_arn",
            t.production_listener_arn.as_deref(),
        ),
        (
            "[traffic] production_rule_arn",
            t.production_rule_arn.as_deref(),
        ),
        (
            "[traffic] test_listener_arn",
            Some(t.test_listener_arn.as_str()),
        ),
        (
            "[slots.blue] target_group_arn",
            Some(service.slots.blue.target_group_arn.as_str()),
        ),
        (
            "[slots.green] target_group_arn",
            Some(service.slots.green.target_group_arn.as_str()),
        ),
    ];
    for (field, arn) in arns {
        // arn:partition:service:region:account:resource
        let Some(region) = arn
            .and_then(|a| a.split(':').nth(3))
            .filter(|r| !r.is_empty())
        else {
            continue;
        };
        if region != environment.region {
            return Err(ConfigError::new(
                env_file,
                format!(
                    "region = \"{}\", but {field} in {} is in {region}",
                    environment.region,
                    svc_file.display()
                ),
            )
            .hint(format!(
                "set region = \"{region}\" here if the service lives there (terraform's outputs name its region), or fix the ARN"
            )));
        }
    }
    Ok(())
}

/// `[versions] require_*_in` name environments that exist, and not this one.
fn check_version_rules(
    layout: &Layout,
    this: &str,
    environment: &EnvironmentSettings,
    file: &Path,
    text: &str,
) -> Result<(), ConfigError> {
    let rules = &environment.versions;
    for (field, names) in [
        ("require_promoted_in", &rules.require_promoted_in),
        ("require_rehearsal_in", &rules.require_rehearsal_in),
    ] {
        let line = text
            .lines()
            .position(|l| l.trim_start().starts_with(field))
            .map(|i| i + 1);
        let at = |err: ConfigError| match line {
            Some(l) => err.at_line(l),
            None => err,
        };
        for name in names {
            if name == this {
                return Err(at(ConfigError::new(
                    file,
                    format!("[versions] {field} names `{this}` itself"),
                )
                .hint("name the environment a release must pass first, e.g. staging")));
            }
            let dir = layout.env_dir(name);
            if !dir.join("environment.toml").is_file() {
                let known = list_dirs(&layout.root.join("environments"));
                return Err(at(ConfigError::new(
                    file,
                    format!("[versions] {field} names an unknown environment `{name}`"),
                )
                .hint(format!(
                    "name a folder under {} that has an environment.toml (known: {})",
                    layout.root.join("environments").display(),
                    known.join(", ")
                ))));
            }
        }
    }
    Ok(())
}

fn read(file: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(file).map_err(|e| {
        let err = ConfigError::new(file, format!("cannot read: {e}"));
        if e.kind() == std::io::ErrorKind::NotFound {
            err.hint("create it (`cutover init` writes a commented example)")
        } else {
            err
        }
    })
}

/// A missing variables.json is an empty one; anything else must be a JSON object.
fn read_variables(file: &Path) -> Result<Value, ConfigError> {
    if !file.exists() {
        return Ok(Value::Object(Default::default()));
    }
    let text = read(file)?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| ConfigError::new(file, format!("not valid JSON: {e}")).at_line(e.line()))?;
    if !value.is_object() {
        return Err(
            ConfigError::new(file, "must hold a JSON object at the top level")
                .hint("wrap the values in { … }"),
        );
    }
    Ok(value)
}

fn parse_toml<T: DeserializeOwned>(text: &str, file: &Path) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let err = ConfigError::new(file, e.message().trim_end().to_string())
            .hint("see the commented example from `cutover init` and the JSON schema in schema/");
        match line {
            Some(l) => err.at_line(l),
            None => err,
        }
    })
}

/// Environments where the safe defaults differ (prereleases refused, no rehearsal).
fn production_named(env: &str) -> bool {
    matches!(env, "production" | "prod" | "prd")
}

fn check_prerelease(
    env: &EnvironmentSettings,
    name: &str,
    version: &crate::version::Version,
    file: &Path,
) -> Result<(), ConfigError> {
    let allowed = env
        .versions
        .allow_prerelease
        .unwrap_or(!production_named(name));
    if version.is_prerelease() && !allowed {
        return Err(ConfigError::new(
            file,
            format!("prerelease {version} may not deploy to `{name}`"),
        )
        .hint(
            "deploy a release tag (e.g. v1.2.3), or set `[versions] allow_prerelease = true` here",
        ));
    }
    Ok(())
}

fn check_service(service: &ServiceSettings, file: &Path) -> Result<(), ConfigError> {
    if let Some(worker) = &service.worker {
        return check_worker(service, worker, file);
    }
    for (unset, table) in [
        (service.slots.is_unset(), "[slots.blue] and [slots.green]"),
        (service.traffic.is_unset(), "[traffic]"),
        (service.ecs.container_port == 0, "[ecs] container_port"),
    ] {
        if unset {
            return Err(ConfigError::new(file, format!("{table} missing"))
                .hint("a service behind the load balancer needs its slots, traffic and container port (`cutover init --from-terraform` writes them); a service with no load balancer is a `[worker]` with `service = \"<ECS service>\"`"));
        }
    }
    let t = &service.traffic;
    match (&t.production_listener_arn, &t.production_rule_arn) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(ConfigError::new(file, "[traffic] needs exactly one of `production_listener_arn` and `production_rule_arn`")
                .hint("use the listener when its default action forwards to both target groups, the rule otherwise"));
        }
        _ => {}
    }
    // Pointing the "test" listener at the idle slot would rewrite production's forward.
    if t.production_listener_arn.as_deref() == Some(t.test_listener_arn.as_str()) {
        return Err(ConfigError::new(
            file,
            format!(
                "[traffic] test_listener_arn is the production listener ({}): staging would send production traffic to the idle slot",
                t.test_listener_arn
            ),
        )
        .hint("use the ALB's test listener (terraform output `test_listener_arn`), a listener of its own on another port"));
    }
    if let Some(p) = service
        .validation
        .probes
        .iter()
        .find(|p| p.version_header.is_some() && !p.expect_version)
    {
        return Err(ConfigError::new(
            file,
            format!(
                "[[validation.probes]] {}: version_header is set but expect_version is not",
                p.path
            ),
        )
        .hint("add `expect_version = true` to that probe, or remove version_header"));
    }
    if service.slots.blue.service == service.slots.green.service
        || service.slots.blue.target_group_arn == service.slots.green.target_group_arn
    {
        return Err(ConfigError::new(
            file,
            "[slots.blue] and [slots.green] must name different ECS services and target groups",
        ));
    }
    let check_percent = |field: &str, p: u8| {
        if p == 0 || p >= 100 {
            Err(ConfigError::new(
                file,
                format!("[strategy] {field} = {p} must be between 1 and 99"),
            ))
        } else {
            Ok(())
        }
    };
    match &service.strategy {
        settings::Strategy::Canary { percent, .. } => check_percent("percent", *percent)?,
        settings::Strategy::Linear { step, .. } => check_percent("step", *step)?,
        settings::Strategy::AllAtOnce { .. } => {}
    }
    alarms::check_owners(service, file)?;
    if service.deadlines.lock_ttl.0 < settings::MIN_LOCK_TTL {
        return Err(ConfigError::new(
            file,
            format!(
                "[deadlines] lock_ttl = {}s is shorter than the {}s a lease needs",
                service.deadlines.lock_ttl.0.as_secs(),
                settings::MIN_LOCK_TTL.as_secs()
            ),
        )
        .hint("the heartbeat renews the lock every lock_ttl/3 and a renewal may take 30s: set lock_ttl to 2m or more (5m by default)"));
    }
    for (field, keep) in [
        (
            "keep_task_definitions",
            service.cleanup.keep_task_definitions,
        ),
        ("keep_images", service.cleanup.keep_images),
    ] {
        if keep == 0 {
            return Err(
                ConfigError::new(file, format!("[cleanup] {field} must be at least 1"))
                    .hint("the newest one may belong to a deploy still on its way"),
            );
        }
    }
    if service.history.depth == 0 {
        return Err(ConfigError::new(file, "[history] depth must be at least 1")
            .hint("rollback needs the previous release"));
    }
    if service.history.depth > crate::history::MAX_DEPTH {
        return Err(ConfigError::new(
            file,
            format!(
                "[history] depth = {} is more than one SSM parameter holds (at most {})",
                service.history.depth,
                crate::history::MAX_DEPTH
            ),
        )
        .hint(format!(
            "set depth to {} or less",
            crate::history::MAX_DEPTH
        )));
    }
    Ok(())
}

/// A worker has one ECS service and nothing of the load balancer's.
fn check_worker(
    service: &ServiceSettings,
    worker: &settings::WorkerSettings,
    file: &Path,
) -> Result<(), ConfigError> {
    if !service.slots.is_unset() || !service.traffic.is_unset() || service.ecs.container_port != 0 {
        return Err(ConfigError::new(
            file,
            "[worker] with [slots], [traffic] or [ecs] container_port: a worker has no load balancer",
        )
        .hint("remove [worker] for a blue/green service behind the load balancer, or remove the slots, traffic and container port for a worker"));
    }
    if worker.service.trim().is_empty() {
        return Err(ConfigError::new(file, "[worker] service is empty")
            .hint("name the worker's ECS service, e.g. `service = \"jobs\"`"));
    }
    if !service.validation.probes.is_empty() || service.validation.command.is_some() {
        return Err(ConfigError::new(
            file,
            "[validation] probes or command on a worker: it has no test listener to check",
        )
        .hint("a worker's check is ECS's rollout (the circuit breaker); remove them"));
    }
    Ok(())
}

fn check_taskdef_against_service(
    td: &TaskDefinition,
    service: &ServiceSettings,
    image: &str,
    file: &Path,
) -> Result<(), ConfigError> {
    let wanted = &service.ecs.container;
    let Some(container) = td.containers().find(|c| c["name"] == wanted.as_str()) else {
        return Err(ConfigError::new(
            file,
            format!("no container named `{wanted}` (service.toml [ecs] container)"),
        )
        .hint(format!(
            "containers here: {}",
            td.container_names().join(", ")
        )));
    };
    if container["image"] != image {
        return Err(ConfigError::new(
            file,
            format!("container `{wanted}` does not run the image being deployed"),
        )
        .hint("set its \"image\" to \"{{ cutover.image }}\""));
    }
    if service.worker.is_some() {
        return Ok(());
    }
    let port = service.ecs.container_port;
    let ports = container["portMappings"].as_array().into_iter().flatten();
    if !ports.clone().any(|p| p["containerPort"] == port) {
        return Err(ConfigError::new(file, format!("container `{wanted}` has no portMappings entry with containerPort {port} (service.toml [ecs] container_port)"))
            .hint(format!("add {{\"containerPort\": {port}}} to its portMappings")));
    }
    Ok(())
}
