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

/// GitHub's deployments API with no deployment yet: listing finds none, creating one
/// returns deployment 42, and its statuses are accepted.
pub(crate) async fn mount_deployments(server: &MockServer) {
    let uri = server.uri();
    Mock::given(method("GET"))
        .and(path("/repos/o/r/deployments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/o/r/deployments"))
        .respond_with(ResponseTemplate::new(201).set_body_json(deployment(&uri)))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/o/r/deployments/42/statuses"))
        .respond_with(ResponseTemplate::new(201).set_body_json(status(&uri, "in_progress")))
        .mount(server)
        .await;
}

fn target(server: &MockServer) -> GithubTarget {
    GithubTarget {
        api_url: server.uri(),
        token: "ghs_SENTINELtoken0000".to_string().into(),
        owner: "o".into(),
        repo: "r".into(),
        git_ref: "v1.2.0".into(),
        environment: "production".into(),
        production: true,
        environment_url: Some("https://www.example.com".into()),
        log_url: Some("https://github.com/o/r/actions/runs/7".into()),
        service: "web".into(),
        rollback: false,
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

fn tag(server: &str, name: &str) -> Value {
    json!({
        "name": name, "node_id": "MDM6UmVmcmVmcy90YWdzL3YxLjAuMA==",
        "commit": {"sha": "a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d", "url": format!("{server}/repos/o/r/commits/a84d88e")},
        "zipball_url": format!("{server}/repos/o/r/zipball/{name}"), "tarball_url": format!("{server}/repos/o/r/tarball/{name}")
    })
}

fn release(server: &str, id: u64, tag: &str) -> Value {
    json!({
        "url": format!("{server}/repos/o/r/releases/{id}"), "html_url": format!("https://github.com/o/r/releases/tag/{tag}"),
        "assets_url": format!("{server}/repos/o/r/releases/{id}/assets"), "upload_url": format!("{server}/repos/o/r/releases/{id}/assets{{?name,label}}"),
        "tarball_url": null, "zipball_url": null, "id": id, "node_id": "MDc6UmVsZWFzZTE=", "tag_name": tag,
        "target_commitish": "main", "name": tag, "body": "", "draft": false, "prerelease": false,
        "created_at": "2026-11-22T10:00:00Z", "published_at": "2026-11-22T10:00:00Z", "author": null, "assets": []
    })
}

/// Notes between the previous semver tag and this one, generated by GitHub, land on the
/// tag's release: created when missing, updated when it exists.
#[tokio::test]
async fn release_notes_span_the_previous_semver_tag_and_land_on_the_release() {
    use cutover::report::release_notes::ReleaseNotes;
    for existing in [false, true] {
        let server = MockServer::start().await;
        let uri = server.uri();
        Mock::given(method("GET"))
            .and(path("/repos/o/r/tags"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([
                tag(&uri, "v1.3.0"),
                tag(&uri, "v1.2.0"),
                tag(&uri, "v1.1.0"),
                tag(&uri, "nightly")
            ])))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/repos/o/r/releases/generate-notes"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"name": "v1.2.0", "body": "## What's Changed\n* fix probes by @a in #7"}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let lookup = if existing {
            ResponseTemplate::new(200).set_body_json(release(&uri, 9, "v1.2.0"))
        } else {
            ResponseTemplate::new(404).set_body_json(
                json!({"message": "Not Found", "documentation_url": "https://docs.github.com"}),
            )
        };
        Mock::given(method("GET"))
            .and(path("/repos/o/r/releases/tags/v1.2.0"))
            .respond_with(lookup)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/repos/o/r/releases"))
            .respond_with(ResponseTemplate::new(201).set_body_json(release(&uri, 10, "v1.2.0")))
            .expect(u64::from(!existing))
            .mount(&server)
            .await;
        Mock::given(method("PATCH"))
            .and(path("/repos/o/r/releases/9"))
            .respond_with(ResponseTemplate::new(200).set_body_json(release(&uri, 9, "v1.2.0")))
            .expect(u64::from(existing))
            .mount(&server)
            .await;

        let notes = ReleaseNotes::new(&target(&server)).unwrap();
        notes.publish(&Version::parse("v1.2.0").unwrap()).await;

        let requests = server.received_requests().await.unwrap();
        let body = |p: &str| -> Value {
            requests
                .iter()
                .find(|r| r.method.as_str() != "GET" && r.url.path() == p)
                .unwrap_or_else(|| panic!("no write to {p}"))
                .body_json()
                .unwrap()
        };
        let generate = body("/repos/o/r/releases/generate-notes");
        assert_eq!(generate["tag_name"], "v1.2.0");
        assert_eq!(generate["previous_tag_name"], "v1.1.0");
        let written = if existing {
            body("/repos/o/r/releases/9")
        } else {
            body("/repos/o/r/releases")
        };
        assert_eq!(
            written["body"],
            "## What's Changed\n* fix probes by @a in #7"
        );
    }
}

/// The requests to `path` with their JSON bodies, in order.
async fn posted(server: &MockServer, suffix: &str) -> Vec<(String, Value)> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path().ends_with(suffix))
        .map(|r| (r.url.path().to_string(), r.body_json::<Value>().unwrap()))
        .collect()
}

