# The deployment root: the framework with a provider, one state per environment.
# - Terraform Cloud (what GitLab CI drives): one workspace per environment, working directory
#   "deploy", its variables set in the workspace (environment, region, default_image_uri, ...)
#   and AWS credentials from dynamic provider credentials (TFC_AWS_PROVIDER_AUTH = true,
#   TFC_AWS_RUN_ROLE_ARN); no organisation or workspace is written here.
# - Plain Terraform: a backend of your choice (backend.tf), then per environment
#   terraform -chdir=deploy apply -var-file=../examples/environments/dev.tfvars   (uat, prod)
# Every per-environment switch follows `environment` from one map in the root module.

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
    tags = merge({ environment = var.environment }, var.tags)
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

variable "approval_emails" {
  description = "Who is asked to approve models."
  type        = list(string)
  default     = []
}

variable "bucket_name" {
  description = "An existing bucket; null creates one."
  type        = string
  default     = null
}

variable "kms_key_arn" {
  description = "A customer-managed KMS key; null uses AWS-managed encryption."
  type        = string
  default     = null
}

variable "image_repository_arns" {
  description = "ECR repositories, besides the default image's registry, that jobs may pull from."
  type        = list(string)
  default     = []
}

variable "data_buckets" {
  description = "Buckets besides the framework's that runs read data from (by name); runs write only to the framework's."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for what Terraform creates (the provider's default_tags) and for what each run creates (cost allocation, ownership)."
  type        = map(string)
  default     = {}
}

variable "required_tags" {
  description = "Tag keys every item must set (for example [\"cost-center\"])."
  type        = list(string)
  default     = []
}

variable "model_consumer_accounts" {
  description = "Accounts that serve the models this environment registers (development's: production's account), docs/promotion.md."
  type        = list(string)
  default     = []
}

variable "model_source" {
  description = "The environment whose approved packages this one serves (production's: development's output as_model_source), or null."
  type = object({
    account_id            = string
    sagemaker_name_prefix = string
    bucket                = string
    kms_key_arn           = string
  })
  default = null
}

module "mlops" {
  source = "../"

  environment           = var.environment
  default_image_uri     = var.default_image_uri
  items_pattern         = var.items_pattern
  notification_emails   = var.notification_emails
  approval_emails       = var.approval_emails
  bucket_name           = var.bucket_name
  kms_key_arn           = var.kms_key_arn
  image_repository_arns = var.image_repository_arns
  data_buckets          = var.data_buckets
  tags                  = var.tags
  required_tags         = var.required_tags

  model_consumer_accounts = var.model_consumer_accounts
  model_source            = var.model_source
}

output "as_model_source" {
  description = "This environment as a model source: the model_source value of the environments that serve its packages."
  value       = module.mlops.as_model_source
}

output "bucket_name" {
  description = "This environment's bucket."
  value       = module.mlops.bucket_name
}

output "pipelines" {
  description = "The pipelines this environment loaded."
  value       = module.mlops.pipelines
}

output "state_machine_arn" {
  description = "The pipeline state machine (MLOPS_STATE_MACHINE_ARN for mlops-sfn approve)."
  value       = module.mlops.state_machine_arn
}

output "table_name" {
  description = "The pipeline-config table."
  value       = module.mlops.table_name
}

output "run_ledger_table_name" {
  description = "The run ledger (step caching)."
  value       = module.mlops.run_ledger_table_name
}

output "dead_letter_queue_url" {
  description = "Rejected events wait here for a fix and a replay."
  value       = module.mlops.dead_letter_queue_url
}

# What `mlops-sfn validate --outputs` reads: `terraform output -json > outputs.json` here.
output "sagemaker_role_arn" {
  description = "Role SageMaker jobs and models run as."
  value       = module.mlops.sagemaker_role_arn
}

output "image_uri" {
  description = "Default container image of stages whose item names none."
  value       = module.mlops.image_uri
}

output "sagemaker_name_prefix" {
  description = "Endpoints, model package groups and alarms items may touch start with this."
  value       = module.mlops.sagemaker_name_prefix
}

output "image_repository_arns" {
  description = "ECR repositories the SageMaker role may pull images from."
  value       = module.mlops.image_repository_arns
}

output "data_buckets" {
  description = "Buckets besides the framework's that runs may read."
  value       = module.mlops.data_buckets
}

output "kms_key_arn" {
  description = "The customer-managed KMS key, if any."
  value       = module.mlops.kms_key_arn
}

output "region" {
  description = "The region this environment is deployed in."
  value       = module.mlops.region
}

# What the operator commands (`mlops-sfn run | runs | status | items --outputs outputs.json`) need besides.
output "router_function_arn" {
  description = "The router: `mlops-sfn run` starts runs through it."
  value       = module.mlops.router_function_arn
}

output "items_ownership" {
  description = "Who owns the table's items: \"seeded\" (edits and `mlops-sfn items push`) or \"terraform\" (applies)."
  value       = module.mlops.items_ownership
}
