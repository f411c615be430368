variable "name" {
  description = "Name prefix of the rules."
  type        = string
}

variable "bucket" {
  description = "Bucket whose uploads start runs."
  type        = string
}

variable "input_prefix" {
  description = "Key prefix under which an upload starts a run (each item's trigger.prefix lies under it)."
  type        = string
}

variable "sagemaker_name_prefix" {
  description = "The deployment's SageMaker name prefix, which starts its drift alarms' names."
  type        = string
}

variable "schedules" {
  description = "Pipeline name -> EventBridge schedule expression, e.g. \"cron(0 6 ? * MON *)\" or \"rate(1 day)\"."
  type        = map(string)
  default     = {}
}

variable "schedules_enabled" {
  description = "Whether the schedules run: false deploys no schedule rule."
  type        = bool
  default     = true
}

variable "function_arn" {
  description = "Router function every rule targets."
  type        = string
}

variable "function_name" {
  description = "Name of that function."
  type        = string
}

variable "dead_letter_queue_arn" {
  description = "Queue for events EventBridge cannot deliver to the router."
  type        = string
}

variable "dead_letter_queue_url" {
  description = "URL of that queue (its policy is set here, where the rules are known)."
  type        = string
}

variable "tags" {
  description = "Tags for the rules."
  type        = map(string)
  default     = {}
}

variable "schedule_input_template" {
  description = "What a schedule rule sends the router, <pipeline> standing for the pipeline's name as a JSON string, as contract.json gives it (the root passes it)."
  type        = string
}

variable "drift_alarm_infix" {
  description = "What follows the name prefix in a drift alarm's name (<prefix><infix><pipeline>), as contract.json gives it (the root passes it)."
  type        = string
}

variable "package_sources" {
  description = "Whose approved model packages may start runs: this deployment's account and name prefix, and its model source's (root variable model_source)."
  type = list(object({
    account_id            = string
    sagemaker_name_prefix = string
  }))

  validation {
    condition     = length(var.package_sources) > 0
    error_message = "The package_sources must name at least the deployment itself: {account_id, sagemaker_name_prefix}."
  }
}

variable "other_rule_arns" {
  description = "Rules of other modules whose undeliverable events go to the dead-letter queue too (sharing approvals with consumer accounts)."
  type        = list(string)
  default     = []
}
