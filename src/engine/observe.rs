//! Reading the real state through the ports: where every command starts.

use serde::Serialize;

use super::{Engine, EngineError};
use crate::ports::{Cloud, Release, Slot, SlotState, Status, TargetState, Weights};

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

/// Whether a slot runs `td` at `desired`, fully rolled out, with every target healthy;
/// otherwise a description of the real state (rollout, stop reasons, target reasons).
pub(crate) async fn slot_ready<C: Cloud>(
    eng: &Engine<'_, C>,
    slot: Slot,
    td: &str,
    desired: u32,
) -> Result<Result<(), String>, EngineError> {
    let c = eng.cloud;
    let state = eng.read("read the slot", || c.read_slot(slot)).await?;
    let targets = eng
        .read("read target health", || c.target_health(slot))
        .await?;
    let healthy = targets
        .iter()
        .filter(|t| t.state == TargetState::Healthy)
        .count() as u32;
    let on_td = state.task_definition.as_ref().map(|t| t.id.as_str()) == Some(td);
    let ready = on_td
        && state.rollout == crate::ports::Rollout::Completed
        && state.desired == desired
        && state.running == desired
        && state.pending == 0
        && desired > 0
        && healthy == desired
        && targets.iter().all(|t| t.state == TargetState::Healthy);
    if ready {
        return Ok(Ok(()));
    }
    let reasons: Vec<String> = targets
        .iter()
        .filter(|t| t.state != TargetState::Healthy)
        .map(|t| {
            format!(
                "{} {:?}: {}",
                t.id,
                t.state,
                t.reason.as_deref().unwrap_or("-")
            )
        })
        .collect();
    Ok(Err(format!(
        "{slot}: task definition {}, rollout {:?}, desired {} running {} pending {}; \
         stopped tasks: [{}]; unhealthy targets: [{}]",
        state
            .task_definition
            .as_ref()
            .map_or("none", |t| t.id.as_str()),
        state.rollout,
        state.desired,
        state.running,
        state.pending,
        state.stopped_reasons.join("; "),
        reasons.join("; "),
    )))
}
