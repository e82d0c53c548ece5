//! The deploy lock as a lease with fencing: taken with create-if-absent, re-read before
//! every write (a holder that finds another token stops), renewed while held, broken only
//! after expiry (or by an explicit `unlock`) with a notice naming the holder and its age.

use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Engine, EngineError};
use crate::ports::{Cloud, Lock, Millis, PortError};

/// After creating the lock, wait this long and re-read it before the first write: a run
/// that read the previous (stale) lock just before we replaced it may still delete ours,
/// and it can only do so within one call's latency.
const SETTLE: Duration = Duration::from_secs(2);
const ACQUIRE_ATTEMPTS: u32 = 4;

pub(crate) struct Lease {
    lock: Mutex<Lock>,
    ttl: Millis,
}

impl Lease {
    pub(crate) async fn acquire<C: Cloud>(eng: &Engine<'_, C>) -> Result<Lease, EngineError> {
        let ttl = eng.settings.deadlines.lock_ttl.0.as_millis() as Millis;
        for _ in 0..ACQUIRE_ATTEMPTS {
            let now = eng.cloud.now();
            let n = eng.acquisitions.fetch_add(1, Ordering::Relaxed);
            let mine = Lock {
                owner: eng.owner.clone(),
                token: format!("{}#{now}#{n}", eng.owner),
                acquired_at: now,
                expires_at: now + ttl,
            };
            match eng
                .read("take the deploy lock", || eng.cloud.create_lock(&mine))
                .await
            {
                Ok(()) => {}
                Err(EngineError::Port {
                    source: PortError::Conflict(_),
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
            match eng
                .read("read the deploy lock", || eng.cloud.read_lock())
                .await?
            {
                Some(held) if held.token == mine.token => {
                    let lease = Lease {
                        lock: Mutex::new(held),
                        ttl,
                    };
                    let settled = match eng.pause(SETTLE).await {
                        Ok(()) => lease.guard(eng).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = settled {
                        // Cancelled (or lost) before doing anything: leave no lock behind.
                        lease.release(eng).await;
                        return Err(e);
                    }
                    return Ok(lease);
                }
                Some(held) if held.expires_at <= now => break_stale(eng, &held).await?,
                Some(held) => {
                    return Err(EngineError::LockHeld {
                        age_secs: now.saturating_sub(held.acquired_at) / 1000,
                        expires_in_secs: held.expires_at.saturating_sub(now) / 1000,
                        holder: held.owner,
                    });
                }
                None => {}
            }
        }
        Err(EngineError::failed(
            "Pending",
            "could not take the deploy lock: it kept changing hands",
        ))
    }

    /// Fencing: called before every write. Stops if the lock is no longer ours; renews it
    /// when less than half the lease is left (nobody breaks an unexpired lock).
    pub(crate) async fn guard<C: Cloud>(&self, eng: &Engine<'_, C>) -> Result<(), EngineError> {
        let mine = self.lock.lock().expect("lease mutex").clone();
        let now = eng.cloud.now();
        let current = eng
            .read("read the deploy lock", || eng.cloud.read_lock())
            .await?;
        let held = match current {
            Some(held) if held.token == mine.token => held,
            Some(other) => {
                return Err(EngineError::LockLost {
                    detail: format!("it is now held by {}", other.owner),
                });
            }
            None => {
                return Err(EngineError::LockLost {
                    detail: "it was deleted".into(),
                });
            }
        };
        if held.expires_at <= now {
            return Err(EngineError::LockLost {
                detail: "our lease expired".into(),
            });
        }
        if held.expires_at - now < self.ttl / 2 {
            let renewed = Lock {
                expires_at: now + self.ttl,
                ..held
            };
            eng.read("renew the deploy lock", || eng.cloud.renew_lock(&renewed))
                .await?;
            *self.lock.lock().expect("lease mutex") = renewed;
        }
        Ok(())
    }

    /// Delete the lock if it is still ours. A failure here leaves a lock that expires.
    pub(crate) async fn release<C: Cloud>(self, eng: &Engine<'_, C>) {
        let mine = self.lock.into_inner().expect("lease mutex");
        // Releasing is cleanup: a cancel must not stop it.
        let eng = &eng.uncancellable();
        let still_ours = matches!(
            eng.read("read the deploy lock", || eng.cloud.read_lock()).await,
            Ok(Some(held)) if held.token == mine.token
        );
        if still_ours && let Err(e) = delete_lock(eng, "release the deploy lock").await {
            tracing::warn!(error = %e, "could not release the deploy lock; it expires on its own");
        }
    }
}

async fn break_stale<C: Cloud>(eng: &Engine<'_, C>, stale: &Lock) -> Result<(), EngineError> {
    // Re-read just before deleting: only the very lock we judged stale may go.
    let again = eng
        .read("read the deploy lock", || eng.cloud.read_lock())
        .await?;
    if again.as_ref().map(|l| &l.token) != Some(&stale.token) {
        return Ok(());
    }
    let now = eng.cloud.now();
    eng.reporter.notice(&format!(
        "breaking a stale deploy lock held by {} (taken {}s ago, expired {}s ago)",
        stale.owner,
        now.saturating_sub(stale.acquired_at) / 1000,
        now.saturating_sub(stale.expires_at) / 1000,
    ));
    delete_lock(eng, "break the stale deploy lock").await
}

pub(crate) async fn break_explicitly<C: Cloud>(
    eng: &Engine<'_, C>,
) -> Result<Option<Lock>, EngineError> {
    let Some(held) = eng
        .read("read the deploy lock", || eng.cloud.read_lock())
        .await?
    else {
        return Ok(None);
    };
    let now = eng.cloud.now();
    eng.reporter.notice(&format!(
        "unlock: breaking the deploy lock held by {} (taken {}s ago)",
        held.owner,
        now.saturating_sub(held.acquired_at) / 1000,
    ));
    delete_lock(eng, "delete the deploy lock").await?;
    Ok(Some(held))
}

/// Delete the lock; already gone counts as done (a retried delete whose first attempt
/// applied answers NotFound — the sim found that a stale-lock break failed this way).
async fn delete_lock<C: Cloud>(eng: &Engine<'_, C>, what: &str) -> Result<(), EngineError> {
    match eng.read(what, || eng.cloud.delete_lock()).await {
        Err(EngineError::Port {
            source: PortError::NotFound(_),
            ..
        }) => Ok(()),
        other => other,
    }
}
