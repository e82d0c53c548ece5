//! What every verb that talks to AWS starts with: the compiled config, the AWS adapters
//! behind the engine's ports (connected once), the reporters, the cancel signal, and who
//! is running (for the lock and the history).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::Target;
use super::signals::spawn_signal_watch;
use crate::aws::{AwsTarget, Connection, cloud::AwsCloud};
use crate::clock;
use crate::config::Loaded;
use crate::engine::{Cancel, Engine, Reach};
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
        Self::open_on(&mut Vec::new(), target, loaded, reporters, account_check).await
    }

    /// Open on a connection of `connections` to the same environment when there is one
    /// (its account already checked), else on a new one, added. A train's members share
    /// one environment: one credentials resolution, one connection pool, one check.
    pub async fn open_on(
        connections: &mut Vec<Connection>,
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
        let cloud = match connections.iter().find(|c| c.target == aws) {
            Some(shared) => AwsCloud::on(shared, &target.service, env, &loaded.service),
            None => {
                let connection = Connection::open(&aws).await?;
                let cloud = AwsCloud::on(&connection, &target.service, env, &loaded.service);
                if account_check == AccountCheck::First {
                    check_account(&cloud, &target.env, env.account_id.as_deref()).await?;
                }
                connections.push(connection);
                cloud
            }
        };
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
                format!(
                    "{} (the command failed with: {})",
                    super::error_text(&wrong),
                    super::error_text(&err)
                ),
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

    /// [`Self::engine`] reporting through `reporter` (a train names each member's lines).
    pub fn engine_reporting<'a>(
        &'a self,
        reporter: &'a (dyn Reporter + Sync),
    ) -> Engine<'a, AwsCloud> {
        Engine::new(
            &self.cloud,
            reporter,
            &self.loaded.service,
            self.owner.clone(),
        )
        .with_cancel(self.cancel.clone())
    }

    /// Where this session's status lines go (the console and the command's reporters).
    pub fn reporter(&self) -> &(dyn Reporter + Sync) {
        &self.reporter
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

/// What the credentials must outlast beyond a command's worst case: the rollback that may
/// follow it, the lock's release and the history's last write.
pub const CREDENTIALS_MARGIN: Duration = Duration::from_secs(5 * 60);

impl Session {
    /// Refuse (exit 2, nothing done yet) when the credentials expire before `reach` can
    /// end in the worst case plus [`CREDENTIALS_MARGIN`]: an `ExpiredToken` mid-bake would
    /// otherwise stop the run, or its rollback, halfway. Credentials without an expiry
    /// (environment variables, static keys) pass.
    pub fn check_credentials_outlast(&self, reach: Reach, verb: &str) -> anyhow::Result<()> {
        let worst = crate::engine::longest(&self.loaded.service, reach)?;
        let Some(expiry) = self.cloud.credentials_expiry() else {
            return Ok(());
        };
        let expires = expiry
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        credentials_outlast(clock::wall_now(), expires, worst, verb)
            .map_err(|message| Coded::new(ExitCode::Usage, message).into())
    }
}

/// `Err` with both times and the remedy when credentials expiring at `expires` end before
/// `now + worst + margin`.
fn credentials_outlast(
    now: Millis,
    expires: Millis,
    worst: Duration,
    verb: &str,
) -> Result<(), String> {
    let needed = now.saturating_add(
        u64::try_from((worst + CREDENTIALS_MARGIN).as_millis()).unwrap_or(u64::MAX),
    );
    if expires >= needed {
        return Ok(());
    }
    let minutes = |ms: u64| ms.div_ceil(60_000);
    Err(format!(
        "the AWS credentials expire at {} (in {} min), but `{verb}` can take until {} in the worst case ({} min of deadlines and holds plus a {} min margin for a rollback); nothing was started. Ask for a session that outlasts it: `role-duration-seconds` of at least {} in aws-actions/configure-aws-credentials, within the deploy role's maximum session duration (terraform: `deploy_role_max_session_duration` of the ecs-blue-green-service module), or shorten the strategy's holds",
        clock::rfc3339(expires),
        minutes(expires.saturating_sub(now)),
        clock::rfc3339(needed),
        worst.as_secs().div_ceil(60),
        CREDENTIALS_MARGIN.as_secs() / 60,
        (worst + CREDENTIALS_MARGIN).as_secs().div_ceil(60) * 60,
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_must_outlast_the_worst_case_plus_the_margin() {
        let now = 1_800_000_000_000;
        let worst = Duration::from_secs(40 * 60);
        let hour = 3_600_000;
        assert!(credentials_outlast(now, now + hour, worst, "deploy").is_ok());
        let err = credentials_outlast(now, now + 30 * 60_000, worst, "deploy").unwrap_err();
        assert!(
            err.contains("expire at 2027-01-15T08:30:00Z (in 30 min)"),
            "{err}"
        );
        assert!(err.contains("until 2027-01-15T08:45:00Z"), "{err}");
        assert!(
            err.contains("role-duration-seconds` of at least 2700"),
            "{err}"
        );
        assert!(err.contains("deploy_role_max_session_duration"), "{err}");
    }
}
