//! CloudWatch: the states of the alarms a service's validation names.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{MetricAlarm, StateValue};

use super::batch::{Batches, read, shared};
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
    /// With `batch`, in one call with other members' alarms.
    pub async fn alarm_states(
        &self,
        names: &[String],
        batch: Option<&Batches>,
    ) -> PortResult<BTreeMap<String, AlarmState>> {
        let mut states = BTreeMap::new();
        // DescribeAlarms takes at most 100 names per call.
        for chunk in names.chunks(100) {
            let alarms = batch.map(|b| &b.alarms);
            let all = read(alarms, "cloudwatch", chunk.to_vec(), |all| {
                self.describe(all)
            })
            .await;
            for alarm in shared(&all)? {
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
        // A batch answers other members' alarms too: keep ours.
        states.retain(|name, _| names.contains(name));
        if let Some(missing) = names.iter().find(|n| !states.contains_key(*n)) {
            return Err(PortError::NotFound(format!(
                "CloudWatch alarm `{missing}` (named in [slots.*] alarms or [validation] service_alarms)"
            )));
        }
        Ok(states)
    }

    async fn describe(&self, names: Vec<String>) -> PortResult<Vec<MetricAlarm>> {
        let resource = names.join(", ");
        let out = Call::read("cloudwatch:DescribeAlarms", &resource)
            .send(
                self.client
                    .describe_alarms()
                    .set_alarm_names(Some(names))
                    .send(),
            )
            .await?;
        Ok(out.metric_alarms().to_vec())
    }
}
