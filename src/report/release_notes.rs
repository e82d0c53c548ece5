//! Release notes on a GitHub Release: GitHub's generate-notes API between the previous
//! semver tag and this one, written to the release for the tag (created when missing).
//! Like every reporter, a failure here is logged and never fails the deploy.

use octocrab::Octocrab;

use super::github::{GithubTarget, client, describe};
use crate::version::Version;

pub struct ReleaseNotes {
    octo: Octocrab,
    owner: String,
    repo: String,
}

impl ReleaseNotes {
    pub fn new(target: &GithubTarget) -> anyhow::Result<Self> {
        Ok(Self {
            octo: client(target)?,
            owner: target.owner.clone(),
            repo: target.repo.clone(),
        })
    }

    /// Write the notes for `version` to its GitHub Release.
    pub async fn publish(&self, version: &Version) {
        match self.try_publish(version).await {
            Ok(previous) => tracing::info!(
                "release notes for {version} (since {}) published",
                previous.as_deref().unwrap_or("the first commit")
            ),
            Err(e) => tracing::warn!(
                "release notes for {version} not published: {}",
                describe(&e)
            ),
        }
    }

    async fn try_publish(&self, version: &Version) -> octocrab::Result<Option<String>> {
        let repo = self.octo.repos(&self.owner, &self.repo);
        let tag = version.to_string();
        let tags = repo.list_tags().per_page(100).send().await?;
        let previous = previous_tag(tags.items.iter().map(|t| t.name.as_str()), version);
        let releases = repo.releases();
        let mut request = releases.generate_release_notes(&tag);
        if let Some(p) = &previous {
            request = request.previous_tag_name(p);
        }
        let notes = request.send().await?;
        match releases.get_by_tag(&tag).await {
            Ok(existing) => {
                releases
                    .update(existing.id.0)
                    .body(&notes.body)
                    .send()
                    .await?;
            }
            Err(octocrab::Error::GitHub { source, .. }) if source.status_code.as_u16() == 404 => {
                releases
                    .create(&tag)
                    .name(&notes.name)
                    .body(&notes.body)
                    .send()
                    .await?;
            }
            Err(e) => return Err(e),
        }
        Ok(previous)
    }
}

/// The greatest semver tag below `version` (pre-releases included, other tags ignored).
pub fn previous_tag<'a>(tags: impl Iterator<Item = &'a str>, version: &Version) -> Option<String> {
    tags.filter_map(|t| Version::parse(t).ok().map(|v| (v, t)))
        .filter(|(v, _)| v < version)
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, t)| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_tag_is_the_greatest_semver_below() {
        let v = |s| Version::parse(s).unwrap();
        let tags = [
            "v1.10.0",
            "v1.9.0",
            "latest",
            "v1.2.0",
            "v2.0.0",
            "v1.10.0-rc.1",
        ];
        assert_eq!(
            previous_tag(tags.into_iter(), &v("v1.10.0")).as_deref(),
            Some("v1.10.0-rc.1")
        );
        assert_eq!(
            previous_tag(tags.into_iter(), &v("v1.9.0")).as_deref(),
            Some("v1.2.0")
        );
        assert_eq!(previous_tag(tags.into_iter(), &v("v1.0.0")), None);
    }
}
