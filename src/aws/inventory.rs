//! The `Inventory` port over ECS and ECR: what `cutover cleanup` and `cutover diff` read
//! beyond a deploy, and what cleanup removes.

use super::cloud::AwsCloud;
use crate::ports::{Digest, Inventory, PortResult, Revision, StoredImage};

impl Inventory for AwsCloud {
    async fn revisions(&self, family: &str) -> PortResult<Vec<Revision>> {
        self.ecs.revisions(family).await
    }

    async fn task_definition_json(&self, arn: &str) -> PortResult<serde_json::Value> {
        self.ecs.task_definition_json(arn).await
    }

    async fn deregister(&self, arn: &str) -> PortResult<()> {
        self.ecs.deregister(arn).await
    }

    async fn images(&self) -> PortResult<Vec<StoredImage>> {
        self.ecr.images(&self.settings.image.repository).await
    }

    async fn delete_images(&self, digests: &[Digest]) -> PortResult<()> {
        self.ecr
            .delete_images(&self.settings.image.repository, digests)
            .await
    }
}

impl AwsCloud {
    /// The image's OCI labels (revision, created…), read from the registry; None when the
    /// registry has no such image or it carries none.
    pub async fn image_labels(
        &self,
        digest: &Digest,
    ) -> PortResult<Option<std::collections::BTreeMap<String, String>>> {
        self.registry()
            .await?
            .labels(&self.settings.image.repository, &digest.0)
            .await
            .map_err(|e| crate::ports::PortError::Transient(format!("{e:#}")))
    }
}
