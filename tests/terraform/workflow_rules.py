"""Workflows against the terraform that serves them: which GitHub environment may assume
which role, what each cutover command calls, and which roles may move production traffic.
Every check returns a list of problems (empty means it passes), so tests feed it both the
real files and deliberately broken ones.

The chain from a job to its permissions, all read from the files:
job `environment` + `role-to-assume: ${{ vars.NAME }}` → the example's output whose
description names NAME → the module output → `aws_iam_role` → its trust document (the
`sub` values, from the example's variables) and its `aws_iam_role_policy` documents.
A matrix job is checked once per combination GitHub runs (`expand_jobs`), with
`${{ matrix.KEY }}` replaced by that combination's value.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tfparse import MODULE, REPO, TERRAFORM, attr, blocks_of, iter_blocks, parse_file

EXAMPLE = TERRAFORM / "examples" / "complete"
WORKFLOWS = REPO / "examples" / "github-workflows"
ACTION_YML = REPO / "action.yml"
CUTOVER_ACTION = "cutover-dev/cutover@"
CREDENTIALS_ACTION = "aws-actions/configure-aws-credentials@"

# --- what each command calls ------------------------------------------------------------
# (IAM action, resource) pairs, read from src/engine and src/aws (each `Call::read/write`
# names its IAM action); the resource is a marker that the granting statement's resource
# expression must contain, or "*" for actions without a resource type. The docker push and
# the registry v2 lookups (src/image, src/aws/images.rs) are ECR actions no Call names.

READ = [
    ("ecs:DescribeServices", "local.service_arns"),
    ("ecs:DescribeTaskDefinition", "*"),
    ("ecs:ListTasks", "*"),  # stopped tasks' reasons; "*" narrowed by ecs:cluster
    ("ecs:DescribeTasks", "local.cluster_tasks"),
    ("elasticloadbalancing:DescribeListeners", "*"),
    ("elasticloadbalancing:DescribeRules", "*"),
    ("elasticloadbalancing:DescribeTargetGroups", "*"),  # health check timing
    ("elasticloadbalancing:DescribeTargetHealth", "*"),
    ("cloudwatch:DescribeAlarms", "aws_cloudwatch_metric_alarm.this"),
    # history, and the lock every changing command takes (create, renew, release)
    ("ssm:GetParameter", "local.ssm_path_arn"),
    ("ssm:GetParameters", "local.ssm_path_arn"),
    ("ssm:PutParameter", "local.ssm_path_arn"),
    ("ssm:DeleteParameter", "local.ssm_path_arn"),
    # the image of a release must exist before it is deployed (registry v2 API, ECR token)
    ("ecr:GetAuthorizationToken", "*"),
    ("ecr:BatchGetImage", "aws_ecr_repository.this.arn"),
]
SCALE = [("ecs:UpdateService", "local.service_arns")]
PRODUCTION = [
    ("elasticloadbalancing:ModifyListener", "local.production_listener_arn"),
    # instead, when service.toml names traffic.production_rule_arn (src/aws/elb.rs)
    ("elasticloadbalancing:ModifyRule", "local.production_rule_arns"),
]
TEST_LISTENER = [("elasticloadbalancing:ModifyListener", "local.test_listener_arn")]
BUILD = [
    ("ecr:BatchCheckLayerAvailability", "aws_ecr_repository.this.arn"),
    ("ecr:InitiateLayerUpload", "aws_ecr_repository.this.arn"),
    ("ecr:UploadLayerPart", "aws_ecr_repository.this.arn"),
    ("ecr:CompleteLayerUpload", "aws_ecr_repository.this.arn"),
    ("ecr:PutImage", "aws_ecr_repository.this.arn"),
    ("ecr:GetDownloadUrlForLayer", "aws_ecr_repository.this.arn"),  # previous release as cache
]
STAGE = (
    READ
    + BUILD
    + SCALE
    + TEST_LISTENER
    + [
        ("ecs:RegisterTaskDefinition", "local.family_arn"),
        ("ecs:ListTaskDefinitions", "*"),  # an identical registered revision is reused
        ("iam:PassRole", "aws_iam_role.task.arn"),
        ("iam:PassRole", "aws_iam_role.execution.arn"),
    ]
)
# Not in STAGE on purpose: a stage that finds an interrupted shift puts production back on
# the last good slot (engine/stage.rs repair_shift), which needs the production listener.
# The stage role fails there; the rollback workflow (promote role) does that repair.
COMMAND_CALLS: dict[str, list[tuple[str, str]]] = {
    "stage": STAGE,
    "promote": READ + SCALE + PRODUCTION,
    # a cold rollback brings the old slot up and validates it on the test listener first
    "rollback": READ + SCALE + PRODUCTION + TEST_LISTENER,
    "deploy": STAGE + PRODUCTION,
    "verify": READ
    + [
        ("ecs:DescribeClusters", "aws_ecs_cluster.this.arn"),
        ("ecr:DescribeRepositories", "aws_ecr_repository.this.arn"),
        ("iam:GetRole", "aws_iam_role.task.arn"),
        ("iam:GetRole", "aws_iam_role.execution.arn"),
    ],
    "status": READ,
    # Only with the optional policy (cleanup_policy.tf); a dry run needs READ alone.
    "cleanup": READ
    + [
        ("ecs:DeregisterTaskDefinition", "*"),
        ("ecr:BatchDeleteImage", "aws_ecr_repository.this.arn"),
        ("ecr:DescribeImages", "aws_ecr_repository.this.arn"),
    ],
    "build": [("ecr:GetAuthorizationToken", "*"), ("ecr:BatchGetImage", "aws_ecr_repository.this.arn")] + BUILD,
}
# Commands whose job may hold a role that moves production traffic.
MOVES_PRODUCTION = {"promote", "rollback", "deploy"}
# What changes where production traffic goes. ModifyListener is fine on the test listener.
TRAFFIC_ACTIONS = [
    "elasticloadbalancing:ModifyListener",
    "elasticloadbalancing:ModifyRule",
    "elasticloadbalancing:CreateRule",
    "elasticloadbalancing:DeleteRule",
    "elasticloadbalancing:SetRulePriorities",
    "elasticloadbalancing:CreateListener",
    "elasticloadbalancing:DeleteListener",
    "elasticloadbalancing:RegisterTargets",
    "elasticloadbalancing:DeregisterTargets",
]
TEST_LISTENER_ONLY = "${local.test_listener_arn}"


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def grants(statements: list[dict[str, Any]], action: str, marker: str) -> bool:
    for st in statements:
        if attr(st, "effect", "Allow") != "Allow" or action not in _as_list(attr(st, "actions")):
            continue
        resources = [str(r) for r in _as_list(attr(st, "resources"))]
        if "*" in resources or any(marker != "*" and marker in r for r in resources):
            return True
    return False


def missing_calls(statements: list[dict[str, Any]], command: str) -> list[str]:
    if command not in COMMAND_CALLS:
        return [f"unknown command {command!r}"]
    return [
        f"{command} calls {action} on {marker} but the role does not allow it"
        for action, marker in COMMAND_CALLS[command]
        if not grants(statements, action, marker)
    ]


def traffic_problems(statements: list[dict[str, Any]]) -> list[str]:
    """What in these statements could move production traffic (empty: nothing)."""
    problems = []
    for i, st in enumerate(statements):
        sid = attr(st, "sid", f"#{i}")
        if attr(st, "effect", "Allow") != "Allow":
            continue
        if "not_actions" in st or "not_resources" in st:
            problems.append(f"{sid}: not_actions/not_resources may grant listener changes")
        for action in _as_list(attr(st, "actions")):
            hits = [t for t in TRAFFIC_ACTIONS if fnmatch.fnmatchcase(t, str(action))]
            for hit in hits:
                resources = [str(r) for r in _as_list(attr(st, "resources"))]
                if hit == "elasticloadbalancing:ModifyListener" and resources == [TEST_LISTENER_ONLY]:
                    continue
                problems.append(f"{sid}: {action} on {resources} can move production traffic")
    return problems


# --- terraform: the roles, their environments and their policies ------------------------


@dataclass
class Role:
    name: str
    environments: set[str]
    statements: list[dict[str, Any]] = field(default_factory=list)
    trust: list[dict[str, Any]] = field(default_factory=list)
    # The service module's variables as this apply sets them.
    inputs: dict[str, Any] = field(default_factory=dict)


def _ref(expr: Any, pattern: str) -> str | None:
    m = re.fullmatch(r"\$\{" + pattern + r"\}", str(expr))
    return m.group(1) if m else None


def example_values(tfvars: Path | None = EXAMPLE / "terraform.tfvars.example") -> dict[str, Any]:
    """The example root module's variables: defaults, overridden by the tfvars file."""
    values = {
        b.name: attr(b.body, "default")
        for b in iter_blocks(sorted(EXAMPLE.glob("*.tf")))
        if b.kind == "variable"
    }
    if tfvars is not None:
        values.update({k: attr({k: v}, k) for k, v in parse_file(tfvars).items() if not k.startswith("__")})
    return values


