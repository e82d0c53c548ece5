//! action.yml's inputs, spelled once: clap reads them from the `INPUT_*` variables the
//! runner sets, and [`ActionArgs::into_request`] checks them into the action's request.

use std::path::PathBuf;

use clap::Args;
use secrecy::SecretString;

use crate::commands::action::{ActionRequest, ActionVerb, InputError};
use crate::config::settings::StrategyKind;
use crate::image::PrebuiltImage;
use crate::version::Version;

/// action.yml's inputs. The runner sets every declared input as `INPUT_<NAME>` (upper
/// case, hyphens kept); an empty value means "not given". Flags work too, for testing.
#[derive(Debug, Clone, Default, Args)]
pub struct ActionArgs {
    /// deploy, build, stage, promote, rollback, status, verify, unlock or cleanup.
    #[arg(long, env = "INPUT_COMMAND")]
    pub command: Option<String>,
    /// Environment folder under <config-dir>/environments/.
    #[arg(long, env = "INPUT_ENVIRONMENT")]
    pub environment: Option<String>,
    /// Service folder(s), comma separated.
    #[arg(long, env = "INPUT_SERVICES")]
    pub services: Option<String>,
    /// Folder holding environments/ and services/ (the `config-dir` input).
    #[arg(
        id = "input_config_dir",
        long = "input-config-dir",
        env = "INPUT_CONFIG-DIR",
        value_name = "DIR"
    )]
    pub config_dir: Option<String>,
    /// The release tag (default: the pushed tag in GITHUB_REF).
    #[arg(long, env = "INPUT_TAG")]
    pub tag: Option<String>,
    /// A pre-built image by digest.
    #[arg(long, env = "INPUT_IMAGE")]
    pub image: Option<String>,
    /// `true` for the previous release, or a version.
    #[arg(long, env = "INPUT_ROLLBACK")]
    pub rollback: Option<String>,
    /// all-at-once, canary or linear.
    #[arg(long, env = "INPUT_STRATEGY")]
    pub strategy: Option<String>,
    /// Environments that must have promoted the same digest first (comma separated).
    #[arg(long, env = "INPUT_REQUIRE-PROMOTED-IN")]
    pub require_promoted_in: Option<String>,
    /// Token for deployments and release notes (never printed).
    #[arg(long, env = "INPUT_GITHUB-TOKEN", hide_env_values = true)]
    pub github_token: Option<String>,
    /// Slack incoming-webhook URL (never printed).
    #[arg(long, env = "INPUT_SLACK-WEBHOOK", hide_env_values = true)]
    pub slack_webhook: Option<String>,
    /// `true` to print the plan and change nothing.
    #[arg(long, env = "INPUT_DRY-RUN")]
    pub dry_run: Option<String>,
    /// `true` to write GitHub-generated release notes to the tag's GitHub Release once the
    /// version is promoted.
    #[arg(long, env = "INPUT_RELEASE-NOTES")]
    pub release_notes: Option<String>,
    /// error, warn, info, debug or trace.
    #[arg(long, env = "INPUT_LOG-LEVEL")]
    pub log_level: Option<String>,
}

/// An input as given: trimmed, and empty counts as not given (the runner sets every
/// declared input, an unset one as "").
fn given(value: Option<String>) -> Option<String> {
    value
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn bad(input: &'static str, problem: impl std::fmt::Display) -> InputError {
    InputError {
        input,
        problem: problem.to_string(),
    }
}

fn flag(input: &'static str, value: Option<String>) -> Result<bool, InputError> {
    match given(value).as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(bad(input, format!("`{other}` is not true or false"))),
    }
}

impl ActionArgs {
    /// `log-level` as a `-v` count: debug is `-vv`, trace `-vvv`; warn and error below the
    /// default (see `logging::init`).
    pub fn verbosity(&self) -> i8 {
        match self.log_level.as_deref().map(str::trim) {
            Some("error") => -2,
            Some("warn") => -1,
            Some("debug") => 2,
            Some("trace") => 3,
            _ => 0,
        }
    }

