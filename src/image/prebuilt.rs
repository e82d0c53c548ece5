//! `--image` on stage/deploy (the action's `image` input): a pre-built image is deployed as given, so it must be pinned
//! by digest (build once, promote the same bytes across environments; seed 004).

use super::ImageError;

/// An image reference pinned by digest: `host/repo@sha256:<64 hex>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrebuiltImage {
    pub reference: String,
    pub digest: String,
}

impl PrebuiltImage {
    /// Refuses tags (`repo:v1`) and malformed digests as usage errors, before anything runs.
    /// The message names the reference only: the caller names where it came from.
    pub fn parse(reference: &str) -> Result<Self, ImageError> {
        let reference = reference.trim();
        let refuse = |why: &str| {
            ImageError::Input(format!(
                "`{reference}` {why}: pass a reference by digest, e.g. \
                     123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:<64 hex digits> \
                     (the last line `cutover build` prints)"
            ))
        };
        let (name, digest) = reference
            .split_once('@')
            .ok_or_else(|| refuse("is not pinned by digest"))?;
        let hex = digest
            .strip_prefix("sha256:")
            .ok_or_else(|| refuse("does not use a sha256 digest"))?;
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(refuse("has a malformed sha256 digest"));
        }
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(refuse("has no repository name"));
        }
        Ok(Self {
            reference: reference.to_string(),
            digest: digest.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_references_by_digest() {
        let digest = format!("sha256:{}", "a1".repeat(32));
        let ok = PrebuiltImage::parse(&format!("127.0.0.1:5000/web@{digest}")).unwrap();
        assert_eq!(ok.digest, digest);
        for bad in [
            "127.0.0.1:5000/web:v1.2.3".to_string(),
            format!("web@sha512:{}", "a".repeat(64)),
            "web@sha256:abc".to_string(),
            format!("@{digest}"),
        ] {
            let err = PrebuiltImage::parse(&bad).unwrap_err();
            assert!(matches!(err, ImageError::Input(_)), "{bad}");
        }
    }
}
