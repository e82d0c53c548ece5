//! The settings files: `environment.toml` and `service.toml`. Strict (`deny_unknown_fields`);
//! the JSON schemas in `schema/` are generated from these types and checked for staleness.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::Duration;
pub use super::strategy::{Strategy, StrategyKind, UnknownStrategy};

/// `deploy/environments/<env>/environment.toml`: where an environment lives and its rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSettings {
    /// AWS region, e.g. `eu-west-1`.
    pub region: String,
    /// The AWS account this environment must run in; cutover refuses other accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// AWS credential profile. Default: a profile named after the environment when one
    /// exists, else the standard credential chain (environment, SSO, web identity…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// SSM parameter path under which history and lock live: `<prefix>/<env>/<service>/…`.
    #[serde(default = "default_ssm_prefix")]
    pub ssm_prefix: String,
    /// Registry host to push to and pull from instead of the one ECR names (e.g. a local
    /// registry for the sandbox, or a custom DNS name for ECR over PrivateLink). The ECR
    /// authorization token is still used against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// Public URL of the environment, shown in GitHub deployments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default)]
    pub approval: ApprovalSettings,
    #[serde(default)]
    pub versions: VersionRules,
}

/// Whether a staged release waits for an explicit `promote`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSettings {
    /// When true (the default, the safe side), `deploy` stops at AwaitingApproval and a
    /// later `promote --tag <version>` (e.g. a job behind a GitHub environment with
    /// required reviewers) shifts traffic.
    #[serde(default = "yes")]
    pub required: bool,
}

impl Default for ApprovalSettings {
    fn default() -> Self {
        Self { required: true }
    }
}

/// Which tags may deploy to an environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionRules {
    /// Allow prerelease tags such as v1.2.0-rc.1. Default: refused in an environment named
    /// `production`, `prod` or `prd`, allowed elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_prerelease: Option<bool>,
    /// Environments where the very same image digest must have been promoted (its bake
    /// passed, and not rolled back since) before `promote` or `deploy` may ship it here,
    /// e.g. `["staging"]`. Each is a folder under environments/; its environment.toml
    /// gives the region and ssm_prefix its history is read from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub require_promoted_in: Vec<String>,
    /// Environments where the very same image digest must also have passed a rollback
    /// rehearsal (`[validation] rehearse_rollback` there) before it may ship here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub require_rehearsal_in: Vec<String>,
}

/// `deploy/services/<service>/service.toml`: everything cutover needs to ship one service.
/// Rendered with the same template context as the task definition before it is parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    pub image: ImageSettings,
    pub ecs: EcsSettings,
    /// Required, except for a worker (`[worker]`), which has neither slots nor traffic.
    #[serde(default, skip_serializing_if = "Slots::is_unset")]
    pub slots: Slots,
    #[serde(default, skip_serializing_if = "TrafficSettings::is_unset")]
    pub traffic: TrafficSettings,
    #[serde(default)]
    pub strategy: Strategy,
    #[serde(default)]
    pub validation: ValidationSettings,
    #[serde(default)]
    pub deadlines: Deadlines,
    #[serde(default)]
    pub history: HistorySettings,
    #[serde(default)]
    pub old_slot: OldSlotSettings,
    #[serde(default)]
    pub cleanup: CleanupSettings,
    /// A worker: a service with no load balancer, shipped as a member of a release train.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<WorkerSettings>,
}

/// `[worker]`: a service with no load balancer (queue consumers, schedulers). It has no
/// slots and no traffic: a train updates its one ECS service in place with ECS's rolling
/// deployment (the deployment circuit breaker on), after every web member validated and
/// before the shift, and rolls it back to its previous task definition when the train fails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    /// ECS service name.
    pub service: String,
}

/// How the image is built and where it is pushed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageSettings {
    /// ECR repository name (not the URI), e.g. `web`.
    pub repository: String,
    /// Build context, relative to the repository root.
    #[serde(default = "default_context")]
    pub context: String,
    /// Dockerfile path, relative to the context.
    #[serde(default = "default_dockerfile")]
    pub dockerfile: String,
    /// Build stage to stop at (`--target`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Target platform, e.g. `linux/amd64` or `linux/arm64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Build arguments (`--build-arg`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub build_args: BTreeMap<String, String>,
    /// Use the image the live slot runs as build cache (`cache-from`).
    #[serde(default = "yes")]
    pub cache_from_previous: bool,
    /// Which Docker builder runs the build. `auto` (the default) picks BuildKit when the
    /// daemon is Linux, speaks API 1.39 or later and has a bridge network (BuildKit's RUN
    /// steps need one), and the classic builder otherwise.
    #[serde(default)]
    pub builder: ImageBuilder,
}

