//! The simulated ECR repository and the `Inventory` port over it and the simulated ECS, as
//! `src/aws/inventory.rs` reads them from AWS: what `cutover cleanup` lists and removes.
//! A deregistered task definition turns INACTIVE: still described, no longer listed.

use super::cloud::{Kind, SimCloud};
use super::world::World;
use crate::ports::{
    Digest, Inventory, Millis, PortError, PortResult, Revision, StoredImage, TaskDefinition,
};

/// `web:7` → `web`: the sim's task definition ids are the ARN's last part. Its own, not
/// cleanup's: a mutant of the engine's must not change what the cloud lists.
fn family_of(id: &str) -> &str {
    id.rsplit_once(':').map_or(id, |(family, _)| family)
}

/// What ECR says of a single-platform image pushed by `docker push`.
pub const IMAGE_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

impl World {
    /// The image `tag` names, as ECR resolves a tag.
    pub(crate) fn image(&self, tag: &str) -> Option<Digest> {
        self.images
            .iter()
            .find(|i| i.tags.iter().any(|t| t == tag))
            .map(|i| i.digest.clone())
    }

    pub(crate) fn has_image(&self, digest: &Digest) -> bool {
        self.images.iter().any(|i| &i.digest == digest)
    }

    /// A push of `digest` as `tag`: as in ECR, the tag moves off any other image (which may
    /// be left untagged), and pushing an image already stored only adds the tag.
    pub(crate) fn add_image(&mut self, tag: &str, digest: Digest, pushed_at: Millis) {
        for image in &mut self.images {
            image.tags.retain(|t| t != tag);
        }
        match self.images.iter_mut().find(|i| i.digest == digest) {
            Some(image) => image.tags.push(tag.to_string()),
            None => self.images.push(StoredImage {
                digest,
                tags: vec![tag.to_string()],
                pushed_at: Some(pushed_at),
                media_type: Some(IMAGE_MANIFEST.into()),
            }),
        }
    }

    /// An image stored as it is (untagged, a multi-platform index, no push time), in
    /// place of any with its digest.
    pub(crate) fn put_image(&mut self, image: StoredImage) {
        self.images.retain(|i| i.digest != image.digest);
        self.images.push(image);
    }

    /// The ACTIVE revisions of `family`, newest first (ListTaskDefinitions, ACTIVE, DESC).
    fn revisions(&self, family: &str) -> Vec<Revision> {
        let mut revisions: Vec<Revision> = self
            .tds
            .iter()
            .filter(|t| family_of(&t.id) == family && !self.inactive.contains(&t.id))
            .map(|t| Revision {
                arn: t.id.clone(),
                family: family.to_string(),
                number: t
                    .id
                    .rsplit_once(':')
                    .and_then(|(_, n)| n.parse().ok())
                    .unwrap_or(0),
            })
            .collect();
        revisions.sort_by_key(|r| std::cmp::Reverse(r.number));
        revisions
    }

    fn task_definition(&self, arn: &str) -> PortResult<&TaskDefinition> {
        self.tds
            .iter()
            .find(|t| t.id == arn)
            .ok_or_else(|| PortError::NotFound(format!("task definition {arn}")))
    }

    pub(crate) fn is_inactive(&self, td: &str) -> bool {
        self.inactive.contains(td)
    }
}

impl Inventory for SimCloud {
    async fn revisions(&self, family: &str) -> PortResult<Vec<Revision>> {
        self.call("list_task_definitions", Kind::Read, |w, _, _| {
            Ok(w.revisions(family))
        })
        .await
    }

    /// The register shape: the family and its containers. A sim spec renders one
    /// container (a JSON object) or several (an array of them).
    async fn task_definition_json(&self, arn: &str) -> PortResult<serde_json::Value> {
        self.call("describe_task_definition", Kind::Read, |w, _, _| {
            let td = w.task_definition(arn)?;
            let containers = match serde_json::from_str(&td.spec.content) {
                Ok(serde_json::Value::Array(all)) => all,
                Ok(one) => vec![one],
                Err(_) => Vec::new(),
            };
            Ok(serde_json::json!({
                "family": family_of(&td.id),
                "containerDefinitions": containers,
            }))
        })
        .await
    }

    /// Deregistering an INACTIVE task definition again succeeds, as in ECS.
    async fn deregister(&self, arn: &str) -> PortResult<()> {
        self.write(&format!("deregister_task_definition({arn})"), |w, _| {
            w.task_definition(arn)?;
            w.inactive.insert(arn.to_string());
            Ok(())
        })
        .await
    }

    async fn images(&self) -> PortResult<Vec<StoredImage>> {
        self.call("describe_images", Kind::Read, |w, _, _| {
            Ok(w.images.clone())
        })
        .await
    }

    /// BatchDeleteImage by digest, every tag with it; a digest already gone is what was
    /// asked (the adapter passes over ECR's ImageNotFound).
    async fn delete_images(&self, digests: &[Digest]) -> PortResult<()> {
        let op = format!("batch_delete_image({} images)", digests.len());
        self.write(&op, |w, _| {
            w.images.retain(|i| !digests.contains(&i.digest));
            Ok(())
        })
        .await
    }
}
