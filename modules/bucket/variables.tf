variable "name" {
  description = "Bucket name (globally unique)."
  type        = string
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete a bucket that still holds objects (dev only)."
  type        = bool
  default     = false
}

variable "noncurrent_version_days" {
  description = "Days an overwritten or deleted object version is kept before it expires."
  type        = number
  default     = 90
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for default encryption; null uses SSE-S3 (AES256)."
  type        = string
  default     = null
}

variable "reader_accounts" {
  description = "Accounts whose roles may read the run outputs (runs/*): the root's model_consumer_accounts, which serve the models registered here. Their own IAM policies must allow it too."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for the bucket."
  type        = map(string)
  default     = {}
}
