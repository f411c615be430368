# Several environments from one configuration: one state (a Terraform Cloud workspace, or a
# backend key) per environment, each with its own tfvars file:
#   terraform apply -var-file=dev.tfvars     (then uat.tfvars, then prod.tfvars)
# Every per-environment switch (bucket deletion, version expiry, point-in-time recovery,
# schedules, log retention, log level) follows `environment` from one map in the root module.

terraform {
  required_version = ">= 1.0.3"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 6.0.0"
    }
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = { environment = var.environment }
  }
}

variable "region" {
  description = "AWS region of this environment."
  type        = string
}

variable "environment" {
  description = "dev, uat or prod."
  type        = string
}

variable "default_image_uri" {
  description = "Image for stages whose item names none."
  type        = string
}

variable "items_pattern" {
  description = "Which files of dynamodb_items/ this environment loads."
  type        = string
}

variable "notification_emails" {
  description = "Who hears about finished and failed runs."
  type        = list(string)
  default     = []
}

module "mlops" {
  source = "../.."

  environment         = var.environment
  default_image_uri   = var.default_image_uri
  items_pattern       = var.items_pattern
  notification_emails = var.notification_emails
}

output "bucket_name" {
  description = "This environment's bucket."
  value       = module.mlops.bucket_name
}

output "pipelines" {
  description = "The pipelines this environment loaded."
  value       = module.mlops.pipelines
}
