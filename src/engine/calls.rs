//! How the engine talks to the ports: every call has a timeout, retryable errors are
//! retried by class with full jitter and a bounded total, every write is fenced by the lease, and every wait is adaptive
//! (fast right after a change, backing off) and has a deadline (invariant 8).

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use super::{Engine, EngineError, Lease};
use crate::ports::{Cloud, PortError, PortResult};

/// A single AWS call that has not answered by now is treated as an ambiguous outcome.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const ATTEMPTS: u32 = 8;
/// The most a call's retries may pause in all, whatever the class: past it the error is
/// the answer (a wait's own deadline decides what happens next).
pub(crate) const RETRY_BUDGET: Duration = Duration::from_secs(45);

/// How one class of error is retried: pauses drawn uniformly from zero to
/// `min(cap, first * 2^n)` (full jitter, as in the AWS Architecture Blog's "Exponential
/// Backoff and Jitter"), so runners failing together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryClass {
    pub(crate) first: Duration,
    pub(crate) cap: Duration,
}

/// The class of a retryable error; `None` for one that a retry cannot fix. Throttling
/// (the account's rate, SSM `TooManyUpdates`) backs off longer than a 5xx, a timeout or a
/// reset connection.
pub(crate) fn retry_class(err: &PortError) -> Option<RetryClass> {
    match err {
        PortError::Throttled(_) => Some(RetryClass {
            first: Duration::from_secs(1),
            cap: Duration::from_secs(20),
        }),
        PortError::Transient(_) | PortError::Ambiguous(_) => Some(RetryClass {
            first: Duration::from_millis(250),
            cap: Duration::from_secs(8),
        }),
        _ => None,
    }
}

impl RetryClass {
    /// The pause before retry `n` (1-based), from a uniform random number.
    pub(crate) fn pause(self, n: u32, random: u64) -> Duration {
        let ceiling = self
            .first
            .saturating_mul(1 << (n - 1).min(16))
            .min(self.cap);
        let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(random % (ms + 1))
    }
}

/// Fires once to ask the engine to stop at its next safe point.
#[derive(Debug, Clone)]
pub struct Cancel(Option<watch::Receiver<bool>>);

/// The sending side of [`Cancel`].
#[derive(Debug)]
pub struct CancelHandle(watch::Sender<bool>);

impl CancelHandle {
    pub fn cancel(&self) {
        let _ = self.0.send(true);
    }
}

impl Cancel {
    pub fn never() -> Self {
        Self(None)
    }

    pub fn new() -> (CancelHandle, Cancel) {
        let (tx, rx) = watch::channel(false);
        (CancelHandle(tx), Cancel(Some(rx)))
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.as_ref().is_some_and(|rx| *rx.borrow())
    }

    /// Resolves once a cancel was requested (never, for [`Cancel::never`]).
    pub async fn cancelled(&self) {
        match &self.0 {
            Some(rx) => {
                let mut rx = rx.clone();
                if rx.wait_for(|c| *c).await.is_err() {
                    // Sender gone without cancelling: never cancels.
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending().await,
        }
    }
}

/// One observation of a condition being waited for.
pub(crate) enum Progress<T> {
    Done(T),
    /// Not yet. `state` describes the real state for the deadline report; `hint` is when
    /// the condition can first become true, if the observation tells (e.g. health checks).
    NotYet {
        state: String,
        hint: Option<Duration>,
    },
}

/// How waits poll. Adaptive is the default; Fixed exists to compare against a plain poller
/// (what `aws ecs wait services-stable` does every 15 s) in benches/engine_lag.rs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polling {
    Adaptive,
    Fixed(Duration),
}

/// The adaptive poll interval: quick after a change, backing off while nothing moves,
/// and close polling only when the observation says the condition can now turn true.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    polling: Polling,
    next: Duration,
}

pub(crate) const POLL_FIRST: Duration = Duration::from_millis(500);
pub(crate) const POLL_MAX: Duration = Duration::from_secs(8);
/// Polling interval once the condition can turn true at any moment.
pub(crate) const POLL_CLOSE: Duration = Duration::from_millis(1200);

impl Backoff {
    pub(crate) fn new(polling: Polling) -> Self {
        Self {
            polling,
            next: POLL_FIRST,
        }
    }

    /// The pause before the next poll; `hint` is how long until the condition can first
    /// hold, when the observation tells (e.g. health checks).
    pub(crate) fn pause(&mut self, hint: Option<Duration>) -> Duration {
        if let Polling::Fixed(every) = self.polling {
            return every;
        }
        match hint {
            Some(h) if h > POLL_CLOSE => h,
            Some(_) => POLL_CLOSE,
            None => {
                let pause = self.next;
                self.next = (self.next * 3 / 2).min(POLL_MAX);
                pause
            }
        }
    }
}

