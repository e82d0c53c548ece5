//! `cutover cleanup`: which task definition revisions, images and lock can go, decided as
//! one plan value (printed by a dry run, executed by `--apply`) from what the history, the
//! slots and the kept task definitions reference. Anything referenced, recent, or unclear
//! is kept, with the reason.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use super::{Engine, EngineError, Lease, Observed};
use crate::config::settings::CleanupSettings;
use crate::ports::{Cloud, Digest, Inventory, Lock, Millis, Revision, Slot, StoredImage};

/// One thing cleanup looked at: removed, or kept and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The ARN or digest acted on.
    pub id: String,
    /// How the listing names it (`web:7`, `sha256:1234abcd… v1.2.0`).
    pub label: String,
    pub remove: bool,
    pub why: String,
}

/// What cleanup removes and keeps, in the order it acts.
#[derive(Debug, Clone, Serialize)]
pub struct CleanupPlan {
    pub families: Vec<String>,
    pub repository: String,
    pub task_definitions: Vec<Decision>,
    pub images: Vec<Decision>,
    pub lock: Option<Decision>,
    /// Whether it was carried out (`--apply`).
    pub applied: bool,
}

/// What the plan is decided from: all read before anything is removed.
pub struct Facts<'a> {
    pub observed: &'a Observed,
    /// The image references (`repo@sha256:…`, `repo:tag`) of every task definition kept.
    pub kept_images: &'a BTreeMap<String, Vec<String>>,
    pub images: &'a [StoredImage],
    pub repository: &'a str,
    pub now: Millis,
}

/// `arn:aws:ecs:r:a:task-definition/web:7` → `web:7`.
fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// `…/web:7` → `web`.
pub fn family_of(arn: &str) -> &str {
    let name = short(arn);
    name.rsplit_once(':').map_or(name, |(family, _)| family)
}

/// The task definitions cleanup keeps, with why: run by a slot, named in the history, or
/// among the newest `keep` of their family. Everything else listed is removed.
pub fn task_definitions(observed: &Observed, revisions: &[Revision], keep: u32) -> Vec<Decision> {
    let mut seen: BTreeMap<&str, u32> = BTreeMap::new();
    revisions
        .iter()
        .map(|r| {
            let rank = seen.entry(&r.family).or_default();
            *rank += 1;
            let why = keep_reason(observed, &r.arn).or_else(|| {
                (*rank <= keep).then(|| format!("one of the newest {keep} of {}", r.family))
            });
            Decision {
                id: r.arn.clone(),
                label: short(&r.arn).to_string(),
                remove: why.is_none(),
                why: why.unwrap_or_else(|| {
                    format!("no slot or history entry references it, older than the newest {keep}")
                }),
            }
        })
        .collect()
}

fn keep_reason(observed: &Observed, arn: &str) -> Option<String> {
    for slot in [Slot::Blue, Slot::Green] {
        let state = observed.slot(slot);
        if state
            .task_definition
            .as_ref()
            .is_some_and(|td| td.id == arn)
        {
            let role = if observed.weights.of(slot) > 0 {
                "live"
            } else {
                "idle"
            };
            return Some(format!("run by {slot} ({role}, {} tasks)", state.desired));
        }
    }
    observed
        .history
        .iter()
        .rev()
        .find(|r| r.task_definition == arn)
        .map(|r| format!("history: {} ({})", r.version, r.status))
}

