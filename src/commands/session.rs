//! What every verb that talks to AWS starts with: the compiled config, the AWS adapters
//! behind the engine's ports (connected once), the reporters, the cancel signal, and who
//! is running (for the lock and the history).

use std::sync::Arc;

use anyhow::Context as _;

use super::Target;
use super::signals::spawn_signal_watch;
use crate::aws::{AwsTarget, cloud::AwsCloud};
use crate::config::Loaded;
use crate::engine::{Cancel, Engine};
use crate::exit::{Coded, ExitCode};
use crate::ports::*;
use crate::read_only::ReadOnly;
use crate::report::{Fanout, console::Console};

/// When the account behind the credentials is checked against environment.toml's
/// `account_id` (sts:GetCallerIdentity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountCheck {
    /// Before any other call: a wrong account is refused before anything happens.
    First,
    /// Only if the command fails, to say why. For `rollback`, where every call is time
    /// out of production: with another account's credentials its first read of the
    /// production listener fails (an ARN names its account, and ELBv2 does not describe
    /// another account's listeners), so nothing but its own lock parameter is written
    /// there (created, then deleted by the failing run) before this check names the cause.
    OnFailure,
}

/// One run against one environment/service.
pub struct Session {
    pub loaded: Loaded,
    pub cloud: AwsCloud,
    pub owner: String,
    pub(super) reporter: Fanout,
    cancel: Cancel,
    env: String,
    account_check: AccountCheck,
}

impl Session {
    /// Connect to AWS for `loaded`'s environment. When environment.toml names an account,
    /// the credentials must be for it: deploying to the wrong account is refused before
    /// any other call.
    pub async fn open(
        target: &Target,
        loaded: Loaded,
        reporters: &[Arc<dyn Reporter + Send + Sync>],
    ) -> anyhow::Result<Self> {
        Self::open_with(target, loaded, reporters, AccountCheck::First).await
    }

    pub async fn open_with(
        target: &Target,
        loaded: Loaded,
        reporters: &[Arc<dyn Reporter + Send + Sync>],
        account_check: AccountCheck,
    ) -> anyhow::Result<Self> {
        // Signals are watched before the first AWS call, so none of them can hang unstoppably.
        let (handle, cancel) = Cancel::new();
        spawn_signal_watch(handle);
        let env = &loaded.environment;
        let aws = AwsTarget {
            environment: target.env.clone(),
            region: env.region.clone(),
            profile: env.profile.clone(),
        };
        let cloud = AwsCloud::connect(&aws, &target.service, env, &loaded.service).await;
        if account_check == AccountCheck::First {
            check_account(&cloud, &target.env, env.account_id.as_deref()).await?;
        }
        let reporter = reporters
            .iter()
            .fold(Fanout::default().with(Console::stderr()), |f, r| {
                f.with(Arc::clone(r))
            });
        Ok(Self {
            loaded,
            cloud,
            owner: owner(),
            reporter,
            cancel,
            env: target.env.clone(),
            account_check,
        })
    }

    /// `err` ended the command: with a deferred account check, a wrong account is the
    /// likelier cause and the clearer message; otherwise `err` as it is.
    pub async fn explain(&self, err: anyhow::Error) -> anyhow::Error {
        if self.account_check == AccountCheck::First {
            return err;
        }
        let expected = self.loaded.environment.account_id.as_deref();
        match check_account(&self.cloud, &self.env, expected).await {
            Err(wrong) if crate::commands::exit_code(&wrong) == ExitCode::Usage => Coded::new(
                ExitCode::Usage,
                format!("{wrong:#} (the command failed with: {err:#})"),
            )
            .into(),
            _ => err,
        }
    }

    /// Run a step outside the engine (the image build) so a cancel stops it too; nothing
    /// has been deployed at that point, so stopping there is safe.
    pub async fn cancellable<T>(
        &self,
        what: &str,
        step: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        tokio::select! {
            result = step => result,
            () = self.cancel.cancelled() => Err(Coded::new(
                ExitCode::Cancelled,
                format!("cancelled during {what}; nothing was deployed"),
            )
            .into()),
        }
    }

    pub fn engine(&self) -> Engine<'_, AwsCloud> {
        Engine::new(
            &self.cloud,
            &self.reporter,
            &self.loaded.service,
            self.owner.clone(),
        )
        .with_cancel(self.cancel.clone())
    }

    /// An engine over a guard that refuses every write: for `plan` and `--dry-run`.
    pub fn dry_engine<'a>(
        &'a self,
        guard: &'a ReadOnly<'a, AwsCloud>,
    ) -> Engine<'a, ReadOnly<'a, AwsCloud>> {
        Engine::new(
            guard,
            &self.reporter,
            &self.loaded.service,
            self.owner.clone(),
        )
    }
}

/// The credentials are for `expected` (when environment.toml names an account).
async fn check_account(cloud: &AwsCloud, env: &str, expected: Option<&str>) -> anyhow::Result<()> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let actual = cloud
        .caller_account()
        .await
        .map_err(|e| anyhow::anyhow!("{e}; check the AWS credentials for `{env}`"))?;
    if actual != expected {
        return Err(Coded::new(
            ExitCode::Usage,
            format!("the AWS credentials are for account {actual}, but environment `{env}` is account {expected} (environment.toml account_id); use that account's credentials or profile"),
        )
        .into());
    }
    Ok(())
}

/// Who runs, as the lock and the history name it: under Actions the run's attempt
/// (`…/actions/runs/<id>/attempts/<n>`, so a re-run is told apart from the attempt it
/// follows), else `user@host:pid` (two shells of one user are told apart).
pub fn owner() -> String {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let (Some(server), Some(repo), Some(run)) = (
        var("GITHUB_SERVER_URL"),
        var("GITHUB_REPOSITORY"),
        var("GITHUB_RUN_ID"),
    ) {
        let attempt = var("GITHUB_RUN_ATTEMPT").unwrap_or_else(|| "1".into());
        return format!(
            "{}/{repo}/actions/runs/{run}/attempts/{attempt}",
            server.trim_end_matches('/')
        );
    }
    let user = var("USER").unwrap_or_else(|| "someone".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| var("HOSTNAME"))
        .unwrap_or_else(|| "localhost".into());
    format!("{user}@{host}:{}", std::process::id())
}

impl Session {
    /// The version live before this run (the newest release recorded Promoted), for the
    /// action's `previous-version` output; one history read, made only when asked.
    pub async fn note_previous_version(&self, outcome: &mut super::Outcome, wanted: bool) {
        if !wanted {
            return;
        }
        match self.cloud.history().await {
            Ok(history) => {
                outcome.previous_version = history
                    .iter()
                    .rev()
                    .find(|r| r.status == Status::Promoted)
                    .map(|r| r.version.to_string());
            }
            Err(e) => tracing::warn!("reading the history for previous-version: {e}"),
        }
    }
}

/// Start a runtime for a verb that talks to AWS.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
