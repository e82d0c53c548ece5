# One internet-facing ALB with three listeners: HTTPS production (443), an HTTP listener
# that only redirects to it, and an HTTPS test listener on its own port for probing the
# idle slot. Production and test both forward to blue and green with weights.

resource "aws_lb" "this" {
  #checkov:skip=CKV2_AWS_28:WAF is a per-organisation choice (rules, cost); associate your web ACL with the lb_arn output.
  name                       = local.name
  load_balancer_type         = "application"
  internal                   = false
  security_groups            = [aws_security_group.alb.id]
  subnets                    = var.public_subnet_ids
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection

  dynamic "access_logs" {
    for_each = var.access_logs_bucket == null ? [] : [var.access_logs_bucket]
    content {
      bucket  = access_logs.value
      prefix  = var.access_logs_prefix
      enabled = true
    }
  }

  tags = local.tags
}

resource "aws_lb_target_group" "this" {
  #checkov:skip=CKV_AWS_378:TLS ends at the ALB; ALB to task is HTTP inside the VPC, open only from the ALB security group. HTTPS targets would need a certificate in every container, and the ALB does not verify target certificates anyway.
  for_each = local.slots

  name                 = "${local.name}-${each.key}"
  target_type          = "ip" # Fargate tasks register by ENI address
  protocol             = "HTTP"
  port                 = var.container_port
  vpc_id               = var.vpc_id
  deregistration_delay = var.deregistration_delay

  health_check {
    enabled             = true
    protocol            = "HTTP"
    port                = "traffic-port"
    path                = var.health_check.path
    matcher             = var.health_check.matcher
    interval            = var.health_check.interval
    timeout             = var.health_check.timeout
    healthy_threshold   = var.health_check.healthy_threshold
    unhealthy_threshold = var.health_check.unhealthy_threshold
  }

  lifecycle {
    precondition {
      condition     = length(local.name) <= 26
      error_message = "service and environment together may have at most 25 characters: target group names (<service>-<environment>-green) are limited to 32."
    }
  }

  tags = merge(local.tags, { "cutover:slot" = each.key })
}

# Production (443) and test listeners: both forward to blue and green with weights.
resource "aws_lb_listener" "this" {
  for_each = local.listeners

  load_balancer_arn = aws_lb.this.arn
  port              = each.value.port
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = var.certificate_arn

  default_action {
    type = "forward"
    forward {
      dynamic "target_group" {
        for_each = each.value.weights
        content {
          arn    = aws_lb_target_group.this[target_group.key].arn
          weight = target_group.value
        }
      }
    }
  }

  # cutover owns the weights once the listener exists (and points the test listener at
  # whichever slot is idle).
  lifecycle {
    ignore_changes = [default_action]
  }

  tags = merge(local.tags, { "cutover:listener" = each.key })
}

resource "aws_lb_listener" "http_redirect" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      protocol    = "HTTPS"
      port        = "443"
      status_code = "HTTP_301"
    }
  }

  tags = local.tags
}
