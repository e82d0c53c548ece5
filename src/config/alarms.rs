//! Alarms belong to a slot (`[slots.<slot>] alarms`) or to the whole service (`[validation]
//! service_alarms`). The flat `[validation] alarms` list of earlier versions could not say
//! which, so it is refused at load with the form to write instead, built from the names it
//! held. Refused rather than migrated: guessing an alarm's slot from its name could gate the
//! wrong slot without anyone noticing.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Deserializer, de::Error as _};

use super::{ConfigError, ServiceSettings};

/// Where a refused key is kept in the settings types: never holds anything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refused;

/// `deserialize_with` for the old flat list: always an error, which toml places at its line.
pub(super) fn refuse_flat_list<'de, D: Deserializer<'de>>(d: D) -> Result<Refused, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    Err(D::Error::custom(flat_list_message(&names)))
}

/// What to write instead of a flat list holding `names`: names with `blue` or `green` in
/// them are shown under that slot, the others as service-wide. A proposal to check, which
/// is why nothing is migrated by itself.
pub(crate) fn flat_list_message(names: &[String]) -> String {
    let quoted = |keep: &dyn Fn(&str) -> bool| {
        names
            .iter()
            .filter(|n| keep(n))
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let blue = quoted(&|n| n.contains("blue"));
    let green = quoted(&|n| n.contains("green"));
    let service = quoted(&|n| !n.contains("blue") && !n.contains("green"));
    let service = if service.is_empty() {
        String::new()
    } else {
        format!(", `service_alarms = [{service}]` under [validation]")
    };
    format!(
        "`[validation] alarms` is no longer read: an alarm belongs to one slot or to the whole \
         service (README, \"Alarms\"). Write `alarms = [{blue}]` under [slots.blue], \
         `alarms = [{green}]` under [slots.green]{service}, and delete this list"
    )
}

/// Each alarm has one owner: a name under two slots, or under a slot and the service, would
/// gate a move away from the slot it is about.
pub(super) fn check_owners(service: &ServiceSettings, file: &Path) -> Result<(), ConfigError> {
    let lists = [
        ("[slots.blue] alarms", &service.slots.blue.alarms),
        ("[slots.green] alarms", &service.slots.green.alarms),
        (
            "[validation] service_alarms",
            &service.validation.service_alarms,
        ),
    ];
    let mut seen = BTreeMap::new();
    for (field, names) in lists {
        for name in names {
            if let Some(first) = seen.insert(name.as_str(), field)
                && first != field
            {
                return Err(ConfigError::new(
                    file,
                    format!("alarm `{name}` is listed in {first} and in {field}"),
                )
                .hint("keep it where it belongs: under the slot whose target group it watches, or in service_alarms when it is about the whole service"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: &str = r#"
[image]
repository = "web"

[ecs]
cluster = "web"
container = "web"
container_port = 8080

[slots.blue]
service = "web-blue"
target_group_arn = "tg/blue"
alarms = ["web-blue-5xx"]

[slots.green]
service = "web-green"
target_group_arn = "tg/green"
alarms = ["web-green-5xx"]

[traffic]
production_listener_arn = "listener/prod"
test_listener_arn = "listener/test"
test_url = "http://test"
"#;

    fn parse(text: &str) -> Result<ServiceSettings, ConfigError> {
        super::super::parse_toml(text, Path::new("service.toml"))
    }

    #[test]
    fn alarms_by_slot_and_service_wide_parse() {
        let text = format!("{SERVICE}\n[validation]\nservice_alarms = [\"web-slo\"]\n");
        let s = parse(&text).unwrap();
        assert_eq!(s.slots.blue.alarms, ["web-blue-5xx"]);
        assert_eq!(s.validation.service_alarms, ["web-slo"]);
        assert!(!s.validation.gate_on_service_alarms, "off unless asked for");
        check_owners(&s, Path::new("service.toml")).unwrap();
    }

    #[test]
    fn the_flat_list_is_refused_at_its_line_with_the_new_form() {
        let text = format!(
            "{SERVICE}\n[validation]\nalarms = [\"web-blue-5xx\", \"web-green-5xx\", \"web-slo\"]\n"
        );
        let err = parse(&text).unwrap_err();
        let line = text.lines().position(|l| l.contains("web-slo")).unwrap() + 1;
        assert_eq!(err.line, Some(line), "{err}");
        let message = err.to_string();
        for needle in [
            "service.toml:",
            "`[validation] alarms` is no longer read",
            r#"`alarms = ["web-blue-5xx"]` under [slots.blue]"#,
            r#"`alarms = ["web-green-5xx"]` under [slots.green]"#,
            r#"`service_alarms = ["web-slo"]` under [validation]"#,
        ] {
            assert!(
                message.contains(needle),
                "{needle:?} missing from: {message}"
            );
        }
    }

    #[test]
    fn an_alarm_has_one_owner() {
        let text = format!("{SERVICE}\n[validation]\nservice_alarms = [\"web-green-5xx\"]\n");
        let err = check_owners(&parse(&text).unwrap(), Path::new("service.toml")).unwrap_err();
        assert!(
            err.to_string()
                .contains("`web-green-5xx` is listed in [slots.green] alarms and in [validation] service_alarms"),
            "{err}"
        );
    }
}
