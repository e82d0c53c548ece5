# The load balancer takes HTTPS from the internet (and HTTP only to redirect it) and the
# test port from an allow-list; tasks take traffic only from the load balancer, only on the
# container port.

resource "aws_security_group" "alb" {
  name        = "${local.name}-alb"
  description = "Load balancer of ${local.name}: production, redirect and test listeners"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${local.name}-alb" })
}

resource "aws_security_group" "tasks" {
  name        = "${local.name}-tasks"
  description = "Fargate tasks of ${local.name}: traffic from the load balancer only"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${local.name}-tasks" })
}

locals {
  alb_ingress = merge(
    { for c in var.ingress_cidrs : "https ${c}" => { port = 443, cidr = c, what = "HTTPS production listener" } },
    { for c in var.ingress_cidrs : "http ${c}" => { port = 80, cidr = c, what = "HTTP, redirected to HTTPS" } },
    { for c in var.test_listener_cidrs : "test ${c}" => { port = var.test_listener_port, cidr = c, what = "Test listener (idle slot) for cutover probes" } },
  )
}

resource "aws_vpc_security_group_ingress_rule" "alb" {
  #checkov:skip=CKV_AWS_260:Port 80 only answers with a 301 to HTTPS (aws_lb_listener.http_redirect); closing it would break plain-http links.
  for_each = local.alb_ingress

  security_group_id = aws_security_group.alb.id
  description       = each.value.what
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr
}

resource "aws_vpc_security_group_egress_rule" "alb_to_tasks" {
  security_group_id            = aws_security_group.alb.id
  description                  = "To the tasks, container port only"
  ip_protocol                  = "tcp"
  from_port                    = var.container_port
  to_port                      = var.container_port
  referenced_security_group_id = aws_security_group.tasks.id
}

resource "aws_vpc_security_group_ingress_rule" "tasks_from_alb" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "From the load balancer, container port only"
  ip_protocol                  = "tcp"
  from_port                    = var.container_port
  to_port                      = var.container_port
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_egress_rule" "tasks_https" {
  security_group_id = aws_security_group.tasks.id
  description       = "HTTPS out (ECR, CloudWatch Logs, SSM via NAT or VPC endpoints)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}
