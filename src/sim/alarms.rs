//! CloudWatch in the simulated cloud. Each alarm belongs to a slot (its target group's 5xx)
//! or to the whole service, and fires from what happens in the world — a failing release
//! carrying production traffic — then stays in ALARM a while after, as evaluation periods
//! make a real alarm do. Incidents (the live release failing from the start, a slot's alarm
//! left over from its previous release, a service-wide outage) come from [`Faults`].
//!
//! [`Faults`]: super::Faults

use std::collections::BTreeMap;

use super::world::{World, idx};
use crate::ports::{AlarmState, Slot};

/// The 5xx alarm of each slot's target group, and an alarm of the whole service (an SLO).
pub const BLUE_ALARM: &str = "web-blue-5xx";
pub const GREEN_ALARM: &str = "web-green-5xx";
pub const SERVICE_ALARM: &str = "web-slo";

/// How long an alarm stays in ALARM once its cause is gone (two one-minute periods).
pub const LINGER_MS: u64 = 120_000;

/// Whose alarm a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    Slot(Slot),
    Service,
}

pub(crate) fn owner(name: &str) -> Option<Owner> {
    match name {
        BLUE_ALARM => Some(Owner::Slot(Slot::Blue)),
        GREEN_ALARM => Some(Owner::Slot(Slot::Green)),
        SERVICE_ALARM => Some(Owner::Service),
        _ => None,
    }
}

/// The alarm names a failure message blames: the list after each "in ALARM: ".
pub(crate) fn blamed(text: &str) -> Vec<&str> {
    text.match_indices("in ALARM: ")
        .flat_map(|(at, m)| {
            let rest = &text[at + m.len()..];
            let end = rest.find([';', '\n', '(']).unwrap_or(rest.len());
            rest[..end].split(',').map(str::trim)
        })
        .filter(|n| !n.is_empty())
        .collect()
}

/// One stretch of production traffic on a slot running one task definition.
#[derive(Debug, Clone)]
pub(crate) struct Carried {
    slot: Slot,
    td: String,
    from: u64,
    to: Option<u64>,
}

impl World {
    /// Keep the stretches of production traffic up to date after the weights changed.
    pub(crate) fn carry(&mut self, now: u64) {
        for slot in [Slot::Blue, Slot::Green] {
            let td = self.slots[idx(slot)]
                .td
                .clone()
                .filter(|_| self.weights.of(slot) > 0);
            let open = self
                .carried
                .iter_mut()
                .find(|c| c.slot == slot && c.to.is_none());
            match (open, td) {
                (Some(c), Some(td)) if c.td == td => {}
                (open, td) => {
                    if let Some(c) = open {
                        c.to = Some(now);
                    }
                    if let Some(td) = td {
                        self.carried.push(Carried {
                            slot,
                            td,
                            from: now,
                            to: None,
                        });
                    }
                }
            }
        }
    }

    /// Since when a task definition's release fails whenever it takes traffic, if it does:
    /// the release under test from `alarm_at`, the one live at the start from `incident_at`.
    fn failing_since(&self, td: &str) -> Option<u64> {
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        if self.is_new(td) {
            self.faults.alarm_at.map(ms)
        } else if self.first_live_td.as_deref() == Some(td) {
            self.faults.incident_at.map(ms)
        } else {
            None
        }
    }

    /// A slot's alarm from the releases it ran: in ALARM while a failing release carries
    /// traffic there, and for `LINGER_MS` after.
    fn release_alarm(&mut self, now: u64, slot: Slot) -> bool {
        let stretches: Vec<Carried> = self
            .carried
            .iter()
            .filter(|c| c.slot == slot)
            .cloned()
            .collect();
        let mut firing = false;
        for c in stretches {
            let Some(since) = self.failing_since(&c.td) else {
                continue;
            };
            let start = c.from.max(since);
            let end = c.to.unwrap_or(now);
            let held = match c.to {
                None => start <= now,
                Some(_) => start < end,
            };
            if !held {
                continue;
            }
            if c.to.is_none() && self.is_new(&c.td) && self.metrics.alarm_true_at.is_none() {
                self.metrics.alarm_true_at = Some(start);
            }
            firing |= c.to.is_none() || now < end + LINGER_MS;
        }
        firing
    }

    fn slot_alarm(&mut self, now: u64, slot: Slot) -> bool {
        // The slot idle at the start (green) may carry an alarm from its previous release.
        let left_over = slot == Slot::Green
            && self
                .faults
                .idle_alarm_until
                .is_some_and(|until| now < until.as_millis() as u64);
        self.release_alarm(now, slot) || left_over
    }

    fn service_alarm(&mut self, now: u64) -> bool {
        let outage = self.faults.outage.is_some_and(|(from, to)| {
            (from.as_millis() as u64..to.as_millis() as u64).contains(&now)
        });
        let follows = self.faults.service_alarm
            && [Slot::Blue, Slot::Green]
                .into_iter()
                .any(|s| self.release_alarm(now, s));
        outage || follows
    }

    /// The state of each named alarm; a name the sim does not know has no data.
    pub(crate) fn alarm_states(
        &mut self,
        now: u64,
        names: &[String],
    ) -> BTreeMap<String, AlarmState> {
        let state = |firing: bool| {
            if firing {
                AlarmState::Alarm
            } else {
                AlarmState::Ok
            }
        };
        names
            .iter()
            .map(|n| {
                let s = match owner(n) {
                    Some(Owner::Slot(slot)) => state(self.slot_alarm(now, slot)),
                    Some(Owner::Service) => state(self.service_alarm(now)),
                    None => AlarmState::InsufficientData,
                };
                (n.clone(), s)
            })
            .collect()
    }

    /// Invariant 11: a failure of a command that moves toward (or stages on) `toward` never
    /// blames an alarm of the other slot, the one it leaves or that holds production.
    pub(crate) fn check_blame(&mut self, now: u64, what: &str, toward: Slot, text: &str) {
        let left = toward.other();
        let wrong: Vec<String> = blamed(text)
            .into_iter()
            .filter(|n| owner(n) == Some(Owner::Slot(left)))
            .map(String::from)
            .collect();
        for name in wrong {
            self.violation(
                now,
                format!("I11: {what} toward {toward} failed because of {name}, an alarm of {left}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blamed_names_are_the_lists_after_in_alarm() {
        assert_eq!(
            blamed("Validating failed: alarm in ALARM: web-blue-5xx, web-slo; production…"),
            ["web-blue-5xx", "web-slo"]
        );
        assert!(
            blamed("traffic is moving away from blue, whose alarm web-blue-5xx is in ALARM")
                .is_empty()
        );
    }
}
