"""The example workflows (and terraform/README.md's snippets) work with terraform/examples/
complete as shipped: each job runs in an environment its role trusts, passes only inputs
action.yml has, and its role allows what its command calls and, unless it promotes or
rolls back, nothing that moves production traffic (issue 16.3). Broken workflows and roles
are fed to the same checks to prove they fail."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

import workflow_rules as wr
from iam_rules import passrole_problems, permission_problems, trust_problems
from tfparse import REPO, attr, module_locals

PASSED_ROLES = {"${aws_iam_role.task.arn}", "${aws_iam_role.execution.arn}"}

ROLES = wr.terraform_roles()
VARIABLES = wr.role_variables()
INPUTS = wr.action_inputs()
DEPLOY = (wr.WORKFLOWS / "deploy.yml").read_text()
ROLLBACK = (wr.WORKFLOWS / "rollback.yml").read_text()


def sources() -> list[tuple[str, str]]:
    files = [(p.relative_to(REPO).as_posix(), p.read_text()) for p in wr.workflow_files()]
    return files + wr.readme_workflows()


# The other applies of the example (staging.tfvars.example, prod-*.tfvars.example for
# multi-region.yml), for jobs in those environments.
OTHERS = wr.environment_roles()
ACROSS = (wr.WORKFLOWS / "staging-to-production.yml").read_text()
REGIONS = (wr.WORKFLOWS / "multi-region.yml").read_text()


def problems(text: str, roles=None, where="broken.yml") -> list[str]:
    return wr.workflow_problems(where, text, roles or ROLES, VARIABLES, INPUTS, OTHERS)


# --- the real files ---------------------------------------------------------------------


def test_the_chain_is_read_from_the_files():
    # Guards against a parse that finds nothing and so checks nothing.
    assert VARIABLES == {"AWS_STAGE_ROLE_ARN": "stage", "AWS_PROMOTE_ROLE_ARN": "promote"}
    assert ROLES["stage"].environments == {"production-stage"}
    assert ROLES["promote"].environments == {"production"}
    assert wr.missing_calls(ROLES["stage"].statements, "stage") == []
    assert {"deploy.yml", "rollback.yml"} <= {p.name for p in wr.workflow_files()}
    assert any(w.startswith("terraform/README.md#") for w, _ in wr.readme_workflows())
    assert {"command", "environment", "services", "tag", "rollback"} <= INPUTS.keys()


@pytest.mark.parametrize("where, text", sources(), ids=[w for w, _ in sources()])
def test_jobs_work_with_the_terraform_example(where, text):
    assert problems(text, where=where) == []


@pytest.mark.parametrize("tfvars", [wr.EXAMPLE / "terraform.tfvars.example", None], ids=["tfvars.example", "defaults"])
def test_examples_work_with_the_variables_defaults_and_tfvars(tfvars):
    roles = wr.terraform_roles(wr.example_values(tfvars))
    for path in wr.workflow_files():
        found = problems(path.read_text(), roles, path.name)
        if tfvars is None and path.name == "staging-to-production.yml":
            # The one thing the defaults lack: production's promote role reading staging's
            # history (terraform.tfvars.example sets history_read_environments).
            assert found == [
                "staging-to-production.yml job production: require-promoted-in ['staging'] reads their "
                "history but the promote role has no ssm:GetParameter on it (history_read_environments)"
            ]
            continue
        assert found == []


def test_only_the_promote_role_can_move_production_traffic():
    assert wr.traffic_problems(ROLES["stage"].statements) == []
    assert wr.traffic_problems(ROLES["promote"].statements) != []
    jobs = []
    for where, text in sources():
        jobs += wr.assumed_roles(where, yaml.safe_load(text), VARIABLES, INPUTS)
    assert {(c, r) for _, c, r in jobs} >= {("stage", "stage"), ("promote", "promote"), ("rollback", "promote")}
    assert wr.role_problems(ROLES, jobs) == []


def test_every_role_a_workflow_assumes_follows_the_iam_rules():
    # The same least-privilege rules as the module's own tests, on the roles as assembled
    # from their inline policies.
    assumed = {VARIABLES[v] for v in VARIABLES}
    assert assumed == {"stage", "promote"}
    for name in sorted(assumed):
        role = ROLES[name]
        assert trust_problems(role.trust) == [], name
        assert permission_problems(role.statements, module_locals()) == [], name
    assert passrole_problems(ROLES["stage"].statements, PASSED_ROLES) == []


def test_concurrency_is_per_job_and_rollback_has_its_own_group():
    docs = {p.name: yaml.safe_load(p.read_text()) for p in wr.workflow_files()}
    assert wr.concurrency_problems(docs, INPUTS) == []


def test_every_call_of_src_aws_is_in_a_command():
    # When the Rust side starts calling a new AWS action, COMMAND_CALLS (and so the roles)
    # must learn it, or a real deploy fails with AccessDenied.
    called = set()
    for path in (REPO / "src").rglob("*.rs"):
        called |= set(re.findall(r'Call::(?:read|write)\(\s*"([a-z0-9-]+:[A-Za-z]+)"', path.read_text()))
    called.discard("sts:GetCallerIdentity")  # needs no permission
    known = {a for calls in wr.COMMAND_CALLS.values() for a, _ in calls}
    assert called, "no Call::read/write found in src/"
    assert called - known == set(), (
        "src/ calls AWS actions no command in tests/terraform/workflow_rules.py COMMAND_CALLS "
        "lists: add them there, then to the stage and/or promote role in deploy_role.tf and to "
        "terraform/README.md's permission table"
    )


# --- the checks can fail ----------------------------------------------------------------


def swap(text: str, old: str, new: str, count: int = 1) -> str:
    assert old in text, old
    return text.replace(old, new, count)


BROKEN_WORKFLOWS = {
    # issue 16: the stage job's environment was not trusted by the role it assumed
    "stage job assumes the promote role from production-stage": (
        swap(DEPLOY, "vars.AWS_STAGE_ROLE_ARN", "vars.AWS_PROMOTE_ROLE_ARN"),
        "does not trust",
    ),
    "stage job in an environment nobody trusts": (
        swap(DEPLOY, "environment: production-stage", "environment: staging"),
        "does not trust",
    ),
    "stage job without an environment": (
        swap(DEPLOY, "    environment: production-stage # trusted by the stage role only\n", ""),
        "does not trust",
    ),
    # issue 16: one role for both jobs (a role variable no output documents)
    "a role variable no terraform output documents": (
        swap(DEPLOY, "vars.AWS_STAGE_ROLE_ARN", "vars.AWS_ROLE_ARN"),
        "no terraform output documents",
    ),
    "role-to-assume that is not a variable": (
        swap(DEPLOY, "${{ vars.AWS_STAGE_ROLE_ARN }}", "arn:aws:iam::123456789012:role/x"),
        "is not ${{ vars.NAME }}",
    ),
    # issue 16: terraform/README.md's sketch used env: and service:
    "inputs action.yml does not have": (
        swap(DEPLOY, "          environment: production\n          services: web\n", "          env: production\n          service: web\n"),
        "is not an input of action.yml",
    ),
    "a required input left out": (
        swap(DEPLOY, "          services: web\n", ""),
        "action.yml input services is required",
    ),
    "promote job with the stage role (the approval not enforced, and it cannot promote)": (
        swap(
            swap(DEPLOY, "vars.AWS_PROMOTE_ROLE_ARN", "vars.AWS_STAGE_ROLE_ARN"),
            "environment: production # required",
            "environment: production-stage # required",
        ),
        "ModifyListener on local.production_listener_arn but the role does not allow it",
    ),
    "rollback with the stage role": (
        swap(swap(ROLLBACK, "vars.AWS_PROMOTE_ROLE_ARN", "vars.AWS_STAGE_ROLE_ARN"), "environment: production #", "environment: production-stage #"),
        "does not allow it",
    ),
    "no id-token permission": (
        swap(DEPLOY, "      id-token: write # OIDC: AWS credentials without long-lived keys\n", ""),
        "id-token: write",
    ),
    "cutover without credentials": (
        re.sub(r"      - uses: aws-actions/configure-aws-credentials@.*?\n(        .*\n)+", "", DEPLOY, count=1),
        "without assuming a role",
    ),
    "the command defaults to deploy, which the stage role cannot": (
        swap(DEPLOY, "          command: stage\n", ""),
        "deploy calls elasticloadbalancing:ModifyListener on local.production_listener_arn",
    ),
}


# terraform/README.md's sketch before issue 16: one role, `env:`/`service:`, a placeholder
# for the action that no check recognised.
OLD_README_SKETCH = """
on:
  push:
    tags: ["v*"]
