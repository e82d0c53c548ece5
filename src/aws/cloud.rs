//! The engine's ports over AWS: one struct holding one client per service, built once,
//! and the names and ARNs from the service's settings that map slots onto AWS resources.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::SdkConfig;

use super::AwsTarget;
use super::cloudwatch::CloudWatch;
use super::ecr::Ecr;
use super::ecs::{Ecs, ServiceView, Tagged};
use super::elb::{Elb, Forward, Production};
use super::errors::Call;
use super::ssm::Ssm;
use super::store::Held;
use crate::config::{EnvironmentSettings, ServiceSettings};
use crate::image::Registry;
use crate::ports::*;
use crate::probe::LocalChecks;
use crate::version::Version;

/// Where an environment/service keeps its SSM parameters: `<prefix>/<env>/<service>`.
pub(super) fn parameter_base(prefix: &str, env: &str, service: &str) -> String {
    format!("{}/{env}/{service}", prefix.trim_end_matches('/'))
}

/// Every AWS resource one environment/service uses.
pub struct AwsCloud {
    pub ecs: Ecs,
    pub elb: Elb,
    pub ssm: Ssm,
    pub cloudwatch: CloudWatch,
    pub settings: ServiceSettings,
    pub(super) ecr: Ecr,
    pub(super) iam: aws_sdk_iam::Client,
    sts: aws_sdk_sts::Client,
    pub(super) registry: tokio::sync::OnceCell<Registry>,
    pub(super) registry_override: Option<String>,
    pub(super) held: std::sync::Mutex<Held>,
    production: Production,
    pub(super) history_parameter: String,
    pub(super) lock_parameter: String,
    checks: LocalChecks,
    credentials_expiry: Option<std::time::SystemTime>,
    /// Shared with the other members of a train: reads made at once go as one call.
    batches: std::sync::OnceLock<std::sync::Arc<super::batch::Batches>>,
}

impl AwsCloud {
    /// Load the SDK configuration for `target` (region, profile rule, credentials chain)
    /// and build every client from it, once.
    /// The credentials are resolved here, once: a missing chain is one error before any
    /// call, and their expiry (when the provider tells) is kept for the plan check.
    pub async fn connect(
        target: &AwsTarget,
        service_name: &str,
        env: &EnvironmentSettings,
        settings: &ServiceSettings,
    ) -> Result<Self, super::CredentialsError> {
        let connection = super::Connection::open(target).await?;
        Ok(Self::on(&connection, service_name, env, settings))
    }

    /// Every client built from `connection`, which other services' clouds may share (a
    /// train's members: one environment, one connection).
    pub fn on(
        connection: &super::Connection,
        service_name: &str,
        env: &EnvironmentSettings,
        settings: &ServiceSettings,
    ) -> Self {
        let mut cloud = Self::build(
            &connection.sdk,
            connection.probes.clone(),
            &connection.target.environment,
            service_name,
            env,
            settings,
        );
        cloud.credentials_expiry = connection.expiry;
        cloud
    }

    /// When the credentials resolved at connect expire, if their provider says (SSO,
    /// web identity, `credential_process` with an `Expiration`); `None` for credentials
    /// without an expiry (environment variables, static keys).
    pub fn credentials_expiry(&self) -> Option<std::time::SystemTime> {
        self.credentials_expiry
    }

    /// Every client built from `sdk` alone (tests: no credentials resolved, no expiry).
    pub fn new(
        sdk: &SdkConfig,
        env_name: &str,
        service_name: &str,
        env: &EnvironmentSettings,
        settings: &ServiceSettings,
    ) -> Self {
        Self::build(
            sdk,
            LocalChecks::client(),
            env_name,
            service_name,
            env,
            settings,
        )
    }

