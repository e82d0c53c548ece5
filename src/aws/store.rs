//! The engine's `Store` port over SSM: the release history and the deploy lock. While this
//! run holds the lock nobody else writes the history, so the history last read or written
//! is kept and a record need not read it again.

use super::cloud::AwsCloud;
use super::ecs::Tagged;
use crate::history::record_release;
use crate::ports::*;

impl AwsCloud {
    /// A history just read: what its entries name is what those task definitions hold, and
    /// while we hold the lock nobody else writes it.
    fn read_history(&self, history: Option<Vec<Release>>) -> Vec<Release> {
        let history = history.unwrap_or_default();
        for r in history.iter().filter(|r| !r.fingerprint.is_empty()) {
            self.ecs.remember(Tagged {
                arn: r.task_definition.clone(),
                version: r.version.clone(),
                digest: r.digest.clone(),
                fingerprint: r.fingerprint.clone(),
            });
        }
        self.held.lock().expect("held lock").keep(&history);
        history
    }

    /// A lock just read: if it is not the one we created, we no longer hold it.
    fn read_lock_state(&self, lock: &Option<Lock>) {
        let mut held = self.held.lock().expect("held lock");
        if lock.as_ref().map(|l| &l.token) != held.token.as_ref() {
            *held = Held::default();
        }
    }
}

/// The lock this run created and, while it holds it, the history as last read or written:
/// the engine writes the history only under the lock, so a record need not read it again.
#[derive(Default)]
pub(super) struct Held {
    token: Option<String>,
    history: Option<Vec<Release>>,
}

impl Held {
    fn keep(&mut self, history: &[Release]) {
        if self.token.is_some() {
            self.history = Some(history.to_vec());
        }
    }
}

impl Store for AwsCloud {
    async fn history(&self) -> PortResult<Vec<Release>> {
        let history = self.ssm.get(&self.history_parameter).await?;
        Ok(self.read_history(history))
    }

    /// One GetParameters call for both.
    async fn history_and_lock(&self) -> PortResult<(Vec<Release>, Option<Lock>)> {
        let names = [
            self.history_parameter.as_str(),
            self.lock_parameter.as_str(),
        ];
        let values = self.ssm.get_many(&names, self.batch()).await?;
        let history = values[0]
            .as_deref()
            .map(|v| super::ssm::parse(names[0], v))
            .transpose()?;
        let lock = values[1]
            .as_deref()
            .map(|v| super::ssm::parse(names[1], v))
            .transpose()?;
        self.read_lock_state(&lock);
        Ok((self.read_history(history), lock))
    }

    async fn record(&self, release: &Release, cap: usize) -> PortResult<()> {
        let known = self.held.lock().expect("held lock").history.take();
        let mut history = match known {
            Some(h) => h,
            None => self.history().await?,
        };
        record_release(&mut history, release, cap);
        // On an error the write may or may not have applied: the next record reads again.
        self.ssm
            .put(&self.history_parameter, &history, true)
            .await?;
        self.held.lock().expect("held lock").keep(&history);
        Ok(())
    }

    async fn create_lock(&self, lock: &Lock) -> PortResult<()> {
        self.ssm.put(&self.lock_parameter, lock, false).await?;
        *self.held.lock().expect("held lock") = Held {
            token: Some(lock.token.clone()),
            history: None,
        };
        Ok(())
    }

    async fn read_lock(&self) -> PortResult<Option<Lock>> {
        let name = self.lock_parameter.as_str();
        let lock = match self.batch() {
            // A train's members check their locks together (before each step's writes):
            // one GetParameters for all of them.
            Some(batch) => match self.ssm.get_many(&[name], Some(batch)).await?.remove(0) {
                Some(text) => Some(super::ssm::parse(name, &text)?),
                None => None,
            },
            None => self.ssm.get(name).await?,
        };
        self.read_lock_state(&lock);
        Ok(lock)
    }

    async fn renew_lock(&self, lock: &Lock) -> PortResult<()> {
        self.ssm.put(&self.lock_parameter, lock, true).await
    }

    async fn delete_lock(&self) -> PortResult<()> {
        *self.held.lock().expect("held lock") = Held::default();
        self.ssm.delete(&self.lock_parameter).await
    }
}
