output "bucket_name" {
  description = "The framework's bucket: uploads under input_prefix, code, run outputs."
  value       = local.bucket
}

output "sagemaker_role_arn" {
  description = "Role SageMaker jobs and models run as."
  value       = module.sagemaker_role.role_arn
}

output "image_uri" {
  description = "Default container image of stages whose item names none."
  value       = var.default_image_uri
}

output "state_machine_arn" {
  description = "The pipeline state machine (MLOPS_STATE_MACHINE_ARN for `mlops-sfn approve`)."
  value       = module.state_machine.state_machine_arn
}

output "router_function_arn" {
  description = "The router Lambda function."
  value       = module.router.function_arn
}

output "table_name" {
  description = "The pipeline-config table (one item per pipeline)."
  value       = module.pipeline_config.table_name
}

output "run_ledger_table_name" {
  description = "The run ledger: the stages runs recorded for step caching."
  value       = module.run_ledger.table_name
}

output "pipelines" {
  description = "Pipelines whose items were loaded."
  value       = module.pipeline_config.pipelines
}

output "notification_topic_arn" {
  description = "Topic for run summaries and alarms."
  value       = module.notifications.notification_topic_arn
}

output "approval_topic_arn" {
  description = "Topic for approval requests."
  value       = module.notifications.approval_topic_arn
}

output "dead_letter_queue_url" {
  description = "Queue of rejected and undeliverable events, to fix and replay."
  value       = module.router.dead_letter_queue_url
}

output "input_prefix" {
  description = "Key prefix whose uploads start runs."
  value       = var.input_prefix
}

# What `mlops-sfn validate --outputs` checks items against (the router has the same in its environment).
output "sagemaker_name_prefix" {
  description = "Endpoints, model package groups and alarms items may touch start with this."
  value       = local.sagemaker_prefix
}

output "image_repository_arns" {
  description = "ECR repositories the SageMaker role may pull images from (the default image's registry included)."
  value       = local.image_repository_arns
}

output "deployment_tags" {
  description = "The tags every resource a run creates carries besides the run's own (validate --outputs reads them)."
  value       = local.tags
}

output "required_tags" {
  description = "Tag keys every item must set (validate --outputs refuses an item without one)."
  value       = var.required_tags
}

output "data_buckets" {
  description = "Buckets besides the framework's that runs may read (validate --outputs accepts them as inputs)."
  value       = var.data_buckets
}

output "model_consumer_accounts" {
  description = "Accounts each model package group a run registers in is shared with (validate --outputs plans the same policy)."
  value       = var.model_consumer_accounts
}

output "model_source_account" {
  description = "The account whose shared model packages items may serve besides this deployment's own (\"\" for none)."
  value       = var.model_source == null ? "" : var.model_source.account_id
}

output "model_source_prefix" {
  description = "The start of the model source's package group names items may serve (\"\" for none)."
  value       = var.model_source == null ? "" : var.model_source.sagemaker_name_prefix
}

output "image_repository_policy" {
  description = "With model_consumer_accounts: the repository policy (JSON) this account's image repositories need so the consumers' models may pull their images; set it on each (or merge its statement). The framework changes no repository it does not own. null without consumers."
  value       = local.image_repository_policy
}

output "as_model_source" {
  description = "This deployment as a model source: the value a consumer deployment (listed in model_consumer_accounts) sets as its model_source to serve the packages registered here."
  value = {
    account_id            = data.aws_caller_identity.current.account_id
    sagemaker_name_prefix = local.sagemaker_prefix
    bucket                = local.bucket
    kms_key_arn           = var.kms_key_arn
  }
}

output "kms_key_arn" {
  description = "The customer-managed KMS key, if any: the only key items may name (validate --outputs)."
  value       = var.kms_key_arn
}

output "kms_key_policy" {
  description = "The policy a customer-managed key must have (or include) to serve as kms_key_arn: the account's roles, CloudWatch Logs, alarms and EventBridge."
  value       = module.key_policy.policy
}

output "region" {
  description = "The region the framework is deployed in."
  value       = data.aws_region.current.id
}

# What the operator commands (`mlops-sfn run | runs | status | items`) act on with --outputs.
output "items_ownership" {
  description = "Who owns the table's items: \"seeded\" (edits and `mlops-sfn items push`) or \"terraform\" (applies)."
  value       = var.items_ownership
}
