//! ECS: the two slots' services and the task definition family. Task definitions are
//! registered from the user's own JSON (the `register-task-definition` input shape the
//! config module validated) and tagged with the version, digest and a content fingerprint,
//! so an identical ACTIVE revision is reused instead of churning new revisions.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{
    DeploymentRolloutState, DesiredStatus, Service, SortOrder, TaskDefinitionField,
    TaskDefinitionStatus, TaskStopCode,
};
use aws_smithy_types::body::SdkBody;

use super::batch::{Batches, read, shared};
use super::errors::Call;
use crate::ports::{Digest, LoadBalancer, PortError, PortResult, Rollout};
use crate::version::Version;

pub const TAG_VERSION: &str = "cutover:version";
pub const TAG_DIGEST: &str = "cutover:digest";
pub const TAG_FINGERPRINT: &str = "cutover:fingerprint";

/// How many recent ACTIVE revisions to look through for an identical one.
const REUSE_WINDOW: i32 = 20;

/// One ECS service as cutover sees it.
#[derive(Debug, Clone)]
pub struct ServiceView {
    pub task_definition: Option<String>,
    pub desired: u32,
    pub running: u32,
    pub pending: u32,
    pub rollout: Rollout,
    pub events: Vec<String>,
    /// What ECS said about the current deployment that waiting will not fix: "unable to
    /// place a task" events since it began, a deployment the circuit breaker failed and
    /// rolled back from.
    pub failures: Vec<String>,
    /// When the current (PRIMARY) deployment began.
    pub deployed_at: Option<aws_smithy_types::DateTime>,
    pub load_balancers: Vec<LoadBalancer>,
}

/// Why stopped tasks stopped; `failures` are those of tasks of the current task definition
/// that failed to start or whose essential container exited.
#[derive(Debug, Clone, Default)]
pub struct Stopped {
    pub reasons: Vec<String>,
    pub failures: Vec<String>,
}

/// What cutover tagged a task definition with; absent for revisions it did not register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub arn: String,
    pub version: Version,
    pub digest: Digest,
    pub fingerprint: String,
}

pub struct Ecs {
    client: Client,
    cluster: String,
    /// What each task definition ARN was tagged with. A revision's content and tags are
    /// fixed at registration, so an answer holds for the whole run.
    known: Mutex<HashMap<String, Option<Tagged>>>,
}

impl Ecs {
    pub fn new(client: Client, cluster: impl Into<String>) -> Self {
        Self {
            client,
            cluster: cluster.into(),
            known: Mutex::default(),
        }
    }

    /// Record what a task definition holds, learnt elsewhere (cutover's own history names
    /// the ARNs it registered with their version, digest and fingerprint).
    pub fn remember(&self, tagged: Tagged) {
        self.known
            .lock()
            .expect("ecs cache")
            .insert(tagged.arn.clone(), Some(tagged));
    }

    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    pub async fn cluster_exists(&self) -> PortResult<bool> {
        let out = Call::read("ecs:DescribeClusters", &self.cluster)
            .send(
                self.client
                    .describe_clusters()
                    .clusters(&self.cluster)
                    .send(),
            )
            .await?;
        Ok(out.clusters().iter().any(|c| c.status() == Some("ACTIVE")))
    }

    pub async fn service(&self, name: &str, batch: Option<&Batches>) -> PortResult<ServiceView> {
        let mut views = self.services(&[name], batch).await?;
        Ok(views.remove(0))
    }

    /// Several services of the cluster in one DescribeServices call, in the order asked
    /// (with `batch`, in one call with other members' services of the cluster).
    pub async fn services(
        &self,
        names: &[&str],
        batch: Option<&Batches>,
    ) -> PortResult<Vec<ServiceView>> {
        let owned = names.iter().map(|n| n.to_string()).collect();
        let services = batch.map(|b| &b.services);
        let all = read(services, &self.cluster, owned, |all| self.describe(all)).await;
        let services = shared(&all)?;
        names
            .iter()
            .map(|name| {
                services
                    .iter()
                    .find(|s| {
                        s.status() != Some("INACTIVE")
                            && (s.service_name() == Some(name) || s.service_arn() == Some(name))
                    })
                    .map(view)
                    .ok_or_else(|| {
                        PortError::NotFound(format!(
                            "ECS service `{name}` in cluster `{}`",
                            self.cluster
                        ))
                    })
            })
            .collect()
    }