def module_inputs(values: dict[str, Any]) -> dict[str, Any]:
    """The service module's variables as the example sets them (module defaults otherwise)."""
    inputs = {b.name: attr(b.body, "default") for b in iter_blocks(sorted(MODULE.glob("*.tf"))) if b.kind == "variable"}
    call = next(b for b in iter_blocks(sorted(EXAMPLE.glob("*.tf"))) if b.kind == "module" and b.name == "service")
    for key in call.body:
        if key.startswith("__") or key == "source":
            continue
        value = attr(call.body, key)
        var = _ref(value, r"var\.(\w+)")
        inputs[key] = values.get(var) if var else value
    return inputs


def _documents() -> dict[str, list[dict[str, Any]]]:
    return {
        b.name: blocks_of(b.body, "statement")
        for b in iter_blocks(sorted(MODULE.glob("*.tf")))
        if b.kind == "data" and b.type == "aws_iam_policy_document"
    }


def trusted_environments(statements: list[dict[str, Any]], inputs: dict[str, Any], repository: str) -> set[str]:
    """Environments whose jobs in `repository` the trust document lets in."""
    envs: set[str] = set()
    for st in statements:
        if "sts:AssumeRoleWithWebIdentity" not in _as_list(attr(st, "actions")):
            continue
        for c in blocks_of(st, "condition"):
            if attr(c, "variable") != "token.actions.githubusercontent.com:sub" or attr(c, "test") != "StringEquals":
                continue
            values = attr(c, "values")
            subjects: list[str] = []
            m = re.fullmatch(r'\$\{\[for (\w+) in var\.(\w+) : "(.*)"\]\}', str(values))
            if m:
                loop, var, template = m.groups()
                for item in _as_list(inputs.get(var)):
                    subjects.append(template.replace("${" + loop + "}", str(item)))
            else:
                subjects = [str(v) for v in _as_list(values)]
            for sub in subjects:
                sub = sub.replace("${var.github_repository}", str(inputs.get("github_repository")))
                prefix = f"repo:{repository}:environment:"
                if sub.startswith(prefix) and "$" not in sub:
                    envs.add(sub[len(prefix):])
    return envs


