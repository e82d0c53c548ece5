//! SSM Parameter Store: cutover's only state of its own — the release history (one JSON
//! parameter holding the last N) and the deploy lock (one parameter created with
//! overwrite=false, so creation is an atomic create-if-absent).

use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::{Parameter, ParameterTier, ParameterType};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::batch::{Batches, read, shared};
use super::errors::Call;
use crate::ports::{PortError, PortResult};

pub struct Ssm {
    client: Client,
}

impl Ssm {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The parameter's JSON value, or None when it does not exist.
    pub async fn get<T: DeserializeOwned>(&self, name: &str) -> PortResult<Option<T>> {
        let got = Call::read("ssm:GetParameter", name)
            .send(self.client.get_parameter().name(name).send())
            .await;
        match got {
            Ok(out) => parse(
                name,
                out.parameter().and_then(|p| p.value()).unwrap_or_default(),
            )
            .map(Some),
            Err(PortError::NotFound(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Several parameters' values in one GetParameters call, in the order asked; None for
    /// each that does not exist. Parse each with [`parse`].
    /// With `batch`, in one call with other members' parameters.
    pub async fn get_many(
        &self,
        names: &[&str],
        batch: Option<&Batches>,
    ) -> PortResult<Vec<Option<String>>> {
        let owned = names.iter().map(|n| n.to_string()).collect();
        let parameters = batch.map(|b| &b.parameters);
        let all = read(parameters, "ssm", owned, |all| self.fetch(all)).await;
        let parameters = shared(&all)?;
        Ok(names
            .iter()
            .map(|name| {
                parameters
                    .iter()
                    .find(|p| p.name() == Some(name))
                    .map(|p| p.value().unwrap_or_default().to_string())
            })
            .collect())
    }

    /// Write the parameter. With `overwrite = false` an existing parameter is a `Conflict`.
    async fn fetch(&self, names: Vec<String>) -> PortResult<Vec<Parameter>> {
        let joined = names.join(",");
        let out = Call::read("ssm:GetParameters", &joined)
            .send(self.client.get_parameters().set_names(Some(names)).send())
            .await?;
        Ok(out.parameters().to_vec())
    }

    pub async fn put<T: Serialize>(
        &self,
        name: &str,
        value: &T,
        overwrite: bool,
    ) -> PortResult<()> {
        let text = serde_json::to_string(value).expect("JSON values serialize");
        Call::write("ssm:PutParameter", name)
            .send(
                self.client
                    .put_parameter()
                    .name(name)
                    .value(text)
                    .r#type(ParameterType::String)
                    // History can outgrow the standard tier's 4 KB; intelligent tiering moves
                    // it up only when needed.
                    .tier(ParameterTier::IntelligentTiering)
                    .overwrite(overwrite)
                    .send(),
            )
            .await?;
        Ok(())
    }

    /// Delete the parameter; already gone is fine.
    pub async fn delete(&self, name: &str) -> PortResult<()> {
        let deleted = Call::write("ssm:DeleteParameter", name)
            .send(self.client.delete_parameter().name(name).send())
            .await;
        match deleted {
            Ok(_) | Err(PortError::NotFound(_)) => Ok(()),
            Err(other) => Err(other),
        }
    }
}

/// A parameter's JSON value.
pub fn parse<T: DeserializeOwned>(name: &str, text: &str) -> PortResult<T> {
    serde_json::from_str(text).map_err(|e| {
        PortError::Conflict(format!(
            "SSM parameter {name} does not hold what cutover wrote ({e}); delete it to start over"
        ))
    })
}
