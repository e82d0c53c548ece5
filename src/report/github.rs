//! GitHub deployments: one Deployment per environment and tag, with a status for every
//! lifecycle step, so anyone can follow a release in GitHub's deployments view (seed 001).
//! A later job (`promote` after approval) finds the same deployment and appends to it.
//!
//! Reporter calls are synchronous; the API calls run in order on a background task fed by
//! a channel, and `finish` waits for them. A GitHub outage never fails a deploy.

use octocrab::Octocrab;
use octocrab::models::DeploymentId;
use octocrab::models::repos::DeploymentStatusState;
use secrecy::{ExposeSecret, SecretString};

use super::queue::Queue;
use crate::ports::{RehearsalEvent, Reporter, Status, StatusEvent};

/// Where and as whom to report; from the Actions environment (`GITHUB_*`).
#[derive(Clone)]
pub struct GithubTarget {
    /// API base, `GITHUB_API_URL` (injectable for tests and GitHub Enterprise).
    pub api_url: String,
    pub token: SecretString,
    pub owner: String,
    pub repo: String,
    /// The git ref being deployed (the tag).
    pub git_ref: String,
    /// The deployments' environment: the GitHub environment, or `production/api` for each
    /// member of several services, so that every service keeps its own active deployment
    /// (GitHub leaves one deployment active per environment).
    pub environment: String,
    /// GitHub's `production_environment` flag: the GitHub environment is production's.
    pub production: bool,
    pub environment_url: Option<String>,
    /// Link to the workflow run, `GITHUB_SERVER_URL/GITHUB_REPOSITORY/actions/runs/GITHUB_RUN_ID`.
    pub log_url: Option<String>,
    pub service: String,
    /// The run returns production to an earlier release (`rollback`): its deployment is
    /// that release's — created at the first status naming it, `git_ref` only if none
    /// does — and a rollback that worked is that release's success, not a failure.
    pub rollback: bool,
}

/// What the background task sends: a lifecycle status, or `inactive` on the latest
/// deployment of a release that production left.
enum Message {
    Status(StatusEvent),
    Inactive { git_ref: String, why: String },
}

pub struct GithubDeployments {
    queue: Queue<Message>,
}

impl GithubDeployments {
    /// Start the background task on the current tokio runtime.
    pub fn start(target: GithubTarget) -> anyhow::Result<Self> {
        let octo = client(&target)?;
        let queue = Queue::start(|mut rx| async move {
            let mut deployment = Deployment::new(&target);
            while let Some(message) = rx.recv().await {
                let (what, sent) = match message {
                    Message::Status(event) => (
                        event.status.to_string(),
                        deployment.status(&octo, &target, event).await,
                    ),
                    Message::Inactive { git_ref, why } => (
                        format!("inactive on {git_ref}"),
                        inactivate(&octo, &target, &git_ref, &why).await,
                    ),
                };
                // Reporting is best effort: say so once per failure and go on.
                if let Err(e) = sent {
                    tracing::warn!("GitHub deployment status {what} not sent: {}", describe(&e));
                }
            }
            if let Err(e) = deployment.flush(&octo, &target).await {
                tracing::warn!("GitHub deployment statuses not sent: {}", describe(&e));
            }
        });
        Ok(Self { queue })
    }

    /// Mark the latest deployment of `git_ref` in this environment inactive: production
    /// left that release (a rollback away from it).
    pub fn inactive(&self, git_ref: &str, why: &str) {
        self.queue.push(Message::Inactive {
            git_ref: git_ref.to_string(),
            why: why.to_string(),
        });
    }

    /// Wait (at most `limit`) for every queued status to reach GitHub.
    pub async fn finish(&self, limit: std::time::Duration) {
        if !self.queue.finish(limit).await {
            tracing::warn!(
                "GitHub deployment statuses still pending after {}s; not waiting longer",
                limit.as_secs()
            );
        }
    }
}

impl Reporter for GithubDeployments {
    fn status(&self, event: &StatusEvent) {
        self.queue.push(Message::Status(event.clone()));
    }

    fn notice(&self, _message: &str) {}

    /// The rehearsal comes after the bake's Promoted: one more `success` status, whose
    /// description gives both directions and their durations (what the deployments view
    /// shows last).
    fn rehearsed(&self, event: &RehearsalEvent) {
        self.queue.push(Message::Status(StatusEvent {
            status: Status::Promoted,
            version: Some(event.version.clone()),
            slot: Some(event.slot),
            detail: event.describe(),
        }));
    }
}

/// An API client for `target`'s base URL and token.
pub(super) fn client(target: &GithubTarget) -> anyhow::Result<Octocrab> {
    Ok(Octocrab::builder()
        .base_uri(target.api_url.as_str())?
        .personal_token(target.token.expose_secret().to_string())
        .build()?)
}

/// The deployment state GitHub shows for a lifecycle status. In a rollback run the
/// deployment is the release being returned to, so RolledBack is its success; elsewhere a
/// release that was rolled back failed.
pub fn state_of(status: Status, rollback: bool) -> DeploymentStatusState {
    match status {
        Status::Pending => DeploymentStatusState::Queued,
        Status::Promoted => DeploymentStatusState::Success,
        Status::RolledBack if rollback => DeploymentStatusState::Success,
        Status::Failed | Status::RolledBack => DeploymentStatusState::Failure,
        Status::RollbackFailed => DeploymentStatusState::Error,
        // Waiting for a reviewer is still an unfinished deployment.
        Status::AwaitingApproval => DeploymentStatusState::Pending,
        Status::Building
        | Status::Pushing
        | Status::Staging
        | Status::Validating
        | Status::Shifting(_)
        | Status::Baking
        | Status::RollingBack => DeploymentStatusState::InProgress,
    }
}

