//! The release history's rules, shared by the AWS adapter (one SSM parameter) and the
//! simulated cloud, so the two cannot drift: the order entries are kept in, what eviction
//! may drop, and how many entries fit in one parameter.

use crate::model::{Release, Status, Transition};

/// The most entries `[history] depth` may ask for: a worst-case entry (the longest GitHub
/// run URL as its author, a long prerelease version) is about 620 bytes of JSON, and one
/// SSM parameter holds 8 KB (advanced tier, which intelligent tiering moves to when needed).
pub const MAX_DEPTH: u32 = 12;

/// How a history records `release`, shared by the AWS adapter and the simulated cloud: its
/// entry is replaced and moved last (newest last means most recently changed), keeping when
/// it was first promoted. Moved, not updated in place: after `rollback --to` the redeployed
/// release must be the newest good one, or `last_good`, the next rollback's target and
/// `previous-version` would name the release it replaced.
///
/// Only the last `cap` are kept, but eviction never drops the two newest releases that
/// were ever promoted — the live release and the one its slot-mate keeps warm — however
/// many failed stages came after them (they used to be the first evicted).
pub fn record_release(history: &mut Vec<Release>, release: &Release, cap: usize) {
    let earlier = history.iter().find(|r| r.same_release(release));
    let promoted_at = earlier
        .and_then(|r| r.promoted_at)
        .or(release.promoted_at)
        .or((release.status == Status::Promoted).then_some(release.at));
    let transitions = kept_transitions(earlier, release);
    let rehearsal = release
        .rehearsal
        .clone()
        .or_else(|| earlier.and_then(|r| r.rehearsal.clone()));
    history.retain(|r| !r.same_release(release));
    history.push(Release {
        promoted_at,
        transitions,
        rehearsal,
        ..release.clone()
    });
    let protected: Vec<usize> = (0..history.len())
        .rev()
        .filter(|i| history[*i].was_promoted())
        .take(2)
        .collect();
    let mut excess = history.len().saturating_sub(cap.max(1));
    let mut i = 0;
    history.retain(|_| {
        let keep = excess == 0 || protected.contains(&i);
        if !keep {
            excess -= 1;
        }
        i += 1;
        keep
    });
    fit_in_one_parameter(history);
}

/// The most status changes one release keeps (the newest; a linear shift of 10% steps with
/// its stage, bake and a rollback is about 16).
pub const MAX_TRANSITIONS: usize = 24;

/// What the whole history may take as JSON: one SSM parameter holds 8 KB (advanced tier),
/// less a margin for the adapter's own framing.
pub const MAX_BYTES: usize = 8000;

/// The release's timeline: the earlier entry's, then the new status changes (and the
/// status being recorded, when not already the last one), a repeat of the same status
/// kept once, the newest [`MAX_TRANSITIONS`].
fn kept_transitions(earlier: Option<&Release>, release: &Release) -> Vec<Transition> {
    let mut all: Vec<Transition> = earlier.map(|r| r.transitions.clone()).unwrap_or_default();
    let recorded = Transition {
        status: release.status,
        at: release.at,
    };
    for t in release.transitions.iter().chain([&recorded]) {
        if all.last().map(|l| l.status) != Some(t.status) {
            all.push(*t);
        }
    }
    let excess = all.len().saturating_sub(MAX_TRANSITIONS);
    all.drain(..excess);
    all
}

