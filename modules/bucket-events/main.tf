# The one resource the offline toolchain's provider (3.39) cannot apply: kept alone so everything
# else is applied in the test suite. It owns the bucket's whole notification configuration.
resource "aws_s3_bucket_notification" "this" {
  bucket      = var.bucket
  eventbridge = true
}
