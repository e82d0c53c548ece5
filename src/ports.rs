//! The engine's view of the outside world: small traits that speak cutover's own types.
//! AWS adapters (ECS, ELBv2, ECR, SSM, CloudWatch) and the simulated cloud in `sim`
//! implement them; no SDK type crosses this line.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::version::Version;

/// One of the two slots of a service. Each is one ECS service attached to one target group;
/// adapters map a slot to its service name and target group ARN from the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    Blue,
    Green,
}

impl Slot {
    pub fn other(self) -> Slot {
        match self {
            Slot::Blue => Slot::Green,
            Slot::Green => Slot::Blue,
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Slot::Blue => "blue",
            Slot::Green => "green",
        })
    }
}

/// Production forward weights in percent, per slot. The ELBv2 adapter reads them from the
/// listener's default action (or the rule) as target group → weight and maps them back
/// to slots; both target groups always stay in the action, the idle one at 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weights {
    pub blue: u8,
    pub green: u8,
}

impl Weights {
    /// All production traffic on `slot`.
    pub fn all_on(slot: Slot) -> Self {
        Self::split(slot, 100)
    }

    /// `percent` on `slot`, the rest on the other one.
    pub fn split(slot: Slot, percent: u8) -> Self {
        let percent = percent.min(100);
        match slot {
            Slot::Blue => Self {
                blue: percent,
                green: 100 - percent,
            },
            Slot::Green => Self {
                blue: 100 - percent,
                green: percent,
            },
        }
    }

    pub fn of(self, slot: Slot) -> u8 {
        match slot {
            Slot::Blue => self.blue,
            Slot::Green => self.green,
        }
    }

    /// The slot carrying all production traffic, if exactly one does (invariant 2).
    pub fn live(self) -> Option<Slot> {
        match (self.blue, self.green) {
            (100, 0) => Some(Slot::Blue),
            (0, 100) => Some(Slot::Green),
            _ => None,
        }
    }
}

impl fmt::Display for Weights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "blue {}% / green {}%", self.blue, self.green)
    }
}

/// An image pinned by digest (`sha256:…`); releases never deploy a mutable tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Digest(pub String);

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What to run on a slot: the rendered task definition for one version, by digest.
/// `content` is the rendered JSON; adapters register it and tag it with the version. It can
/// hold container environment values, so it is never serialized or debug-printed
/// (invariant 10). Two specs are the same when version, digest and the content's
/// fingerprint match: AWS does not give the content back as written, so a spec read from
/// a slot carries the fingerprint cutover tagged it with and may have empty `content`.
#[derive(Clone, Serialize, Deserialize)]
pub struct TaskSpec {
    pub version: Version,
    pub digest: Digest,
    #[serde(skip_serializing, default)]
    pub content: String,
    pub fingerprint: String,
}

impl TaskSpec {
    pub fn new(version: Version, digest: Digest, content: String) -> Self {
        let fingerprint = fingerprint(&content);
        Self {
            version,
            digest,
            content,
            fingerprint,
        }
    }
}

impl PartialEq for TaskSpec {
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version
            && self.digest == other.digest
            && self.fingerprint == other.fingerprint
    }
}

impl Eq for TaskSpec {}

/// The fingerprint of task-definition content: sha256 of its canonical JSON (keys sorted,
/// no whitespace), so formatting and key order do not count as changes.
pub fn fingerprint(content: &str) -> String {
    use sha2::{Digest as _, Sha256};
    let canonical = match serde_json::from_str::<serde_json::Value>(content) {
        Ok(v) => canonical_json(&v),
        Err(_) => content.to_string(),
    };
    Sha256::digest(canonical.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn canonical_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        serde_json::Value::from(k.as_str()),
                        canonical_json(&m[k.as_str()])
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        serde_json::Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical_json).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

impl fmt::Debug for TaskSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskSpec")
            .field("version", &self.version)
            .field("digest", &self.digest)
            .field("content", &format_args!("<{} bytes>", self.content.len()))
            .finish()
    }
}

/// A registered task definition (an ECS `family:revision` ARN) and what it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskDefinition {
    pub id: String,
    pub spec: TaskSpec,
}

/// The ECS deployment rollout state of a slot's primary deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rollout {
    InProgress,
    Completed,
    Failed,
}

/// What a slot's ECS service looks like right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotState {
    pub task_definition: Option<TaskDefinition>,
    pub desired: u32,
    pub running: u32,
    pub pending: u32,
    pub rollout: Rollout,
    /// Most recent service events, newest first.
    pub events: Vec<String>,
    /// Why recently stopped tasks stopped (`stoppedReason`), newest first.
    pub stopped_reasons: Vec<String>,
}

