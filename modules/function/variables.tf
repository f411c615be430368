variable "name" {
  description = "The function's name; its role and log group (/aws/lambda/<name>) take it too."
  type        = string
}

variable "handler" {
  description = "The handler in the zip, as contract.json names it (e.g. router.handler.handler)."
  type        = string
}

variable "package" {
  description = "Path of the Lambda zip (lambdas/functions.zip)."
  type        = string
}

variable "runtime" {
  description = "Python runtime of the function."
  type        = string
}

variable "timeout_seconds" {
  description = "The function's timeout."
  type        = number
}

variable "memory_mb" {
  description = "The function's memory."
  type        = number
  default     = 128
}

variable "environment" {
  description = "Environment variables; encrypted with kms_key_arn when both are given."
  type        = map(string)
  default     = {}
}

variable "policy_name" {
  description = "Name of the role's inline policy."
  type        = string
}

variable "statements" {
  description = "What the function may do besides writing its logs: IAM policy statements (Sid, Effect, Action, Resource, Condition)."
  type        = any
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key of the deployment, if any: encrypts the log group (and the environment), and the role may use it for kms_actions."
  type        = string
  default     = null
}

variable "kms_actions" {
  description = "What the role may do with kms_key_arn (the data the function reads or writes is encrypted with it)."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Days the function's logs are kept."
  type        = number
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
