data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition = data.aws_partition.current.partition
  region    = data.aws_region.current.id
  account   = data.aws_caller_identity.current.account_id
}

# The role processing, training, tuning and transform jobs, models and endpoints run as.
resource "aws_iam_role" "this" {
  name = var.name
  tags = var.tags
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "sagemaker.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account } }
    }]
  })
}

resource "aws_iam_role_policy" "this" {
  name = "jobs"
  role = aws_iam_role.this.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
      {
        Sid      = "ListBucket"
        Effect   = "Allow"
        Action   = ["s3:ListBucket", "s3:GetBucketLocation"]
        Resource = "arn:${local.partition}:s3:::${var.bucket}"
      },
      {
        Sid      = "ReadWriteObjects"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"]
        Resource = "arn:${local.partition}:s3:::${var.bucket}/*"
      },
      {
        # A job that writes under the input prefix would start pipeline runs (a marker is an upload).
        Sid      = "NoWritesToUploads"
        Effect   = "Deny"
        Action   = ["s3:PutObject", "s3:AbortMultipartUpload"]
        Resource = "arn:${local.partition}:s3:::${var.bucket}/${var.input_prefix}*"
      },
      {
        Sid      = "PullImages"
        Effect   = "Allow"
        Action   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
        Resource = var.image_repository_arns
      },
      {
        # ecr:GetAuthorizationToken has no resource-level permissions: AWS requires "*".
        Sid      = "EcrLogin"
        Effect   = "Allow"
        Action   = "ecr:GetAuthorizationToken"
        Resource = "*"
      },
      {
        Sid      = "JobLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
        Resource = "arn:${local.partition}:logs:${local.region}:${local.account}:log-group:/aws/sagemaker/*"
      },
      {
        # cloudwatch:PutMetricData has no resource-level permissions: AWS requires "*", narrowed by namespace.
        Sid       = "JobMetrics"
        Effect    = "Allow"
        Action    = "cloudwatch:PutMetricData"
        Resource  = "*"
        Condition = { StringLike = { "cloudwatch:namespace" = var.metric_namespaces } }
      },
      ], length(var.data_buckets) == 0 ? [] : [
      {
        # Data a run reads from the team's own buckets (root variable data_buckets); no writes.
        Sid      = "ListDataBuckets"
        Effect   = "Allow"
        Action   = ["s3:ListBucket", "s3:GetBucketLocation"]
        Resource = [for name in var.data_buckets : "arn:${local.partition}:s3:::${name}"]
      },
      {
        Sid      = "ReadDataBuckets"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = [for name in var.data_buckets : "arn:${local.partition}:s3:::${name}/*"]
      },
      ], var.kms_key_arn == null ? [] : [{
        Sid      = "BucketKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = var.kms_key_arn
        }], var.model_source == null ? [] : [{
        # A model served from the model source's package: SageMaker reads its data as this role when
        # the model is created. Run outputs only (where the source's runs write models); no writes.
        # The source's bucket policy must allow this account too (its model_consumer_accounts).
        Sid      = "ReadModelSource"
        Effect   = "Allow"
        Action   = "s3:GetObject"
        Resource = "arn:${local.partition}:s3:::${var.model_source.bucket}/runs/*"
        }], try(var.model_source.kms_key_arn, null) == null ? [] : [{
        # Its objects are encrypted with the source's key: decrypting them through S3 only.
        Sid       = "ModelSourceKey"
        Effect    = "Allow"
        Action    = "kms:Decrypt"
        Resource  = var.model_source.kms_key_arn
        Condition = { StringEquals = { "kms:ViaService" = "s3.${local.region}.amazonaws.com" } }
    }])
  })
}
