//! Other environments' histories of the same service (the [`Histories`] port), for
//! `[versions]` rules: each read with an SSM client for that environment's region and
//! credentials profile (the rule every verb uses), at the parameter its environment.toml's
//! `ssm_prefix` names — where that environment's own runs write it.

use std::collections::BTreeMap;

use super::AwsTarget;
use super::ssm::Ssm;
use crate::config::EnvironmentSettings;
use crate::ports::{Histories, PortError, PortResult, Release};

pub struct AwsHistories {
    /// Environment → its SSM client and history parameter.
    envs: BTreeMap<String, (Ssm, String)>,
}

impl AwsHistories {
    /// One SSM client per environment in `envs`, built once.
    pub async fn connect(service: &str, envs: &[(String, EnvironmentSettings)]) -> Self {
        let mut built = BTreeMap::new();
        for (name, settings) in envs {
            let target = AwsTarget {
                environment: name.clone(),
                region: settings.region.clone(),
                profile: settings.profile.clone(),
            };
            let sdk = super::load(&target).await;
            let parameter = format!(
                "{}/history",
                super::cloud::parameter_base(&settings.ssm_prefix, name, service)
            );
            built.insert(
                name.clone(),
                (Ssm::new(aws_sdk_ssm::Client::new(&sdk)), parameter),
            );
        }
        Self { envs: built }
    }
}

impl Histories for AwsHistories {
    async fn history_in(&self, env: &str) -> PortResult<Vec<Release>> {
        let (ssm, parameter) = self.envs.get(env).ok_or_else(|| {
            PortError::NotFound(format!("environment `{env}` was not loaded for [versions]"))
        })?;
        Ok(ssm.get(parameter).await?.unwrap_or_default())
    }
}
