//! The GitHub job summary (`$GITHUB_STEP_SUMMARY`) and step outputs (`$GITHUB_OUTPUT`):
//! what changed, each step with its duration, traffic over time, validation results and
//! the exact input to roll back.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use super::timeline::Entry;
use crate::ports::{RehearsalEvent, Status};

/// Everything the summary shows about one run.
pub struct RunSummary<'a> {
    pub verb: &'a str,
    pub environment: &'a str,
    pub service: &'a str,
    pub from_version: Option<String>,
    pub to_version: Option<String>,
    pub image: Option<String>,
    pub final_status: Option<String>,
    pub entries: &'a [Entry],
    /// What the deploy changed against the live slot (`cutover diff`'s text), when known.
    pub diff: Option<&'a str>,
    /// The rollback rehearsals that passed in this run (issue 18.1).
    pub rehearsals: &'a [RehearsalEvent],
}

pub fn markdown(s: &RunSummary<'_>) -> String {
    let mut md = String::new();
    let outcome = s.final_status.as_deref().unwrap_or("unknown");
    let _ = writeln!(
        md,
        "## cutover {} — {}/{}: {outcome}\n",
        s.verb, s.environment, s.service
    );
    let _ = writeln!(md, "| | |\n| --- | --- |");
    let _ = writeln!(
        md,
        "| from | {} |",
        s.from_version.as_deref().unwrap_or("nothing live")
    );
    let _ = writeln!(md, "| to | {} |", s.to_version.as_deref().unwrap_or("—"));
    if let Some(image) = &s.image {
        let _ = writeln!(md, "| image | `{image}` |");
    }
    let _ = writeln!(
        md,
        "\n### Steps\n\n| step | started | took | detail |\n| --- | ---: | ---: | --- |"
    );
    for (i, e) in s.entries.iter().enumerate() {
        let took = s
            .entries
            .get(i + 1)
            .map_or_else(|| "—".to_string(), |next| format!("{:.0}s", next.at - e.at));
        let _ = writeln!(
            md,
            "| {} | +{:.0}s | {took} | {} |",
            e.event.status,
            e.at,
            escape(&e.event.detail)
        );
    }
    if let Some(to) = &s.to_version {
        // The steps above are this run's; history keeps the release's whole timeline
        // (every run that moved it), which this command prints.
        let _ = writeln!(
            md,
            "\nThe release's whole timeline, kept in history: `cutover status --env {} --service {} --release {to}`",
            s.environment, s.service
        );
    }
    let shifts: Vec<(f64, u8)> = s
        .entries
        .iter()
        .filter_map(|e| match e.event.status {
            Status::Shifting(p) => Some((e.at, p)),
            Status::Promoted => Some((e.at, 100)),
            Status::RolledBack => Some((e.at, 0)),
            _ => None,
        })
        .collect();
    if !shifts.is_empty() {
        let _ = writeln!(
            md,
            "\n### Traffic on {}\n",
            s.to_version.as_deref().unwrap_or("the new release")
        );
        let xs: Vec<String> = shifts
            .iter()
            .map(|(t, _)| format!("\"+{t:.0}s\""))
            .collect();
        let ys: Vec<String> = shifts.iter().map(|(_, p)| p.to_string()).collect();
        let _ = writeln!(
            md,
            "```mermaid\nxychart-beta\n    title \"Production traffic on the new release (%)\"\n    x-axis [{}]\n    y-axis \"%\" 0 --> 100\n    line [{}]\n```",
            xs.join(", "),
            ys.join(", ")
        );
    }
    if let Some(diff) = s.diff {
        // A fenced block: the diff's lines keep their + - ~ marks and alignment.
        let _ = writeln!(
            md,
            "\n### Changes\n\n```\n{}\n```",
            diff.trim_end().replace("```", "'''")
        );
    }
    let checks: Vec<&Entry> = s
        .entries
        .iter()
        .filter(|e| e.event.status == Status::Validating)
        .collect();
    if !checks.is_empty() {
        let _ = writeln!(md, "\n### Validation\n");
        for e in checks {
            let _ = writeln!(md, "- {}", escape(&e.event.detail));
        }
    }
    for r in s.rehearsals {
        let secs = crate::ports::seconds;
        let _ = writeln!(
            md,
            "\n### Rollback rehearsal\n\nPassed: production went back to the previous release and forward again, each direction read back at 100% and probed.\n\n| direction | production on | took |\n| --- | --- | ---: |\n| back | {} | {} |\n| forward | {} on {} | {} |",
            r.rehearsal.to,
            secs(r.rehearsal.back_ms),
            r.version,
            r.slot,
            secs(r.rehearsal.forward_ms)
        );
    }
    let _ = writeln!(
        md,
        "\n### Roll back\n\nRun the rollback workflow with `rollback: true`, or from a laptop:\n\n```sh\ncutover rollback --env {} --service {}{}\n```",
        s.environment,
        s.service,
        s.from_version
            .as_ref()
            .map(|v| format!("   # or --to {v}"))
            .unwrap_or_default()
    );
    md
}

