//! What every verb that talks to AWS starts with: the compiled config, one SDK config, the
//! adapters behind the engine's ports, the reporters, and who is running (for the lock and
//! the history). Also the dry-run guard that makes writes impossible.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;

use super::Target;
use crate::aws::{self, AwsTarget, cloud::AwsCloud};
use crate::config::{self, Context, Layout, Loaded};
use crate::engine::{Cancel, CancelHandle, Engine};
use crate::exit::{Coded, ExitCode};
use crate::ports::*;
use crate::report::{Fanout, console::Console};
use crate::version::Version;

/// The compiled config for a verb: version and image when the verb has them.
pub fn load_config(
    target: &Target,
    version: Option<&Version>,
    image: Option<&str>,
    git_sha: Option<&str>,
) -> anyhow::Result<Loaded> {
    let context = Context {
        env: target.env.clone(),
        service: target.service.clone(),
        version: version.cloned(),
        image: image.map(str::to_string),
        git_sha: git_sha.map(str::to_string),
        build_dir: PathBuf::from("build")
            .join(&target.env)
            .join(&target.service),
    };
    let mut loaded = config::load(&Layout::new(&target.config_dir), context)?;
    if let Some(kind) = &target.strategy {
        loaded.service.strategy = loaded.service.strategy.with_kind(kind)?;
    }
    Ok(loaded)
}

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
    pub sdk: aws_config::SdkConfig,
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
        let sdk = aws::load(&AwsTarget {
            environment: target.env.clone(),
            region: env.region.clone(),
            profile: env.profile.clone(),
        })
        .await;
        if account_check == AccountCheck::First {
            check_account(&sdk, &target.env, env.account_id.as_deref()).await?;
        }
        let cloud = AwsCloud::new(&sdk, &target.env, &target.service, env, &loaded.service);
        let reporter = reporters
            .iter()
            .fold(Fanout::default().with(Console::stderr()), |f, r| {
                f.with(Arc::clone(r))
            });
        Ok(Self {
            loaded,
            sdk,
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
        match check_account(&self.sdk, &self.env, expected).await {
            Err(wrong) if crate::exit::code_for(&wrong) == ExitCode::Usage => Coded::new(
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
    pub fn dry_engine<'a>(&'a self, guard: &'a ReadOnly<'a>) -> Engine<'a, ReadOnly<'a>> {
        Engine::new(
            guard,
            &self.reporter,
            &self.loaded.service,
            self.owner.clone(),
        )
    }
}

/// The credentials are for `expected` (when environment.toml names an account).
async fn check_account(
    sdk: &aws_config::SdkConfig,
    env: &str,
    expected: Option<&str>,
) -> anyhow::Result<()> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let who = aws_sdk_sts::Client::new(sdk)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "sts:GetCallerIdentity failed: {}; check the AWS credentials for `{env}`",
                aws_sdk_sts::error::DisplayErrorContext(&e),
            )
        })?;
    let actual = who.account().unwrap_or_default();
    if actual != expected {
        return Err(Coded::new(
            ExitCode::Usage,
            format!("the AWS credentials are for account {actual}, but environment `{env}` is account {expected} (environment.toml account_id); use that account's credentials or profile"),
        )
        .into());
    }
    Ok(())
}

/// SIGINT or SIGTERM (what a cancelled GitHub run sends) asks the engine to stop at the
/// next safe point; it never leaves traffic split. A second signal (the runner's SIGTERM
/// 7.5 s after its SIGINT, or a second Ctrl-C) means the safe stop is not coming — AWS is
/// not answering — so cutover says what may be left behind and exits before the kill.
fn spawn_signal_watch(handle: CancelHandle) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            let mut next = async || {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            };
            next().await;
            tracing::warn!("cancel requested: stopping at the next safe point");
            handle.cancel();
            next().await;
            // Straight to stderr: the process ends right after, before any log flush.
            let _ = writeln!(
                std::io::stderr().lock(),
                "error: a second signal before the safe stop finished: stopping now. \
                 Production traffic may be split and the lock is held until it expires; \
                 run `cutover status`, then `cutover rollback` (or `cutover unlock`)."
            );
            std::process::exit(i32::from(ExitCode::RollbackFailed.code()));
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            tracing::warn!("cancel requested: stopping at the next safe point");
            handle.cancel();
        }
    });
}

