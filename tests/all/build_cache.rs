//! The build is seeded with the image the live slot runs: pulled first for the classic
//! builder (it only uses local images), read from the registry by BuildKit. A cache that
//! cannot be had only costs speed. Against moto (the slots), the registry and dockerd.

use std::path::PathBuf;

use crate::build::{SHA_A, SHA_B, events_mentioning, now, stderr};
use crate::build_buildkit::set_builder;
use crate::moto::Stack;
use crate::services::{Services, cutover_in};

struct Live {
    _dir: tempfile::TempDir,
    root: PathBuf,
    stack: Stack,
    services: Services,
    rt: tokio::runtime::Runtime,
}

impl Live {
    /// A service on moto whose build context is `app/`: a file that every version shares
    /// (unique to this test, so only this test's images can serve as its cache) and one
    /// that changes.
    fn new(prefix: &str, builder: &str) -> Option<Self> {
        let services = Services::get()?;
        let stack = Stack::create(prefix)?;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        stack.config_dir(&root);
        let svc = root.join(format!("deploy/services/{}/service.toml", stack.name));
        let text = std::fs::read_to_string(&svc).unwrap();
        std::fs::write(&svc, text.replace("context = \".\"", "context = \"app\"")).unwrap();
        set_builder(&svc, builder);
        std::fs::create_dir_all(root.join("app")).unwrap();
        std::fs::write(
            root.join("app/Dockerfile"),
            "FROM scratch\nCOPY shared.txt /shared.txt\nCOPY version.txt /version.txt\n",
        )
        .unwrap();
        std::fs::write(root.join("app/shared.txt"), &stack.name).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        Some(Self {
            _dir: dir,
            root,
            stack,
            services,
            rt,
        })
    }

    fn build(&self, version: &str, sha: &str) -> std::process::Output {
        std::fs::write(self.root.join("app/version.txt"), version).unwrap();
        let mut cmd = cutover_in(&self.root);
        for (k, v) in self.stack.env() {
            cmd.env(k, v);
        }
        cmd.env("DOCKER_HOST", &self.services.docker_host)
            .args(["build", "-e", "test", "-s", &self.stack.name, "-t", version])
            .args(["--git-sha", sha])
            .output()
            .unwrap()
    }

    /// What a release of `image` looks like on the live (blue) slot: a task definition
    /// tagged the way cutover tags the ones it registers.
    fn make_live(&self, image: &str) {
        let stack = &self.stack;
        let digest = image.rsplit_once('@').unwrap().1;
        self.rt.block_on(async {
            let ecs = aws_sdk_ecs::Client::new(&stack.sdk().await);
            let tag = |k: &str, v: &str| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build();
            let td = ecs
                .register_task_definition()
                .family(stack.str("task_definition_family"))
                .container_definitions(
                    aws_sdk_ecs::types::ContainerDefinition::builder()
                        .name("web")
                        .image(image)
                        .memory(128)
                        .build(),
                )
                .tags(tag("cutover:version", "1.0.0"))
                .tags(tag("cutover:digest", digest))
                .tags(tag("cutover:fingerprint", "test"))
                .send()
                .await
                .unwrap();
            let arn = td.task_definition().unwrap().task_definition_arn().unwrap();
            ecs.update_service()
                .cluster(stack.str("cutover_service.ecs.cluster"))
                .service(stack.str("cutover_service.slots.blue.service"))
                .task_definition(arn)
                .send()
                .await
                .unwrap();
        });
    }

    fn docker(&self, args: &[&str]) -> String {
        self.services.docker_ok(args, &self.root)
    }

    /// Builds and pushes v1.0.0, makes it the live release, and removes it from the
    /// daemon, so the next build can only get it as a cache through cache-from.
    fn v1_live_and_gone_locally(&self) -> String {
        let v1 = reference(&self.build("v1.0.0", SHA_A));
        self.make_live(&v1);
        let (repo, _) = v1.rsplit_once('@').unwrap();
        self.docker(&["rmi", &format!("{repo}:v1.0.0"), &format!("{repo}:{SHA_A}")]);
        v1
    }

    /// Builds v2.0.0, which must have taken `v1` as its cache; returns the log.
    fn build_v2_cached_from(&self, v1: &str) -> String {
        let out = self.build("v2.0.0", SHA_B);
        let err = stderr(&out);
        reference(&out);
        let expected = format!("build cache: the live release's image reference={v1}");
        assert!(err.contains(&expected), "{err}");
        err
    }
}

fn reference(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", stderr(out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn the_classic_builder_pulls_the_live_image_and_reuses_its_layers() {
    let Some(live) = Live::new("cachec", "classic") else {
        return;
    };
    let v1 = live.v1_live_and_gone_locally();

    let t0 = now();
    let err = live.build_v2_cached_from(&v1);
    let t1 = now() + 1.0;
    assert!(err.contains("pulled the cache image"), "{err}");
    let pulls: Vec<String> = events_mentioning(&live.services, t0, t1, &live.stack.name)
        .into_iter()
        .filter(|e| e.contains("\"Action\":\"pull\""))
        .collect();
    assert_eq!(pulls.len(), 1, "one pull of the live image: {pulls:?}");
    // The shared step comes from the pulled image; the changed one is built.
    let shared = err.find("COPY shared.txt /shared.txt").expect(&err);
    let changed = err.find("COPY version.txt /version.txt").expect(&err);
    assert!(err[shared..changed].contains("Using cache"), "{err}");
    assert!(!err[changed..].contains("Using cache"), "{err}");
}

#[test]
fn buildkit_reads_the_live_image_from_the_registry_as_its_cache() {
    let Some(live) = Live::new("cacheb", "buildkit") else {
        return;
    };
    let v1 = live.v1_live_and_gone_locally();
    // BuildKit keeps its own cache besides the images: only the registry may serve it now.
    live.docker(&["builder", "prune", "--all", "--force"]);

    let err = live.build_v2_cached_from(&v1);
    assert!(err.contains("importing cache manifest from"), "{err}");
    let shared = err.find("COPY shared.txt /shared.txt").expect(&err);
    let number = err[..shared]
        .rsplit('#')
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    assert!(
        err.contains(&format!("#{number} CACHED")),
        "step #{number} (COPY shared.txt) came from the cache: {err}"
    );
}

#[test]
fn a_live_image_that_cannot_be_pulled_only_warns() {
    let Some(live) = Live::new("cachew", "classic") else {
        return;
    };
    let gone = format!(
        "{}/{}@sha256:{}",
        live.services.registry,
        live.stack.name,
        "0".repeat(64)
    );
    live.make_live(&gone);
    let out = live.build("v1.0.0", SHA_A);
    let err = stderr(&out);
    reference(&out);
    assert!(
        err.contains("cannot pull the cache image; building without it"),
        "{err}"
    );
}
