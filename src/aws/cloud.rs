//! The engine's ports over AWS: one struct holding one client per service, built once,
//! and the names and ARNs from the service's settings that map slots onto AWS resources.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::SdkConfig;

use super::cloudwatch::CloudWatch;
use super::ecs::{Ecs, ServiceView, Tagged};
use super::elb::{Elb, Forward, Production};
use super::ssm::Ssm;
use crate::build::Registry;
use crate::config::{EnvironmentSettings, ServiceSettings};
use crate::ports::*;
use crate::version::Version;

/// Every AWS resource one environment/service uses.
pub struct AwsCloud {
    pub ecs: Ecs,
    pub elb: Elb,
    pub ssm: Ssm,
    pub cloudwatch: CloudWatch,
    pub settings: ServiceSettings,
    sdk: SdkConfig,
    registry: tokio::sync::OnceCell<Registry>,
    registry_override: Option<String>,
    held: std::sync::Mutex<Held>,
    production: Production,
    history_parameter: String,
    lock_parameter: String,
    http: reqwest::Client,
}

impl AwsCloud {
    pub fn new(
        sdk: &SdkConfig,
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
            (None, None) => unreachable!("config validation requires one of them"),
        };
        let base = format!(
            "{}/{env_name}/{service_name}",
            env.ssm_prefix.trim_end_matches('/')
        );
        Self {
            ecs: Ecs::new(aws_sdk_ecs::Client::new(sdk), &settings.ecs.cluster),
            elb: Elb::new(aws_sdk_elasticloadbalancingv2::Client::new(sdk)),
            ssm: Ssm::new(aws_sdk_ssm::Client::new(sdk)),
            cloudwatch: CloudWatch::new(aws_sdk_cloudwatch::Client::new(sdk)),
            settings: settings.clone(),
            sdk: sdk.clone(),
            registry: tokio::sync::OnceCell::new(),
            registry_override: env.registry.clone(),
            held: Default::default(),
            production,
            history_parameter: format!("{base}/history"),
            lock_parameter: format!("{base}/lock"),
            http: reqwest::Client::builder()
                .user_agent(concat!("cutover/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("an HTTP client"),
        }
    }

    pub fn production(&self) -> &Production {
        &self.production
    }

    pub fn slot_service(&self, slot: Slot) -> &str {
        &self.slot_settings(slot).service
    }

    pub fn slot_target_group(&self, slot: Slot) -> &str {
        &self.slot_settings(slot).target_group_arn
    }

    fn slot_settings(&self, slot: Slot) -> &crate::config::settings::SlotSettings {
        match slot {
            Slot::Blue => &self.settings.slots.blue,
            Slot::Green => &self.settings.slots.green,
        }
    }

    fn slot_of_target_group(&self, arn: &str) -> Option<Slot> {
        [Slot::Blue, Slot::Green]
            .into_iter()
            .find(|s| self.slot_target_group(*s) == arn)
    }

    /// Forward weights (relative, 0–999 on an ALB) as percentages per slot.
    fn weights_of(&self, forward: &Forward) -> PortResult<Weights> {
        let (mut blue, mut green) = (0i64, 0i64);
        for (tg, weight) in forward {
            match self.slot_of_target_group(tg) {
                Some(Slot::Blue) => blue += i64::from(*weight),
                Some(Slot::Green) => green += i64::from(*weight),
                None if *weight == 0 => {}
                None => {
                    return Err(PortError::Conflict(format!(
                        "production forwards {weight} to target group {tg}, which is neither the blue nor the green slot; fix [slots] or the listener"
                    )));
                }
            }
        }
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
        let (task_definition, stopped_reasons) = tokio::try_join!(
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
                    self.ecs.stopped_reasons(name).await
                } else {
                    Ok(Vec::new())
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
            stopped_reasons,
        })
    }
}

impl Compute for AwsCloud {
    async fn read_slot(&self, slot: Slot) -> PortResult<SlotState> {
        let view = self.ecs.service(self.slot_service(slot)).await?;
        self.slot_state(slot, view).await
    }

    /// One DescribeServices for both services.
    async fn slot_services(&self) -> PortResult<(SlotState, SlotState)> {
        let mut views = self
            .ecs
            .services(&[
                self.slot_service(Slot::Blue),
                self.slot_service(Slot::Green),
            ])
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
        self.ecs
            .update(self.slot_service(slot), task_definition, desired)
            .await
    }
}

impl Traffic for AwsCloud {
    async fn production_weights(&self) -> PortResult<Weights> {
        let forward = self.elb.production_forward(&self.production).await?;
        self.weights_of(&forward)
    }

