//! ELBv2: production forward weights on a listener's default action or a listener rule,
//! the test listener, and target health. Weights are written with every other part of the
//! action kept (stickiness, authenticate actions before the forward) and always read back
//! by the engine before it does anything else.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, Listener, TargetGroupTuple, TargetHealthStateEnum,
};

use super::batch::{Batches, read, shared};
use super::errors::Call;
use crate::ports::{HealthCheckTiming, PortError, PortResult, TargetHealth, TargetState};

/// Where production weights live.
#[derive(Debug, Clone)]
pub enum Production {
    Listener(String),
    Rule(String),
}

impl Production {
    pub fn arn(&self) -> &str {
        match self {
            Production::Listener(a) | Production::Rule(a) => a,
        }
    }

    /// How service.toml names it, for messages.
    pub fn field(&self) -> &'static str {
        match self {
            Production::Listener(_) => "production_listener_arn",
            Production::Rule(_) => "production_rule_arn",
        }
    }
}

pub struct Elb {
    client: Client,
    /// The production listener's (or rule's) actions as last read or written, and when. A
    /// weight write keeps every other part of the actions, so it needs them; a recent read
    /// saves describing them again right before the write (a rollback reads them a moment
    /// earlier to know the live slot). Never used to answer a read: reads always describe.
    actions: Mutex<HashMap<String, (Instant, Vec<Action>)>>,
    /// Health-check settings per target group: they do not change within a run.
    timings: Mutex<HashMap<String, HealthCheckTiming>>,
}

/// How old the remembered actions may be for a weight write to rely on them.
const ACTIONS_FRESH: Duration = Duration::from_secs(30);

/// Target group ARN → weight, as the forward action has it.
pub type Forward = Vec<(String, i32)>;

