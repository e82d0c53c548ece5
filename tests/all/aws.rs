//! The AWS adapters on the wire against moto: every port call, read back through the SDK.

use cutover::aws::cloud::AwsCloud;
use cutover::config::{Context, Layout};
use cutover::ports::*;
use cutover::version::Version;

use crate::moto::Stack;

pub(crate) async fn cloud(stack: &Stack) -> AwsCloud {
    cloud_and_settings(stack).await.0
}

/// The adapter for `stack` and the service settings it was built from (what an engine takes).
pub async fn cloud_and_settings(
    stack: &Stack,
) -> (AwsCloud, cutover::config::settings::ServiceSettings) {
    let dir = tempfile::tempdir().unwrap();
    let root = stack.config_dir(dir.path());
    let context = Context {
        env: "test".into(),
        service: stack.name.clone(),
        version: None,
        image: None,
        git_sha: None,
        build_dir: dir.path().join("build"),
    };
    let loaded = cutover::config::load(&Layout::new(root), context).unwrap();
    let cloud = AwsCloud::new(
        &stack.sdk().await,
        "test",
        &stack.name,
        &loaded.environment,
        &loaded.service,
    );
    (cloud, loaded.service)
}

pub(crate) fn spec(stack: &Stack, version: &str, cpu: &str) -> TaskSpec {
    let content = serde_json::json!({
        "family": stack.str("task_definition_family"),
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": cpu,
        "memory": "512",
        "containerDefinitions": [{"name": "web", "image": format!("{}@sha256:{:0>64}", stack.str("repository_uri"), 1), "portMappings": [{"containerPort": 8080}],
            "environment": [{"name": "VERSION", "value": version}]}]
    })
    .to_string();
    TaskSpec::new(
        Version::parse(version).unwrap(),
        Digest(format!("sha256:{:0>64}", 1)),
        content,
    )
}

#[tokio::test]
async fn weights_are_written_and_read_back_on_the_production_listener() {
    let Some(stack) = Stack::create("w") else {
        return;
    };
    let cloud = cloud(&stack).await;
    assert_eq!(
        cloud.production_weights().await.unwrap(),
        Weights::all_on(Slot::Blue)
    );
    cloud
        .set_production_weights(Weights::split(Slot::Green, 10))
        .await
        .unwrap();
    assert_eq!(
        cloud.production_weights().await.unwrap(),
        Weights {
            blue: 90,
            green: 10
        }
    );
    cloud
        .set_production_weights(Weights::all_on(Slot::Green))
        .await
        .unwrap();
    assert_eq!(
        cloud.production_weights().await.unwrap().live(),
        Some(Slot::Green)
    );
}

#[tokio::test]
async fn test_listener_follows_the_slot_it_is_pointed_at() {
    let Some(stack) = Stack::create("t") else {
        return;
    };
    let cloud = cloud(&stack).await;
    assert_eq!(cloud.test_listener().await.unwrap(), Some(Slot::Green));
    cloud.point_test_listener(Slot::Blue).await.unwrap();
    assert_eq!(cloud.test_listener().await.unwrap(), Some(Slot::Blue));
}

#[tokio::test]
async fn identical_task_definitions_are_reused_not_re_registered() {
    let Some(stack) = Stack::create("r") else {
        return;
    };
    let cloud = cloud(&stack).await;
    let first = cloud
        .register_task_definition(&spec(&stack, "v1.0.0", "256"))
        .await
        .unwrap();
    let again = cloud
        .register_task_definition(&spec(&stack, "v1.0.0", "256"))
        .await
        .unwrap();
    assert_eq!(
        first.id, again.id,
        "identical content must reuse the revision"
    );
    let other = cloud
        .register_task_definition(&spec(&stack, "v1.0.0", "512"))
        .await
        .unwrap();
    assert_ne!(first.id, other.id);

    // The slot reads back what cutover tagged the revision with.
    cloud.update_slot(Slot::Green, &first.id, 2).await.unwrap();
    let slot = cloud.read_slot(Slot::Green).await.unwrap();
    let td = slot.task_definition.expect("cutover's tags read back");
    assert_eq!(td.id, first.id);
    assert_eq!(td.spec.version.to_string(), "v1.0.0");
    assert_eq!(td.spec.fingerprint, first.spec.fingerprint);
    assert_eq!(slot.desired, 2);
    // A revision cutover did not register (terraform's bootstrap) reads as unknown content.
    assert!(
        cloud
            .read_slot(Slot::Blue)
            .await
            .unwrap()
            .task_definition
            .is_none()
    );
}