def terraform_roles(values: dict[str, Any] | None = None) -> dict[str, Role]:
    """aws_iam_role name → Role, with the environments the example's values let in."""
    inputs = module_inputs(values if values is not None else example_values())
    docs = _documents()
    blocks = list(iter_blocks(sorted(MODULE.glob("*.tf"))))
    roles = {}
    for b in blocks:
        if b.kind != "resource" or b.type != "aws_iam_role":
            continue
        trust = _ref(attr(b.body, "assume_role_policy"), r"data\.aws_iam_policy_document\.(\w+)\.json")
        envs = trusted_environments(docs.get(trust, []), inputs, str(inputs.get("github_repository")))
        roles[b.name] = Role(b.name, envs, trust=docs.get(trust, []), inputs=inputs)
    for b in blocks:
        if b.kind == "resource" and b.type == "aws_iam_role_policy":
            role = _ref(attr(b.body, "role"), r"aws_iam_role\.(\w+)\.id")
            doc = _ref(attr(b.body, "policy"), r"data\.aws_iam_policy_document\.(\w+)\.json")
            # An optional policy (`count = var.x ? 1 : 0`, or `length(var.x) > 0 ? 1 : 0`
            # for a list) counts only when switched on.
            switch = _ref(attr(b.body, "count"), r"var\.(\w+) \? 1 : 0") or _ref(
                attr(b.body, "count"), r"length\(var\.(\w+)\) > 0 \? 1 : 0"
            )
            if switch and not inputs.get(switch):
                continue
            if role in roles and doc in docs:
                roles[role].statements += docs[doc]
    return roles


