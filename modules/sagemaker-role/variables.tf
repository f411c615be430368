variable "name" {
  description = "Role name."
  type        = string
}

variable "bucket" {
  description = "The framework's bucket: jobs read inputs and code from it and write outputs to it."
  type        = string
}

variable "input_prefix" {
  description = "Key prefix whose uploads start runs: jobs may read it but never write to it."
  type        = string
}

variable "data_buckets" {
  description = "Buckets besides var.bucket that jobs may list and read (never write)."
  type        = list(string)
  default     = []
}

variable "image_repository_arns" {
  description = "ECR repositories jobs and models may pull images from (ARNs; \"repository/*\" for a whole registry)."
  type        = list(string)

  validation {
    condition     = length(var.image_repository_arns) > 0 && alltrue([for arn in var.image_repository_arns : can(regex("^arn:[a-z-]+:ecr:[a-z0-9-]+:[0-9]{12}:repository/.+$", arn))])
    error_message = "The image_repository_arns must be at least one ECR repository ARN, e.g. \"arn:aws:ecr:eu-west-1:123456789012:repository/my-image\" (the root adds the default image's registry)."
  }
}

variable "metric_namespaces" {
  description = "CloudWatch namespaces (StringLike patterns) jobs may publish metrics in; the root adds the Model Monitor analyzer's, which the drift alarm watches."
  type        = list(string)
  default     = ["/aws/sagemaker/*"]

  validation {
    condition     = length(var.metric_namespaces) > 0
    error_message = "The metric_namespaces must name at least one namespace pattern, e.g. [\"/aws/sagemaker/*\"]."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key of the bucket, if any: jobs need it to read and write objects."
  type        = string
  default     = null
}

variable "model_source" {
  description = "The deployment whose shared packages models may be created from (the root's model_source): its bucket's run outputs are read, with its key when it has one. null for none."
  type = object({
    account_id            = string
    sagemaker_name_prefix = string
    bucket                = string
    kms_key_arn           = string
  })
  default = null
}

variable "tags" {
  description = "Tags for the role."
  type        = map(string)
  default     = {}
}
