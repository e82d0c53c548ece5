//! Which alarms gate what, in one place (DESIGN: alarms belong to a slot or to the whole
//! service). A gate looks at the slot a release is validated on or that takes traffic, plus
//! the service-wide alarms where they apply. The other slot — the one traffic moves away
//! from, or that holds production while a hotfix stages — is never a gate (invariant 11):
//! its alarms are read only to tell the operator why they did not stop anything.

use std::collections::BTreeSet;
use std::sync::Mutex;

use super::{Engine, EngineError};
use crate::config::settings::ServiceSettings;
use crate::ports::{AlarmState, Cloud, Slot};

/// What a set of alarms is gating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Validating a release staged on this slot (`stage`, `deploy`).
    Stage(Slot),
    /// Validating the slot a rollback returns to.
    Recover(Slot),
    /// Production traffic moving to, or baking on, this slot.
    Traffic(Slot),
}

impl Gate {
    pub fn slot(self) -> Slot {
        match self {
            Gate::Stage(s) | Gate::Recover(s) | Gate::Traffic(s) => s,
        }
    }
}

fn slot_alarms(settings: &ServiceSettings, slot: Slot) -> &[String] {
    &settings.slots.get(slot).alarms
}

/// The alarms that fail `gate` when in ALARM: the slot's own, plus the service-wide ones
/// for traffic always, for a stage when `gate_on_service_alarms`, for a rollback never (a
/// service-wide alarm during an incident is about the release being left).
pub fn alarms_for(settings: &ServiceSettings, gate: Gate) -> Vec<String> {
    let service = match gate {
        Gate::Stage(_) => settings.validation.gate_on_service_alarms,
        Gate::Recover(_) => false,
        Gate::Traffic(_) => true,
    };
    let mut names = slot_alarms(settings, gate.slot()).to_vec();
    if service {
        names.extend(settings.validation.service_alarms.iter().cloned());
    }
    names
}

/// The alarms `gate` never waits on: the other slot's.
pub fn not_a_gate(settings: &ServiceSettings, gate: Gate) -> Vec<String> {
    slot_alarms(settings, gate.slot().other()).to_vec()
}

/// One gate's alarms over a validation or a whole shift. The first reading tells what was
/// already in ALARM; later readings gate.
pub(crate) struct AlarmWatch {
    names: Vec<String>,
    /// Service-wide alarms in ALARM at the first reading: the incident being left (or one
    /// the release under test did not cause). Not a gate until seen OK once.
    standing: Mutex<BTreeSet<String>>,
    /// For the timeline, once: what was in ALARM and is no gate.
    note: Mutex<Option<String>>,
    /// An alarm of the slot traffic leaves was in ALARM at the first reading (an incident
    /// being shipped away from): no rollback rehearsal goes back onto it.
    pub(crate) left_firing: bool,
}

impl AlarmWatch {
    /// The note about alarms in ALARM that are no gate, the first time it is asked for.
    pub(crate) fn take_note(&self) -> Option<String> {
        self.note.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// `detail`, with that note the first time.
    pub(crate) fn noted(&self, detail: String) -> String {
        match self.take_note() {
            Some(note) => format!("{detail}; {note}"),
            None => detail,
        }
    }

    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }
}

/// "alarm a is" / "alarms a, b are".
fn phrase(names: &[&str]) -> String {
    match names {
        [one] => format!("alarm {one} is"),
        many => format!("alarms {} are", many.join(", ")),
    }
}

