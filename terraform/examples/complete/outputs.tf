output "cutover_service" {
  description = "service.toml as an object: `terraform output -json > tf.json && cutover init --from-terraform tf.json`."
  value       = module.service.cutover_service
}

output "cutover_workers" {
  description = "Each worker's service.toml as an object, by worker: `cutover init --from-terraform tf.json --service <worker>`."
  value       = module.service.cutover_workers
}

output "cutover_environment" {
  description = "environment.toml as an object (region, account_id, ssm_prefix)."
  value       = module.service.cutover_environment
}

output "stage_role_arn" {
  description = "The GitHub variable AWS_STAGE_ROLE_ARN of the production-stage environment (role-to-assume of deploy.yml's stage job)."
  value       = module.service.stage_role_arn
}

output "promote_role_arn" {
  description = "The GitHub variable AWS_PROMOTE_ROLE_ARN of the production environment (role-to-assume of deploy.yml's promote job and rollback.yml)."
  value       = module.service.promote_role_arn
}

output "ecr_repository_url" {
  description = "Where to push the bootstrap image and where cutover pushes releases."
  value       = module.service.ecr_repository_url
}

output "lb_dns_name" {
  description = "Point public_hostname (alias/CNAME) at this."
  value       = module.service.lb_dns_name
}

output "task_definition_family" {
  description = "Family for deploy/services/<service>/taskdef.json."
  value       = module.service.task_definition_family
}

output "execution_role_arn" {
  description = "executionRoleArn for taskdef.json."
  value       = module.service.execution_role_arn
}

output "task_role_arn" {
  description = "taskRoleArn for taskdef.json."
  value       = module.service.task_role_arn
}

output "log_group_name" {
  description = "awslogs-group for taskdef.json."
  value       = module.service.log_group_name
}
