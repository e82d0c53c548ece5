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
