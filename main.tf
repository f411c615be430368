# The framework: one pipeline-config table, one router, one state machine, and what they need.
# No provider block: the caller configures the AWS provider (examples/, or the local stack).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  # Every per-environment switch, in one map, so no two of them can disagree.
  environments = {
    dev = {
      force_destroy_bucket    = true
      noncurrent_version_days = 7
      point_in_time_recovery  = false
      schedules_enabled       = false
      log_retention_days      = 14
      state_machine_log_level = "ALL"
    }
    uat = {
      force_destroy_bucket    = false
      noncurrent_version_days = 30
      point_in_time_recovery  = true
      schedules_enabled       = true
      log_retention_days      = 90
      state_machine_log_level = "ERROR"
    }
    prod = {
      force_destroy_bucket    = false
      noncurrent_version_days = 90
      point_in_time_recovery  = true
      schedules_enabled       = true
      log_retention_days      = 365
      state_machine_log_level = "ERROR"
    }
  }
  settings = local.environments[var.environment]

  # What Python and Terraform agree on (generated from mlops_sfn/core/contract.py by mlops-sfn generate).
  contract = jsondecode(file("${path.module}/contract.json"))
  # SageMaker's own job metrics (/aws/sagemaker/...) and the namespace the Model Monitor analyzer
  # publishes drift in, which the drift alarms watch: it has no leading "/".
  job_metric_namespaces = ["/aws/sagemaker/*", local.contract.monitoring_metric_namespace]

  name               = "${var.name_prefix}-${var.environment}"
  sagemaker_prefix   = coalesce(var.sagemaker_name_prefix, "${local.name}-")
  bucket             = var.bucket_name == null ? module.bucket[0].name : var.bucket_name
  log_retention_days = coalesce(var.log_retention_days, local.settings.log_retention_days)
  items_folder       = coalesce(var.items_folder, "${path.module}/dynamodb_items")
  artifacts_folder   = coalesce(var.artifacts_folder, "${path.module}/sagemaker-artifacts")
  package            = "${path.module}/lambdas/functions.zip"
  tags               = merge({ "mlops-sfn:environment" = var.environment }, var.tags)
  # Jobs pull from the default image's registry (AWS publishes its framework images from one account
  # per region) and from the repositories the deployment declares, no other.
  default_registry = try(regex("^([0-9]{12})\\.dkr\\.ecr\\.([a-z0-9-]+)\\.amazonaws\\.com", var.default_image_uri), null)
  image_repository_arns = concat(
    local.default_registry == null ? [] : ["arn:${data.aws_partition.current.partition}:ecr:${local.default_registry[1]}:${local.default_registry[0]}:repository/*"],
    var.image_repository_arns,
  )
  # The model source's packages this deployment may serve, as the rules and roles name them (its bucket
  # and key are for the SageMaker role alone); null without a model_source.
  package_source = var.model_source == null ? null : {
    account_id            = var.model_source.account_id
    sagemaker_name_prefix = var.model_source.sagemaker_name_prefix
  }
  # The policy image repositories of this account need so the consumer accounts' models may pull
  # their images (ECR user guide, "Private repository policy examples"): output image_repository_policy.
  consumer_roots = [for account in var.model_consumer_accounts : "arn:${data.aws_partition.current.partition}:iam::${account}:root"]
  image_repository_policy = length(local.consumer_roots) == 0 ? null : jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "ModelConsumersPullImages"
      Effect    = "Allow"
      Principal = { AWS = local.consumer_roots }
      Action    = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    }]
  })
  # Never by default on a bucket the framework does not own: the resource replaces its whole notification set.
  bucket_notification = var.create_bucket_notification == null ? var.bucket_name == null : var.create_bucket_notification
}

module "bucket" {
  source                  = "./modules/bucket"
  count                   = var.bucket_name == null ? 1 : 0
  name                    = "${local.name}-${data.aws_caller_identity.current.account_id}-${data.aws_region.current.id}"
  force_destroy           = local.settings.force_destroy_bucket
  noncurrent_version_days = local.settings.noncurrent_version_days
  kms_key_arn             = var.kms_key_arn
  reader_accounts         = var.model_consumer_accounts
  tags                    = local.tags
}

# The test suite's local stack (provider 3.39) swaps its resource for one S3 call (docs/terraform.md).
module "bucket_events" {
  source = "./modules/bucket-events"
  count  = local.bucket_notification ? 1 : 0
  bucket = local.bucket
}

module "pipeline_config" {
  source                 = "./modules/pipeline-config"
  name                   = "${local.name}-pipelines"
  items_folder           = local.items_folder
  items_pattern          = var.items_pattern
  items_ownership        = var.items_ownership
  point_in_time_recovery = local.settings.point_in_time_recovery
  kms_key_arn            = var.kms_key_arn
  tags                   = local.tags
}

module "run_ledger" {
  source                 = "./modules/run-ledger"
  name                   = "${local.name}-run-ledger"
  point_in_time_recovery = local.settings.point_in_time_recovery
  kms_key_arn            = var.kms_key_arn
  tags                   = local.tags
}

