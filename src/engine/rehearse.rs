//! The rollback rehearsal (issue 18.1): after a bake, production goes back to the previous
//! release on its warm slot and forward again, each direction read back and probed, so a
//! rollback is known to work before it is needed. Only onto a warm slot (at capacity, every
//! target healthy) whose alarms are quiet: otherwise it is skipped with a notice, never
//! brought up or moved onto an alarming slot for a rehearsal.

use super::Engine;
use super::alarms::Gate;
use super::error::EngineError;
use super::lease::Lease;
use super::observe::Observed;
use crate::ports::{Cloud, Rehearsal, RehearsalEvent, Release, Slot, Status, Weights};

impl<C: Cloud> Engine<'_, C> {
    /// Rehearse a rollback from `release`, just promoted on `new`. Ok(None) when off or
    /// skipped (the notice says why). On failure production is on the release whose checks
    /// passed last (`release` when going back failed, the previous one when coming forward
    /// failed) and the error says what failed.
    pub(crate) async fn rehearse(
        &self,
        lease: &Lease,
        observed: &Observed,
        release: &Release,
        new: Slot,
    ) -> Result<Option<Rehearsal>, EngineError> {
        if self.settings.validation.rehearse_rollback != Some(true) {
            return Ok(None);
        }
        let old = new.other();
        let Some(prev) = observed
            .release_on(old)
            .filter(|r| r.was_promoted())
            .cloned()
        else {
            self.reporter.notice(&format!(
                "rollback rehearsal skipped: {old} runs no earlier good release"
            ));
            return Ok(None);
        };
        if !self.is_warm(observed, old, &prev).await? {
            self.reporter.notice(&format!(
                "rollback rehearsal skipped: {old} does not run {} warm (at capacity, every target healthy)",
                prev.version
            ));
            return Ok(None);
        }
        // The release just left may be the incident a hotfix shipped away from: production
        // never goes back onto an alarming slot for a rehearsal, and the hotfix is not
        // failed for it (invariant 11).
        if self
            .left_alarming
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            self.reporter.notice(&format!(
                "rollback rehearsal skipped: {old} ({}) had an alarm in ALARM when traffic left it",
                prev.version
            ));
            return Ok(None);
        }
        if let Err(why) = self.watch_alarms(Gate::Recover(old)).await? {
            self.reporter.notice(&format!(
                "rollback rehearsal skipped: {old} ({}) has an {why}",
                prev.version
            ));
            return Ok(None);
        }
        let started = self.cloud.now();
        self.reporter.notice(&format!(
            "rollback rehearsal: production back to {} on {old}",
            prev.version
        ));
        if let Err(e) = self
            .rehearse_on(lease, old, &prev, Gate::Recover(old))
            .await
        {
            let why = format!("rollback rehearsal to {} failed: {e}", prev.version);
            self.flip_back(lease, new, &why).await?;
            return Err(EngineError::failed(
                Status::Promoted,
                format!("{why}; production is back on {}", release.version),
            ));
        }
        let back = self.cloud.now();
        self.reporter.notice(&format!(
            "rollback rehearsal: {} answered on {old} after {}s; forward to {} on {new}",
            prev.version,
            (back - started) / 1000,
            release.version
        ));
        let forward = async {
            let now = self.observe_locked(lease).await?;
            if !self.is_warm(&now, new, release).await? {
                return Err(EngineError::failed(
                    Status::Promoted,
                    format!("{new} is no longer at capacity with every target healthy"),
                ));
            }
            self.rehearse_on(lease, new, release, Gate::Traffic(new))
                .await
        };
        if let Err(e) = forward.await {
            // The previous release just answered its probes: it is the safer one now.
            let why = format!(
                "rollback rehearsal: coming forward to {} failed: {e}",
                release.version
            );
            self.record(lease, release, Status::RollingBack).await?;
            self.flip_back(lease, old, &why).await?;
            self.record(lease, release, Status::RolledBack).await?;
            self.report(
                Status::RolledBack,
                Some(&release.version),
                Some(old),
                format!("{why}; production is on {}", prev.version),
            );
            return Err(EngineError::failed(Status::Promoted, why));
        }
        let done = self.cloud.now();
        let rehearsal = Rehearsal {
            to: prev.version.clone(),
            back_ms: back - started,
            forward_ms: done - back,
            at: done,
        };
        let entry = Release {
            rehearsal: Some(rehearsal.clone()),
            ..release.clone()
        };
        self.record(lease, &entry, Status::Promoted).await?;
        self.reporter.notice(&format!(
            "rollback rehearsal passed: back to {} in {}s, forward to {} in {}s",
            prev.version,
            rehearsal.back_ms / 1000,
            release.version,
            rehearsal.forward_ms / 1000
        ));
        self.reporter.rehearsed(&RehearsalEvent {
            version: release.version.clone(),
            slot: new,
            rehearsal: rehearsal.clone(),
        });
        Ok(Some(rehearsal))
    }

    /// All production onto `slot` (read back), the test listener onto it, then `release`
    /// validated there.
    async fn rehearse_on(
        &self,
        lease: &Lease,
        slot: Slot,
        release: &Release,
        gate: Gate,
    ) -> Result<(), EngineError> {
        self.set_weights(lease, Weights::all_on(slot), None).await?;
        self.aim_test_listener(
            lease,
            slot,
            "point the test listener at the rehearsal's slot",
        )
        .await?;
        self.validate(gate, &release.version).await.map(|_| ())
    }
}
