//! The deploy lock as a lease with fencing: taken with create-if-absent, re-read before
//! every write (a holder that finds another token stops), renewed while held, broken only
//! after expiry (or by an explicit `unlock`) with a notice naming the holder and its age.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::calls::CALL_TIMEOUT;
use super::{Engine, EngineError};
use crate::ports::{Cloud, Lock, Millis, PortError};

/// After taking the lock from someone (a stale lock broken, or one that vanished under
/// us), wait this long and re-read it before the first write: a run that read the previous
/// lock just before we replaced it may still delete ours, within one call's latency or a
/// retry's. A lock taken on the first try was free, so nobody was about to delete it.
/// `unlock` waits as long after breaking a live lock, so that its holder has stopped
/// writing before the next run starts.
const SETTLE: Duration = Duration::from_secs(5);
/// After taking the lock from a run that may be dead (a stale lock broken, or one that
/// vanished), or after `unlock` broke a live one: a write its holder sent after its last
/// read of the lock can still land up to one call timeout later (a retried write is
/// re-fenced before every attempt, so only one attempt is in flight). Waiting out that
/// timeout plus the settle means no late write of the previous holder lands after our
/// first write (invariant 13).
const TAKEOVER: Duration = Duration::from_secs(CALL_TIMEOUT.as_secs() + SETTLE.as_secs());
/// A lock read that showed the lock as ours, with no write since, vouches for the next
/// write if it is this recent: every write still follows a read of the lock, but the read
/// can be one the command made anyway (the history and the lock come in one call). Well
/// under `SETTLE`, so a run that took the lock from us waits longer than this.
const FRESH: Duration = Duration::from_secs(2);
const ACQUIRE_ATTEMPTS: u32 = 4;
const DELETE_ATTEMPTS: u32 = 6;
const DELETE_BACKOFF: Duration = Duration::from_millis(250);

/// Set by the heartbeat when the lease is lost (taken, deleted, or not renewable before it
/// runs out); every wait of the engine ends on it with `LockLost`, a safe point.
#[derive(Debug)]
pub(crate) struct Lost(watch::Sender<Option<String>>);

impl Default for Lost {
    fn default() -> Self {
        Lost(watch::channel(None).0)
    }
}

impl Lost {
    fn mark(&self, detail: String) {
        self.0.send_replace(Some(detail));
    }

    fn reset(&self) {
        self.0.send_replace(None);
    }

    /// Resolves with why, once the lease is lost.
    pub(crate) async fn lost(&self) -> EngineError {
        let mut rx = self.0.subscribe();
        let detail = match rx.wait_for(Option::is_some).await {
            Ok(d) => d.clone().unwrap_or_default(),
            Err(_) => std::future::pending().await,
        };
        EngineError::LockLost { detail }
    }
}

pub(crate) struct Lease {
    lock: Mutex<Lock>,
    ttl: Millis,
    /// When a read last showed the lock as ours, if no write has used that read yet.
    confirmed: Mutex<Option<Instant>>,
}

impl Lease {
    fn new(lock: Lock, ttl: Millis) -> Self {
        Lease {
            lock: Mutex::new(lock),
            ttl,
            confirmed: Mutex::new(None),
        }
    }