/// The Docker builder for `[image] builder`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImageBuilder {
    /// BuildKit when the daemon can run it, else classic.
    #[default]
    Auto,
    /// BuildKit (a gRPC session over the Engine API); fails when the daemon lacks it.
    Buildkit,
    /// The classic builder (`DOCKER_BUILDKIT=0`).
    Classic,
}

/// The ECS cluster and task definition family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EcsSettings {
    /// Cluster name or ARN.
    pub cluster: String,
    /// Name of the container that serves traffic (the one in the target groups).
    pub container: String,
    /// Port of that container. Required, except for a worker.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub container_port: u16,
}

/// The two slots. Both ECS services and both target groups exist up front (terraform/).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Slots {
    pub blue: SlotSettings,
    pub green: SlotSettings,
}

impl Slots {
    /// Not in service.toml (a worker's).
    pub fn is_unset(&self) -> bool {
        *self == Self::default()
    }

    pub fn get(&self, slot: crate::model::Slot) -> &SlotSettings {
        match slot {
            crate::model::Slot::Blue => &self.blue,
            crate::model::Slot::Green => &self.green,
        }
    }
}

/// One slot: an ECS service attached to one target group, and the alarms about it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotSettings {
    /// ECS service name.
    pub service: String,
    /// ARN of the target group this service registers its tasks in.
    pub target_group_arn: String,
    /// CloudWatch alarms about this slot alone (its target group's 5xx, latency…). They gate
    /// validating a release staged here and every shift step and bake toward this slot;
    /// nothing that moves traffic away from it waits on them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<String>,
}

/// Where production and test traffic are steered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrafficSettings {
    /// Production listener whose default action forwards to both target groups with weights.
    /// Exactly one of `production_listener_arn` and `production_rule_arn` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production_listener_arn: Option<String>,
    /// Production listener rule that forwards to both target groups with weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production_rule_arn: Option<String>,
    /// Test listener: forwards to the idle slot so it can be probed before it takes traffic.
    pub test_listener_arn: String,
    /// Base URL of the test listener for probes, e.g. `https://alb.example.com:8443`.
    pub test_url: String,
}

impl TrafficSettings {
    /// Not in service.toml (a worker's).
    pub fn is_unset(&self) -> bool {
        *self == Self::default()
    }
}

/// Checks a staged release must pass before it may take production traffic, and that are
/// watched during every shift step and the bake. Which alarms gate what: `[slots.*] alarms`
/// and `service_alarms` here (README, "Alarms").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidationSettings {
    /// HTTP probes against the test listener (`traffic.test_url`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<Probe>,
    /// CloudWatch alarms about the whole service (an SLO, a dependency; for a worker, its
    /// only alarms: queue age, errors), watched during every shift step and the bake. One already in ALARM when traffic starts moving is the
    /// incident being left: a gate again once it has been seen OK.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_alarms: Vec<String>,
    /// Validation also gates on `service_alarms` (e.g. a synthetic check of the test
    /// listener). Never for a rollback's validation (invariant 11).
    #[serde(default)]
    pub gate_on_service_alarms: bool,
    /// A command run after probes pass; exit 0 passes. Gets CUTOVER_TEST_URL, CUTOVER_VERSION.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Deadline for the command.
    #[serde(default = "default_command_timeout")]
    pub command_timeout: Duration,
    /// After the bake, roll production back to the previous release on its warm slot,
    /// probe it, roll forward again and probe the new one (issue 18.1). Default: on, except
    /// in environments named `production`, `prod` or `prd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rehearse_rollback: Option<bool>,
    /// The flat `alarms` list of earlier versions, refused at load with the new form.
    #[serde(
        default,
        rename = "alarms",
        skip_serializing,
        deserialize_with = "super::alarms::refuse_flat_list"
    )]
    #[schemars(skip)]
    pub(crate) flat_alarms: super::alarms::Refused,
}

impl Default for ValidationSettings {
    fn default() -> Self {
        Self {
            probes: Vec::new(),
            service_alarms: Vec::new(),
            gate_on_service_alarms: false,
            command: None,
            command_timeout: default_command_timeout(),
            rehearse_rollback: None,
            flat_alarms: Default::default(),
        }
    }
}

/// One HTTP probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// Path on the test listener, e.g. `/health`.
    pub path: String,
    /// Expected HTTP status.
    #[serde(default = "default_status")]
    pub expect_status: u16,
    /// A substring the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// Per-request timeout.
    #[serde(default = "default_probe_timeout")]
    pub timeout: Duration,
    /// Pause between attempts.
    #[serde(default = "default_probe_interval")]
    pub interval: Duration,
    /// Consecutive successes needed to pass.
    #[serde(default = "default_successes")]
    pub consecutive_successes: u32,
    /// Attempts before the probe fails.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// The response must carry the version being validated (in the body, or in
    /// `version_header`), so a probe answered by the live release — a test listener not
    /// yet repointed, a cache — is no evidence. `v1.2.3` and `1.2.3` both count.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expect_version: bool,
    /// With `expect_version`: the response header that carries the version (default: the
    /// body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_header: Option<String>,
}

