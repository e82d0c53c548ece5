//! The lease's rules that mutation testing (scripts/mutants.sh) found unchecked, each
//! reached in the simulated cloud in virtual time.

use std::time::Duration;

use cutover::engine::{Engine, EngineError};
use cutover::ports::Clock;
use cutover::sim::{AwsErrorAt, Faults, NEW, NO_ANSWER, Sim, version};

use crate::engine_mutants::{at, hold_lock, stage, with_lease};
use crate::sim_support::block_on;

/// A run that breaks a stale lock waits out the takeover pause (35 s) before its first
/// write, then reads the lock again. Under a lease shorter than that pause (30 s; the
/// config refuses a lease under 2 minutes) its own lock has run out by then: it stops
/// before writing, saying its lease expired — not that the lock is now held by someone,
/// naming its own run — and leaves no lock behind.
#[test]
fn a_lease_that_runs_out_in_the_takeover_pause_is_reported_as_expired() {
    block_on(async {
        let sim = Sim::new(21, Faults::default(), with_lease(30));
        // Left behind by a run that died: expired 100 s ago.
        hold_lock(&sim, 160, 60).await;
        let ci = sim.runner("ci", None);
        let err = Engine::new(&ci, &ci, &sim.settings, "ci")
            .promote(&version(NEW))
            .await
            .unwrap_err();
        match err {
            EngineError::LockLost { detail } => assert_eq!(detail, "our lease expired"),
            other => panic!("{other:?}"),
        }
        assert_eq!(sim.lock_holder(), None);
    });
}

/// The first `runner` line at or after line `from` that contains `what`: its line number.
fn line_of(log: &[String], from: usize, runner: &str, what: &str) -> usize {
    let tag = format!(" {runner} {what}");
    log.iter()
        .skip(from)
        .position(|l| l.contains(&tag))
        .map(|i| from + i)
        .unwrap_or_else(|| panic!("no {tag:?} after line {from}:\n{}", log.join("\n")))
}

/// A `u64` field of a `Lock` as a log line prints it.
fn lock_field(line: &str, field: &str) -> u64 {
    let (_, rest) = line
        .split_once(&format!("{field}: "))
        .unwrap_or_else(|| panic!("no {field} in {line}"));
    rest.split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {field} in {line}"))
}

/// SSM answers none of a promote's first three tries at taking the lock (30 s each). The
/// lock it then holds carries the time of its first try, so by the time the promote has
/// read the state less than half of its 2-minute lease is left. Its first write (the
/// history's Shifting) renews the lease before it goes out: the read that showed the lock
/// ours a moment earlier vouches that the lock is ours, not that enough of it is left.
#[test]
fn a_lock_taken_through_hung_calls_is_renewed_before_the_first_write() {
    block_on(async {
        let promote_at = Duration::from_secs(100);
        let hung = AwsErrorAt {
            op: "create_lock",
            from: promote_at,
            code: NO_ANSWER,
            lasting: false,
        };
        let sim = Sim::new(
            21,
            Faults {
                aws_errors: vec![hung.clone(), hung.clone(), hung],
                ..Faults::default()
            },
            with_lease(120),
        );
        let ci = sim.runner("ci", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
        stage(&engine, &sim, NEW).await;
        tokio::time::sleep_until(sim.start() + promote_at).await;
        let from = sim.log().len();
        engine.promote(&version(NEW)).await.expect("promote");
        let log = sim.log();
        let epoch = ci.now() - sim.start().elapsed().as_millis() as u64;
        let hangs = log[from..]
            .iter()
            .filter(|l| l.contains(" ci create_lock(") && l.ends_with(" -> HUNG"))
            .count();
        assert_eq!(hangs, 3, "{:#?}", &log[from..]);
        let observed = line_of(&log, from, "ci", "history_and_lock");
        let read_at = epoch + at(&log[observed]);
        let left = lock_field(&log[observed], "expires_at").saturating_sub(read_at);
        assert!(
            left < 60_000,
            "{left} ms of the lease left when the state was read"
        );
        let first_write = line_of(&log, observed, "ci", "record(");
        let renewed = line_of(&log, observed, "ci", "renew_lock -> Ok");
        assert!(
            renewed < first_write,
            "{} written before the lease was renewed:\n{}",
            log[first_write],
            log[observed..=renewed.max(first_write)].join("\n")
        );
    });
}
