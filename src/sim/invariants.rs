//! Invariants 1–11 of DESIGN.md and I14 (traffic only onto a slot at capacity, healthy), checked by the simulated cloud itself on every call.
//! There is no switch: every port call of the sim goes through [`World::after_call`] and
//! every write through [`World::before_write`], and a violation is kept for the run report.

use super::world::{EPOCH_MS, World, idx};
use crate::ports::{Release, Slot, Status, StatusEvent, Weights};

/// How long after losing the lock a holder's write may still land (the engine's call
/// timeout plus its settle: what a new holder waits before its first write).
const LOST_IN_FLIGHT_MS: u64 = 35_000;

impl World {
    fn live_td(&self) -> Option<String> {
        self.weights
            .live()
            .and_then(|s| self.slots[idx(s)].td.clone())
    }

    /// The last good release as the history says: the newest Promoted entry.
    fn last_good_td(&self) -> Option<String> {
        self.history
            .iter()
            .rev()
            .find(|r| r.status == Status::Promoted)
            .map(|r| r.task_definition.clone())
    }

    /// Before any write applies: the writer holds the lock (5) and has read back its last
    /// weight change (3).
    pub(crate) fn before_write(&mut self, now: u64, runner: usize, op: &str) {
        let name = self.runners[runner].name.clone();
        let wall = EPOCH_MS + now;
        // By token, not owner name: two runs can share an owner (two jobs of one workflow
        // run, two shells of one user); only the runner that created the token holds it.
        // SSM has no conditional write, so a holder's write can land shortly after it lost
        // the lock (read, then write; or a write in flight): tolerated only within a call
        // timeout plus the settle, and only while no other runner has written since (the
        // new holder waits that long before its first write). Anything else is two writers.
        let mine = self.runners[runner].token.clone();
        let held = |l: &crate::ports::Lock| Some(&l.token) == mine.as_ref() && l.expires_at > wall;
        if !self.lock.as_ref().is_some_and(held) && !self.may_land(now, runner) {
            let holder = self
                .lock
                .as_ref()
                .map_or("nobody".to_string(), |l| l.owner.clone());
            self.violation(
                now,
                format!("I5: {name} wrote ({op}) without holding the lock (held by {holder})"),
            );
        }
        self.runners[runner].last_write = Some(now);
        if self.ghost.pending_readback.contains(&runner) {
            self.violation(
                now,
                format!("I3: {name} wrote ({op}) before reading back its weight change"),
            );
        }
    }

    /// A write of `runner` that no longer holds the lock may still land: within a call
    /// timeout plus the settle of losing it, while no other runner has written since.
    pub(crate) fn may_land(&self, now: u64, runner: usize) -> bool {
        let Some(mine) = self.runners[runner].token.as_ref() else {
            return false;
        };
        let lost_at = self.lock_lost_at.get(mine).copied().or_else(|| {
            // Still ours but expired: lost at its expiry.
            self.lock
                .as_ref()
                .filter(|l| &l.token == mine)
                .map(|l| l.expires_at.saturating_sub(EPOCH_MS))
        });
        let other_wrote_since = |at: u64| {
            self.runners
                .iter()
                .enumerate()
                .any(|(i, x)| i != runner && x.last_write.is_some_and(|w| w >= at))
        };
        lost_at.is_some_and(|at| now < at + LOST_IN_FLIGHT_MS && !other_wrote_since(at))
    }

    /// Before an UpdateService applies: never shrink or replace a slot carrying traffic (3).
    pub(crate) fn before_update(&mut self, now: u64, slot: Slot, td: &str, desired: u32) {
        if self.worker {
            // Updated in place by design; when, the train's invariant judges. All its
            // work moves at once: its bake (I9) counts from here.
            if self.is_new(td) {
                self.metrics.new_rolled_at.get_or_insert(now);
            }
            if self.ghost.full_since.as_ref().is_none_or(|(t, _)| t != td) {
                self.ghost.full_since = Some((td.to_string(), now));
            }
            return;
        }
        let s = &self.slots[idx(slot)];
        let shrinks = desired < s.desired || s.td.as_deref() != Some(td);
        let weight = self.weights.of(slot);
        if shrinks && weight > 0 {
            self.violation(
                now,
                format!("I3: {slot} replaced or scaled down while carrying {weight}%"),
            );
        }
    }

