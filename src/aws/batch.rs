//! Reads that several members of a train make at the same moment, sent as one AWS call
//! (issue 17's benchmark): DescribeServices takes 10 services of a cluster, GetParameters
//! 10 parameters (the histories and the locks), DescribeAlarms 100 alarms,
//! DescribeListeners several listeners. A read joins the batch open for its group (an ECS
//! cluster; SSM; CloudWatch; ELB) for a few milliseconds, and the batch's first read sends
//! it with the leader's client for every member (a train's members share one environment:
//! region, account and credentials). Only a train's members share batches (`Batches`
//! handed to each member's `AwsCloud`); one service reads as before.
//!
//! The engine's retries and timeouts stay per member: a batch's error reaches every read
//! in it, and each retries on its own; a leader whose read is dropped (its deadline) drops
//! the batch's sender, so its followers fail at once with a transient error rather than
//! wait for a call nobody makes.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::ports::{PortError, PortResult};

/// How long a batch stays open: a train's members issue their reads in the same poll
/// round (microseconds apart), so a few milliseconds catch them all and cost one service
/// nothing it would notice.
const WINDOW: Duration = Duration::from_millis(5);

type Outcome<R> = Option<Arc<PortResult<R>>>;

/// One batch still taking reads.
struct Open<R> {
    id: u64,
    names: Vec<String>,
    done: watch::Receiver<Outcome<R>>,
}

struct State<R> {
    /// The open batch of each group.
    open: HashMap<String, Open<R>>,
    /// Batches that filled up before their window ended, by id, until their leader sends.
    sealed: HashMap<u64, Open<R>>,
}

/// Coalesces reads of names within a group into calls of at most `limit` names.
pub struct Coalescer<R> {
    state: Mutex<State<R>>,
    limit: usize,
    next: AtomicU64,
}

impl<R: Send + Sync + 'static> Coalescer<R> {
    pub fn new(limit: usize) -> Self {
        Coalescer {
            state: Mutex::new(State {
                open: HashMap::new(),
                sealed: HashMap::new(),
            }),
            limit,
            next: AtomicU64::new(0),
        }
    }

    /// The response of one call covering at least `names` (the union of the batch's).
    /// `send` makes the call for a batch's names; only the batch's leader calls it.
    pub async fn read<F, Fut>(&self, group: &str, names: &[String], send: F) -> Arc<PortResult<R>>
    where
        F: FnOnce(Vec<String>) -> Fut,
        Fut: Future<Output = PortResult<R>>,
    {
        let (mut done, lead) = self.join(group, names);
        if let Some((id, tx)) = lead {
            tokio::time::sleep(WINDOW).await;
            let names = self.close(group, id);
            let result = Arc::new(send(names).await);
            // Followers may all have given up (their deadlines): nobody to tell.
            let _ = tx.send(Some(result.clone()));
            return result;
        }
        match done.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone().expect("waited for Some"),
            Err(_) => Arc::new(Err(PortError::Transient(
                "a batched read was abandoned by the member that was sending it".into(),
            ))),
        }
    }

    /// Join the group's open batch, or open one (then we lead it: the sender is ours).
    #[allow(clippy::type_complexity)]
    fn join(
        &self,
        group: &str,
        names: &[String],
    ) -> (
        watch::Receiver<Outcome<R>>,
        Option<(u64, watch::Sender<Outcome<R>>)>,
    ) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(open) = state.open.get_mut(group) {
            let new: Vec<&String> = names.iter().filter(|n| !open.names.contains(n)).collect();
            // A batch whose leader was dropped is dead: its sender is gone.
            let alive = open.done.has_changed().is_ok();
            if alive && open.names.len() + new.len() <= self.limit {
                open.names.extend(new.into_iter().cloned());
                return (open.done.clone(), None);
            }
        }
        // None open, a dead one, or a full one: a full one goes on under its leader.
        if let Some(full) = state.open.remove(group)
            && full.done.has_changed().is_ok()
        {
            state.sealed.insert(full.id, full);
        }
        let (tx, rx) = watch::channel(None);
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        state.open.insert(
            group.to_string(),
            Open {
                id,
                names: names.to_vec(),
                done: rx.clone(),
            },
        );
        (rx, Some((id, tx)))
    }

    /// The leader's batch, taken out of the open or sealed ones: its names.
    fn close(&self, group: &str, id: u64) -> Vec<String> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.open.get(group).is_some_and(|o| o.id == id) {
            return state
                .open
                .remove(group)
                .map(|o| o.names)
                .unwrap_or_default();
        }
        state
            .sealed
            .remove(&id)
            .map(|o| o.names)
            .unwrap_or_default()
    }
}

