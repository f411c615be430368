variable "name" {
  description = "Table name."
  type        = string
}

variable "point_in_time_recovery" {
  description = "Continuous backups of the table (restore to any second of the last 35 days)."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the table; null uses the AWS-managed key (aws/dynamodb)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for the table."
  type        = map(string)
  default     = {}
}
