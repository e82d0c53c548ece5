# Workers (cutover's `[worker]`, issue 17.4): services with no load balancer, released with
# this service as one train. cutover rolls each in place — UpdateService with the new task
# definition once every web member of the train validated, before traffic shifts — and
# watches ECS's rollout; the circuit breaker marks a rollout that cannot get healthy tasks
# FAILED, and cutover (not ECS) rolls back, hence rollback = false. Like the slots,
# terraform creates them once and then ignores the task definition and desired count.

locals {
  # ECS service and task definition family of each worker, named like the slots' family.
  worker_names = { for w, _ in var.workers : w => "${w}-${var.environment}" }
  worker_family_arns = [
    for name in values(local.worker_names) :
    "arn:${local.partition}:ecs:${local.region}:${local.account_id}:task-definition/${name}:*"
  ]
  # Each worker keeps its own history and lock, as any cutover service.
  worker_ssm_path_arns = [
    for w, _ in var.workers :
    "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter${var.ssm_prefix}/${var.environment}/${w}/*"
  ]
  worker_service_arns = [for svc in aws_ecs_service.worker : svc.id]
}

resource "aws_ecs_task_definition" "worker" {
  for_each = var.workers

  family                   = local.worker_names[each.key]
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = coalesce(each.value.cpu, var.cpu)
  memory                   = coalesce(each.value.memory, var.memory)
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # No port: nothing routes to a worker.
  container_definitions = jsonencode([
    {
      name                   = each.value.container_name
      image                  = local.image
      essential              = true
      readonlyRootFilesystem = true
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this.name
          awslogs-region        = local.region
          awslogs-stream-prefix = each.key
        }
      }
    }
  ])

  tags = merge(local.tags, { "cutover:worker" = each.key })
}

resource "aws_ecs_service" "worker" {
  for_each = var.workers

  name                    = local.worker_names[each.key]
  cluster                 = aws_ecs_cluster.this.id
  task_definition         = aws_ecs_task_definition.worker[each.key].arn
  desired_count           = each.value.desired_count
  launch_type             = "FARGATE"
  platform_version        = "LATEST"
  propagate_tags          = "SERVICE"
  enable_ecs_managed_tags = true
  wait_for_steady_state   = false

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = false
  }

  lifecycle {
    ignore_changes = [task_definition, desired_count]
  }

  tags = merge(local.tags, { "cutover:worker" = each.key })
}
