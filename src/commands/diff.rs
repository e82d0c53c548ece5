//! `diff` (and the end of `plan`): what a deploy would change against what the live slot
//! runs — the task definition, the settings that matter, the image's labels.

use std::io::Write;

use crate::aws::cloud::AwsCloud;
use crate::config::settings::ServiceSettings;
use crate::config::settings::Strategy;
use crate::engine::Observed;
use crate::ports::{Inventory, TaskSpec};
use crate::report::diff::TaskDiff;

/// Write the diff of `spec` against the live slot of `observed`.
pub async fn write_diff(
    out: &mut dyn Write,
    cloud: &AwsCloud,
    observed: &Observed,
    settings: &ServiceSettings,
    spec: &TaskSpec,
) -> anyhow::Result<()> {
    let new: serde_json::Value = serde_json::from_str(&spec.content)?;
    let live = observed.weights.live();
    let running = live.and_then(|s| observed.slot(s).task_definition.as_ref().map(|td| (s, td)));
    let before = match running {
        Some((_, td)) => Some(
            cloud
                .task_definition_json(&td.id)
                .await
                .map_err(|e| anyhow::anyhow!("reading the live task definition {}: {e}", td.id))?,
        ),
        None => None,
    };
    match running {
        Some((slot, td)) => writeln!(
            out,
            "diff      {} on {slot} ({}) → {}",
            td.spec.version,
            td.id.rsplit('/').next().unwrap_or(&td.id),
            spec.version
        )?,
        None => writeln!(out, "diff      nothing live → {}", spec.version)?,
    }
    writeln!(out, "task definition")?;
    write!(out, "{}", TaskDiff::between(&new, before.as_ref()))?;
    // History keeps no settings per release: say so rather than diff against a guess.
    let record = match running {
        Some((_, td)) => format!(
            "no record of the settings {} was deployed with; as this deploy uses them",
            td.spec.version
        ),
        None => "first deploy: all new".to_string(),
    };
    writeln!(out, "settings ({record})")?;
    for line in settings_lines(settings) {
        writeln!(out, "  {line}")?;
    }
    writeln!(out, "image")?;
    match cloud.image_labels(&spec.digest).await {
        Ok(Some(labels)) => {
            for (label, name) in [
                ("org.opencontainers.image.revision", "revision"),
                ("org.opencontainers.image.created", "created"),
                ("org.opencontainers.image.version", "version"),
                ("org.opencontainers.image.source", "source"),
            ] {
                if let Some(v) = labels.get(label) {
                    writeln!(out, "  {name:<9} {v}")?;
                }
            }
        }
        Ok(None) => writeln!(out, "  no labels")?,
        Err(e) => writeln!(out, "  labels unavailable: {e}")?,
    }
    Ok(())
}

/// The settings a reviewer of a deploy cares about, one line each.
pub fn settings_lines(settings: &ServiceSettings) -> Vec<String> {
    let probes: Vec<String> = settings
        .validation
        .probes
        .iter()
        .map(|p| {
            format!(
                "{} → {}{} ×{}",
                p.path,
                p.expect_status,
                if p.expect_version { " (version)" } else { "" },
                p.consecutive_successes
            )
        })
        .collect();
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    vec![
        format!(
            "strategy  {}",
            match &settings.strategy {
                Strategy::AllAtOnce { bake } => format!("all-at-once, bake {bake}"),
                Strategy::Canary {
                    percent,
                    wait,
                    bake,
                } => format!("canary {percent}% for {wait}, bake {bake}"),
                Strategy::Linear {
                    step,
                    interval,
                    bake,
                } => format!("linear {step}% every {interval}, bake {bake}"),
            }
        ),
        format!("probes    {}", list(&probes)),
        format!(
            "alarms    blue: {}; green: {}; service-wide: {}",
            list(&settings.slots.blue.alarms),
            list(&settings.slots.green.alarms),
            list(&settings.validation.service_alarms)
        ),
        format!("old slot  {:?}", settings.old_slot.policy),
    ]
}
