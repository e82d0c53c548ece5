//! `verify`: preflight in the spirit of `ecspresso verify`. Checks that everything the
//! config names exists and is wired as cutover expects, and says what to fix for each
//! failure. Reads only.

use super::load::load_config;
use super::session::{Session, runtime};
use super::{Io, Target};
use crate::exit::{Coded, ExitCode};
use crate::ports::{Images, Signals, Slot, Status};

/// One check's result: what was checked and, when it failed, what to do.
struct Check {
    what: String,
    problem: Option<String>,
}

pub fn run(target: &Target, io: &mut Io<'_>) -> anyhow::Result<ExitCode> {
    let out = &mut *io.out;
    // Render the task definition with a placeholder image: the roles it names are the
    // ones the next deploy registers.
    let placeholder = format!("verify.invalid/placeholder@sha256:{}", "0".repeat(64));
    let version = crate::version::Version::parse("v0.0.0")?;
    let loaded = load_config(target, Some(&version), Some(&placeholder), Some("verify"))?;
    let checks = runtime()?.block_on(async {
        let session = Session::open(target, loaded, &io.reporters).await?;
        anyhow::Ok(checks(&session).await)
    })?;
    let mut failed = 0;
    for c in &checks {
        match &c.problem {
            None => writeln!(out, "ok    {}", c.what)?,
            Some(p) => {
                failed += 1;
                writeln!(out, "FAIL  {}\n      {p}", c.what)?;
            }
        }
    }
    if failed > 0 {
        return Err(Coded::new(ExitCode::Usage, format!("verify: {failed} of {} checks failed; fix the config or the infrastructure as said above", checks.len())).into());
    }
    writeln!(out, "all {} checks passed", checks.len())?;
    io.outcome.status = Some(super::OutcomeStatus::Verified);
    Ok(ExitCode::Ok)
}

async fn checks(session: &Session) -> Vec<Check> {
    let mut checks = Vec::new();
    match &session.loaded.service.worker {
        Some(worker) => worker_checks(session, &worker.service, &mut checks).await,
        None => {
            ecs_checks(session, &mut checks).await;
            traffic_checks(session, &mut checks).await;
        }
    }
    access_checks(session, &mut checks).await;
    checks.extend(rollback_target_check(session).await);
    checks
}

fn check(what: String, problem: Option<String>) -> Check {
    Check { what, problem }
}

/// A worker: the cluster, and its one service, attached to no load balancer.
async fn worker_checks(session: &Session, service: &str, checks: &mut Vec<Check>) {
    cluster_check(session, checks).await;
    checks.push(check(
        format!("worker service `{service}` exists, with no load balancer"),
        match session.cloud.ecs.service(service, None).await {
            Ok(view) if view.load_balancers.is_empty() => None,
            Ok(view) => Some(format!(
                "`{service}` registers in [{}]: a service behind a load balancer ships blue/green; remove [worker] and give it [slots] and [traffic]",
                view.load_balancers.iter().map(|lb| lb.target_group.as_str()).collect::<Vec<_>>().join(", ")
            )),
            Err(e) => Some(format!("{e}: fix [worker] service in service.toml")),
        },
    ));
}

async fn cluster_check(session: &Session, checks: &mut Vec<Check>) {
    let cloud = &session.cloud;
    let cluster = cloud.ecs.cluster();
    checks.push(check(
        format!("ECS cluster `{cluster}` exists"),
        match cloud.ecs.cluster_exists().await {
            Ok(true) => None,
            Ok(false) => Some(format!(
                "no ACTIVE cluster `{cluster}`: fix [ecs] cluster in service.toml"
            )),
            Err(e) => Some(e.to_string()),
        },
    ));
}

