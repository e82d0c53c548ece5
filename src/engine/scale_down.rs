//! The end of a run that left a release failed or rolled back: its tasks scaled to 0 on
//! its slot (`[cleanup] scale_down_failed`), so a broken release does not keep running at
//! full capacity until the next stage. Best effort: the run's outcome is already decided.

use super::{Engine, EngineError, Lease};
use crate::ports::{Cloud, Release};

impl<C: Cloud> Engine<'_, C> {
    /// Scale `release`'s slot to 0 when it is safe: the slot carries no production traffic
    /// (read back now, so never the live slot nor a shift in progress) and still runs this
    /// very release (never a warm previous release a rollback needs). A cancelled run skips
    /// it: it must stop inside the runner's grace period, and the next stage replaces it.
    pub(crate) async fn scale_down_failed(&self, lease: &Lease, release: &Release) {
        if !self.settings.cleanup.scale_down_failed || self.check_cancel().is_err() {
            return;
        }
        match self.uncancellable().try_scale_down(lease, release).await {
            Ok(Some(done)) => self.reporter.notice(&done),
            Ok(None) => {}
            Err(e) => tracing::warn!(
                slot = %release.slot,
                error = %e,
                "could not scale the failed release down; the next stage replaces it"
            ),
        }
    }

    async fn try_scale_down(
        &self,
        lease: &Lease,
        release: &Release,
    ) -> Result<Option<String>, EngineError> {
        let slot = release.slot;
        let weights = self
            .read("read back production weights", || {
                self.cloud.production_weights()
            })
            .await?;
        if weights.of(slot) != 0 {
            tracing::info!(%slot, %weights, "not scaled down: the slot carries traffic");
            return Ok(None);
        }
        let state = self
            .read("read the failed release's slot", || {
                self.cloud.read_slot(slot)
            })
            .await?;
        let runs_it = state
            .task_definition
            .as_ref()
            .is_some_and(|td| td.id == release.task_definition);
        if !runs_it || state.desired == 0 {
            tracing::info!(%slot, "not scaled down: the slot runs another release or nothing");
            return Ok(None);
        }
        self.write(lease, "scale the failed release to 0", || {
            self.cloud.update_slot(slot, &release.task_definition, 0)
        })
        .await?;
        Ok(Some(format!(
            "{} on {slot} scaled to 0 tasks (was {}); to keep a failed release running for \
             debugging, set [cleanup] scale_down_failed = false",
            release.version, state.desired
        )))
    }
}