/// Why alarms in ALARM did not stop `gate`: `left` of the other slot, `standing` service-wide.
fn note(gate: Gate, left: &[&str], standing: &[&str]) -> Option<String> {
    let (slot, other) = (gate.slot(), gate.slot().other());
    let mut parts = Vec::new();
    if !left.is_empty() {
        let p = phrase(left);
        parts.push(match gate {
            Gate::Stage(_) => format!("{other}'s {p} in ALARM, not a gate for staging on {slot}"),
            Gate::Recover(_) => {
                format!("{other}'s {p} in ALARM, not a gate for the rollback to {slot}")
            }
            Gate::Traffic(_) => format!("traffic is moving away from {other}, whose {p} in ALARM"),
        });
    }
    if !standing.is_empty() {
        parts.push(format!(
            "service-wide {} already in ALARM: a gate again once it is OK",
            phrase(standing)
                .replacen(" is", " was", 1)
                .replacen(" are", " were", 1)
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn blame(firing: &[&str]) -> String {
    format!("alarm in ALARM: {}", firing.join(", "))
}

impl<C: Cloud> Engine<'_, C> {
    /// Start watching `gate`'s alarms with one reading of them and of the other slot's.
    /// Err(reason) when one of the slot's own alarms is in ALARM already.
    pub(crate) async fn watch_alarms(
        &self,
        gate: Gate,
    ) -> Result<Result<AlarmWatch, String>, EngineError> {
        let names = alarms_for(self.settings, gate);
        let others = not_a_gate(self.settings, gate);
        let all: Vec<String> = names.iter().chain(&others).cloned().collect();
        let firing = self.firing(&all).await?;
        let service = &self.settings.validation.service_alarms;
        let in_alarm = |n: &&String| firing.contains(n.as_str());
        let own: Vec<&str> = names
            .iter()
            .filter(in_alarm)
            .filter(|n| !service.contains(n))
            .map(String::as_str)
            .collect();
        if !own.is_empty() {
            return Ok(Err(blame(&own)));
        }
        let standing: Vec<&str> = names.iter().filter(in_alarm).map(String::as_str).collect();
        let left: Vec<&str> = others.iter().filter(in_alarm).map(String::as_str).collect();
        let note = note(gate, &left, &standing);
        let standing = standing.iter().map(|n| n.to_string()).collect();
        Ok(Ok(AlarmWatch {
            left_firing: !left.is_empty(),
            names,
            standing: Mutex::new(standing),
            note: Mutex::new(note),
        }))
    }

    /// Err(reason) when one of the watch's alarms is in ALARM (a standing service-wide one
    /// only once it has been seen OK since the watch began).
    pub(crate) async fn alarms_clear(
        &self,
        watch: &AlarmWatch,
    ) -> Result<Result<(), String>, EngineError> {
        let firing = self.firing(&watch.names).await?;
        let mut standing = watch.standing.lock().unwrap_or_else(|e| e.into_inner());
        standing.retain(|n| firing.contains(n));
        let gating: Vec<&str> = watch
            .names
            .iter()
            .filter(|n| firing.contains(n.as_str()) && !standing.contains(n.as_str()))
            .map(String::as_str)
            .collect();
        Ok(if gating.is_empty() {
            Ok(())
        } else {
            Err(blame(&gating))
        })
    }

    /// The named alarms in ALARM now; no call when there are none.
    async fn firing(&self, names: &[String]) -> Result<BTreeSet<String>, EngineError> {
        if names.is_empty() {
            return Ok(BTreeSet::new());
        }
        let states = self
            .read("read alarm states", || self.cloud.alarm_states(names))
            .await?;
        Ok(states
            .into_iter()
            .filter(|(_, s)| *s == AlarmState::Alarm)
            .map(|(n, _)| n)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::settings::ServiceSettings;

    fn settings(gate_on_service: bool) -> ServiceSettings {
        let text = format!(
            r#"
            image.repository = "web"
            ecs = {{ cluster = "c", container = "web", container_port = 8080 }}
            slots.blue = {{ service = "b", target_group_arn = "tg/b", alarms = ["b-5xx", "b-latency"] }}
            slots.green = {{ service = "g", target_group_arn = "tg/g", alarms = ["g-5xx"] }}
            traffic = {{ production_listener_arn = "l/p", test_listener_arn = "l/t", test_url = "http://t" }}
            validation = {{ service_alarms = ["slo"], gate_on_service_alarms = {gate_on_service} }}
            "#
        );
        toml::from_str(&text).expect("test settings")
    }

    #[test]
    fn each_gate_looks_at_its_slot_and_never_at_the_other() {
        let s = settings(false);
        assert_eq!(alarms_for(&s, Gate::Stage(Slot::Green)), ["g-5xx"]);
        assert_eq!(
            alarms_for(&s, Gate::Recover(Slot::Blue)),
            ["b-5xx", "b-latency"]
        );
        assert_eq!(alarms_for(&s, Gate::Traffic(Slot::Green)), ["g-5xx", "slo"]);
        assert_eq!(
            not_a_gate(&s, Gate::Traffic(Slot::Green)),
            ["b-5xx", "b-latency"]
        );
        for gate in [Gate::Stage, Gate::Recover, Gate::Traffic] {
            for slot in [Slot::Blue, Slot::Green] {
                let gating = alarms_for(&settings(true), gate(slot));
                let other = not_a_gate(&s, gate(slot));
                assert!(gating.iter().all(|n| !other.contains(n)), "{gating:?}");
            }
        }
    }

    #[test]
    fn service_wide_alarms_gate_validation_only_when_asked_and_a_rollback_never() {
        let s = settings(true);
        assert_eq!(
            alarms_for(&s, Gate::Stage(Slot::Blue)),
            ["b-5xx", "b-latency", "slo"]
        );
        assert_eq!(alarms_for(&s, Gate::Recover(Slot::Green)), ["g-5xx"]);
    }

    #[test]
    fn the_note_says_which_alarms_were_no_gate_and_why() {
        assert_eq!(
            note(Gate::Traffic(Slot::Green), &["b-5xx"], &[]).unwrap(),
            "traffic is moving away from blue, whose alarm b-5xx is in ALARM"
        );
        assert_eq!(
            note(Gate::Stage(Slot::Green), &["b-5xx", "b-latency"], &["slo"]).unwrap(),
            "blue's alarms b-5xx, b-latency are in ALARM, not a gate for staging on green; \
             service-wide alarm slo was already in ALARM: a gate again once it is OK"
        );
        assert_eq!(note(Gate::Recover(Slot::Blue), &[], &[]), None);
    }
}