    /// Take the lock. `wait_stale` (a recovery: `rollback`) waits for a lock that looks
    /// stale to expire, instead of refusing it; a live lock is refused either way.
    pub(crate) async fn acquire<C: Cloud>(
        eng: &Engine<'_, C>,
        wait_stale: bool,
    ) -> Result<Lease, EngineError> {
        let ttl = eng.settings.deadlines.lock_ttl.0.as_millis() as Millis;
        eng.lost.reset();
        let mut waited = false;
        for attempt in 0..ACQUIRE_ATTEMPTS {
            let now = eng.cloud.now();
            let mine = Lock {
                owner: eng.owner.clone(),
                token: eng.cloud.token().map_err(|source| EngineError::Port {
                    what: "make a lock token".into(),
                    source,
                })?,
                acquired_at: now,
                expires_at: now + ttl,
            };
            let created = match eng
                .read("take the deploy lock", || eng.cloud.create_lock(&mine))
                .await
            {
                Ok(()) => true,
                Err(EngineError::Port {
                    source: PortError::Conflict(_),
                    ..
                }) => false,
                Err(e) => return Err(e),
            };
            let held = if created {
                // Created with overwrite=false: it is ours, no need to read it.
                Some(mine.clone())
            } else {
                eng.read("read the deploy lock", || eng.cloud.read_lock())
                    .await?
            };
            match held {
                Some(held) if held.token == mine.token => {
                    let lease = Lease::new(held, ttl);
                    if attempt == 0 {
                        // Taken on the first try (our own create, even if its answer was
                        // lost): the lock was free, nobody is about to delete it.
                        return Ok(lease);
                    }
                    let settled = match eng.pause(TAKEOVER).await {
                        Ok(()) => lease.check(eng).await,
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
                Some(held) if wait_stale && !waited && looks_stale(&held, now, ttl) => {
                    waited = true;
                    let left = held.expires_at.saturating_sub(now);
                    eng.reporter.notice(&format!(
                        "the deploy lock is held by {}, not renewed for {}s (a live run renews it every {}s): it expires in {}s: waiting for that, then taking it over",
                        held.owner,
                        (now + ttl).saturating_sub(held.expires_at) / 1000,
                        ttl / 3000,
                        left.div_ceil(1000),
                    ));
                    eng.pause(Duration::from_millis(left + STALE_SLACK_MS))
                        .await?;
                }
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
    /// when less than half the lease is left (nobody breaks an unexpired lock). A fresh
    /// read of the lock made since the last write (see [`FRESH`]) stands in for reading it
    /// again.
    pub(crate) async fn guard<C: Cloud>(&self, eng: &Engine<'_, C>) -> Result<(), EngineError> {
        let confirmed = self.confirmed.lock().expect("lease mutex").take();
        let mine = self.lock.lock().expect("lease mutex").clone();
        let now = eng.cloud.now();
        let recent = confirmed.is_some_and(|at| at.elapsed() < FRESH);
        if recent && mine.expires_at.saturating_sub(now) >= self.ttl / 2 {
            return Ok(());
        }
        self.check(eng).await
    }

    /// A read of the lock made along with other reads (the history comes with it), started
    /// at `read_at`: stop if it is no longer ours, else let the next write rely on it while
    /// it is fresh.
    pub(crate) fn note<C: Cloud>(
        &self,
        eng: &Engine<'_, C>,
        current: Option<&Lock>,
        read_at: Instant,
    ) -> Result<(), EngineError> {
        let mine = self.lock.lock().expect("lease mutex").clone();
        verify(&mine, current, eng.cloud.now())?;
        *self.confirmed.lock().expect("lease mutex") = Some(read_at);
        Ok(())
    }

    /// Run `work` (a command holding this lease) while a heartbeat renews the lease every
    /// TTL/3, so no wait outlives it. A heartbeat that finds the lock lost, or cannot renew
    /// it while a third of the lease is left, marks it lost: the engine's waits end there
    /// with `LockLost` and its writes are fenced anyway. Both run in this task (no spawn),
    /// so the sim's paused clock orders them deterministically.
    pub(crate) async fn hold<C: Cloud, T>(
        &self,
        eng: &Engine<'_, C>,
        work: impl Future<Output = Result<T, EngineError>>,
    ) -> Result<T, EngineError> {
        let beat = self.heartbeat(eng);
        tokio::pin!(work, beat);
        tokio::select! {
            biased;
            r = &mut work => r,
            never = &mut beat => match never {},
        }
    }

    async fn heartbeat<C: Cloud>(&self, eng: &Engine<'_, C>) -> Infallible {
        // A cancelled run still rolls back under this lease: keep it alive meanwhile.
        let eng = &eng.uncancellable();
        let every = Duration::from_millis(self.ttl / 3);
        let mut pause = beat_pause(self.ttl, eng.cloud.random());
        loop {
            tokio::time::sleep(pause).await;
            pause = beat_pause(self.ttl, eng.cloud.random());
            let renewed = match tokio::time::timeout(every, self.renew(eng)).await {
                Ok(r) => r,
                Err(_) => Err(EngineError::failed(
                    "Pending",
                    format!("renewing the deploy lock took over {}s", every.as_secs()),
                )),
            };
            let detail = match renewed {
                Ok(()) => continue,
                Err(EngineError::LockLost { detail }) => detail,
                Err(e) => {
                    let mine = self.lock.lock().expect("lease mutex").clone();
                    let left = mine.expires_at.saturating_sub(eng.cloud.now());
                    if left > self.ttl / 3 {
                        // Try again no later than when a third of the lease is left, so a
                        // run that cannot renew stops with that third still its own (a
                        // jittered beat alone could let the lease run out first).
                        pause = pause.min(Duration::from_millis(left - self.ttl / 3));
                        tracing::warn!(error = %e, "could not renew the deploy lock; retrying");
                        continue;
                    }
                    format!(
                        "could not renew it with {}s of the lease left: {e}",
                        left / 1000
                    )
                }
            };
            eng.lost.mark(detail);
            return std::future::pending().await;
        }
    }

    /// The heartbeat's renewal: read the lock, stop if it is not ours, extend it.
    async fn renew<C: Cloud>(&self, eng: &Engine<'_, C>) -> Result<(), EngineError> {
        self.check_and_renew(eng, true).await
    }

    /// Read the lock: stop if it is no longer ours; renew it when half the lease is gone.
    async fn check<C: Cloud>(&self, eng: &Engine<'_, C>) -> Result<(), EngineError> {
        self.check_and_renew(eng, false).await
    }

    async fn check_and_renew<C: Cloud>(
        &self,
        eng: &Engine<'_, C>,
        always: bool,
    ) -> Result<(), EngineError> {
        let mine = self.lock.lock().expect("lease mutex").clone();
        let now = eng.cloud.now();
        let current = eng
            .read("read the deploy lock", || eng.cloud.read_lock())
            .await?;
        let held = verify(&mine, current.as_ref(), now)?.clone();
        if always || held.expires_at - now < self.ttl / 2 {
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
        if let Err(e) = delete_if(eng, "release the deploy lock", &mine.token).await {
            tracing::warn!(error = %e, "could not release the deploy lock; it expires on its own");
        }
    }
}

/// The pause before the next renewal: drawn between TTL/4 and TTL/3 from the clock's random
/// source. Never longer than TTL/3, so a live holder's lock never looks stale; jittered, so
/// runs started together (a release train's services, a matrix of jobs) do not renew their
/// locks in lockstep, hitting SSM at the same instant every beat.
fn beat_pause(ttl: Millis, random: u64) -> Duration {
    let (low, high) = (ttl / 4, ttl / 3);
    Duration::from_millis(low + random % (high - low + 1))
}

/// Past a lock's expiry before a recovery breaks it: clocks of two runners differ a little.
const STALE_SLACK_MS: Millis = 2_000;

/// A lock whose holder missed its heartbeats: a live holder renews every TTL/3, so more
/// than half the lease gone means two renewals failed (a dead run, or one cut off from AWS
/// that stops at its next safe point). Judged with our TTL; a lock with more than our whole
/// TTL left (a holder with a longer lease) never looks stale, so the wait is bounded by it.
fn looks_stale(held: &Lock, now: Millis, ttl: Millis) -> bool {
    let left = held.expires_at.saturating_sub(now);
    left <= ttl / 2
}

/// `current` is our lock, unexpired.
fn verify<'l>(
    mine: &Lock,
    current: Option<&'l Lock>,
    now: Millis,
) -> Result<&'l Lock, EngineError> {
    match current {
        Some(held) if held.token == mine.token && held.expires_at > now => Ok(held),
        Some(held) if held.token == mine.token => Err(EngineError::LockLost {
            detail: "our lease expired".into(),
        }),
        Some(other) => Err(EngineError::LockLost {
            detail: format!("it is now held by {}", other.owner),
        }),
        None => Err(EngineError::LockLost {
            detail: "it was deleted".into(),
        }),
    }
}

async fn break_stale<C: Cloud>(eng: &Engine<'_, C>, stale: &Lock) -> Result<(), EngineError> {
    let now = eng.cloud.now();
    eng.reporter.notice(&format!(
        "breaking a stale deploy lock held by {} (taken {}s ago, expired {}s ago)",
        stale.owner,
        now.saturating_sub(stale.acquired_at) / 1000,
        now.saturating_sub(stale.expires_at) / 1000,
    ));
    delete_if(eng, "break the stale deploy lock", &stale.token).await
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
    delete_if(eng, "delete the deploy lock", &held.token).await?;
    if held.expires_at > now {
        // Its holder may be alive and about to write on a lock read just before the delete;
        // it stops at its next read. Return only once that has happened, so the run the
        // operator starts next cannot write alongside it.
        eng.reporter.notice(&format!(
            "unlock: waiting {}s for the run that held it to stop writing",
            TAKEOVER.as_secs()
        ));
        eng.uncancellable().pause(TAKEOVER).await?;
    }
    Ok(Some(held))
}

/// Delete the lock while it still holds `token`. The lock is re-read before every attempt:
/// a retried delete whose first attempt applied unseen would otherwise remove the lock the
/// next run has just created (and a run that takes a free lock does not wait). Already
/// gone counts as done (the sim found a stale-lock break failing on a retried delete's
/// NotFound).
async fn delete_if<C: Cloud>(
    eng: &Engine<'_, C>,
    what: &str,
    token: &str,
) -> Result<(), EngineError> {
    let mut backoff = DELETE_BACKOFF;
    let mut last = None;
    for _ in 0..DELETE_ATTEMPTS {
        let current = eng
            .read("read the deploy lock", || eng.cloud.read_lock())
            .await?;
        if current.as_ref().map(|l| l.token.as_str()) != Some(token) {
            return Ok(());
        }
        let attempt = match tokio::time::timeout(CALL_TIMEOUT, eng.cloud.delete_lock()).await {
            Ok(r) => r,
            Err(_) => Err(PortError::Ambiguous("no answer".into())),
        };
        match attempt {
            Ok(()) | Err(PortError::NotFound(_)) => return Ok(()),
            Err(e) if e.is_retryable() => last = Some(e),
            Err(e) => {
                return Err(EngineError::Port {
                    what: what.to_string(),
                    source: e,
                });
            }
        }
        eng.pause(backoff).await?;
        backoff *= 2;
    }
    Err(EngineError::Port {
        what: what.to_string(),
        source: last.unwrap_or_else(|| PortError::Transient("gave up".into())),
    })
}