    fn build(
        sdk: &SdkConfig,
        probes: reqwest::Client,
        env_name: &str,
        service_name: &str,
        env: &EnvironmentSettings,
        settings: &ServiceSettings,
    ) -> Self {
        let production = match (
            &settings.traffic.production_listener_arn,
            &settings.traffic.production_rule_arn,
        ) {
            (_, Some(rule)) => Production::Rule(rule.clone()),
            (Some(listener), None) => Production::Listener(listener.clone()),
            // A worker: no listener, and its weights are never read from ELB (below).
            (None, None) if settings.worker.is_some() => Production::Listener(String::new()),
            (None, None) => unreachable!("config validation requires one of them"),
        };
        let base = parameter_base(&env.ssm_prefix, env_name, service_name);
        Self {
            ecs: Ecs::new(aws_sdk_ecs::Client::new(sdk), &settings.ecs.cluster),
            elb: Elb::new(aws_sdk_elasticloadbalancingv2::Client::new(sdk)),
            ssm: Ssm::new(aws_sdk_ssm::Client::new(sdk)),
            cloudwatch: CloudWatch::new(aws_sdk_cloudwatch::Client::new(sdk)),
            settings: settings.clone(),
            ecr: Ecr::new(sdk),
            iam: aws_sdk_iam::Client::new(sdk),
            sts: aws_sdk_sts::Client::new(sdk),
            registry: tokio::sync::OnceCell::new(),
            registry_override: env.registry.clone(),
            held: Default::default(),
            production,
            history_parameter: format!("{base}/history"),
            lock_parameter: format!("{base}/lock"),
            checks: LocalChecks::with_client(&settings.traffic.test_url, probes),
            credentials_expiry: None,
            batches: std::sync::OnceLock::new(),
        }
    }

    pub fn production(&self) -> &Production {
        &self.production
    }

    /// Read with the other members of a train through `batches` (once; later calls keep
    /// the first).
    pub fn share_batches(&self, batches: std::sync::Arc<super::batch::Batches>) {
        let _ = self.batches.set(batches);
    }

    pub(super) fn batch(&self) -> Option<&super::batch::Batches> {
        self.batches.get().map(|b| &**b)
    }

    pub fn slot_service(&self, slot: Slot) -> &str {
        // A worker's one service is its blue slot in the ports (`engine::worker`).
        match &self.settings.worker {
            Some(worker) => &worker.service,
            None => &self.slot_settings(slot).service,
        }
    }

    pub fn slot_target_group(&self, slot: Slot) -> &str {
        &self.slot_settings(slot).target_group_arn
    }

    fn slot_settings(&self, slot: Slot) -> &crate::config::settings::SlotSettings {
        self.settings.slots.get(slot)
    }

    fn slot_of_target_group(&self, arn: &str) -> Option<Slot> {
        [Slot::Blue, Slot::Green]
            .into_iter()
            .find(|s| self.slot_target_group(*s) == arn)
    }

    /// Forward weights (relative, 0–999 on an ALB) as percentages per slot. Production
    /// must forward to exactly the two slots' target groups (the idle one at weight 0): a
    /// third group, or a slot's group missing, is a wiring error to fix before anything
    /// moves.
    fn weights_of(&self, forward: &Forward) -> PortResult<Weights> {
        let what = self.production.field();
        let (mut blue, mut green) = (None, None);
        for (tg, weight) in forward {
            let weight = i64::from(*weight);
            match self.slot_of_target_group(tg) {
                Some(Slot::Blue) => *blue.get_or_insert(0) += weight,
                Some(Slot::Green) => *green.get_or_insert(0) += weight,
                None => {
                    return Err(PortError::Miswired(format!(
                        "{what} {} forwards to target group {tg}, which is neither [slots.blue] nor [slots.green] target_group_arn; fix those, or the forward action to hold exactly the two slots' groups",
                        self.production.arn()
                    )));
                }
            }
        }
        let (Some(blue), Some(green)) = (blue, green) else {
            let missing = if blue.is_none() {
                Slot::Blue
            } else {
                Slot::Green
            };
            return Err(PortError::Miswired(format!(
                "{what} {} does not forward to the {missing} slot's target group {}: both groups stay in the forward action (the idle one at weight 0); fix [slots.{missing}] target_group_arn or the listener",
                self.production.arn(),
                self.slot_target_group(missing)
            )));
        };
        let total = blue + green;
        if total == 0 {
            return Err(PortError::Conflict(
                "production forwards no weight to either slot".into(),
            ));
        }
        let blue_pct = u8::try_from((blue * 100 + total / 2) / total).unwrap_or(100);
        Ok(Weights {
            blue: blue_pct,
            green: 100 - blue_pct,
        })
    }
}

