//! The action with `services: a,b` (issue 17): one train, not one service after another.
//! Two moto stacks in one deploy/ folder, the real build (dockerd + registry) and a
//! wiremock GitHub: both members deploy together, each with its own GitHub deployment and
//! summary section under one train table; then one member fails validation and neither
//! service moves (before, the first service was promoted and the second failed: production
//! ran half the release).

use serde_json::Value;

use crate::action::Job;
use crate::e2e::{World, live};

/// The second world's service folder copied into the first's deploy/ (one environment).
fn join(a: &World, b: &World) {
    let from = b.root.join("deploy/services").join(&b.stack.name);
    let to = a.root.join("deploy/services").join(&b.stack.name);
    std::fs::create_dir_all(&to).unwrap();
    for f in std::fs::read_dir(&from).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
    }
}

/// The environments of the GitHub deployments the run created, in order.
fn deployment_environments(job: &Job, w: &World) -> Vec<String> {
    let requests = w.rt.block_on(job.github.received_requests()).unwrap();
    requests
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/repos/o/r/deployments")
        .map(|r| r.body_json::<Value>().unwrap()["environment"].to_string())
        .collect()
}

#[test]
fn the_action_runs_several_services_as_one_train_all_or_nothing() {
    let (Some(a), Some(b)) = (World::new("ta"), World::new("tb")) else {
        return;
    };
    join(&a, &b);
    let services = format!("{},{}", a.stack.name, b.stack.name);
    let job = Job::new(&a);
    a.version_file("1.0.0");
    let inputs = [("SERVICES", services.as_str())];
    let notes = [("SERVICES", services.as_str()), ("RELEASE-NOTES", "true")];
    let first = job.run(&a, "refs/tags/v1.0.0", &notes).expect(0);
    // The tag has one GitHub Release: its notes are made once for the whole train (each
    // publish starts by listing the tags, to find the previous one).
    let listed =
        a.rt.block_on(job.github.received_requests())
            .unwrap()
            .iter()
            .filter(|r| r.url.path() == "/repos/o/r/tags")
            .count();
    assert_eq!(listed, 1, "{}", first.all());
    // One train: both promoted, one table, a section per member, outputs per member, and
    // the train run's id (issue 17.3) in the table's heading and each member's output.
    assert!(
        first
            .summary
            .contains("train of 2 in test: Promoted (train run `"),
        "{}",
        first.all()
    );
    let ids = first.output("train-id");
    let ids: Vec<&str> = ids
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(_, id)| id)
        .collect();
    assert!(
        ids.len() == 2 && ids[0] == ids[1] && ids[0].len() == 8,
        "{}",
        first.all()
    );
    assert!(
        first.summary.contains(&format!("(train run `{}`)", ids[0])),
        "{}",
        first.all()
    );
    for w in [&a, &b] {
        let name = &w.stack.name;
        assert!(
            first
                .summary
                .contains(&format!("| {name} | nothing live | v1.0.0 | Promoted |")),
            "{}",
            first.all()
        );
        assert!(
            first.summary.contains(&format!("test/{name}: Promoted")),
            "{}",
            first.all()
        );
        assert!(
            first.output("status").contains(&format!("{name}=Promoted")),
            "{}",
            first.all()
        );
        live(w.weights());
    }
    // A deployment per member, each in its own environment: GitHub keeps one deployment
    // active per environment, so two members sharing one would mark each other inactive.
    let mut envs = deployment_environments(&job, &a);
    envs.sort();
    assert_eq!(
        envs,
        vec![
            format!("\"test/{}\"", a.stack.name),
            format!("\"test/{}\"", b.stack.name)
        ]
    );
    let before = (a.weights(), b.weights());

    // b's probes now expect a status its test listener never answers: b fails validation,
    // and a, validated, is recorded Failed with it; production stays on v1.0.0 for both.
    let svc = b
        .root
        .join("deploy/services")
        .join(&b.stack.name)
        .join("service.toml");
    let svc = a.root.join(svc.strip_prefix(&b.root).unwrap());
    let text = std::fs::read_to_string(&svc).unwrap();
    std::fs::write(
        &svc,
        text.replace("expect_status = 200", "expect_status = 204"),
    )
    .unwrap();
    a.version_file("1.1.0");
    let second = job.run(&a, "refs/tags/v1.1.0", &inputs).expect(1);
    assert!(
        second.summary.contains("train of 2 in test: Failed"),
        "{}",
        second.all()
    );
    assert!(second.stdout.contains("did not stage"), "{}", second.all());
    assert_eq!((a.weights(), b.weights()), before, "{}", second.all());
    assert!(
        second
            .output("status")
            .contains(&format!("{}=Failed", a.stack.name))
            && second
                .output("status")
                .contains(&format!("{}=Failed", b.stack.name)),
        "{}",
        second.all()
    );

    // `status` of the train: every member, its history entries naming the train's run
    // (the first deploy's run for v1.0.0, the failed one's for v1.1.0) and members.
    let (code, stdout, stderr) = a.run(&["status", "--service", &services]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let train = format!("(train {}: {}, {})", ids[0], a.stack.name, b.stack.name);
    for w in [&a, &b] {
        let heading = stdout.find(&format!("test/{}\n", w.stack.name));
        assert!(heading.is_some(), "{stdout}");
    }
    assert_eq!(stdout.matches(&train).count(), 2, "{stdout}");
    let members = format!(": {}, {})", a.stack.name, b.stack.name);
    assert_eq!(stdout.matches(&members).count(), 4, "{stdout}");
    let (code, stdout, stderr) = a.run(&["status", "--json", "--service", &services]);
    assert_eq!(code, 0, "{stderr}");
    let reports: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(reports.len(), 2, "{stdout}");
    assert_eq!(reports[1]["service"], b.stack.name.as_str(), "{stdout}");
}
