terraform {
  # 1.0.3 is the oldest Terraform the offline toolchain may install; no newer language feature is used.
  required_version = ">= 1.0.3"
  required_providers {
    # 5.x and 6.x (checked against their schemas by `mlops-sfn providers check`); the test suite
    # applies with 3.39 through the local stack's own override (README, "Terraform").
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.31, < 7.0"
    }
  }
}
