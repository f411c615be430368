# The local stack's provider-3.39 stand-in for modules/bucket/main.tf: the same bucket, with the
# inline arguments 3.39 has instead of the aws_s3_bucket_* resources it lacks.
resource "aws_s3_bucket" "this" {
  # checkov:skip=CKV_AWS_18: access logging needs a separate log bucket, which is the account's choice
  # checkov:skip=CKV_AWS_144: cross-region replication is a disaster-recovery choice, not a default
  # checkov:skip=CKV2_AWS_62: EventBridge delivery is turned on by modules/bucket-events (its own resource)
  # checkov:skip=CKV2_AWS_6: the public access block is modules/bucket/access.tf, staged beside this file
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
