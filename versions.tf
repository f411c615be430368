terraform {
  # 1.1 for `moved` blocks (modules/router, modules/state-machine). The offline toolchain's fallback,
  # 1.0.3, applies only staged copies, which drop them (mlops_sfn.local.stack).
  required_version = ">= 1.1"
  required_providers {
    # 5.x and 6.x (checked against their schemas by `mlops-sfn providers check`); the test suite
    # applies with 3.39 through the local stack's own override (docs/terraform.md).
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.31, < 7.0"
    }
  }
}
