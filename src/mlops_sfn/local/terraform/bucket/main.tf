data "aws_partition" "current" {}

# The local stack's provider-3.39 stand-in for modules/bucket/main.tf: the same bucket, with the
# inline arguments 3.39 has instead of the aws_s3_bucket_* resources it lacks.
resource "aws_s3_bucket" "this" {
  # checkov:skip=CKV_AWS_18: access logging needs a separate log bucket, which is the account's choice
  # checkov:skip=CKV_AWS_144: cross-region replication is a disaster-recovery choice, not a default
  # checkov:skip=CKV2_AWS_62: EventBridge delivery is turned on by modules/bucket-events (its own resource)
  bucket        = var.name
  force_destroy = var.force_destroy
  tags          = var.tags

  versioning {
    enabled = true
  }

  server_side_encryption_configuration {
    rule {
      apply_server_side_encryption_by_default {
        sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
        kms_master_key_id = var.kms_key_arn
      }
      bucket_key_enabled = var.kms_key_arn != null
    }
  }

  lifecycle_rule {
    id                                     = "expire-old-versions"
    enabled                                = true
    abort_incomplete_multipart_upload_days = 7

    noncurrent_version_expiration {
      days = var.noncurrent_version_days
    }
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "TlsOnly"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
  # S3 rejects concurrent changes to one bucket's policy and public access block.
  depends_on = [aws_s3_bucket_public_access_block.this]
}
