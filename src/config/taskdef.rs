//! The task definition a template renders to. It must be what
//! `aws ecs register-task-definition --cli-input-json` accepts; `aws ecs
//! describe-task-definition` output is accepted too (its read-only fields are dropped), so
//! teams can start from the task definition they run today.
//!
//! Validation deserializes into strict types so serde_json reports the line and column of
//! an unknown or mistyped field; the output keeps the user's own JSON (and key order).

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::ConfigError;

/// Fields `describe-task-definition` returns that `register-task-definition` refuses.
const READ_ONLY: &[&str] = &[
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
];

/// A validated task definition, ready for RegisterTaskDefinition.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskDefinition(pub Value);

impl TaskDefinition {
    pub fn family(&self) -> &str {
        self.0["family"].as_str().unwrap_or_default()
    }

    pub fn container_names(&self) -> Vec<&str> {
        self.containers()
            .filter_map(|c| c["name"].as_str())
            .collect()
    }

    pub fn containers(&self) -> impl Iterator<Item = &Value> {
        self.0["containerDefinitions"]
            .as_array()
            .into_iter()
            .flatten()
    }
}

/// Parse and validate rendered task-definition text. `file` names the template for errors.
pub fn parse(text: &str, file: &Path) -> Result<TaskDefinition, ConfigError> {
    let mut value: Value = serde_json::from_str(text)
        .map_err(|e| json_error(file, &e, "the rendered task definition is not valid JSON"))?;
    let wrapped = value.get("taskDefinition").is_some();
    if wrapped {
        serde_json::from_str::<DescribeOutput>(text)
            .map_err(|e| json_error(file, &e, "invalid task definition"))?;
        let tags = value.get("tags").cloned();
        value = value["taskDefinition"].take();
        if let (Some(tags), Some(obj)) = (tags, value.as_object_mut()) {
            obj.insert("tags".into(), tags);
        }
    } else {
        serde_json::from_str::<RegisterInput>(text)
            .map_err(|e| json_error(file, &e, "invalid task definition"))?;
    }
    if let Some(obj) = value.as_object_mut() {
        for key in READ_ONLY {
            obj.remove(*key);
        }
    }
    let td = TaskDefinition(value);
    check_container_names(&td, file)?;
    Ok(td)
}

fn check_container_names(td: &TaskDefinition, file: &Path) -> Result<(), ConfigError> {
    let names = td.container_names();
    if names.is_empty() {
        return Err(ConfigError::new(file, "`containerDefinitions` is empty")
            .hint("define at least one container"));
    }
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(ConfigError::new(
                file,
                format!("container name `{name}` is used twice in `containerDefinitions`"),
            ));
        }
    }
    Ok(())
}

fn json_error(file: &Path, e: &serde_json::Error, what: &str) -> ConfigError {
    let hint = if e.to_string().contains("expected a string") {
        "register-task-definition wants strings here (e.g. \"cpu\": \"256\"); in a template write \"{{ var.x }}\" with quotes"
    } else if e.to_string().contains("unknown field") {
        "remove the field or fix its spelling; the accepted fields are those of `aws ecs register-task-definition --generate-cli-skeleton`"
    } else {
        "if the error is inside a template expression, render a JSON value with `{{ var.x | tojson }}`"
    };
    ConfigError::new(file, format!("{what}: {e}"))
        .at_line(e.line())
        .hint(hint)
}

/// `describe-task-definition` output: `{"taskDefinition": {...}, "tags": [...]}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // deserialized only to validate
struct DescribeOutput {
    #[serde(rename = "taskDefinition")]
    task_definition: RegisterInput,
    #[serde(default)]
    tags: Option<Vec<Tag>>,
}

/// The input of RegisterTaskDefinition, plus the read-only fields describe returns.
/// Fields cutover does not look into are kept as raw JSON; AWS validates their content.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)] // deserialized only to validate
struct RegisterInput {
    family: String,
    container_definitions: Vec<ContainerDefinition>,
    task_role_arn: Option<String>,
    execution_role_arn: Option<String>,
    network_mode: Option<String>,
    volumes: Option<Vec<Value>>,
    placement_constraints: Option<Vec<Value>>,
    requires_compatibilities: Option<Vec<String>>,
    cpu: Option<String>,
    memory: Option<String>,
    tags: Option<Vec<Tag>>,
    pid_mode: Option<String>,
    ipc_mode: Option<String>,
    proxy_configuration: Option<Value>,
    inference_accelerators: Option<Vec<Value>>,
    ephemeral_storage: Option<Value>,
    runtime_platform: Option<Value>,
    enable_fault_injection: Option<bool>,
    // Read-only fields from describe-task-definition; dropped before registering.
    task_definition_arn: Option<Value>,
    revision: Option<Value>,
    status: Option<Value>,
    requires_attributes: Option<Value>,
    compatibilities: Option<Value>,
    registered_at: Option<Value>,
    registered_by: Option<Value>,
    deregistered_at: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // deserialized only to validate
struct Tag {
    key: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)] // deserialized only to validate
