//! CloudWatch: the states of the alarms a service's validation names.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::StateValue;

use super::errors::Call;
use crate::ports::{AlarmState, PortError, PortResult};

pub struct CloudWatch {
    client: Client,
}

impl CloudWatch {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// State of every named alarm. A named alarm that does not exist is an error: a typo
    /// must not pass validation silently (defaults are the safe side).
    pub async fn alarm_states(&self, names: &[String]) -> PortResult<BTreeMap<String, AlarmState>> {
        let mut states = BTreeMap::new();
        // DescribeAlarms takes at most 100 names per call.
        for chunk in names.chunks(100) {
            let resource = chunk.join(", ");
            let out = Call::read("cloudwatch:DescribeAlarms", &resource)
                .send(
                    self.client
                        .describe_alarms()
                        .set_alarm_names(Some(chunk.to_vec()))
                        .send(),
                )
                .await?;
            for alarm in out.metric_alarms() {
                let state = match alarm.state_value() {
                    Some(StateValue::Alarm) => AlarmState::Alarm,
                    Some(StateValue::Ok) => AlarmState::Ok,
                    _ => AlarmState::InsufficientData,
                };
                if let Some(name) = alarm.alarm_name() {
                    states.insert(name.to_string(), state);
                }
            }
        }
        if let Some(missing) = names.iter().find(|n| !states.contains_key(*n)) {
            return Err(PortError::NotFound(format!(
                "CloudWatch alarm `{missing}` (named in [slots.*] alarms or [validation] service_alarms)"
            )));
        }
        Ok(states)
    }
}
