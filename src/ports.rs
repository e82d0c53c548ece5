//! The engine's view of the outside world: small traits over the domain model in
//! [`crate::model`]. AWS adapters (ECS, ELBv2, ECR, SSM, CloudWatch) and the simulated
//! cloud in `sim` implement them; no SDK type crosses this line. The model is re-exported
//! so an implementation needs one import.

use std::collections::BTreeMap;
use std::future::Future;

use serde::Serialize;

pub use crate::model::*;
use crate::version::Version;

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
    /// The session's credentials expired mid-run: a longer session fixes it, not a policy.
    #[error(
        "the AWS credentials expired: {0}; ask for a session that outlasts the deploy: `role-duration-seconds` in aws-actions/configure-aws-credentials, within the role's maximum session duration (terraform: `deploy_role_max_session_duration` of the ecs-blue-green-service module, the role's `max_session_duration`)"
    )]
    CredentialsExpired(String),
    /// The write may or may not have applied (timeout, 5xx after sending): re-read to know.
    #[error("write outcome unknown: {0}")]
    Ambiguous(String),
    #[error("temporary failure: {0}")]
    Transient(String),
    /// The resources are not wired as the config says (a listener forwarding elsewhere):
    /// a config or infrastructure fix, never worth a retry.
    #[error("{0}")]
    Miswired(String),
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

impl PortError {
    /// An AWS error code as the engine's class, by code only (never by message text): the
    /// AWS adapter and the simulation both call this, so a code injected in the simulation
    /// is classed as the real one would be. `write`: a 5xx after sending may have applied.
    pub fn from_code(code: &str, message: String, write: bool) -> PortError {
        let unsure = |m| {
            if write {
                PortError::Ambiguous(m)
            } else {
                PortError::Transient(m)
            }
        };
        if THROTTLING.contains(&code) {
            PortError::Throttled(message)
        } else if EXPIRED.contains(&code) {
            PortError::CredentialsExpired(message)
        } else if ACCESS_DENIED.contains(&code) {
            PortError::AccessDenied(message)
        } else if NOT_FOUND.contains(&code) {
            PortError::NotFound(message)
        } else if CONFLICT.contains(&code) {
            PortError::Conflict(message)
        } else if SERVER.contains(&code)
            || code.starts_with("InternalFailure")
            || code.starts_with("ServiceUnavailable")
        {
            unsure(message)
        } else {
            // Validation and other client errors: retrying will not help; the message says why.
            PortError::Conflict(message)
        }
    }
}

const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "PriorRequestNotComplete",
    // SSM: a parameter updated too often (the lock and the history are written often).
    "TooManyUpdates",
];
const ACCESS_DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "AuthFailure",
];
/// The session's credentials ran out (or the clock is off): not a permission to grant.
const EXPIRED: &[&str] = &[
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "TokenRefreshRequired",
];
/// Server-side failures after the request reached AWS: a write may have applied.
const SERVER: &[&str] = &[
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "InternalServiceError",
    "ServerException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    // CloudWatch's 500.
    "InternalServiceFault",
    // The request did not finish in time on AWS's side (S3-style and some JSON services).
    "RequestTimeout",
    "RequestTimeoutException",
];
const NOT_FOUND: &[&str] = &[
    "ClusterNotFoundException",
    "ServiceNotFoundException",
    "ServiceNotActiveException",
    "ListenerNotFound",
    "RuleNotFound",
    "TargetGroupNotFound",
    "LoadBalancerNotFound",
    "ParameterNotFound",
    "ParameterVersionNotFound",
    "ImageNotFoundException",
    "RepositoryNotFoundException",
    "ResourceNotFound",
    "ResourceNotFoundException",
    "NoSuchEntity",
];
const CONFLICT: &[&str] = &[
    "ParameterAlreadyExists",
    "ConcurrentModificationException",
    "ResourceInUse",
    "ResourceInUseException",
    "UpdateInProgressException",
];

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
    /// Record `release` as `history::record_release` does: its entry replaced and moved last, the
    /// last `cap` kept.
    fn record(&self, release: &Release, cap: usize) -> impl Future<Output = PortResult<()>> + Send;
    /// Create the lock only if absent (PutParameter overwrite=false); `Conflict` when held.
    fn create_lock(&self, lock: &Lock) -> impl Future<Output = PortResult<()>> + Send;
    fn read_lock(&self) -> impl Future<Output = PortResult<Option<Lock>>> + Send;
    /// Extend the holder's lease (overwrite=true; only the holder calls this, before expiry).
    fn renew_lock(&self, lock: &Lock) -> impl Future<Output = PortResult<()>> + Send;
    /// Delete the lock (release by its holder, or break a stale one).
    fn delete_lock(&self) -> impl Future<Output = PortResult<()>> + Send;
}