impl Elb {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            actions: Mutex::default(),
            timings: Mutex::default(),
        }
    }

    fn remember(&self, arn: &str, actions: &[Action]) {
        self.actions
            .lock()
            .expect("elb cache")
            .insert(arn.to_string(), (Instant::now(), actions.to_vec()));
    }

    fn remembered(&self, arn: &str) -> Option<Vec<Action>> {
        let mut cache = self.actions.lock().expect("elb cache");
        match cache.remove(arn) {
            Some((at, actions)) if at.elapsed() < ACTIONS_FRESH => Some(actions),
            _ => None,
        }
    }

    pub async fn listener_actions(
        &self,
        listener: &str,
        batch: Option<&Batches>,
    ) -> PortResult<Vec<Action>> {
        Ok(self.listeners_actions(&[listener], batch).await?.remove(0))
    }

    /// The default actions of several listeners in one DescribeListeners call, in order
    /// (with `batch`, in one call with other members' listeners).
    async fn listeners_actions(
        &self,
        listeners: &[&str],
        batch: Option<&Batches>,
    ) -> PortResult<Vec<Vec<Action>>> {
        let arns = listeners.iter().map(|l| l.to_string()).collect();
        let coalescer = batch.map(|b| &b.listeners);
        let all = read(coalescer, "elb", arns, |all| self.describe_listeners(all)).await;
        let described = shared(&all)?;
        listeners
            .iter()
            .map(|arn| {
                described
                    .iter()
                    .find(|l| l.listener_arn() == Some(arn))
                    .map(|l| l.default_actions().to_vec())
                    .ok_or_else(|| PortError::NotFound(format!("listener {arn}")))
            })
            .collect()
    }

    async fn describe_listeners(&self, arns: Vec<String>) -> PortResult<Vec<Listener>> {
        let joined = arns.join(",");
        let out = Call::read("elasticloadbalancing:DescribeListeners", &joined)
            .send(
                self.client
                    .describe_listeners()
                    .set_listener_arns(Some(arns))
                    .send(),
            )
            .await?;
        Ok(out.listeners().to_vec())
    }

    async fn rule_actions(&self, rule: &str) -> PortResult<Vec<Action>> {
        let out = Call::read("elasticloadbalancing:DescribeRules", rule)
            .send(self.client.describe_rules().rule_arns(rule).send())
            .await?;
        let r = out
            .rules()
            .first()
            .ok_or_else(|| PortError::NotFound(format!("listener rule {rule}")))?;
        Ok(r.actions().to_vec())
    }

    async fn actions(
        &self,
        production: &Production,
        batch: Option<&Batches>,
    ) -> PortResult<Vec<Action>> {
        let actions = match production {
            Production::Listener(arn) => self.listener_actions(arn, batch).await?,
            Production::Rule(arn) => self.rule_actions(arn).await?,
        };
        self.remember(production.arn(), &actions);
        Ok(actions)
    }

    /// The forward target groups and weights of the production listener or rule.
    pub async fn production_forward(
        &self,
        production: &Production,
        batch: Option<&Batches>,
    ) -> PortResult<Forward> {
        let actions = self.actions(production, batch).await?;
        production_forward_of(production, &actions)
    }

    /// The production forward and the test listener's target, in one DescribeListeners
    /// call when production is a listener (two calls at once for a rule).
    pub async fn production_and_test(
        &self,
        production: &Production,
        test: &str,
        batch: Option<&Batches>,
    ) -> PortResult<(Forward, Option<String>)> {
        let (production_actions, test_actions) = match production {
            Production::Listener(arn) => {
                let mut both = self
                    .listeners_actions(&[arn, test], batch)
                    .await?
                    .into_iter();
                let production_actions = both.next().expect("one per listener");
                self.remember(arn, &production_actions);
                (production_actions, both.next().expect("one per listener"))
            }
            Production::Rule(_) => tokio::try_join!(
                self.actions(production, batch),
                self.listener_actions(test, batch)
            )?,
        };
        Ok((
            production_forward_of(production, &production_actions)?,
            test_target_of(&test_actions),
        ))
    }

    /// Replace the forward weights, keeping every other action and the stickiness config.
    pub async fn set_production_forward(
        &self,
        production: &Production,
        forward: &Forward,
    ) -> PortResult<()> {
        let actions = match self.remembered(production.arn()) {
            Some(actions) => actions,
            // A write's own read: not worth batching (the cache usually answers).
            None => self.actions(production, None).await?,
        };
        let updated = with_forward(&actions, forward);
        match production {
            Production::Listener(arn) => self.modify_listener(arn, updated.clone()).await?,
            Production::Rule(arn) => {
                Call::write("elasticloadbalancing:ModifyRule", arn)
                    .send(
                        self.client
                            .modify_rule()
                            .rule_arn(arn)
                            .set_actions(Some(updated.clone()))
                            .send(),
                    )
                    .await?;
            }
        }
        self.remember(production.arn(), &updated);
        Ok(())
    }

    /// The target group the test listener forwards to (the one with weight, if several).
    pub async fn test_target(&self, listener: &str) -> PortResult<Option<String>> {
        Ok(test_target_of(
            &self.listener_actions(listener, None).await?,
        ))
    }

    /// Point the test listener at one target group.
    pub async fn point_test(&self, listener: &str, target_group: &str) -> PortResult<()> {
        let actions = self.listener_actions(listener, None).await?;
        let updated = with_forward(&actions, &vec![(target_group.to_string(), 1)]);
        self.modify_listener(listener, updated).await
    }

    async fn modify_listener(&self, listener: &str, actions: Vec<Action>) -> PortResult<()> {
        Call::write("elasticloadbalancing:ModifyListener", listener)
            .send(
                self.client
                    .modify_listener()
                    .listener_arn(listener)
                    .set_default_actions(Some(actions))
                    .send(),
            )
            .await?;
        Ok(())
    }

    pub async fn target_health(&self, target_group: &str) -> PortResult<Vec<TargetHealth>> {
        let out = Call::read("elasticloadbalancing:DescribeTargetHealth", target_group)
            .send(
                self.client
                    .describe_target_health()
                    .target_group_arn(target_group)
                    .send(),
            )
            .await?;
        Ok(out
            .target_health_descriptions()
            .iter()
            .map(|d| {
                let target = d.target();
                let id = match (target.and_then(|t| t.id()), target.and_then(|t| t.port())) {
                    (Some(id), Some(port)) => format!("{id}:{port}"),
                    (Some(id), None) => id.to_string(),
                    _ => "?".into(),
                };
                let health = d.target_health();
                let state = match health.and_then(|h| h.state()) {
                    Some(TargetHealthStateEnum::Healthy) => TargetState::Healthy,
                    Some(TargetHealthStateEnum::Initial) => TargetState::Initial,
                    Some(TargetHealthStateEnum::Draining) => TargetState::Draining,
                    Some(TargetHealthStateEnum::Unused) => TargetState::Unused,
                    _ => TargetState::Unhealthy,
                };
                let reason = health.and_then(|h| match (h.reason(), h.description()) {
                    (Some(r), Some(d)) => Some(format!("{}: {d}", r.as_str())),
                    (Some(r), None) => Some(r.as_str().to_string()),
                    (None, d) => d.map(str::to_string),
                });
                TargetHealth { id, state, reason }
            })
            .collect())
    }

    /// Health-check interval and healthy threshold: a new target turns healthy after
    /// their product, which is when the engine polls closely.
    pub async fn health_check_timing(&self, target_group: &str) -> PortResult<HealthCheckTiming> {
        if let Some(t) = self.timings.lock().expect("elb cache").get(target_group) {
            return Ok(*t);
        }
        let out = Call::read("elasticloadbalancing:DescribeTargetGroups", target_group)
            .send(
                self.client
                    .describe_target_groups()
                    .target_group_arns(target_group)
                    .send(),
            )
            .await?;
        let tg = out
            .target_groups()
            .first()
            .ok_or_else(|| PortError::NotFound(format!("target group {target_group}")))?;
        let secs = tg.health_check_interval_seconds().unwrap_or(30);
        let timing = HealthCheckTiming {
            interval: Duration::from_secs(u64::try_from(secs).unwrap_or(30)),
            healthy_threshold: u32::try_from(tg.healthy_threshold_count().unwrap_or(5))
                .unwrap_or(5),
        };
        self.timings
            .lock()
            .expect("elb cache")
            .insert(target_group.to_string(), timing);
        Ok(timing)
    }
}