    async fn describe(&self, names: Vec<String>) -> PortResult<Vec<Service>> {
        let joined = names.join(",");
        let out = Call::read("ecs:DescribeServices", &joined)
            .send(
                self.client
                    .describe_services()
                    .cluster(&self.cluster)
                    .set_services(Some(names))
                    .send(),
            )
            .await?;
        Ok(out.services().to_vec())
    }

    /// Why the service's recently stopped tasks stopped, newest first; the failures among
    /// them are those of tasks of `task_definition` (not the release it replaced, whose
    /// tasks stop normally during a rollout).
    pub async fn stopped(&self, service: &str, view: &ServiceView) -> PortResult<Stopped> {
        let task_definition = view.task_definition.as_deref();
        let list = Call::read("ecs:ListTasks", service)
            .send(
                self.client
                    .list_tasks()
                    .cluster(&self.cluster)
                    .service_name(service)
                    .desired_status(DesiredStatus::Stopped)
                    .max_results(5)
                    .send(),
            )
            .await?;
        if list.task_arns().is_empty() {
            return Ok(Stopped::default());
        }
        let tasks = Call::read("ecs:DescribeTasks", service)
            .send(
                self.client
                    .describe_tasks()
                    .cluster(&self.cluster)
                    .set_tasks(Some(list.task_arns().to_vec()))
                    .send(),
            )
            .await?;
        let mut stopped = Stopped::default();
        for t in tasks.tasks() {
            let Some(reason) = describe_stop(t) else {
                continue;
            };
            let failed = matches!(
                t.stop_code(),
                Some(TaskStopCode::TaskFailedToStart | TaskStopCode::EssentialContainerExited)
            );
            // A task of this deployment (not an earlier one of the same revision).
            let current = task_definition.is_some()
                && t.task_definition_arn() == task_definition
                && match (view.deployed_at, t.created_at()) {
                    (Some(since), Some(at)) => *at >= since,
                    _ => true,
                };
            if failed && current {
                stopped.failures.push(reason.clone());
            }
            stopped.reasons.push(reason);
        }
        Ok(stopped)
    }

    /// The tags cutover put on a task definition, or None for a revision it did not register.
    pub async fn tagged(&self, arn: &str) -> PortResult<Option<Tagged>> {
        if let Some(known) = self.known.lock().expect("ecs cache").get(arn) {
            return Ok(known.clone());
        }
        let tagged = self.describe_tags(arn).await?;
        let mut known = self.known.lock().expect("ecs cache");
        known.insert(arn.to_string(), tagged.clone());
        if let Some(t) = &tagged {
            // The service names the revision by its full ARN; keep both spellings.
            known.insert(t.arn.clone(), tagged.clone());
        }
        Ok(tagged)
    }

