# sagemaker-artifacts/ under the input prefix (files.tf lists them).
resource "aws_s3_object" "this" {
  # checkov:skip=CKV_AWS_186: objects take the bucket's default encryption (SSE-S3, or the customer-managed key given as kms_key_arn)
  for_each     = local.objects
  bucket       = var.bucket
  key          = "${var.prefix}${each.key}"
  source       = each.value.source
  content_type = each.value.content_type
  metadata     = { source-md5 = each.value.md5 }
  tags         = var.tags
}
