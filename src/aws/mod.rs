//! AWS adapters. This module loads the one shared SDK configuration per run (region,
//! credentials profile, retries); each service gets one client built from it, once.
//! Endpoints come only from the SDK's standard settings (`AWS_ENDPOINT_URL`, …), which is
//! also how tests point cutover at moto.

pub mod batch;
pub mod cloud;
pub mod cloudwatch;
pub mod ecr;
pub mod ecs;
pub mod elb;
pub mod errors;
pub mod histories;
mod images;
mod inventory;
pub mod ssm;
mod store;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials as _;
use aws_credential_types::provider::error::CredentialsError as SdkCredentialsError;

/// Where an environment's AWS calls go and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// How long resolving the credentials once, up front, may take. Generous on purpose: a
/// `credential_process` or SSO refresh may be slow; an absent chain answers in milliseconds
/// because the instance metadata service is tried once with short timeouts.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(30);
/// The instance metadata service answers on the instance within milliseconds; off EC2 its
/// address does not answer at all, and the SDK's defaults (1 s, several attempts, per
/// call) made a run without credentials retry for ~25 s.
const IMDS_TIMEOUT: Duration = Duration::from_millis(500);

/// The credentials could not be resolved before the first call: nothing was called.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(
        "no AWS credentials found ({detail}); in GitHub Actions use aws-actions/configure-aws-credentials with OIDC before cutover (the job needs `permissions: id-token: write`, and `role-to-assume` set: check that its variable, e.g. AWS_STAGE_ROLE_ARN, is defined where the job runs); locally set AWS_PROFILE or run `aws sso login`"
    )]
    Missing { detail: String },
    #[error(
        "the AWS credentials could not be loaded: {detail}; check {source_of} (`aws sts get-caller-identity{flag}` shows the same failure)"
    )]
    Unusable {
        detail: String,
        source_of: String,
        flag: String,
    },
}

/// What the environment's credentials are, for the remedy: web identity names its role and
/// token file (a workflow without `id-token: write`, or a mistyped role variable, ends up
/// here), anything else the variables in general.
fn environment_source() -> String {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    match (var("AWS_ROLE_ARN"), var("AWS_WEB_IDENTITY_TOKEN_FILE")) {
        (Some(role), Some(file)) => format!(
            "AWS_ROLE_ARN (`{role}`, a role ARN such as arn:aws:iam::123456789012:role/name) and AWS_WEB_IDENTITY_TOKEN_FILE (`{file}`, which must exist)"
        ),
        _ => "the credentials in the environment".to_string(),
    }
}

/// The SDK's default HTTPS client (rustls with aws-lc, the proxy from the environment, as
/// `aws_smithy_runtime` builds it for the latest behaviour version), as one value: every
/// client given it shares its connectors and connection pool. Left to themselves, each SDK
/// client builds its own and loads the system's root certificates again — seven clients
/// per service, 140 loads (about a second) for a train of 20.
fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    use aws_smithy_http_client::{Builder, ConnectorBuilder, proxy::ProxyConfig};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut conn =
            ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::AwsLc));
        conn.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            conn.set_sleep_impl(components.sleep_impl());
        }
        conn.set_proxy_config(Some(ProxyConfig::from_env()));
        conn.build()
    })
}

pub async fn load(target: &AwsTarget) -> SdkConfig {
    let region = Region::new(target.region.clone());
    let imds = aws_config::imds::Client::builder()
        .max_attempts(1)
        .connect_timeout(IMDS_TIMEOUT)
        .read_timeout(IMDS_TIMEOUT)
        .build();
    let mut chain = DefaultCredentialsChain::builder()
        .region(region.clone())
        .imds_client(imds);
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .region(region)
        .app_name(aws_config::AppName::new("cutover").expect("a valid app name"));
    if let Some(profile) = choose_profile(target) {
        tracing::debug!(profile, "using AWS profile");
        chain = chain.profile_name(&profile);
        loader = loader.profile_name(profile);
    }
    loader
        .credentials_provider(chain.build().await)
        .load()
        .await
}

/// An environment's SDK configuration with its credentials resolved: what every client of
/// it is built from. One per environment and run: a train's members share it (one
/// credentials resolution, one connection pool).
#[derive(Clone)]
pub struct Connection {
    pub target: AwsTarget,
    sdk: SdkConfig,
    expiry: Option<SystemTime>,
    /// The test listener probes' HTTP client (not AWS, but built once with the rest).
    probes: reqwest::Client,
}

impl Connection {
    pub async fn open(target: &AwsTarget) -> Result<Self, CredentialsError> {
        let sdk = load(target).await;
        let expiry = resolve_credentials(&sdk, target).await?;
        Ok(Self {
            target: target.clone(),
            sdk,
            expiry,
            probes: crate::probe::LocalChecks::client(),
        })
    }
}

/// Resolve the credentials once, before any call, so a missing or broken chain is one
/// clear error instead of every call failing its retries. Returns when they expire, when
/// the provider says (environment variables and static profiles never do).
pub async fn resolve_credentials(
    sdk: &SdkConfig,
    target: &AwsTarget,
) -> Result<Option<SystemTime>, CredentialsError> {
    let Some(provider) = sdk.credentials_provider() else {
        return Err(CredentialsError::Missing {
            detail: "no credentials provider configured".into(),
        });
    };
    let resolved = tokio::time::timeout(RESOLVE_TIMEOUT, provider.provide_credentials()).await;
    match resolved {
        Ok(Ok(credentials)) => Ok(credentials.expiry()),
        Ok(Err(SdkCredentialsError::CredentialsNotLoaded(_))) => Err(CredentialsError::Missing {
            detail: "the environment, the shared config and credentials files, SSO, web identity and instance metadata had none".into(),
        }),
        // Instance metadata is the chain's last resort: its failure (refused, or an
        // endpoint that is not IMDS) means no earlier provider had credentials either.
        Ok(Err(e)) if from_instance_metadata(&e) => Err(CredentialsError::Missing {
            detail: format!(
                "no provider had any; instance metadata: {}",
                errors::chain_text(&e)
            ),
        }),
        Ok(Err(e)) => {
            let profile = choose_profile(target);
            Err(CredentialsError::Unusable {
                detail: errors::chain_text(&e),
                source_of: profile.as_ref().map_or_else(
                    environment_source,
                    |p| format!("the profile `{p}`"),
                ),
                flag: profile.map(|p| format!(" --profile {p}")).unwrap_or_default(),
            })
        }
        Err(_) => Err(CredentialsError::Missing {
            detail: format!(
                "the credentials chain gave no answer within {}s",
                RESOLVE_TIMEOUT.as_secs()
            ),
        }),
    }
}

fn from_instance_metadata(err: &SdkCredentialsError) -> bool {
    let mut cause = std::error::Error::source(err);
    while let Some(e) = cause {
        if e.is::<aws_config::imds::client::error::ImdsError>() {
            return true;
        }
        cause = e.source();
    }
    false
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