struct ContainerDefinition {
    name: String,
    image: String,
    cpu: Option<i64>,
    memory: Option<i64>,
    memory_reservation: Option<i64>,
    essential: Option<bool>,
    port_mappings: Option<Vec<Value>>,
    environment: Option<Vec<NameValue>>,
    environment_files: Option<Vec<Value>>,
    secrets: Option<Vec<Secret>>,
    repository_credentials: Option<Value>,
    restart_policy: Option<Value>,
    links: Option<Vec<String>>,
    entry_point: Option<Vec<String>>,
    command: Option<Vec<String>>,
    mount_points: Option<Vec<Value>>,
    volumes_from: Option<Vec<Value>>,
    linux_parameters: Option<Value>,
    depends_on: Option<Vec<Value>>,
    start_timeout: Option<i64>,
    stop_timeout: Option<i64>,
    version_consistency: Option<String>,
    hostname: Option<String>,
    user: Option<String>,
    working_directory: Option<String>,
    disable_networking: Option<bool>,
    privileged: Option<bool>,
    readonly_root_filesystem: Option<bool>,
    dns_servers: Option<Vec<String>>,
    dns_search_domains: Option<Vec<String>>,
    extra_hosts: Option<Vec<Value>>,
    docker_security_options: Option<Vec<String>>,
    interactive: Option<bool>,
    pseudo_terminal: Option<bool>,
    docker_labels: Option<std::collections::BTreeMap<String, String>>,
    ulimits: Option<Vec<Value>>,
    log_configuration: Option<Value>,
    health_check: Option<Value>,
    system_controls: Option<Vec<Value>>,
    resource_requirements: Option<Vec<Value>>,
    firelens_configuration: Option<Value>,
    credential_specs: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // deserialized only to validate
struct NameValue {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)] // deserialized only to validate
struct Secret {
    name: String,
    value_from: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<TaskDefinition, ConfigError> {
        parse(text, Path::new("taskdef.json"))
    }

    const MINIMAL: &str =
        r#"{"family": "web", "containerDefinitions": [{"name": "web", "image": "r@sha256:1"}]}"#;

    #[test]
    fn accepts_register_input() {
        let td = p(MINIMAL).unwrap();
        assert_eq!(td.family(), "web");
        assert_eq!(td.container_names(), ["web"]);
    }

    #[test]
    fn accepts_describe_output_and_drops_read_only_fields() {
        let text = r#"{
          "taskDefinition": {
            "taskDefinitionArn": "arn:aws:ecs:eu-west-1:1:task-definition/web:7",
            "family": "web", "revision": 7, "status": "ACTIVE",
            "containerDefinitions": [{"name": "web", "image": "r:1"}],
            "requiresAttributes": [], "compatibilities": ["FARGATE"],
            "registeredAt": "2024-01-01T00:00:00Z", "registeredBy": "arn:aws:iam::1:role/x"
          },
          "tags": [{"key": "team", "value": "web"}]
        }"#;
        let td = p(text).unwrap();
        let obj = td.0.as_object().unwrap();
        for key in READ_ONLY {
            assert!(!obj.contains_key(*key), "{key} kept");
        }
        assert_eq!(td.0["tags"][0]["key"], "team");
        assert_eq!(td.family(), "web");
    }

    #[test]
    fn unknown_field_names_line_and_field() {
        let text = "{\n  \"family\": \"web\",\n  \"containerDefinitions\": [{\"name\": \"web\", \"image\": \"i\"}],\n  \"memroy\": \"512\"\n}";
        let err = p(text).unwrap_err();
        assert_eq!(err.line, Some(4));
        assert!(
            err.message.contains("unknown field `memroy`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn numeric_cpu_is_refused_with_a_hint() {
        let err = p(r#"{"family": "web", "cpu": 256, "containerDefinitions": [{"name": "w", "image": "i"}]}"#).unwrap_err();
        assert!(err.message.contains("expected a string"), "{}", err.message);
        assert!(err.hint.unwrap().contains("\"cpu\": \"256\""));
    }

    #[test]
    fn environment_values_must_be_strings() {
        let text = r#"{"family": "w", "containerDefinitions": [{"name": "w", "image": "i", "environment": [{"name": "PORT", "value": 8080}]}]}"#;
        assert!(p(text).unwrap_err().message.contains("expected a string"));
    }

    #[test]
    fn refuses_missing_family_empty_containers_and_duplicate_names() {
        assert!(
            p(r#"{"containerDefinitions": [{"name": "w", "image": "i"}]}"#)
                .unwrap_err()
                .message
                .contains("missing field `family`")
        );
        assert!(
            p(r#"{"family": "w", "containerDefinitions": []}"#)
                .unwrap_err()
                .message
                .contains("empty")
        );
        let dup = r#"{"family": "w", "containerDefinitions": [{"name": "a", "image": "i"}, {"name": "a", "image": "j"}]}"#;
        assert!(p(dup).unwrap_err().message.contains("used twice"));
    }

    #[test]
    fn syntax_error_has_a_line() {
        let err = p("{\n  \"family\": \"web\",\n  oops\n}").unwrap_err();
        assert_eq!(err.line, Some(3));
        assert!(err.message.contains("not valid JSON"));
    }
}
