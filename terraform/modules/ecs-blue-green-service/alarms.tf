# Per-slot alarms: each is about one slot's target group, so the cutover_service output
# lists it under that slot (service.toml [slots.<slot>] alarms). cutover gates on a slot's
# alarms when it validates a release there or moves traffic to it, never when it moves
# traffic away from it. Missing data is "not breaching": an idle slot with no traffic must
# not block a deploy.

locals {
  alarms = merge([
    for slot in keys(local.slots) : {
      "${slot}-5xx" = {
        slot        = slot
        metric      = "HTTPCode_Target_5XX_Count"
        statistic   = "Sum"
        threshold   = var.alarm_5xx_threshold
        description = "${local.name} ${slot}: targets answered more than ${var.alarm_5xx_threshold} 5xx per minute"
      }
      "${slot}-latency" = {
        slot        = slot
        metric      = "TargetResponseTime"
        statistic   = "Average"
        threshold   = var.alarm_latency_threshold
        description = "${local.name} ${slot}: average target response time above ${var.alarm_latency_threshold}s"
      }
    }
  ]...)
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.alarms

  alarm_name          = "${local.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = "AWS/ApplicationELB"
  metric_name         = each.value.metric
  statistic           = each.value.statistic
  period              = 60
  evaluation_periods  = var.alarm_evaluation_periods
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  dimensions = {
    LoadBalancer = aws_lb.this.arn_suffix
    TargetGroup  = aws_lb_target_group.this[each.value.slot].arn_suffix
  }

  tags = merge(local.tags, { "cutover:slot" = each.value.slot })
}

locals {
  # service.toml [slots.<slot>] alarms.
  slot_alarm_names = {
    for slot in keys(local.slots) : slot => [
      for key, alarm in aws_cloudwatch_metric_alarm.this : alarm.alarm_name if local.alarms[key].slot == slot
    ]
  }
}
