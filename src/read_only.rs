//! The cloud with every write refused: `plan` and `--dry-run` run the engine's reads over
//! it, so a dry run cannot change anything even by mistake, whatever cloud is behind it.

use std::collections::BTreeMap;

use crate::ports::*;
use crate::version::Version;

/// A cloud whose writes are refused (and counted).
pub struct ReadOnly<'a, C> {
    pub inner: &'a C,
    pub refused: std::sync::atomic::AtomicUsize,
}

impl<'a, C> ReadOnly<'a, C> {
    pub fn new(inner: &'a C) -> Self {
        Self {
            inner,
            refused: Default::default(),
        }
    }

    fn refuse<T>(&self, call: &str) -> PortResult<T> {
        self.refused
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Err(PortError::Conflict(format!("dry run: {call} not made")))
    }
}

impl<C: Cloud> Compute for ReadOnly<'_, C> {
    async fn read_slot(&self, slot: Slot) -> PortResult<SlotState> {
        self.inner.read_slot(slot).await
    }
    async fn slot_services(&self) -> PortResult<(SlotState, SlotState)> {
        self.inner.slot_services().await
    }
    async fn register_task_definition(&self, _: &TaskSpec) -> PortResult<TaskDefinition> {
        self.refuse("RegisterTaskDefinition")
    }
    async fn update_slot(&self, _: Slot, _: &str, _: u32) -> PortResult<()> {
        self.refuse("UpdateService")
    }
}

impl<C: Cloud> Traffic for ReadOnly<'_, C> {
    async fn production_weights(&self) -> PortResult<Weights> {
        self.inner.production_weights().await
    }
    async fn weights_and_test_listener(&self) -> PortResult<(Weights, Option<Slot>)> {
        self.inner.weights_and_test_listener().await
    }
    async fn set_production_weights(&self, _: Weights) -> PortResult<()> {
        self.refuse("ModifyListener")
    }
    async fn test_listener(&self) -> PortResult<Option<Slot>> {
        self.inner.test_listener().await
    }
    async fn point_test_listener(&self, _: Slot) -> PortResult<()> {
        self.refuse("ModifyListener (test)")
    }
    async fn target_health(&self, slot: Slot) -> PortResult<Vec<TargetHealth>> {
        self.inner.target_health(slot).await
    }
    async fn health_check_timing(&self, slot: Slot) -> PortResult<HealthCheckTiming> {
        self.inner.health_check_timing(slot).await
    }
}

impl<C: Cloud> Images for ReadOnly<'_, C> {
    async fn digest_for_tag(&self, tag: &str) -> PortResult<Option<Digest>> {
        self.inner.digest_for_tag(tag).await
    }
    async fn exists(&self, digest: &Digest) -> PortResult<bool> {
        self.inner.exists(digest).await
    }
}

impl<C: Cloud> Store for ReadOnly<'_, C> {
    async fn history(&self) -> PortResult<Vec<Release>> {
        self.inner.history().await
    }
    async fn history_and_lock(&self) -> PortResult<(Vec<Release>, Option<Lock>)> {
        self.inner.history_and_lock().await
    }
    async fn record(&self, _: &Release, _: usize) -> PortResult<()> {
        self.refuse("PutParameter (history)")
    }
    async fn create_lock(&self, _: &Lock) -> PortResult<()> {
        self.refuse("PutParameter (lock)")
    }
    async fn read_lock(&self) -> PortResult<Option<Lock>> {
        self.inner.read_lock().await
    }
    async fn renew_lock(&self, _: &Lock) -> PortResult<()> {
        self.refuse("PutParameter (lock)")
    }
    async fn delete_lock(&self) -> PortResult<()> {
        self.refuse("DeleteParameter (lock)")
    }
}

impl<C: Cloud> Signals for ReadOnly<'_, C> {
    async fn alarm_states(&self, names: &[String]) -> PortResult<BTreeMap<String, AlarmState>> {
        self.inner.alarm_states(names).await
    }
}

impl<C: Cloud> Prober for ReadOnly<'_, C> {
    async fn probe(&self, _: &ProbeRequest) -> CheckResult {
        CheckResult::Fail("dry run: no probe sent".into())
    }
    async fn run_command(&self, _: &[String], _: &Version, _: std::time::Duration) -> CheckResult {
        CheckResult::Fail("dry run: validation command not run".into())
    }
}

impl<C: Cloud> Clock for ReadOnly<'_, C> {
    fn now(&self) -> Millis {
        self.inner.now()
    }
    fn token(&self) -> crate::ports::PortResult<String> {
        self.inner.token()
    }

    fn random(&self) -> u64 {
        self.inner.random()
    }
}