/// The batches a train's members share.
pub struct Batches {
    pub(super) services: Coalescer<Vec<aws_sdk_ecs::types::Service>>,
    pub(super) parameters: Coalescer<Vec<aws_sdk_ssm::types::Parameter>>,
    pub(super) alarms: Coalescer<Vec<aws_sdk_cloudwatch::types::MetricAlarm>>,
    pub(super) listeners: Coalescer<Vec<aws_sdk_elasticloadbalancingv2::types::Listener>>,
}

impl Batches {
    pub fn new() -> Arc<Self> {
        Arc::new(Batches {
            services: Coalescer::new(10),
            parameters: Coalescer::new(10),
            alarms: Coalescer::new(100),
            // DescribeListeners names no maximum for ListenerArns; 20 stays modest.
            listeners: Coalescer::new(20),
        })
    }
}

/// `names` read through `coalescer` when the cloud batches, else by `send` alone.
pub(super) async fn read<R, F, Fut>(
    coalescer: Option<&Coalescer<R>>,
    group: &str,
    names: Vec<String>,
    send: F,
) -> Arc<PortResult<R>>
where
    R: Send + Sync + 'static,
    F: FnOnce(Vec<String>) -> Fut,
    Fut: Future<Output = PortResult<R>>,
{
    match coalescer {
        Some(c) => c.read(group, &names, send).await,
        None => Arc::new(send(names).await),
    }
}

/// A shared response as the caller's own: the error cloned, the value borrowed.
pub(super) fn shared<R>(result: &PortResult<R>) -> PortResult<&R> {
    result.as_ref().map_err(Clone::clone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// A call that records the names it was sent and answers them back.
    async fn echo(calls: &AtomicU32, names: Vec<String>) -> PortResult<Vec<String>> {
        calls.fetch_add(1, Ordering::Relaxed);
        Ok(names)
    }

    #[tokio::test(start_paused = true)]
    async fn reads_at_the_same_moment_are_one_call_up_to_the_limit() {
        let c = Coalescer::new(4);
        let calls = AtomicU32::new(0);
        let names: Vec<Vec<String>> = (0..5)
            .map(|i| vec![format!("a{i}"), format!("b{i}")])
            .collect();
        let results = futures_util::future::join_all(
            names
                .iter()
                .map(|n| c.read("cluster", n, |all| echo(&calls, all))),
        )
        .await;
        // Ten names, four a call: three calls, each read's names in its answer.
        assert_eq!(calls.load(Ordering::Relaxed), 3);
        for (n, r) in names.iter().zip(&results) {
            let got = shared(r).unwrap();
            assert!(n.iter().all(|x| got.contains(x)), "{n:?} not in {got:?}");
        }
        // Another group never joins: its own call.
        let other = c.read("other", &names[0], |all| echo(&calls, all)).await;
        assert_eq!(shared(&other).unwrap(), &names[0]);
        assert_eq!(calls.load(Ordering::Relaxed), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_reaches_every_read_of_the_batch_and_a_dropped_leader_fails_its_followers() {
        let c: Coalescer<Vec<String>> = Coalescer::new(10);
        let a = vec!["a".to_string()];
        let b = vec!["b".to_string()];
        let failing = |_| async { Err(PortError::Throttled("slow down".into())) };
        let (x, y) = tokio::join!(c.read("g", &a, failing), c.read("g", &b, failing));
        assert_eq!(
            shared(&x).unwrap_err(),
            PortError::Throttled("slow down".into())
        );
        assert_eq!(
            shared(&y).unwrap_err(),
            PortError::Throttled("slow down".into())
        );

        // The leader's read is dropped (its deadline) before it sends.
        let calls = AtomicU32::new(0);
        let follower = async {
            tokio::task::yield_now().await;
            c.read("g", &b, |all| echo(&calls, all)).await
        };
        let leader = tokio::time::timeout(
            Duration::from_millis(1),
            c.read("g", &a, |all| echo(&calls, all)),
        );
        let (led, followed) = tokio::join!(leader, follower);
        assert!(led.is_err(), "the leader timed out");
        assert!(matches!(
            shared(&followed).unwrap_err(),
            PortError::Transient(_)
        ));
        // The next read opens a fresh batch rather than joining the dead one.
        let again = c.read("g", &b, |all| echo(&calls, all)).await;
        assert_eq!(shared(&again).unwrap(), &b);
    }
}