/// A train's run (several services as one release): its one status and a row per member.
pub struct TrainSummary<'a> {
    pub verb: &'a str,
    pub environment: &'a str,
    pub status: String,
    /// The train run whose release it is (`TrainOutcome::id`), when known.
    pub id: Option<&'a str>,
    pub rows: &'a [TrainRow<'a>],
}

/// One member of a train: where it went and how it ended.
pub struct TrainRow<'a> {
    pub service: &'a str,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub status: String,
    /// Seconds from the train's start to this member's end (None: not measured).
    pub seconds: Option<u64>,
    pub detail: &'a str,
}

/// The train's table, above each member's own section (steps, traffic chart, checks).
pub fn train_markdown(t: &TrainSummary<'_>) -> String {
    let mut md = String::new();
    let services: Vec<&str> = t.rows.iter().map(|r| r.service).collect();
    let _ = writeln!(
        md,
        "## cutover {} — train of {} in {}: {}{}
",
        t.verb,
        services.len(),
        t.environment,
        t.status,
        t.id.map_or_else(String::new, |id| format!(" (train run `{id}`)"))
    );
    let _ = writeln!(
        md,
        "| member | from | to | status | took | detail |\n| --- | --- | --- | --- | ---: | --- |"
    );
    for r in t.rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            r.service,
            r.from.unwrap_or("nothing live"),
            r.to.unwrap_or("—"),
            r.status,
            r.seconds
                .map_or_else(|| "—".to_string(), |s| format!("{s}s")),
            escape(r.detail)
        );
    }
    let _ = writeln!(
        md,
        "\nRoll the whole train back: `cutover rollback --env {} --service {}` (or the rollback workflow with the same `services`).\n",
        t.environment,
        services.join(",")
    );
    md
}

fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Append the summary to `$GITHUB_STEP_SUMMARY`.
pub fn append_summary(path: &Path, markdown: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(markdown.as_bytes())
}

