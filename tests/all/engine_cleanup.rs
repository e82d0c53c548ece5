//! `cutover cleanup` through the engine against the simulated cloud (its task definitions
//! and image repository behind the `Inventory` port): what is kept and why, what `--apply`
//! removes, the lock, and deletes that fail. The unit tests in `src/engine/cleanup.rs` and
//! the moto tests (`cleanup.rs`) check the same rules, but the mutants run neither.

use std::collections::BTreeSet;
use std::time::Duration;

use cutover::engine::{CleanupPlan, Engine, EngineError};
use cutover::ports::StoredImage;
use cutover::sim::{AwsErrorAt, EPOCH_MS, Faults, IMAGE_MANIFEST, NEW, Sim, digest, version};

use crate::engine_mutants::{hold_lock, stage};
use crate::sim_support::{all_at_once, block_on};

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;

/// An image of the repository as a test stores it; `pushed` is how long before the run.
fn stored(tag: Option<&str>, name: &str, pushed: Option<u64>, media_type: &str) -> StoredImage {
    StoredImage {
        digest: digest(name),
        tags: tag.map(str::to_string).into_iter().collect(),
        pushed_at: pushed.map(|ago| EPOCH_MS - ago),
        media_type: Some(media_type.into()),
    }
}

/// A spec whose containers (a JSON array) name their images as given.
fn spec_with_images(tag: &str, images: &[&str]) -> cutover::ports::TaskSpec {
    let containers: Vec<serde_json::Value> = images
        .iter()
        .map(|i| serde_json::json!({ "image": i }))
        .collect();
    cutover::ports::TaskSpec::new(
        version(tag),
        digest(tag),
        serde_json::Value::from(containers).to_string(),
    )
}

/// A service with a past, keeping the newest 2 task definitions and the newest 2 images:
/// - web:1 runs OLD, live at the start, then only in the history;
/// - web:2 and web:3 (v0.8.0, v0.9.0) were registered and are referenced by nothing;
/// - web:4 runs NEW, promoted on green (live);
/// - web:5 runs v1.2.0, staged on blue (idle);
/// - web:6 (v2.0.0, by digest) and web:7 (v2.1.0 by tag, a sidecar of another repository
///   by a tag this repository also has, an image by registry port) were registered since.
///
/// The repository holds the three images the sim starts with (pushed 1 to 3 hours before
/// the run, all in the history), those of web:2, web:3, web:6 and web:7, the sidecar's
/// look-alike, a multi-platform index and an untagged image, and three pushed now: two
/// in the same millisecond and one with no push time.
async fn service(faults: Faults) -> Sim {
    let mut sim = all_at_once(faults);
    sim.settings.cleanup.keep_task_definitions = 2;
    sim.settings.cleanup.keep_images = 2;
    let ci = sim.runner("ci", None);
    let engine = Engine::new(&ci, &ci, &sim.settings, "ci");
    assert_eq!(sim.register(sim.spec("v0.8.0")), "web:2");
    assert_eq!(sim.register(sim.spec("v0.9.0")), "web:3");
    stage(&engine, &sim, NEW).await;
    engine.promote(&version(NEW)).await.expect("promote");
    stage(&engine, &sim, "v1.2.0").await;
    assert_eq!(sim.register(sim.spec("v2.0.0")), "web:6");
    let web7 = spec_with_images(
        "v2.1.0",
        &[
            "web:v2.1.0",
            "registry/sidecar:v2.2.0",
            "localhost:5000/web",
        ],
    );
    assert_eq!(sim.register(web7), "web:7");
    for image in [
        stored(Some("v0.8.0"), "v0.8.0", Some(30 * HOUR), IMAGE_MANIFEST),
        stored(Some("v0.9.0"), "v0.9.0", Some(72 * HOUR), IMAGE_MANIFEST),
        stored(Some("v2.0.0"), "v2.0.0", Some(90 * MINUTE), IMAGE_MANIFEST),
        stored(Some("v2.1.0"), "v2.1.0", Some(5 * HOUR), IMAGE_MANIFEST),
        // Tagged as the sidecar's image of another repository is: that tag protects
        // nothing here.
        stored(Some("v2.2.0"), "v2.2.0", Some(6 * HOUR), IMAGE_MANIFEST),
        stored(
            Some("v1.3.0"),
            "v1.3.0",
            Some(4 * HOUR),
            "application/vnd.oci.image.index.v1+json",
        ),
        stored(None, "platform", Some(7 * HOUR), IMAGE_MANIFEST),
    ] {
        sim.put_image(image);
    }
    sim.push_image("v3.0.0");
    let pushed_with_it = sim
        .images()
        .into_iter()
        .find(|i| i.tags == ["v3.0.0"])
        .and_then(|i| i.pushed_at);
    sim.put_image(StoredImage {
        pushed_at: pushed_with_it,
        ..stored(Some("v3.0.1"), "v3.0.1", None, IMAGE_MANIFEST)
    });
    sim.put_image(stored(Some("nightly"), "nightly", None, IMAGE_MANIFEST));
    sim
}