    /// Before a history write: a release is recorded good only when it is live at 100% and
    /// has been for its bake (7, 9); the history stays within its cap.
    pub(crate) fn before_record(&mut self, now: u64, release: &Release, cap: usize) {
        if cap != self.history_cap {
            self.violation(
                now,
                format!("history cap {cap}, configured {}", self.history_cap),
            );
        }
        if release.status != Status::Promoted {
            return;
        }
        // Re-recording a release already recorded good (a rollback rehearsal adding its
        // result after the bake) declares nothing new.
        if self
            .history
            .iter()
            .any(|r| r.same_release(release) && r.status == Status::Promoted)
        {
            return;
        }
        let since = match &self.ghost.full_since {
            Some((td, since)) if *td == release.task_definition => Some(*since),
            _ => None,
        };
        match since {
            Some(since) if now - since >= self.ghost.bake_ms => {}
            Some(since) => self.violation(
                now,
                format!(
                    "I9: {} recorded Promoted after {}ms at 100%, bake is {}ms",
                    release.version,
                    now - since,
                    self.ghost.bake_ms
                ),
            ),
            None => self.violation(
                now,
                format!(
                    "I9: {} recorded Promoted while not at 100%",
                    release.version
                ),
            ),
        }
    }

    /// After every call: weights always add to 100 (2) and traffic only reaches validated
    /// task definitions (1).
    pub(crate) fn after_call(&mut self, now: u64) {
        let w = self.weights;
        if u16::from(w.blue) + u16::from(w.green) != 100 {
            self.violation(now, format!("I2: weights {w} do not add up to 100"));
        }
        for slot in [Slot::Blue, Slot::Green] {
            // A worker's release is checked by ECS's rollout, not probes (the train's
            // invariant: rolled only after every web member validated).
            if w.of(slot) == 0 || self.worker {
                continue;
            }
            let td = self.slots[idx(slot)].td.clone().unwrap_or_default();
            if !self.ghost.validated.contains(&td) {
                self.violation(
                    now,
                    format!(
                        "I1: {}% on {slot} running {td}, which never passed validation",
                        w.of(slot)
                    ),
                );
            }
        }
    }

    /// Production traffic moves only onto a slot that runs its release at capacity (at
    /// least what the slot giving up traffic runs) with every target healthy as read: the
    /// last target health read of that slot said so, or the slot is healthy now or was 5 s
    /// ago (a flapping target can turn between a read and the write) (I14).
    pub(crate) fn before_weights(&mut self, now: u64, next: Weights) {
        for slot in [Slot::Blue, Slot::Green] {
            if next.of(slot) <= self.weights.of(slot) {
                continue;
            }
            let giving = self.slots[idx(slot.other())].desired.max(1);
            let desired = self.slots[idx(slot)].desired;
            let healthy = self.ghost.health_read[idx(slot)] == Some(true)
                || self.slot_healthy(now, slot)
                || self.slot_healthy(now.saturating_sub(5_000), slot);
            if desired < giving || !healthy {
                let what = format!(
                    "I14: traffic moved onto {slot} ({}%) with desired {desired} (the other slot runs {giving}) and no healthy read of its targets",
                    next.of(slot),
                );
                self.violation(now, what);
            }
        }
    }

    /// Every status report: nothing secret in it (10); Promoted only when verifiably live
    /// (9); a failure or rollback ends on the last good release (4) and never blames an
    /// alarm of the slot it leaves (11).
    pub(crate) fn on_report(&mut self, now: u64, runner: usize, event: &StatusEvent) {
        let name = self.runners[runner].name.clone();
        self.log.push(format!(
            "{now:>9} {name} STATUS {} {}",
            event.status, event.detail
        ));
        self.check_secret(now, &event.detail);
        let end = matches!(
            event.status,
            Status::Failed | Status::RolledBack | Status::RollbackFailed
        );
        self.metrics.statuses.push(super::world::StatusAt {
            at_ms: now,
            runner,
            status: event.status,
            new: event.version.as_ref() == Some(&self.new_version),
            detail: end.then(|| event.detail.clone()),
        });
        if event.status == Status::Failed
            && self.metrics.ecs_failed_at.is_some()
            && self.metrics.failed_reported_at.is_none()
        {
            self.metrics.failed_reported_at = Some(now);
        }
        if let Some((status, cancel)) = &self.cancel_on
            && *status == event.status
        {
            self.log
                .push(format!("{now:>9} ABORT injected at {status}"));
            cancel.cancel();
        }
        // kill -9 in a phase: the first runner to report it dies a little later.
        if let Some(k) = self.faults.kill_in
            && !self.kill_armed
            && k.phase == event.status
        {
            self.kill_armed = true;
            let at = now + k.after.as_millis() as u64;
            self.runners[runner].kill_after = Some(at);
            self.log.push(format!(
                "{now:>9} {name} to be killed in {} at its first call from {at}",
                event.status
            ));
        }
        // A stage fails, and a shift rolls back, only on evidence from the slot it moves
        // toward (11): the event names that slot.
        if let (Status::Failed | Status::RolledBack, Some(slot)) = (event.status, event.slot) {
            self.check_blame(now, &event.status.to_string(), slot, &event.detail);
        }
        if self.ghost.trust_engine_validation
            && event.status == Status::AwaitingApproval
            && let Some(td) = event.slot.and_then(|s| self.slots[idx(s)].td.clone())
        {
            self.validated(now, td);
        }
        match event.status {
            Status::Promoted => {
                let live = self.weights.live();
                let ok = live.is_some_and(|s| {
                    let td = self.slots[idx(s)].td.clone().unwrap_or_default();
                    // Health is sampled: a target that fails a check in the instant between
                    // the engine's read and its report is not a false success.
                    let healthy = self.slot_healthy(now, s)
                        || self.slot_healthy(now.saturating_sub(5_000), s);
                    self.td_spec(&td).map(|t| &t.version) == event.version.as_ref() && healthy
                });
                if !ok {
                    self.violation(
                        now,
                        format!(
                            "I9: reported Promoted {} but it is not verifiably live ({})",
                            shown(event.version.as_ref()),
                            self.weights
                        ),
                    );
                }
            }
            Status::RolledBack | Status::Failed => {
                let good = self.last_good_td();
                if good.is_some() && self.live_td() != good {
                    self.violation(
                        now,
                        format!(
                            "I4: reported {} with production on {}, last good is {} ({})",
                            event.status,
                            shown(self.live_td()),
                            shown(good),
                            self.weights
                        ),
                    );
                }
            }
            _ => {}
        }
    }