    async fn describe_tags(&self, arn: &str) -> PortResult<Option<Tagged>> {
        let out = Call::read("ecs:DescribeTaskDefinition", arn)
            .send(
                self.client
                    .describe_task_definition()
                    .task_definition(arn)
                    .include(TaskDefinitionField::Tags)
                    .send(),
            )
            .await?;
        let tags: BTreeMap<&str, &str> = out
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?, t.value()?)))
            .collect();
        let full_arn = out
            .task_definition()
            .and_then(|td| td.task_definition_arn())
            .unwrap_or(arn);
        let (Some(version), Some(digest), Some(fingerprint)) = (
            tags.get(TAG_VERSION),
            tags.get(TAG_DIGEST),
            tags.get(TAG_FINGERPRINT),
        ) else {
            return Ok(None);
        };
        let Ok(version) = Version::parse(version) else {
            return Ok(None);
        };
        Ok(Some(Tagged {
            arn: full_arn.to_string(),
            version,
            digest: Digest(digest.to_string()),
            fingerprint: fingerprint.to_string(),
        }))
    }

    /// Register `content` (the task definition JSON) tagged with version, digest and
    /// fingerprint — or return the newest ACTIVE revision of the family with that fingerprint.
    pub async fn register(
        &self,
        content: &str,
        version: &Version,
        digest: &Digest,
        fingerprint: &str,
    ) -> PortResult<String> {
        let mut body: serde_json::Value = serde_json::from_str(content)
            .map_err(|e| PortError::Conflict(format!("task definition is not JSON: {e}")))?;
        let family = body["family"].as_str().unwrap_or_default().to_string();
        if let Some(arn) = self
            .find_identical(&family, version, digest, fingerprint)
            .await?
        {
            tracing::debug!(%arn, "reusing identical task definition");
            return Ok(arn);
        }
        let tags = body
            .as_object_mut()
            .map(|o| o.entry("tags").or_insert_with(|| serde_json::json!([])));
        if let Some(serde_json::Value::Array(tags)) = tags {
            tags.retain(|t| !t["key"].as_str().is_some_and(|k| k.starts_with("cutover:")));
            for (key, value) in [
                (TAG_VERSION, version.to_string()),
                (TAG_DIGEST, digest.0.clone()),
                (TAG_FINGERPRINT, fingerprint.to_string()),
            ] {
                tags.push(serde_json::json!({"key": key, "value": value}));
            }
        }
        let body = serde_json::to_vec(&body).expect("JSON values serialize");
        // The request body is the user's JSON, which already has the API's wire shape
        // (it is what `--cli-input-json` takes). Sending it as is keeps every field the user
        // wrote — including ones newer than this SDK's types — instead of re-typing ~100
        // nested fields by hand. The builder only supplies what the SDK requires; the body
        // is swapped before signing, so the signature covers what is sent.
        let placeholder = aws_sdk_ecs::types::ContainerDefinition::builder()
            .name("placeholder")
            .image("placeholder")
            .build();
        let out = Call::write("ecs:RegisterTaskDefinition", &family)
            .send(
                self.client
                    .register_task_definition()
                    .family(&family)
                    .container_definitions(placeholder)
                    .customize()
                    .mutate_request(move |req| {
                        let len = body.len();
                        *req.body_mut() = SdkBody::from(body.clone());
                        req.headers_mut().insert("content-length", len.to_string());
                    })
                    .send(),
            )
            .await?;
        out.task_definition()
            .and_then(|td| td.task_definition_arn())
            .map(str::to_string)
            .ok_or_else(|| PortError::Transient("RegisterTaskDefinition returned no ARN".into()))
    }

    async fn find_identical(
        &self,
        family: &str,
        version: &Version,
        digest: &Digest,
        fingerprint: &str,
    ) -> PortResult<Option<String>> {
        let list = Call::read("ecs:ListTaskDefinitions", family)
            .send(
                self.client
                    .list_task_definitions()
                    .family_prefix(family)
                    .status(TaskDefinitionStatus::Active)
                    .sort(SortOrder::Desc)
                    .max_results(REUSE_WINDOW)
                    .send(),
            )
            .await?;
        for arn in list.task_definition_arns() {
            // family_prefix matches `web` and `web-canary` alike: keep the exact family.
            if family_of(arn) != family {
                continue;
            }
            if let Some(t) = self.tagged(arn).await?
                && t.fingerprint == fingerprint
                && &t.version == version
                && &t.digest == digest
            {
                return Ok(Some(t.arn));
            }
        }
        Ok(None)
    }

    pub async fn update(
        &self,
        service: &str,
        task_definition: &str,
        desired: u32,
        circuit_breaker: bool,
    ) -> PortResult<()> {
        let mut call = self
            .client
            .update_service()
            .cluster(&self.cluster)
            .service(service)
            .task_definition(task_definition)
            .desired_count(i32::try_from(desired).unwrap_or(i32::MAX));
        if circuit_breaker {
            use aws_sdk_ecs::types::{DeploymentCircuitBreaker, DeploymentConfiguration};
            call = call.deployment_configuration(
                DeploymentConfiguration::builder()
                    .deployment_circuit_breaker(
                        DeploymentCircuitBreaker::builder()
                            .enable(true)
                            .rollback(false)
                            .build(),
                    )
                    .build(),
            );
        }
        Call::write("ecs:UpdateService", service)
            .send(call.send())
            .await?;
        Ok(())
    }
}

