//! action.yml's outputs, written to `$GITHUB_OUTPUT`: one service's values as they are;
//! with several services, one `service=value` line each.

use super::run::{Runner, ServiceRun};
use crate::commands::Outcome;
use crate::report::summary;

/// The step outputs: one service's values as they are; with several services, one
/// `service=value` line each.
pub(super) fn write_outputs(runner: &Runner, runs: &[ServiceRun]) -> anyhow::Result<()> {
    let Some(path) = &runner.output else {
        return Ok(());
    };
    let outcomes: Vec<(&str, &Outcome)> = runs
        .iter()
        .map(|r| (r.service.as_str(), &r.outcome))
        .collect();
    summary::append_outputs(path, &output_values(&outcomes))
        .map_err(|e| anyhow::anyhow!("writing step outputs to {}: {e}", path.display()))
}

/// action.yml's outputs: one service's values as they are; with several, one
/// `service=value` line each, in the order the services ran.
fn output_values(runs: &[(&str, &Outcome)]) -> Vec<(&'static str, String)> {
    let field = |o: &Outcome, name: &str| -> Option<String> {
        match name {
            "version" => o.version.clone(),
            "image" => o.image.clone(),
            "digest" => o.digest.clone(),
            "task-definition-arn" => o.task_definition_arn.clone(),
            "live-slot" => o.live_slot.clone(),
            "previous-version" => o.previous_version.clone(),
            "train-id" => o.train_id.clone(),
            _ => o.status.map(|s| s.to_string()),
        }
    };
    let names = [
        "version",
        "image",
        "digest",
        "task-definition-arn",
        "live-slot",
        "previous-version",
        "status",
        "train-id",
    ];
    names
        .into_iter()
        .map(|name| {
            let value = match runs {
                [(_, one)] => field(one, name).unwrap_or_default(),
                many => many
                    .iter()
                    .map(|(service, o)| format!("{service}={}", field(o, name).unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join("\n"),
            };
            (name, value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_plain_for_one_service_and_per_service_lines_for_several() {
        let web = Outcome {
            version: Some("v1.2.0".into()),
            status: Some(crate::ports::Status::Promoted.into()),
            live_slot: Some("green".into()),
            ..Outcome::default()
        };
        let api = Outcome {
            version: Some("v1.2.0".into()),
            status: Some(crate::ports::Status::Failed.into()),
            ..Outcome::default()
        };
        let one = output_values(&[("web", &web)]);
        assert!(one.contains(&("status", "Promoted".to_string())), "{one:?}");
        assert!(one.contains(&("digest", String::new())), "{one:?}");
        let two = output_values(&[("web", &web), ("api", &api)]);
        assert!(
            two.contains(&("status", "web=Promoted\napi=Failed".to_string())),
            "{two:?}"
        );
        assert!(
            two.contains(&("live-slot", "web=green\napi=".to_string())),
            "{two:?}"
        );
        assert_eq!(two.len(), 8, "every output of action.yml");
    }

    /// The keys of a top-level mapping of action.yml (`inputs:` or `outputs:`).
    fn action_yml_keys(section: &str) -> Vec<String> {
        let yml = include_str!("../../../action.yml");
        let mut keys: Vec<String> = yml
            .lines()
            .skip_while(|l| *l != format!("{section}:"))
            .skip(1)
            .take_while(|l| l.is_empty() || l.starts_with(' ') || l.starts_with('#'))
            .filter_map(|l| l.strip_prefix("  "))
            .filter(|l| !l.starts_with(' ') && !l.starts_with('#'))
            .filter_map(|l| l.strip_suffix(':'))
            .map(str::to_string)
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn action_yml_declares_what_the_binary_reads_and_writes() {
        use clap::CommandFactory;
        let cli = crate::cli::Cli::command();
        let action = cli.find_subcommand("action").expect("the action verb");
        let mut read: Vec<String> = action
            .get_arguments()
            .filter_map(|a| a.get_env())
            .filter_map(|e| e.to_str()?.strip_prefix("INPUT_").map(str::to_lowercase))
            .collect();
        read.sort();
        assert_eq!(action_yml_keys("inputs"), read);
        let mut written: Vec<String> = output_values(&[("web", &Outcome::default())])
            .into_iter()
            .map(|(name, _)| name.to_string())
            .collect();
        written.sort();
        assert_eq!(action_yml_keys("outputs"), written);
    }
}
