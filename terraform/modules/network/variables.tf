variable "name" {
  description = "Name prefix for every network resource (e.g. `web-production`)."
  type        = string
}

variable "cidr_block" {
  description = "IPv4 CIDR of the VPC. The module carves 4 subnets out of it: 2 public, 2 private, one per availability zone."
  type        = string
  default     = "10.0.0.0/16"
}

variable "availability_zones" {
  description = "Exactly two availability zone names, e.g. [\"eu-west-1a\", \"eu-west-1b\"]. Named explicitly so the subnets never move when AWS adds a zone."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) == 2
    error_message = "availability_zones must name exactly two zones."
  }
}

variable "nat_gateway_enabled" {
  description = "Give private subnets internet egress through a NAT gateway (ECR, CloudWatch Logs, SSM and anything else the app calls). Turn off only with vpc_endpoints_enabled and an app that needs no other egress."
  type        = bool
  default     = true
}

variable "nat_gateway_per_az" {
  description = "One NAT gateway per availability zone (survives an AZ outage) instead of one shared gateway (cheaper)."
  type        = bool
  default     = false
}

variable "vpc_endpoints_enabled" {
  description = "Create VPC endpoints so tasks reach ECR (api, dkr), CloudWatch Logs and SSM privately, plus an S3 gateway endpoint for ECR image layers."
  type        = bool
  default     = false
}

variable "flow_log_retention_days" {
  description = "Retention of the VPC flow log group, in days."
  type        = number
  default     = 365
}

variable "kms_key_arn" {
  description = "KMS key ARN to encrypt the flow log group with. Null keeps CloudWatch Logs' default encryption."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