/// Every wait has a deadline (invariant 8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Deadlines {
    /// Idle slot rollout complete, running == desired, every target healthy.
    #[serde(default = "default_stabilize")]
    pub stabilize: Duration,
    /// Validation as a whole (probes, alarms, command).
    #[serde(default = "default_validate")]
    pub validate: Duration,
    /// The deploy lock's lease: a live run renews it every third of this (a heartbeat
    /// during every wait), so a lock left by a dead run expires this long after its last
    /// renewal. At least 2m.
    #[serde(default = "default_lock_ttl")]
    pub lock_ttl: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            stabilize: default_stabilize(),
            validate: default_validate(),
            lock_ttl: default_lock_ttl(),
        }
    }
}

/// The release history kept in SSM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistorySettings {
    /// How many releases to keep (seed 000's ordered list of 10); 1 to 12, what one SSM
    /// parameter holds. The live release and the one before it are never evicted.
    #[serde(default = "default_depth")]
    pub depth: u32,
}

impl Default for HistorySettings {
    fn default() -> Self {
        Self {
            depth: default_depth(),
        }
    }
}

/// What happens to the previously live slot after a successful promote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OldSlotSettings {
    #[serde(default)]
    pub policy: OldSlotPolicy,
}

impl Default for OldSlotSettings {
    fn default() -> Self {
        Self {
            policy: OldSlotPolicy::KeepWarm,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OldSlotPolicy {
    /// Keep it running at full capacity: rollback is a weight flip (seconds).
    #[default]
    KeepWarm,
    /// Scale it to 0 after the bake, once read-back shows 0% on it: cheaper, slower rollback.
    ScaleToZero,
}

/// What cutover removes after itself: a failed release's tasks at the end of the run, and
/// what `cutover cleanup` may delete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CleanupSettings {
    /// Scale a release that failed validation or was rolled back to 0 tasks on its slot at
    /// the end of the run (never the live slot, never a slot holding another release).
    /// `false` keeps it running for debugging, at full capacity, until the next stage.
    #[serde(default = "yes")]
    pub scale_down_failed: bool,
    /// `cutover cleanup` keeps the newest this many task definition revisions of the
    /// family whatever references them (1 or more).
    #[serde(default = "default_keep")]
    pub keep_task_definitions: u32,
    /// `cutover cleanup` keeps the newest this many images of the repository by push time
    /// whatever references them (1 or more): a build still on its way to a stage is safe.
    #[serde(default = "default_keep")]
    pub keep_images: u32,
    /// `cutover cleanup` deletes images at all. Set `false` when other services or
    /// environments deploy from the same ECR repository: their references are not visible
    /// from this service's history and task definitions.
    #[serde(default = "yes")]
    pub delete_images: bool,
}

impl Default for CleanupSettings {
    fn default() -> Self {
        Self {
            scale_down_failed: true,
            keep_task_definitions: default_keep(),
            keep_images: default_keep(),
            delete_images: true,
        }
    }
}

fn default_keep() -> u32 {
    10
}

fn yes() -> bool {
    true
}
fn is_zero(n: &u16) -> bool {
    *n == 0
}
fn default_ssm_prefix() -> String {
    "/cutover".into()
}
fn default_context() -> String {
    ".".into()
}
fn default_dockerfile() -> String {
    "Dockerfile".into()
}
fn default_command_timeout() -> Duration {
    Duration::from_secs(300)
}
fn default_status() -> u16 {
    200
}
fn default_probe_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_probe_interval() -> Duration {
    Duration::from_secs(5)
}
fn default_successes() -> u32 {
    3
}
fn default_attempts() -> u32 {
    20
}
fn default_stabilize() -> Duration {
    Duration::from_secs(600)
}
fn default_validate() -> Duration {
    Duration::from_secs(600)
}
fn default_lock_ttl() -> Duration {
    Duration::from_secs(300)
}

/// The shortest lease: the heartbeat renews every TTL/3, and one renewal (a read and a
/// write of the lock) may take up to a call timeout (30 s) before it counts as failed; at
/// 2 minutes a renewal that hangs still leaves another before the lease runs out. With the
/// heartbeat no wait of the plan needs to fit in the TTL, so this replaces a check against
/// the plan's longest wait.
pub const MIN_LOCK_TTL: std::time::Duration = std::time::Duration::from_secs(120);
fn default_depth() -> u32 {
    10
}

/// The JSON schemas of the settings files, as committed under `schema/`.
pub fn schemas() -> [(&'static str, serde_json::Value); 2] {
    let json = |s: schemars::Schema| s.to_value();
    [
        (
            "environment.schema.json",
            json(schemars::schema_for!(EnvironmentSettings)),
        ),
        (
            "service.schema.json",
            json(schemars::schema_for!(ServiceSettings)),
        ),
    ]
}