    /// Check the inputs into the action's request; `github_ref` is the runner's GITHUB_REF
    /// (the default tag). Every problem names the input as action.yml spells it.
    pub fn into_request(self, github_ref: Option<String>) -> Result<ActionRequest, InputError> {
        let verb = verb(given(self.rollback), given(self.command).as_deref())?;
        let environment = given(self.environment).ok_or_else(|| {
            bad(
                "environment",
                "required: name a folder under <config-dir>/environments/",
            )
        })?;
        let services = services(given(self.services))?;
        let version = version(&verb, given(self.tag).or_else(|| given(github_ref)))?;
        let image = given(self.image);
        if let Some(image) = &image {
            PrebuiltImage::parse(image).map_err(|e| bad("image", e))?;
        }
        if let Some(level) = given(self.log_level.clone())
            && !["error", "warn", "info", "debug", "trace"].contains(&level.as_str())
        {
            return Err(bad(
                "log-level",
                format!("`{level}` is not one of error, warn, info, debug, trace"),
            ));
        }
        let strategy = given(self.strategy)
            .map(|s| s.parse::<StrategyKind>())
            .transpose()
            .map_err(|e| bad("strategy", e))?;
        let require_promoted_in = list(given(self.require_promoted_in));
        if !require_promoted_in.is_empty()
            && !matches!(verb, ActionVerb::Deploy | ActionVerb::Promote)
        {
            return Err(bad(
                "require-promoted-in",
                "only promote and deploy check it: leave it empty for this command",
            ));
        }
        Ok(ActionRequest {
            verb,
            require_promoted_in,
            config_dir: PathBuf::from(given(self.config_dir).unwrap_or_else(|| "deploy".into())),
            environment,
            services,
            version,
            image,
            strategy,
            github_token: given(self.github_token).map(SecretString::from),
            slack_webhook: given(self.slack_webhook).map(SecretString::from),
            dry_run: flag("dry-run", self.dry_run)?,
            release_notes: flag("release-notes", self.release_notes)?,
        })
    }
}

/// `rollback` wins over `command`: `true` is the previous release, a version that one.
fn verb(rollback: Option<String>, command: Option<&str>) -> Result<ActionVerb, InputError> {
    Ok(match (rollback.filter(|r| r != "false"), command) {
        (Some(r), _) if r == "true" => ActionVerb::Rollback(None),
        (Some(v), _) => ActionVerb::Rollback(Some(Version::parse(&v).map_err(|e| {
            bad(
                "rollback",
                format!("{e}; use `true` or a version such as v1.2.3"),
            )
        })?)),
        (None, None | Some("deploy")) => ActionVerb::Deploy,
        (None, Some("build")) => ActionVerb::Build,
        (None, Some("stage")) => ActionVerb::Stage,
        (None, Some("promote")) => ActionVerb::Promote,
        (None, Some("rollback")) => ActionVerb::Rollback(None),
        (None, Some("status")) => ActionVerb::Status,
        (None, Some("verify")) => ActionVerb::Verify,
        (None, Some("unlock")) => ActionVerb::Unlock,
        (None, Some("cleanup")) => ActionVerb::Cleanup,
        (None, Some(other)) => {
            return Err(bad(
                "command",
                format!(
                    "`{other}` is not one of deploy, build, stage, promote, rollback, status, verify, unlock, cleanup"
                ),
            ));
        }
    })
}

