variable "name" {
  description = "Name prefix of the two topics."
  type        = string
}

variable "notification_emails" {
  description = "Addresses subscribed to run summaries and alarms (each must confirm by email)."
  type        = list(string)
  default     = []
}

variable "approval_emails" {
  description = "Addresses subscribed to approval requests (each must confirm by email)."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for both topics. Its key policy must let cloudwatch.amazonaws.com use it, or alarms cannot publish."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for the topics."
  type        = map(string)
  default     = {}
}
