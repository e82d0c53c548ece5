"""The stage and promote roles are least privilege: read from the parsed HCL of
deploy_role.tf and checked with iam_rules; deliberately bad policies prove the checks can
fail. test_workflows.py checks what each role may do against the job that assumes it."""

from __future__ import annotations

import copy

import pytest

from iam_rules import CONDITIONED_STAR_ACTIONS, NO_RESOURCE_ACTIONS, passrole_problems, permission_problems, trust_problems
from tfparse import MODULE, TERRAFORM, attr, blocks_of, find, module_locals, parse_text

ROLES = {"${aws_iam_role.task.arn}", "${aws_iam_role.execution.arn}"}
# The permission documents of the two GitHub roles, and their trust documents.
DEPLOY_DOCUMENTS = ["deploy_read", "stage", "promote"]
TRUST_DOCUMENTS = ["stage_assume", "promote_assume"]


def statements(name: str) -> list[dict]:
    return blocks_of(find("data", "aws_iam_policy_document", name).body, "statement")


def bad_statements(hcl: str) -> list[dict]:
    doc = parse_text(f'data "aws_iam_policy_document" "bad" {{\n{hcl}\n}}\n')
    return blocks_of(doc["data"][0]["aws_iam_policy_document"]["bad"], "statement")


@pytest.mark.parametrize("name", DEPLOY_DOCUMENTS)
def test_permissions_are_scoped(name):
    assert permission_problems(statements(name), module_locals()) == []


def test_execution_role_permissions_are_scoped():
    assert permission_problems(statements("execution"), module_locals()) == []


def test_passrole_only_the_two_task_roles_only_to_ecs_tasks():
    # Only the stage role registers task definitions; nothing else passes a role.
    assert passrole_problems(statements("stage"), ROLES) == []
    for name in ("deploy_read", "promote"):
        assert not any("iam:PassRole" in attr(st, "actions") for st in statements(name)), name


@pytest.mark.parametrize("name", TRUST_DOCUMENTS)
def test_trust_pins_audience_and_environment_scoped_subject(name):
    assert trust_problems(statements(name)) == []


def test_unscoped_statements_only_use_allow_listed_actions_with_a_reason():
    for action, reason in NO_RESOURCE_ACTIONS.items():
        assert reason.strip(), action
    for action, (key, reason) in CONDITIONED_STAR_ACTIONS.items():
        assert key and reason.strip(), action
    unscoped = {
        a
        for name in DEPLOY_DOCUMENTS
        for st in statements(name)
        if "*" in attr(st, "resources")
        for a in attr(st, "actions")
    }
    assert unscoped <= set(NO_RESOURCE_ACTIONS) | set(CONDITIONED_STAR_ACTIONS)


def test_every_star_statement_says_why():
    # deploy_role.tf puts a comment above each statement that uses "*"; find it in the text.
    text = (MODULE / "deploy_role.tf").read_text()
    for chunk in text.split("statement {")[1:]:
        body = chunk.split("\n  }\n")[0]
        if 'resources = ["*"]' in body:
            assert "#" in body, f"statement without a comment on its '*':\n{body}"


def test_readme_lists_every_deploy_permission():
    readme = (TERRAFORM / "README.md").read_text()
    actions = {a for name in DEPLOY_DOCUMENTS for st in statements(name) for a in attr(st, "actions")}
    missing = sorted(a for a in actions if f"`{a}`" not in readme)
    assert missing == [], f"terraform/README.md does not explain {missing}"


# --- the checks can fail ----------------------------------------------------------------

BAD_PERMISSIONS = {
    "star on UpdateService": """
  statement {
    actions   = ["ecs:UpdateService"]
    resources = ["*"]
  }""",
    "star on RegisterTaskDefinition (it has a task-definition resource type)": """
  statement {
    actions   = ["ecs:RegisterTaskDefinition"]
    resources = ["*"]
  }""",
    "allowed and restrictable action mixed under star": """
  statement {
    actions   = ["ecr:GetAuthorizationToken", "ecr:PutImage"]
    resources = ["*"]
  }""",
    "wildcard action": """
  statement {
    actions   = ["ecs:*"]
    resources = [aws_ecs_service.this["blue"].id]
  }""",
    "wildcard-only ARN": """
  statement {
    actions   = ["ssm:PutParameter"]
    resources = ["arn:aws:ssm:*:*:*"]
  }""",
    "ListTasks on star without the cluster condition": """
  statement {
    actions   = ["ecs:ListTasks"]
    resources = ["*"]
  }""",
    "ListTasks on star with a wildcard cluster": """
  statement {
    actions   = ["ecs:ListTasks"]
    resources = ["*"]
    condition {
      test     = "ArnLike"
      variable = "ecs:cluster"
      values   = ["*"]
    }
  }""",
    "not_actions": """
  statement {
    not_actions = ["iam:*"]
    resources   = ["arn:aws:s3:::bucket"]
  }""",
}


