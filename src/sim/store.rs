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
        self.call(&op, Kind::Write, |w, now, r| {
            w.before_write(now, r, &op);
            if w.deferring {
                let release = Box::new(release.clone());
                w.defer(now, r, super::world::LateWrite::Record { release, cap });
                return Ok(());
            }
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
                    w.runners[r].token = Some(lock.token.clone());
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
            let current = w.lock.as_ref().map(|l| &l.token) == Some(&lock.token);
            // SSM has no conditional put: a renewal sent on a read of our lock can land just
            // after another runner replaced it, and puts ours back (that runner then finds
            // the lock gone at its re-read before its first write). Only a renewal sent
            // well after losing the lock, or by a runner that never held it, is a violation.
            if w.lock_tokens.get(&lock.token) != Some(&r) || (!current && !w.may_land(now, r)) {
                w.violation(now, format!("I5: {name} renewed a lock it does not hold"));
            }
            let before = w.lock.replace(lock.clone());
            w.lock_replaced(now, before.as_ref());
            w.lock_lost_at.remove(&lock.token);
            Ok(())
        })
        .await
    }

    async fn delete_lock(&self) -> PortResult<()> {
        self.call("delete_lock", Kind::LockWrite, |w, now, _| {
            match w.lock.take() {
                Some(old) => {
                    w.lock_replaced(now, Some(&old));
                    Ok(())
                }
                None => Err(PortError::NotFound("ParameterNotFound".into())),
            }
        })
        .await
    }
}
