//! Reading the real state through the ports: where every command starts.

use serde::Serialize;

use super::{Engine, EngineError, Lease};
use crate::ports::{Cloud, Lock, Release, Slot, SlotState, Status, Weights};

/// Weights, both slots, the test listener, the history and the lock, as read just now.
#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    pub weights: Weights,
    pub blue: SlotState,
    pub green: SlotState,
    pub test_listener: Option<Slot>,
    pub history: Vec<Release>,
    /// Read with the history; a locked command checks it is still ours.
    #[serde(skip)]
    pub lock: Option<Lock>,
}

impl Observed {
    pub fn slot(&self, slot: Slot) -> &SlotState {
        match slot {
            Slot::Blue => &self.blue,
            Slot::Green => &self.green,
        }
    }

    /// The last good release: the newest one recorded Promoted (good only after its bake).
    pub fn last_good(&self) -> Option<&Release> {
        self.history
            .iter()
            .rev()
            .find(|r| r.status == Status::Promoted)
    }

    /// The history entry for what `slot` runs now, if any.
    pub fn release_on(&self, slot: Slot) -> Option<&Release> {
        let td = self.slot(slot).task_definition.as_ref()?;
        self.history
            .iter()
            .rev()
            .find(|r| r.task_definition == td.id && r.version == td.spec.version)
    }

    /// Where traffic must go when a shift was interrupted: the slot running the last good
    /// release, else the slot already carrying most of the traffic.
    pub fn safe_slot(&self) -> Slot {
        if let Some(good) = self.last_good() {
            for slot in [Slot::Blue, Slot::Green] {
                if self.slot(slot).task_definition.as_ref().map(|td| &td.id)
                    == Some(&good.task_definition)
                {
                    return slot;
                }
            }
        }
        if self.weights.green > self.weights.blue {
            Slot::Green
        } else {
            Slot::Blue
        }
    }
}

/// Four calls where the cloud allows it. The history comes first: the AWS adapter then
/// knows what the task definitions it names hold (ARNs are immutable) and does not
/// describe them again.
pub(crate) async fn observe<C: Cloud>(eng: &Engine<'_, C>) -> Result<Observed, EngineError> {
    let c = eng.cloud;
    let ((history, lock), (weights, test_listener)) = tokio::try_join!(
        eng.read("read the release history and the lock", || c
            .history_and_lock()),
        eng.read("read production weights and the test listener", || c
            .weights_and_test_listener()),
    )?;
    let (blue, green) = eng
        .read("read the blue and green slots", || c.slot_services())
        .await?;
    Ok(Observed {
        weights,
        blue,
        green,
        test_listener,
        history,
        lock,
    })
}

impl<C: Cloud> Engine<'_, C> {
    /// Observe under the lease: the lock read with the history must still be ours, and it
    /// vouches for the next write.
    pub(crate) async fn observe_locked(&self, lease: &Lease) -> Result<Observed, EngineError> {
        // The lock is read in the first round: it is as fresh as the start of the observe.
        let started = tokio::time::Instant::now();
        let observed = observe(self).await?;
        lease.note(self, observed.lock.as_ref(), started)?;
        // Every locked verb observes before its first write: refuse a mis-wired service here.
        super::wiring::check(self.settings, &observed)?;
        Ok(observed)
    }
}
