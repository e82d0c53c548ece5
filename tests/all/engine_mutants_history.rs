//! The release history's shared rules (`cutover::history`, what the SSM adapter and the
//! simulation both record with): what eviction keeps and how a history too big for one
//! SSM parameter is made to fit — checked where mutation testing (scripts/mutants.sh)
//! found them unchecked.

use cutover::history::{MAX_BYTES, MAX_DEPTH, MAX_TRANSITIONS, record_release};
use cutover::ports::{Digest, Release, Slot, Status, Transition};
use cutover::version::Version;

/// A release as long as an entry gets (a long prerelease version, the longest run URL as
/// its author), with `status`, a full timeline and `train` as its member list (and an id).
fn long_release(n: u32, status: Status, train: &[String]) -> Release {
    let at = 1_800_000_000_000 + u64::from(n) * 3_600_000;
    Release {
        version: Version::parse(&format!("v1234.5678.{n}-rc.12345")).expect("version"),
        digest: Digest(format!("sha256:{}", "f".repeat(64))),
        task_definition: format!(
            "arn:aws:ecs:ap-southeast-2:123456789012:task-definition/{}:{n}",
            "a".repeat(40)
        ),
        slot: Slot::Green,
        by: format!(
            "https://github.com/{}/{}/actions/runs/12345678901 (attempt 3)",
            "o".repeat(39),
            "r".repeat(60)
        ),
        at,
        status,
        fingerprint: "e".repeat(64),
        promoted_at: None,
        transitions: (0..MAX_TRANSITIONS as u64)
            .map(|i| Transition {
                status: if i % 2 == 0 {
                    Status::Shifting(55)
                } else {
                    Status::Baking
                },
                at: at - 1_000_000 + i * 1000,
            })
            .collect(),
        rehearsal: None,
        train: train.to_vec(),
        // A train run's id is always 8 hex digits.
        train_id: if train.is_empty() {
            String::new()
        } else {
            "0123abcd".into()
        },
    }
}

fn json_len(history: &[Release]) -> usize {
    serde_json::to_string(history).expect("json").len()
}

/// Twelve long releases, each with a full timeline: more than one SSM parameter holds. The
/// timelines give way, oldest first, until the history fits; every release stays, and the
/// newest releases keep their timelines (what `cutover history` shows of how a release got
/// where it is).
#[test]
fn a_history_too_big_for_one_parameter_drops_the_oldest_timelines_first() {
    let mut history = Vec::new();
    for n in 0..MAX_DEPTH {
        record_release(
            &mut history,
            &long_release(n, Status::Promoted, &[]),
            MAX_DEPTH as usize,
        );
    }
    assert!(
        json_len(&history) <= MAX_BYTES,
        "{} bytes",
        json_len(&history)
    );
    assert_eq!(history.len(), MAX_DEPTH as usize);
    let kept: Vec<bool> = history.iter().map(|r| !r.transitions.is_empty()).collect();
    let dropped = kept.iter().take_while(|k| !**k).count();
    assert!(dropped > 1, "{kept:?}");
    assert!(kept[dropped..].iter().all(|k| *k), "oldest first: {kept:?}");
    assert_eq!(
        history.last().expect("newest").transitions.len(),
        MAX_TRANSITIONS
    );
}

/// Twelve releases of a twenty-member train, the newest staged and awaiting approval: even
/// without their timelines they are too big, so the member lists of releases no promote
/// will read again go too, oldest first. The staged release keeps its list (it is what
/// refuses a member's promote alone), and so does every release while there is room.
#[test]
fn a_history_of_trains_drops_old_member_lists_but_never_a_staged_trains() {
    let members: Vec<String> = (0..20)
        .map(|i| format!("service-{i:02}-backend-worker"))
        .collect();
    let mut history = Vec::new();
    for n in 0..MAX_DEPTH {
        let status = if n + 1 == MAX_DEPTH {
            Status::AwaitingApproval
        } else {
            Status::Promoted
        };
        record_release(
            &mut history,
            &long_release(n, status, &members),
            MAX_DEPTH as usize,
        );
        if n < 3 {
            assert!(history.iter().all(|r| r.train == members), "room for all");
        }
    }
    assert!(
        json_len(&history) <= MAX_BYTES,
        "{} bytes",
        json_len(&history)
    );
    assert_eq!(history.len(), MAX_DEPTH as usize);
    assert_eq!(history.last().expect("staged").train, members);
    let listed: Vec<bool> = history.iter().map(|r| !r.train.is_empty()).collect();
    let dropped = listed.iter().take_while(|l| !**l).count();
    assert!(dropped > 1, "{listed:?}");
    assert!(
        listed[dropped..].iter().all(|l| *l),
        "oldest first: {listed:?}"
    );
}

/// A history that cannot be made to fit (every entry a staged release of a long train):
/// no staged release loses its member list — the history stays too big, and the adapter's
/// write of it is what fails — rather than a train's member promoted alone later.
#[test]
fn a_history_of_staged_trains_too_big_to_fit_keeps_every_member_list() {
    let members: Vec<String> = (0..40)
        .map(|i| format!("service-{i:02}-backend-worker"))
        .collect();
    let mut history = Vec::new();
    for n in 0..MAX_DEPTH {
        record_release(
            &mut history,
            &long_release(n, Status::AwaitingApproval, &members),
            MAX_DEPTH as usize,
        );
    }
    assert_eq!(history.len(), MAX_DEPTH as usize);
    assert!(history.iter().all(|r| r.train == members));
    assert!(history.iter().all(|r| r.transitions.is_empty()));
}

/// Failed stages after two promoted releases, in a history of three: the history never
/// holds more than three entries, and the two promoted releases — the live one and the one
/// kept warm, what a rollback returns to — are never the ones evicted.
#[test]
fn failed_stages_evict_each_other_never_the_live_or_the_warm_release() {
    let mut history = Vec::new();
    for n in 0..2 {
        record_release(&mut history, &long_release(n, Status::Promoted, &[]), 3);
    }
    for n in 2..8 {
        record_release(&mut history, &long_release(n, Status::Failed, &[]), 3);
        let statuses: Vec<Status> = history.iter().map(|r| r.status).collect();
        assert_eq!(
            statuses,
            [Status::Promoted, Status::Promoted, Status::Failed],
            "after failed stage {n}"
        );
    }
}
