# The role GitHub Actions assumes (OIDC, no long-lived keys) to run cutover: build and push
# the image, register task definitions, roll the idle slot, move listener weights, keep
# history and lock in SSM, read alarms. Least privilege: every statement is scoped to this
# service's resources, except actions that have no resource type in the AWS Service
# Authorization Reference, where AWS only accepts "*" (each such statement says so).
# tests/terraform/test_deploy_role.py checks this document; terraform/README.md lists why
# each permission is needed.

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

data "aws_iam_policy_document" "deploy_assume" {
  statement {
    sid     = "GitHubActionsEnvironments"
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
      values   = [for env in var.github_environments : "repo:${var.github_repository}:environment:${env}"]
    }
  }
}

data "aws_iam_policy_document" "deploy" {
  statement {
    sid       = "EcsSlots"
    actions   = ["ecs:DescribeServices", "ecs:UpdateService"]
    resources = [for svc in aws_ecs_service.this : svc.id]
  }

  statement {
    sid       = "EcsCluster"
    actions   = ["ecs:DescribeClusters"]
    resources = [aws_ecs_cluster.this.arn]
  }

  statement {
    sid       = "EcsRegisterTaskDefinition"
    actions   = ["ecs:RegisterTaskDefinition"]
    resources = [local.family_arn]
  }

  statement {
    sid = "EcsTagTaskDefinitionOnRegister"
    # RegisterTaskDefinition with tags also authorizes ecs:TagResource; allow it only as
    # part of that call.
    actions   = ["ecs:TagResource"]
    resources = [local.family_arn]
    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["RegisterTaskDefinition"]
    }
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
    sid = "VerifyTaskRoles"
    # `cutover verify` checks that the roles the task definition names exist.
    actions   = ["iam:GetRole"]
    resources = [aws_iam_role.task.arn, aws_iam_role.execution.arn]
  }

  statement {
    sid       = "ShiftWeights"
    actions   = ["elasticloadbalancing:ModifyListener"]
    resources = local.listener_arns
  }

  statement {
    sid       = "ShiftWeightsOnRules"
    actions   = ["elasticloadbalancing:ModifyRule"]
    resources = local.listener_rule_arns
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
    # nothing; the repository statement below decides what can be pushed or pulled.
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "EcrPushPull"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:DescribeImages",
      "ecr:DescribeRepositories",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = [aws_ecr_repository.this.arn]
  }

  statement {
    sid = "HistoryAndLock"
    # cutover creates <prefix>/<env>/<service>/history and …/lock at run time.
    actions = [
      "ssm:DeleteParameter",
      "ssm:GetParameter",
      "ssm:GetParameters",
      "ssm:PutParameter",
    ]
    resources = [local.ssm_path_arn]
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

resource "aws_iam_role" "deploy" {
  name                 = "${local.name}-deploy"
  description          = "Assumed by GitHub Actions (OIDC) in ${var.github_repository} to run cutover for ${local.name}"
  assume_role_policy   = data.aws_iam_policy_document.deploy_assume.json
  max_session_duration = var.deploy_role_max_session_duration
  tags                 = local.tags
}

resource "aws_iam_role_policy" "deploy" {
  name   = "cutover"
  role   = aws_iam_role.deploy.id
  policy = data.aws_iam_policy_document.deploy.json
}
