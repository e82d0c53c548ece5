//! Release versions from git tags: `v1.2.3`, `1.2.3` or `refs/tags/v1.2.3`, with semver
//! prereleases and build metadata. Anything else is refused with an example of a valid tag.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A release version parsed from a git tag. Displays with a leading `v`, as tags are written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Version(semver::Version);

#[derive(Debug, thiserror::Error)]
#[error(
    "`{tag}` is not a release tag: {reason}. Use a semver tag such as v1.2.3, v1.2.3-rc.1 or refs/tags/v1.2.3"
)]
pub struct VersionError {
    pub tag: String,
    pub reason: String,
}

impl Version {
    pub fn parse(tag: &str) -> Result<Self, VersionError> {
        let err = |reason: String| VersionError {
            tag: tag.to_string(),
            reason,
        };
        let trimmed = tag.trim();
        if trimmed.is_empty() {
            return Err(err(
                "the tag is empty (on GitHub, run on a tag push or pass --tag)".into(),
            ));
        }
        if let Some(rest) = trimmed.strip_prefix("refs/")
            && !rest.starts_with("tags/")
        {
            return Err(err(format!(
                "`refs/{rest}` is a branch or other ref, not a tag"
            )));
        }
        let bare = trimmed.strip_prefix("refs/tags/").unwrap_or(trimmed);
        let bare = bare.strip_prefix('v').unwrap_or(bare);
        semver::Version::parse(bare)
            .map(Self)
            .map_err(|e| err(e.to_string()))
    }

    pub fn is_prerelease(&self) -> bool {
        !self.0.pre.is_empty()
    }

    pub fn semver(&self) -> &semver::Version {
        &self.0
    }

    /// The form used as an image tag. Docker tags cannot hold `+`, so build metadata
    /// is written with `_` (as Helm and others do).
    pub fn image_tag(&self) -> String {
        self.to_string().replace('+', "_")
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

impl TryFrom<String> for Version {
    type Error = VersionError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Version> for String {
    fn from(v: Version) -> Self {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_usual_tag_forms() {
        for tag in ["v1.2.3", "1.2.3", "refs/tags/v1.2.3", "refs/tags/1.2.3"] {
            assert_eq!(Version::parse(tag).unwrap().to_string(), "v1.2.3", "{tag}");
        }
    }

    #[test]
    fn keeps_prerelease_and_build_metadata() {
        let v = Version::parse("v2.0.0-rc.1+build.7").unwrap();
        assert!(v.is_prerelease());
        assert_eq!(v.to_string(), "v2.0.0-rc.1+build.7");
        assert_eq!(v.image_tag(), "v2.0.0-rc.1_build.7");
        assert!(!Version::parse("v2.0.0").unwrap().is_prerelease());
    }

    #[test]
    fn refuses_non_semver_with_an_example() {
        for tag in [
            "",
            "latest",
            "v1.2",
            "release-1",
            "refs/heads/main",
            "v01.2.3",
            "vv1.2.3",
        ] {
            let msg = Version::parse(tag).unwrap_err().to_string();
            assert!(msg.contains("v1.2.3"), "{tag}: {msg}");
            assert!(msg.contains(&format!("`{tag}`")), "{tag}: {msg}");
        }
    }

    #[test]
    fn orders_by_semver_not_text() {
        let a = Version::parse("v1.10.0").unwrap();
        let b = Version::parse("v1.9.0").unwrap();
        assert!(a > b);
        assert!(Version::parse("v1.0.0-rc.1").unwrap() < Version::parse("v1.0.0").unwrap());
    }
}
