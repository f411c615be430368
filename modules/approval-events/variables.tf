variable "name" {
  description = "Name prefix of the rule, role and bus policy statement."
  type        = string
}

variable "sagemaker_name_prefix" {
  description = "The deployment's SageMaker name prefix: the groups whose approvals are sent to the consumers."
  type        = string
}

variable "consumer_accounts" {
  description = "Accounts whose default bus receives the approvals of the deployment's packages (the root's model_consumer_accounts)."
  type        = list(string)
  default     = []
}

variable "source_account" {
  description = "The model source's account, which may put events on this account's default bus (the root's model_source); null for none."
  type        = string
  default     = null
}

variable "dead_letter_queue_arn" {
  description = "Queue for approvals EventBridge cannot deliver to a consumer's bus (the router's dead-letter queue)."
  type        = string
}

variable "tags" {
  description = "Tags for the rule and role."
  type        = map(string)
  default     = {}
}