impl SlotState {
    pub fn version(&self) -> Option<&Version> {
        self.task_definition.as_ref().map(|td| &td.spec.version)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TargetState {
    Initial,
    Healthy,
    Unhealthy,
    Draining,
    Unused,
}

/// One registered target of a slot's target group, with the ELB's reason when not healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetHealth {
    pub id: String,
    pub state: TargetState,
    pub reason: Option<String>,
}

/// How a target group health-checks its targets: a new target turns healthy after
/// `interval × healthy_threshold` (DescribeTargetGroups).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheckTiming {
    pub interval: std::time::Duration,
    pub healthy_threshold: u32,
}

/// Alarm state as CloudWatch reports it; `InsufficientData` is not ALARM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

/// Milliseconds since the Unix epoch: lock expiry and history times must be comparable
/// across runners, so they use wall time, not a process-local instant.
pub type Millis = u64;

/// The deploy lock as stored (one SSM parameter created with overwrite=false).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// Who holds it: a run URL or `user@host`.
    pub owner: String,
    /// Fencing token: unique per acquisition; a holder that finds another token lost the lock.
    pub token: String,
    pub acquired_at: Millis,
    pub expires_at: Millis,
}

/// Lifecycle statuses, exactly as in DESIGN.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Pending,
    Building,
    Pushing,
    Staging,
    Validating,
    AwaitingApproval,
    Shifting(u8),
    Baking,
    Promoted,
    RollingBack,
    RolledBack,
    RollbackFailed,
    Failed,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Shifting(p) => write!(f, "Shifting({p}%)"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// One release in the history (one JSON SSM parameter holding the last N).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub version: Version,
    pub digest: Digest,
    pub task_definition: String,
    pub slot: Slot,
    pub by: String,
    pub at: Millis,
    pub status: Status,
    /// The task definition content's fingerprint (see [`TaskSpec`]). With the version and
    /// digest it is what the task definition was tagged with, so an adapter can know what a
    /// task definition ARN holds (ARNs are immutable) without describing it. Empty in
    /// entries written before it was recorded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fingerprint: String,
}

impl Release {
    /// Entries are updated in place: a release is one version on one task definition.
    pub fn same_release(&self, other: &Release) -> bool {
        self.version == other.version && self.task_definition == other.task_definition
    }
}

/// Errors the engine branches on. Adapters map SDK errors into these and keep the remote's
/// message (with the AWS request id) in the string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("throttled: {0}")]
    Throttled(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("access denied: {0}; check that the deploy role allows this call")]
    AccessDenied(String),
    /// The write may or may not have applied (timeout, 5xx after sending): re-read to know.
    #[error("write outcome unknown: {0}")]
    Ambiguous(String),
    #[error("temporary failure: {0}")]
    Transient(String),
}

impl PortError {
    /// Worth another attempt: the same call may succeed later. Every engine write is
    /// idempotent (set to a value, upsert by key), so an ambiguous write is retried too.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            PortError::Throttled(_) | PortError::Transient(_) | PortError::Ambiguous(_)
        )
    }
}

pub type PortResult<T> = Result<T, PortError>;

/// ECS: the two slots' services and task definitions.
pub trait Compute: Sync {
    fn read_slot(&self, slot: Slot) -> impl Future<Output = PortResult<SlotState>> + Send;
    /// Both slots (blue, green), as one call where the cloud allows it (ECS
    /// DescribeServices takes both services).
    fn slot_services(&self) -> impl Future<Output = PortResult<(SlotState, SlotState)>> + Send {
        async {
            Ok((
                self.read_slot(Slot::Blue).await?,
                self.read_slot(Slot::Green).await?,
            ))
        }
    }
    /// Register the spec, or return an existing identical task definition.
    fn register_task_definition(
        &self,
        spec: &TaskSpec,
    ) -> impl Future<Output = PortResult<TaskDefinition>> + Send;
    /// UpdateService: task definition and desired count in one call.
    fn update_slot(
        &self,
        slot: Slot,
        task_definition: &str,
        desired: u32,
    ) -> impl Future<Output = PortResult<()>> + Send;
}

