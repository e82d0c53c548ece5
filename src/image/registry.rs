//! The registry's v2 HTTP API, spoken directly with the ECR credentials: does a tag exist,
//! what is its digest, and which git revision was it built from. Real ECR serves this API
//! (Basic auth with the authorization token), and so does the tests' local registry.

use anyhow::{Context, bail};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::RegistryAuth;

/// Manifest media types a tag may point at: a multi-platform index or a single image.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

pub const REVISION_LABEL: &str = "org.opencontainers.image.revision";

/// A v2 API client for one registry host, built once per run.
pub struct Registry {
    http: reqwest::Client,
    base: String,
    host: String,
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Descriptor {
    digest: String,
}

#[derive(Deserialize)]
struct ImageConfig {
    #[serde(default)]
    config: Option<ContainerConfig>,
}

#[derive(Deserialize)]
struct ContainerConfig {
    #[serde(rename = "Labels", default)]
    labels: Option<std::collections::BTreeMap<String, String>>,
}

impl Registry {
    pub fn new(auth: &RegistryAuth) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        // The ECR token is base64("AWS:<password>"): exactly a Basic credential.
        let mut value = HeaderValue::try_from(format!("Basic {}", auth.token.expose_secret()))
            .context("the ECR authorization token is not a valid HTTP header value")?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("cutover/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .context("building the registry HTTP client")?;
        Ok(Self {
            http,
            base: format!("{}://{}", scheme_for(&auth.host), auth.host),
            host: auth.host.clone(),
        })
    }

    /// The registry host references are written with.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The digest a tag points at, or None when the repository has no such tag.
    pub async fn digest(&self, repository: &str, tag: &str) -> anyhow::Result<Option<String>> {
        let url = format!("{}/v2/{repository}/manifests/{tag}", self.base);
        let resp = self.send(Method::HEAD, &url, MANIFEST_ACCEPT).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                let digest = resp
                    .headers()
                    .get("docker-content-digest")
                    .and_then(|v| v.to_str().ok())
                    .with_context(|| {
                        format!("{url} answered without a Docker-Content-Digest header")
                    })?;
                Ok(Some(digest.to_string()))
            }
            _ => Err(self.refusal(resp, &url).await),
        }
    }

    /// The `org.opencontainers.image.revision` label of the image at `digest` (for an
    /// index, of its first image: every platform is built from the same commit).
    pub async fn revision(&self, repository: &str, digest: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .labels(repository, digest)
            .await?
            .and_then(|mut l| l.remove(REVISION_LABEL)))
    }

    /// The OCI labels of the image at `digest` (for an index, of its first image).
    pub async fn labels(
        &self,
        repository: &str,
        digest: &str,
    ) -> anyhow::Result<Option<std::collections::BTreeMap<String, String>>> {
        let mut manifest = self.manifest(repository, digest).await?;
        if manifest.config.is_none() {
            let Some(first) = manifest.manifests.first() else {
                return Ok(None);
            };
            let first = first.digest.clone();
            manifest = self.manifest(repository, &first).await?;
        }
        let Some(config) = manifest.config else {
            return Ok(None);
        };
        let url = format!("{}/v2/{repository}/blobs/{}", self.base, config.digest);
        let resp = self.send(Method::GET, &url, "*/*").await?;
        if !resp.status().is_success() {
            return Err(self.refusal(resp, &url).await);
        }
        let config: ImageConfig = read_json(resp, &url).await?;
        Ok(config.config.and_then(|c| c.labels))
    }

    async fn manifest(&self, repository: &str, reference: &str) -> anyhow::Result<Manifest> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let resp = self.send(Method::GET, &url, MANIFEST_ACCEPT).await?;
        if !resp.status().is_success() {
            return Err(self.refusal(resp, &url).await);
        }
        read_json(resp, &url).await
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        accept: &str,
    ) -> anyhow::Result<reqwest::Response> {
        self.http
            .request(method, url)
            .header(ACCEPT, accept)
            .send()
            .await
            .with_context(|| {
                format!(
                    "cannot reach the registry at {} (asking {url}): check that it is up and \
                     reachable, and that `registry` in environment.toml (if set) names it",
                    self.host
                )
            })
    }

    /// A clear error for a refused request; the body is the registry's own explanation
    /// (it never echoes the credentials).
    async fn refusal(&self, resp: reqwest::Response, url: &str) -> anyhow::Error {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let body = body.trim();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return anyhow::anyhow!(
                "the registry {} refused the ECR credentials ({status}) for {url}: {body}. \
                 Check that the AWS identity may call ecr:GetAuthorizationToken and pull/push \
                 this repository, and that `registry` in environment.toml names the right host",
                self.host
            );
        }
        anyhow::anyhow!("the registry answered {status} for {url}: {body}")
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(
    resp: reqwest::Response,
    url: &str,
) -> anyhow::Result<T> {
    let body = resp
        .bytes()
        .await
        .with_context(|| format!("reading {url}"))?;
    serde_json::from_slice(&body).with_context(|| format!("{url}: unexpected response"))
}

/// Docker itself talks plain HTTP to loopback registries (they are insecure registries by
/// default); everything else is HTTPS.
fn scheme_for(host: &str) -> &'static str {
    let name = host
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(name, _)| name);
    let loopback = name == "localhost"
        || name == "[::1]"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback { "http" } else { "https" }
}

/// Refuses to go on when a tag exists with content from another commit.
pub fn check_same_revision(
    reference: &str,
    found: Option<&str>,
    git_sha: &str,
) -> anyhow::Result<()> {
    match found {
        Some(rev) if rev == git_sha => Ok(()),
        other => bail!(
            "{reference} already exists but was built from {}, not {git_sha}. \
             Re-run with --force-rebuild to replace it (mutable repositories only), \
             or tag a new version",
            other.map_or_else(
                || "an unknown revision (no revision label)".to_string(),
                |r| format!("revision {r}")
            )
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_use_http_like_docker() {
        assert_eq!(scheme_for("127.0.0.1:5000"), "http");
        assert_eq!(scheme_for("localhost:5000"), "http");
        assert_eq!(scheme_for("localhost"), "http");
        assert_eq!(
            scheme_for("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
            "https"
        );
        assert_eq!(scheme_for("10.0.0.1:5000"), "https");
    }
}
