variable "bucket" {
  description = "Bucket whose events S3 delivers to EventBridge."
  type        = string
}
