# The two roles GitHub Actions assumes (OIDC, no long-lived keys) to run cutover, split by
# duty so that the approval is enforced by IAM, not only by the workflow:
# - stage: build and push the image, register task definitions, roll the idle slot, point
#   the TEST listener at it, keep history and lock in SSM, read alarms. It cannot modify
#   the production listener or its rules, so an unapproved job cannot shift production
#   weights. (It can update both ECS services: which one is idle changes every release.)
# - promote: move production weights (promote, and rollback), scale slots, point the test
#   listener (a cold rollback validates the slot it brings back). Trusted only from the
#   approval environment(s): GitHub's required reviewers decide who gets these credentials.
# Both read everything cutover reads. Least privilege: every statement is scoped to this
# service's resources, except actions that have no resource type in the AWS Service
# Authorization Reference, where AWS only accepts "*" (each such statement says so).
# tests/terraform/test_deploy_role.py and test_workflows.py check these documents;
# terraform/README.md lists why each permission is needed.

resource "aws_iam_openid_connect_provider" "github" {
  count = var.github_oidc_provider_arn == null ? 1 : 0

  url            = "https://token.actions.githubusercontent.com"
  client_id_list = ["sts.amazonaws.com"]
  # No thumbprint_list: IAM validates GitHub's certificate against its own trusted root
  # CAs for this provider, so a pinned (and eventually stale) thumbprint adds nothing.
  tags = local.tags
}

locals {
  github_oidc_provider_arn = coalesce(var.github_oidc_provider_arn, one(aws_iam_openid_connect_provider.github[*].arn))
}

# --- trust: one GitHub environment list per role ----------------------------------------

data "aws_iam_policy_document" "stage_assume" {
  statement {
    sid     = "GitHubActionsStageEnvironments"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.github_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }

    # Only jobs that run in one of the named GitHub environments of this one repository;
    # no wildcard, so no branch, fork or other environment can assume the role.
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = [for env in var.github_stage_environments : "repo:${var.github_repository}:environment:${env}"]
    }
  }
}

data "aws_iam_policy_document" "promote_assume" {
  statement {
    sid     = "GitHubActionsApprovalEnvironments"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.github_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }

    # Only jobs in the approval environment(s): a job gets there only after its required
    # reviewers approved, so only approved jobs can move production traffic.
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = [for env in var.github_promote_environments : "repo:${var.github_repository}:environment:${env}"]
    }
  }
}

# --- what both roles read ---------------------------------------------------------------

data "aws_iam_policy_document" "deploy_read" {
  statement {
    sid       = "EcsReadSlots"
    actions   = ["ecs:DescribeServices"]
    resources = concat(local.service_arns, local.worker_service_arns)
  }

  statement {
    sid       = "EcsCluster"
    actions   = ["ecs:DescribeClusters"]
    resources = [aws_ecs_cluster.this.arn]
  }

  statement {
    sid       = "EcsTasksOfCluster"
    actions   = ["ecs:DescribeTasks"]
    resources = [local.cluster_tasks]
  }

  statement {
    sid = "EcsListTasksOfCluster"
    # ecs:ListTasks' only resource type is container-instance, which Fargate tasks do not
    # have; AWS's documented scoping is Resource "*" narrowed by the ecs:cluster condition.
    actions   = ["ecs:ListTasks"]
    resources = ["*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.this.arn]
    }
  }

  statement {
    sid = "EcsReadWithoutResourceType"
    # No resource type for these in the Service Authorization Reference: "*" is the only
    # accepted resource. They only read task definitions.
    actions   = ["ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions"]
    resources = ["*"]
  }

  statement {
    sid = "VerifyTaskRoles"
    # `cutover verify` checks that the roles the task definition names exist.
    actions   = ["iam:GetRole"]
    resources = [aws_iam_role.task.arn, aws_iam_role.execution.arn]
  }

  statement {
    sid = "ElbReadWithoutResourceType"
    # Every elasticloadbalancing:Describe* action has no resource type: "*" only.
    actions = [
      "elasticloadbalancing:DescribeListeners",
      "elasticloadbalancing:DescribeRules",
      "elasticloadbalancing:DescribeTargetGroups",
      "elasticloadbalancing:DescribeTargetHealth",
    ]
    resources = ["*"]
  }

  statement {
    sid = "EcrAuthToken"
    # ecr:GetAuthorizationToken has no resource type: "*" only. The token alone grants
    # nothing; the repository statements decide what can be pushed or pulled.
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "EcrRead"
    # Resolve a tag or digest (a rollback checks its image still exists), pull the
    # previous release as build cache.
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:DescribeImages",
      "ecr:DescribeRepositories",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [aws_ecr_repository.this.arn]
  }

  statement {
    sid = "HistoryAndLock"
    # cutover creates <prefix>/<env>/<service>/history and …/lock at run time; every
    # command that changes anything takes the lock and writes history.
    actions = [
      "ssm:DeleteParameter",
      "ssm:GetParameter",
      "ssm:GetParameters",
      "ssm:PutParameter",
    ]
    # The workers' too (workers.tf): each keeps its own history and lock.
    resources = concat([local.ssm_path_arn], local.worker_ssm_path_arns)
  }

  statement {
    sid       = "ReadAlarms"
    actions   = ["cloudwatch:DescribeAlarms"]
    resources = concat(
      [for a in aws_cloudwatch_metric_alarm.this : a.arn],
      [for n in var.extra_alarm_names : "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${n}"],
    )
  }
}

