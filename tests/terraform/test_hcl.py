"""Static checks of every .tf file under terraform/ (no terraform binary here): it parses,
variables and outputs are documented, cutover's ownership is respected, and the
cutover_service output has exactly the shape of service.toml."""

from __future__ import annotations

import ast
import re

import pytest

from tfparse import MODULE, REPO, TERRAFORM, attr, blocks_of, find, iter_blocks, parse_file, tf_files

SETTINGS_RS = REPO / "src" / "config" / "settings.rs"


def test_there_is_terraform_to_check():
    names = {p.relative_to(TERRAFORM).as_posix() for p in tf_files()}
    assert "modules/ecs-blue-green-service/deploy_role.tf" in names
    assert "examples/complete/main.tf" in names


@pytest.mark.parametrize("path", tf_files(), ids=lambda p: p.relative_to(TERRAFORM).as_posix())
def test_parses(path):
    assert isinstance(parse_file(path), dict)


def test_variables_have_description_and_type():
    bad = [
        b.where
        for b in iter_blocks()
        if b.kind == "variable" and not (str(attr(b.body, "description", "")).strip() and attr(b.body, "type"))
    ]
    assert bad == []


def test_outputs_have_description():
    bad = [b.where for b in iter_blocks() if b.kind == "output" and not str(attr(b.body, "description", "")).strip()]
    assert bad == []


def ignored(block) -> set[str]:
    lifecycle = blocks_of(block.body, "lifecycle")
    names = attr(lifecycle[0], "ignore_changes", []) if lifecycle else []
    return {n.strip("${}") for n in names}


def test_cutover_owns_listener_weights():
    assert {"default_action"} <= ignored(find("resource", "aws_lb_listener", "this"))


def test_cutover_owns_task_definition_and_desired_count():
    assert {"task_definition", "desired_count"} <= ignored(find("resource", "aws_ecs_service", "this"))


def test_ecr_keeps_at_least_the_history_depth():
    retention = attr(find("variable", "", "image_retention_count").body, "default")
    depth = attr(find("variable", "", "history_depth").body, "default")
    assert retention >= depth
    repo = find("resource", "aws_ecr_repository", "this").body
    assert attr(repo, "image_tag_mutability") == "IMMUTABLE"
    assert attr(blocks_of(repo, "image_scanning_configuration")[0], "scan_on_push") is True


SKIP = re.compile(r"#\s*checkov:skip=([^\s:]+)(?::(.*))?")


def test_every_checkov_skip_has_a_reason():
    skips = []
    for path in tf_files():
        for n, line in enumerate(path.read_text().splitlines(), 1):
            m = SKIP.search(line)
            if m:
                skips.append((f"{path.relative_to(TERRAFORM)}:{n}", m.group(1), (m.group(2) or "").strip()))
    for where, check, reason in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", check), f"{where}: {check} is not a checkov AWS check id"
        assert len(reason) >= 30, f"{where}: skip of {check} needs a real reason, got {reason!r}"


# --- cutover_service mirrors src/config/settings.rs -------------------------------------


def rust_structs() -> dict[str, dict[str, tuple[str, bool]]]:
    """struct name -> field -> (type, has a serde default or is optional)."""
    text = SETTINGS_RS.read_text()
    structs = {}
    for m in re.finditer(r"pub struct (\w+) \{(.*?)\n\}", text, re.S):
        fields, attrs = {}, ""
        for line in m.group(2).splitlines():
            line = line.strip()
            if line.startswith("#["):
                attrs += line
            elif line.startswith("pub "):
                fm = re.match(r"pub (\w+): (.+),$", line)
                name, type_ = fm.group(1), fm.group(2)
                fields[name] = (type_, "default" in attrs or type_.startswith("Option<"))
                attrs = ""
            elif not line.startswith("///"):
                attrs = ""
        structs[m.group(1)] = fields
    return structs


def shape_problems(value, type_: str, structs, path: str) -> list[str]:
    inner = re.fullmatch(r"Option<(.+)>", type_)
    if inner:
        type_ = inner.group(1)
    if type_ not in structs:
        return []  # a leaf (String, u16, Vec<String>, ...): terraform fills it
    if not isinstance(value, dict):
        return [f"{path}: expected an object for {type_}"]
    fields = structs[type_]
    problems = [f"{path}.{k}: not a field of {type_}" for k in value if k not in fields]
    problems += [f"{path}.{k}: required by {type_} but missing" for k, (_, opt) in fields.items() if not opt and k not in value]
    for key, sub in value.items():
        if key in fields:
            problems += shape_problems(sub, fields[key][0], structs, f"{path}.{key}")
    return problems