/// Timelines give way to releases: while the history is over [`MAX_BYTES`], the oldest
/// entry's timeline is dropped (its release stays, with its last status).
fn fit_in_one_parameter(history: &mut [Release]) {
    let size = |h: &[Release]| serde_json::to_string(h).map_or(0, |j| j.len());
    let mut oldest = 0;
    while oldest < history.len() && size(history) > MAX_BYTES {
        history[oldest].transitions.clear();
        oldest += 1;
    }
    // Then the train lists of releases no promote will read again (a 20-member train's names
    // are about 500 bytes an entry): only a staged or shifting release's list refuses a
    // member's promote alone.
    let mut oldest = 0;
    while oldest < history.len() && size(history) > MAX_BYTES {
        let status = history[oldest].status;
        if !matches!(
            status,
            Status::AwaitingApproval | Status::Shifting(_) | Status::Baking
        ) {
            history[oldest].train.clear();
        }
        oldest += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Digest, Slot};
    use crate::version::Version;

    fn record(history: &mut Vec<Release>, tag: &str, td: &str, status: Status) {
        let release = Release {
            version: Version::parse(tag).unwrap(),
            digest: Digest(format!("sha256:{tag}")),
            task_definition: td.into(),
            slot: Slot::Blue,
            by: "test".into(),
            at: 0,
            status,
            fingerprint: String::new(),
            promoted_at: None,
            transitions: Vec::new(),
            rehearsal: None,
            train: Vec::new(),
            train_id: String::new(),
        };
        record_release(history, &release, 3);
    }

    #[test]
    fn a_rerecorded_release_moves_last_and_the_oldest_fall_off() {
        let mut history = Vec::new();
        for (tag, td) in [("v1.0.0", "td:1"), ("v1.1.0", "td:2"), ("v1.2.0", "td:3")] {
            record(&mut history, tag, td, Status::Promoted);
        }
        // `rollback --to v1.0.0`: its entry is the newest good one now.
        record(&mut history, "v1.0.0", "td:1", Status::Promoted);
        record(&mut history, "v1.2.0", "td:3", Status::RolledBack);
        let order: Vec<String> = history.iter().map(|r| r.version.to_string()).collect();
        assert_eq!(order, ["v1.1.0", "v1.0.0", "v1.2.0"]);
        record(&mut history, "v1.3.0", "td:4", Status::Failed);
        assert_eq!(history.len(), 3);
        assert_eq!(history[0].version.to_string(), "v1.0.0");
    }

    #[test]
    fn a_release_stays_known_as_once_promoted_whatever_is_recorded_after() {
        let mut history = Vec::new();
        record(&mut history, "v1.0.0", "td:1", Status::Promoted);
        record(&mut history, "v1.0.0", "td:1", Status::RolledBack);
        record(&mut history, "v1.1.0", "td:2", Status::AwaitingApproval);
        assert!(history[0].was_promoted() && history[0].status == Status::RolledBack);
        assert!(!history[1].was_promoted());
    }

    /// Issue 14: the live release, promoted long ago, was the first evicted once failed
    /// stages filled the history.
    #[test]
    fn failed_stages_never_evict_the_live_or_the_warm_release() {
        let mut history = Vec::new();
        record(&mut history, "v1.0.0", "td:1", Status::Promoted);
        record(&mut history, "v1.1.0", "td:2", Status::Promoted);
        for n in 0..12 {
            record(
                &mut history,
                &format!("v1.2.{n}"),
                &format!("td:f{n}"),
                Status::Failed,
            );
        }
        let kept: Vec<String> = history.iter().map(|r| r.version.to_string()).collect();
        assert_eq!(kept, ["v1.0.0", "v1.1.0", "v1.2.11"]);
    }

    /// Issue 18.4: every status change is kept with its time, a repeated one once, and the
    /// status being recorded closes the list.
    #[test]
    fn a_release_keeps_each_status_change_with_its_time() {
        let mut history = Vec::new();
        let t = |status, secs: u64| Transition {
            status,
            at: secs * 1000,
        };
        let mut r = Release {
            version: Version::parse("v1.0.0").unwrap(),
            digest: Digest("sha256:a".into()),
            task_definition: "td:1".into(),
            slot: Slot::Green,
            by: "test".into(),
            at: 30_000,
            status: Status::AwaitingApproval,
            fingerprint: String::new(),
            promoted_at: None,
            transitions: vec![
                t(Status::Staging, 1),
                t(Status::Validating, 20),
                t(Status::Validating, 25),
            ],
            rehearsal: None,
            train: Vec::new(),
            train_id: String::new(),
        };
        record_release(&mut history, &r, 3);
        r.transitions = vec![t(Status::Shifting(10), 40)];
        r.status = Status::Promoted;
        r.at = 100_000;
        record_release(&mut history, &r, 3);
        let got: Vec<String> = history[0]
            .transitions
            .iter()
            .map(|t| format!("{}@{}", t.status, t.at / 1000))
            .collect();
        assert_eq!(
            got,
            [
                "Staging@1",
                "Validating@20",
                "AwaitingApproval@30",
                "Shifting(10%)@40",
                "Promoted@100"
            ]
        );
    }
}

