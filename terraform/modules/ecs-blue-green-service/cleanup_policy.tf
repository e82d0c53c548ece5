# Optional: what `cutover cleanup --apply` (or the action's `command: cleanup`) needs beyond
# the read policy: deregister task definition revisions nothing references and delete
# images nothing references. Off by default; `enable_cleanup_policy = true` attaches it to
# the promote role only, since deleting is destructive and that role is trusted only from
# the approval environment(s). Listing (`ecs:ListTaskDefinitions`, `ecr:DescribeImages`)
# and the lock are already in the read policy, so a dry run needs nothing extra.

data "aws_iam_policy_document" "cleanup" {
  statement {
    sid = "CleanupDeregisterTaskDefinitions"
    # No resource type for DeregisterTaskDefinition in the Service Authorization
    # Reference: "*" is the only accepted resource. It cannot stop a running service:
    # ECS keeps running an INACTIVE revision a service uses.
    actions   = ["ecs:DeregisterTaskDefinition"]
    resources = ["*"]
  }

  statement {
    sid       = "CleanupDeleteImages"
    actions   = ["ecr:BatchDeleteImage"]
    resources = [aws_ecr_repository.this.arn]
  }
}

resource "aws_iam_role_policy" "cleanup" {
  count  = var.enable_cleanup_policy ? 1 : 0
  name   = "cutover-cleanup"
  role   = aws_iam_role.promote.id
  policy = data.aws_iam_policy_document.cleanup.json
}