    async fn weights_and_test_listener(&self) -> PortResult<(Weights, Option<Slot>)> {
        let (forward, test) = self
            .elb
            .production_and_test(&self.production, &self.settings.traffic.test_listener_arn)
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

/// Images are looked up through the registry's v2 API with the ECR token — the same path
/// the build uses — so "does this digest exist" is answered by the registry that serves
/// the pulls (ECR itself, or `environment.toml`'s registry override).
impl Images for AwsCloud {
    async fn digest_for_tag(&self, tag: &str) -> PortResult<Option<Digest>> {
        let registry = self.registry().await?;
        registry
            .digest(&self.settings.image.repository, tag)
            .await
            .map(|d| d.map(Digest))
            .map_err(|e| PortError::Transient(format!("{e:#}")))
    }

    async fn exists(&self, digest: &Digest) -> PortResult<bool> {
        // The v2 API takes a digest wherever it takes a tag.
        Ok(self.digest_for_tag(&digest.0).await?.is_some())
    }
}

/// Existence checks for `verify`.
impl AwsCloud {
    /// An IAM role exists (iam:GetRole on that role; terraform's deploy role allows it).
    pub async fn role_exists(&self, arn: &str) -> Result<(), String> {
        let name = arn.rsplit('/').next().unwrap_or(arn);
        let call = super::errors::Call {
            action: "iam:GetRole",
            resource: arn,
            write: false,
        };
        match aws_sdk_iam::Client::new(&self.sdk)
            .get_role()
            .role_name(name)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(match super::errors::port_error(call, e) {
                PortError::NotFound(_) => "no such role: create it (terraform/ does) or fix the ARN in variables.json / taskdef.json".to_string(),
                other => other.to_string(),
            }),
        }
    }

    /// The service's ECR repository exists.
    pub async fn repository_exists(&self) -> PortResult<()> {
        let repo = &self.settings.image.repository;
        let call = super::errors::Call {
            action: "ecr:DescribeRepositories",
            resource: repo,
            write: false,
        };
        aws_sdk_ecr::Client::new(&self.sdk)
            .describe_repositories()
            .repository_names(repo)
            .send()
            .await
            .map_err(|e| super::errors::port_error(call, e))?;
        Ok(())
    }

    /// `host/repository@digest` in the registry this environment pulls from.
    pub async fn image_reference(&self, digest: &Digest) -> PortResult<String> {
        let host = self.registry().await?.host();
        Ok(format!(
            "{host}/{}@{digest}",
            self.settings.image.repository
        ))
    }

    async fn registry(&self) -> PortResult<&Registry> {
        self.registry
            .get_or_try_init(|| async {
                let auth = super::ecr::Ecr::new(&self.sdk)
                    .authorization()
                    .await
                    .map_err(|e| PortError::AccessDenied(format!("{e:#}")))?;
                Registry::new(&auth.with_host(self.registry_override.as_deref()))
                    .map_err(|e| PortError::Transient(format!("{e:#}")))
            })
            .await
    }
}

impl AwsCloud {
    /// A history just read: what its entries name is what those task definitions hold, and
    /// while we hold the lock nobody else writes it.
    fn read_history(&self, history: Option<Vec<Release>>) -> Vec<Release> {
        let history = history.unwrap_or_default();
        for r in history.iter().filter(|r| !r.fingerprint.is_empty()) {
            self.ecs.remember(Tagged {
                arn: r.task_definition.clone(),
                version: r.version.clone(),
                digest: r.digest.clone(),
                fingerprint: r.fingerprint.clone(),
            });
        }
        self.held.lock().expect("held lock").keep(&history);
        history
    }

    /// A lock just read: if it is not the one we created, we no longer hold it.
    fn read_lock_state(&self, lock: &Option<Lock>) {
        let mut held = self.held.lock().expect("held lock");
        if lock.as_ref().map(|l| &l.token) != held.token.as_ref() {
            *held = Held::default();
        }
    }
}

/// The lock this run created and, while it holds it, the history as last read or written:
/// the engine writes the history only under the lock, so a record need not read it again.
#[derive(Default)]
struct Held {
    token: Option<String>,
    history: Option<Vec<Release>>,
}

impl Held {
    fn keep(&mut self, history: &[Release]) {
        if self.token.is_some() {
            self.history = Some(history.to_vec());
        }
    }
}

impl Store for AwsCloud {
    async fn history(&self) -> PortResult<Vec<Release>> {
        let history = self.ssm.get(&self.history_parameter).await?;
        Ok(self.read_history(history))
    }

