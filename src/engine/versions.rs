//! `[versions]` rules across environments (issues 17.5, 18.1): a release may ship here only
//! when the very same image digest was promoted (and, when asked, passed a rollback
//! rehearsal) in another environment first. The evidence is the other environments'
//! histories, read through the [`Histories`] port as plain releases; [`judge`] decides
//! alone, so the commands, the simulation and the tests all drive the same function.

use std::collections::BTreeMap;
use std::fmt;

use super::EngineError;
use crate::ports::{Digest, Histories, Release, Status};
use crate::version::Version;

/// What another environment's history must show for the digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// Promoted there: its bake passed, and it was not rolled back since.
    Promoted,
    /// Promoted there and its rollback rehearsal passed.
    Rehearsed,
}

/// One rule: `env` must show `need`; `source` names where it was asked (for the message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub env: String,
    pub need: Need,
    pub source: String,
}

/// What one environment's history shows about the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shows {
    /// The rule is met by this entry.
    Met { version: Version, rehearsed: bool },
    /// No history at all for this service there.
    NoHistory,
    /// No entry with this digest; `same_version` is the digest the same version ran with.
    Missing { same_version: Option<Digest> },
    /// The digest is there but never passed its bake (its last status).
    NotPromoted { version: Version, status: Status },
    /// Promoted there once, then rolled back away from.
    RolledBack { version: Version },
    /// Promoted there, but no rollback rehearsal passed.
    NotRehearsed { version: Version },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: Rule,
    pub shows: Shows,
}

impl Finding {
    pub fn met(&self) -> bool {
        matches!(self.shows, Shows::Met { .. })
    }
}

/// The rules' verdict on one release about to ship to `env`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub env: String,
    pub version: Version,
    pub digest: Digest,
    pub findings: Vec<Finding>,
}

/// `sha256:` and the first 12 hex digits: enough to tell images apart in one line.
pub fn short(digest: &Digest) -> String {
    let text = &digest.0;
    let cut = text.find(':').map_or(0, |i| i + 1) + 12;
    text.get(..cut).unwrap_or(text).to_string()
}

/// Decide every rule from the histories (`env` → its releases of this service, oldest
/// first, as the history keeps them). Pure: reads and writes nothing.
pub fn judge(
    env: &str,
    version: &Version,
    digest: &Digest,
    rules: &[Rule],
    histories: &BTreeMap<String, Vec<Release>>,
) -> Verdict {
    let findings = rules
        .iter()
        .map(|rule| Finding {
            rule: rule.clone(),
            shows: shows(
                rule.need,
                version,
                digest,
                histories.get(&rule.env).map_or(&[][..], Vec::as_slice),
            ),
        })
        .collect();
    Verdict {
        env: env.to_string(),
        version: version.clone(),
        digest: digest.clone(),
        findings,
    }
}

fn shows(need: Need, version: &Version, digest: &Digest, history: &[Release]) -> Shows {
    if history.is_empty() {
        return Shows::NoHistory;
    }
    let entries: Vec<&Release> = history.iter().filter(|r| &r.digest == digest).collect();
    let good = |r: &Release| {
        r.was_promoted() && !matches!(r.status, Status::RolledBack | Status::RollbackFailed)
    };
    if let Some(r) = entries
        .iter()
        .rev()
        .find(|r| good(r) && (need == Need::Promoted || r.rehearsal.is_some()))
    {
        return Shows::Met {
            version: r.version.clone(),
            rehearsed: r.rehearsal.is_some(),
        };
    }
    if let Some(r) = entries.iter().rev().find(|r| good(r)) {
        return Shows::NotRehearsed {
            version: r.version.clone(),
        };
    }
    if let Some(r) = entries.iter().rev().find(|r| r.was_promoted()) {
        return Shows::RolledBack {
            version: r.version.clone(),
        };
    }
    if let Some(r) = entries.last() {
        return Shows::NotPromoted {
            version: r.version.clone(),
            status: r.status,
        };
    }
    Shows::Missing {
        same_version: history
            .iter()
            .rev()
            .find(|r| &r.version == version)
            .map(|r| r.digest.clone()),
    }
}

