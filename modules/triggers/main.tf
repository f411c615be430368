locals {
  # Rule names are at most 64 characters: long pipeline names are cut and made unique with a hash.
  schedule_rules = {
    for pipeline, expression in var.schedules : pipeline => {
      expression = expression
      name = (length("${var.name}-${pipeline}-schedule") <= 64 ? "${var.name}-${pipeline}-schedule"
      : "${substr("${var.name}-${pipeline}", 0, 46)}-${substr(sha1(pipeline), 0, 8)}-schedule")
    } if var.schedules_enabled
  }
  # Every target's delivery: EventBridge's longest retry (24 hours, 185 attempts), then the dead-letter queue.
  delivery = { maximum_event_age_in_seconds = 86400, maximum_retry_attempts = 185 }
  rule_arns = concat(
    [aws_cloudwatch_event_rule.uploads.arn, aws_cloudwatch_event_rule.drift.arn, aws_cloudwatch_event_rule.approvals.arn],
    [for rule in aws_cloudwatch_event_rule.schedules : rule.arn],
    var.other_rule_arns,
  )
}

# Every object created under the input prefix; the router finds the pipeline from the key.
resource "aws_cloudwatch_event_rule" "uploads" {
  name        = "${var.name}-uploads"
  description = "Objects created under s3://${var.bucket}/${var.input_prefix}"
  tags        = var.tags
  event_pattern = jsonencode({
    source        = ["aws.s3"]
    "detail-type" = ["Object Created"]
    detail = {
      bucket = { name = [var.bucket] }
      object = { key = [{ prefix = var.input_prefix }] }
    }
  })
}

resource "aws_cloudwatch_event_target" "uploads" {
  rule = aws_cloudwatch_event_rule.uploads.name
  arn  = var.function_arn

  retry_policy {
    maximum_event_age_in_seconds = local.delivery.maximum_event_age_in_seconds
    maximum_retry_attempts       = local.delivery.maximum_retry_attempts
  }

  dead_letter_config {
    arn = var.dead_letter_queue_arn
  }
}

# Only where schedules are on: is_enabled is deprecated in provider 5.x and its successor `state`
# is unknown to 3.39, so a switched-off schedule is no rule at all.
resource "aws_cloudwatch_event_rule" "schedules" {
  for_each            = local.schedule_rules
  name                = each.value.name
  description         = "Runs pipeline ${each.key} on ${each.value.expression}"
  schedule_expression = each.value.expression
  tags                = var.tags
}

# The router reads the pipeline from detail.consumption_pipeline_name, the time and rule from the event.
resource "aws_cloudwatch_event_target" "schedules" {
  for_each = local.schedule_rules
  rule     = aws_cloudwatch_event_rule.schedules[each.key].name
  arn      = var.function_arn

  input_transformer {
    input_paths = {
      time      = "$.time"
      resources = "$.resources"
    }
    input_template = replace(var.schedule_input_template, "<pipeline>", jsonencode(each.key))
  }

  retry_policy {
    maximum_event_age_in_seconds = local.delivery.maximum_event_age_in_seconds
    maximum_retry_attempts       = local.delivery.maximum_retry_attempts
  }

  dead_letter_config {
    arn = var.dead_letter_queue_arn
  }
}

# A pipeline's drift alarm going to ALARM (its monitoring stage names it <prefix>drift-<pipeline>): the
# router starts the run the item's stages.monitoring.retrain asks for. CloudWatch sends every alarm
# state change to EventBridge ("Alarm events and EventBridge").
resource "aws_cloudwatch_event_rule" "drift" {
  name        = "${var.name}-drift"
  description = "Drift alarms of monitored endpoints (${var.sagemaker_name_prefix}${var.drift_alarm_infix}<pipeline>) going to ALARM"
  tags        = var.tags
  event_pattern = jsonencode({
    source        = ["aws.cloudwatch"]
    "detail-type" = ["CloudWatch Alarm State Change"]
    detail = {
      alarmName = [{ prefix = "${var.sagemaker_name_prefix}${var.drift_alarm_infix}" }]
      state     = { value = ["ALARM"] }
    }
  })
}

resource "aws_cloudwatch_event_target" "drift" {
  rule = aws_cloudwatch_event_rule.drift.name
  arn  = var.function_arn

  retry_policy {
    maximum_event_age_in_seconds = local.delivery.maximum_event_age_in_seconds
    maximum_retry_attempts       = local.delivery.maximum_retry_attempts
  }

  dead_letter_config {
    arn = var.dead_letter_queue_arn
  }
}

# A model package approved in one of the groups the deployment may serve: its own (its account, its
# prefix) and its model source's, whose events the source forwards to this account's default bus
# (modules/approval-events). The router starts the item whose trigger.model_package_group is the
# package's group, if any. SageMaker sends a package's state changes to EventBridge ("Events that
# Amazon SageMaker sends to Amazon EventBridge", model package state change).
resource "aws_cloudwatch_event_rule" "approvals" {
  name        = "${var.name}-package-approved"
  description = "Model packages approved in groups starting with ${join(" or ", [for source in var.package_sources : source.sagemaker_name_prefix])}"
  tags        = var.tags
  event_pattern = jsonencode({
    source        = ["aws.sagemaker"]
    "detail-type" = ["SageMaker Model Package State Change"]
    account       = distinct([for source in var.package_sources : source.account_id])
    detail = {
      ModelApprovalStatus   = ["Approved"]
      ModelPackageGroupName = [for source in var.package_sources : { prefix = source.sagemaker_name_prefix }]
    }
  })
}

resource "aws_cloudwatch_event_target" "approvals" {
  rule = aws_cloudwatch_event_rule.approvals.name
  arn  = var.function_arn

  retry_policy {
    maximum_event_age_in_seconds = local.delivery.maximum_event_age_in_seconds
    maximum_retry_attempts       = local.delivery.maximum_retry_attempts
  }

  dead_letter_config {
    arn = var.dead_letter_queue_arn
  }
}

resource "aws_lambda_permission" "approvals" {
  statement_id  = "approvals"
  action        = "lambda:InvokeFunction"
  function_name = var.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.approvals.arn
}

resource "aws_lambda_permission" "drift" {
  statement_id  = "drift"
  action        = "lambda:InvokeFunction"
  function_name = var.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.drift.arn
}

resource "aws_lambda_permission" "uploads" {
  statement_id  = "uploads"
  action        = "lambda:InvokeFunction"
  function_name = var.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.uploads.arn
}

resource "aws_lambda_permission" "schedules" {
  for_each      = local.schedule_rules
  statement_id  = "schedule-${substr(sha1(each.key), 0, 16)}"
  action        = "lambda:InvokeFunction"
  function_name = var.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.schedules[each.key].arn
}

# EventBridge may put undeliverable events in the queue, for these rules only.
resource "aws_sqs_queue_policy" "dead_letters" {
  queue_url = var.dead_letter_queue_url
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "UndeliverableEvents"
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = var.dead_letter_queue_arn
      Condition = { ArnEquals = { "aws:SourceArn" = local.rule_arns } }
    }]
  })
}
