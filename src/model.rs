//! cutover's domain model: slots, weights, task specs, releases, their statuses and the
//! lock — the values the engine reasons about and every adapter (AWS or simulated)
//! speaks. Nothing here talks to the outside world.

use std::fmt;

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
    /// What ECS reports about the current deployment that waiting will not fix, newest
    /// first: tasks of the current task definition that failed to start or whose essential
    /// container exited, and tasks it was unable to place. With a FAILED rollout, these
    /// make a rollout terminal at once (`engine::ready`).
    #[serde(default)]
    pub failures: Vec<String>,
    /// Where the service registers its tasks (ECS `loadBalancers`): read with the service,
    /// so checking the wiring costs no call.
    #[serde(default)]
    pub load_balancers: Vec<LoadBalancer>,
}

/// One target group an ECS service registers a container port of its tasks in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancer {
    pub target_group: String,
    pub container: String,
    pub port: u16,
}

impl SlotState {
    /// A slot with no service behind it (a worker's green).
    pub fn absent() -> Self {
        SlotState {
            task_definition: None,
            desired: 0,
            running: 0,
            pending: 0,
            rollout: Rollout::Completed,
            events: Vec::new(),
            stopped_reasons: Vec::new(),
            failures: Vec::new(),
            load_balancers: Vec::new(),
        }
    }

    pub fn version(&self) -> Option<&Version> {
        self.task_definition.as_ref().map(|td| &td.spec.version)
    }
}

/// Whether a service event says ECS could not place a task (the AWS adapter and the
/// simulation both read events with this).
pub fn is_placement_failure(event: &str) -> bool {
    event.contains("was unable to place a task")
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
    /// When it was first recorded Promoted: kept when later statuses replace that one (a
    /// rollback away from it, a `--to` redeploy), so the history still knows it was good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_at: Option<Millis>,
    /// Every status it went through, oldest first (issue 18.4); the history module bounds
    /// it. Empty in entries written before it was kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<Transition>,
    /// Its last rollback rehearsal, when one ran (issue 18.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rehearsal: Option<Rehearsal>,
    /// The services it was staged with as one train (sorted, itself included); empty for a
    /// single service. A promote of fewer refuses it: a train moves whole (issue 17.3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub train: Vec<String>,
    /// The id of the train run that staged it (8 hex digits), shared by every member's
    /// entry of that run: two stagings of one train and tag are told apart, and `status`
    /// of any member names its train. Empty for a single service.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub train_id: String,
}

/// A rollback rehearsal after a bake: production back to the previous release and forward
/// again, each direction read back and probed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rehearsal {
    /// The release production went back to.
    pub to: Version,
    pub back_ms: Millis,
    pub forward_ms: Millis,
    pub at: Millis,
}

/// One status change of a release and when it happened. Stored as `"Status@seconds"`
/// (e.g. `"Shifting(10%)@1767225600"`): one SSM parameter holds the whole history, so
/// every byte counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub status: Status,
    pub at: Millis,
}

impl Serialize for Transition {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}@{}", self.status, self.at / 1000))
    }
}

impl<'de> Deserialize<'de> for Transition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let parsed = text.split_once('@').and_then(|(status, secs)| {
            Some(Transition {
                status: status.parse().ok()?,
                at: secs.parse::<Millis>().ok()? * 1000,
            })
        });
        parsed.ok_or_else(|| serde::de::Error::custom(format!("not a transition: {text:?}")))
    }
}

impl std::str::FromStr for Status {
    type Err = ();

    /// The inverse of `Display`.
    fn from_str(s: &str) -> Result<Self, ()> {
        if let Some(p) = s
            .strip_prefix("Shifting(")
            .and_then(|r| r.strip_suffix("%)"))
        {
            return p.parse().map(Status::Shifting).map_err(|_| ());
        }
        Ok(match s {
            "Pending" => Status::Pending,
            "Building" => Status::Building,
            "Pushing" => Status::Pushing,
            "Staging" => Status::Staging,
            "Validating" => Status::Validating,
            "AwaitingApproval" => Status::AwaitingApproval,
            "Baking" => Status::Baking,
            "Promoted" => Status::Promoted,
            "RollingBack" => Status::RollingBack,
            "RolledBack" => Status::RolledBack,
            "RollbackFailed" => Status::RollbackFailed,
            "Failed" => Status::Failed,
            _ => return Err(()),
        })
    }
}

impl Release {
    /// One entry per release: a release is one version on one task definition.
    pub fn same_release(&self, other: &Release) -> bool {
        self.version == other.version && self.task_definition == other.task_definition
    }

    /// It once passed its bake with all production traffic: what `rollback --to` may
    /// return to. (Entries written before `promoted_at` existed count while Promoted.)
    pub fn was_promoted(&self) -> bool {
        self.promoted_at.is_some() || self.status == Status::Promoted
    }
}

/// One HTTP check against the test listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRequest {
    pub path: String,
    pub expect_status: u16,
    pub body_contains: Option<String>,
    pub timeout: std::time::Duration,
    /// The release that must have answered (invariant 12), when the probe asks for it.
    pub expect_version: Option<VersionEvidence>,
}

/// Where a probe response must show the version being validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEvidence {
    pub version: Version,
    /// A response header; None: the body.
    pub header: Option<String>,
}

impl VersionEvidence {
    /// Whether `text` names the version, as `v1.2.3` or `1.2.3`, and not a longer one
    /// that starts the same (`1.2.30`, `1.2.3-rc.1` when `1.2.3` is asked).
    pub fn found_in(&self, text: &str) -> bool {
        let bare = self.version.to_string();
        let bare = bare.trim_start_matches('v');
        text.match_indices(bare).any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let after = text[at + bare.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_digit() || c == '.')
                && !after.is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
        })
    }
}

/// Result of one probe attempt or one validation command run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckResult {
    Pass,
    Fail(String),
}

/// A status change with what a non-engineer needs to read it (seed 001).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusEvent {
    pub status: Status,
    pub version: Option<Version>,
    pub slot: Option<Slot>,
    pub detail: String,
}

/// A duration in milliseconds as people read it: `6.2s`.
pub fn seconds(ms: Millis) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// A rollback rehearsal that passed (issue 18.1): `version`, promoted on `slot`, went back
/// to `rehearsal.to` and forward again. For the job summary and the GitHub deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RehearsalEvent {
    pub version: Version,
    pub slot: Slot,
    pub rehearsal: Rehearsal,
}

impl RehearsalEvent {
    /// One line, both directions with their durations.
    pub fn describe(&self) -> String {
        let secs = seconds;
        format!(
            "rollback rehearsal passed: back to {} in {}, forward to {} on {} in {}",
            self.rehearsal.to,
            secs(self.rehearsal.back_ms),
            self.version,
            self.slot,
            secs(self.rehearsal.forward_ms)
        )
    }
}

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
