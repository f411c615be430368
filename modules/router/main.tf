data "aws_partition" "current" {}

locals {
  function_name = "${var.name}-router"
  bucket_arn    = "arn:${data.aws_partition.current.partition}:s3:::${var.bucket}"
  # The router's environment by the input it comes from; var.environment_names names each variable.
  environment = {
    table_name         = var.table_name
    state_machine_arn  = var.state_machine_arn
    bucket             = var.bucket
    sagemaker_role_arn = var.sagemaker_role_arn
    default_image_uri  = var.default_image_uri
    # Endpoints and model package groups an item may use (the pipeline role is scoped the same way).
    sagemaker_name_prefix = var.sagemaker_name_prefix
    # Images items name are checked against what the SageMaker role may pull.
    image_repository_arns = join(",", var.image_repository_arns)
    # Buckets items may read from, and the one key they may name (empty when there is none).
    data_buckets = join(",", var.data_buckets)
    kms_key_arn  = var.kms_key_arn == null ? "" : var.kms_key_arn
    # What a run's resources are tagged with besides the run's own, and what every item must tag.
    deployment_tags = jsonencode(var.deployment_tags)
    required_tags   = join(",", var.required_tags)
    # Accounts each package group a run registers in is shared with (register's group policy).
    model_consumer_accounts = join(",", var.model_consumer_accounts)
    # The account (and its groups' prefix) whose shared packages items may serve; empty for none.
    model_source_account = var.model_source == null ? "" : var.model_source.account_id
    model_source_prefix  = var.model_source == null ? "" : var.model_source.sagemaker_name_prefix
    # Returning batchItemFailures to a mapping without ReportBatchItemFailures would delete failed records.
    report_batch_item_failures = var.report_batch_item_failures ? "true" : "false"
    ledger_table_name          = var.ledger_table_name
  }
}

# Events the router rejected (unknown pipeline, invalid item, unparseable event) and events
# EventBridge could not deliver: kept 14 days to be fixed and replayed (docs/operations.md).
resource "aws_sqs_queue" "dead_letters" {
  name                      = "${local.function_name}-dead-letters"
  message_retention_seconds = 1209600
  kms_master_key_id         = var.kms_key_arn
  tags                      = var.tags
}

