variable "name" {
  description = "Name prefix: the function is <name>-router."
  type        = string
}

variable "package" {
  description = "Path of the Lambda zip holding router/handler.py (lambdas/functions.zip)."
  type        = string
}

variable "lambda_runtime" {
  description = "Python runtime of the router."
  type        = string
  default     = "python3.12"

  # Lambda runtimes the code is written for and that are not deprecated (python3.11 was, in 2026);
  # python3.13 needs provider 5.76 or later.
  validation {
    condition     = contains(["python3.12", "python3.13"], var.lambda_runtime)
    error_message = "The lambda_runtime must be python3.12 or python3.13."
  }
}

variable "input_prefix" {
  description = "Key prefix of the uploads: the router reads manifests and lists upload folders under it."
  type        = string
}

variable "report_batch_item_failures" {
  description = "true when every SQS event source mapping you add for the router sets function_response_types = [\"ReportBatchItemFailures\"]: the router then returns the failed records of a batch instead of failing the whole batch. This module adds no SQS source."
  type        = bool
  default     = false
}

variable "timeout_seconds" {
  description = "Router timeout: one DynamoDB read and one StartExecution per trigger, with retries."
  type        = number
  default     = 60
}

variable "table_name" {
  description = "Pipeline-config table."
  type        = string
}

variable "table_arn" {
  description = "ARN of that table."
  type        = string
}

variable "ledger_table_name" {
  description = "The run ledger's DynamoDB table, read for step caching."
  type        = string
}

variable "ledger_table_arn" {
  description = "The run ledger's table ARN."
  type        = string
}

variable "state_machine_arn" {
  description = "State machine every run starts."
  type        = string
}

variable "bucket" {
  description = "The framework's bucket."
  type        = string
}

variable "sagemaker_role_arn" {
  description = "Role SageMaker jobs run as (written into each run's requests)."
  type        = string
}

variable "default_image_uri" {
  description = "Container image for stages whose item names none."
  type        = string
}

variable "sagemaker_name_prefix" {
  description = "Endpoints and model package groups items may use start with this."
  type        = string
}

variable "image_repository_arns" {
  description = "ECR repositories the SageMaker role may pull from: items naming images elsewhere are refused."
  type        = list(string)
}

variable "data_buckets" {
  description = "Buckets besides var.bucket that jobs may read: items naming them as inputs are accepted."
  type        = list(string)
  default     = []
}

variable "model_consumer_accounts" {
  description = "Accounts that serve this deployment's model packages: each package group a run registers in is shared with them."
  type        = list(string)
  default     = []
}

variable "model_source" {
  description = "The deployment whose shared model packages items may serve (the root's model_source), or null."
  type = object({
    account_id            = string
    sagemaker_name_prefix = string
  })
  default = null
}

variable "deployment_tags" {
  description = "Tags every resource a run creates carries besides the run's own (the router puts them in its requests)."
  type        = map(string)
  default     = {}
}

variable "required_tags" {
  description = "Tag keys every item must set: the router refuses an item without one."
  type        = list(string)
  default     = []
}

variable "alarm_topic_arn" {
  description = "Topic the router's alarms publish to."
  type        = string
}

variable "log_retention_days" {
  description = "Days the router's logs are kept."
  type        = number
  default     = 365
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the dead-letter queue, logs and environment, if any."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "handler" {
  description = "The router's handler in the package, as contract.json names it (the root passes it)."
  type        = string
}

variable "environment_names" {
  description = "The environment variable the router reads each input from (module input -> variable name), as contract.json names them (the root passes them)."
  type        = map(string)
}