permissions: {}
jobs:
  deploy:
    runs-on: ubuntu-latest
    environment: production
    permissions:
      id-token: write
      contents: read
    steps:
      - uses: actions/checkout@<sha>
      - uses: aws-actions/configure-aws-credentials@<sha>
        with:
          role-to-assume: ${{ vars.AWS_ROLE_ARN }}
          aws-region: eu-west-1
      - uses: <cutover action>@<sha>
        with:
          env: production
          service: web
"""
BROKEN_WORKFLOWS["terraform/README.md's old sketch: an unrecognisable action"] = (
    OLD_README_SKETCH,
    "name the action cutover-dev/cutover@",
)
BROKEN_WORKFLOWS["terraform/README.md's old sketch, action named: env: and service:"] = (
    OLD_README_SKETCH.replace("<cutover action>", "cutover-dev/cutover"),
    "with: env is not an input of action.yml",
)
BROKEN_WORKFLOWS["terraform/README.md's old sketch, action named: the one role"] = (
    OLD_README_SKETCH.replace("<cutover action>", "cutover-dev/cutover"),
    "no terraform output documents vars.AWS_ROLE_ARN",
)


BROKEN_WORKFLOWS["staging-to-production: a staging job in production's stage environment"] = (
    swap(ACROSS, "environment: staging-stage #", "environment: production-stage #"),
    "does not trust",
)
BROKEN_WORKFLOWS["staging-to-production: require-promoted-in an environment production may not read"] = (
    swap(ACROSS, "          require-promoted-in: staging\n", "          require-promoted-in: staging,qa\n"),
    "require-promoted-in names qa, whose history the promote role may not read",
)
BROKEN_WORKFLOWS["staging-to-production: production promotes without asking staging's history"] = (
    swap(ACROSS, "          require-promoted-in: staging\n", ""),
    "job production: ships ['web'] to production after job staging shipped it to staging (needs), "
    "but require-promoted-in does not name staging",
)

# multi-region.yml: its matrix jobs are expanded into one job per region before the checks.
WAVE_2 = """        include:
          - region: us-east-1
            env: prod-use1
          - region: ap-southeast-2
            env: prod-apse2
    concurrency:
      group: cutover-promote-${{ matrix.env }}"""


def wave_2(entries: str) -> str:
    """The promote matrix's entries replaced (WAVE_2 names the promote's, not the stage's)."""
    return entries + "\n    concurrency:\n      group: cutover-promote-${{ matrix.env }}"