def test_settings_rs_is_readable():
    structs = rust_structs()
    assert {"ServiceSettings", "EnvironmentSettings", "SlotSettings"} <= structs.keys()
    assert structs["SlotSettings"]["target_group_arn"] == ("String", False)


@pytest.mark.parametrize(
    "output, struct",
    [("cutover_service", "ServiceSettings"), ("cutover_environment", "EnvironmentSettings")],
)
def test_cutover_outputs_have_the_config_file_shape(output, struct):
    value = attr(find("output", "", output).body, "value")
    assert shape_problems(value, struct, rust_structs(), output) == []


def test_shape_check_can_fail():
    structs = rust_structs()
    value = dict(attr(find("output", "", "cutover_service").body, "value"))
    value["slots"] = {"blue": {"service": "x"}}  # green and target_group_arn missing
    value["extra"] = 1
    problems = shape_problems(value, "ServiceSettings", structs, "cutover_service")
    assert any("green" in p for p in problems)
    assert any("target_group_arn" in p for p in problems)
    assert any("extra" in p for p in problems)


def test_production_traffic_is_a_listener_not_a_rule():
    # settings.rs: exactly one of production_listener_arn / production_rule_arn.
    traffic = attr(find("output", "", "cutover_service").body, "value")["traffic"]
    assert "production_listener_arn" in traffic and "production_rule_arn" not in traffic
    assert traffic["test_url"] == "${local.test_url}"


def test_example_passes_composite_outputs_through():
    example = TERRAFORM / "examples" / "complete"
    for name in ("cutover_service", "cutover_environment", "cutover_workers"):
        assert attr(find("output", "", name, example).body, "value") == f"${{module.service.{name}}}"


def test_alarms_are_listed_by_slot_and_service():
    # A flat list gated every move on every alarm, the live slot's included (issue 14).
    value = attr(find("output", "", "cutover_service").body, "value")
    for slot in ("blue", "green"):
        assert value["slots"][slot]["alarms"] == f'${{local.slot_alarm_names["{slot}"]}}'
    assert value["validation"] == {"service_alarms": "${var.extra_alarm_names}"}
    locals_ = [b.body for b in iter_blocks() if b.kind == "locals" and "slot_alarm_names" in b.body]
    assert len(locals_) == 1
    assert "if local.alarms[key].slot == slot" in str(attr(locals_[0], "slot_alarm_names"))


# --- workers (cutover's [worker], issue 17.4) -------------------------------------------


def test_workers_have_no_load_balancer_and_the_circuit_breaker_without_ecs_rollback():
    svc = find("resource", "aws_ecs_service", "worker").body
    assert blocks_of(svc, "load_balancer") == []
    breaker = blocks_of(svc, "deployment_circuit_breaker")[0]
    assert attr(breaker, "enable") is True and attr(breaker, "rollback") is False
    # cutover owns what runs and how many, as for the slots.
    assert {"task_definition", "desired_count"} <= ignored(find("resource", "aws_ecs_service", "worker"))
    td = find("resource", "aws_ecs_task_definition", "worker").body
    assert "portMappings" not in str(attr(td, "container_definitions"))


def test_cutover_workers_output_has_the_worker_config_shape():
    # `{ for w, cfg in var.workers : w => {...} }` parses as one string holding the object
    # the for expression builds: read it back and check it as a worker's service.toml
    # (ServiceSettings with [worker], no slots or traffic), `family` aside (init reads it
    # for taskdef.json).
    text = attr(find("output", "", "cutover_workers").body, "value")
    m = re.fullmatch(r"\$\{\{for w , cfg in var\.workers : w => (\{.*\})\}\}", text)
    assert m, text
    value = ast.literal_eval(m.group(1))
    assert value.pop("family") == "${aws_ecs_task_definition.worker[w].family}"
    assert value["worker"] == {"service": "${aws_ecs_service.worker[w].name}"}
    assert "slots" not in value and "traffic" not in value
    assert shape_problems(value, "ServiceSettings", rust_structs(), "cutover_workers") == []