def environment_roles() -> dict[str, dict[str, Role]]:
    """cutover environment → the roles of the example applied for it: one apply per
    environment, each with its `*.tfvars.example` (terraform.tfvars.example is production's,
    staging.tfvars.example staging's)."""
    out = {}
    for path in sorted(EXAMPLE.glob("*.tfvars.example")):
        values = example_values(path)
        out[str(values["environment"])] = terraform_roles(values)
    return out


# The marker of the statement that lets a promote role read other environments' histories.
HISTORY_READ = "var.history_read_environments"


def history_read_problems(role: Role, step: dict[str, Any]) -> list[str]:
    """A cutover step with `require-promoted-in` reads those environments' histories: its
    role must be allowed each one (the optional `cutover-versions` policy)."""
    wanted = [e.strip() for e in str((step.get("with") or {}).get("require-promoted-in") or "").split(",") if e.strip()]
    if not wanted:
        return []
    if not grants(role.statements, "ssm:GetParameter", HISTORY_READ):
        return [f"require-promoted-in {wanted} reads their history but the {role.name} role has no ssm:GetParameter on it (history_read_environments)"]
    allowed = set(_as_list(role.inputs.get("history_read_environments")))
    return [
        f"require-promoted-in names {env}, whose history the {role.name} role may not read (history_read_environments = {sorted(allowed)})"
        for env in wanted
        if env not in allowed
    ]


def role_variables() -> dict[str, str]:
    """GitHub variable → aws_iam_role name, from the example outputs that document it."""
    module_outputs = {
        b.name: attr(b.body, "value") for b in iter_blocks(sorted(MODULE.glob("*.tf"))) if b.kind == "output"
    }
    mapping = {}
    for b in iter_blocks(sorted(EXAMPLE.glob("*.tf"))):
        if b.kind != "output":
            continue
        names = re.findall(r"\b(AWS_[A-Z0-9_]*ROLE_ARN)\b", str(attr(b.body, "description", "")))
        out = _ref(attr(b.body, "value"), r"module\.service\.(\w+)")
        role = _ref(module_outputs.get(out), r"aws_iam_role\.(\w+)\.arn") if out else None
        for name in names:
            if role:
                mapping[name] = role
    return mapping


# --- workflows --------------------------------------------------------------------------


def action_inputs() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(ACTION_YML.read_text())["inputs"]


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


README_FILES = [TERRAFORM / "README.md", REPO / "README.md"]


def readme_workflows(paths: list[Path] = README_FILES) -> list[tuple[str, str]]:
    """(name, text) of every ```yaml block of the READMEs that has jobs (a workflow, not a
    fragment such as a single step)."""
    found = []
    for path in paths:
        blocks = re.findall(r"^```yaml\n(.*?)^```", path.read_text(), re.S | re.M)
        found += [
            (f"{path.relative_to(REPO)}#yaml{i + 1}", b)
            for i, b in enumerate(blocks)
            if re.search(r"^jobs:", b, re.M)
        ]
    return found


# --- matrix jobs: one concrete job per combination, as GitHub runs them -----------------

MATRIX_REF = re.compile(r"\$\{\{\s*matrix\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}")
# What a check cannot evaluate: matrix inside a larger expression, or the whole matrix.
MATRIX_LEFT = re.compile(r"\$\{\{(?:(?!\}\}).)*\bmatrix\b")


