# A complete environment for one service: the network and the blue/green service with its
# two OIDC roles (stage, promote). Copy this folder per environment (or use workspaces)
# and change the variables; the modules stay shared.

module "network" {
  source = "../../modules/network"

  name                  = "${var.service}-${var.environment}"
  availability_zones    = var.availability_zones != null ? var.availability_zones : ["${var.region}a", "${var.region}b"]
  vpc_endpoints_enabled = var.vpc_endpoints_enabled
}

module "service" {
  source = "../../modules/ecs-blue-green-service"

  service     = var.service
  environment = var.environment

  vpc_id             = module.network.vpc_id
  public_subnet_ids  = module.network.public_subnet_ids
  private_subnet_ids = module.network.private_subnet_ids

  certificate_arn     = var.certificate_arn
  public_hostname     = var.public_hostname
  test_listener_cidrs = var.test_listener_cidrs
  deletion_protection = var.deletion_protection
  access_logs_bucket  = var.access_logs_bucket
  initial_image       = var.initial_image
  workers             = var.workers

  github_repository           = var.github_repository
  github_stage_environments   = var.github_stage_environments
  github_promote_environments = var.github_promote_environments
  github_oidc_provider_arn    = var.github_oidc_provider_arn

  enable_cleanup_policy     = var.enable_cleanup_policy
  history_read_environments = var.history_read_environments
}
