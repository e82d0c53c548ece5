# Individual outputs for humans and other stacks, and two composite outputs whose values are
# exactly cutover's config files: `cutover init --from-terraform tf.json` writes
# deploy/services/<service>/service.toml from cutover_service and
# deploy/environments/<env>/environment.toml from cutover_environment.

output "cutover_service" {
  description = "deploy/services/<service>/service.toml as an object (schema: src/config/settings.rs ServiceSettings)."
  value = {
    image = {
      repository = aws_ecr_repository.this.name
    }
    ecs = {
      cluster        = aws_ecs_cluster.this.name
      container      = var.container_name
      container_port = var.container_port
    }
    slots = {
      blue = {
        service          = aws_ecs_service.this["blue"].name
        target_group_arn = aws_lb_target_group.this["blue"].arn
        alarms           = local.slot_alarm_names["blue"]
      }
      green = {
        service          = aws_ecs_service.this["green"].name
        target_group_arn = aws_lb_target_group.this["green"].arn
        alarms           = local.slot_alarm_names["green"]
      }
    }
    traffic = {
      production_listener_arn = aws_lb_listener.this["production"].arn
      test_listener_arn       = aws_lb_listener.this["test"].arn
      test_url                = local.test_url
    }
    validation = {
      service_alarms = var.extra_alarm_names
    }
    history = {
      depth = var.history_depth
    }
  }
}

output "cutover_workers" {
  description = "Each worker's deploy/services/<worker>/service.toml as an object (schema: src/config/settings.rs ServiceSettings with [worker]), by worker; its task definition family too (taskdef.json `family`)."
  value = {
    for w, cfg in var.workers : w => {
      image = {
        repository = aws_ecr_repository.this.name
      }
      ecs = {
        cluster   = aws_ecs_cluster.this.name
        container = cfg.container_name
      }
      worker = {
        service = aws_ecs_service.worker[w].name
      }
      history = {
        depth = var.history_depth
      }
      family = aws_ecs_task_definition.worker[w].family
    }
  }
}

output "cutover_environment" {
  description = "deploy/environments/<env>/environment.toml as an object (schema: src/config/settings.rs EnvironmentSettings)."
  value = {
    region     = local.region
    account_id = local.account_id
    ssm_prefix = var.ssm_prefix
  }
}

output "stage_role_arn" {
  description = "Role the stage job assumes through OIDC from github_stage_environments: the GitHub variable AWS_STAGE_ROLE_ARN (role-to-assume). Cannot move production traffic."
  value       = aws_iam_role.stage.arn
}

output "promote_role_arn" {
  description = "Role the promote and rollback jobs assume through OIDC from github_promote_environments (the approval): the GitHub variable AWS_PROMOTE_ROLE_ARN (role-to-assume)."
  value       = aws_iam_role.promote.arn
}

output "cleanup_policy_enabled" {
  description = "Whether the promote role may run `cutover cleanup --apply` (enable_cleanup_policy)."
  value       = length(aws_iam_role_policy.cleanup) == 1
}

output "github_oidc_provider_arn" {
  description = "ARN of the GitHub OIDC provider the stage and promote roles trust (created here or passed in)."
  value       = local.github_oidc_provider_arn
}

output "ecr_repository_name" {
  description = "ECR repository name (service.toml image.repository)."
  value       = aws_ecr_repository.this.name
}

output "ecr_repository_url" {
  description = "ECR repository URL, for docker push of the bootstrap image."
  value       = aws_ecr_repository.this.repository_url
}

output "cluster_name" {
  description = "ECS cluster name (service.toml ecs.cluster)."
  value       = aws_ecs_cluster.this.name
}

output "task_definition_family" {
  description = "Task definition family cutover registers revisions in (taskdef.json `family`)."
  value       = aws_ecs_task_definition.initial.family
}

output "service_names" {
  description = "ECS service name per slot (service.toml slots.<slot>.service)."
  value       = { for slot, svc in aws_ecs_service.this : slot => svc.name }
}

output "target_group_arns" {
  description = "Target group ARN per slot (service.toml slots.<slot>.target_group_arn)."
  value       = { for slot, tg in aws_lb_target_group.this : slot => tg.arn }
}

output "production_listener_arn" {
  description = "HTTPS production listener ARN (service.toml traffic.production_listener_arn)."
  value       = aws_lb_listener.this["production"].arn
}

output "test_listener_arn" {
  description = "Test listener ARN (service.toml traffic.test_listener_arn)."
  value       = aws_lb_listener.this["test"].arn
}

output "test_url" {
  description = "Base URL of the test listener (service.toml traffic.test_url)."
  value       = local.test_url
}

output "alarm_names" {
  description = "CloudWatch alarm names cutover watches, by owner: each slot's 5xx and latency alarms (service.toml [slots.<slot>] alarms) and the service-wide extra_alarm_names ([validation] service_alarms)."
  value       = merge(local.slot_alarm_names, { service = var.extra_alarm_names })
}

output "lb_arn" {
  description = "Load balancer ARN (e.g. to associate a WAF web ACL)."
  value       = aws_lb.this.arn
}

output "lb_dns_name" {
  description = "Load balancer DNS name: point public_hostname's DNS record (alias) at it."
  value       = aws_lb.this.dns_name
}

output "lb_zone_id" {
  description = "Load balancer hosted zone ID, for a Route 53 alias record."
  value       = aws_lb.this.zone_id
}

output "task_role_name" {
  description = "Task role name: attach the app's own permissions here."
  value       = aws_iam_role.task.name
}

output "execution_role_arn" {
  description = "Task execution role ARN (taskdef.json executionRoleArn)."
  value       = aws_iam_role.execution.arn
}

output "task_role_arn" {
  description = "Task role ARN (taskdef.json taskRoleArn)."
  value       = aws_iam_role.task.arn
}

output "log_group_name" {
  description = "CloudWatch log group of the containers (taskdef.json awslogs-group)."
  value       = aws_cloudwatch_log_group.this.name
}

output "task_security_group_id" {
  description = "Security group of the tasks (the services' network configuration)."
  value       = aws_security_group.tasks.id
}

output "ssm_parameter_path" {
  description = "SSM path under which cutover keeps this service's history and lock parameters."
  value       = local.ssm_path
}
