//! The blue/green lifecycle of DESIGN.md, written once against the ports in [`crate::ports`].
//! Every command reads the real state first and continues or repairs from there (no local
//! state file), so a re-run after a crash converges.

mod alarms;
mod calls;
mod cleanup;
mod error;
mod lease;
mod lockstep;
mod observe;
mod plan;
mod plans;
mod promote;
mod ready;
mod rehearse;
mod rollback;
mod scale_down;
mod shift;
mod stage;
mod train;
mod validate;
mod versions;
mod wiring;
mod worker;

use crate::config::settings::ServiceSettings;
use crate::ports::{Cloud, Reporter, Slot, Status, StatusEvent};
use crate::version::Version;

pub use alarms::{Gate, alarms_for, not_a_gate};
pub use calls::{Cancel, CancelHandle, Polling};
pub use cleanup::{CleanupPlan, Decision};
pub use error::EngineError;
pub use observe::Observed;
pub use plan::{Plan, Reach, Step, TaskDefinitionAction, longest, plan, steps};
pub use plans::{PromotePlan, RollbackPlan};
pub use promote::PromoteOutcome;
pub use rollback::{RollbackOutcome, RollbackPath, rollback_target};
pub use stage::{StageOutcome, StageRequest};
pub use train::{Member, MemberOutcome, Train, TrainOutcome};
pub use versions::{Finding, Need, Rule, Shows, Verdict, check as check_versions, judge, short};

use lease::Lease;

/// The engine for one environment/service: the cloud behind its ports, where status goes,
/// the service's settings and who is running it (recorded in the lock and the history).
pub struct Engine<'a, C: Cloud> {
    cloud: &'a C,
    reporter: &'a (dyn Reporter + Sync),
    settings: &'a ServiceSettings,
    owner: String,
    cancel: Cancel,
    polling: Polling,
    /// Marked by the lease's heartbeat when the lock is lost; shared with `uncancellable`.
    lost: std::sync::Arc<lease::Lost>,
    /// Statuses reported and not yet written to history: the next record of their release
    /// keeps them (issue 18.4), with no extra AWS call. Shared with `uncancellable`.
    timeline: std::sync::Arc<std::sync::Mutex<Vec<(Version, crate::model::Transition)>>>,
    /// A promote's shift began with the slot it leaves alarming: not a rehearsal target.
    left_alarming: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The digest `[versions]` judged before the lock was taken: the promote refuses a
    /// staged release with any other (staged again in between).
    pinned: Option<crate::ports::Digest>,
    /// The services this engine moves as one train with (sorted, itself included); empty
    /// alone. Staged releases record it; a promote refuses a release staged by another.
    train: Vec<String>,
    /// The id of the train run (see `Train::new`); staged releases record it.
    train_id: String,
}

impl<'a, C: Cloud> Engine<'a, C> {
    /// `owner` names this run in the lock and history: a run URL or `user@host`.
    pub fn new(
        cloud: &'a C,
        reporter: &'a (dyn Reporter + Sync),
        settings: &'a ServiceSettings,
        owner: impl Into<String>,
    ) -> Self {
        Self {
            cloud,
            reporter,
            settings,
            owner: owner.into(),
            cancel: Cancel::never(),
            polling: Polling::Adaptive,
            lost: Default::default(),
            timeline: Default::default(),
            left_alarming: Default::default(),
            pinned: None,
            train: Vec::new(),
            train_id: String::new(),
        }
    }

    /// Promote only a staged release with this digest (the one `[versions]` judged).
    pub fn with_pinned_digest(mut self, digest: Option<crate::ports::Digest>) -> Self {
        self.pinned = digest;
        self
    }

    /// This engine is a member of the train of `services`, run `id` (see `Train::new`).
    pub(crate) fn with_train(mut self, services: Vec<String>, id: String) -> Self {
        self.train = services;
        self.train_id = id;
        self
    }

    /// Stop at the next safe point when `cancel` fires (SIGINT, a cancelled workflow).
    pub fn with_cancel(mut self, cancel: Cancel) -> Self {
        self.cancel = cancel;
        self
    }

    /// The live state as the ports report it, without taking the lock.
    pub async fn observe(&self) -> Result<Observed, EngineError> {
        observe::observe(self).await
    }

    /// Break the lock whoever holds it (`cutover unlock`). Returns the lock that was broken.
    pub async fn unlock(&self) -> Result<Option<crate::ports::Lock>, EngineError> {
        lease::break_explicitly(self).await
    }

    /// How waits poll (adaptive unless a benchmark asks otherwise).
    pub fn with_polling(mut self, polling: Polling) -> Self {
        self.polling = polling;
        self
    }

    /// The same engine with cancellation ignored, for steps that must finish once begun.
    fn uncancellable(&self) -> Engine<'a, C> {
        Engine {
            cancel: Cancel::never(),
            polling: self.polling,
            lost: self.lost.clone(),
            timeline: self.timeline.clone(),
            left_alarming: self.left_alarming.clone(),
            pinned: self.pinned.clone(),
            train: self.train.clone(),
            train_id: self.train_id.clone(),
            ..Engine::new(self.cloud, self.reporter, self.settings, self.owner.clone())
        }
    }

    fn report(
        &self,
        status: Status,
        version: Option<&Version>,
        slot: Option<Slot>,
        detail: String,
    ) {
        // The console reporter prints the human line; this one is for -vv debugging.
        tracing::debug!(%status, ?slot, %detail, "status");
        if let Some(v) = version {
            let at = self.cloud.now();
            let t = crate::model::Transition { status, at };
            self.timeline
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((v.clone(), t));
        }
        self.reporter.status(&StatusEvent {
            status,
            version: version.cloned(),
            slot,
            detail,
        });
    }

    /// The statuses reported about `version` since its last history record.
    fn take_timeline(&self, version: &Version) -> Vec<crate::model::Transition> {
        let mut pending = self
            .timeline
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(&mut *pending)
            .into_iter()
            .partition(|(v, _)| v == version);
        *pending = others;
        mine.into_iter().map(|(_, t)| t).collect()
    }

    async fn lock(&self) -> Result<Lease, EngineError> {
        Lease::acquire(self, false).await
    }

    /// The lock for a recovery: waits out a lock that looks stale rather than refusing it.
    async fn lock_to_recover(&self) -> Result<Lease, EngineError> {
        Lease::acquire(self, true).await
    }
}