fn production_forward_of(production: &Production, actions: &[Action]) -> PortResult<Forward> {
    forward_of(actions).ok_or_else(|| {
        PortError::Conflict(format!(
            "{} has no forward action; point it at the blue and green target groups (terraform/ does)",
            production.arn()
        ))
    })
}

/// The target group a test listener forwards to (the one with weight, if several).
fn test_target_of(actions: &[Action]) -> Option<String> {
    forward_of(actions).and_then(|f| {
        f.into_iter()
            .filter(|(_, w)| *w > 0)
            .map(|(tg, _)| tg)
            .next()
    })
}

/// The forward action's target groups and weights. A plain `TargetGroupArn` forward
/// (no ForwardConfig) is one group at full weight.
pub fn forward_of(actions: &[Action]) -> Option<Forward> {
    let forward = actions
        .iter()
        .find(|a| a.r#type() == Some(&ActionTypeEnum::Forward))?;
    match forward.forward_config() {
        Some(cfg) if !cfg.target_groups().is_empty() => Some(
            cfg.target_groups()
                .iter()
                .filter_map(|t| Some((t.target_group_arn()?.to_string(), t.weight().unwrap_or(1))))
                .collect(),
        ),
        _ => forward
            .target_group_arn()
            .map(|tg| vec![(tg.to_string(), 1)]),
    }
}

/// `actions` with the forward action's target groups replaced by `forward`.
fn with_forward(actions: &[Action], forward: &Forward) -> Vec<Action> {
    let tuples: Vec<TargetGroupTuple> = forward
        .iter()
        .map(|(tg, w)| {
            TargetGroupTuple::builder()
                .target_group_arn(tg)
                .weight(*w)
                .build()
        })
        .collect();
    let build = |order: Option<i32>, stickiness| {
        Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .set_order(order)
            .forward_config(
                ForwardActionConfig::builder()
                    .set_target_groups(Some(tuples.clone()))
                    .set_target_group_stickiness_config(stickiness)
                    .build(),
            )
            .build()
    };
    let mut replaced = false;
    let mut out: Vec<Action> = actions
        .iter()
        .map(|a| {
            if a.r#type() == Some(&ActionTypeEnum::Forward) && !replaced {
                replaced = true;
                build(
                    a.order(),
                    a.forward_config()
                        .and_then(|c| c.target_group_stickiness_config())
                        .cloned(),
                )
            } else {
                a.clone()
            }
        })
        .collect();
    if !replaced {
        out.push(build(None, None));
    }
    out
}
