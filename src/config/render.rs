//! Template rendering: Jinja2 syntax through minijinja, with strict undefined so a typo in
//! a variable name is an error with file and line instead of an empty string in production.
//! Autoescape is off, as in Jinja2: JSON values are written with `{{ var.x | tojson }}`.

use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;
use serde_json::Value;

use super::ConfigError;
use crate::version::Version;

/// What templates see as `cutover.*`. Values a verb does not have (e.g. `status` has no
/// version) are absent, so using them is an undefined-variable error, not an empty string.
#[derive(Debug, Clone, Serialize)]
pub struct Context {
    pub env: String,
    pub service: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_sha: Option<String>,
    pub build_dir: PathBuf,
}

/// Render `source` (read from `file`) with `cutover` and `var` in scope.
pub fn render(
    source: &str,
    file: &Path,
    cutover: &Context,
    var: &Value,
) -> Result<String, ConfigError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_keep_trailing_newline(true);
    let name = file.display().to_string();
    let ctx = minijinja::context! { cutover => cutover, var => var };
    env.add_template(&name, source)
        .and_then(|()| env.get_template(&name)?.render(ctx))
        .map_err(|e| template_error(&e, source, file))
}

fn template_error(e: &minijinja::Error, source: &str, file: &Path) -> ConfigError {
    let mut message = e.kind().to_string();
    if let Some(detail) = e.detail() {
        message.push_str(": ");
        message.push_str(detail);
    }
    let line = e.line();
    if let Some(text) = line.and_then(|l| source.lines().nth(l.saturating_sub(1))) {
        message.push_str(&format!("\n  | {}", text.trim_end()));
    }
    let hint = match e.kind() {
        minijinja::ErrorKind::UndefinedError => {
            "define the variable in variables.json (service or environment), or fix its name; \
             cutover.version and cutover.image exist only for verbs given --tag / --image"
        }
        minijinja::ErrorKind::SyntaxError => "check the {{ }} / {% %} delimiters on this line",
        _ => "see the Jinja2 template documentation for this expression",
    };
    let err = ConfigError::new(file, message).hint(hint);
    match line {
        Some(l) => err.at_line(l),
        None => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Context {
        Context {
            env: "staging".into(),
            service: "web".into(),
            version: Some(Version::parse("v1.2.3").unwrap()),
            image: Some("r@sha256:ab".into()),
            git_sha: Some("abc123".into()),
            build_dir: "build/staging/web".into(),
        }
    }

    #[test]
    fn renders_cutover_and_var() {
        let out = render(
            "{{ cutover.env }} {{ cutover.service }} {{ cutover.version }} {{ cutover.image }} {{ cutover.git_sha }} {{ cutover.build_dir }} {{ var.port }} {{ var.list | tojson }}\n",
            Path::new("t"),
            &ctx(),
            &json!({"port": 8080, "list": ["a", "\"q\""]}),
        )
        .unwrap();
        assert_eq!(
            out,
            "staging web v1.2.3 r@sha256:ab abc123 build/staging/web 8080 [\"a\",\"\\\"q\\\"\"]\n"
        );
    }

    #[test]
    fn undefined_variable_is_an_error_with_line() {
        let err = render(
            "{\n  \"a\": \"{{ var.nope }}\"\n}",
            Path::new("svc/taskdef.json"),
            &ctx(),
            &json!({}),
        )
        .unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.message.contains("undefined"), "{}", err.message);
        assert!(err.message.contains("var.nope"), "{}", err.message);
        assert!(err.to_string().starts_with("svc/taskdef.json:2:"), "{err}");
    }

    #[test]
    fn absent_version_is_undefined_not_empty() {
        let mut c = ctx();
        c.version = None;
        assert!(render("{{ cutover.version }}", Path::new("t"), &c, &json!({})).is_err());
    }

    #[test]
    fn syntax_error_is_an_error_with_line() {
        let err = render("ok\n{{ var.x \n", Path::new("t"), &ctx(), &json!({"x": 1})).unwrap_err();
        assert!(err.message.contains("syntax error"), "{}", err.message);
        assert!(err.line.is_some());
    }
}
