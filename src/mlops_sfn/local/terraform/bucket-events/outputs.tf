output "bucket" {
  description = "Bucket that delivers its events to EventBridge."
  value       = var.bucket
}
