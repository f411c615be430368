# Approvals crossing accounts: the account that trains sends its packages' approvals to each consumer
# account's default event bus; a consumer lets its model source put events on its bus. There, the
# package-approval rule (modules/triggers) hands them to the router. "Permissions for event buses in
# Amazon EventBridge": the receiving bus's resource policy allows the sending account's PutEvents,
# and a rule whose target is an event bus should send with an IAM role.
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  partition = data.aws_partition.current.partition
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.id
  # EventBridge sends to a bus of another account in the same region only.
  consumer_buses = { for account in var.consumer_accounts : account => "arn:${local.partition}:events:${local.region}:${account}:event-bus/default" }
  sharing        = length(var.consumer_accounts) > 0
}

# Only approvals, only of the deployment's groups: rejections and other packages stay here.
resource "aws_cloudwatch_event_rule" "share" {
  count       = local.sharing ? 1 : 0
  name        = "${var.name}-share-approvals"
  description = "Model packages approved in groups starting with ${var.sagemaker_name_prefix}, sent to the consumer accounts' default buses"
  tags        = var.tags
  event_pattern = jsonencode({
    source        = ["aws.sagemaker"]
    "detail-type" = ["SageMaker Model Package State Change"]
    account       = [local.account]
    detail = {
      ModelApprovalStatus   = ["Approved"]
      ModelPackageGroupName = [{ prefix = var.sagemaker_name_prefix }]
    }
  })
}

resource "aws_iam_role" "share" {
  count = local.sharing ? 1 : 0
  name  = "${var.name}-share-approvals"
  tags  = var.tags
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account } }
    }]
  })
}

resource "aws_iam_role_policy" "share" {
  count = local.sharing ? 1 : 0
  name  = "put-on-consumer-buses"
  role  = aws_iam_role.share[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "ConsumerBuses"
      Effect   = "Allow"
      Action   = "events:PutEvents"
      Resource = values(local.consumer_buses)
    }]
  })
}

# An approval the consumer's bus refuses (its policy lacks the statement below) is kept in the router's
# dead-letter queue, with the other undeliverable events, where it can be found. It is not for this
# account's replay (its router would read it as its own approval): once the bus takes events, the
# consumer serves the package with mlops-sfn promote.
resource "aws_cloudwatch_event_target" "share" {
  for_each = local.consumer_buses
  rule     = aws_cloudwatch_event_rule.share[0].name
  arn      = each.value
  role_arn = aws_iam_role.share[0].arn

  retry_policy {
    maximum_event_age_in_seconds = 86400
    maximum_retry_attempts       = 185
  }

  dead_letter_config {
    arn = var.dead_letter_queue_arn
  }
}

# The consumer's side: its default bus takes the model source's events. A statement added to the bus's
# policy (PutPermission), never the whole policy replaced: the default bus may carry others' grants.
resource "aws_cloudwatch_event_permission" "model_source" {
  count        = var.source_account == null ? 0 : 1
  principal    = var.source_account
  statement_id = "${var.name}-model-source"
  action       = "events:PutEvents"
}