    pub(crate) fn check_secret(&mut self, now: u64, text: &str) {
        if text.contains(&self.secret) {
            self.violation(now, "I10: a secret appeared in output".into());
        }
    }

    /// The recovery invariant (13): once a recovery run after a kill ends, production is
    /// 100% on one slot whose release the history names as the last good one, at capacity
    /// (`capacity` tasks, every target healthy), and the lock is free; with `within`, no
    /// later than that after the kill.
    pub(crate) fn recovered(&mut self, now: u64, capacity: u32, within: Option<u64>) {
        self.land_late(now, true);
        let mut wrong = Vec::new();
        match self.weights.live() {
            None => wrong.push(format!("production split ({})", self.weights)),
            Some(live) => {
                let s = &self.slots[idx(live)];
                if s.desired < capacity || !self.slot_healthy(now, live) {
                    wrong.push(format!(
                        "{live} runs desired {} (capacity {capacity}), healthy: {}",
                        s.desired,
                        self.slot_healthy(now, live)
                    ));
                }
                if self.last_good_td().is_none() || self.last_good_td() != self.live_td() {
                    wrong.push(format!(
                        "live {} is not the last good release in the history {}",
                        shown(self.live_td()),
                        shown(self.last_good_td())
                    ));
                }
            }
        }
        if let Some(l) = &self.lock {
            wrong.push(format!("the lock is still held by {}", l.owner));
        }
        if let (Some(bound), Some(killed)) = (within, self.metrics.killed_at)
            && now.saturating_sub(killed) > bound
        {
            wrong.push(format!(
                "recovered {} ms after the kill, bound {bound} ms",
                now - killed
            ));
        }
        if wrong.is_empty() {
            self.metrics.recovered_at.get_or_insert(now);
            self.log.push(format!("{now:>9} RECOVERED"));
        }
        for w in wrong {
            self.violation(now, format!("I13 recovery: {w}"));
        }
    }

    /// At the end of a scenario: one slot at 100% on a validated release (1, 2), the lock
    /// released, the history within its cap and still holding the starting release (6).
    pub(crate) fn end_state(&mut self, now: u64, expect_version: Option<&crate::version::Version>) {
        self.land_late(now, true);
        let Some(live) = self.weights.live() else {
            let w = self.weights;
            self.violation(now, format!("end: I2: no slot at 100% ({w})"));
            return;
        };
        // A flapping release may be caught between health checks; that is its nature.
        // A worker has no targets: healthy is rolled out, every task of it running.
        let healthy = if self.worker {
            let s = self.read_slot(now, live);
            s.rollout == crate::ports::Rollout::Completed && s.running == s.desired
        } else {
            self.slot_healthy(now, live)
        };
        if !self.faults.flapping && !healthy {
            self.violation(now, format!("end: live slot {live} is not healthy"));
        }
        if self.lock.is_some() {
            self.violation(now, "end: the deploy lock was left behind".into());
        }
        if self.history.len() > self.history_cap {
            self.violation(
                now,
                format!("end: history holds {} entries", self.history.len()),
            );
        }
        let live_td = self.live_td();
        let live_version = live_td
            .as_deref()
            .and_then(|td| self.td_spec(td))
            .map(|s| s.version.clone());
        if let Some(v) = expect_version
            && live_version.as_ref() != Some(v)
        {
            self.violation(
                now,
                format!(
                    "end: expected {v} live, found {}",
                    shown(live_version.as_ref())
                ),
            );
        }
        if self.last_good_td() != live_td {
            self.violation(
                now,
                format!(
                    "end: I4: live {} is not the last good release {}",
                    shown(live_td),
                    shown(self.last_good_td())
                ),
            );
        }
    }
}

/// An optional value as a person reads it (a violation is printed by `cutover simulate`).
fn shown<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "nothing".to_string(), |v| v.to_string())
}
