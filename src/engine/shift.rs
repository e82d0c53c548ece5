//! Moving production traffic: every weight write is read back before anything else
//! happens (invariant 3), and a release's history entry follows each status change.

use std::time::Duration;

use super::{Engine, EngineError, Lease};
use crate::ports::{Cloud, Release, Slot, Status, Weights};

/// Reads may lag a write for a moment (eventual consistency); re-read this often before
/// writing again, and give up on the weights after the deadline.
const READBACKS: u32 = 4;
const READBACK_PAUSE: Duration = Duration::from_millis(500);
const WEIGHTS_DEADLINE: Duration = Duration::from_secs(120);

impl<C: Cloud> Engine<'_, C> {
    /// Set the production weights and read them back until they are exactly `target`.
    pub(crate) async fn set_weights(
        &self,
        lease: &Lease,
        target: Weights,
    ) -> Result<(), EngineError> {
        let end = tokio::time::Instant::now() + WEIGHTS_DEADLINE;
        let mut seen = None;
        loop {
            // One attempt only: whatever it answered, the read-back below tells what applied.
            match self
                .write_once(lease, "set production weights", || {
                    self.cloud.set_production_weights(target)
                })
                .await
            {
                Ok(()) | Err(EngineError::Port { .. }) => {}
                Err(e) => return Err(e),
            }
            for _ in 0..READBACKS {
                let now = self
                    .read("read back production weights", || {
                        self.cloud.production_weights()
                    })
                    .await?;
                if now == target {
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
        self.report(Status::RollingBack, None, Some(slot), reason.to_string());
        // Moving traffic back is never cut short by a cancel: that is what a cancel asks for.
        let eng = self.uncancellable();
        let target = Weights::all_on(slot);
        match eng.set_weights(lease, target).await {
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

    async fn weights_are(&self, target: Weights) -> bool {
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
            ..release.clone()
        };
        let cap = self.settings.history.depth.max(1) as usize;
        self.write(lease, "record the release history", || {
            self.cloud.record(&entry, cap)
        })
        .await
    }
}
