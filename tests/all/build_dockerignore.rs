//! `.dockerignore` parity: the same context built by the docker CLI (classic builder) and
//! by cutover; the file lists that reached the daemon must be identical.

use std::collections::BTreeMap;

use cutover::image::{BuildSpec, docker};

use crate::services::{Services, unique};

const TREE: &[&str] = &[
    "a.log",
    "sub/a.log",
    "sub/deep/b.txt",
    "build/keep.txt",
    "build/out.o",
    "build/deep/x.o",
    "docs/README.md",
    "docs/guide.md",
    "secret.env",
    "node_modules/pkg/index.js",
    "x/y/z/file.md",
    "a+b(1).txt",
];

/// (.dockerignore, paths that must be absent, paths that must be present): the
/// expectations keep the comparison from passing vacuously. An excluded Dockerfile or
/// .dockerignore is still sent (the build could not start otherwise) but the daemon drops
/// it from what COPY sees, so those two are not listed.
const CASES: &[(&str, &[&str], &[&str])] = &[
    ("*.log\n", &["a.log"], &["sub/a.log"]),
    ("**/*.log\n", &["a.log", "sub/a.log"], &["sub/deep/b.txt"]),
    (
        "build\n!build/keep.txt\n",
        &["build/out.o", "build/deep/x.o"],
        &["build/keep.txt"],
    ),
    (
        "**/*.md\n!docs/README.md\n",
        &["docs/guide.md", "x/y/z/file.md"],
        &["docs/README.md"],
    ),
    ("*\n!sub\n", &["a.log", "docs"], &["sub/deep/b.txt"]),
    (
        "docs/**\n!docs/guide.md\nsecret.env\nnode_modules\n",
        &["docs/README.md", "secret.env", "node_modules"],
        &["docs/guide.md"],
    ),
    // moby's walk does not enter an excluded directory for a wildcard re-include.
    ("build\n!*/keep.txt\n", &["build"], &["sub/a.log"]),
    (
        "# comment\n/sub/deep\n./x/../secret.env\n  a+b(1).txt  \n",
        &["sub/deep", "secret.env", "a+b(1).txt"],
        &["sub/a.log"],
    ),
    (
        "Dockerfile\n.dockerignore\nx/**/file.md\n",
        &["x/y/z/file.md", "Dockerfile", ".dockerignore"],
        &["x/y/z", "sub/a.log"],
    ),
];

#[tokio::test]
async fn the_context_matches_the_docker_clis_for_each_dockerignore_case() {
    let Some(services) = Services::get() else {
        return;
    };
    let base = services.busybox_image();
    let daemon = docker::connect_to(&services.docker_host).await.unwrap();
    for (i, (ignore, absent, present)) in CASES.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        for path in TREE {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, path).unwrap();
        }
        std::fs::write(dir.path().join(".dockerignore"), ignore).unwrap();
        std::fs::write(
            dir.path().join("Dockerfile"),
            format!("FROM {base}\nCOPY . /ctx\n"),
        )
        .unwrap();
        let name = unique("ignore");

        let cli_tag = format!("{name}:cli");
        services.docker_ok(&["build", "-q", "-t", &cli_tag, "."], dir.path());
        let ours_tag = format!("{name}:cutover");
        let spec = BuildSpec {
            context_dir: dir.path().to_path_buf(),
            dockerfile: "Dockerfile".into(),
            build_args: BTreeMap::new(),
            tags: vec![ours_tag.clone()],
            ..Default::default()
        };
        docker::build(&daemon, &spec, None).await.unwrap();

        let cli = files_in(&services, &cli_tag);
        let ours = files_in(&services, &ours_tag);
        assert_eq!(ours, cli, "case {i}: {ignore:?}");
        for path in *absent {
            assert!(
                !cli.contains(&format!("/ctx/{path}")),
                "case {i}: {path} sent"
            );
        }
        for path in *present {
            assert!(
                cli.contains(&format!("/ctx/{path}")),
                "case {i}: {path} missing"
            );
        }
        services.docker_ok(&["rmi", &cli_tag, &ours_tag], dir.path());
    }
}

fn files_in(services: &Services, image: &str) -> Vec<String> {
    let out = services.docker_ok(
        &["run", "--rm", "--network", "host", image, "find", "/ctx"],
        &std::env::temp_dir(),
    );
    let mut files: Vec<String> = out.lines().map(String::from).collect();
    files.sort();
    files
}