module "function" {
  source             = "../function"
  name               = local.function_name
  handler            = var.handler
  package            = var.package
  runtime            = var.lambda_runtime
  timeout_seconds    = var.timeout_seconds
  memory_mb          = 256
  log_retention_days = var.log_retention_days
  kms_key_arn        = var.kms_key_arn
  kms_actions        = ["kms:Decrypt", "kms:GenerateDataKey"] # the encrypted queue and table
  tags               = var.tags
  # What `mlops_sfn.core.router.ENVIRONMENT` reads, named by contract.json (AWS_REGION comes from the runtime).
  environment = { for input, name in var.environment_names : name => local.environment[input] }
  policy_name = "router"
  statements = [
    {
      # GetItem for the pipeline, Scan for the trigger-prefix map.
      Sid      = "ReadItems"
      Effect   = "Allow"
      Action   = ["dynamodb:GetItem", "dynamodb:Scan"]
      Resource = var.table_arn
    },
    {
      # A manifest is read, and its upload's folder listed, before its run starts (docs/concepts.md, "Triggers").
      Sid      = "CheckUploads"
      Effect   = "Allow"
      Action   = "s3:GetObject"
      Resource = "${local.bucket_arn}/${var.input_prefix}*"
    },
    {
      # A drift run carries the pipeline's latest monitoring report (constraint_violations.json).
      Sid      = "ReadDriftReports"
      Effect   = "Allow"
      Action   = "s3:GetObject"
      Resource = "${local.bucket_arn}/monitoring/*/reports/*"
    },
    {
      # An upload's folder is listed before its run starts (manifests); with step caching, so is
      # everything a cached stage reads (a stage's key covers its content) and the outputs a ledger
      # record points at (unchanged since the record). Listed, never read.
      Sid      = "ListInputs"
      Effect   = "Allow"
      Action   = "s3:ListBucket"
      Resource = concat([local.bucket_arn], [for name in var.data_buckets : "arn:${data.aws_partition.current.partition}:s3:::${name}"])
    },
    {
      # A run that fans out reads its segments' inputs from its folder; the router writes them there
      # before it starts the run (mlops_sfn.core.fanout.SEGMENTS_FOLDER), and writes nothing else.
      Sid      = "WriteSegments"
      Effect   = "Allow"
      Action   = "s3:PutObject"
      Resource = "${local.bucket_arn}/runs/*/segments/items/*"
    },
    {
      # With step caching per segment, a segment's record is reused only if the run it names wrote
      # that segment as SUCCEEDED: the Map's outcome files are read (mlops_sfn.core.fanout.RESULTS_FOLDER).
      Sid      = "ReadSegmentOutcomes"
      Effect   = "Allow"
      Action   = "s3:GetObject"
      Resource = "${local.bucket_arn}/runs/*/segments/results/*"
    },
    {
      # A fanned-out run's segments at once are bounded by SageMaker's quotas on instances per type
      # (mlops_sfn.core.fanout.within_quotas). ListServiceQuotas has no resource type: "*" only
      # (Service Authorization Reference, Service Quotas); it reads quota values, nothing else.
      Sid      = "ReadSageMakerQuotas"
      Effect   = "Allow"
      Action   = "servicequotas:ListServiceQuotas"
      Resource = "*"
    },
    {
      Sid      = "ReadLedger"
      Effect   = "Allow"
      Action   = "dynamodb:GetItem"
      Resource = var.ledger_table_arn
    },
    {
      # The cool-down of drift runs: one record per pipeline, keyed drift#<pipeline>, and no other.
      Sid       = "RecordDriftRuns"
      Effect    = "Allow"
      Action    = "dynamodb:PutItem"
      Resource  = var.ledger_table_arn
      Condition = { "ForAllValues:StringLike" = { "dynamodb:LeadingKeys" = ["drift#*"] } }
    },
    {
      Sid      = "StartRuns"
      Effect   = "Allow"
      Action   = "states:StartExecution"
      Resource = var.state_machine_arn
    },
    {
      # Whether a redelivered upload whose manifest has changed since already started its run, and
      # whether the run a ledger record names succeeded (step caching, docs/caching.md).
      Sid      = "FindRuns"
      Effect   = "Allow"
      Action   = "states:DescribeExecution"
      Resource = "${replace(var.state_machine_arn, ":stateMachine:", ":execution:")}:*"
    },
    {
      Sid      = "KeepRejectedEvents"
      Effect   = "Allow"
      Action   = "sqs:SendMessage"
      Resource = aws_sqs_queue.dead_letters.arn
    },
  ]
}

# Deployments made before the function module keep their function, role and logs.
moved {
  from = aws_iam_role.this
  to   = module.function.aws_iam_role.this
}

moved {
  from = aws_iam_role_policy.this
  to   = module.function.aws_iam_role_policy.this
}

moved {
  from = aws_cloudwatch_log_group.this
  to   = module.function.aws_cloudwatch_log_group.this
}

moved {
  from = aws_lambda_function.this
  to   = module.function.aws_lambda_function.this
}

# Asynchronous invocations (EventBridge) that still fail after two retries land in the queue.
resource "aws_lambda_function_event_invoke_config" "this" {
  function_name                = module.function.name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 21600

  destination_config {
    on_failure {
      destination = aws_sqs_queue.dead_letters.arn
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "errors" {
  alarm_name          = "${local.function_name}-errors"
  alarm_description   = "The router failed or rejected an event; the event is in the dead-letter queue."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = module.function.name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  alarm_name          = "${local.function_name}-dead-letters"
  alarm_description   = "Events wait in the dead-letter queue: fix the cause, then replay them (docs/operations.md)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dead_letters.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  tags                = var.tags
}
