# --- identity ---------------------------------------------------------------------------

variable "service" {
  description = "cutover service name (the folder under deploy/services/). Also the task definition family, ECR repository and resource name prefix."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.service))
    error_message = "service must be 1-20 chars of a-z, 0-9 and '-', starting with a letter (target group names are limited to 32 chars)."
  }
}

variable "environment" {
  description = "cutover environment name (the folder under deploy/environments/), e.g. `production`. Used in names and in the SSM path."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,9}$", var.environment))
    error_message = "environment must be 1-10 chars of a-z, 0-9 and '-', starting with a letter."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

# --- network ----------------------------------------------------------------------------

variable "vpc_id" {
  description = "VPC to run in."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets for the internet-facing load balancer (two or more AZs)."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Subnets for the Fargate tasks (no public IPs); they need egress to ECR, CloudWatch Logs and SSM through NAT or VPC endpoints."
  type        = list(string)
}

variable "ingress_cidrs" {
  description = "CIDRs allowed to reach the production listener (443) and the HTTP redirect (80)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

# --- load balancer ----------------------------------------------------------------------

variable "certificate_arn" {
  description = "ACM certificate ARN for the HTTPS listeners (production and test)."
  type        = string
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listeners. The default allows TLS 1.2 and 1.3 only."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "public_hostname" {
  description = "DNS name that points at the load balancer and is covered by certificate_arn (e.g. `web.example.com`). Used to build test_url so probes can verify TLS. Null uses the load balancer's own DNS name, which the certificate does not cover."
  type        = string
  default     = null
}

variable "test_listener_port" {
  description = "Port of the test listener, which forwards to the idle slot so cutover can probe it before it takes traffic."
  type        = number
  default     = 8443

  validation {
    condition     = var.test_listener_port != 443 && var.test_listener_port != 80
    error_message = "test_listener_port must differ from the production (443) and redirect (80) ports."
  }
}

variable "test_listener_cidrs" {
  description = "CIDRs allowed to reach the test listener: where cutover's probes run from (a self-hosted runner's NAT IP, an office VPN). Never the whole internet: the idle slot serves unreleased code."
  type        = list(string)

  validation {
    condition     = !contains(var.test_listener_cidrs, "0.0.0.0/0")
    error_message = "test_listener_cidrs must not contain 0.0.0.0/0: the test listener serves unvalidated releases."
  }
}

variable "deletion_protection" {
  description = "Protect the load balancer from deletion. Turn off (and apply) before `terraform destroy`."
  type        = bool
  default     = true
}

variable "access_logs_bucket" {
  description = "S3 bucket for ALB access logs (its policy must allow the ELB log delivery principal). Null disables access logs."
  type        = string
  default     = null
}

variable "access_logs_prefix" {
  description = "Key prefix for ALB access logs in access_logs_bucket."
  type        = string
  default     = null
}

variable "deregistration_delay" {
  description = "Seconds a target group keeps draining in-flight requests of a deregistered task. Short, so a slot shift or scale-down finishes quickly."
  type        = number
  default     = 30
}

variable "health_check" {
  description = "Target group health check (both slots)."
  type = object({
    path                = optional(string, "/health")
    matcher             = optional(string, "200")
    interval            = optional(number, 15)
    timeout             = optional(number, 5)
    healthy_threshold   = optional(number, 2)
    unhealthy_threshold = optional(number, 3)
  })
  default = {}
}

# --- containers -------------------------------------------------------------------------

variable "container_name" {
  description = "Name of the container that serves traffic (cutover's ecs.container)."
  type        = string
  default     = "app"
}

variable "container_port" {
  description = "Port the container listens on (cutover's ecs.container_port); the only port tasks accept traffic on."
  type        = number
  default     = 8080
}

variable "initial_image" {
  description = "Image the initial task definition runs until cutover's first deploy replaces it. Must listen on container_port and pass the health check. Null uses `<ecr repository>:bootstrap`, which you push once before apply (see README)."
  type        = string
  default     = null
}

variable "cpu" {
  description = "Fargate task CPU units of the initial task definition."
  type        = number
  default     = 256
}

variable "memory" {
  description = "Fargate task memory (MiB) of the initial task definition."
  type        = number
  default     = 512
}

variable "cpu_architecture" {
  description = "CPU architecture of the tasks: X86_64 or ARM64."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "desired_count" {
  description = "Initial task count of the blue (live) slot. Green starts at 0. cutover owns both counts after creation."
  type        = number
  default     = 2
}

variable "workers" {
  description = "Workers released with this service as one train (cutover's `[worker]`): services with no load balancer, such as a queue consumer running this service's image with another command. Each gets an ECS service in this cluster with the deployment circuit breaker on and its own task definition family; they share the image repository, task roles, log group and security group. Keys are the workers' cutover service names (deploy/services/<key>); cutover init --from-terraform --service <key> scaffolds one."
  type = map(object({
    container_name = optional(string, "worker")
    cpu            = optional(number)
    memory         = optional(number)
    desired_count  = optional(number, 1)
  }))
  default = {}

  validation {
    condition     = alltrue([for w in keys(var.workers) : can(regex("^[A-Za-z0-9_-]+$", w)) && w != var.service])
    error_message = "workers keys become folder names and SSM paths: use letters, digits, - and _, and not the service's own name."
  }
}

variable "health_check_grace_period" {
  description = "Seconds ECS ignores failing load balancer health checks after a task starts."
  type        = number
  default     = 30
}

# --- images, logs, history --------------------------------------------------------------

variable "history_depth" {
  description = "How many releases cutover keeps in its history (service.toml history.depth); the ECR lifecycle policy never expires images a rollback could still need."
  type        = number
  default     = 10
}

variable "image_retention_count" {
  description = "How many images the ECR repository keeps. Must be at least history_depth."
  type        = number
  default     = 30
}

variable "ecr_force_delete" {
  description = "Let `terraform destroy` delete the ECR repository while it still holds images. Keep false for anything you care about."
  type        = bool
  default     = false
}

variable "ecr_kms_key_arn" {
  description = "KMS key for ECR image encryption. Null uses the AWS managed key for ECR."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Retention of the service's log group, in days."
  type        = number
  default     = 365
}

variable "log_kms_key_arn" {
  description = "KMS key ARN to encrypt the service's log group with (its key policy must allow the CloudWatch Logs service). Null keeps CloudWatch Logs' default encryption."
  type        = string
  default     = null
}

# --- alarms -----------------------------------------------------------------------------

variable "alarm_5xx_threshold" {
  description = "Target 5xx responses per minute, per slot, above which the slot's 5xx alarm fires."
  type        = number
  default     = 5
}

variable "alarm_latency_threshold" {
  description = "Average target response time (seconds) per minute, per slot, above which the slot's latency alarm fires."
  type        = number
  default     = 1
}

variable "alarm_evaluation_periods" {
  description = "Consecutive one-minute periods over the threshold before an alarm fires."
  type        = number
  default     = 2
}

variable "extra_alarm_names" {
  description = "Names of other CloudWatch alarms (in this account and region) about the whole service, e.g. app-level SLO alarms: cutover watches them during every shift step and the bake. They are the cutover_service output's validation.service_alarms, and both deploy roles may read them (cloudwatch:DescribeAlarms)."
  type        = list(string)
  default     = []
}

variable "alarm_actions" {
  description = "ARNs (e.g. SNS topics) notified when an alarm fires or recovers."
  type        = list(string)
  default     = []
}

# --- deploy role (GitHub OIDC) ----------------------------------------------------------

variable "github_repository" {
  description = "GitHub repository allowed to assume the stage and promote roles, as `owner/name`."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be `owner/name`, without wildcards."
  }
}

variable "github_stage_environments" {
  description = "GitHub environments whose jobs may assume the stage role (build, stage, point the test listener; never production traffic). The `sub` claim is pinned to `repo:OWNER/REPO:environment:NAME`. The default matches examples/github-workflows/deploy.yml's stage job; restrict it to `v*` tags in GitHub."
  type        = list(string)
  default     = ["production-stage"]

  validation {
    condition     = length(var.github_stage_environments) > 0 && alltrue([for e in var.github_stage_environments : can(regex("^[^*?:]+$", e))])
    error_message = "github_stage_environments needs at least one name, without wildcards or ':'."
  }
}

variable "github_promote_environments" {
  description = "GitHub environments whose jobs may assume the promote role, which moves production traffic (promote and rollback). Give them required reviewers: that approval is what IAM enforces. Must not overlap github_stage_environments. The default matches the promote job of examples/github-workflows/deploy.yml and rollback.yml."
  type        = list(string)
  default     = ["production"]

  validation {
    condition     = length(var.github_promote_environments) > 0 && alltrue([for e in var.github_promote_environments : can(regex("^[^*?:]+$", e))])
    error_message = "github_promote_environments needs at least one name, without wildcards or ':'."
  }
}

variable "github_oidc_provider_arn" {
  description = "ARN of an existing token.actions.githubusercontent.com OIDC provider (one per account). Null creates it."
  type        = string
  default     = null
}

variable "deploy_role_max_session_duration" {
  description = "Maximum session length (seconds) of the stage and promote roles; long enough for a stage or a promote with its bake."
  type        = number
  default     = 3600
}

variable "ssm_prefix" {
  description = "SSM path prefix cutover keeps history and lock under (environment.toml ssm_prefix)."
  type        = string
  default     = "/cutover"

  validation {
    condition     = can(regex("^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", var.ssm_prefix))
    error_message = "ssm_prefix must start with '/' and not end with one, e.g. /cutover."
  }
}

variable "enable_cleanup_policy" {
  description = "Attach the cutover-cleanup policy (ecs:DeregisterTaskDefinition, ecr:BatchDeleteImage on this repository) to the promote role, for `cutover cleanup --apply` / the action's `command: cleanup`."
  type        = bool
  default     = false
}

variable "history_read_environments" {
  description = "Other environments of this service (same account, same ssm_prefix, any region) whose cutover history the promote role may read: those environment.toml's [versions] require_promoted_in / require_rehearsal_in, or the action's require-promoted-in, names (e.g. [\"staging\"] for production). Empty: no such policy."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for env in var.history_read_environments : can(regex("^[A-Za-z0-9_.-]+$", env))])
    error_message = "history_read_environments holds environment names (folders under deploy/environments/), without wildcards."
  }
}