fn view(svc: &aws_sdk_ecs::types::Service) -> ServiceView {
    let td = svc.task_definition().map(str::to_string);
    // The deployment running the service's task definition; PRIMARY otherwise.
    let deployment = svc
        .deployments()
        .iter()
        .find(|d| d.task_definition() == td.as_deref() && d.status() == Some("PRIMARY"))
        .or_else(|| {
            svc.deployments()
                .iter()
                .find(|d| d.status() == Some("PRIMARY"))
        });
    let rollout = match deployment.and_then(|d| d.rollout_state()) {
        Some(DeploymentRolloutState::Completed) => Rollout::Completed,
        Some(DeploymentRolloutState::Failed) => Rollout::Failed,
        Some(_) => Rollout::InProgress,
        // No rollout state (e.g. the ECS deployment controller without circuit breaker
        // on an old service): one deployment left means it finished.
        None if svc.deployments().len() <= 1 => Rollout::Completed,
        None => Rollout::InProgress,
    };
    // Events since the current deployment began: an old placement failure, since
    // resolved, says nothing about this rollout.
    let since = deployment.and_then(|d| d.created_at());
    let mut failures: Vec<String> = svc
        .events()
        .iter()
        .filter(|e| match (since, e.created_at()) {
            (Some(since), Some(at)) => at >= since,
            _ => true,
        })
        .filter_map(|e| e.message())
        .filter(|m| crate::model::is_placement_failure(m))
        .take(3)
        .map(str::to_string)
        .collect();
    // With the circuit breaker's rollback on, ECS puts the service back on the previous
    // task definition: the failed deployment is the one that is not PRIMARY.
    failures.extend(
        svc.deployments()
            .iter()
            .filter(|d| d.status() != Some("PRIMARY"))
            .filter(|d| d.rollout_state() == Some(&DeploymentRolloutState::Failed))
            .map(|d| {
                format!(
                    "deployment of {} FAILED: {}",
                    d.task_definition().unwrap_or("-"),
                    d.rollout_state_reason().unwrap_or("-")
                )
            }),
    );
    ServiceView {
        failures,
        deployed_at: since.copied(),
        task_definition: td,
        desired: count(svc.desired_count()),
        running: count(svc.running_count()),
        pending: count(svc.pending_count()),
        rollout,
        events: svc
            .events()
            .iter()
            .take(5)
            .filter_map(|e| e.message().map(str::to_string))
            .collect(),
        load_balancers: svc
            .load_balancers()
            .iter()
            .filter_map(|lb| {
                Some(LoadBalancer {
                    target_group: lb.target_group_arn()?.to_string(),
                    container: lb.container_name().unwrap_or_default().to_string(),
                    port: lb
                        .container_port()
                        .and_then(|p| u16::try_from(p).ok())
                        .unwrap_or(0),
                })
            })
            .collect(),
    }
}

