terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }

  # Keep state remote and locked for a shared environment, e.g.:
  # backend "s3" {
  #   bucket       = "my-terraform-state"
  #   key          = "cutover/web/production.tfstate"
  #   region       = "eu-west-1"
  #   use_lockfile = true
  # }
}

provider "aws" {
  region = var.region
  # Phase 1 runs from an admin's machine: `AWS_PROFILE=<admin profile> terraform apply`.

  default_tags {
    tags = {
      "managed-by" = "terraform"
      "project"    = "cutover"
    }
  }
}
