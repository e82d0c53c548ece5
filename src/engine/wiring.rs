//! The wiring every locked verb checks before its first write (issue 14): each slot's ECS
//! service registers the configured container and port in its own target group, and in
//! neither of the other slot's. Pure: it reads what `observe` already read (ECS returns a
//! service's `loadBalancers` with the service), so it costs no call. The production
//! forward's groups are checked by the adapter where it reads the weights.

use super::{EngineError, Observed};
use crate::config::settings::ServiceSettings;
use crate::ports::Slot;

pub(crate) fn check(settings: &ServiceSettings, observed: &Observed) -> Result<(), EngineError> {
    for slot in [Slot::Blue, Slot::Green] {
        let own = settings.slots.get(slot);
        let other = settings.slots.get(slot.other());
        let bindings = &observed.slot(slot).load_balancers;
        let (container, port) = (&settings.ecs.container, settings.ecs.container_port);
        if let Some(wrong) = bindings
            .iter()
            .find(|b| b.target_group == other.target_group_arn)
        {
            return Err(EngineError::Miswired(format!(
                "ECS service {} ([slots.{slot}] service) registers in {}, the {} slot's target group ([slots.{}] target_group_arn): traffic for one slot would reach the other; fix the service's load balancer or the slots in service.toml",
                own.service,
                wrong.target_group,
                slot.other(),
                slot.other()
            )));
        }
        let registered = bindings.iter().any(|b| {
            b.target_group == own.target_group_arn && &b.container == container && b.port == port
        });
        if !registered {
            let seen: Vec<String> = bindings
                .iter()
                .map(|b| format!("{} ({}:{})", b.target_group, b.container, b.port))
                .collect();
            return Err(EngineError::Miswired(format!(
                "ECS service {} ([slots.{slot}] service) does not register container {container} port {port} ([ecs] container, container_port) in {} ([slots.{slot}] target_group_arn); it registers in: {}",
                own.service,
                own.target_group_arn,
                if seen.is_empty() {
                    "nothing".to_string()
                } else {
                    seen.join(", ")
                }
            )));
        }
    }
    Ok(())
}