impl Verdict {
    /// The one-line refusal when a rule is not met: version, short digest, each unmet
    /// environment with what its history shows, and the remedy.
    pub fn refusal(&self) -> Option<String> {
        let unmet: Vec<String> = self
            .findings
            .iter()
            .filter(|f| !f.met())
            .map(|f| format!("{} ({})", self.finding_text(f), f.rule.source))
            .collect();
        if unmet.is_empty() {
            return None;
        }
        let mut envs: Vec<&str> = self
            .findings
            .iter()
            .filter(|f| !f.met())
            .map(|f| f.rule.env.as_str())
            .collect();
        envs.dedup();
        Some(format!(
            "{} ({}) may not ship to `{}`: {}; promote {} in {} first (the very same image: `--image <repository>@{}`), then run this again",
            self.version,
            short(&self.digest),
            self.env,
            unmet.join("; "),
            self.version,
            envs.join(" and "),
            self.digest,
        ))
    }

    fn finding_text(&self, f: &Finding) -> String {
        let env = &f.rule.env;
        let it = format!("{} ({})", self.version, short(&self.digest));
        match &f.shows {
            Shows::Met { version, rehearsed } => {
                let also = if *rehearsed {
                    ", its rollback rehearsal passed"
                } else {
                    ""
                };
                let named = if version == &self.version {
                    String::new()
                } else {
                    format!(" as {version}")
                };
                format!("{env} promoted {it}{named}{also}")
            }
            Shows::NoHistory => {
                format!("{env} has no history for this service (nothing deployed there yet)")
            }
            Shows::Missing {
                same_version: Some(other),
            } => format!(
                "{env}'s history shows {} with another image ({}), never {}",
                self.version,
                short(other),
                short(&self.digest)
            ),
            Shows::Missing { same_version: None } => {
                format!("{env}'s history does not have {it}")
            }
            Shows::NotPromoted { version, status } => {
                format!(
                    "{env}'s history shows {version} ({}) {status}, never promoted",
                    short(&self.digest)
                )
            }
            Shows::RolledBack { version } => format!(
                "{env} promoted {version} ({}) and then rolled it back",
                short(&self.digest)
            ),
            Shows::NotRehearsed { version } => format!(
                "{env} promoted {version} ({}) without a rollback rehearsal ([validation] rehearse_rollback there)",
                short(&self.digest)
            ),
        }
    }
}

/// One line per rule, for `plan` and `--dry-run`.
impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            let mark = if finding.met() { "ok" } else { "REFUSED" };
            writeln!(
                f,
                "versions  {mark}: {} ({})",
                self.finding_text(finding),
                finding.rule.source
            )?;
        }
        Ok(())
    }
}

/// Read each named environment's history once through `histories` and [`judge`].
pub async fn check<H: Histories>(
    histories: &H,
    env: &str,
    version: &Version,
    digest: &Digest,
    rules: &[Rule],
) -> Result<Verdict, EngineError> {
    let mut read = BTreeMap::new();
    for rule in rules {
        if read.contains_key(&rule.env) {
            continue;
        }
        let history =
            histories
                .history_in(&rule.env)
                .await
                .map_err(|source| EngineError::Port {
                    what: format!("reading {}'s history for [versions]", rule.env),
                    source,
                })?;
        read.insert(rule.env.clone(), history);
    }
    Ok(judge(env, version, digest, rules, &read))
}

impl Verdict {
    /// `Err(Usage)` with [`Verdict::refusal`] when a rule is not met: exit 2, nothing done.
    pub fn enforce(&self) -> Result<(), EngineError> {
        match self.refusal() {
            Some(message) => Err(EngineError::Usage(message)),
            None => Ok(()),
        }
    }
}