impl AwsCloud {
    /// A slot's service as read, with what its task definition holds and, only when
    /// something is wrong, why tasks stopped (two more calls).
    async fn slot_state(&self, slot: Slot, view: ServiceView) -> PortResult<SlotState> {
        let name = self.slot_service(slot);
        let troubled = view.running < view.desired || view.rollout == Rollout::Failed;
        let (task_definition, stopped) = tokio::try_join!(
            async {
                match &view.task_definition {
                    Some(arn) => Ok(self.ecs.tagged(arn).await?.map(|t| TaskDefinition {
                        id: t.arn,
                        spec: TaskSpec {
                            version: t.version,
                            digest: t.digest,
                            content: String::new(),
                            fingerprint: t.fingerprint,
                        },
                    })),
                    None => Ok(None),
                }
            },
            async {
                if troubled {
                    self.ecs.stopped(name, &view).await
                } else {
                    Ok(Default::default())
                }
            },
        )?;
        Ok(SlotState {
            task_definition,
            desired: view.desired,
            running: view.running,
            pending: view.pending,
            rollout: view.rollout,
            events: view.events,
            stopped_reasons: stopped.reasons,
            failures: [view.failures, stopped.failures].concat(),
            load_balancers: view.load_balancers,
        })
    }
}

impl Compute for AwsCloud {
    async fn read_slot(&self, slot: Slot) -> PortResult<SlotState> {
        let view = self
            .ecs
            .service(self.slot_service(slot), self.batch())
            .await?;
        self.slot_state(slot, view).await
    }

    /// One DescribeServices for both services.
    async fn slot_services(&self) -> PortResult<(SlotState, SlotState)> {
        if self.settings.worker.is_some() {
            // Its one service; no green slot exists.
            return Ok((self.read_slot(Slot::Blue).await?, SlotState::absent()));
        }
        let mut views = self
            .ecs
            .services(
                &[
                    self.slot_service(Slot::Blue),
                    self.slot_service(Slot::Green),
                ],
                self.batch(),
            )
            .await?
            .into_iter();
        let (blue, green) = (
            views.next().expect("one view per name"),
            views.next().expect("one view per name"),
        );
        tokio::try_join!(
            self.slot_state(Slot::Blue, blue),
            self.slot_state(Slot::Green, green)
        )
    }

    async fn register_task_definition(&self, spec: &TaskSpec) -> PortResult<TaskDefinition> {
        let arn = self
            .ecs
            .register(
                &spec.content,
                &spec.version,
                &spec.digest,
                &spec.fingerprint,
            )
            .await?;
        self.ecs.remember(Tagged {
            arn: arn.clone(),
            version: spec.version.clone(),
            digest: spec.digest.clone(),
            fingerprint: spec.fingerprint.clone(),
        });
        Ok(TaskDefinition {
            id: arn,
            spec: spec.clone(),
        })
    }

    async fn update_slot(&self, slot: Slot, task_definition: &str, desired: u32) -> PortResult<()> {
        // A worker is updated in place: ECS's circuit breaker ends a rollout that cannot
        // succeed (FAILED, which the engine reads), its own rollback off (cutover's is
        // the previous task definition, recorded).
        let breaker = self.settings.worker.is_some();
        self.ecs
            .update(self.slot_service(slot), task_definition, desired, breaker)
            .await
    }
}

/// A worker has no load balancer: its one service (the blue slot in the ports) does all
/// its work, so `status` and `observe` read it as live at 100% without calling ELB.
const WORKER_WEIGHTS: Weights = Weights {
    blue: 100,
    green: 0,
};

impl Traffic for AwsCloud {
    async fn production_weights(&self) -> PortResult<Weights> {
        if self.settings.worker.is_some() {
            return Ok(WORKER_WEIGHTS);
        }
        let forward = self
            .elb
            .production_forward(&self.production, self.batch())
            .await?;
        self.weights_of(&forward)
    }

