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
use crate::ports::{Reporter, Status, StatusEvent};

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
    pub environment: String,
    pub environment_url: Option<String>,
    /// Link to the workflow run, `GITHUB_SERVER_URL/GITHUB_REPOSITORY/actions/runs/GITHUB_RUN_ID`.
    pub log_url: Option<String>,
    pub service: String,
}

pub struct GithubDeployments {
    queue: Queue<StatusEvent>,
}

impl GithubDeployments {
    /// Start the background task on the current tokio runtime.
    pub fn start(target: GithubTarget) -> anyhow::Result<Self> {
        let octo = client(&target)?;
        let queue = Queue::start(|mut rx| async move {
            let mut deployment: Option<DeploymentId> = None;
            while let Some(event) = rx.recv().await {
                if let Err(e) = send(&octo, &target, &mut deployment, &event).await {
                    // Reporting is best effort: say so once per failure and go on.
                    tracing::warn!(
                        "GitHub deployment status for {} not sent: {}",
                        event.status,
                        describe(&e)
                    );
                }
            }
        });
        Ok(Self { queue })
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
        self.queue.push(event.clone());
    }

    fn notice(&self, _message: &str) {}
}

/// An API client for `target`'s base URL and token.
pub(super) fn client(target: &GithubTarget) -> anyhow::Result<Octocrab> {
    Ok(Octocrab::builder()
        .base_uri(target.api_url.as_str())?
        .personal_token(target.token.expose_secret().to_string())
        .build()?)
}

/// The deployment state GitHub shows for a lifecycle status.
pub fn state_of(status: Status) -> DeploymentStatusState {
    match status {
        Status::Pending => DeploymentStatusState::Queued,
        Status::Promoted => DeploymentStatusState::Success,
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

async fn send(
    octo: &Octocrab,
    t: &GithubTarget,
    deployment: &mut Option<DeploymentId>,
    event: &StatusEvent,
) -> octocrab::Result<()> {
    let repo = octo.repos(&t.owner, &t.repo);
    let id = match *deployment {
        Some(id) => id,
        None => {
            let existing = repo
                .deployments()
                .list()
                .r#ref(&t.git_ref)
                .environment(&t.environment)
                .per_page(1u8)
                .send()
                .await?;
            let id = match existing.items.first() {
                Some(d) => d.id,
                None => {
                    repo.deployments()
                        .create(&t.git_ref)
                        .environment(&t.environment)
                        // cutover's own checks gate the release; commit statuses must not.
                        .auto_merge(false)
                        .required_contexts(Vec::<String>::new())
                        .description(format!("{} {}", t.service, t.git_ref))
                        .payload(serde_json::json!({ "service": t.service, "tool": "cutover" }))
                        .production_environment(t.environment == "production")
                        .send()
                        .await?
                        .id
                }
            };
            *deployment = Some(id);
            id
        }
    };
    let mut description = format!("{}: {}", event.status, event.detail);
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
    let mut status = repo
        .deployments()
        .statuses(id)
        .create(state_of(event.status))
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