/// This run's deployment: found or created at the first status that can name its ref, with
/// the statuses that came before it held until then.
struct Deployment {
    id: Option<DeploymentId>,
    git_ref: Option<String>,
    held: Vec<StatusEvent>,
}

impl Deployment {
    fn new(t: &GithubTarget) -> Self {
        Self {
            id: None,
            git_ref: (!t.rollback).then(|| t.git_ref.clone()),
            held: Vec::new(),
        }
    }

    async fn status(
        &mut self,
        octo: &Octocrab,
        t: &GithubTarget,
        event: StatusEvent,
    ) -> octocrab::Result<()> {
        if self.git_ref.is_none() {
            match &event.version {
                Some(v) => self.git_ref = Some(v.to_string()),
                None => {
                    self.held.push(event);
                    return Ok(());
                }
            }
        }
        self.held.push(event);
        self.flush(octo, t).await
    }

    /// Send what is held; a run that never named a release reports on `git_ref`.
    async fn flush(&mut self, octo: &Octocrab, t: &GithubTarget) -> octocrab::Result<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        let git_ref = self
            .git_ref
            .get_or_insert_with(|| t.git_ref.clone())
            .clone();
        let id = match self.id {
            Some(id) => id,
            None => *self.id.insert(find_or_create(octo, t, &git_ref).await?),
        };
        for event in std::mem::take(&mut self.held) {
            let state = state_of(event.status, t.rollback);
            post_status(
                octo,
                t,
                id,
                state,
                &format!("{}: {}", event.status, event.detail),
            )
            .await?;
        }
        Ok(())
    }
}

/// The latest deployment of `git_ref` in the environment (a later job appends to the one
/// an earlier job made), or a new one.
async fn find_or_create(
    octo: &Octocrab,
    t: &GithubTarget,
    git_ref: &str,
) -> octocrab::Result<DeploymentId> {
    if let Some(id) = latest(octo, t, git_ref).await? {
        return Ok(id);
    }
    Ok(octo
        .repos(&t.owner, &t.repo)
        .deployments()
        .create(git_ref)
        .environment(&t.environment)
        // cutover's own checks gate the release; commit statuses must not.
        .auto_merge(false)
        .required_contexts(Vec::<String>::new())
        .description(format!("{} {git_ref}", t.service))
        .payload(serde_json::json!({ "service": t.service, "tool": "cutover" }))
        .production_environment(t.production)
        .send()
        .await?
        .id)
}

async fn latest(
    octo: &Octocrab,
    t: &GithubTarget,
    git_ref: &str,
) -> octocrab::Result<Option<DeploymentId>> {
    let existing = octo
        .repos(&t.owner, &t.repo)
        .deployments()
        .list()
        .r#ref(git_ref)
        .environment(&t.environment)
        .per_page(1u8)
        .send()
        .await?;
    Ok(existing.items.first().map(|d| d.id))
}

async fn inactivate(
    octo: &Octocrab,
    t: &GithubTarget,
    git_ref: &str,
    why: &str,
) -> octocrab::Result<()> {
    match latest(octo, t, git_ref).await? {
        Some(id) => post_status(octo, t, id, DeploymentStatusState::Inactive, why).await,
        None => Ok(()),
    }
}

async fn post_status(
    octo: &Octocrab,
    t: &GithubTarget,
    id: DeploymentId,
    state: DeploymentStatusState,
    description: &str,
) -> octocrab::Result<()> {
    let mut description = description.to_string();
    if description.len() > 140 {
        let cut = description
            .char_indices()
            .map(|(i, _)| i)
            .take_while(|i| *i <= 137)
            .last()
            .unwrap_or(0);
        description.truncate(cut);
        description.push_str("...");
    }
    let repo = octo.repos(&t.owner, &t.repo);
    let mut status = repo
        .deployments()
        .statuses(id)
        .create(state)
        .description(description)
        .environment(&t.environment);
    if let Some(url) = &t.log_url {
        status = status.log_url(url);
    }
    if let Some(url) = &t.environment_url {
        status = status.environment_url(url);
    }
    status.send().await?;
    Ok(())
}

pub(super) fn describe(e: &octocrab::Error) -> String {
    match e {
        octocrab::Error::GitHub { source, .. } => {
            let hint = if source.status_code.as_u16() == 403 || source.status_code.as_u16() == 404 {
                "; give the job `permissions: deployments: write` and pass github-token"
            } else {
                ""
            };
            format!("{} {}{hint}", source.status_code, source.message)
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolled_back_is_a_failure_of_a_release_and_the_success_of_a_rollback() {
        assert!(matches!(
            state_of(Status::RolledBack, false),
            DeploymentStatusState::Failure
        ));
        assert!(matches!(
            state_of(Status::RolledBack, true),
            DeploymentStatusState::Success
        ));
        assert!(matches!(
            state_of(Status::RollbackFailed, true),
            DeploymentStatusState::Error
        ));
    }
}