/// A `rollback: true` run from a branch: the deployment it reports is the release it
/// returns to, and a rollback that worked is a success there, not a failure (issue 14).
#[tokio::test]
async fn a_successful_rollback_is_a_success_of_the_release_it_returns_to() {
    let server = MockServer::start().await;
    mount_deployments(&server).await;
    let gh = GithubDeployments::start(GithubTarget {
        git_ref: "main".into(),
        rollback: true,
        ..target(&server)
    })
    .unwrap();
    let back_to = |status| StatusEvent {
        version: Some(Version::parse("v1.0.0").unwrap()),
        ..event(status, "v1.0.0 on blue")
    };
    gh.status(&StatusEvent {
        version: None,
        ..event(Status::Pending, "cutover rollback started")
    });
    gh.status(&back_to(Status::RollingBack));
    gh.status(&back_to(Status::RolledBack));
    gh.finish(std::time::Duration::from_secs(10)).await;
    let created = posted(&server, "/repos/o/r/deployments").await;
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0].1["ref"], "v1.0.0", "{created:?}");
    let states: Vec<Value> = posted(&server, "/statuses")
        .await
        .into_iter()
        .map(|(_, body)| body["state"].clone())
        .collect();
    assert_eq!(states, ["queued", "in_progress", "success"]);
}

/// The release production left in a rollback: its latest deployment goes inactive, since
/// GitHub retires older deployments by itself only outside production environments.
#[tokio::test]
async fn the_release_rolled_back_from_goes_inactive() {
    let server = MockServer::start().await;
    let uri = server.uri();
    Mock::given(method("GET"))
        .and(path("/repos/o/r/deployments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([deployment(&uri)])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/o/r/deployments/42/statuses"))
        .respond_with(ResponseTemplate::new(201).set_body_json(status(&uri, "inactive")))
        .expect(1)
        .mount(&server)
        .await;
    let gh = GithubDeployments::start(target(&server)).unwrap();
    gh.inactive("v1.2.0", "rolled back to v1.0.0");
    gh.finish(std::time::Duration::from_secs(10)).await;
    let listed = server.received_requests().await.unwrap();
    assert!(listed[0].url.query().unwrap().contains("ref=v1.2.0"));
    let statuses = posted(&server, "/statuses").await;
    assert_eq!(statuses[0].1["state"], "inactive");
    assert_eq!(statuses[0].1["description"], "rolled back to v1.0.0");
}

/// A promote whose rollback rehearsal passed (issue 18.1): after the bake's `success`, one
/// more `success` whose description gives both directions and their durations — what the
/// deployments view shows last for the release.
#[tokio::test]
async fn a_passed_rollback_rehearsal_is_the_last_status_with_both_directions() {
    use cutover::ports::{Rehearsal, RehearsalEvent};
    let server = MockServer::start().await;
    mount_deployments(&server).await;
    let gh = GithubDeployments::start(target(&server)).unwrap();
    gh.status(&event(Status::Promoted, "100% on green, bake passed"));
    gh.rehearsed(&RehearsalEvent {
        version: Version::parse("v1.2.0").unwrap(),
        slot: Slot::Green,
        rehearsal: Rehearsal {
            to: Version::parse("v1.1.0").unwrap(),
            back_ms: 6_200,
            forward_ms: 7_060,
            at: 0,
        },
    });
    gh.finish(std::time::Duration::from_secs(10)).await;
    let statuses = posted(&server, "/statuses").await;
    let states: Vec<(&str, &str)> = statuses
        .iter()
        .map(|(_, s)| {
            (
                s["state"].as_str().unwrap(),
                s["description"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("success", "Promoted: 100% on green, bake passed"),
            (
                "success",
                "Promoted: rollback rehearsal passed: back to v1.1.0 in 6.2s, forward to v1.2.0 on green in 7.1s"
            ),
        ]
    );
}
