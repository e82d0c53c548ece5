//! The simulated SSM: the release history and the deploy lock, through the same call
//! wrapper as every other simulated port (virtual time, faults, invariants).

use super::cloud::Kind;
use super::cloud::SimCloud;
use crate::ports::*;

impl Store for SimCloud {
    async fn history(&self) -> PortResult<Vec<Release>> {
        self.call("history", Kind::Read, |w, _, _| Ok(w.history.clone()))
            .await
    }

    async fn history_and_lock(&self) -> PortResult<(Vec<Release>, Option<Lock>)> {
        self.call("history_and_lock", Kind::Read, |w, _, _| {
            Ok((w.history.clone(), w.lock.clone()))
        })
        .await
    }

    async fn record(&self, release: &Release, cap: usize) -> PortResult<()> {
        let op = format!(
            "record({} {} {})",
            release.version, release.task_definition, release.status
        );
        self.write(&op, |w, now| {
            w.before_record(now, release, cap);
            w.record(release, cap);
            Ok(())
        })
        .await
    }

    async fn create_lock(&self, lock: &Lock) -> PortResult<()> {
        self.call(
            &format!("create_lock({})", lock.owner),
            Kind::LockWrite,
            |w, _, r| match &w.lock {
                Some(held) => Err(PortError::Conflict(format!(
                    "ParameterAlreadyExists (held by {})",
                    held.owner
                ))),
                None => {
                    w.lock = Some(lock.clone());
                    w.lock_tokens.entry(lock.token.clone()).or_insert(r);
                    Ok(())
                }
            },
        )
        .await
    }

    async fn read_lock(&self) -> PortResult<Option<Lock>> {
        self.call("read_lock", Kind::Read, |w, _, _| Ok(w.lock.clone()))
            .await
    }

    async fn renew_lock(&self, lock: &Lock) -> PortResult<()> {
        self.call("renew_lock", Kind::LockWrite, |w, now, r| {
            let name = w.runners[r].name.clone();
            if w.lock.as_ref().map(|l| &l.token) != Some(&lock.token)
                || w.lock_tokens.get(&lock.token) != Some(&r)
            {
                w.violation(now, format!("I5: {name} renewed a lock it does not hold"));
            }
            w.lock = Some(lock.clone());
            Ok(())
        })
        .await
    }

    async fn delete_lock(&self) -> PortResult<()> {
        self.call("delete_lock", Kind::LockWrite, |w, _, _| {
            match w.lock.take() {
                Some(_) => Ok(()),
                None => Err(PortError::NotFound("ParameterNotFound".into())),
            }
        })
        .await
    }
}
