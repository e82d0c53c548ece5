//! GitHub deployments against wiremock serving GitHub's documented response shapes.

use cutover::ports::{Reporter, Slot, Status, StatusEvent};
use cutover::report::github::{GithubDeployments, GithubTarget};
use cutover::version::Version;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub(crate) fn deployment(server: &str) -> Value {
    json!({
        "url": format!("{server}/repos/o/r/deployments/42"), "id": 42, "node_id": "MDEwOkRlcGxveW1lbnQx",
        "sha": "a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d", "ref": "v1.2.0", "task": "deploy", "payload": {},
        "original_environment": "production", "environment": "production", "description": "web v1.2.0",
        "created_at": "2026-11-22T10:00:00Z", "updated_at": "2026-11-22T10:00:00Z",
        "statuses_url": format!("{server}/repos/o/r/deployments/42/statuses"),
        "repository_url": format!("{server}/repos/o/r"), "transient_environment": false, "production_environment": true
    })
}

pub(crate) fn status(server: &str, state: &str) -> Value {
    json!({
        "url": format!("{server}/repos/o/r/deployments/42/statuses/1"), "id": 1, "node_id": "MDE2OkRlcGxveW1lbnRTdGF0dXMx",
        "state": state, "description": "", "environment": "production", "target_url": "", "log_url": "",
        "created_at": "2026-11-22T10:00:00Z", "updated_at": "2026-11-22T10:00:00Z",
        "deployment_url": format!("{server}/repos/o/r/deployments/42"), "repository_url": format!("{server}/repos/o/r")
    })
}

fn target(server: &MockServer) -> GithubTarget {
    GithubTarget {
        api_url: server.uri(),
        token: "ghs_SENTINELtoken0000".to_string().into(),
        owner: "o".into(),
        repo: "r".into(),
        git_ref: "v1.2.0".into(),
        environment: "production".into(),
        environment_url: Some("https://www.example.com".into()),
        log_url: Some("https://github.com/o/r/actions/runs/7".into()),
        service: "web".into(),
    }
}

fn event(status: Status, detail: &str) -> StatusEvent {
    StatusEvent {
        status,
        version: Some(Version::parse("v1.2.0").unwrap()),
        slot: Some(Slot::Green),
        detail: detail.into(),
    }
}

#[tokio::test]
async fn a_deployment_gets_a_status_for_every_lifecycle_step() {
    let server = MockServer::start().await;
    let uri = server.uri();
    Mock::given(method("GET"))
        .and(path("/repos/o/r/deployments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/o/r/deployments"))
        .respond_with(ResponseTemplate::new(201).set_body_json(deployment(&uri)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/o/r/deployments/42/statuses"))
        .respond_with(ResponseTemplate::new(201).set_body_json(status(&uri, "in_progress")))
        .expect(4)
        .mount(&server)
        .await;

    let gh = GithubDeployments::start(target(&server)).unwrap();
    gh.status(&event(Status::Pending, "queued"));
    gh.status(&event(Status::Staging, "rolling v1.2.0 onto green"));
    gh.status(&event(Status::Shifting(10), "10% on green"));
    gh.status(&event(Status::Promoted, "100% on green after a 5m bake"));
    gh.finish(std::time::Duration::from_secs(10)).await;

    let requests = server.received_requests().await.unwrap();
    let create: Value = requests
        .iter()
        .find(|r| r.method.as_str() == "POST" && r.url.path() == "/repos/o/r/deployments")
        .unwrap()
        .body_json()
        .unwrap();
    assert_eq!(create["ref"], "v1.2.0");
    assert_eq!(create["environment"], "production");
    assert_eq!(create["auto_merge"], false);
    assert_eq!(create["required_contexts"], json!([]));
    let states: Vec<Value> = requests
        .iter()
        .filter(|r| r.url.path().ends_with("/statuses"))
        .map(|r| r.body_json::<Value>().unwrap())
        .collect();
    let names: Vec<&str> = states
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["queued", "in_progress", "in_progress", "success"]);
    assert_eq!(
        states[0]["log_url"],
        "https://github.com/o/r/actions/runs/7"
    );
    assert_eq!(states[0]["environment_url"], "https://www.example.com");
    assert!(
        states[2]["description"]
            .as_str()
            .unwrap()
            .contains("Shifting(10%)")
    );
    let auth = requests[0]
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(auth, "Bearer ghs_SENTINELtoken0000");
}

#[tokio::test]
async fn a_later_job_appends_to_the_same_deployment() {
    let server = MockServer::start().await;
    let uri = server.uri();
    Mock::given(method("GET"))
        .and(path("/repos/o/r/deployments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([deployment(&uri)])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/o/r/deployments"))
        .respond_with(ResponseTemplate::new(201).set_body_json(deployment(&uri)))
        .expect(0)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/o/r/deployments/42/statuses"))
        .respond_with(ResponseTemplate::new(201).set_body_json(status(&uri, "success")))
        .expect(1)
        .mount(&server)
        .await;
    let gh = GithubDeployments::start(target(&server)).unwrap();
    gh.status(&event(Status::Promoted, "done"));
    gh.finish(std::time::Duration::from_secs(10)).await;
    let listed = server.received_requests().await.unwrap();
    let query = listed[0].url.query().unwrap_or_default().to_string();
    assert!(
        query.contains("ref=v1.2.0") && query.contains("environment=production"),
        "{query}"
    );
}

#[tokio::test]
async fn github_errors_never_fail_the_run() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(403).set_body_json(json!({"message": "Resource not accessible by integration", "documentation_url": "https://docs.github.com"}))).mount(&server).await;
    let gh = GithubDeployments::start(target(&server)).unwrap();
    gh.status(&event(Status::Staging, "x"));
    gh.finish(std::time::Duration::from_secs(10)).await;
}