/// A stopped task's reason with its containers' reasons (or that they exited).
fn describe_stop(t: &aws_sdk_ecs::types::Task) -> Option<String> {
    let reason = t.stopped_reason()?;
    let containers: Vec<String> = t
        .containers()
        .iter()
        .filter_map(|c| {
            Some(format!(
                "{}: {}",
                c.name()?,
                c.reason().or(c.exit_code().map(|_| "exited"))?
            ))
        })
        .collect();
    Some(if containers.is_empty() {
        reason.to_string()
    } else {
        format!("{reason} ({})", containers.join("; "))
    })
}

/// `arn:aws:ecs:r:a:task-definition/web:7` → `web`.
fn family_of(arn: &str) -> &str {
    let name = arn.rsplit('/').next().unwrap_or(arn);
    name.rsplit_once(':').map_or(name, |(family, _)| family)
}

fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// `cutover cleanup` and `cutover diff`: the family's revisions, one revision's content,
/// deregistration.
impl Ecs {
    /// Every ACTIVE revision of exactly `family` (ListTaskDefinitions pages), newest first.
    pub async fn revisions(&self, family: &str) -> PortResult<Vec<crate::ports::Revision>> {
        let mut arns = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = Call::read("ecs:ListTaskDefinitions", family)
                .send(
                    self.client
                        .list_task_definitions()
                        .family_prefix(family)
                        .status(TaskDefinitionStatus::Active)
                        .sort(SortOrder::Desc)
                        .set_next_token(next.clone())
                        .send(),
                )
                .await?;
            arns.extend(out.task_definition_arns().iter().cloned());
            match out.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => break,
            }
        }
        let mut revisions: Vec<crate::ports::Revision> = arns
            .into_iter()
            // family_prefix matches `web` and `web-canary` alike: keep the exact family.
            .filter(|arn| family_of(arn) == family)
            .map(|arn| crate::ports::Revision {
                number: arn
                    .rsplit_once(':')
                    .and_then(|(_, n)| n.parse().ok())
                    .unwrap_or(0),
                family: family.to_string(),
                arn,
            })
            .collect();
        revisions.sort_by_key(|r| std::cmp::Reverse(r.number));
        Ok(revisions)
    }

    /// The fields `cutover diff` compares, in the register-task-definition JSON shape.
    pub async fn task_definition_json(&self, arn: &str) -> PortResult<serde_json::Value> {
        let out = Call::read("ecs:DescribeTaskDefinition", arn)
            .send(
                self.client
                    .describe_task_definition()
                    .task_definition(arn)
                    .send(),
            )
            .await?;
        let td = out
            .task_definition()
            .ok_or_else(|| PortError::NotFound(format!("task definition {arn}")))?;
        Ok(register_shape(td))
    }

    pub async fn deregister(&self, arn: &str) -> PortResult<()> {
        Call::write("ecs:DeregisterTaskDefinition", arn)
            .send(
                self.client
                    .deregister_task_definition()
                    .task_definition(arn)
                    .send(),
            )
            .await?;
        Ok(())
    }
}