    async fn weights_and_test_listener(&self) -> PortResult<(Weights, Option<Slot>)> {
        if self.settings.worker.is_some() {
            return Ok((WORKER_WEIGHTS, None));
        }
        let (forward, test) = self
            .elb
            .production_and_test(
                &self.production,
                &self.settings.traffic.test_listener_arn,
                self.batch(),
            )
            .await?;
        Ok((
            self.weights_of(&forward)?,
            test.and_then(|tg| self.slot_of_target_group(&tg)),
        ))
    }

    async fn set_production_weights(&self, weights: Weights) -> PortResult<()> {
        let forward = vec![
            (
                self.slot_target_group(Slot::Blue).to_string(),
                i32::from(weights.blue),
            ),
            (
                self.slot_target_group(Slot::Green).to_string(),
                i32::from(weights.green),
            ),
        ];
        self.elb
            .set_production_forward(&self.production, &forward)
            .await
    }

    async fn test_listener(&self) -> PortResult<Option<Slot>> {
        let target = self
            .elb
            .test_target(&self.settings.traffic.test_listener_arn)
            .await?;
        Ok(target.and_then(|tg| self.slot_of_target_group(&tg)))
    }

    async fn point_test_listener(&self, slot: Slot) -> PortResult<()> {
        self.elb
            .point_test(
                &self.settings.traffic.test_listener_arn,
                self.slot_target_group(slot),
            )
            .await
    }

    async fn target_health(&self, slot: Slot) -> PortResult<Vec<TargetHealth>> {
        self.elb.target_health(self.slot_target_group(slot)).await
    }

    async fn health_check_timing(&self, slot: Slot) -> PortResult<HealthCheckTiming> {
        self.elb
            .health_check_timing(self.slot_target_group(slot))
            .await
    }
}

/// Existence checks for `verify`.
impl AwsCloud {
    /// An IAM role exists (iam:GetRole on that role; terraform's deploy role allows it).
    pub async fn role_exists(&self, arn: &str) -> Result<(), String> {
        let name = arn.rsplit('/').next().unwrap_or(arn);
        let got = Call::read("iam:GetRole", arn)
            .send(self.iam.get_role().role_name(name).send())
            .await;
        match got {
            Ok(_) => Ok(()),
            Err(PortError::NotFound(_)) => Err("no such role: create it (terraform/ does) or fix the ARN in variables.json / taskdef.json".to_string()),
            Err(other) => Err(other.to_string()),
        }
    }

    /// The AWS account the credentials belong to (sts:GetCallerIdentity).
    pub async fn caller_account(&self) -> PortResult<String> {
        let who = Call::read("sts:GetCallerIdentity", "*")
            .send(self.sts.get_caller_identity().send())
            .await?;
        Ok(who.account().unwrap_or_default().to_string())
    }

    /// The service's ECR repository exists.
    pub async fn repository_exists(&self) -> PortResult<()> {
        let repo = &self.settings.image.repository;
        Call::read("ecr:DescribeRepositories", repo)
            .send(
                self.ecr
                    .client()
                    .describe_repositories()
                    .repository_names(repo)
                    .send(),
            )
            .await?;
        Ok(())
    }
}

impl Signals for AwsCloud {
    async fn alarm_states(&self, names: &[String]) -> PortResult<BTreeMap<String, AlarmState>> {
        self.cloudwatch.alarm_states(names, self.batch()).await
    }
}

impl Prober for AwsCloud {
    async fn probe(&self, request: &ProbeRequest) -> CheckResult {
        self.checks.probe(request).await
    }

    async fn run_command(
        &self,
        argv: &[String],
        version: &Version,
        timeout: Duration,
    ) -> CheckResult {
        self.checks.run_command(argv, version, timeout).await
    }
}

impl Clock for AwsCloud {
    fn now(&self) -> Millis {
        crate::clock::wall_now()
    }
    fn token(&self) -> crate::ports::PortResult<String> {
        crate::clock::random_token().map_err(crate::ports::PortError::Transient)
    }

    /// Each `RandomState` gets fresh keys (random per process, then stepped per call), so
    /// hashing nothing with it is a random number: enough to spread retries apart.
    fn random(&self) -> u64 {
        use std::hash::BuildHasher as _;
        std::collections::hash_map::RandomState::new().hash_one(self.now())
    }
}