/// The images cleanup keeps, with why: in the history, referenced by a kept task
/// definition (by digest or by tag), among the newest `keep` pushed, or possibly part of a
/// multi-platform image. Everything else is removed.
pub fn images(facts: &Facts<'_>, settings: &CleanupSettings) -> Vec<Decision> {
    let mut digests: BTreeMap<&str, String> = BTreeMap::new();
    let mut tags: BTreeMap<&str, String> = BTreeMap::new();
    for (arn, refs) in facts.kept_images {
        for image in refs {
            match image.split_once('@') {
                Some((_, digest)) => {
                    digests.insert(digest, format!("used by {}", short(arn)));
                }
                None => {
                    if let Some((name, tag)) = image.rsplit_once(':')
                        && !tag.contains('/')
                        && name.rsplit('/').next() == facts.repository.rsplit('/').next()
                    {
                        tags.insert(tag, format!("used by {} (by tag)", short(arn)));
                    }
                }
            }
        }
    }
    let in_history: BTreeMap<&str, String> = facts
        .observed
        .history
        .iter()
        .map(|r| {
            (
                r.digest.0.as_str(),
                format!("history: {} ({})", r.version, r.status),
            )
        })
        .collect();
    let has_index = facts.images.iter().any(|i| {
        i.media_type
            .as_deref()
            .is_some_and(|m| m.contains("index") || m.contains("manifest.list"))
    });
    let mut newest: Vec<&StoredImage> = facts.images.iter().collect();
    // No push time reads as newest: kept.
    newest.sort_by_key(|i| std::cmp::Reverse(i.pushed_at.unwrap_or(Millis::MAX)));
    // Pushed no earlier than the keep_images-th newest: a tie at the cut keeps both.
    let cut = newest
        .get((settings.keep_images as usize).saturating_sub(1))
        .map_or(0, |i| i.pushed_at.unwrap_or(Millis::MAX));
    let recent: BTreeSet<&str> = newest
        .iter()
        .filter(|i| i.pushed_at.unwrap_or(Millis::MAX) >= cut)
        .map(|i| i.digest.0.as_str())
        .collect();
    newest
        .iter()
        .map(|i| {
            let d = i.digest.0.as_str();
            let why = if !settings.delete_images {
                Some("[cleanup] delete_images = false".to_string())
            } else {
                in_history
                    .get(d)
                    .or_else(|| digests.get(d))
                    .or_else(|| i.tags.iter().find_map(|t| tags.get(t.as_str())))
                    .cloned()
                    .or_else(|| {
                        recent.contains(d).then(|| {
                            format!("one of the newest {} pushed", settings.keep_images)
                        })
                    })
                    .or_else(|| {
                        (has_index && i.tags.is_empty()).then(|| {
                            "untagged in a repository with multi-platform images: may be one of their platforms".to_string()
                        })
                    })
            };
            Decision {
                id: d.to_string(),
                label: image_label(i, facts.now),
                remove: why.is_none(),
                why: why.unwrap_or_else(|| {
                    "no history entry or kept task definition references it".to_string()
                }),
            }
        })
        .collect()
}

fn image_label(image: &StoredImage, now: Millis) -> String {
    let d = image.digest.0.trim_start_matches("sha256:");
    let tags = if image.tags.is_empty() {
        "untagged".to_string()
    } else {
        image.tags.join(", ")
    };
    let age = image
        .pushed_at
        .map(|at| format!(", pushed {} ago", ago(now.saturating_sub(at))))
        .unwrap_or_default();
    format!("sha256:{}… ({tags}{age})", &d[..d.len().min(12)])
}