/// Who runs: the GitHub run URL under Actions, else `user@host`.
pub fn owner() -> String {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let (Some(server), Some(repo), Some(run)) = (
        var("GITHUB_SERVER_URL"),
        var("GITHUB_REPOSITORY"),
        var("GITHUB_RUN_ID"),
    ) {
        return format!("{}/{repo}/actions/runs/{run}", server.trim_end_matches('/'));
    }
    let user = var("USER").unwrap_or_else(|| "someone".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| var("HOSTNAME"))
        .unwrap_or_else(|| "localhost".into());
    format!("{user}@{host}")
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

/// The cloud with every write refused: `plan` and `--dry-run` run the engine's reads over
/// it, so a dry run cannot change anything even by mistake. Refused writes are counted.
pub struct ReadOnly<'a> {
    pub inner: &'a AwsCloud,
    pub refused: std::sync::atomic::AtomicUsize,
}

impl<'a> ReadOnly<'a> {
    pub fn new(inner: &'a AwsCloud) -> Self {
        Self {
            inner,
            refused: Default::default(),
        }
    }

    fn refuse<T>(&self, call: &str) -> PortResult<T> {
        self.refused
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Err(PortError::Conflict(format!("dry run: {call} not made")))
    }
}

impl Compute for ReadOnly<'_> {
    async fn read_slot(&self, slot: Slot) -> PortResult<SlotState> {
        self.inner.read_slot(slot).await
    }
    async fn slot_services(&self) -> PortResult<(SlotState, SlotState)> {
        self.inner.slot_services().await
    }
    async fn register_task_definition(&self, _: &TaskSpec) -> PortResult<TaskDefinition> {
        self.refuse("RegisterTaskDefinition")
    }
    async fn update_slot(&self, _: Slot, _: &str, _: u32) -> PortResult<()> {
        self.refuse("UpdateService")
    }
}

impl Traffic for ReadOnly<'_> {
    async fn production_weights(&self) -> PortResult<Weights> {
        self.inner.production_weights().await
    }
    async fn weights_and_test_listener(&self) -> PortResult<(Weights, Option<Slot>)> {
        self.inner.weights_and_test_listener().await
    }
    async fn set_production_weights(&self, _: Weights) -> PortResult<()> {
        self.refuse("ModifyListener")
    }
    async fn test_listener(&self) -> PortResult<Option<Slot>> {
        self.inner.test_listener().await
    }
    async fn point_test_listener(&self, _: Slot) -> PortResult<()> {
        self.refuse("ModifyListener (test)")
    }
    async fn target_health(&self, slot: Slot) -> PortResult<Vec<TargetHealth>> {
        self.inner.target_health(slot).await
    }
    async fn health_check_timing(&self, slot: Slot) -> PortResult<HealthCheckTiming> {
        self.inner.health_check_timing(slot).await
    }
}

impl Images for ReadOnly<'_> {
    async fn digest_for_tag(&self, tag: &str) -> PortResult<Option<Digest>> {
        self.inner.digest_for_tag(tag).await
    }
    async fn exists(&self, digest: &Digest) -> PortResult<bool> {
        self.inner.exists(digest).await
    }
}

impl Store for ReadOnly<'_> {
    async fn history(&self) -> PortResult<Vec<Release>> {
        self.inner.history().await
    }
    async fn history_and_lock(&self) -> PortResult<(Vec<Release>, Option<Lock>)> {
        self.inner.history_and_lock().await
    }
    async fn record(&self, _: &Release, _: usize) -> PortResult<()> {
        self.refuse("PutParameter (history)")
    }
    async fn create_lock(&self, _: &Lock) -> PortResult<()> {
        self.refuse("PutParameter (lock)")
    }
    async fn read_lock(&self) -> PortResult<Option<Lock>> {
        self.inner.read_lock().await
    }
    async fn renew_lock(&self, _: &Lock) -> PortResult<()> {
        self.refuse("PutParameter (lock)")
    }
    async fn delete_lock(&self) -> PortResult<()> {
        self.refuse("DeleteParameter (lock)")
    }
}

impl Signals for ReadOnly<'_> {
    async fn alarm_states(&self, names: &[String]) -> PortResult<BTreeMap<String, AlarmState>> {
        self.inner.alarm_states(names).await
    }
}

impl Prober for ReadOnly<'_> {
    async fn probe(&self, _: &ProbeRequest) -> CheckResult {
        CheckResult::Fail("dry run: no probe sent".into())
    }
    async fn run_command(&self, _: &[String], _: &Version, _: std::time::Duration) -> CheckResult {
        CheckResult::Fail("dry run: validation command not run".into())
    }
}

impl Clock for ReadOnly<'_> {
    fn now(&self) -> Millis {
        self.inner.now()
    }
}