    /// One GetParameters call for both.
    async fn history_and_lock(&self) -> PortResult<(Vec<Release>, Option<Lock>)> {
        let names = [
            self.history_parameter.as_str(),
            self.lock_parameter.as_str(),
        ];
        let values = self.ssm.get_many(&names).await?;
        let history = values[0]
            .as_deref()
            .map(|v| super::ssm::parse(names[0], v))
            .transpose()?;
        let lock = values[1]
            .as_deref()
            .map(|v| super::ssm::parse(names[1], v))
            .transpose()?;
        self.read_lock_state(&lock);
        Ok((self.read_history(history), lock))
    }

    async fn record(&self, release: &Release, cap: usize) -> PortResult<()> {
        let known = self.held.lock().expect("held lock").history.take();
        let mut history = match known {
            Some(h) => h,
            None => self.history().await?,
        };
        match history.iter_mut().find(|r| r.same_release(release)) {
            Some(existing) => *existing = release.clone(),
            None => history.push(release.clone()),
        }
        let excess = history.len().saturating_sub(cap.max(1));
        history.drain(..excess);
        // On an error the write may or may not have applied: the next record reads again.
        self.ssm
            .put(&self.history_parameter, &history, true)
            .await?;
        self.held.lock().expect("held lock").keep(&history);
        Ok(())
    }

    async fn create_lock(&self, lock: &Lock) -> PortResult<()> {
        self.ssm.put(&self.lock_parameter, lock, false).await?;
        *self.held.lock().expect("held lock") = Held {
            token: Some(lock.token.clone()),
            history: None,
        };
        Ok(())
    }

    async fn read_lock(&self) -> PortResult<Option<Lock>> {
        let lock = self.ssm.get(&self.lock_parameter).await?;
        self.read_lock_state(&lock);
        Ok(lock)
    }

    async fn renew_lock(&self, lock: &Lock) -> PortResult<()> {
        self.ssm.put(&self.lock_parameter, lock, true).await
    }

    async fn delete_lock(&self) -> PortResult<()> {
        *self.held.lock().expect("held lock") = Held::default();
        self.ssm.delete(&self.lock_parameter).await
    }
}

impl Signals for AwsCloud {
    async fn alarm_states(&self, names: &[String]) -> PortResult<BTreeMap<String, AlarmState>> {
        self.cloudwatch.alarm_states(names).await
    }
}

impl Prober for AwsCloud {
    async fn probe(&self, request: &ProbeRequest) -> CheckResult {
        let url = format!(
            "{}{}",
            self.settings.traffic.test_url.trim_end_matches('/'),
            request.path
        );
        let response = match self.http.get(&url).timeout(request.timeout).send().await {
            Ok(r) => r,
            Err(e) => return CheckResult::Fail(format!("GET {url}: {}", error_chain(&e))),
        };
        let status = response.status().as_u16();
        if status != request.expect_status {
            return CheckResult::Fail(format!(
                "GET {url}: status {status}, expected {}",
                request.expect_status
            ));
        }
        if let Some(needle) = &request.body_contains {
            match response.text().await {
                Ok(body) if body.contains(needle.as_str()) => {}
                Ok(_) => {
                    return CheckResult::Fail(format!(
                        "GET {url}: body does not contain `{needle}`"
                    ));
                }
                Err(e) => {
                    return CheckResult::Fail(format!(
                        "GET {url}: reading the body: {}",
                        error_chain(&e)
                    ));
                }
            }
        }
        CheckResult::Pass
    }

    async fn run_command(
        &self,
        argv: &[String],
        version: &Version,
        timeout: Duration,
    ) -> CheckResult {
        let Some((program, args)) = argv.split_first() else {
            return CheckResult::Fail("[validation] command is empty".into());
        };
        let child = tokio::process::Command::new(program)
            .args(args)
            .env("CUTOVER_TEST_URL", &self.settings.traffic.test_url)
            .env("CUTOVER_VERSION", version.to_string())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(timeout, child).await {
            Err(_) => CheckResult::Fail(format!(
                "`{program}` did not finish within {}s",
                timeout.as_secs()
            )),
            Ok(Err(e)) => CheckResult::Fail(format!("cannot run `{program}`: {e}")),
            Ok(Ok(out)) if out.status.success() => CheckResult::Pass,
            Ok(Ok(out)) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let tail: Vec<&str> = stderr
                    .lines()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                CheckResult::Fail(format!(
                    "`{program}` exited with {}: {}",
                    out.status,
                    tail.join(" | ")
                ))
            }
        }
    }
}

impl Clock for AwsCloud {
    fn now(&self) -> Millis {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
