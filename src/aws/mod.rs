//! AWS adapters. This module loads the one shared SDK configuration per run (region,
//! credentials profile, retries); each service gets one client built from it, once.
//! Endpoints come only from the SDK's standard settings (`AWS_ENDPOINT_URL`, …), which is
//! also how tests point cutover at moto.

pub mod cloud;
pub mod cloudwatch;
pub mod ecr;
pub mod ecs;
pub mod elb;
pub mod errors;
mod images;
pub mod ssm;
mod store;

use std::path::PathBuf;

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Where an environment's AWS calls go and as whom.
#[derive(Debug, Clone)]
pub struct AwsTarget {
    pub environment: String,
    pub region: String,
    /// `profile` from environment.toml.
    pub profile: Option<String>,
}

/// The profile rule (seed 000): the configured profile; else a profile named after the
/// environment when the shared config or credentials file has one; else the default chain
/// (environment variables, SSO, web identity, instance roles…).
pub fn choose_profile(target: &AwsTarget) -> Option<String> {
    if let Some(p) = &target.profile {
        return Some(p.clone());
    }
    profile_exists(&target.environment).then(|| target.environment.clone())
}

pub async fn load(target: &AwsTarget) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(target.region.clone()))
        .app_name(aws_config::AppName::new("cutover").expect("a valid app name"));
    if let Some(profile) = choose_profile(target) {
        tracing::debug!(profile, "using AWS profile");
        loader = loader.profile_name(profile);
    }
    loader.load().await
}

fn profile_exists(name: &str) -> bool {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let file = |var: &str, default: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
    };
    let in_file = |path: Option<PathBuf>, headers: &[String]| {
        path.and_then(|p| std::fs::read_to_string(p).ok())
            .is_some_and(|text| has_section(&text, headers))
    };
    in_file(
        file("AWS_CONFIG_FILE", "config"),
        &[format!("profile {name}"), name.to_string()],
    ) || in_file(
        file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
        &[name.to_string()],
    )
}

fn has_section(text: &str, names: &[String]) -> bool {
    text.lines().any(|line| {
        let line = line.trim();
        line.strip_prefix('[')
            .and_then(|l| l.strip_suffix(']'))
            .is_some_and(|inner| {
                let inner = inner.split_whitespace().collect::<Vec<_>>().join(" ");
                names.contains(&inner)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_profile_sections_in_either_file_format() {
        let config = "[default]\nregion=x\n[profile  staging ]\n";
        assert!(has_section(
            config,
            &["profile staging".into(), "staging".into()]
        ));
        assert!(!has_section(config, &["production".into()]));
        assert!(has_section("[production]\n", &["production".into()]));
    }

    #[test]
    fn an_explicit_profile_wins() {
        let t = AwsTarget {
            environment: "production".into(),
            region: "eu-west-1".into(),
            profile: Some("ops".into()),
        };
        assert_eq!(choose_profile(&t).as_deref(), Some("ops"));
    }
}
