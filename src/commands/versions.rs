//! `[versions]` rules at the edge: which environments must have promoted (or rehearsed)
//! the very same image digest first — environment.toml's `require_promoted_in` and
//! `require_rehearsal_in`, plus `--require-promoted-in` (the action's
//! `require-promoted-in`) for one run — their settings, and the engine's verdict from
//! their histories. Checked by `promote` and `deploy` before any write.

use super::Target;
use crate::aws::histories::AwsHistories;
use crate::config::{self, EnvironmentSettings, Layout, Loaded};
use crate::engine::{Need, Rule, Verdict, check_versions};
use crate::exit::{Coded, ExitCode};
use crate::ports::Digest;
use crate::version::Version;

/// How the run's own rules are named in messages (the CLI flag and the action input).
const FOR_THIS_RUN: &str = "--require-promoted-in";

/// The rules for one run, and the settings of the environments they name.
pub struct Rules {
    rules: Vec<Rule>,
    envs: Vec<(String, EnvironmentSettings)>,
}

/// The rules for this run, each environment checked to exist (its settings loaded): a bad
/// name is exit 2 before any AWS call.
pub fn rules(target: &Target, loaded: &Loaded, promoted_in: &[String]) -> anyhow::Result<Rules> {
    let versions = &loaded.environment.versions;
    let mut rules = Vec::new();
    let named: [(&[String], Need, &str); 3] = [
        (
            &versions.require_promoted_in,
            Need::Promoted,
            "[versions] require_promoted_in",
        ),
        (promoted_in, Need::Promoted, FOR_THIS_RUN),
        (
            &versions.require_rehearsal_in,
            Need::Rehearsed,
            "[versions] require_rehearsal_in",
        ),
    ];
    for (envs, need, source) in named {
        for env in envs {
            let rule = Rule {
                env: env.clone(),
                need,
                source: source.to_string(),
            };
            if !rules
                .iter()
                .any(|r: &Rule| r.env == rule.env && r.need == rule.need)
            {
                rules.push(rule);
            }
        }
    }
    let layout = Layout::new(&target.config_dir);
    let mut envs: Vec<(String, EnvironmentSettings)> = Vec::new();
    for rule in &rules {
        if rule.env == target.env {
            return Err(Coded::new(
                ExitCode::Usage,
                format!(
                    "{} names `{}` itself: name the environment a release must pass first, e.g. staging",
                    rule.source, target.env
                ),
            )
            .into());
        }
        if envs.iter().any(|(name, _)| name == &rule.env) {
            continue;
        }
        let settings = config::environment(&layout, &rule.env, &rule.source)?;
        envs.push((rule.env.clone(), settings));
    }
    Ok(Rules { rules, envs })
}

impl Rules {
    /// No rule: for the verbs that do not move production traffic.
    pub fn none() -> Self {
        Self {
            rules: Vec::new(),
            envs: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The verdict on `digest` shipping to the target's environment; None when no rule
    /// applies. Reads the other environments' histories, nothing else.
    pub async fn verdict(
        &self,
        target: &Target,
        version: &Version,
        digest: &Digest,
    ) -> anyhow::Result<Option<Verdict>> {
        if self.rules.is_empty() {
            return Ok(None);
        }
        let histories = AwsHistories::connect(&target.service, &self.envs).await;
        let verdict = check_versions(&histories, &target.env, version, digest, &self.rules).await?;
        Ok(Some(verdict))
    }
}