@pytest.mark.parametrize("hcl", BAD_PERMISSIONS.values(), ids=BAD_PERMISSIONS.keys())
def test_bad_permissions_are_rejected(hcl):
    assert permission_problems(bad_statements(hcl)) != []


def test_a_local_that_is_star_is_rejected():
    sts = bad_statements("""
  statement {
    actions   = ["ecs:UpdateService"]
    resources = [local.everything]
  }""")
    assert permission_problems(sts, {"everything": "*"}) != []


# The remaining cases take the real policy, break one thing, and expect a rejection.


def real(name: str, action: str) -> tuple[list[dict], dict]:
    """A deep copy of a real policy document's statements, and the one granting `action`."""
    sts = copy.deepcopy(statements(name))
    return sts, next(st for st in sts if action in attr(st, "actions"))


def condition(statement: dict, variable: str) -> dict:
    return next(c for c in blocks_of(statement, "condition") if attr(c, "variable") == variable)


def passrole_any_role(st):
    st["resources"] = [["*"]]


def passrole_third_role(st):
    st["resources"] = [sorted(ROLES) + ["${aws_iam_role.admin.arn}"]]


def passrole_no_condition(st):
    del st["condition"]


def passrole_any_service(st):
    condition(st, "iam:PassedToService")["values"] = [["*"]]


def passrole_bundled(st):
    st["actions"] = [["iam:PassRole", "iam:GetRole"]]


@pytest.mark.parametrize(
    "breaks",
    [passrole_any_role, passrole_third_role, passrole_no_condition, passrole_any_service, passrole_bundled],
)
def test_broken_passrole_is_rejected(breaks):
    sts, st = real("stage", "iam:PassRole")
    breaks(st)
    assert passrole_problems(sts, ROLES) != []


SUB = "token.actions.githubusercontent.com:sub"
AUD = "token.actions.githubusercontent.com:aud"


def sub_pattern(st):
    condition(st, SUB)["test"] = ["StringLike"]


def sub_any_ref(st):
    condition(st, SUB)["values"] = [["repo:my-org/my-app:*"]]


def sub_branch(st):
    condition(st, SUB)["values"] = [["repo:my-org/my-app:ref:refs/heads/main"]]


def no_audience(st):
    condition(st, AUD)["variable"] = ["token.actions.githubusercontent.com:actor"]


def no_subject(st):
    condition(st, SUB)["variable"] = ["token.actions.githubusercontent.com:repository"]


@pytest.mark.parametrize("name", TRUST_DOCUMENTS)
@pytest.mark.parametrize("breaks", [sub_pattern, sub_any_ref, sub_branch, no_audience, no_subject])
def test_broken_trust_is_rejected(breaks, name):
    sts, st = real(name, "sts:AssumeRoleWithWebIdentity")
    breaks(st)
    assert trust_problems(sts) != []


def _resources_of(document: str, action: str) -> str:
    """Every resource expression of `document`'s statements granting `action`, as text."""
    return " ".join(str(attr(st, "resources")) for st in statements(document) if action in attr(st, "actions"))


def test_only_the_promote_role_rolls_a_worker():
    # A worker's one service is production: rolling it waits for the approval. The stage
    # role registers its task definition (a train's stage) and reads it, nothing more.
    assert "local.worker_service_arns" in _resources_of("promote", "ecs:UpdateService")
    assert "worker" not in _resources_of("stage", "ecs:UpdateService")
    assert "local.worker_family_arns" in _resources_of("stage", "ecs:RegisterTaskDefinition")
    assert "local.worker_family_arns" in _resources_of("stage", "ecs:TagResource")
    assert "local.worker_service_arns" in _resources_of("deploy_read", "ecs:DescribeServices")
    assert "local.worker_ssm_path_arns" in _resources_of("deploy_read", "ssm:PutParameter")


def test_worker_arns_are_scoped_to_their_own_family_path_and_services():
    workers = module_locals()
    families = str(workers["worker_family_arns"])
    assert ":task-definition/${name}:*" in families and "local.worker_names" in families
    assert "parameter${var.ssm_prefix}/${var.environment}/${w}/*" in str(workers["worker_ssm_path_arns"])
    assert "aws_ecs_service.worker" in str(workers["worker_service_arns"])