fn ago(ms: Millis) -> String {
    let s = ms / 1000;
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        7200..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// The lock: an expired lease is a dead holder's and goes; a live one is a run in progress.
pub fn lock(lock: Option<&Lock>, now: Millis) -> Option<Decision> {
    let lock = lock?;
    let expired = lock.expires_at <= now;
    Some(Decision {
        id: lock.token.clone(),
        label: format!("deploy lock held by {}", lock.owner),
        remove: expired,
        why: if expired {
            format!(
                "its lease expired {} ago: the holder is gone",
                ago(now - lock.expires_at)
            )
        } else {
            format!(
                "a live run holds it (lease ends in {}); cleanup --apply waits for no one and exits 5",
                ago(lock.expires_at - now)
            )
        },
    })
}

impl CleanupPlan {
    fn removing(list: &[Decision]) -> usize {
        list.iter().filter(|d| d.remove).count()
    }
}

impl fmt::Display for CleanupPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (remove, removed) = if self.applied {
            ("removed", "removed")
        } else {
            ("remove", "would remove")
        };
        let section = |f: &mut fmt::Formatter<'_>, title: String, list: &[Decision]| {
            writeln!(f, "{title}")?;
            if list.is_empty() {
                writeln!(f, "  (none)")?;
            }
            for d in list {
                let verb = if d.remove { remove } else { "keep" };
                writeln!(f, "  {verb:<7} {:<44} {}", d.label, d.why)?;
            }
            Ok(())
        };
        section(
            f,
            format!(
                "task definitions (family {}, ACTIVE revisions)",
                if self.families.is_empty() {
                    "unknown: no slot runs a task definition".to_string()
                } else {
                    self.families.join(", ")
                }
            ),
            &self.task_definitions,
        )?;
        section(
            f,
            format!("images (repository {})", self.repository),
            &self.images,
        )?;
        section(f, "lock".into(), self.lock.as_slice())?;
        writeln!(
            f,
            "{removed}: {} task definition(s), {} image(s), {} expired lock(s){}",
            Self::removing(&self.task_definitions),
            Self::removing(&self.images),
            self.lock.iter().filter(|l| l.remove).count(),
            if self.applied {
                ""
            } else {
                " (dry run: nothing removed; --apply removes them)"
            }
        )
    }
}