# --- stage: everything up to the approval; production traffic out of reach --------------

data "aws_iam_policy_document" "stage" {
  statement {
    sid = "EcsRollIdleSlot"
    # Which slot is idle changes with every release, so IAM cannot tell it from the live
    # one: both services. Production traffic is the listener, which this role cannot touch.
    actions   = ["ecs:UpdateService"]
    resources = local.service_arns
  }

  statement {
    sid = "EcsRegisterTaskDefinition"
    # The slots' family and each worker's: a train's stage registers every member's.
    actions   = ["ecs:RegisterTaskDefinition"]
    resources = concat([local.family_arn], local.worker_family_arns)
  }

  statement {
    sid = "EcsTagTaskDefinitionOnRegister"
    # RegisterTaskDefinition with tags also authorizes ecs:TagResource; allow it only as
    # part of that call.
    actions   = ["ecs:TagResource"]
    resources = concat([local.family_arn], local.worker_family_arns)
    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["RegisterTaskDefinition"]
    }
  }

  statement {
    sid = "PassTaskRoles"
    # RegisterTaskDefinition passes the task and execution roles; only these two, and
    # only to ECS tasks.
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.task.arn, aws_iam_role.execution.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  statement {
    sid = "PointTestListener"
    # The test listener only: the production listener and its rules are the promote role's.
    actions   = ["elasticloadbalancing:ModifyListener"]
    resources = [local.test_listener_arn]
  }

  statement {
    sid = "EcrPush"
    actions = [
      "ecr:CompleteLayerUpload",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = [aws_ecr_repository.this.arn]
  }
}

# --- promote (and rollback): production traffic -----------------------------------------

data "aws_iam_policy_document" "promote" {
  statement {
    sid = "EcsScaleSlots"
    # Scale the old slot down after a promote (scale-to-zero policy), back up for a cold
    # rollback, or return a slot to a release that already ran in production. And roll the
    # workers (workers.tf): a worker's one service is production, so only this role, after
    # the approval, updates it; the stage role only registers its task definition.
    actions   = ["ecs:UpdateService"]
    resources = concat(local.service_arns, local.worker_service_arns)
  }

  statement {
    sid = "ShiftProductionWeights"
    # Production weights; and the test listener, which a cold rollback points at the slot
    # it brings back to validate it.
    actions   = ["elasticloadbalancing:ModifyListener"]
    resources = [local.production_listener_arn, local.test_listener_arn]
  }

  statement {
    sid = "ShiftProductionWeightsOnRules"
    # When service.toml names traffic.production_rule_arn (a rule under the production
    # listener) instead of the listener's default action.
    actions   = ["elasticloadbalancing:ModifyRule"]
    resources = [local.production_rule_arns]
  }
}

# --- the roles --------------------------------------------------------------------------

resource "aws_iam_role" "stage" {
  name                 = "${local.name}-stage"
  description          = "Assumed by GitHub Actions (OIDC) in ${var.github_repository}'s ${join(", ", var.github_stage_environments)} environment to build and stage ${local.name}; cannot move production traffic"
  assume_role_policy   = data.aws_iam_policy_document.stage_assume.json
  max_session_duration = var.deploy_role_max_session_duration
  tags                 = local.tags

  lifecycle {
    precondition {
      condition     = length(setintersection(var.github_stage_environments, var.github_promote_environments)) == 0
      error_message = "github_stage_environments and github_promote_environments must not share an environment: a stage job there could assume the promote role without approval."
    }
  }
}

resource "aws_iam_role_policy" "stage_read" {
  name   = "cutover-read"
  role   = aws_iam_role.stage.id
  policy = data.aws_iam_policy_document.deploy_read.json
}

resource "aws_iam_role_policy" "stage" {
  name   = "cutover-stage"
  role   = aws_iam_role.stage.id
  policy = data.aws_iam_policy_document.stage.json
}

resource "aws_iam_role" "promote" {
  name                 = "${local.name}-promote"
  description          = "Assumed by GitHub Actions (OIDC) in ${var.github_repository}'s ${join(", ", var.github_promote_environments)} environment (approval) to promote or roll back ${local.name}"
  assume_role_policy   = data.aws_iam_policy_document.promote_assume.json
  max_session_duration = var.deploy_role_max_session_duration
  tags                 = local.tags
}

resource "aws_iam_role_policy" "promote_read" {
  name   = "cutover-read"
  role   = aws_iam_role.promote.id
  policy = data.aws_iam_policy_document.deploy_read.json
}

resource "aws_iam_role_policy" "promote" {
  name   = "cutover-promote"
  role   = aws_iam_role.promote.id
  policy = data.aws_iam_policy_document.promote.json
}
