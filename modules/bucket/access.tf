# No public access, TLS only. Kept apart from main.tf so the local stack's provider-3.39 stand-in
# (src/mlops_sfn/local/terraform/bucket/main.tf) replaces only the bucket and its settings.
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
    Statement = concat([{
      Sid       = "TlsOnly"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
      }], length(var.reader_accounts) == 0 ? [] : [{
      # A model registered here is served in these accounts: SageMaker reads its data there as their
      # model's role, which needs this policy's allow as well as its own ("Cross-account policy
      # evaluation logic"). Run outputs only: not the uploads, not the datasets.
      Sid       = "ModelConsumersReadRunOutputs"
      Effect    = "Allow"
      Principal = { AWS = [for account in var.reader_accounts : "arn:${split(":", aws_s3_bucket.this.arn)[1]}:iam::${account}:root"] }
      Action    = "s3:GetObject"
      Resource  = "${aws_s3_bucket.this.arn}/runs/*"
    }])
  })
  # S3 rejects concurrent changes to one bucket's policy and public access block.
  depends_on = [aws_s3_bucket_public_access_block.this]
}