#[tokio::test]
async fn the_lock_is_create_if_absent_and_history_is_capped() {
    let Some(stack) = Stack::create("l") else {
        return;
    };
    let cloud = cloud(&stack).await;
    let lock = Lock {
        owner: "run-1".into(),
        token: "t1".into(),
        acquired_at: 1,
        expires_at: 2,
    };
    assert_eq!(cloud.read_lock().await.unwrap(), None);
    cloud.create_lock(&lock).await.unwrap();
    let second = Lock {
        owner: "run-2".into(),
        token: "t2".into(),
        ..lock.clone()
    };
    assert!(
        matches!(
            cloud.create_lock(&second).await,
            Err(PortError::Conflict(_))
        ),
        "a held lock must refuse a second holder"
    );
    assert_eq!(cloud.read_lock().await.unwrap(), Some(lock.clone()));
    cloud.delete_lock().await.unwrap();
    cloud.delete_lock().await.unwrap();
    cloud.create_lock(&second).await.unwrap();

    for minor in 0u64..5 {
        let release = Release {
            version: Version::parse(&format!("v1.{minor}.0")).unwrap(),
            digest: Digest("sha256:x".into()),
            task_definition: format!("td:{minor}"),
            slot: Slot::Blue,
            by: "test".into(),
            at: minor,
            status: Status::Promoted,
            fingerprint: String::new(),
            promoted_at: None,
            transitions: Vec::new(),
            rehearsal: None,
            train: Vec::new(),
            train_id: String::new(),
        };
        cloud.record(&release, 3).await.unwrap();
    }
    let versions: Vec<String> = cloud
        .history()
        .await
        .unwrap()
        .iter()
        .map(|r| r.version.to_string())
        .collect();
    assert_eq!(versions, ["v1.2.0", "v1.3.0", "v1.4.0"]);
}

#[tokio::test]
async fn alarm_states_and_a_missing_alarm() {
    let Some(stack) = Stack::create("a") else {
        return;
    };
    let cloud = cloud(&stack).await;
    let names: Vec<String> = ["blue", "green"]
        .iter()
        .flat_map(|slot| {
            stack
                .value(&format!("cutover_service.slots.{slot}.alarms"))
                .as_array()
                .unwrap()
        })
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let states = cloud.alarm_states(&names).await.unwrap();
    assert!(states.values().all(|s| *s == AlarmState::Ok), "{states:?}");
    aws_sdk_cloudwatch::Client::new(&stack.sdk().await)
        .set_alarm_state()
        .alarm_name(&names[1])
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason("test")
        .send()
        .await
        .unwrap();
    assert_eq!(
        cloud.alarm_states(&names).await.unwrap()[&names[1]],
        AlarmState::Alarm
    );
    let missing = vec!["no-such-alarm".to_string()];
    assert!(
        matches!(cloud.alarm_states(&missing).await, Err(PortError::NotFound(m)) if m.contains("no-such-alarm"))
    );
}

#[tokio::test]
async fn target_health_reports_registered_targets() {
    let Some(stack) = Stack::create("h") else {
        return;
    };
    let cloud = cloud(&stack).await;
    assert!(cloud.target_health(Slot::Blue).await.unwrap().is_empty());
    let tg = stack.str("cutover_service.slots.blue.target_group_arn");
    aws_sdk_elasticloadbalancingv2::Client::new(&stack.sdk().await)
        .register_targets()
        .target_group_arn(&tg)
        .targets(
            aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                .id("10.0.0.7")
                .port(8080)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let health = cloud.target_health(Slot::Blue).await.unwrap();
    assert_eq!(health.len(), 1);
    assert_eq!(health[0].id, "10.0.0.7:8080");
    assert_eq!(health[0].state, TargetState::Healthy);
}

#[tokio::test]
async fn missing_resources_map_to_not_found() {
    let Some(stack) = Stack::create("n") else {
        return;
    };
    let cloud = cloud(&stack).await;
    let err = cloud
        .ecs
        .service("no-such-service", None)
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::NotFound(_)), "{err}");
    assert_eq!(cloud.digest_for_tag("v9.9.9").await.unwrap(), None);
}

/// The one-call reads the engine observes with (both services in one DescribeServices, both
/// listeners in one DescribeListeners, history and lock in one GetParameters) answer exactly
/// what the single reads do.
#[tokio::test]
async fn one_call_reads_match_the_single_reads() {
    let Some(stack) = Stack::create("c") else {
        return;
    };
    let cloud = cloud(&stack).await;
    let td = cloud
        .register_task_definition(&spec(&stack, "v1.0.0", "256"))
        .await
        .unwrap();
    cloud.update_slot(Slot::Green, &td.id, 1).await.unwrap();
    cloud
        .set_production_weights(Weights::split(Slot::Green, 25))
        .await
        .unwrap();
    cloud.point_test_listener(Slot::Blue).await.unwrap();
    let lock = Lock {
        owner: "run".into(),
        token: "t".into(),
        acquired_at: 1,
        expires_at: 2,
    };
    assert_eq!(cloud.history_and_lock().await.unwrap(), (vec![], None));
    cloud.create_lock(&lock).await.unwrap();
    let release = Release {
        version: td.spec.version.clone(),
        digest: td.spec.digest.clone(),
        task_definition: td.id.clone(),
        slot: Slot::Green,
        by: "test".into(),
        at: 1,
        status: Status::AwaitingApproval,
        fingerprint: td.spec.fingerprint.clone(),
        promoted_at: None,
        transitions: Vec::new(),
        rehearsal: None,
        train: Vec::new(),
        train_id: String::new(),
    };
    cloud.record(&release, 10).await.unwrap();

    let (blue, green) = cloud.slot_services().await.unwrap();
    assert_eq!(blue, cloud.read_slot(Slot::Blue).await.unwrap());
    assert_eq!(green, cloud.read_slot(Slot::Green).await.unwrap());
    assert_eq!(green.task_definition, Some(td));
    assert_eq!(
        cloud.weights_and_test_listener().await.unwrap(),
        (
            Weights {
                blue: 75,
                green: 25
            },
            Some(Slot::Blue)
        )
    );
    // History keeps the recorded status as the release's first transition, to the second.
    let kept = Release {
        transitions: vec![cutover::ports::Transition {
            status: Status::AwaitingApproval,
            at: 0,
        }],
        ..release
    };
    assert_eq!(
        cloud.history_and_lock().await.unwrap(),
        (vec![kept], Some(lock))
    );
}

