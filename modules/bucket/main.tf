# The framework's bucket: uploads under the input prefix, code, and every run's outputs.
resource "aws_s3_bucket" "this" {
  # checkov:skip=CKV_AWS_18: access logging needs a separate log bucket, which is the account's choice
  # checkov:skip=CKV_AWS_144: cross-region replication is a disaster-recovery choice, not a default
  # checkov:skip=CKV2_AWS_62: EventBridge delivery is turned on by modules/bucket-events (its own resource)
  bucket        = var.name
  force_destroy = var.force_destroy
  tags          = var.tags
}

# The bucket's settings as their own resources (provider 4.0+): the inline arguments are deprecated.
resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != null
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "expire-old-versions"
    status = "Enabled"

    filter {} # the whole bucket

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
  }

  # Lifecycle rules on a bucket whose versioning is still being turned on are rejected.
  depends_on = [aws_s3_bucket_versioning.this]
}
