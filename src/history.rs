//! The release history's rules, shared by the AWS adapter (one SSM parameter) and the
//! simulated cloud, so the two cannot drift: the order entries are kept in, what eviction
//! may drop, and how many entries fit in one parameter.

use crate::model::{Release, Status};

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
    history.retain(|r| !r.same_release(release));
    history.push(Release {
        promoted_at,
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
}

#[cfg(test)]
mod size {
    use super::*;
    use crate::model::{Digest, Slot};
    use crate::version::Version;

    /// `MAX_DEPTH` worst-case entries fit in one SSM parameter (8 KB in the advanced tier).
    #[test]
    fn a_full_history_of_worst_case_entries_fits_one_parameter() {
        let worst = Release {
            version: Version::parse("v1234.5678.9012-rc.12345+build.67890").unwrap(),
            digest: Digest(format!("sha256:{}", "f".repeat(64))),
            task_definition: format!(
                "arn:aws:ecs:ap-southeast-2:123456789012:task-definition/{}:12345",
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
        };
        let history = vec![worst; MAX_DEPTH as usize];
        let json = serde_json::to_string(&history).unwrap();
        assert!(json.len() <= 8192, "{} bytes", json.len());
    }
}