ENTRIES = WAVE_2.split("\n    concurrency")[0]
# (what breaks, the text it replaces, its replacement, what the checks say), on multi-region.yml.
MULTI_REGION = [
    ("a region no apply trusts (no prod-eun1 tfvars)", WAVE_2, wave_2(ENTRIES + "\n          - region: eu-north-1\n            env: prod-eun1"),
     "job regions (region=eu-north-1, env=prod-eun1): runs in environment 'production-eu-north-1', which the promote role (vars.AWS_PROMOTE_ROLE_ARN) does not trust"),
    ("a region's GitHub environment that its apply does not trust", WAVE_2, wave_2(swap(ENTRIES, "region: us-east-1", "region: us-east-2")),
     "job regions (region=us-east-2, env=prod-use1): runs in environment 'production-us-east-2'"),
    ("a with: key action.yml does not have, in a matrix job", "require-promoted-in: prod-euw2", "require_promoted_in: prod-euw2",
     "job regions (region=us-east-1, env=prod-use1): with: require_promoted_in is not an input of action.yml"),
    ("a matrix key that is not in the matrix", "production-${{ matrix.region }} #", "production-${{ matrix.regoin }} #",
     "environment: matrix.regoin is not in the matrix"),
    ("a region left without its cutover environment", WAVE_2, wave_2("        region: [us-east-1, eu-north-1]\n        include:\n          - region: us-east-1\n            env: prod-use1"),
     "job regions (region=eu-north-1): environment: matrix.env is not in the matrix"),
    ("wave 2 promotes without asking the canary's history", "          require-promoted-in: prod-euw2\n", "",
     "job regions (region=us-east-1, env=prod-use1): ships ['web'] to prod-use1 after job canary shipped it to prod-euw2 (needs), but require-promoted-in does not name prod-euw2"),
    ("a region that requires its own history", "require-promoted-in: prod-euw2", "require-promoted-in: prod-euw2,${{ matrix.env }}",
     "require-promoted-in names prod-apse2, the environment it ships to"),
    ("wave 2 all at once (no max-parallel)", "      max-parallel: 1\n", "",
     "job regions: ships to 2 environments at once; set strategy.max-parallel"),
    ("the regions' stage jobs with the promote role", "vars.AWS_STAGE_ROLE_ARN }} # that region's", "vars.AWS_PROMOTE_ROLE_ARN }} # that region's",
     "job regions-stage (region=ap-southeast-2, env=prod-apse2): runs in environment 'production-ap-southeast-2-stage', which the promote role"),
    ("the regions from a variable (nothing to check)", WAVE_2, wave_2("        include: ${{ fromJSON(vars.REGIONS) }}"),
     "job regions: matrix include is '${{ fromJSON(vars.REGIONS) }}', not a list of mappings"),
    ("the matrix in an expression the checks cannot evaluate", "environment: ${{ matrix.env }}\n          services: web\n          tag",
     "environment: ${{ format('{0}', matrix.env) }}\n          services: web\n          tag",
     "uses the matrix in an expression the checks cannot evaluate"),
    ("every region excluded", WAVE_2, wave_2("        region: [us-east-1]\n        exclude:\n          - region: us-east-1"),
     "job regions: strategy.matrix has no combination"),
]
for what, old, new, expected in MULTI_REGION:
    BROKEN_WORKFLOWS[f"multi-region: {what}"] = (swap(REGIONS, old, new), expected)


