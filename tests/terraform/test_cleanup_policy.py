"""The optional cleanup policy (cleanup_policy.tf): least privilege, off by default, only
on the promote role, and enough for what `cutover cleanup --apply` calls."""

from __future__ import annotations

import workflow_rules as wr
from iam_rules import permission_problems
from tfparse import attr, blocks_of, find, module_locals


def test_the_cleanup_policy_is_scoped():
    doc = blocks_of(find("data", "aws_iam_policy_document", "cleanup").body, "statement")
    assert permission_problems(doc, module_locals()) == []
    assert wr.traffic_problems(doc) == []


def test_off_by_default():
    roles = wr.terraform_roles()
    assert wr.missing_calls(roles["promote"].statements, "cleanup") != []
    assert attr(find("variable", "", "enable_cleanup_policy").body, "default") is False


def test_switched_on_the_promote_role_can_clean_up_and_the_stage_role_cannot():
    values = wr.example_values()
    values["enable_cleanup_policy"] = True
    roles = wr.terraform_roles(values)
    assert wr.missing_calls(roles["promote"].statements, "cleanup") == []
    stage = wr.missing_calls(roles["stage"].statements, "cleanup")
    assert any("ecr:BatchDeleteImage" in p for p in stage), stage
    assert any("ecs:DeregisterTaskDefinition" in p for p in stage), stage
