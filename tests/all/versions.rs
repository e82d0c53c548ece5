//! `[versions]` rules against moto (issues 17.5, 18.1): production ships only the very same
//! image digest that staging promoted (and rehearsed). Two environments of one service,
//! each with its own history in SSM; staging's is written here as staging's runs would
//! have left it, production's by the real binary.

use cutover::ports::{Digest, Rehearsal, Release, Slot, Status};
use cutover::version::Version;

use crate::e2e::World;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// A history entry as an environment's own runs record it.
fn entry(version: &str, digest: &str, status: Status, rehearsed: bool) -> Release {
    let promoted = matches!(status, Status::Promoted | Status::RolledBack);
    Release {
        version: Version::parse(version).unwrap(),
        digest: Digest(digest.into()),
        task_definition: format!(
            "arn:aws:ecs:us-east-1:123456789012:task-definition/web-staging:{version}"
        ),
        slot: Slot::Blue,
        by: "https://github.com/o/r/actions/runs/1/attempts/1".into(),
        at: 1_767_225_600_000,
        status,
        fingerprint: String::new(),
        promoted_at: promoted.then_some(1_767_225_600_000),
        transitions: Vec::new(),
        rehearsal: rehearsed.then(|| Rehearsal {
            to: Version::parse("v0.9.0").unwrap(),
            back_ms: 6_000,
            forward_ms: 7_000,
            at: 1_767_225_700_000,
        }),
        train: Vec::new(),
        train_id: String::new(),
    }
}

impl World {
    /// Another environment of the same service: `test`'s settings in another folder, so
    /// its history lives at `/cutover/<env>/<service>/history`.
    pub(crate) fn add_environment(&self, env: &str) {
        let from = self.root.join("deploy/environments/test");
        let to = self.root.join(format!("deploy/environments/{env}"));
        std::fs::create_dir_all(&to).unwrap();
        for file in std::fs::read_dir(&from).unwrap() {
            let file = file.unwrap();
            std::fs::copy(file.path(), to.join(file.file_name())).unwrap();
        }
    }

    /// `test`'s `[versions]` table gets `line`.
    fn rule(&self, line: &str) {
        let file = self.root.join("deploy/environments/test/environment.toml");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("\n[versions]\n"), "{text}");
        std::fs::write(
            &file,
            text.replace("\n[versions]\n", &format!("\n[versions]\n{line}\n")),
        )
        .unwrap();
    }

    fn put_history(&self, env: &str, history: &[Release]) {
        self.put_history_text(env, &serde_json::to_string(history).unwrap());
    }

    fn put_history_text(&self, env: &str, text: &str) {
        let stack = &self.stack;
        self.rt.block_on(async {
            let ssm = aws_sdk_ssm::Client::new(&stack.sdk().await);
            ssm.put_parameter()
                .name(format!("/cutover/{env}/{}/history", stack.name))
                .value(text)
                .r#type(aws_sdk_ssm::types::ParameterType::String)
                .overwrite(true)
                .send()
                .await
                .unwrap();
        });
    }

    /// Build `version` and return its image by digest.
    fn image(&self, version: &str) -> String {
        self.version_file(version.trim_start_matches('v'));
        let out = self.expect(0, &["build", "--tag", version, "--git-sha", SHA]);
        out.lines()
            .find(|l| l.contains("@sha256:"))
            .unwrap()
            .trim()
            .to_string()
    }
}

fn digest_of(image: &str) -> &str {
    image.split_once('@').unwrap().1
}

fn short(digest: &str) -> &str {
    &digest[..19]
}

