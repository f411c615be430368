variable "name" {
  description = "Name prefix: the state machine is <name>-pipeline, its functions <name>-quality-gate, <name>-model-copy, <name>-smoke-test."
  type        = string
}

variable "definition_template" {
  description = "Path of the state machine template (statemachine/pipeline.asl.json)."
  type        = string
}

variable "policy_template" {
  description = "Path of the role-policy template derived from the definition (statemachine/role-policy.json)."
  type        = string
}

variable "package" {
  description = "Path of the Lambda zip holding the functions' handlers (lambdas/functions.zip)."
  type        = string
}

variable "lambda_runtime" {
  description = "Python runtime of the quality-gate, model-copy and smoke-test functions."
  type        = string
  default     = "python3.12"

  # Lambda runtimes the code is written for and that are not deprecated (python3.11 was, in 2026);
  # python3.13 needs provider 5.76 or later.
  validation {
    condition     = contains(["python3.12", "python3.13"], var.lambda_runtime)
    error_message = "The lambda_runtime must be python3.12 or python3.13."
  }
}

variable "bucket" {
  description = "The framework's bucket: the quality gate reads reports from it, the model copy copies models in it."
  type        = string
}

variable "sagemaker_role_arn" {
  description = "Role the SageMaker jobs and models run as; the state machine passes it."
  type        = string
}

variable "notification_topic_arn" {
  description = "Topic for run summaries; alarms publish there too."
  type        = string
}

variable "approval_topic_arn" {
  description = "Topic for approval requests."
  type        = string
}

variable "ledger_table_name" {
  description = "The run ledger's DynamoDB table: succeeded stages are recorded there for step caching."
  type        = string
}

variable "log_level" {
  description = "Execution history sent to CloudWatch Logs: ALL, ERROR, FATAL or OFF (execution data is never included)."
  type        = string
  default     = "ERROR"

  validation {
    condition     = contains(["ALL", "ERROR", "FATAL", "OFF"], var.log_level)
    error_message = "The log_level must be one of ALL, ERROR, FATAL, OFF."
  }
}

variable "log_retention_days" {
  description = "Days the state machine's and the quality gate's logs are kept."
  type        = number
  default     = 365
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key of the bucket, topics and logs, if any."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "sagemaker_name_prefix" {
  description = "Endpoints and model package groups items may use start with this; the smoke test may invoke only these endpoints."
  type        = string
}

variable "model_source_account" {
  description = "The account whose shared model packages runs may serve (root variable model_source); null for none."
  type        = string
  default     = null
}

variable "model_source_prefix" {
  description = "The start of the model source's package group names: the role may read packages of those groups only."
  type        = string
  default     = null
}

variable "handlers" {
  description = "Each function's handler in the package, as contract.json names them (the root passes them)."
  type = object({
    quality_gate = string
    model_copy   = string
    smoke_test   = string
    segments     = string
  })
}