/// The log lines from line `from` on that name any of `ops`.
fn calls_since(sim: &Sim, from: usize, ops: &[&str]) -> Vec<String> {
    sim.log()
        .split_off(from)
        .into_iter()
        .filter(|l| ops.iter().any(|op| l.contains(op)))
        .collect()
}

fn digests(sim: &Sim) -> BTreeSet<String> {
    sim.images().into_iter().map(|i| i.digest.0).collect()
}

/// What a plan removes: task definitions by id, images by their first tag (or digest).
fn removing(sim: &Sim, plan: &CleanupPlan) -> (Vec<String>, Vec<String>) {
    let name = |id: &str| {
        sim.images()
            .into_iter()
            .find(|i| i.digest.0 == id)
            .and_then(|i| i.tags.first().cloned())
            .unwrap_or_else(|| id.to_string())
    };
    (
        plan.task_definitions
            .iter()
            .filter(|d| d.remove)
            .map(|d| d.id.clone())
            .collect(),
        plan.images
            .iter()
            .filter(|d| d.remove)
            .map(|d| name(&d.id))
            .collect(),
    )
}

/// The dry run over that service: each revision and image with what it keeps it or why it
/// goes (the snapshot), and exactly these removed: the two revisions nothing references,
/// their images, the sidecar's look-alike and the multi-platform index no one names.
/// Kept: whatever a slot runs (live or idle), the history names, the newest two of each,
/// what a kept revision names by digest or by tag, and the untagged image that may be one
/// of the index's platforms.
#[test]
fn a_dry_run_keeps_what_is_referenced_recent_or_unclear_and_says_why() {
    block_on(async {
        let sim = service(Faults::default()).await;
        let ci = sim.runner("ops", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ops");
        let plan = engine.cleanup_plan().await.expect("plan");
        let (tds, images) = removing(&sim, &plan);
        assert_eq!(tds, ["web:3", "web:2"]);
        assert_eq!(images, ["v1.3.0", "v2.2.0", "v0.8.0", "v0.9.0"]);
        assert_eq!(plan.families, ["web"]);
        assert!(!plan.applied);
        insta::assert_snapshot!(plan.to_string());
    });
}

/// A dry run writes nothing: every revision stays ACTIVE, every image stays, no lock is
/// taken, and its runner made no write at all.
#[test]
fn a_dry_run_changes_nothing() {
    block_on(async {
        let sim = service(Faults::default()).await;
        let (tds, images) = (sim.active_task_definitions(), digests(&sim));
        let from = sim.log().len();
        let ci = sim.runner("ops", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ops");
        engine.cleanup_plan().await.expect("plan");
        assert_eq!(sim.active_task_definitions(), tds);
        assert_eq!(digests(&sim), images);
        assert_eq!(sim.lock_holder(), None);
        let writes = calls_since(
            &sim,
            from,
            &[
                "create_lock",
                "renew_lock",
                "delete_lock",
                "deregister",
                "batch_delete",
                "record(",
            ],
        );
        assert!(writes.is_empty(), "{writes:#?}");
    });
}

/// `--apply` removes exactly what the dry run listed, under the lock, which it releases;
/// what it says it did is the applied plan. Run again until nothing is left to remove, it
/// sends no delete at all.
#[test]
fn apply_removes_what_the_plan_lists_and_nothing_else() {
    block_on(async {
        let sim = service(Faults::default()).await;
        let ci = sim.runner("ops", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ops");
        let dry = engine.cleanup_plan().await.expect("plan");
        let before = digests(&sim);
        let plan = engine.cleanup().await.expect("cleanup");
        assert!(plan.applied);
        assert_eq!(removing(&sim, &plan), removing(&sim, &dry));
        assert_eq!(
            sim.active_task_definitions(),
            ["web:1", "web:4", "web:5", "web:6", "web:7"]
        );
        let gone: BTreeSet<String> = before.difference(&digests(&sim)).cloned().collect();
        let expected: BTreeSet<String> = ["v2.2.0", "v1.3.0", "v0.8.0", "v0.9.0"]
            .iter()
            .map(|t| digest(t).0)
            .collect();
        assert_eq!(gone, expected);
        assert_eq!(sim.lock_holder(), None);
        let summary = plan.to_string();
        assert!(
            summary.ends_with("removed: 2 task definition(s), 4 image(s), 0 expired lock(s)\n"),
            "{summary}"
        );
        assert!(summary.contains("  removed web:3 "), "{summary}");

        // The index went, so the untagged image can no longer be one of its platforms:
        // the next cleanup removes it. The one after finds nothing and sends no delete.
        let again = engine.cleanup().await.expect("cleanup again");
        assert_eq!(removing(&sim, &again), (vec![], vec![digest("platform").0]));
        assert!(!digests(&sim).contains(&digest("platform").0));
        let from = sim.log().len();
        let last = engine.cleanup().await.expect("cleanup once more");
        assert_eq!(removing(&sim, &last), (vec![], vec![]));
        let deletes = calls_since(&sim, from, &["deregister", "batch_delete_image"]);
        assert!(deletes.is_empty(), "{deletes:#?}");
    });
}

/// A lock left by a dead run (its lease ran out 10 minutes ago) is shown as going, and
/// `--apply` breaks it as any run would, cleans up, and leaves no lock behind; a live
/// run's lock is shown as kept, and `--apply` refuses (exit 5) and changes nothing.
#[test]
fn an_expired_lock_goes_a_live_one_stops_apply() {
    block_on(async {
        let sim = service(Faults::default()).await;
        hold_lock(&sim, 900, 300).await;
        let ci = sim.runner("ops", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ops");
        let dry = engine.cleanup_plan().await.expect("plan");
        let lock = dry.lock.clone().expect("a lock");
        assert!(lock.remove, "{lock:?}");
        assert_eq!(lock.why, "its lease expired 10m ago: the holder is gone");
        let plan = engine.cleanup().await.expect("cleanup");
        assert!(plan.lock.as_ref().expect("the lock it broke").remove);
        assert!(
            plan.to_string()
                .ends_with("removed: 2 task definition(s), 4 image(s), 1 expired lock(s)\n")
        );
        assert_eq!(sim.lock_holder(), None);

        let sim = service(Faults::default()).await;
        hold_lock(&sim, 60, 300).await;
        let (tds, images) = (sim.active_task_definitions(), digests(&sim));
        let ci = sim.runner("ops", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ops");
        let dry = engine.cleanup_plan().await.expect("plan");
        let lock = dry.lock.clone().expect("a lock");
        assert!(!lock.remove, "{lock:?}");
        assert_eq!(
            lock.why,
            "a live run holds it (lease ends in 3m); cleanup --apply waits for no one and exits 5"
        );
        assert!(dry.to_string().ends_with(
            "would remove: 2 task definition(s), 4 image(s), 0 expired lock(s) \
                 (dry run: nothing removed; --apply removes them)\n"
        ));
        let err = engine.cleanup().await.unwrap_err();
        assert!(matches!(err, EngineError::LockHeld { .. }), "{err:?}");
        assert_eq!(sim.active_task_definitions(), tds);
        assert_eq!(digests(&sim), images);
        assert!(sim.lock_holder().is_some());
    });
}

/// With `delete_images = false` no image goes, whatever references it, and the plan says
/// that is why; task definitions are cleaned up as before.
#[test]
fn delete_images_false_keeps_every_image() {
    block_on(async {
        let mut sim = service(Faults::default()).await;
        sim.settings.cleanup.delete_images = false;
        let before = digests(&sim);
        let ci = sim.runner("ops", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ops");
        let plan = engine.cleanup().await.expect("cleanup");
        assert!(
            plan.images
                .iter()
                .all(|d| !d.remove && d.why == "[cleanup] delete_images = false"),
            "{:#?}",
            plan.images
        );
        assert_eq!(digests(&sim), before);
        assert_eq!(removing(&sim, &plan).0, ["web:3", "web:2"]);
    });
}

/// A delete that fails. ECR refusing the images (access denied): the task definitions
/// are already deregistered, every image stays, the command fails saying what, and the
/// lock is released. ECS refusing the first deregister: nothing at all is removed. A
/// delete ECR answers with a 503 once: retried, and everything goes.
#[test]
fn a_failed_delete_stops_cleanup_and_releases_the_lock() {
    block_on(async {
        let sim = service(Faults {
            deny: vec!["batch_delete_image"],
            ..Faults::default()
        })
        .await;
        let before = digests(&sim);
        let ci = sim.runner("ops", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ops");
        let err = engine.cleanup().await.unwrap_err().to_string();
        assert!(err.starts_with("delete images: access denied"), "{err}");
        assert_eq!(
            sim.active_task_definitions(),
            ["web:1", "web:4", "web:5", "web:6", "web:7"]
        );
        assert_eq!(digests(&sim), before);
        assert_eq!(sim.lock_holder(), None);

        let sim = service(Faults {
            deny: vec!["deregister_task_definition"],
            ..Faults::default()
        })
        .await;
        let (tds, images) = (sim.active_task_definitions(), digests(&sim));
        let ci = sim.runner("ops", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ops");
        let err = engine.cleanup().await.unwrap_err().to_string();
        assert!(
            err.starts_with("deregister a task definition: access denied"),
            "{err}"
        );
        assert_eq!(sim.active_task_definitions(), tds);
        assert_eq!(digests(&sim), images);
        assert_eq!(sim.lock_holder(), None);

        let sim = service(Faults {
            aws_errors: vec![AwsErrorAt {
                op: "batch_delete_image",
                from: Duration::ZERO,
                code: "ServiceUnavailable",
                lasting: false,
            }],
            ..Faults::default()
        })
        .await;
        let ci = sim.runner("ops", None);
        let engine = Engine::new(&ci, &ci, &sim.settings, "ops");
        engine.cleanup().await.expect("cleanup, retried");
        assert!(!digests(&sim).contains(&digest("v0.9.0").0));
        assert_eq!(sim.lock_holder(), None);
    });
}
