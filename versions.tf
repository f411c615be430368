terraform {
  # 1.0.3 is the oldest Terraform the offline toolchain may install; no newer language feature is used.
  required_version = ">= 1.0.3"
  required_providers {
    # 3.39 is what the test suite applies (offline); modules/bucket-events needs >= 4.0 on AWS.
    aws = {
      source  = "hashicorp/aws"
      version = ">= 3.39, < 6.0.0"
    }
  }
}