def test_the_matrix_expands_as_github_runs_it():
    # GitHub's documented include example: entries extend the combinations whose original
    # values they keep, and the rest run as combinations of their own.
    matrix = {
        "fruit": ["apple", "pear"],
        "animal": ["cat", "dog"],
        "include": [
            {"color": "green"},
            {"color": "pink", "animal": "cat"},
            {"fruit": "apple", "shape": "circle"},
            {"fruit": "banana"},
            {"fruit": "banana", "animal": "cat"},
        ],
    }
    assert wr.matrix_combinations({"matrix": matrix}) == (
        [
            {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
            {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
            {"fruit": "pear", "animal": "cat", "color": "pink"},
            {"fruit": "pear", "animal": "dog", "color": "green"},
            {"fruit": "banana"},
            {"fruit": "banana", "animal": "cat"},
        ],
        [],
    )
    excluded = {"os": ["linux", "macos"], "node": [20, 22], "exclude": [{"os": "macos", "node": 20}]}
    assert wr.matrix_combinations({"matrix": excluded})[0] == [
        {"os": "linux", "node": 20},
        {"os": "linux", "node": 22},
        {"os": "macos", "node": 22},
    ]
    assert wr.matrix_combinations(None) == ([{}], [])


def test_the_multi_region_workflow_is_checked_job_by_job():
    # Guards against an expansion that finds nothing and so checks nothing: one job per
    # region, each against that region's apply (prod-*.tfvars.example).
    jobs = wr.expand_jobs("multi-region.yml", yaml.safe_load(REGIONS))
    assert [(name, wr.environment_of(job), job["concurrency"]["group"]) for name, _, job, _ in jobs] == [
        ("canary-stage", "production-eu-west-2-stage", "cutover-stage-prod-euw2"),
        ("canary", "production-eu-west-2", "cutover-promote-prod-euw2"),
        ("regions-stage", "production-us-east-1-stage", "cutover-stage-prod-use1"),
        ("regions-stage", "production-ap-southeast-2-stage", "cutover-stage-prod-apse2"),
        ("regions", "production-us-east-1", "cutover-promote-prod-use1"),
        ("regions", "production-ap-southeast-2", "cutover-promote-prod-apse2"),
    ]
    for env, region in [("prod-euw2", "eu-west-2"), ("prod-use1", "us-east-1"), ("prod-apse2", "ap-southeast-2")]:
        assert OTHERS[env]["promote"].environments == {f"production-{region}"}
        assert OTHERS[env]["stage"].environments == {f"production-{region}-stage"}
        wave_1 = env == "prod-euw2"
        assert OTHERS[env]["promote"].inputs["history_read_environments"] == ([] if wave_1 else ["prod-euw2"])


def test_an_excluded_region_is_not_checked():
    # Without the exclude, eu-north-1 has no cutover environment (the previous case).
    text = swap(
        REGIONS,
        WAVE_2,
        wave_2(
            "        region: [us-east-1, eu-north-1]\n        exclude:\n          - region: eu-north-1\n"
            "        include:\n          - region: us-east-1\n            env: prod-use1"
        ),
    )
    assert problems(text) == []


def test_wave_2_without_the_canarys_history_is_rejected():
    # The regions' applies without history_read_environments: their promote roles may not
    # read the canary's history, so require-promoted-in would fail in AWS.
    others = dict(OTHERS)
    for env in ("prod-use1", "prod-apse2"):
        values = wr.example_values(wr.EXAMPLE / f"{env}.tfvars.example")
        values["history_read_environments"] = []
        others[env] = wr.terraform_roles(values)
    found = wr.workflow_problems("multi-region.yml", REGIONS, ROLES, VARIABLES, INPUTS, others)
    assert len([p for p in found if "has no ssm:GetParameter on it (history_read_environments)" in p]) == 2, found


def test_the_across_environments_workflow_uses_both_applies():
    # staging's jobs are checked against the staging apply (staging.tfvars.example), the
    # production jobs against production's.
    assert set(OTHERS) == {"production", "staging", "prod-euw2", "prod-use1", "prod-apse2"}
    assert OTHERS["staging"]["promote"].environments == {"staging"}
    assert OTHERS["staging"]["stage"].environments == {"staging-stage"}
    assert OTHERS["production"]["promote"].inputs["history_read_environments"] == ["staging"]
    assert wr.grants(ROLES["promote"].statements, "ssm:GetParameter", wr.HISTORY_READ)
    assert not wr.grants(ROLES["stage"].statements, "ssm:GetParameter", wr.HISTORY_READ)


@pytest.mark.parametrize("text, expected", BROKEN_WORKFLOWS.values(), ids=BROKEN_WORKFLOWS.keys())
def test_broken_workflows_are_rejected(text, expected):
    found = problems(text)
    assert any(expected in p for p in found), found


def roles_with(role: str, statement: dict) -> dict:
    roles = copy.deepcopy(ROLES)
    roles[role].statements.append(statement)
    return roles


def statement(actions, resources) -> dict:
    return {"sid": ["Broken"], "actions": [actions], "resources": [resources]}


BROKEN_STAGE_ROLES = {
    "ModifyListener on the production listener": statement(
        ["elasticloadbalancing:ModifyListener"], ["${local.production_listener_arn}"]
    ),
    "ModifyListener on both listeners (the old deploy role)": statement(
        ["elasticloadbalancing:ModifyListener"], ["${local.listener_arns}"]
    ),
    "ModifyListener on star": statement(["elasticloadbalancing:ModifyListener"], ["*"]),
    "ModifyRule on the production rules": statement(["elasticloadbalancing:ModifyRule"], ["${local.production_rule_arns}"]),
    "a wildcard action that includes ModifyRule": statement(["elasticloadbalancing:Modify*"], ["*"]),
    "RegisterTargets into a slot's target group": statement(
        ["elasticloadbalancing:RegisterTargets"], ['${aws_lb_target_group.this["blue"].arn}']
    ),
}


@pytest.mark.parametrize("broken", BROKEN_STAGE_ROLES.values(), ids=BROKEN_STAGE_ROLES.keys())
def test_a_stage_role_that_can_move_production_traffic_is_rejected(broken):
    roles = roles_with("stage", broken)
    found = problems(DEPLOY, roles)
    assert any("can move production traffic" in p for p in found), found
    jobs = wr.assumed_roles("deploy.yml", yaml.safe_load(DEPLOY), VARIABLES, INPUTS)
    assert wr.role_problems(roles, jobs) != []


@pytest.mark.parametrize("action, marker", wr.COMMAND_CALLS["stage"])
def test_a_stage_role_missing_a_call_is_rejected(action, marker):
    roles = copy.deepcopy(ROLES)
    for st in roles["stage"].statements:
        if action in attr(st, "actions"):
            st["actions"] = [[a for a in attr(st, "actions") if a != action]]
    found = problems(DEPLOY, roles)
    assert any(f"stage calls {action}" in p for p in found), found


def test_a_promote_role_without_the_production_listener_is_rejected():
    roles = copy.deepcopy(ROLES)
    for st in roles["promote"].statements:
        if "elasticloadbalancing:ModifyListener" in attr(st, "actions"):
            st["resources"] = [["${local.test_listener_arn}"]]
    assert any("promote calls elasticloadbalancing:ModifyListener" in p for p in problems(DEPLOY, roles))
    assert any("rollback calls elasticloadbalancing:ModifyListener" in p for p in problems(ROLLBACK, roles))


@pytest.mark.parametrize(
    "variable, value",
    [
        ("github_stage_environments", ["staging"]),  # the example's old mismatch, other way round
        ("github_promote_environments", ["production-approval"]),
    ],
)
def test_terraform_that_does_not_trust_the_workflows_is_rejected(variable, value):
    values = wr.example_values()
    values[variable] = value
    roles = wr.terraform_roles(values)
    found = problems(DEPLOY, roles) + problems(ROLLBACK, roles)
    assert any("does not trust" in p for p in found), found


def test_an_undocumented_role_output_is_rejected():
    variables = {k: v for k, v in VARIABLES.items() if k != "AWS_PROMOTE_ROLE_ARN"}
    found = wr.workflow_problems("deploy.yml", DEPLOY, ROLES, variables, INPUTS)
    assert any("no terraform output documents vars.AWS_PROMOTE_ROLE_ARN" in p for p in found), found


BROKEN_CONCURRENCY = {
    # issue 16: one workflow-level group for deploy and rollback
    "workflow-level group": (
        "deploy.yml",
        swap(DEPLOY, "jobs:\n", "concurrency:\n  group: deploy-production\n  cancel-in-progress: false\n\njobs:\n"),
        "workflow-level concurrency",
    ),
    "rollback queued behind a pending promote": (
        "rollback.yml",
        swap(ROLLBACK, "group: cutover-rollback-production", "group: cutover-promote-production"),
        "shared by ['promote', 'rollback']",
    ),
    "stage behind a pending promote": (
        "deploy.yml",
        swap(DEPLOY, "group: cutover-stage-production", "group: cutover-promote-production"),
        "shared by ['promote', 'stage']",
    ),
    "a new tag cancels a shift in progress": (
        "deploy.yml",
        swap(DEPLOY, "cancel-in-progress: false", "cancel-in-progress: true"),
        "cancel-in-progress",
    ),
    "no group": (
        "rollback.yml",
        swap(ROLLBACK, "    concurrency:\n      group: cutover-rollback-production\n      cancel-in-progress: false\n", ""),
        "no concurrency group",
    ),
    "the regions of one run in one group": (
        "multi-region.yml",
        swap(REGIONS, "group: cutover-promote-${{ matrix.env }}", "group: cutover-promote-regions"),
        "job regions: its matrix combinations share concurrency group 'cutover-promote-regions'",
    ),
}


@pytest.mark.parametrize("name, text, expected", BROKEN_CONCURRENCY.values(), ids=BROKEN_CONCURRENCY.keys())
def test_broken_concurrency_is_rejected(name, text, expected):
    docs = {p.name: yaml.safe_load(p.read_text()) for p in wr.workflow_files()}
    docs[name] = yaml.safe_load(text)
    found = wr.concurrency_problems(docs, INPUTS)
    assert any(expected in p for p in found), found
