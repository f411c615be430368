terraform {
  required_version = ">= 1.0.3"
  required_providers {
    # `eventbridge` on aws_s3_bucket_notification: newer than the offline toolchain's 3.39 (see README).
    aws = {
      source  = "hashicorp/aws"
      version = ">= 4.0"
    }
  }
}
