output "bucket" {
  description = "Bucket that delivers its events to EventBridge."
  value       = aws_s3_bucket_notification.this.bucket
}
