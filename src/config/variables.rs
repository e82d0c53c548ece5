//! `variables.json` merge, exactly as seed 000 says: the service's file wins over the
//! environment's on any conflict, lists concatenate (environment's items first), objects
//! merge recursively. An object (or list) in one file where the other has a different
//! shape is an error naming both files and the key path, because silently picking one
//! would drop a whole subtree of the other.

use std::path::Path;

use serde_json::{Map, Value};

use super::ConfigError;

/// Merge `service` over `environment`. Both must be JSON objects at the top level.
pub fn merge(
    environment: Value,
    env_file: &Path,
    service: Value,
    service_file: &Path,
) -> Result<Value, ConfigError> {
    let mut path = Vec::new();
    merge_at(environment, service, &mut path).map_err(|(path, env_kind, svc_kind)| {
        ConfigError::new(
            service_file,
            format!(
                "`{path}` is {svc_kind} here but {env_kind} in {}",
                env_file.display()
            ),
        )
        .hint("give the key the same shape (object, list or plain value) in both files, or rename one of them")
    })
}

type Mismatch = (String, &'static str, &'static str);

fn merge_at(env: Value, svc: Value, path: &mut Vec<String>) -> Result<Value, Mismatch> {
    match (env, svc) {
        (Value::Object(env), Value::Object(svc)) => {
            merge_objects(env, svc, path).map(Value::Object)
        }
        (Value::Array(mut env), Value::Array(svc)) => {
            env.extend(svc);
            Ok(Value::Array(env))
        }
        (env, svc) if is_container(&env) || is_container(&svc) => {
            Err((key_path(path), kind(&env), kind(&svc)))
        }
        // Two plain values (strings, numbers, booleans, null): the service wins.
        (_, svc) => Ok(svc),
    }
}

fn merge_objects(
    mut env: Map<String, Value>,
    svc: Map<String, Value>,
    path: &mut Vec<String>,
) -> Result<Map<String, Value>, Mismatch> {
    for (key, svc_value) in svc {
        let merged = match env.remove(&key) {
            Some(env_value) => {
                path.push(key.clone());
                let merged = merge_at(env_value, svc_value, path)?;
                path.pop();
                merged
            }
            None => svc_value,
        };
        env.insert(key, merged);
    }
    Ok(env)
}

fn is_container(v: &Value) -> bool {
    matches!(v, Value::Object(_) | Value::Array(_))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "an object",
        Value::Array(_) => "a list",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
    }
}

fn key_path(path: &[String]) -> String {
    path.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn m(env: Value, svc: Value) -> Result<Value, ConfigError> {
        merge(
            env,
            Path::new("env/variables.json"),
            svc,
            Path::new("svc/variables.json"),
        )
    }

    #[test]
    fn service_wins_lists_concatenate_objects_merge() {
        let env =
            json!({"a": 1, "list": [1, 2], "obj": {"x": "env", "keep": true}, "only_env": "e"});
        let svc = json!({"a": 2, "list": [3], "obj": {"x": "svc", "new": 1}, "only_svc": "s"});
        assert_eq!(
            m(env, svc).unwrap(),
            json!({"a": 2, "list": [1, 2, 3], "obj": {"x": "svc", "keep": true, "new": 1}, "only_env": "e", "only_svc": "s"})
        );
    }

    #[test]
    fn scalar_types_may_differ_and_service_wins() {
        assert_eq!(
            m(json!({"a": "1"}), json!({"a": 1})).unwrap(),
            json!({"a": 1})
        );
        assert_eq!(
            m(json!({"a": true}), json!({"a": null})).unwrap(),
            json!({"a": null})
        );
    }

    #[test]
    fn object_against_scalar_names_both_files_and_the_key_path() {
        let err = m(
            json!({"db": {"port": {"n": 1}}}),
            json!({"db": {"port": 5432}}),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("svc/variables.json"), "{text}");
        assert!(text.contains("env/variables.json"), "{text}");
        assert!(text.contains("`db.port`"), "{text}");
        assert!(text.contains("a number here but an object"), "{text}");
    }

    #[test]
    fn list_against_object_is_an_error_too() {
        assert!(m(json!({"a": [1]}), json!({"a": {"b": 1}})).is_err());
        assert!(m(json!({"a": [1]}), json!({"a": "x"})).is_err());
    }

    /// JSON values without object/list shape clashes between the two sides: objects of
    /// scalars and lists, keyed from a small alphabet so keys collide often.
    fn tree(depth: u32) -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(Value::from),
            "[a-z]{0,4}".prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
        ];
        leaf.prop_recursive(depth, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map("[a-d]", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn objects() -> impl Strategy<Value = Value> {
        prop::collection::btree_map("[a-d]", tree(3), 0..5)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    }

    /// Every leaf path of `v` (object keys joined; list items counted, not indexed).
    fn paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
        if let Value::Object(m) = v {
            for (k, v) in m {
                let p = format!("{prefix}/{k}");
                out.push(p.clone());
                paths(v, &p, out);
            }
        }
    }

    fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
        path.split('/').skip(1).try_fold(v, |v, k| v.get(k))
    }

    fn list_len(v: Option<&Value>) -> usize {
        v.and_then(Value::as_array).map_or(0, Vec::len)
    }

    proptest! {
        #[test]
        fn no_key_is_lost_and_the_service_wins_on_scalars(env in objects(), svc in objects()) {
            let Ok(merged) = m(env.clone(), svc.clone()) else {
                // Shape clashes are errors by design; they must name a real clash.
                return Ok(());
            };
            let mut all = Vec::new();
            paths(&env, "", &mut all);
            paths(&svc, "", &mut all);
            for p in &all {
                prop_assert!(get(&merged, p).is_some(), "lost {p}");
            }
            let mut svc_paths = Vec::new();
            paths(&svc, "", &mut svc_paths);
            for p in &svc_paths {
                let s = get(&svc, p).unwrap();
                if !is_container(s) {
                    prop_assert_eq!(get(&merged, p), Some(s), "service lost scalar at {}", p);
                }
                if s.is_array() {
                    prop_assert_eq!(list_len(get(&merged, p)), list_len(get(&env, p)) + list_len(Some(s)));
                }
            }
        }
    }
}
