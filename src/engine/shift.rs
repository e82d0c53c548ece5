//! Moving production traffic: every weight write is read back before anything else
//! happens (invariant 3), and a release's history entry follows each status change.

use std::time::Duration;

use super::alarms::AlarmWatch;
use super::{Engine, EngineError, Lease};
use crate::ports::{Cloud, Release, Slot, Status, Weights};

/// ELBv2 reads are eventually consistent: a read soon after a write may still show the
/// weights from before it, which can equal the target of a rollback. After a write that
/// failed or whose answer was lost, only a read this long after it counts as a read-back
/// (the sim found the bug: a stale read "confirmed" a rollback whose write had been
/// throttled). After a write the ELB confirmed, a stale read shows the weights from before
/// it, which differ from the target, so the read-back starts at once.
pub(crate) const CONSISTENCY: Duration = Duration::from_secs(5);
/// Re-read this often before writing again, and give up on the weights after the deadline.
const READBACKS: u32 = 3;
const READBACK_PAUSE: Duration = Duration::from_secs(1);
const WEIGHTS_DEADLINE: Duration = Duration::from_secs(120);

impl<C: Cloud> Engine<'_, C> {
    /// Set the production weights and read them back until they are exactly `target`.
    /// With `watch` (the alarms of the slot taking traffic), alarms are read while an
    /// unconfirmed write settles: traffic moving to a bad release is exactly when they fire,
    /// and waiting out the settle time first would add it to the reaction time. A move back
    /// passes None: it never waits on the alarms of the slot it leaves (invariant 11).
    pub(crate) async fn set_weights(
        &self,
        lease: &Lease,
        target: Weights,
        watch: Option<&AlarmWatch>,
    ) -> Result<(), EngineError> {
        let end = tokio::time::Instant::now() + WEIGHTS_DEADLINE;
        let mut seen = None;
        loop {
            // One attempt only: whatever it answered, the read-back below tells what applied.
            let confirmed = match self
                .write_once(lease, "set production weights", || {
                    self.cloud.set_production_weights(target)
                })
                .await
            {
                Ok(()) => true,
                Err(EngineError::Port { .. }) => false,
                Err(e) => return Err(e),
            };
            let settled = if confirmed {
                Ok(Ok(()))
            } else {
                self.settle(watch).await
            };
            if !matches!(settled, Ok(Ok(()))) {
                // Whatever stopped the wait (an alarm, a cancel), read back before anything
                // else happens (invariant 3; the abort matrix caught a cancel skipping it).
                self.uncancellable()
                    .read("read back production weights", || {
                        self.cloud.production_weights()
                    })
                    .await?;
                let status = Status::Shifting(target.blue.max(target.green));
                return Err(match settled {
                    Ok(Err(reason)) => EngineError::failed(status, reason),
                    Err(e) => e,
                    Ok(Ok(())) => unreachable!("checked above"),
                });
            }
            for _ in 0..READBACKS {
                let now = self
                    .read("read back production weights", || {
                        self.cloud.production_weights()
                    })
                    .await?;
                if now == target {
                    tracing::info!(weights = %target, "production weights read back");
                    return Ok(());
                }
                seen = Some(now);
                self.pause(READBACK_PAUSE).await?;
            }
            if tokio::time::Instant::now() >= end {
                return Err(EngineError::failed(
                    Status::Shifting(target.blue.max(target.green)),
                    format!(
                        "weights read back as {} instead of {target} for {}s",
                        seen.map_or("nothing".into(), |w| w.to_string()),
                        WEIGHTS_DEADLINE.as_secs()
                    ),
                ));
            }
        }
    }

    /// Move all traffic back to `slot` after a failure; RollbackFailed if that cannot be
    /// done and read back.
    pub(crate) async fn flip_back(
        &self,
        lease: &Lease,
        slot: Slot,
        reason: &str,
    ) -> Result<(), EngineError> {
        self.report(
            Status::RollingBack,
            None,
            Some(slot),
            format!("production back to {slot}: {reason}"),
        );
        // Moving traffic back is never cut short by a cancel: that is what a cancel asks for.
        let eng = self.uncancellable();
        let target = Weights::all_on(slot);
        match eng.set_weights(lease, target, None).await {
            Ok(()) => Ok(()),
            Err(e @ EngineError::LockLost { .. }) => Err(e),
            // The write failed, but traffic may never have left: then there is nothing to undo.
            Err(e) if eng.weights_are(target).await => {
                tracing::warn!(error = %e, "could not write weights, but they already read {target}");
                Ok(())
            }
            Err(e) => {
                let reason = format!("{reason}; then moving traffic back to {slot} failed: {e}");
                self.report(Status::RollbackFailed, None, Some(slot), reason.clone());
                Err(EngineError::RollbackFailed { reason })
            }
        }
    }

    /// Wait out the consistency window, reading `watch`'s alarms meanwhile.
    async fn settle(&self, watch: Option<&AlarmWatch>) -> Result<Result<(), String>, EngineError> {
        let end = tokio::time::Instant::now() + CONSISTENCY;
        loop {
            if let Some(alarms) = watch
                && let Err(reason) = self.alarms_clear(alarms).await?
            {
                return Ok(Err(reason));
            }
            let now = tokio::time::Instant::now();
            if now >= end {
                return Ok(Ok(()));
            }
            let every = if watch.is_some() {
                self.watch_every()
            } else {
                CONSISTENCY
            };
            self.pause(every.min(end - now)).await?;
        }
    }

    async fn weights_are(&self, target: Weights) -> bool {
        if self.pause(CONSISTENCY).await.is_err() {
            return false;
        }
        let read = self.read("read back production weights", || {
            self.cloud.production_weights()
        });
        matches!(read.await, Ok(w) if w == target)
    }

    /// Upsert a release's history entry with `status`.
    pub(crate) async fn record(
        &self,
        lease: &Lease,
        release: &Release,
        status: Status,
    ) -> Result<(), EngineError> {
        let entry = Release {
            status,
            at: self.cloud.now(),
            transitions: self.take_timeline(&release.version),
            ..release.clone()
        };
        let cap = self.settings.history.depth.max(1) as usize;
        self.write(lease, "record the release history", || {
            self.cloud.record(&entry, cap)
        })
        .await
    }
}