/// Issue 14: a production forward that lost a slot's group was read as 0% there, and one
/// with a third group at weight 0 was accepted; both are wiring errors now. The services'
/// load balancer bindings come back with the slots (what the engine's wiring check reads).
#[tokio::test]
async fn a_production_forward_without_both_slot_groups_is_miswired() {
    let Some(stack) = Stack::create("m") else {
        return;
    };
    let cloud = cloud(&stack).await;
    let blue_tg = stack.str("cutover_service.slots.blue.target_group_arn");
    let blue = cloud.read_slot(Slot::Blue).await.unwrap();
    assert_eq!(
        blue.load_balancers,
        [LoadBalancer {
            target_group: blue_tg.clone(),
            container: "web".into(),
            port: 8080
        }]
    );
    let listener = stack.str("cutover_service.traffic.production_listener_arn");
    use aws_sdk_elasticloadbalancingv2::types::{
        Action, ActionTypeEnum, ForwardActionConfig, TargetGroupTuple,
    };
    let only_blue = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(
            ForwardActionConfig::builder()
                .target_groups(
                    TargetGroupTuple::builder()
                        .target_group_arn(&blue_tg)
                        .weight(100)
                        .build(),
                )
                .build(),
        )
        .build();
    aws_sdk_elasticloadbalancingv2::Client::new(&stack.sdk().await)
        .modify_listener()
        .listener_arn(&listener)
        .default_actions(only_blue)
        .send()
        .await
        .unwrap();
    let err = cloud.production_weights().await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, PortError::Miswired(_)), "{err:?}");
    assert!(
        message.contains("[slots.green] target_group_arn") && message.contains(&listener),
        "{message}"
    );
}

/// A worker (issue 17.4) through the real adapter: its one service read as the blue slot
/// at 100% with no ELB call (it has no listener), no green service behind it, and every
/// update sent with ECS's deployment circuit breaker on and ECS's own rollback off.
#[tokio::test]
async fn a_worker_is_one_service_updated_with_the_circuit_breaker() {
    let Some(stack) = Stack::create("wk") else {
        return;
    };
    let (_, web) = cloud_and_settings(&stack).await;
    let service = web.slots.blue.service.clone();
    let worker = cutover::config::settings::ServiceSettings {
        worker: Some(cutover::config::settings::WorkerSettings {
            service: service.clone(),
        }),
        slots: Default::default(),
        traffic: Default::default(),
        ..web
    };
    let env = cutover::config::EnvironmentSettings {
        region: "eu-west-1".into(),
        account_id: None,
        profile: None,
        ssm_prefix: "/cutover".into(),
        registry: None,
        url: None,
        approval: Default::default(),
        versions: Default::default(),
    };
    let sdk = stack.sdk().await;
    let cloud = AwsCloud::new(&sdk, "test", &stack.name, &env, &worker);
    // No listener is named: an ELB call would fail; these answer from the model.
    let (weights, test) = cloud.weights_and_test_listener().await.unwrap();
    assert_eq!((weights, test), (Weights::all_on(Slot::Blue), None));
    assert_eq!(
        cloud.production_weights().await.unwrap(),
        Weights::all_on(Slot::Blue)
    );
    let td = cloud
        .register_task_definition(&spec(&stack, "v1.1.0", "256"))
        .await
        .unwrap();
    cloud.update_slot(Slot::Blue, &td.id, 3).await.unwrap();
    let (blue, green) = cloud.slot_services().await.unwrap();
    assert_eq!(blue.task_definition.map(|t| t.id), Some(td.id.clone()));
    assert_eq!(blue.desired, 3);
    assert_eq!(green, SlotState::absent());
    // What ECS was sent, as ECS keeps it.
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let described = ecs
        .describe_services()
        .cluster(worker.ecs.cluster.clone())
        .services(service)
        .send()
        .await
        .unwrap();
    let breaker = described.services()[0]
        .deployment_configuration()
        .and_then(|c| c.deployment_circuit_breaker())
        .expect("the update carried a circuit breaker");
    assert!(breaker.enable(), "circuit breaker on");
    assert!(
        !breaker.rollback(),
        "ECS's own rollback off: cutover rolls back"
    );
}
