//! `cutover diff` (and `plan`): the task definition about to be registered against the one
//! the live slot runs, as readable lines. Environment values and secret sources are never
//! shown (invariant 10): only that they were added, removed or changed.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

/// One field as the diff may show it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    Shown(String),
    /// Compared by value, never printed.
    Hidden(String),
}

/// One difference between the live task definition and the new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added(String, Option<String>),
    Removed(String),
    Changed(String, Option<(String, String)>),
}

/// The task definition diff; `live` None means nothing is live yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDiff {
    pub first_deploy: bool,
    pub changes: Vec<Change>,
}

impl TaskDiff {
    pub fn between(new: &Value, live: Option<&Value>) -> Self {
        let after = fields(new);
        let before = live.map(fields).unwrap_or_default();
        let mut changes = Vec::new();
        for (key, a) in &after {
            match before.get(key) {
                None => changes.push(Change::Added(key.clone(), shown(a))),
                Some(b) if b != a => changes.push(Change::Changed(
                    key.clone(),
                    match (b, a) {
                        (Field::Shown(b), Field::Shown(a)) => Some((b.clone(), a.clone())),
                        _ => None,
                    },
                )),
                Some(_) => {}
            }
        }
        for key in before.keys().filter(|k| !after.contains_key(*k)) {
            changes.push(Change::Removed(key.clone()));
        }
        TaskDiff {
            first_deploy: live.is_none(),
            changes,
        }
    }
}

fn shown(f: &Field) -> Option<String> {
    match f {
        Field::Shown(s) => Some(s.clone()),
        Field::Hidden(_) => None,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(a) => Some(
            a.iter()
                .map(|x| text(x).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        other => Some(other.to_string()),
    }
}

/// A task definition as `key → field`, the keys readable on their own.
fn fields(td: &Value) -> BTreeMap<String, Field> {
    let mut out = BTreeMap::new();
    for key in [
        "cpu",
        "memory",
        "networkMode",
        "taskRoleArn",
        "executionRoleArn",
        "requiresCompatibilities",
    ] {
        if let Some(v) = text(&td[key]) {
            out.insert(key.to_string(), Field::Shown(v));
        }
    }
    for c in td["containerDefinitions"].as_array().into_iter().flatten() {
        let name = c["name"].as_str().unwrap_or("?");
        let mut put = |key: String, f: Field| {
            out.insert(format!("container {name}: {key}"), f);
        };
        put(String::new(), Field::Shown("defined".into()));
        for key in [
            "image",
            "cpu",
            "memory",
            "memoryReservation",
            "essential",
            "command",
            "entryPoint",
        ] {
            if let Some(v) = text(&c[key]).filter(|v| !(key == "cpu" && v == "0")) {
                put(key.to_string(), Field::Shown(v));
            }
        }
        for p in c["portMappings"].as_array().into_iter().flatten() {
            let port = p["containerPort"].as_u64().unwrap_or(0);
            let proto = p["protocol"].as_str().unwrap_or("tcp");
            put(
                format!("port {port}/{proto}"),
                Field::Shown("mapped".into()),
            );
        }
        for e in c["environment"].as_array().into_iter().flatten() {
            let key = e["name"].as_str().unwrap_or("?");
            let value = e["value"].as_str().unwrap_or_default();
            put(format!("environment {key}"), Field::Hidden(value.into()));
        }
        for s in c["secrets"].as_array().into_iter().flatten() {
            let key = s["name"].as_str().unwrap_or("?");
            let from = s["valueFrom"].as_str().unwrap_or_default();
            put(format!("secret {key}"), Field::Hidden(from.into()));
        }
    }
    out
}

impl fmt::Display for TaskDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first_deploy {
            writeln!(f, "  nothing is live yet: everything is new")?;
        } else if self.changes.is_empty() {
            writeln!(f, "  no change")?;
        }
        for c in &self.changes {
            match c {
                Change::Added(key, value) => {
                    let key = key.trim_end_matches(": ");
                    match value.as_deref() {
                        Some("defined" | "mapped") | None => writeln!(f, "  + {key}")?,
                        Some(v) => writeln!(f, "  + {key} = {v}")?,
                    }
                }
                Change::Removed(key) => writeln!(f, "  - {}", key.trim_end_matches(": "))?,
                Change::Changed(key, Some((before, after))) => {
                    writeln!(f, "  ~ {key}: {before} → {after}")?
                }
                Change::Changed(key, None) => {
                    let what = if key.contains(": secret ") {
                        "source changed"
                    } else {
                        "value changed (values are not shown)"
                    };
                    writeln!(f, "  ~ {key}: {what}")?
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn td(image: &str, cpu: &str, env: Value, secrets: Value, ports: Value) -> Value {
        json!({
            "family": "web", "cpu": cpu, "memory": "512",
            "taskRoleArn": "arn:aws:iam::1:role/web-task",
            "containerDefinitions": [{"name": "web", "image": image, "essential": true,
                "portMappings": ports, "environment": env, "secrets": secrets}]
        })
    }

    #[test]
    fn image_cpu_env_secrets_and_ports_read_as_lines_and_no_value_is_shown() {
        let live = td(
            "repo@sha256:aaa",
            "256",
            json!([{"name": "MODE", "value": "old-SECRET-value"}, {"name": "GONE", "value": "x"}]),
            json!([{"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:::parameter/db-old"}]),
            json!([{"containerPort": 8080}]),
        );
        let new = td(
            "repo@sha256:bbb",
            "512",
            json!([{"name": "MODE", "value": "new-SECRET-value"}, {"name": "ADDED", "value": "y"}]),
            json!([{"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:::parameter/db-new"}, {"name": "API_KEY", "valueFrom": "k"}]),
            json!([{"containerPort": 8080, "protocol": "tcp"}, {"containerPort": 9090}]),
        );
        let diff = TaskDiff::between(&new, Some(&live)).to_string();
        assert_eq!(
            diff.lines().collect::<Vec<_>>(),
            [
                "  + container web: environment ADDED",
                "  ~ container web: environment MODE: value changed (values are not shown)",
                "  ~ container web: image: repo@sha256:aaa → repo@sha256:bbb",
                "  + container web: port 9090/tcp",
                "  + container web: secret API_KEY",
                "  ~ container web: secret DB_PASSWORD: source changed",
                "  ~ cpu: 256 → 512",
                "  - container web: environment GONE",
            ]
        );
        assert!(
            !diff.contains("SECRET") && !diff.contains("db-new"),
            "{diff}"
        );
        assert!(TaskDiff::between(&new, Some(&new)).to_string() == "  no change\n");
    }

    #[test]
    fn a_first_deploy_is_all_new() {
        let new = td("repo@sha256:bbb", "256", json!([]), json!([]), json!([]));
        let diff = TaskDiff::between(&new, None);
        assert!(diff.first_deploy);
        assert!(diff.changes.iter().all(|c| matches!(c, Change::Added(..))));
        assert!(
            diff.to_string()
                .starts_with("  nothing is live yet: everything is new\n")
        );
    }
}
