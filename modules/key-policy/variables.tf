variable "model_consumer_accounts" {
  description = "Accounts that serve the deployment's model packages (the root's model_consumer_accounts): they may decrypt its run outputs through S3."
  type        = list(string)
  default     = []
}
