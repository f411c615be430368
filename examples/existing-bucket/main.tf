# One environment on a bucket you already have, encrypted with your own KMS key.
# The framework uploads sagemaker-artifacts/ under input/ and writes runs under runs/; it does
# not change the bucket's own settings, its notification configuration included (the default for
# an existing bucket): turn on EventBridge delivery once, keeping the bucket's other notifications,
# with the commands in docs/deploying.md ("An existing bucket").

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
}

variable "region" {
  description = "AWS region of the bucket."
  type        = string
  default     = "eu-west-1"
}

variable "bucket_name" {
  description = "The existing bucket."
  type        = string
}

variable "kms_key_arn" {
  description = "The customer-managed key that encrypts the bucket; the table, topics, queue and logs use it too."
  type        = string
}

variable "default_image_uri" {
  description = "Image for stages whose item names none."
  type        = string
}

module "mlops" {
  source = "../.."

  environment       = "prod"
  bucket_name       = var.bucket_name
  kms_key_arn       = var.kms_key_arn
  default_image_uri = var.default_image_uri
  items_ownership   = "seeded"
  tags              = { cost-center = "ml-platform" }
}

output "router_function_arn" {
  description = "The router Lambda."
  value       = module.mlops.router_function_arn
}

output "dead_letter_queue_url" {
  description = "Rejected events wait here for a fix and a replay."
  value       = module.mlops.dead_letter_queue_url
}
