//! The engine's `Images` port and image references, through the registry's v2 API with
//! ECR's token — the same path the build uses — so "does this digest exist" is answered
//! by the registry that serves the pulls (ECR itself, or environment.toml's override).

use super::cloud::AwsCloud;
use crate::image::{Registry, RegistryAuth};
use crate::ports::*;

/// Images are looked up through the registry's v2 API with the ECR token — the same path
/// the build uses — so "does this digest exist" is answered by the registry that serves
/// the pulls (ECR itself, or `environment.toml`'s registry override).
impl Images for AwsCloud {
    async fn digest_for_tag(&self, tag: &str) -> PortResult<Option<Digest>> {
        let registry = self.registry().await?;
        registry
            .digest(&self.settings.image.repository, tag)
            .await
            .map(|d| d.map(Digest))
            .map_err(|e| PortError::Transient(format!("{e:#}")))
    }

    async fn exists(&self, digest: &Digest) -> PortResult<bool> {
        // The v2 API takes a digest wherever it takes a tag.
        Ok(self.digest_for_tag(&digest.0).await?.is_some())
    }
}

impl AwsCloud {
    /// `host/repository@digest` in the registry this environment pulls from.
    pub async fn image_reference(&self, digest: &Digest) -> PortResult<String> {
        let host = self.registry().await?.host();
        Ok(format!(
            "{host}/{}@{digest}",
            self.settings.image.repository
        ))
    }

    /// ECR's credentials for the registry this environment pushes to and pulls from
    /// (environment.toml's `registry` override applied).
    pub async fn registry_auth(&self) -> anyhow::Result<RegistryAuth> {
        Ok(self
            .ecr
            .authorization()
            .await?
            .with_host(self.registry_override.as_deref()))
    }

    pub(super) async fn registry(&self) -> PortResult<&Registry> {
        self.registry
            .get_or_try_init(|| async {
                let auth = self
                    .registry_auth()
                    .await
                    .map_err(|e| PortError::AccessDenied(format!("{e:#}")))?;
                Registry::new(&auth).map_err(|e| PortError::Transient(format!("{e:#}")))
            })
            .await
    }
}