impl<C: Cloud + Inventory> Engine<'_, C> {
    /// The cleanup plan over what AWS holds now; changes nothing.
    pub async fn cleanup_plan(&self) -> Result<CleanupPlan, EngineError> {
        let observed = self.observe().await?;
        self.decide_cleanup(&observed, observed.lock.clone()).await
    }

    /// Cleanup under the deploy lock: an expired lock is broken as any run breaks one, a
    /// live one refuses (exit 5); the plan is decided again under the lock, then carried out.
    pub async fn cleanup(&self) -> Result<CleanupPlan, EngineError> {
        let before = self.observe().await?.lock;
        let lease = self.lock().await?;
        let result = lease.hold(self, self.cleanup_locked(&lease, before)).await;
        lease.release(self).await;
        result
    }

    async fn cleanup_locked(
        &self,
        lease: &Lease,
        before: Option<Lock>,
    ) -> Result<CleanupPlan, EngineError> {
        let observed = self.observe_locked(lease).await?;
        let mut plan = self.decide_cleanup(&observed, before).await?;
        for d in plan.task_definitions.iter().filter(|d| d.remove) {
            self.write(lease, "deregister a task definition", || {
                self.cloud.deregister(&d.id)
            })
            .await?;
        }
        let doomed: Vec<Digest> = plan
            .images
            .iter()
            .filter(|d| d.remove)
            .map(|d| Digest(d.id.clone()))
            .collect();
        if !doomed.is_empty() {
            self.write(lease, "delete images", || self.cloud.delete_images(&doomed))
                .await?;
        }
        plan.applied = true;
        Ok(plan)
    }

    async fn decide_cleanup(
        &self,
        observed: &Observed,
        lock_seen: Option<Lock>,
    ) -> Result<CleanupPlan, EngineError> {
        let settings = &self.settings.cleanup;
        let in_use: Vec<&str> = [Slot::Blue, Slot::Green]
            .iter()
            .filter_map(|s| observed.slot(*s).task_definition.as_ref())
            .map(|td| td.id.as_str())
            .collect();
        let families: BTreeSet<String> = in_use
            .iter()
            .copied()
            .chain(observed.history.iter().map(|r| r.task_definition.as_str()))
            .map(|arn| family_of(arn).to_string())
            .collect();
        let mut revisions = Vec::new();
        for family in &families {
            revisions.extend(
                self.read("list the family's task definitions", || {
                    self.cloud.revisions(family)
                })
                .await?,
            );
        }
        let task_definitions =
            task_definitions(observed, &revisions, settings.keep_task_definitions);
        // Every task definition that stays, whose images must stay too: the kept ACTIVE
        // revisions and whatever the slots run (ACTIVE or not).
        let kept: BTreeSet<&str> = task_definitions
            .iter()
            .filter(|d| !d.remove)
            .map(|d| d.id.as_str())
            .chain(in_use.iter().copied())
            .collect();
        let mut kept_images = BTreeMap::new();
        for arn in kept {
            let td = self
                .read("read a kept task definition", || {
                    self.cloud.task_definition_json(arn)
                })
                .await?;
            let refs = td["containerDefinitions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["image"].as_str().map(str::to_string))
                .collect();
            kept_images.insert(arn.to_string(), refs);
        }
        let stored = self
            .read("list the repository's images", || self.cloud.images())
            .await?;
        let now = self.cloud.now();
        let facts = Facts {
            observed,
            kept_images: &kept_images,
            images: &stored,
            repository: &self.settings.image.repository,
            now,
        };
        Ok(CleanupPlan {
            families: families.into_iter().collect(),
            repository: self.settings.image.repository.clone(),
            task_definitions,
            images: images(&facts, settings),
            lock: lock(lock_seen.as_ref(), now),
            applied: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{Release, Rollout, SlotState, Status, TaskDefinition, TaskSpec, Weights};
    use crate::version::Version;

    const ARN: &str = "arn:aws:ecs:eu-west-1:1:task-definition/web";

    fn td(n: u32) -> String {
        format!("{ARN}:{n}")
    }

    fn slot(n: Option<u32>, desired: u32) -> SlotState {
        SlotState {
            task_definition: n.map(|n| TaskDefinition {
                id: td(n),
                spec: TaskSpec::new(
                    Version::parse("v1.0.0").unwrap(),
                    Digest("d".into()),
                    "{}".into(),
                ),
            }),
            desired,
            running: desired,
            pending: 0,
            rollout: Rollout::Completed,
            events: vec![],
            stopped_reasons: vec![],
            failures: vec![],
            load_balancers: vec![],
        }
    }

    fn release(tag: &str, n: u32, digest: &str, status: Status) -> Release {
        Release {
            version: Version::parse(tag).unwrap(),
            digest: Digest(digest.into()),
            task_definition: td(n),
            slot: Slot::Blue,
            by: "ci".into(),
            at: 0,
            status,
            fingerprint: String::new(),
            promoted_at: None,
            transitions: Vec::new(),
            rehearsal: None,
            train: Vec::new(),
            train_id: String::new(),
        }
    }

    /// Blue live on web:14, green idle on web:13 (0 tasks); the history names web:2.
    fn observed() -> Observed {
        Observed {
            weights: Weights::all_on(Slot::Blue),
            blue: slot(Some(14), 2),
            green: slot(Some(13), 0),
            test_listener: None,
            history: vec![release("v0.1.0", 2, "sha256:old", Status::RolledBack)],
            lock: None,
        }
    }

    fn revisions(n: u32) -> Vec<Revision> {
        (1..=n)
            .rev()
            .map(|n| Revision {
                arn: td(n),
                family: "web".into(),
                number: n,
            })
            .collect()
    }

    fn removed(list: &[Decision]) -> Vec<&str> {
        list.iter()
            .filter(|d| d.remove)
            .map(|d| d.label.as_str())
            .collect()
    }

    #[test]
    fn revisions_run_by_a_slot_named_in_history_or_recent_are_kept() {
        let o = observed();
        let plan = task_definitions(&o, &revisions(16), 4);
        assert_eq!(
            removed(&plan),
            [
                "web:12", "web:11", "web:10", "web:9", "web:8", "web:7", "web:6", "web:5", "web:4",
                "web:3", "web:1"
            ]
        );
        let why = |label: &str| &plan.iter().find(|d| d.label == label).unwrap().why;
        assert_eq!(why("web:14"), "run by blue (live, 2 tasks)");
        assert_eq!(why("web:13"), "run by green (idle, 0 tasks)");
        assert_eq!(why("web:2"), "history: v0.1.0 (RolledBack)");
        assert_eq!(why("web:16"), "one of the newest 4 of web");
    }

    fn image(digest: &str, tags: &[&str], pushed_at: u64) -> StoredImage {
        StoredImage {
            digest: Digest(format!("sha256:{digest}")),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pushed_at: Some(pushed_at),
            media_type: Some("application/vnd.docker.distribution.manifest.v2+json".into()),
        }
    }

    #[test]
    fn images_referenced_by_history_digest_or_tag_or_recent_are_kept() {
        let o = observed();
        let kept = BTreeMap::from([(
            td(14),
            vec![
                "1.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:live".to_string(),
                "1.dkr.ecr.eu-west-1.amazonaws.com/web:v0.5.0".to_string(),
                // Another repository's tag protects nothing here.
                "1.dkr.ecr.eu-west-1.amazonaws.com/sidecar:v0.6.0".to_string(),
            ],
        )]);
        let stored = vec![
            image("old", &["v0.1.0"], 1),
            image("live", &["v1.0.0"], 2),
            image("tagged", &["v0.5.0"], 3),
            image("sidecar", &["v0.6.0"], 4),
            image("orphan", &[], 5),
            image("newest", &["v2.0.0"], 9),
            // Pushed in the same instant as the newest: a tie at the cut is kept.
            image("tied", &["v2.0.1"], 9),
        ];
        let facts = Facts {
            observed: &o,
            kept_images: &kept,
            images: &stored,
            repository: "web",
            now: 10,
        };
        let settings = CleanupSettings {
            keep_images: 1,
            ..CleanupSettings::default()
        };
        let plan = images(&facts, &settings);
        let gone: Vec<&str> = plan
            .iter()
            .filter(|d| d.remove)
            .map(|d| d.id.as_str())
            .collect();
        assert_eq!(gone, ["sha256:orphan", "sha256:sidecar"]);
        let why = |id: &str| &plan.iter().find(|d| d.id == id).unwrap().why;
        assert_eq!(why("sha256:old"), "history: v0.1.0 (RolledBack)");
        assert_eq!(why("sha256:live"), "used by web:14");
        assert_eq!(why("sha256:tagged"), "used by web:14 (by tag)");
        assert_eq!(why("sha256:newest"), "one of the newest 1 pushed");
        assert_eq!(why("sha256:tied"), "one of the newest 1 pushed");

        // A multi-platform index in the repository: untagged images may be its platforms.
        let mut with_index = stored.clone();
        with_index[5].media_type = Some("application/vnd.oci.image.index.v1+json".into());
        let facts = Facts {
            images: &with_index,
            ..facts
        };
        let plan = images(&facts, &settings);
        assert!(!plan.iter().any(|d| d.id == "sha256:orphan" && d.remove));

        let off = CleanupSettings {
            delete_images: false,
            ..settings
        };
        assert!(images(&facts, &off).iter().all(|d| !d.remove));
    }

    #[test]
    fn only_an_expired_lock_goes() {
        let lock = Lock {
            owner: "https://github.com/o/r/actions/runs/1/attempts/1".into(),
            token: "t".into(),
            acquired_at: 0,
            expires_at: 300_000,
        };
        let dead = super::lock(Some(&lock), 900_000).unwrap();
        assert!(
            dead.remove && dead.why.contains("expired 10m ago"),
            "{dead:?}"
        );
        let live = super::lock(Some(&lock), 100_000).unwrap();
        assert!(!live.remove && live.why.contains("live run"), "{live:?}");
        assert!(super::lock(None, 0).is_none());
    }
}
