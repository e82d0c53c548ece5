//! `cutover action`: the GitHub Action's entry point. The runner passes the inputs of
//! action.yml as `INPUT_*` environment variables (read by clap in `cli::action`, never
//! through a shell) and they arrive here checked, as an [`ActionRequest`]; [`run`] runs
//! the chosen verb for each service with GitHub deployments, Slack, workflow groups and
//! annotations, then writes the job summary and the step outputs.

mod outputs;
mod run;

use std::path::PathBuf;

use secrecy::SecretString;

pub use run::run;

use super::{
    BuildRequest, PromoteRequest, ReleaseRequest, Request, RollbackRequest, StatusRequest, Target,
    Verb,
};
use crate::config::settings::StrategyKind;
use crate::version::Version;

/// An action input that cannot be used, named as action.yml spells it (a usage error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("action input `{input}`: {problem}")]
pub struct InputError {
    pub input: &'static str,
    pub problem: String,
}

/// What the action was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionVerb {
    Deploy,
    Build,
    Stage,
    Promote,
    /// `rollback: true` (None) or `rollback: v1.2.3`.
    Rollback(Option<Version>),
    Status,
    Verify,
    /// Break the deploy lock (a dead run's); only from a protected environment.
    Unlock,
    /// Remove what nothing references (`dry-run: true` lists it only); needs the optional
    /// cleanup IAM policy.
    Cleanup,
}

impl ActionVerb {
    fn name(&self) -> &'static str {
        match self {
            ActionVerb::Deploy => "deploy",
            ActionVerb::Build => "build",
            ActionVerb::Stage => "stage",
            ActionVerb::Promote => "promote",
            ActionVerb::Rollback(_) => "rollback",
            ActionVerb::Status => "status",
            ActionVerb::Verify => "verify",
            ActionVerb::Unlock => "unlock",
            ActionVerb::Cleanup => "cleanup",
        }
    }

    /// A rollback: its deployment is the release it returns to.
    fn rolls_back(&self) -> bool {
        matches!(self, ActionVerb::Rollback(_))
    }

    /// Verbs that run several services as one release (a train): all or nothing; a
    /// rollback (`true` or `v1.2.3`, each member to its own entry of that tag) moves every
    /// member at once and never waits on one it cannot fix.
    fn trains(&self) -> bool {
        matches!(
            self,
            ActionVerb::Build
                | ActionVerb::Deploy
                | ActionVerb::Stage
                | ActionVerb::Promote
                | ActionVerb::Rollback(_)
        )
    }

    /// Verbs that change what runs, so they get a GitHub deployment and Slack messages.
    fn deploys(&self) -> bool {
        matches!(
            self,
            ActionVerb::Deploy | ActionVerb::Stage | ActionVerb::Promote | ActionVerb::Rollback(_)
        )
    }
}

#[derive(Debug, Clone)]
pub struct ActionRequest {
    pub verb: ActionVerb,
    pub config_dir: PathBuf,
    pub environment: String,
    pub services: Vec<String>,
    pub version: Option<Version>,
    pub image: Option<String>,
    pub strategy: Option<StrategyKind>,
    /// The `require-promoted-in` input: `[versions]` rules added for this run.
    pub require_promoted_in: Vec<String>,
    pub github_token: Option<SecretString>,
    pub slack_webhook: Option<SecretString>,
    pub dry_run: bool,
    pub release_notes: bool,
}

impl ActionRequest {
    /// Several services moved as one train (a dry run plans each service on its own).
    fn is_train(&self) -> bool {
        self.services.len() > 1 && self.verb.trains() && !self.dry_run
    }

    fn target(&self, service: &str) -> Target {
        Target {
            config_dir: self.config_dir.clone(),
            env: self.environment.clone(),
            service: service.to_string(),
            strategy: self.strategy,
        }
    }

    /// The CLI request for one service.
    fn request(&self, service: &str) -> Request {
        let target = self.target(service);
        let version = self.version.clone();
        let release = |version: Version| ReleaseRequest {
            target: target.clone(),
            version,
            image: self.image.clone(),
            git_sha: std::env::var("GITHUB_SHA").ok().filter(|s| !s.is_empty()),
            force_rebuild: false,
            dry_run: self.dry_run,
            require_promoted_in: self.require_promoted_in.clone(),
        };
        let tagged = || {
            version
                .clone()
                .expect("checked with the inputs: the verb has a tag")
        };
        match &self.verb {
            ActionVerb::Deploy => Request::Release(Verb::Deploy, release(tagged())),
            ActionVerb::Stage => Request::Release(Verb::Stage, release(tagged())),
            ActionVerb::Build => Request::Build(BuildRequest {
                target,
                version: tagged(),
                git_sha: std::env::var("GITHUB_SHA").ok().filter(|s| !s.is_empty()),
                force_rebuild: false,
            }),
            ActionVerb::Promote => Request::Promote(PromoteRequest {
                target,
                version: tagged(),
                dry_run: self.dry_run,
                require_promoted_in: self.require_promoted_in.clone(),
            }),
            ActionVerb::Rollback(to) => Request::Rollback(RollbackRequest {
                target,
                to: to.clone(),
                dry_run: self.dry_run,
            }),
            ActionVerb::Status => Request::Status(StatusRequest {
                target,
                json: false,
                release: None,
            }),
            ActionVerb::Verify => Request::Verify(target),
            ActionVerb::Unlock => Request::Unlock(target),
            ActionVerb::Cleanup => Request::Cleanup(super::CleanupRequest {
                target,
                apply: !self.dry_run,
                json: false,
            }),
        }
    }
}