/// The cluster, and each slot's service attached to its own target group.
async fn ecs_checks(session: &Session, checks: &mut Vec<Check>) {
    cluster_check(session, checks).await;
    let cloud = &session.cloud;
    for slot in [Slot::Blue, Slot::Green] {
        let (name, tg) = (cloud.slot_service(slot), cloud.slot_target_group(slot));
        checks.push(check(
            format!("{slot} service `{name}` exists and registers in its target group"),
            match cloud.ecs.service(name, None).await {
                Ok(view) if view.load_balancers.iter().any(|lb| lb.target_group == tg) => None,
                Ok(view) => Some(format!(
                    "`{name}` is attached to [{}], not to {tg}: fix [slots.{slot}] target_group_arn, or the service's load balancer",
                    view.load_balancers.iter().map(|lb| lb.target_group.as_str()).collect::<Vec<_>>().join(", ")
                )),
                Err(e) => Some(format!("{e}: fix [slots.{slot}] service in service.toml")),
            },
        ));
    }
}

/// Production forwards to both target groups; the test listener exists.
async fn traffic_checks(session: &Session, checks: &mut Vec<Check>) {
    let cloud = &session.cloud;
    checks.push(check(
        "the production listener/rule forwards to both target groups".into(),
        match cloud.elb.production_forward(cloud.production(), None).await {
            Ok(forward) => {
                let missing: Vec<&str> = [Slot::Blue, Slot::Green]
                    .into_iter()
                    .map(|s| cloud.slot_target_group(s))
                    .filter(|tg| !forward.iter().any(|(t, _)| t == tg))
                    .collect();
                (!missing.is_empty()).then(|| {
                    format!(
                        "its forward action lacks {}: both groups must stay in it (the idle one at weight 0) so the ALB health-checks both",
                        missing.join(", ")
                    )
                })
            }
            Err(e) => Some(format!(
                "{e}: fix [traffic] production_listener_arn / production_rule_arn"
            )),
        },
    ));
    let test = &session.loaded.service.traffic.test_listener_arn;
    checks.push(check(
        "the test listener exists".into(),
        cloud
            .elb
            .listener_actions(test, None)
            .await
            .err()
            .map(|e| format!("{e}: fix [traffic] test_listener_arn")),
    ));
}

/// The task definition's roles, the ECR repository and the alarms exist.
async fn access_checks(session: &Session, checks: &mut Vec<Check>) {
    let cloud = &session.cloud;
    let s = &session.loaded.service;
    if let Some(td) = &session.loaded.task_definition {
        for field in ["taskRoleArn", "executionRoleArn"] {
            if let Some(arn) = td.0[field].as_str() {
                checks.push(check(
                    format!("{field} `{arn}` exists"),
                    cloud.role_exists(arn).await.err(),
                ));
            }
        }
    }
    let repo = &s.image.repository;
    checks.push(check(
        format!("ECR repository `{repo}` exists"),
        cloud
            .repository_exists()
            .await
            .err()
            .map(|e| format!("{e}: fix [image] repository")),
    ));
    // One check per owner, so a missing alarm names the list to fix.
    let lists = [
        ("[slots.blue] alarms", &s.slots.blue.alarms),
        ("[slots.green] alarms", &s.slots.green.alarms),
        ("[validation] service_alarms", &s.validation.service_alarms),
    ];
    for (field, names) in lists.into_iter().filter(|(_, n)| !n.is_empty()) {
        checks.push(check(
            format!("{field} {} exist", names.join(", ")),
            cloud
                .alarm_states(names)
                .await
                .err()
                .map(|e| format!("{e}: fix {field}")),
        ));
    }
}

/// The release a rollback would return to still has its image (when there is one).
async fn rollback_target_check(session: &Session) -> Option<Check> {
    let cloud = &session.cloud;
    let history = match crate::ports::Store::history(cloud).await {
        Ok(history) => history,
        Err(e) => {
            return Some(check(
                "the release history is readable".into(),
                Some(e.to_string()),
            ));
        }
    };
    let previous = history
        .iter()
        .filter(|r| r.status == Status::Promoted)
        .rev()
        .nth(1)?;
    Some(check(
        format!(
            "the rollback target {} ({}) is still in the registry",
            previous.version, previous.digest
        ),
        match cloud.exists(&previous.digest).await {
            Ok(true) => None,
            Ok(false) => Some("its image is gone (a lifecycle policy?): keep at least [history] depth images in the repository".into()),
            Err(e) => Some(e.to_string()),
        },
    ))
}