/// ELBv2: production weights, the test listener, target health.
pub trait Traffic: Sync {
    fn production_weights(&self) -> impl Future<Output = PortResult<Weights>> + Send;
    /// The production weights and where the test listener forwards, as one call where the
    /// cloud allows it (DescribeListeners takes both listeners). Never a read-back: a
    /// read-back is [`Traffic::production_weights`].
    fn weights_and_test_listener(
        &self,
    ) -> impl Future<Output = PortResult<(Weights, Option<Slot>)>> + Send {
        async {
            Ok((
                self.production_weights().await?,
                self.test_listener().await?,
            ))
        }
    }
    fn set_production_weights(
        &self,
        weights: Weights,
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// Which slot the test listener forwards to.
    fn test_listener(&self) -> impl Future<Output = PortResult<Option<Slot>>> + Send;
    fn point_test_listener(&self, slot: Slot) -> impl Future<Output = PortResult<()>> + Send;
    fn target_health(
        &self,
        slot: Slot,
    ) -> impl Future<Output = PortResult<Vec<TargetHealth>>> + Send;
    fn health_check_timing(
        &self,
        slot: Slot,
    ) -> impl Future<Output = PortResult<HealthCheckTiming>> + Send;
}

/// ECR.
pub trait Images {
    fn digest_for_tag(&self, tag: &str) -> impl Future<Output = PortResult<Option<Digest>>> + Send;
    fn exists(&self, digest: &Digest) -> impl Future<Output = PortResult<bool>> + Send;
}

/// SSM: history and lock.
pub trait Store: Sync {
    fn history(&self) -> impl Future<Output = PortResult<Vec<Release>>> + Send;
    /// The history and the lock, as one call where the cloud allows it (SSM GetParameters).
    fn history_and_lock(
        &self,
    ) -> impl Future<Output = PortResult<(Vec<Release>, Option<Lock>)>> + Send {
        async { Ok((self.history().await?, self.read_lock().await?)) }
    }
    /// Upsert `release` (by version + task definition), newest last, keeping the last `cap`.
    fn record(&self, release: &Release, cap: usize) -> impl Future<Output = PortResult<()>> + Send;
    /// Create the lock only if absent (PutParameter overwrite=false); `Conflict` when held.
    fn create_lock(&self, lock: &Lock) -> impl Future<Output = PortResult<()>> + Send;
    fn read_lock(&self) -> impl Future<Output = PortResult<Option<Lock>>> + Send;
    /// Extend the holder's lease (overwrite=true; only the holder calls this, before expiry).
    fn renew_lock(&self, lock: &Lock) -> impl Future<Output = PortResult<()>> + Send;
    /// Delete the lock (release by its holder, or break a stale one).
    fn delete_lock(&self) -> impl Future<Output = PortResult<()>> + Send;
}

/// CloudWatch alarms.
pub trait Signals {
    fn alarm_states(
        &self,
        names: &[String],
    ) -> impl Future<Output = PortResult<BTreeMap<String, AlarmState>>> + Send;
}

/// One HTTP check against the test listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRequest {
    pub path: String,
    pub expect_status: u16,
    pub body_contains: Option<String>,
    pub timeout: std::time::Duration,
}

/// Result of one probe attempt or one validation command run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckResult {
    Pass,
    Fail(String),
}

/// Probes and the custom validation command.
pub trait Prober {
    fn probe(&self, request: &ProbeRequest) -> impl Future<Output = CheckResult> + Send;
    /// Run the validation command with the version and test URL in its environment.
    fn run_command(
        &self,
        argv: &[String],
        version: &Version,
        timeout: std::time::Duration,
    ) -> impl Future<Output = CheckResult> + Send;
}

/// Wall time for lock expiry and history (sleeping uses tokio's clock, paused in tests).
pub trait Clock {
    fn now(&self) -> Millis;
}

/// A status change with what a non-engineer needs to read it (seed 001).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusEvent {
    pub status: Status,
    pub version: Option<Version>,
    pub slot: Option<Slot>,
    pub detail: String,
}

/// Where status changes and notices go: console, JSON, GitHub, Slack. Never fails the run.
pub trait Reporter {
    fn status(&self, event: &StatusEvent);
    /// Something an operator must see that is not a status change (e.g. a stale lock broken).
    fn notice(&self, message: &str);
}

/// A shared reporter (the action keeps a handle to read its timeline afterwards).
impl<R: Reporter + ?Sized> Reporter for std::sync::Arc<R> {
    fn status(&self, event: &StatusEvent) {
        (**self).status(event);
    }

    fn notice(&self, message: &str) {
        (**self).notice(message);
    }
}

/// Everything the engine needs from the cloud, as one bundle; an adapter struct (or the
/// simulated cloud) implements each small trait.
pub trait Cloud: Compute + Traffic + Images + Store + Signals + Prober + Clock + Sync {}

impl<T: Compute + Traffic + Images + Store + Signals + Prober + Clock + Sync> Cloud for T {}

#[cfg(test)]
mod fingerprint_tests {
    use super::fingerprint;

    #[test]
    fn fingerprint_ignores_formatting_and_key_order() {
        let a = fingerprint(r#"{"family": "web", "cpu": "256"}"#);
        let b = fingerprint("{\n  \"cpu\":\"256\",\n  \"family\":\"web\"\n}");
        assert_eq!(a, b);
        assert_ne!(a, fingerprint(r#"{"family": "web", "cpu": "512"}"#));
        assert_eq!(a.len(), 64);
    }
}
