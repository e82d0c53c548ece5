variable "region" {
  description = "AWS region to create everything in."
  type        = string
}

variable "availability_zones" {
  description = "Two availability zones; null means <region>a and <region>b."
  type        = list(string)
  default     = null
}

variable "service" {
  description = "cutover service name (deploy/services/<service>)."
  type        = string
  default     = "web"
}

variable "environment" {
  description = "cutover environment name (deploy/environments/<env>)."
  type        = string
  default     = "production"
}

variable "certificate_arn" {
  description = "ACM certificate ARN (same region) covering public_hostname."
  type        = string
}

variable "public_hostname" {
  description = "DNS name you point at the load balancer (covered by the certificate); used in test_url. Null uses the ALB DNS name."
  type        = string
  default     = null
}

variable "test_listener_cidrs" {
  description = "CIDRs cutover's probes come from (e.g. your self-hosted runner's egress IP as x.x.x.x/32)."
  type        = list(string)
}

variable "initial_image" {
  description = "Image to run until the first cutover deploy. Null uses <ecr repository>:bootstrap (push it right after the repository exists, see README)."
  type        = string
  default     = null
}

variable "workers" {
  description = "Workers released with the service as one train (no load balancer), e.g. { jobs = { container_name = \"jobs\" } }; the module's `workers` says what each may set."
  type        = map(any)
  default     = {}
}

variable "github_repository" {
  description = "GitHub repository (`owner/name`) whose workflows deploy."
  type        = string
}

variable "github_stage_environments" {
  description = "GitHub environments allowed to assume the stage role: the stage job of examples/github-workflows/deploy.yml runs in production-stage."
  type        = list(string)
  default     = ["production-stage"]
}

variable "github_promote_environments" {
  description = "GitHub environments allowed to assume the promote role (production traffic): the promote job and rollback.yml run in production, whose required reviewers are the approval."
  type        = list(string)
  default     = ["production"]
}

variable "github_oidc_provider_arn" {
  description = "Existing GitHub OIDC provider ARN in this account; null creates one."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Load balancer deletion protection; set false and apply before destroy."
  type        = bool
  default     = true
}

variable "access_logs_bucket" {
  description = "Existing S3 bucket for ALB access logs; null disables them."
  type        = string
  default     = null
}

variable "vpc_endpoints_enabled" {
  description = "Reach ECR, CloudWatch Logs and SSM through VPC endpoints (in addition to NAT)."
  type        = bool
  default     = false
}

variable "enable_cleanup_policy" {
  description = "Let the promote role run `cutover cleanup --apply` (deregister unreferenced task definitions, delete unreferenced images)."
  type        = bool
  default     = false
}

variable "history_read_environments" {
  description = "Environments whose cutover history the promote role may read, for environment.toml's [versions] rules and the require-promoted-in input: [\"staging\"] in production for examples/github-workflows/staging-to-production.yml."
  type        = list(string)
  default     = []
}
