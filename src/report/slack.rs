//! Slack incoming-webhook messages at start, hold, promote and rollback (seed 001). The
//! webhook URL is a secret: it is never logged, and errors say only that Slack refused.

use secrecy::{ExposeSecret, SecretString};

use super::queue::Queue;
use crate::ports::{Reporter, Status, StatusEvent};

pub struct Slack {
    queue: Queue<String>,
    heading: String,
    /// A rollback run: RolledBack is its success (the earlier release is live again).
    rollback: bool,
}

impl Slack {
    /// `heading` names the environment/service, e.g. `production/web`.
    pub fn start(
        webhook: SecretString,
        heading: impl Into<String>,
        http: reqwest::Client,
        rollback: bool,
    ) -> Self {
        let queue = Queue::start(|mut rx| async move {
            while let Some(text) = rx.recv().await {
                let body = serde_json::json!({ "text": text });
                let request = http
                    .post(webhook.expose_secret())
                    .header("content-type", "application/json")
                    .body(body.to_string());
                match request.send().await {
                    Ok(r) if r.status().is_success() => {}
                    // The URL is the secret: report the status only, never the request.
                    Ok(r) => {
                        tracing::warn!("Slack refused the message: HTTP {}", r.status().as_u16())
                    }
                    Err(e) => tracing::warn!(
                        "Slack message not sent: {}",
                        if e.is_timeout() {
                            "timeout"
                        } else {
                            "connection failed"
                        }
                    ),
                }
            }
        });
        Self {
            queue,
            heading: heading.into(),
            rollback,
        }
    }

    pub async fn finish(&self, limit: std::time::Duration) {
        self.queue.finish(limit).await;
    }
}

/// The statuses worth a message, with their emoji. In a rollback run, RolledBack is the
/// good news (the version named is live again); elsewhere it means the release failed.
fn announce(status: Status, rollback: bool) -> Option<&'static str> {
    match status {
        Status::RolledBack if rollback => Some(":white_check_mark: live again after a rollback"),
        Status::Pending => Some(":rocket: started"),
        Status::AwaitingApproval => Some(":hourglass: staged and held for approval"),
        Status::Promoted => Some(":white_check_mark: promoted"),
        Status::RollingBack => Some(":rewind: rolling back"),
        Status::RolledBack => Some(":leftwards_arrow_with_hook: failed and rolled back"),
        Status::RollbackFailed => Some(":rotating_light: ROLLBACK FAILED — page a human"),
        _ => None,
    }
}

impl Reporter for Slack {
    fn status(&self, event: &StatusEvent) {
        let Some(what) = announce(event.status, self.rollback) else {
            return;
        };
        let version = event
            .version
            .as_ref()
            .map(|v| format!(" {v}"))
            .unwrap_or_default();
        let text = format!("*{}*{version}: {what}. {}", self.heading, event.detail);
        self.queue.push(text);
    }

    fn notice(&self, _message: &str) {}
}
