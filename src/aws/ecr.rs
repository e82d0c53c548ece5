//! ECR: the authorization token that lets the daemon push and the v2 API answer. The
//! token and the password it decodes to are secrets: they leave this module only inside
//! `SecretString`s and never reach a log or an error message.

use anyhow::{Context, anyhow};
use aws_config::SdkConfig;
use base64::Engine;
use secrecy::SecretString;
use tracing::instrument::WithSubscriber;

use super::errors::Call;
use crate::image::RegistryAuth;

/// The ECR API client for one environment, built once.
pub struct Ecr {
    client: aws_sdk_ecr::Client,
}

impl Ecr {
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_ecr::Client::new(config),
        }
    }

    /// The client itself, for the calls outside this module's secret handling.
    pub fn client(&self) -> &aws_sdk_ecr::Client {
        &self.client
    }

    /// GetAuthorizationToken → the registry host and the credentials for it.
    pub async fn authorization(&self) -> anyhow::Result<RegistryAuth> {
        // The SDK traces response bodies and outputs, and ECR does not mark the token
        // sensitive: this one call runs with tracing switched off, whatever the filter.
        let out = Call::read("ecr:GetAuthorizationToken", "*")
            .send(self.client.get_authorization_token().send())
            .with_subscriber(tracing::subscriber::NoSubscriber::default())
            .await
            .map_err(|e| {
                anyhow!(
                    "{e}. The AWS identity needs ecr:GetAuthorizationToken (and push rights on \
                     the repository)"
                )
            })?;
        let data = out
            .authorization_data()
            .first()
            .context("ecr:GetAuthorizationToken returned no authorization data")?;
        let token = data
            .authorization_token()
            .context("ecr:GetAuthorizationToken returned no token")?;
        let endpoint = data
            .proxy_endpoint()
            .context("ecr:GetAuthorizationToken returned no registry endpoint")?;
        let host = endpoint
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let (username, password) = decode(token)?;
        tracing::debug!(registry = %host, "got an ECR authorization token");
        Ok(RegistryAuth {
            host,
            username,
            password: SecretString::from(password),
            token: SecretString::from(token.to_string()),
        })
    }
}

/// The token is base64("user:password"). Errors never include the token.
fn decode(token: &str) -> anyhow::Result<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| anyhow!("the ECR authorization token is not valid base64"))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow!("the ECR authorization token does not decode to text"))?;
    let (user, password) = text
        .split_once(':')
        .ok_or_else(|| anyhow!("the ECR authorization token is not of the form user:password"))?;
    Ok((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_user_and_password_and_never_echoes_a_bad_token() {
        let token = base64::engine::general_purpose::STANDARD.encode("AWS:s3cr3t:with:colons");
        let (u, p) = decode(&token).unwrap();
        assert_eq!((u.as_str(), p.as_str()), ("AWS", "s3cr3t:with:colons"));
        let err = decode("sentinel-SECRET-!!").unwrap_err().to_string();
        assert!(!err.contains("sentinel"), "{err}");
    }
}