def matrix_combinations(strategy: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """The combinations GitHub runs for `strategy.matrix` (one empty one without a matrix):
    the product of its lists, less those an `exclude` entry matches (a partial match
    excludes), then each `include` entry added to every combination whose original values
    it leaves as they are, or run as a combination of its own where it fits none."""
    matrix = strategy.get("matrix") if isinstance(strategy, dict) else None
    if matrix is None:
        return [{}], []
    if not isinstance(matrix, dict):
        return [], [f"strategy.matrix {matrix!r} is an expression: list its values so that they can be checked"]
    axes = {k: v for k, v in matrix.items() if k not in ("include", "exclude")}
    problems = [
        f"matrix.{k} is {v!r}, not a list: list its values so that they can be checked"
        for k, v in axes.items()
        if not isinstance(v, list)
    ]
    extras = {k: matrix.get(k) or [] for k in ("include", "exclude")}
    problems += [
        f"matrix {k} is {v!r}, not a list of mappings: list them so that they can be checked"
        for k, v in extras.items()
        if not isinstance(v, list) or not all(isinstance(e, dict) for e in v)
    ]
    if problems:
        return [], problems
    combos = [dict(zip(axes, values)) for values in itertools.product(*axes.values())] if axes else []
    combos = [c for c in combos if not any(all(c.get(k) == v for k, v in e.items()) for e in extras["exclude"])]
    added = []
    for entry in extras["include"]:
        fits = [c for c in combos if all(c[k] == v for k, v in entry.items() if k in axes)]
        for c in fits:
            c.update(entry)
        if not fits:
            added.append(dict(entry))
    combos += added
    if not combos:
        return [], ["strategy.matrix has no combination: the job would not run"]
    return combos, []


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _substitute(node: Any, combo: dict[str, Any], problems: list[str], key: str = "") -> Any:
    if isinstance(node, dict):
        return {k: _substitute(v, combo, problems, str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, combo, problems, key) for v in node]
    if not isinstance(node, str):
        return node

    def one(m: re.Match[str]) -> str:
        if m.group(1) not in combo:
            problems.append(f"{key}: matrix.{m.group(1)} is not in the matrix (GitHub reads it as '')")
            return ""
        return _render(combo[m.group(1)])

    out = MATRIX_REF.sub(one, node)
    if key not in ("name", "if") and MATRIX_LEFT.search(out):
        problems.append(f"{key}: {out!r} uses the matrix in an expression the checks cannot evaluate")
    return out


def expand_jobs(where: str, doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any] | None, list[str]]]:
    """(job id, where, job, problems) for every job GitHub would run: a matrix job once per
    combination, `${{ matrix.KEY }}` replaced by the combination's value and `where` naming
    it; problems: what of the matrix cannot be expanded or checked. A matrix that cannot be
    expanded gives one entry with job None: nothing more of that job can be checked."""
    out = []
    for name, job in (doc.get("jobs") or {}).items():
        combos, problems = matrix_combinations(job.get("strategy"))
        if problems:
            out.append((name, f"{where} job {name}", None, [f"{where} job {name}: {p}" for p in problems]))
            continue
        for combo in combos:
            label = f"{where} job {name}"
            if combo:
                label += " (" + ", ".join(f"{k}={_render(v)}" for k, v in combo.items()) + ")"
            found: list[str] = []
            body = {k: v if k == "strategy" else _substitute(v, combo, found, k) for k, v in job.items()}
            out.append((name, label, body, [f"{label}: {p}" for p in found]))
    return out


def environment_of(job: dict[str, Any]) -> str | None:
    env = job.get("environment")
    return env.get("name") if isinstance(env, dict) else env