/// A described task definition back in the shape the user writes (`--cli-input-json`),
/// limited to what a diff shows; absent fields are left out, as the user would.
fn register_shape(td: &aws_sdk_ecs::types::TaskDefinition) -> serde_json::Value {
    use serde_json::{Map, Value, json};
    let mut o = Map::new();
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            o.insert(k.into(), Value::from(v));
        }
    };
    put("family", td.family());
    put("taskRoleArn", td.task_role_arn());
    put("executionRoleArn", td.execution_role_arn());
    put("networkMode", td.network_mode().map(|m| m.as_str()));
    put("cpu", td.cpu());
    put("memory", td.memory());
    let compat: Vec<&str> = td
        .requires_compatibilities()
        .iter()
        .map(|c| c.as_str())
        .collect();
    if !compat.is_empty() {
        o.insert("requiresCompatibilities".into(), json!(compat));
    }
    let containers: Vec<Value> = td
        .container_definitions()
        .iter()
        .map(|c| {
            let mut m = Map::new();
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            };
            put("name", c.name().map(Value::from));
            put("image", c.image().map(Value::from));
            put("essential", c.essential().map(Value::from));
            put("cpu", (c.cpu() != 0).then(|| Value::from(c.cpu())));
            put("memory", c.memory().map(Value::from));
            put("memoryReservation", c.memory_reservation().map(Value::from));
            put(
                "portMappings",
                Some(each(c.port_mappings(), |p| {
                    json!({
                        "containerPort": p.container_port(),
                        "protocol": p.protocol().map(|p| p.as_str()).unwrap_or("tcp"),
                    })
                })),
            );
            put(
                "environment",
                Some(each(
                    c.environment(),
                    |e| json!({"name": e.name(), "value": e.value()}),
                )),
            );
            put(
                "secrets",
                Some(each(
                    c.secrets(),
                    |s| json!({"name": s.name(), "valueFrom": s.value_from()}),
                )),
            );
            put(
                "command",
                (!c.command().is_empty()).then(|| json!(c.command())),
            );
            put(
                "entryPoint",
                (!c.entry_point().is_empty()).then(|| json!(c.entry_point())),
            );
            Value::Object(m)
        })
        .collect();
    o.insert("containerDefinitions".into(), Value::Array(containers));
    Value::Object(o)
}

/// A list of SDK values as a JSON array, one object each.
fn each<T>(items: &[T], to_json: impl Fn(&T) -> serde_json::Value) -> serde_json::Value {
    serde_json::Value::Array(items.iter().map(to_json).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_from_arn() {
        assert_eq!(
            family_of("arn:aws:ecs:eu-west-1:1:task-definition/web-prod:17"),
            "web-prod"
        );
    }

    use aws_sdk_ecs::types::{Deployment, Service, ServiceEvent};
    use aws_smithy_types::DateTime;

    fn deployment(td: &str, status: &str, rollout: DeploymentRolloutState, at: i64) -> Deployment {
        Deployment::builder()
            .task_definition(td)
            .status(status)
            .rollout_state(rollout)
            .rollout_state_reason("tasks failed to start")
            .created_at(DateTime::from_secs(at))
            .build()
    }

    fn event(message: &str, at: i64) -> ServiceEvent {
        ServiceEvent::builder()
            .message(message)
            .created_at(DateTime::from_secs(at))
            .build()
    }

    const UNPLACEABLE: &str = "(service web-green) was unable to place a task because no container instance met all of its requirements.";

    #[test]
    fn a_failed_primary_rollout_is_read_and_only_this_deployments_placement_failures_count() {
        let svc = Service::builder()
            .task_definition("td:2")
            .desired_count(2)
            .deployments(deployment(
                "td:2",
                "PRIMARY",
                DeploymentRolloutState::Failed,
                1_000,
            ))
            .events(event(UNPLACEABLE, 1_010))
            .events(event(
                "(service web-green) has reached a steady state.",
                900,
            ))
            // From an earlier deployment, since resolved: says nothing about this one.
            .events(event(UNPLACEABLE, 500))
            .build();
        let v = view(&svc);
        assert_eq!(v.rollout, Rollout::Failed);
        assert_eq!(v.failures, vec![UNPLACEABLE.to_string()]);
        assert_eq!(v.deployed_at, Some(DateTime::from_secs(1_000)));
    }

    #[test]
    fn a_deployment_the_circuit_breaker_failed_and_rolled_back_from_is_a_failure() {
        let svc = Service::builder()
            .task_definition("td:1")
            .deployments(deployment(
                "td:1",
                "PRIMARY",
                DeploymentRolloutState::InProgress,
                2_000,
            ))
            .deployments(deployment(
                "td:2",
                "ACTIVE",
                DeploymentRolloutState::Failed,
                1_000,
            ))
            .build();
        let v = view(&svc);
        assert_eq!(v.rollout, Rollout::InProgress);
        assert_eq!(
            v.failures,
            vec!["deployment of td:2 FAILED: tasks failed to start".to_string()]
        );
    }
}
