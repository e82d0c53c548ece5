//! `cutover cleanup` against moto, through the binary: the dry run lists what goes and why
//! the rest stays and changes nothing; `--apply` deregisters and deletes exactly that.

use assert_cmd::Command;
use cutover::ports::*;
use cutover::version::Version;

use crate::aws::{cloud, spec};
use crate::moto::Stack;

/// Push an image (a distinct manifest per tag) into moto's ECR; its digest.
async fn push(stack: &Stack, tag: &str, n: u32) -> String {
    let ecr = aws_sdk_ecr::Client::new(&stack.sdk().await);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1,
                   "digest": format!("sha256:{n:064}")},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 5,
                    "digest": format!("sha256:{:064}", n + 100)}],
    });
    let out = ecr
        .put_image()
        .repository_name(&stack.name)
        .image_manifest(manifest.to_string())
        .image_tag(tag)
        .send()
        .await
        .unwrap();
    out.image()
        .and_then(|i| i.image_id())
        .and_then(|i| i.image_digest())
        .unwrap()
        .to_string()
}

async fn active_revisions(stack: &Stack) -> Vec<u32> {
    let family = stack.str("task_definition_family");
    let c = cloud(stack).await;
    let mut numbers: Vec<u32> = Inventory::revisions(&c, &family)
        .await
        .unwrap()
        .iter()
        .map(|r| r.number)
        .collect();
    numbers.sort_unstable();
    numbers
}

async fn image_tags(stack: &Stack) -> Vec<String> {
    let c = cloud(stack).await;
    let mut tags: Vec<String> = Inventory::images(&c)
        .await
        .unwrap()
        .into_iter()
        .flat_map(|i| i.tags)
        .collect();
    tags.sort();
    tags
}

fn run(stack: &Stack, dir: &std::path::Path, apply: bool) -> String {
    let mut cmd = Command::cargo_bin("cutover").unwrap();
    cmd.current_dir(dir)
        .env_remove("CUTOVER_LOG")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .envs(stack.env())
        .args(["cleanup", "--env", "test", "--service", &stack.name]);
    if apply {
        cmd.arg("--apply");
    }
    let out = cmd.assert().success();
    String::from_utf8_lossy(&out.get_output().stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn cleanup_lists_then_removes_only_what_nothing_references() {
    let Some(stack) = Stack::create("cl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = stack.config_dir(dir.path());
    let service = root.join("services").join(&stack.name).join("service.toml");
    let text = std::fs::read_to_string(&service).unwrap();
    std::fs::write(
        &service,
        format!("{text}\n[cleanup]\nkeep_task_definitions = 2\nkeep_images = 1\n"),
    )
    .unwrap();

    // Revisions 2..6 (the fixture registered 1); blue runs 6 (live), green 5.
    let c = cloud(&stack).await;
    let mut arns = vec![stack.str("initial_task_definition")];
    for n in 2..=6 {
        let td = c
            .register_task_definition(&spec(&stack, &format!("v1.0.{n}"), "256"))
            .await
            .unwrap();
        arns.push(td.id);
    }
    c.update_slot(Slot::Blue, &arns[5], 2).await.unwrap();
    c.update_slot(Slot::Green, &arns[4], 0).await.unwrap();
    let mut digests = Vec::new();
    for (n, tag) in ["v0", "v1", "v2", "v3"].iter().enumerate() {
        // moto's push times have one-second steps; a tie at the cut keeps both.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        digests.push(push(&stack, tag, n as u32).await);
    }
    // The history names revision 3 and image v1.
    let release = Release {
        version: Version::parse("v1.0.3").unwrap(),
        digest: Digest(digests[1].clone()),
        task_definition: arns[2].clone(),
        slot: Slot::Green,
        by: "ci".into(),
        at: 0,
        status: Status::RolledBack,
        fingerprint: String::new(),
        promoted_at: Some(0),
        transitions: Vec::new(),
        rehearsal: None,
        train: Vec::new(),
        train_id: String::new(),
    };
    c.record(&release, 10).await.unwrap();
    // A dead run's lock, long expired.
    let now = c.now();
    c.create_lock(&Lock {
        owner: "ghost@laptop:1".into(),
        token: "t".into(),
        acquired_at: now - 3_600_000,
        expires_at: now - 3_000_000,
    })
    .await
    .unwrap();

    let listing = run(&stack, dir.path(), false);
    let family = stack.str("task_definition_family");
    let line = |verb: &str, what: &str| {
        listing
            .lines()
            .find(|l| l.trim_start().starts_with(verb) && l.contains(what))
            .unwrap_or_else(|| panic!("no `{verb} … {what}` in\n{listing}"))
            .to_string()
    };
    assert!(line("keep", &format!("{family}:6")).contains("run by blue (live, 2 tasks)"));
    assert!(line("keep", &format!("{family}:5")).contains("run by green (idle, 0 tasks)"));
    assert!(line("keep", &format!("{family}:3")).contains("history: v1.0.3 (RolledBack)"));
    for n in [1, 2, 4] {
        assert!(line("remove", &format!("{family}:{n} ")).contains("no slot or history entry"));
    }
    assert!(line("keep", "(v1,").contains("history: v1.0.3"));
    assert!(line("keep", "(v3,").contains("one of the newest 1 pushed"));
    line("remove", "(v0,");
    line("remove", "(v2,");
    assert!(line("remove", "deploy lock held by ghost@laptop:1").contains("expired"));
    assert!(listing.contains("would remove: 3 task definition(s), 2 image(s), 1 expired lock(s)"));
    // The dry run changed nothing.
    assert_eq!(active_revisions(&stack).await, [1, 2, 3, 4, 5, 6]);
    assert_eq!(image_tags(&stack).await, ["v0", "v1", "v2", "v3"]);
    assert!(c.read_lock().await.unwrap().is_some());

    // Breaking a stale lock waits 35 s before the first write (see README, the lock):
    // that path is the lease's own tests'; this one applies without it.
    c.delete_lock().await.unwrap();
    let applied = run(&stack, dir.path(), true);
    assert!(
        applied.contains("removed: 3 task definition(s), 2 image(s), 0 expired lock(s)"),
        "{applied}"
    );
    assert_eq!(active_revisions(&stack).await, [3, 5, 6]);
    assert_eq!(image_tags(&stack).await, ["v1", "v3"]);
    assert!(c.read_lock().await.unwrap().is_none(), "lock released");
    // A second run finds nothing more to remove.
    let again = run(&stack, dir.path(), false);
    assert!(
        again.contains("would remove: 0 task definition(s), 0 image(s)"),
        "{again}"
    );
}
