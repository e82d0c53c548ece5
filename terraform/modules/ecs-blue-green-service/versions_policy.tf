# Optional: what `[versions] require_promoted_in` / `require_rehearsal_in` (environment.toml)
# and the action's `require-promoted-in` need: promote and deploy read another environment's
# cutover history of this service (e.g. staging's, before production ships the same digest).
# Attached to the promote role only (promote and deploy run there) when
# `history_read_environments` names any. Read only, and only each environment's history
# parameter (never its lock). SSM reads parameters by name in the caller's account, so the
# other environment must be in this account; its region is its own (environment.toml), so
# the region part is a wildcard and the path names the environment.

data "aws_iam_policy_document" "versions" {
  statement {
    sid     = "ReadOtherEnvironmentsHistory"
    actions = ["ssm:GetParameter"]
    resources = [
      for env in var.history_read_environments :
      "arn:${local.partition}:ssm:*:${local.account_id}:parameter${var.ssm_prefix}/${env}/${var.service}/history"
    ]
  }
}

resource "aws_iam_role_policy" "versions" {
  count  = length(var.history_read_environments) > 0 ? 1 : 0
  name   = "cutover-versions"
  role   = aws_iam_role.promote.id
  policy = data.aws_iam_policy_document.versions.json
}
