variable "name" {
  description = "Table name."
  type        = string
}

variable "items_folder" {
  description = "Folder holding the item files (<name>.json) and their DynamoDB JSON copies (typed/<name>.json, written by `mlops-sfn generate`)."
  type        = string
}

variable "items_pattern" {
  description = "Which item files in items_folder to load, as a glob, e.g. \"*.json\" or \"*-prod-*.json\"."
  type        = string
  default     = "*.json"
}

variable "items_ownership" {
  description = "\"seeded\": written once, then owned by console and API edits (an apply never reverts them); \"terraform\": every apply makes the table match the files (plan shows the edits it reverts)."
  type        = string
  default     = "seeded"

  validation {
    condition     = contains(["seeded", "terraform"], var.items_ownership)
    error_message = "The items_ownership must be \"seeded\" or \"terraform\"."
  }
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