/// Comma, space or newline separated names.
fn list(text: Option<String>) -> Vec<String> {
    text.unwrap_or_default()
        .split([',', '\n', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Comma, space or newline separated service folders; at least one.
fn services(text: Option<String>) -> Result<Vec<String>, InputError> {
    let services = list(text);
    if services.is_empty() {
        return Err(bad(
            "services",
            "required: name one or more folders under <config-dir>/services/, comma separated",
        ));
    }
    Ok(services)
}

/// The release for verbs that need one: the `tag` input, else the pushed tag.
fn version(verb: &ActionVerb, tag: Option<String>) -> Result<Option<Version>, InputError> {
    let needs_tag = matches!(
        verb,
        ActionVerb::Deploy | ActionVerb::Build | ActionVerb::Stage | ActionVerb::Promote
    );
    match tag {
        Some(tag) if needs_tag => Version::parse(&tag)
            .map(Some)
            .map_err(|e| bad("tag", format!("{e}; run on a tag push or set `tag`"))),
        None if needs_tag => Err(bad(
            "tag",
            "no tag: run on a `v*` tag push, or set `tag: v1.2.3`",
        )),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> ActionArgs {
        ActionArgs {
            command: Some("deploy".into()),
            environment: Some("production".into()),
            services: Some("web".into()),
            config_dir: Some("deploy".into()),
            tag: Some(String::new()),
            image: Some(String::new()),
            rollback: Some(String::new()),
            strategy: Some(String::new()),
            require_promoted_in: Some(String::new()),
            github_token: Some(String::new()),
            slack_webhook: Some(String::new()),
            dry_run: Some("false".into()),
            release_notes: Some("false".into()),
            log_level: Some(String::new()),
        }
    }

    #[test]
    fn require_promoted_in_is_a_list_for_promote_and_deploy_only() {
        let mut i = inputs();
        i.require_promoted_in = Some(" staging, qa ".into());
        let req = i.into_request(Some("v1.4.0".into())).unwrap();
        assert_eq!(req.require_promoted_in, ["staging", "qa"]);
        let mut i = inputs();
        i.command = Some("stage".into());
        i.require_promoted_in = Some("staging".into());
        let err = i.into_request(Some("v1.4.0".into())).unwrap_err();
        assert_eq!(err.input, "require-promoted-in");
    }

    #[test]
    fn empty_inputs_are_unset_and_the_tag_comes_from_github_ref() {
        let req = inputs()
            .into_request(Some("refs/tags/v1.4.0".into()))
            .unwrap();
        assert_eq!(req.verb, ActionVerb::Deploy);
        assert_eq!(req.version.unwrap().to_string(), "v1.4.0");
        assert!(req.github_token.is_none() && req.image.is_none() && !req.dry_run);
        assert!(req.strategy.is_none());
    }

    #[test]
    fn the_strategy_input_is_the_config_enum() {
        let mut i = inputs();
        i.strategy = Some(" linear ".into());
        let req = i.into_request(Some("v1.0.0".into())).unwrap();
        assert_eq!(req.strategy, Some(StrategyKind::Linear));
    }

    #[test]
    fn unlock_is_an_action_command_without_a_tag() {
        let mut i = inputs();
        i.command = Some("unlock".into());
        let req = i.into_request(None).unwrap();
        assert_eq!(req.verb, ActionVerb::Unlock);
    }

    #[test]
    fn rollback_input_wins_over_command() {
        let mut i = inputs();
        i.rollback = Some("true".into());
        let req = i.clone().into_request(None).unwrap();
        assert_eq!(req.verb, ActionVerb::Rollback(None));
        i.rollback = Some("v1.2.0".into());
        let req = i.into_request(None).unwrap();
        assert_eq!(
            req.verb,
            ActionVerb::Rollback(Some(Version::parse("v1.2.0").unwrap()))
        );
    }

    #[test]
    fn services_split_on_commas_and_lines() {
        let mut i = inputs();
        i.services = Some("web, api\nworker".into());
        let req = i.into_request(Some("v1.0.0".into())).unwrap();
        assert_eq!(req.services, ["web", "api", "worker"]);
    }

    /// An input name and how to break it.
    type BadInput = (&'static str, Box<dyn Fn(&mut ActionArgs)>);

    #[test]
    fn bad_inputs_name_the_input() {
        let cases: Vec<BadInput> = vec![
            ("command", Box::new(|i| i.command = Some("ship".into()))),
            (
                "environment",
                Box::new(|i| i.environment = Some(" ".into())),
            ),
            ("services", Box::new(|i| i.services = Some(",".into()))),
            ("tag", Box::new(|i| i.tag = Some("main".into()))),
            (
                "rollback",
                Box::new(|i| i.rollback = Some("yesterday".into())),
            ),
            ("image", Box::new(|i| i.image = Some("repo:latest".into()))),
            (
                "strategy",
                Box::new(|i| i.strategy = Some("big-bang".into())),
            ),
            ("dry-run", Box::new(|i| i.dry_run = Some("yes".into()))),
            (
                "release-notes",
                Box::new(|i| i.release_notes = Some("1".into())),
            ),
        ];
        for (input, edit) in cases {
            let mut i = inputs();
            i.tag = Some("v1.0.0".into());
            edit(&mut i);
            let err = i.into_request(None).unwrap_err();
            assert_eq!(err.input, input);
            assert!(
                err.to_string().contains(&format!("`{input}`")),
                "{input}: {err}"
            );
        }
        let mut i = inputs();
        i.tag = None;
        let err = i.into_request(None).unwrap_err();
        assert!(err.to_string().contains("`tag`"), "{err}");
    }
}
