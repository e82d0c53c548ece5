//! Reading the real state through the ports: where every command starts.

use serde::Serialize;

use super::{Engine, EngineError};
use crate::ports::{Cloud, Release, Slot, SlotState, Status, Weights};

/// Weights, both slots, the test listener and the history, as read just now.
#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    pub weights: Weights,
    pub blue: SlotState,
    pub green: SlotState,
    pub test_listener: Option<Slot>,
    pub history: Vec<Release>,
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

pub(crate) async fn observe<C: Cloud>(eng: &Engine<'_, C>) -> Result<Observed, EngineError> {
    let c = eng.cloud;
    Ok(Observed {
        weights: eng
            .read("read production weights", || c.production_weights())
            .await?,
        blue: eng
            .read("read the blue slot", || c.read_slot(Slot::Blue))
            .await?,
        green: eng
            .read("read the green slot", || c.read_slot(Slot::Green))
            .await?,
        test_listener: eng
            .read("read the test listener", || c.test_listener())
            .await?,
        history: eng.read("read the release history", || c.history()).await?,
    })
}
