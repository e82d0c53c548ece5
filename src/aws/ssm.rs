//! SSM Parameter Store: cutover's only state of its own — the release history (one JSON
//! parameter holding the last N) and the deploy lock (one parameter created with
//! overwrite=false, so creation is an atomic create-if-absent).

use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::{ParameterTier, ParameterType};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::errors::{Call, port_error};
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
        let call = Call {
            action: "ssm:GetParameter",
            resource: name,
            write: false,
        };
        match self.client.get_parameter().name(name).send().await {
            Ok(out) => {
                let text = out.parameter().and_then(|p| p.value()).unwrap_or_default();
                serde_json::from_str(text)
                    .map(Some)
                    .map_err(|e| PortError::Conflict(format!("SSM parameter {name} does not hold what cutover wrote ({e}); delete it to start over")))
            }
            Err(e) => match port_error(call, e) {
                PortError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    /// Write the parameter. With `overwrite = false` an existing parameter is a `Conflict`.
    pub async fn put<T: Serialize>(
        &self,
        name: &str,
        value: &T,
        overwrite: bool,
    ) -> PortResult<()> {
        let call = Call {
            action: "ssm:PutParameter",
            resource: name,
            write: true,
        };
        let text = serde_json::to_string(value).expect("JSON values serialize");
        self.client
            .put_parameter()
            .name(name)
            .value(text)
            .r#type(ParameterType::String)
            // History can outgrow the standard tier's 4 KB; intelligent tiering moves it up
            // only when needed.
            .tier(ParameterTier::IntelligentTiering)
            .overwrite(overwrite)
            .send()
            .await
            .map_err(|e| port_error(call, e))?;
        Ok(())
    }

    /// Delete the parameter; already gone is fine.
    pub async fn delete(&self, name: &str) -> PortResult<()> {
        let call = Call {
            action: "ssm:DeleteParameter",
            resource: name,
            write: true,
        };
        match self.client.delete_parameter().name(name).send().await {
            Ok(_) => Ok(()),
            Err(e) => match port_error(call, e) {
                PortError::NotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }
}