#[test]
fn deploy_needs_the_same_digest_promoted_in_staging() {
    let Some(w) = World::new("vd") else { return };
    w.add_environment("staging");
    w.rule(r#"require_promoted_in = ["staging"]"#);
    let image = w.image("v1.0.0");
    let digest = digest_of(&image);
    let deploy = ["deploy", "--tag", "v1.0.0", "--image", &image];

    // Nothing in staging yet: refused before any write, in one line naming version,
    // digest, environment, what its history shows and the remedy.
    let before = w.snapshot();
    let out = w.expect(2, &deploy);
    let line = format!(
        "error: v1.0.0 ({}) may not ship to `test`: staging has no history for this service (nothing deployed there yet) ([versions] require_promoted_in); promote v1.0.0 in staging first (the very same image: `--image <repository>@{digest}`)",
        short(digest)
    );
    assert!(out.contains(&line), "{out}");
    assert!(
        !out.contains("Release {") && !out.contains("Some("),
        "{out}"
    );
    assert_eq!(w.snapshot(), before, "a refused deploy wrote to AWS");

    // Staging failed that image, and ran v1.0.0 once with another image: still refused.
    let other = format!("sha256:{}", "e".repeat(64));
    w.put_history(
        "staging",
        &[
            entry("v1.0.0", &other, Status::RolledBack, false),
            entry("v1.0.0", digest, Status::Failed, false),
        ],
    );
    let out = w.expect(2, &deploy);
    assert!(
        out.contains(&format!(
            "staging's history shows v1.0.0 ({}) Failed, never promoted",
            short(digest)
        )),
        "{out}"
    );
    // The dry run reports the verdict and fails as the deploy would; plan only reports.
    let out = w.expect(
        2,
        &["deploy", "--dry-run", "--tag", "v1.0.0", "--image", &image],
    );
    assert!(
        out.contains("versions  REFUSED: staging's history shows"),
        "{out}"
    );
    let out = w.expect(0, &["plan", "--tag", "v1.0.0", "--image", &image]);
    assert!(out.contains("versions  REFUSED: "), "{out}");
    assert_eq!(w.snapshot(), before, "a refused deploy wrote to AWS");

    // Promoted in staging: allowed, and the deploy goes through.
    w.put_history(
        "staging",
        &[entry("v1.0.0", digest, Status::Promoted, false)],
    );
    let out = w.expect(
        0,
        &["deploy", "--dry-run", "--tag", "v1.0.0", "--image", &image],
    );
    assert!(
        out.contains(&format!(
            "versions  ok: staging promoted v1.0.0 ({}) ([versions] require_promoted_in)",
            short(digest)
        )),
        "{out}"
    );
    let out = w.expect(0, &deploy);
    assert!(out.contains("v1.0.0 promoted"), "{out}");

    // Staging's history unreadable (not what cutover writes): `plan` says the rule was not
    // checked and goes on; a deploy stops there, before any write.
    w.put_history_text("staging", "not json");
    let out = w.expect(0, &["plan", "--tag", "v1.0.0", "--image", &image]);
    assert!(
        out.contains("versions  not checked: reading staging's history for [versions]"),
        "{out}"
    );
    let before = w.snapshot();
    let (code, _, stderr) = w.run(&deploy);
    assert!(
        code != 0 && stderr.contains("reading staging's history"),
        "{code} {stderr}"
    );
    assert_eq!(
        w.snapshot(),
        before,
        "a deploy that could not check its rule wrote to AWS"
    );
}

#[test]
fn promote_needs_the_rehearsal_in_staging_and_the_option_adds_a_rule_for_one_run() {
    let Some(w) = World::new("vp") else { return };
    w.add_environment("staging");
    w.add_environment("qa");
    let first = w.image("v1.0.0");
    w.expect(0, &["deploy", "--tag", "v1.0.0", "--image", &first]);
    w.rule(r#"require_rehearsal_in = ["staging"]"#);

    // v1.1.0 staged here; staging promoted that very digest, without a rehearsal.
    let image = w.image("v1.1.0");
    let digest = digest_of(&image);
    w.expect(0, &["stage", "--tag", "v1.1.0", "--image", &image]);
    w.put_history(
        "staging",
        &[entry("v1.1.0", digest, Status::Promoted, false)],
    );
    let before = w.snapshot();
    let out = w.expect(2, &["promote", "--tag", "v1.1.0"]);
    assert!(
        out.contains(&format!(
            "staging promoted v1.1.0 ({}) without a rollback rehearsal ([validation] rehearse_rollback there) ([versions] require_rehearsal_in)",
            short(digest)
        )),
        "{out}"
    );
    let out = w.expect(2, &["promote", "--dry-run", "--tag", "v1.1.0"]);
    assert!(
        out.contains("promote   v1.1.0") && out.contains("versions  REFUSED"),
        "{out}"
    );
    assert_eq!(w.snapshot(), before, "a refused promote wrote to AWS");

    // --require-promoted-in adds qa for this run: refused for qa even once staging
    // rehearsed it; without the option the promote goes through.
    w.put_history(
        "staging",
        &[entry("v1.1.0", digest, Status::Promoted, true)],
    );
    let out = w.expect(
        2,
        &["promote", "--tag", "v1.1.0", "--require-promoted-in", "qa"],
    );
    assert!(
        out.contains("qa has no history for this service")
            && out.contains("(--require-promoted-in); promote v1.1.0 in qa first"),
        "{out}"
    );
    assert_eq!(w.snapshot(), before, "a refused promote wrote to AWS");
    let out = w.expect(0, &["promote", "--tag", "v1.1.0"]);
    assert!(out.contains("v1.1.0 promoted"), "{out}");
}
