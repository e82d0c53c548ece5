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
use crate::ports::{Digest, PortError, PortResult, StoredImage};

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

/// `cutover cleanup`: the repository's images and their deletion.
impl Ecr {
    /// Every image of `repository` (DescribeImages pages).
    pub async fn images(&self, repository: &str) -> PortResult<Vec<StoredImage>> {
        let mut images = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = Call::read("ecr:DescribeImages", repository)
                .send(
                    self.client
                        .describe_images()
                        .repository_name(repository)
                        .set_next_token(next.clone())
                        .send(),
                )
                .await?;
            for d in out.image_details() {
                let Some(digest) = d.image_digest() else {
                    continue;
                };
                images.push(StoredImage {
                    digest: Digest(digest.to_string()),
                    tags: d.image_tags().to_vec(),
                    pushed_at: d
                        .image_pushed_at()
                        .and_then(|t| u64::try_from(t.to_millis().ok()?).ok()),
                    media_type: d.image_manifest_media_type().map(str::to_string),
                });
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(images)
    }

    /// BatchDeleteImage by digest (every tag of each goes with it), 100 per call.
    pub async fn delete_images(&self, repository: &str, digests: &[Digest]) -> PortResult<()> {
        for chunk in digests.chunks(100) {
            let ids = chunk
                .iter()
                .map(|d| {
                    aws_sdk_ecr::types::ImageIdentifier::builder()
                        .image_digest(&d.0)
                        .build()
                })
                .collect();
            let out = Call::write("ecr:BatchDeleteImage", repository)
                .send(
                    self.client
                        .batch_delete_image()
                        .repository_name(repository)
                        .set_image_ids(Some(ids))
                        .send(),
                )
                .await?;
            let failed: Vec<String> = out
                .failures()
                .iter()
                .filter(|f| {
                    // Already gone is what was asked.
                    f.failure_code().map(|c| c.as_str()) != Some("ImageNotFound")
                })
                .map(|f| {
                    format!(
                        "{}: {}",
                        f.image_id().and_then(|i| i.image_digest()).unwrap_or("?"),
                        f.failure_reason().unwrap_or("no reason given")
                    )
                })
                .collect();
            if !failed.is_empty() {
                return Err(PortError::Conflict(format!(
                    "ECR did not delete every image of {repository}: {}",
                    failed.join("; ")
                )));
            }
        }
        Ok(())
    }
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