# The policy kms_key_arn's key needs (output kms_key_policy): computed, nothing created.
module "key_policy" {
  source                  = "./modules/key-policy"
  model_consumer_accounts = var.model_consumer_accounts
}

module "notifications" {
  source              = "./modules/notifications"
  name                = local.name
  notification_emails = var.notification_emails
  approval_emails     = var.approval_emails
  kms_key_arn         = var.kms_key_arn
  tags                = local.tags
}

module "sagemaker_role" {
  source                = "./modules/sagemaker-role"
  name                  = "${local.name}-sagemaker"
  bucket                = local.bucket
  input_prefix          = var.input_prefix
  image_repository_arns = local.image_repository_arns
  data_buckets          = var.data_buckets
  kms_key_arn           = var.kms_key_arn
  metric_namespaces     = local.job_metric_namespaces
  model_source          = var.model_source
  tags                  = local.tags
}

module "state_machine" {
  source                 = "./modules/state-machine"
  name                   = local.name
  definition_template    = "${path.module}/statemachine/pipeline.asl.json"
  policy_template        = "${path.module}/statemachine/role-policy.json"
  package                = local.package
  lambda_runtime         = var.lambda_runtime
  bucket                 = local.bucket
  sagemaker_role_arn     = module.sagemaker_role.role_arn
  sagemaker_name_prefix  = local.sagemaker_prefix
  notification_topic_arn = module.notifications.notification_topic_arn
  approval_topic_arn     = module.notifications.approval_topic_arn
  ledger_table_name      = module.run_ledger.table_name
  log_level              = local.settings.state_machine_log_level
  log_retention_days     = local.log_retention_days
  kms_key_arn            = var.kms_key_arn
  model_source_account   = try(local.package_source.account_id, null)
  model_source_prefix    = try(local.package_source.sagemaker_name_prefix, null)
  handlers               = { for function in ["quality_gate", "model_copy", "smoke_test", "segments"] : function => local.contract.handlers[function] }
  tags                   = local.tags
}

module "router" {
  source                     = "./modules/router"
  name                       = local.name
  package                    = local.package
  lambda_runtime             = var.lambda_runtime
  table_name                 = module.pipeline_config.table_name
  table_arn                  = module.pipeline_config.table_arn
  ledger_table_name          = module.run_ledger.table_name
  ledger_table_arn           = module.run_ledger.table_arn
  state_machine_arn          = module.state_machine.state_machine_arn
  bucket                     = local.bucket
  input_prefix               = var.input_prefix
  sagemaker_role_arn         = module.sagemaker_role.role_arn
  default_image_uri          = var.default_image_uri
  sagemaker_name_prefix      = local.sagemaker_prefix
  image_repository_arns      = local.image_repository_arns
  data_buckets               = var.data_buckets
  model_consumer_accounts    = var.model_consumer_accounts
  model_source               = local.package_source
  deployment_tags            = local.tags
  required_tags              = var.required_tags
  alarm_topic_arn            = module.notifications.notification_topic_arn
  report_batch_item_failures = var.report_batch_item_failures
  log_retention_days         = local.log_retention_days
  kms_key_arn                = var.kms_key_arn
  handler                    = local.contract.handlers.router
  environment_names          = local.contract.router_environment
  tags                       = local.tags
}

module "triggers" {
  source                  = "./modules/triggers"
  name                    = local.name
  bucket                  = local.bucket
  input_prefix            = var.input_prefix
  sagemaker_name_prefix   = local.sagemaker_prefix
  schedules               = merge(module.pipeline_config.schedules, var.schedules)
  schedules_enabled       = local.settings.schedules_enabled
  function_arn            = module.router.function_arn
  function_name           = module.router.function_name
  dead_letter_queue_arn   = module.router.dead_letter_queue_arn
  dead_letter_queue_url   = module.router.dead_letter_queue_url
  schedule_input_template = local.contract.schedule_input_template
  drift_alarm_infix       = local.contract.drift_alarm_infix
  other_rule_arns         = compact([module.approval_events.share_rule_arn])
  package_sources = concat(
    [{ account_id = data.aws_caller_identity.current.account_id, sagemaker_name_prefix = local.sagemaker_prefix }],
    local.package_source == null ? [] : [local.package_source],
  )
  tags = local.tags
}

module "approval_events" {
  source                = "./modules/approval-events"
  name                  = local.name
  sagemaker_name_prefix = local.sagemaker_prefix
  consumer_accounts     = var.model_consumer_accounts
  source_account        = try(local.package_source.account_id, null)
  dead_letter_queue_arn = module.router.dead_letter_queue_arn
  tags                  = local.tags
}

# Uploaded after the rule and the items exist, so an upload that completes a pipeline's input starts a run.
module "artifacts" {
  source     = "./modules/artifacts"
  bucket     = local.bucket
  folder     = local.artifacts_folder
  prefix     = var.input_prefix
  tags       = local.tags
  depends_on = [module.triggers, module.pipeline_config, module.bucket_events]
}