#[cfg(test)]
mod size {
    use super::*;
    use crate::model::{Digest, Slot};
    use crate::version::Version;

    /// `MAX_DEPTH` worst-case entries fit in one SSM parameter (8 KB in the advanced tier).
    #[test]
    fn a_full_history_of_worst_case_entries_fits_one_parameter() {
        let worst = worst_release(12345);
        let history = vec![worst; MAX_DEPTH as usize];
        let json = serde_json::to_string(&history).unwrap();
        assert!(json.len() <= 8192, "{} bytes", json.len());
    }

    /// Issue 18.4: timelines of worst-case entries, each as long as it may be, still fit:
    /// the oldest entries' timelines give way, the newest release keeps its own.
    #[test]
    fn worst_case_timelines_give_way_oldest_first_and_fit_one_parameter() {
        let mut history = Vec::new();
        for n in 0..MAX_DEPTH + 2 {
            let mut r = worst_release(n);
            r.transitions = (0..MAX_TRANSITIONS as u64 + 5)
                .map(|i| Transition {
                    status: if i % 2 == 0 {
                        Status::Shifting(55)
                    } else {
                        Status::RollbackFailed
                    },
                    at: (u64::from(u32::MAX) + i) * 1000,
                })
                .collect();
            record_release(&mut history, &r, MAX_DEPTH as usize);
        }
        let json = serde_json::to_string(&history).unwrap();
        assert!(json.len() <= MAX_BYTES, "{} bytes", json.len());
        let newest = history.last().unwrap();
        assert_eq!(newest.transitions.len(), MAX_TRANSITIONS);
        assert!(history[0].transitions.is_empty());
    }

    /// Issue 17.3: a train's member list rides in every entry it staged; twenty members
    /// still fit, and the staged release keeps its list (only a promote reads it).
    #[test]
    fn a_full_history_of_twenty_member_trains_still_fits_and_keeps_the_staged_trains_list() {
        let members: Vec<String> = (0..20).map(|i| format!("service-{i:02}-backend")).collect();
        let mut history = Vec::new();
        for n in 0..MAX_DEPTH {
            let mut r = worst_release(n);
            r.train = members.clone();
            r.status = if n + 1 == MAX_DEPTH {
                Status::AwaitingApproval
            } else {
                Status::Promoted
            };
            record_release(&mut history, &r, MAX_DEPTH as usize);
        }
        let json = serde_json::to_string(&history).unwrap();
        assert!(json.len() <= MAX_BYTES, "{} bytes", json.len());
        assert_eq!(history.last().unwrap().train, members, "the staged train");
    }

    fn worst_release(n: u32) -> Release {
        Release {
            version: Version::parse(&format!("v1234.5678.{n}-rc.12345+build.67890")).unwrap(),
            digest: Digest(format!("sha256:{}", "f".repeat(64))),
            task_definition: format!(
                "arn:aws:ecs:ap-southeast-2:123456789012:task-definition/{}:{n}",
                "a".repeat(64)
            ),
            slot: Slot::Green,
            by: format!(
                "https://github.com/{}/{}/actions/runs/12345678901 (attempt 3)",
                "o".repeat(39),
                "r".repeat(60)
            ),
            at: u64::from(u32::MAX) * 1000,
            status: Status::RollbackFailed,
            fingerprint: "e".repeat(64),
            promoted_at: Some(u64::from(u32::MAX) * 1000),
            transitions: Vec::new(),
            rehearsal: None,
            train: Vec::new(),
            train_id: String::new(),
        }
    }
}