/// Other environments' histories of the same service, for `[versions]` rules: read only,
/// apart from [`Cloud`] (only `promote`, `deploy` and their plans need it).
pub trait Histories: Sync {
    /// `env`'s releases of this service, oldest first; empty when it has none.
    fn history_in(&self, env: &str) -> impl Future<Output = PortResult<Vec<Release>>> + Send;
}

/// CloudWatch alarms.
pub trait Signals {
    fn alarm_states(
        &self,
        names: &[String],
    ) -> impl Future<Output = PortResult<BTreeMap<String, AlarmState>>> + Send;
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
    /// A fresh fencing token for the lock, unique across processes and machines (random,
    /// never derived from the clock or the owner).
    fn token(&self) -> PortResult<String>;

    /// A uniformly random number, for retry jitter: the real cloud's is random per
    /// process, the simulation's comes from its seed (a run replays identically).
    fn random(&self) -> u64;
}

/// Where status changes and notices go: console, JSON, GitHub, Slack. Never fails the run.
pub trait Reporter {
    fn status(&self, event: &StatusEvent);
    /// Something an operator must see that is not a status change (e.g. a stale lock broken).
    fn notice(&self, message: &str);
    /// A rollback rehearsal passed (after its notice): the job summary and the GitHub
    /// deployment show it; other reporters have had the notice.
    fn rehearsed(&self, _event: &RehearsalEvent) {}
}

/// A shared reporter (the action keeps a handle to read its timeline afterwards).
impl<R: Reporter + ?Sized> Reporter for std::sync::Arc<R> {
    fn status(&self, event: &StatusEvent) {
        (**self).status(event);
    }

    fn notice(&self, message: &str) {
        (**self).notice(message);
    }

    fn rehearsed(&self, event: &RehearsalEvent) {
        (**self).rehearsed(event);
    }
}

/// Everything the engine needs from the cloud, as one bundle; an adapter struct (or the
/// simulated cloud) implements each small trait.
pub trait Cloud: Compute + Traffic + Images + Store + Signals + Prober + Clock + Sync {}

impl<T: Compute + Traffic + Images + Store + Signals + Prober + Clock + Sync> Cloud for T {}

/// One ACTIVE revision of a task definition family, as ECS lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revision {
    pub arn: String,
    pub family: String,
    pub number: u32,
}

/// One image of the service's ECR repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredImage {
    pub digest: Digest,
    pub tags: Vec<String>,
    pub pushed_at: Option<Millis>,
    /// The manifest's media type: an index (multi-platform image) refers to other images
    /// of the repository by digest.
    pub media_type: Option<String>,
}

/// What `cutover cleanup` and `cutover diff` read beyond the deploy ports, and what cleanup
/// removes. Apart from [`Cloud`]: only those verbs need it, and its writes need the optional
/// IAM policy (terraform `cleanup_policy`).
pub trait Inventory: Sync {
    /// The ACTIVE revisions of `family`, newest first.
    fn revisions(&self, family: &str) -> impl Future<Output = PortResult<Vec<Revision>>> + Send;
    /// A task definition as JSON in the register-task-definition shape (the fields cutover
    /// diffs). It can hold environment values: never print it whole.
    fn task_definition_json(
        &self,
        arn: &str,
    ) -> impl Future<Output = PortResult<serde_json::Value>> + Send;
    fn deregister(&self, arn: &str) -> impl Future<Output = PortResult<()>> + Send;
    fn images(&self) -> impl Future<Output = PortResult<Vec<StoredImage>>> + Send;
    fn delete_images(&self, digests: &[Digest]) -> impl Future<Output = PortResult<()>> + Send;
}
