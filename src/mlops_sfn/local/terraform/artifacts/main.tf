locals {
  files = fileset(var.folder, "**")
  content_types = {
    csv  = "text/csv"
    json = "application/json"
    md   = "text/markdown"
    py   = "text/x-python"
    txt  = "text/plain"
  }
}

# The local stack's provider-3.39 stand-in for modules/artifacts/main.tf: aws_s3_bucket_object,
# because aws_s3_object is unknown to 3.39. The source hash is kept as metadata because an ETag is
# not an MD5 under SSE-KMS, and a changed hash uploads the file again.
resource "aws_s3_bucket_object" "this" {
  # checkov:skip=CKV_AWS_186: objects take the bucket's default encryption (SSE-S3, or the customer-managed key given as kms_key_arn)
  for_each     = local.files
  bucket       = var.bucket
  key          = "${var.prefix}${each.value}"
  source       = "${var.folder}/${each.value}"
  content_type = lookup(local.content_types, lower(element(split(".", each.value), length(split(".", each.value)) - 1)), "application/octet-stream")
  metadata     = { source-md5 = filemd5("${var.folder}/${each.value}") }
  tags         = var.tags
}
