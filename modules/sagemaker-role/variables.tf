variable "name" {
  description = "Role name."
  type        = string
}

variable "bucket" {
  description = "The framework's bucket: jobs read inputs and code from it and write outputs to it."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key of the bucket, if any: jobs need it to read and write objects."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for the role."
  type        = map(string)
  default     = {}
}
