# Everything cutover expects to exist for one environment × service: two slots (an ECS
# service + a target group each), a production and a test listener forwarding to both with
# weights, the image repository, logs, alarms, and a deploy role GitHub Actions assumes
# through OIDC. Terraform creates these once; afterwards cutover owns task definitions,
# desired counts and listener weights, so those are ignored here after creation.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  name       = "${var.service}-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region
  tags = merge(var.tags, {
    "cutover:service"     = var.service
    "cutover:environment" = var.environment
  })

  # The two slots. Blue starts live: it takes all production traffic and runs
  # desired_count tasks; green starts idle at weight 0 with no tasks, and the test listener
  # points at it. Both target groups stay in both forward actions forever (an ALB does not
  # health-check a target group no listener uses); cutover only moves the weights.
  slots = {
    blue  = { desired_count = var.desired_count }
    green = { desired_count = 0 }
  }
  listeners = {
    production = { port = 443, weights = { blue = 100, green = 0 } }
    test       = { port = var.test_listener_port, weights = { blue = 0, green = 100 } }
  }

  image         = coalesce(var.initial_image, "${aws_ecr_repository.this.repository_url}:bootstrap")
  test_url      = "https://${coalesce(var.public_hostname, aws_lb.this.dns_name)}:${var.test_listener_port}"
  ssm_path      = "${var.ssm_prefix}/${var.environment}/${var.service}"
  ssm_path_arn  = "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter${local.ssm_path}/*"
  family_arn    = "arn:${local.partition}:ecs:${local.region}:${local.account_id}:task-definition/${local.name}:*"
  cluster_tasks = "arn:${local.partition}:ecs:${local.region}:${local.account_id}:task/${aws_ecs_cluster.this.name}/*"
  # Production traffic and the test listener are kept apart: only the promote role may
  # touch the first (deploy_role.tf).
  production_listener_arn = aws_lb_listener.this["production"].arn
  test_listener_arn       = aws_lb_listener.this["test"].arn
  # Rules under the production listener: listener/app/L/ID/LID → listener-rule/app/L/ID/LID/*.
  production_rule_arns = "${replace(local.production_listener_arn, ":listener/", ":listener-rule/")}/*"
  service_arns         = [for svc in aws_ecs_service.this : svc.id]
}
