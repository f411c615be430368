# The policy a customer-managed KMS key needs to serve a deployment (root variable kms_key_arn).
# KMS lets no one use a key unless its policy allows it, so besides the account (whose roles'
# own statements then count: "Default key policy") it names the services that use the key for
# the deployment: CloudWatch Logs for the encrypted log groups ("Encrypt log data in CloudWatch
# Logs using AWS KMS"), CloudWatch for alarms publishing to the encrypted notification topic, and
# EventBridge for undeliverable events sent to the encrypted dead-letter queue (SNS and SQS
# developer guides, "Key management"). The key must exist, with this policy, before the
# deployment: CloudWatch Logs refuses to create a log group with a key it may not use.
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  partition = data.aws_partition.current.partition
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.id
  consumers = [for account in var.model_consumer_accounts : "arn:${local.partition}:iam::${account}:root"]
  statements = concat([
    {
      Sid       = "AccountRolesByTheirPolicies"
      Effect    = "Allow"
      Principal = { AWS = "arn:${local.partition}:iam::${local.account}:root" }
      Action    = "kms:*"
      Resource  = "*"
    },
    {
      Sid       = "CloudWatchLogsEncryptLogGroups"
      Effect    = "Allow"
      Principal = { Service = "logs.${local.region}.amazonaws.com" }
      Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
      Resource  = "*"
      Condition = {
        ArnLike = { "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account}:log-group:*" }
      }
    },
    {
      Sid       = "CloudWatchAlarmsPublishToEncryptedTopics"
      Effect    = "Allow"
      Principal = { Service = "cloudwatch.amazonaws.com" }
      Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
      Resource  = "*"
    },
    {
      Sid       = "EventBridgeSendsToEncryptedQueues"
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
      Resource  = "*"
    },
    ], length(local.consumers) == 0 ? [] : [{
      # The accounts that serve this deployment's packages (model_consumer_accounts) read the model data
      # of its runs through S3 ("Allowing users in other accounts to use a KMS key": the key policy
      # names the account, the account's own IAM policies then allow its roles), and nothing else.
      Sid       = "ModelConsumersReadThroughS3"
      Effect    = "Allow"
      Principal = { AWS = local.consumers }
      Action    = "kms:Decrypt"
      Resource  = "*"
      Condition = { StringEquals = { "kms:ViaService" = "s3.${local.region}.amazonaws.com" } }
  }])
}