/// Append outputs to `$GITHUB_OUTPUT` with the multi-line-safe `name<<DELIMITER` form.
/// The delimiter is random, so a value can never end the block early.
pub fn append_outputs(path: &Path, outputs: &[(&str, String)]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    for (name, value) in outputs {
        let delimiter = loop {
            let d = format!("cutover_{:016x}", random_u64());
            if !value.contains(&d) {
                break d;
            }
        };
        writeln!(f, "{name}<<{delimiter}\n{value}\n{delimiter}")?;
    }
    Ok(())
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{Slot, StatusEvent};

    fn entry(at: f64, status: Status, detail: &str) -> Entry {
        Entry {
            at,
            event: StatusEvent {
                status,
                version: None,
                slot: Some(Slot::Green),
                detail: detail.into(),
            },
        }
    }

    #[test]
    fn outputs_survive_multi_line_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        append_outputs(
            &path,
            &[
                ("status", "Promoted".into()),
                ("notes", "line 1\nline 2\nEOF".into()),
            ],
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        let (name, delim) = lines.next().unwrap().split_once("<<").unwrap();
        assert_eq!(name, "status");
        assert_eq!(lines.next(), Some("Promoted"));
        assert_eq!(lines.next(), Some(delim));
        let (name, delim) = lines.next().unwrap().split_once("<<").unwrap();
        assert_eq!(name, "notes");
        assert_eq!(
            lines
                .by_ref()
                .take_while(|l| *l != delim)
                .collect::<Vec<_>>(),
            ["line 1", "line 2", "EOF"]
        );
    }

    #[test]
    fn a_trains_summary_has_one_row_per_member_and_the_trains_rollback() {
        let rows = [
            TrainRow {
                service: "api",
                from: Some("v1.0.0"),
                to: Some("v1.1.0"),
                status: "RolledBack".into(),
                seconds: Some(312),
                detail: "back on blue | alarm",
            },
            TrainRow {
                service: "web",
                from: None,
                to: Some("v1.1.0"),
                status: "Failed".into(),
                seconds: None,
                detail: "probe /health answered 500",
            },
        ];
        let md = train_markdown(&TrainSummary {
            verb: "deploy",
            environment: "production",
            status: "RolledBack".into(),
            id: Some("0a1b2c3d"),
            rows: &rows,
        });
        assert!(
            md.contains("train of 2 in production: RolledBack (train run `0a1b2c3d`)"),
            "{md}"
        );
        assert!(
            md.contains("| api | v1.0.0 | v1.1.0 | RolledBack | 312s | back on blue \\| alarm |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| web | nothing live | v1.1.0 | Failed | — | probe /health answered 500 |"
            ),
            "{md}"
        );
        assert!(
            md.contains("cutover rollback --env production --service api,web"),
            "{md}"
        );
    }

    #[test]
    fn summary_has_steps_chart_validation_and_rollback() {
        let entries = vec![
            entry(0.0, Status::Staging, "green"),
            entry(30.0, Status::Validating, "probes 3/3 passed"),
            entry(40.0, Status::Shifting(10), "10%"),
            entry(340.0, Status::Shifting(100), "100%"),
            entry(640.0, Status::Promoted, "done"),
        ];
        let md = markdown(&RunSummary {
            verb: "promote",
            environment: "production",
            service: "web",
            from_version: Some("v1.0.0".into()),
            to_version: Some("v1.1.0".into()),
            image: Some("r@sha256:ab".into()),
            final_status: Some("Promoted".into()),
            entries: &entries,
            diff: None,
            rehearsals: &[],
        });
        insta::assert_snapshot!(md);
        let with_diff = markdown(&RunSummary {
            verb: "promote",
            environment: "production",
            service: "web",
            from_version: None,
            to_version: None,
            image: None,
            final_status: None,
            entries: &entries,
            diff: Some("task definition\n  ~ cpu: 256 → 512\n"),
            rehearsals: &[],
        });
        assert!(
            with_diff.contains("### Changes\n\n```\ntask definition\n  ~ cpu: 256 → 512\n```"),
            "{with_diff}"
        );
    }

    #[test]
    fn summary_shows_the_rollback_rehearsal_both_ways_with_durations() {
        use crate::ports::{Rehearsal, Slot};
        use crate::version::Version;
        let rehearsal = RehearsalEvent {
            version: Version::parse("v1.1.0").unwrap(),
            slot: Slot::Green,
            rehearsal: Rehearsal {
                to: Version::parse("v1.0.0").unwrap(),
                back_ms: 6_200,
                forward_ms: 7_060,
                at: 0,
            },
        };
        let md = markdown(&RunSummary {
            verb: "promote",
            environment: "staging",
            service: "web",
            from_version: Some("v1.0.0".into()),
            to_version: Some("v1.1.0".into()),
            image: None,
            final_status: Some("Promoted".into()),
            entries: &[],
            diff: None,
            rehearsals: std::slice::from_ref(&rehearsal),
        });
        assert!(
            md.contains("### Rollback rehearsal\n\nPassed: ")
                && md.contains("| back | v1.0.0 | 6.2s |\n| forward | v1.1.0 on green | 7.1s |"),
            "{md}"
        );
        assert!(md.find("### Rollback rehearsal") < md.find("### Roll back\n"));
    }
}