def _steps(job: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [s for s in job.get("steps", []) if str(s.get("uses", "")).startswith(prefix)]


def command_of(step: dict[str, Any], inputs: dict[str, dict[str, Any]]) -> str:
    return str((step.get("with") or {}).get("command", inputs["command"].get("default")))


def job_problems(
    where: str,
    job: dict[str, Any],
    roles: dict[str, Role],
    variables: dict[str, str],
    inputs: dict[str, dict[str, Any]],
    others: dict[str, dict[str, Role]] | None = None,
) -> list[str]:
    """`roles` serve the example's own environment; a job whose cutover step names another
    environment that `others` has (another apply of the example) is checked against that."""
    problems = []
    for step in _steps(job, CUTOVER_ACTION):
        env_input = str((step.get("with") or {}).get("environment", ""))
        own = next((r.inputs.get("environment") for r in roles.values() if r.inputs), None)
        if others and env_input != own and env_input in others:
            roles = others[env_input]
    for step in job.get("steps", []):
        uses = str(step.get("uses", ""))
        if "cutover" in uses and not uses.startswith(CUTOVER_ACTION):
            problems.append(f"{where}: uses {uses!r}: name the action {CUTOVER_ACTION}<sha> so it can be checked")
    cutover = _steps(job, CUTOVER_ACTION)
    for step in cutover:
        given = step.get("with") or {}
        problems += [f"{where}: with: {k} is not an input of action.yml" for k in given if k not in inputs]
        problems += [
            f"{where}: action.yml input {k} is required"
            for k, spec in inputs.items()
            if spec.get("required") and "default" not in spec and k not in given
        ]
    credentials = _steps(job, CREDENTIALS_ACTION)
    if cutover and not credentials:
        problems.append(f"{where}: runs cutover without assuming a role")
    for step in credentials:
        assumed = str((step.get("with") or {}).get("role-to-assume", ""))
        var = _ref(assumed.strip(), r"\{\s*vars\.([A-Za-z0-9_]+)\s*\}")
        if var is None:
            problems.append(f"{where}: role-to-assume {assumed!r} is not ${{{{ vars.NAME }}}}")
            continue
        role_name = variables.get(var)
        if role_name is None or role_name not in roles:
            problems.append(f"{where}: no terraform output documents vars.{var} (known: {sorted(variables)})")
            continue
        role = roles[role_name]
        env = environment_of(job)
        if env not in role.environments:
            problems.append(
                f"{where}: runs in environment {env!r}, which the {role.name} role (vars.{var}) does not "
                f"trust (it trusts {sorted(role.environments)})"
            )
        if (job.get("permissions") or {}).get("id-token") != "write":
            problems.append(f"{where}: needs permissions id-token: write to request the OIDC token")
        for step in cutover:
            command = command_of(step, inputs)
            problems += [f"{where}: {p}" for p in missing_calls(role.statements, command)]
            problems += [f"{where}: {p}" for p in history_read_problems(role, step)]
            if command not in MOVES_PRODUCTION:
                problems += [
                    f"{where}: runs {command} with the {role.name} role, which {p}"
                    for p in traffic_problems(role.statements)
                ]
    return problems


def workflow_problems(
    where: str,
    text: str,
    roles: dict[str, Role],
    variables: dict[str, str],
    inputs: dict[str, dict[str, Any]],
    others: dict[str, dict[str, Role]] | None = None,
) -> list[str]:
    doc = yaml.safe_load(text)
    problems = []
    for _, label, job, found in expand_jobs(where, doc):
        problems += found + (job_problems(label, job, roles, variables, inputs, others) if job is not None else [])
    return problems + wave_problems(where, doc, inputs)


def _promotes(job: dict[str, Any], inputs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The `with:` of every cutover step of the job that ships a release (promote, deploy)."""
    return [
        step.get("with") or {}
        for step in _steps(job, CUTOVER_ACTION)
        if command_of(step, inputs) in {"promote", "deploy"}
    ]


def _names(value: Any) -> set[str]:
    return {v.strip() for v in str(value or "").split(",") if v.strip()}


def wave_problems(where: str, doc: dict[str, Any], inputs: dict[str, dict[str, Any]]) -> list[str]:
    """Waves meet in AWS state: a job that ships a service after (`needs:`, directly or
    not) another job shipped it elsewhere names that environment in `require-promoted-in`,
    so that a re-run of the later job alone, or a second run, still refuses a digest the
    earlier environment did not promote. A matrix job that ships to several environments
    says how many at once (`strategy.max-parallel`)."""
    jobs = doc.get("jobs") or {}
    expanded = [(n, label, job, found) for n, label, job, found in expand_jobs(where, doc) if job is not None]
    shipped: dict[str, list[tuple[str, set[str]]]] = {}  # job id → (environment, services)
    for name, _, job, _ in expanded:
        for given in _promotes(job, inputs):
            shipped.setdefault(name, []).append((str(given.get("environment", "")), _names(given.get("services"))))

    def before(name: str, seen: set[str]) -> set[str]:
        for need in _as_list(jobs.get(name, {}).get("needs")):
            if need not in seen:
                seen.add(need)
                before(need, seen)
        return seen

    problems = []
    for name, label, job, _ in expanded:
        for given in _promotes(job, inputs):
            env, services, required = str(given.get("environment", "")), _names(given.get("services")), _names(given.get("require-promoted-in"))
            if env in required:
                problems.append(f"{label}: require-promoted-in names {env}, the environment it ships to")
            for earlier in sorted(before(name, set())):
                for other, other_services in shipped.get(earlier, []):
                    if other != env and services & other_services and other not in required:
                        problems.append(
                            f"{label}: ships {sorted(services & other_services)} to {env} after job {earlier} "
                            f"shipped it to {other} (needs), but require-promoted-in does not name {other}: a "
                            f"re-run of this job alone would ship a digest {other} never promoted"
                        )
    for name, job in jobs.items():
        count = sum(1 for n, _, j, _ in expanded if n == name and _promotes(j, inputs))
        strategy = job.get("strategy") if isinstance(job.get("strategy"), dict) else {}
        if count > 1 and "max-parallel" not in strategy:
            problems.append(
                f"{where} job {name}: ships to {count} environments at once; set strategy.max-parallel "
                "(how many may shift at a time)"
            )
    return problems


def role_problems(roles: dict[str, Role], jobs: list[tuple[str, dict[str, Any], str]]) -> list[str]:
    """A role that can move production traffic must be assumed only by jobs whose command
    does so; `jobs` are (where, job, variable) of every job that assumes a role."""
    problems = []
    for name, role in roles.items():
        if not role.environments:
            continue  # not a GitHub role (task, execution, flow logs)
        if not traffic_problems(role.statements):
            continue
        for where, command, role_name in jobs:
            if role_name == name and command not in MOVES_PRODUCTION:
                problems.append(f"{where}: {command} assumes {name}, which can move production traffic")
    return problems


def concurrency_problems(workflows: dict[str, dict[str, Any]], inputs: dict[str, dict[str, Any]]) -> list[str]:
    """No workflow-level group (a rollback would queue behind a promote waiting for
    approval, and a tag push would cancel a pending rollback); every cutover job in a
    group of its own command, never cancelling one in progress; the combinations of a
    matrix job each in a group of their own (one group holds one running and one pending
    job: GitHub cancels the other pending ones)."""
    problems = []
    groups: dict[str, set[str]] = {}
    for name, doc in workflows.items():
        if "concurrency" in doc:
            problems.append(f"{name}: workflow-level concurrency; give each job its own group")
        in_run: dict[str, set[tuple[str, str]]] = {}  # group → (job id, combination) in it
        for job_name, where, job, _ in expand_jobs(name, doc):
            if job is None:
                continue  # workflow_problems says why
            for step in _steps(job, CUTOVER_ACTION):
                conc = job.get("concurrency")
                if not isinstance(conc, dict) or not conc.get("group"):
                    problems.append(f"{where}: no concurrency group")
                    continue
                if conc.get("cancel-in-progress") not in (None, False):
                    problems.append(f"{where}: cancel-in-progress would stop a change half-way")
                groups.setdefault(str(conc["group"]), set()).add(command_of(step, inputs))
                in_run.setdefault(str(conc["group"]), set()).add((job_name, where))
        for group, members in in_run.items():
            ids = [job_name for job_name, _ in members]
            for job_name in sorted({j for j in ids if ids.count(j) > 1}):
                problems.append(
                    f"{name} job {job_name}: its matrix combinations share concurrency group {group!r} "
                    "(GitHub cancels all but one pending); put the matrix value in the group"
                )
    for group, commands in groups.items():
        if len(commands) > 1:
            problems.append(f"concurrency group {group!r} is shared by {sorted(commands)}")
    return problems


def assumed_roles(where: str, doc: dict[str, Any], variables: dict[str, str], inputs) -> list[tuple[str, str, str]]:
    out = []
    for _, label, job, _ in expand_jobs(where, doc):
        for cred in _steps(job, CREDENTIALS_ACTION) if job is not None else []:
            var = _ref(str((cred.get("with") or {}).get("role-to-assume", "")).strip(), r"\{\s*vars\.([A-Za-z0-9_]+)\s*\}")
            for step in _steps(job, CUTOVER_ACTION):
                out.append((label, command_of(step, inputs), variables.get(var or "", "")))
    return out
