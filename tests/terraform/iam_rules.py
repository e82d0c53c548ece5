"""The least-privilege rules the deploy role's policies must follow, as functions that
return a list of problems (empty means the policy passes), so tests can feed them both
the real policy and deliberately bad ones.

Statements are `statement` blocks of an `aws_iam_policy_document` as parsed by
python-hcl2 (see tfparse).
"""

from __future__ import annotations

import re
from typing import Any

from tfparse import attr, blocks_of

# Actions that have NO resource type in the AWS Service Authorization Reference, so AWS
# only accepts Resource "*" for them. Checked against the reference's data (the
# "Resource types" column is empty) for each action; anything not listed here must be
# scoped to ARNs.
NO_RESOURCE_ACTIONS: dict[str, str] = {
    "ecr:GetAuthorizationToken": "registry-wide login token; the token grants nothing by itself",
    "ecs:DescribeTaskDefinition": "ECS defines no resource type for DescribeTaskDefinition",
    "ecs:DeregisterTaskDefinition": "ECS defines no resource type for DeregisterTaskDefinition",
    "ecs:ListTaskDefinitions": "account-wide listing; no resource type",
    "elasticloadbalancing:DescribeListeners": "ELBv2 Describe* actions have no resource type",
    "elasticloadbalancing:DescribeRules": "ELBv2 Describe* actions have no resource type",
    "elasticloadbalancing:DescribeTargetGroups": "ELBv2 Describe* actions have no resource type",
    "elasticloadbalancing:DescribeTargetHealth": "ELBv2 Describe* actions have no resource type",
}

# Actions whose resource type does not fit how cutover calls them, allowed on "*" only
# when the statement pins them with the given condition key instead.
CONDITIONED_STAR_ACTIONS: dict[str, tuple[str, str]] = {
    "ecs:ListTasks": (
        "ecs:cluster",
        "only resource type is container-instance, which Fargate tasks lack; AWS documents "
        "Resource * with an ecs:cluster condition",
    ),
}

PASSED_TO_SERVICE = "ecs-tasks.amazonaws.com"
GITHUB_AUD = "token.actions.githubusercontent.com:aud"
GITHUB_SUB = "token.actions.githubusercontent.com:sub"

# An ARN whose every part after the service is a wildcard (or empty) is "*" in disguise.
_BROAD_ARN = re.compile(r"^arn:[^:]*:[^:]+:[*]?:[*]?:[*]?$")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _conditions(statement: dict[str, Any]) -> list[tuple[str, str, list[Any]]]:
    return [
        (attr(c, "test"), attr(c, "variable"), _as_list(attr(c, "values")))
        for c in blocks_of(statement, "condition")
    ]


def is_unscoped(resource: Any, locals_: dict[str, Any] | None = None) -> bool:
    """True for "*", for an ARN made only of wildcards, and for a local that is one."""
    if not isinstance(resource, str):
        return False
    m = re.fullmatch(r"\$\{local\.([A-Za-z0-9_]+)\}", resource)
    if m and locals_ and m.group(1) in locals_:
        return any(is_unscoped(r) for r in _as_list(locals_[m.group(1)]))
    return resource.strip() == "*" or bool(_BROAD_ARN.match(resource.strip()))


def permission_problems(statements: list[dict[str, Any]], locals_: dict[str, Any] | None = None) -> list[str]:
    problems = []
    for i, st in enumerate(statements):
        sid = attr(st, "sid", f"#{i}")
        if attr(st, "effect", "Allow") != "Allow":
            continue
        for forbidden in ("not_actions", "not_resources"):
            if forbidden in st:
                problems.append(f"{sid}: {forbidden} grants everything not listed")
        actions = _as_list(attr(st, "actions"))
        if not actions:
            problems.append(f"{sid}: no actions")
        for action in actions:
            if not isinstance(action, str) or "*" in action or "?" in action:
                problems.append(f"{sid}: wildcard or computed action {action!r}")
        resources = _as_list(attr(st, "resources"))
        if not resources:
            problems.append(f"{sid}: no resources")
        if any(is_unscoped(r, locals_) for r in resources):
            pinned = {var for _, var, values in _conditions(st) if values and not any(is_unscoped(v) for v in values)}
            for action in actions:
                key = CONDITIONED_STAR_ACTIONS.get(action, (None, ""))[0]
                if key is not None and key in pinned:
                    continue
                if action not in NO_RESOURCE_ACTIONS:
                    problems.append(
                        f"{sid}: {action} supports resource-level permissions but gets an unscoped resource"
                    )
    return problems


def passrole_problems(statements: list[dict[str, Any]], expected_roles: set[str]) -> list[str]:
    passing = [st for st in statements if "iam:PassRole" in _as_list(attr(st, "actions"))]
    if len(passing) != 1:
        return [f"expected exactly one statement with iam:PassRole, found {len(passing)}"]
    st = passing[0]
    problems = []
    if _as_list(attr(st, "actions")) != ["iam:PassRole"]:
        problems.append("the PassRole statement must grant nothing else")
    resources = set(_as_list(attr(st, "resources")))
    if resources != expected_roles:
        problems.append(f"PassRole resources {sorted(resources)} != {sorted(expected_roles)}")
    wanted = ("StringEquals", "iam:PassedToService", [PASSED_TO_SERVICE])
    if wanted not in _conditions(st):
        problems.append(f"PassRole lacks condition StringEquals iam:PassedToService = {PASSED_TO_SERVICE}")
    return problems


def trust_problems(statements: list[dict[str, Any]]) -> list[str]:
    problems = []
    web = [st for st in statements if "sts:AssumeRoleWithWebIdentity" in _as_list(attr(st, "actions"))]
    if not web:
        return ["no sts:AssumeRoleWithWebIdentity statement"]
    for st in statements:
        if st not in web:
            problems.append(f"{attr(st, 'sid')}: a GitHub deploy role trusts nothing but GitHub OIDC")
    for st in web:
        sid = attr(st, "sid", "?")
        conds = _conditions(st)
        if ("StringEquals", GITHUB_AUD, ["sts.amazonaws.com"]) not in conds:
            problems.append(f"{sid}: aud must be pinned with StringEquals to sts.amazonaws.com")
        subs = [(test, values) for test, var, values in conds if var == GITHUB_SUB]
        if len(subs) != 1:
            problems.append(f"{sid}: exactly one condition on the sub claim is required")
            continue
        test, values = subs[0]
        if test != "StringEquals":
            problems.append(f"{sid}: sub must use StringEquals (no patterns), not {test}")
        for value in values:
            text = str(value)
            if "repo:" not in text or ":environment:" not in text:
                problems.append(f"{sid}: sub {text!r} is not repo:OWNER/REPO:environment:NAME")
            if "*" in text or "?" in text:
                problems.append(f"{sid}: sub {text!r} contains a wildcard")
    return problems