impl<C: Cloud> Engine<'_, C> {
    /// A read, retried while the error is retryable.
    pub(crate) async fn read<T, F>(
        &self,
        what: &str,
        call: impl Fn() -> F,
    ) -> Result<T, EngineError>
    where
        F: Future<Output = PortResult<T>>,
    {
        self.retrying(what, async || call().await.map_err(Stop::Port))
            .await
    }

    /// A write: every attempt first checks the lease is still ours (fencing), then calls.
    /// Writes are idempotent (set to a value, upsert by key), so an ambiguous one is retried.
    pub(crate) async fn write<T, F>(
        &self,
        lease: &Lease,
        what: &str,
        call: impl Fn() -> F,
    ) -> Result<T, EngineError>
    where
        F: Future<Output = PortResult<T>>,
    {
        self.retrying(what, async || {
            lease.guard(self).await.map_err(Stop::Engine)?;
            call().await.map_err(Stop::Port)
        })
        .await
    }

    /// A fenced write tried once, for writes whose retry must wait for a read-back.
    pub(crate) async fn write_once<T, F>(
        &self,
        lease: &Lease,
        what: &str,
        call: impl Fn() -> F,
    ) -> Result<T, EngineError>
    where
        F: Future<Output = PortResult<T>>,
    {
        lease.guard(self).await?;
        let result = match tokio::time::timeout(CALL_TIMEOUT, call()).await {
            Ok(r) => r,
            Err(_) => Err(timed_out()),
        };
        result.map_err(|source| EngineError::Port {
            what: what.to_string(),
            source,
        })
    }

    async fn retrying<T>(
        &self,
        what: &str,
        call: impl AsyncFn() -> Result<T, Stop>,
    ) -> Result<T, EngineError> {
        let mut attempt = 1;
        let mut paused = Duration::ZERO;
        loop {
            let err = match tokio::time::timeout(CALL_TIMEOUT, call()).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(Stop::Engine(e))) => return Err(e),
                Ok(Err(Stop::Port(e))) => e,
                Err(_) => timed_out(),
            };
            let class = retry_class(&err).filter(|_| attempt < ATTEMPTS);
            let Some(class) = class.filter(|_| paused < RETRY_BUDGET) else {
                return Err(EngineError::Port {
                    what: what.to_string(),
                    source: err,
                });
            };
            let pause = class
                .pause(attempt, self.cloud.random())
                .min(RETRY_BUDGET - paused);
            tracing::debug!(what, error = %err, attempt, ?pause, "retrying");
            self.pause(pause).await?;
            paused += pause;
            attempt += 1;
        }
    }

    /// Sleep, unless cancelled or the lease is lost first.
    pub(crate) async fn pause(&self, d: Duration) -> Result<(), EngineError> {
        tokio::select! {
            () = tokio::time::sleep(d) => Ok(()),
            () = self.cancel.cancelled() => Err(EngineError::Cancelled {
                detail: "cancel requested".into(),
            }),
            lost = self.lost.lost() => Err(lost),
        }
    }

    pub(crate) fn check_cancel(&self) -> Result<(), EngineError> {
        if self.cancel.is_cancelled() {
            return Err(EngineError::Cancelled {
                detail: "cancel requested".into(),
            });
        }
        Ok(())
    }

    /// Poll `check` until it is done or `deadline` passes; on the deadline the error
    /// carries the last observed real state (invariant 8).
    pub(crate) async fn wait_until<T>(
        &self,
        what: &str,
        deadline: Duration,
        mut check: impl AsyncFnMut() -> Result<Progress<T>, EngineError>,
    ) -> Result<T, EngineError> {
        let end = tokio::time::Instant::now() + deadline;
        let mut backoff = Backoff::new(self.polling);
        loop {
            let (state, hint) = match check().await? {
                Progress::Done(v) => return Ok(v),
                Progress::NotYet { state, hint } => (state, hint),
            };
            let now = tokio::time::Instant::now();
            if now >= end {
                return Err(EngineError::failed(
                    what,
                    format!(
                        "timed out after {}s; real state: {state}",
                        deadline.as_secs()
                    ),
                ));
            }
            self.pause(backoff.pause(hint).min(end - now)).await?;
        }
    }
}

fn timed_out() -> PortError {
    PortError::Ambiguous(format!("no answer within {}s", CALL_TIMEOUT.as_secs()))
}

/// Why one attempt ended: a port error (maybe retried) or an engine decision (never retried).
enum Stop {
    Port(PortError),
    Engine(EngineError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_jitter_pauses_stay_under_the_class_ceiling_and_spread_out() {
        let transient = retry_class(&PortError::Transient("5xx".into())).unwrap();
        let throttled = retry_class(&PortError::Throttled("slow down".into())).unwrap();
        assert!(throttled.first > transient.first && throttled.cap > transient.cap);
        assert_eq!(retry_class(&PortError::Conflict("no".into())), None);
        assert_eq!(
            retry_class(&PortError::CredentialsExpired("x".into())),
            None
        );
        let mut seen = std::collections::BTreeSet::new();
        for random in (0..200u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)) {
            for n in 1..ATTEMPTS {
                let pause = transient.pause(n, random);
                assert!(pause <= transient.cap, "{pause:?}");
                assert!(pause <= transient.first * 2u32.pow(n - 1), "{n}: {pause:?}");
                seen.insert(pause);
            }
        }
        assert!(seen.len() > 100, "jittered pauses differ: {}", seen.len());
        // Every pause at its ceiling would outlast the budget: the budget bounds the total.
        let ceilings: Duration = (1..ATTEMPTS)
            .map(|n| (throttled.first * 2u32.pow(n - 1)).min(throttled.cap))
            .sum();
        assert!(ceilings > RETRY_BUDGET, "{ceilings:?}");
    }
}
