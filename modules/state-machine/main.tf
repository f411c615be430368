data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition = data.aws_partition.current.partition
  region    = data.aws_region.current.id
  account   = data.aws_caller_identity.current.account_id
  # The same variables `mlops_sfn.tools.statemachine.render` and `mlops_sfn.tools.policy.render_policy` take.
  definition_variables = {
    notification_topic_arn    = var.notification_topic_arn
    approval_topic_arn        = var.approval_topic_arn
    quality_gate_function_arn = module.quality_gate.arn
    model_copy_function_arn   = module.model_copy.arn
    smoke_test_function_arn   = module.smoke_test.arn
    segments_function_arn     = module.segments.arn
    ledger_table_name         = var.ledger_table_name
  }
  policy_variables = merge(local.definition_variables, {
    partition             = local.partition
    region                = local.region
    account_id            = local.account
    sagemaker_role_arn    = var.sagemaker_role_arn
    sagemaker_name_prefix = var.sagemaker_name_prefix
    # Without a model source the statement naming its packages names the deployment's own.
    model_source_account = coalesce(var.model_source_account, local.account)
    model_source_prefix  = coalesce(var.model_source_prefix, var.sagemaker_name_prefix)
    bucket               = var.bucket
    # Its own name, not its ARN: the policy exists before the state machine (which depends on it).
    state_machine_name = local.state_machine_name
  })
  state_machine_name = "${var.name}-pipeline"
}

# --- The state machine's functions: the quality gate, the model copy, the smoke test ---

module "quality_gate" {
  source             = "../function"
  name               = "${var.name}-quality-gate"
  handler            = var.handlers.quality_gate
  package            = var.package
  runtime            = var.lambda_runtime
  timeout_seconds    = 10
  log_retention_days = var.log_retention_days
  kms_key_arn        = var.kms_key_arn
  kms_actions        = ["kms:Decrypt"] # encrypted reports
  tags               = var.tags
  policy_name        = "logs-and-report"
  statements = [{
    # The function reads the evaluation report itself (stages.evaluation.report_uri, in the bucket).
    Sid      = "ReadReport"
    Effect   = "Allow"
    Action   = ["s3:GetObject"]
    Resource = "arn:${local.partition}:s3:::${var.bucket}/*"
  }]
}

# Deployments made before the function module keep their function, role and logs (the separate
# KMS policy became a statement of the role's policy).
moved {
  from = aws_iam_role.quality_gate
  to   = module.quality_gate.aws_iam_role.this
}

moved {
  from = aws_iam_role_policy.quality_gate
  to   = module.quality_gate.aws_iam_role_policy.this
}

moved {
  from = aws_cloudwatch_log_group.quality_gate
  to   = module.quality_gate.aws_cloudwatch_log_group.this
}

moved {
  from = aws_lambda_function.quality_gate
  to   = module.quality_gate.aws_lambda_function.this
}

module "model_copy" {
  source             = "../function"
  name               = "${var.name}-model-copy"
  handler            = var.handlers.model_copy
  package            = var.package
  runtime            = var.lambda_runtime
  timeout_seconds    = 900 # Lambda's maximum: a server-side copy of tens of GB in 256 MiB parts
  memory_mb          = 256
  log_retention_days = var.log_retention_days
  kms_key_arn        = var.kms_key_arn
  kms_actions        = ["kms:Decrypt", "kms:GenerateDataKey"] # encrypted models, read and written
  tags               = var.tags
  policy_name        = "logs-and-models"
  statements = [
    {
      # The best job's model, wherever the tuning request's S3OutputPath puts it in the bucket.
      Sid      = "ReadModels"
      Effect   = "Allow"
      Action   = ["s3:GetObject"]
      Resource = "arn:${local.partition}:s3:::${var.bucket}/*"
    },
    {
      # The copies' places: tuning's best model (mlops_sfn.core.stages.model_data_url), an on-demand
      # training job's model where the spot job's was planned (mlops_sfn.core.stages.training), and each
      # segment's model where a fanned-out run's endpoint loads it (mlops_sfn.core.fanout.MODELS_FOLDER).
      # A multipart copy needs PutObject for each part and AbortMultipartUpload to clean up after a failure.
      Sid    = "WriteRunModels"
      Effect = "Allow"
      Action = ["s3:PutObject", "s3:AbortMultipartUpload"]
      Resource = [
        "arn:${local.partition}:s3:::${var.bucket}/runs/*/tuning/best/model.tar.gz",
        "arn:${local.partition}:s3:::${var.bucket}/runs/*/training/*/output/model.tar.gz",
        "arn:${local.partition}:s3:::${var.bucket}/runs/*/segments/models/*",
      ]
    },
  ]
}

