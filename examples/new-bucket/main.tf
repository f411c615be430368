# One environment, with a bucket the framework creates (versioned, encrypted, TLS only).
#   terraform init && terraform apply -var default_image_uri=<account>.dkr.ecr.<region>.amazonaws.com/<image>:<tag>

terraform {
  required_version = ">= 1.1"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.31, < 7.0"
    }
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = { project = "mlops" }
  }
}

variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"
}

variable "default_image_uri" {
  description = "Image for stages whose item names none, e.g. the SageMaker scikit-learn image of your region."
  type        = string
}

module "mlops" {
  source = "../.."

  environment         = "dev"
  default_image_uri   = var.default_image_uri
  notification_emails = ["ml-team@example.com"]
  approval_emails     = ["ml-approvers@example.com"]
}

output "bucket_name" {
  description = "Upload code and data under <bucket>/input/<pipeline>/ to start runs."
  value       = module.mlops.bucket_name
}

output "state_machine_arn" {
  description = "The pipeline state machine (mlops-sfn approve --state-machine)."
  value       = module.mlops.state_machine_arn
}

output "table_name" {
  description = "The pipeline-config table: edit items here to reconfigure without a deploy."
  value       = module.mlops.table_name
}