module "smoke_test" {
  source             = "../function"
  name               = "${var.name}-smoke-test"
  handler            = var.handlers.smoke_test
  package            = var.package
  runtime            = var.lambda_runtime
  timeout_seconds    = 75 # an endpoint has 60 s to answer InvokeEndpoint, then the SDK's retries
  memory_mb          = 256
  log_retention_days = var.log_retention_days
  kms_key_arn        = var.kms_key_arn
  kms_actions        = ["kms:Decrypt", "kms:GenerateDataKey"] # an async request written, its answer read
  tags               = var.tags
  policy_name        = "logs-and-endpoints"
  statements = [
    {
      # The endpoint the run deployed: items name endpoints inside the deployment's prefix.
      Sid      = "InvokeDeployedEndpoints"
      Effect   = "Allow"
      Action   = ["sagemaker:InvokeEndpoint"]
      Resource = "arn:${local.partition}:sagemaker:${local.region}:${local.account}:endpoint/${var.sagemaker_name_prefix}*"
    },
    {
      # A fanned-out run's multi-model endpoint: the first model its segments published is the one
      # the test asks (mlops_sfn.core.smoke_test.first_model), and listing reads no object.
      Sid       = "ListServedModels"
      Effect    = "Allow"
      Action    = "s3:ListBucket"
      Resource  = "arn:${local.partition}:s3:::${var.bucket}"
      Condition = { StringLike = { "s3:prefix" = ["runs/*/segments/models/*", "inference/*"] } }
    },
    {
      # An asynchronous endpoint is asked through S3: the request written under its pipeline's
      # inference folder, the answer (or error) read where the endpoint writes it by default.
      Sid      = "InvokeAsyncEndpoints"
      Effect   = "Allow"
      Action   = ["sagemaker:InvokeEndpointAsync"]
      Resource = "arn:${local.partition}:sagemaker:${local.region}:${local.account}:endpoint/${var.sagemaker_name_prefix}*"
    },
    {
      Sid      = "WriteAsyncRequests"
      Effect   = "Allow"
      Action   = ["s3:PutObject"]
      Resource = "arn:${local.partition}:s3:::${var.bucket}/inference/*/smoke-tests/*"
    },
    {
      Sid    = "ReadAsyncAnswers"
      Effect = "Allow"
      Action = ["s3:GetObject"]
      Resource = [
        "arn:${local.partition}:s3:::${var.bucket}/inference/*/output/*",
        "arn:${local.partition}:s3:::${var.bucket}/inference/*/failures/*",
      ]
    },
  ]
}

module "segments" {
  source             = "../function"
  name               = "${var.name}-segments"
  handler            = var.handlers.segments
  package            = var.package
  runtime            = var.lambda_runtime
  timeout_seconds    = 60 # reads a Map Run's result files: megabytes for thousands of segments
  memory_mb          = 256
  log_retention_days = var.log_retention_days
  kms_key_arn        = var.kms_key_arn
  kms_actions        = ["kms:Decrypt"] # encrypted result files
  tags               = var.tags
  policy_name        = "logs-and-segment-results"
  statements = [
    {
      # The newest manifest of a fanned-out run's results (mlops_sfn.core.fanout.RESULTS_FOLDER).
      Sid       = "ListSegmentResults"
      Effect    = "Allow"
      Action    = "s3:ListBucket"
      Resource  = "arn:${local.partition}:s3:::${var.bucket}"
      Condition = { StringLike = { "s3:prefix" = ["runs/*/segments/results/*"] } }
    },
    {
      Sid      = "ReadSegmentResults"
      Effect   = "Allow"
      Action   = "s3:GetObject"
      Resource = "arn:${local.partition}:s3:::${var.bucket}/runs/*/segments/results/*"
    },
  ]
}

# --- The state machine ---

resource "aws_iam_role" "state_machine" {
  name = "${var.name}-pipeline"
  tags = var.tags
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "states.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account } }
    }]
  })
}

# What the definition's Task states call, derived from them (mlops_sfn.tools.policy).
resource "aws_iam_role_policy" "pipeline" {
  name   = "pipeline"
  role   = aws_iam_role.state_machine.id
  policy = templatefile(var.policy_template, local.policy_variables)
}

resource "aws_iam_role_policy" "observability" {
  name = "logs-and-tracing"
  role = aws_iam_role.state_machine.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
      {
        # Log delivery and X-Ray actions have no resource-level permissions: AWS requires "*".
        Sid    = "LogDeliveryAndTracing"
        Effect = "Allow"
        Action = [
          "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
          "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies",
          "logs:DescribeLogGroups", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
          "xray:GetSamplingRules", "xray:GetSamplingTargets",
        ]
        Resource = "*"
      },
      ], var.kms_key_arn == null ? [] : [{
        Sid      = "EncryptedTopicsAndObjects"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = var.kms_key_arn
    }])
  })
}

resource "aws_cloudwatch_log_group" "state_machine" {
  name              = "/aws/vendedlogs/states/${var.name}-pipeline"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_sfn_state_machine" "this" {
  # checkov:skip=CKV_AWS_285: execution history is logged (log_level) without execution data, which may hold item values
  name       = local.state_machine_name
  role_arn   = aws_iam_role.state_machine.arn
  definition = templatefile(var.definition_template, local.definition_variables)
  tags       = var.tags

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.state_machine.arn}:*"
    include_execution_data = false # inputs and outputs stay in the execution history only
    level                  = var.log_level
  }

  tracing_configuration {
    enabled = true
  }

  depends_on = [aws_iam_role_policy.pipeline, aws_iam_role_policy.observability]
}

# --- Alarms: any failed or timed-out run in five minutes ---

resource "aws_cloudwatch_metric_alarm" "runs" {
  for_each            = toset(["ExecutionsFailed", "ExecutionsTimedOut"])
  alarm_name          = "${var.name}-pipeline-${each.value}"
  alarm_description   = "A pipeline run ended ${each.value == "ExecutionsFailed" ? "failed" : "timed out"}: see the run summary on the notification topic."
  namespace           = "AWS/States"
  metric_name         = each.value
  dimensions          = { StateMachineArn = aws_sfn_state_machine.this.arn }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.notification_topic_arn]
  tags                = var.tags
}
