terraform {
  required_version = ">= 1.0.3"
  required_providers {
    # Inline versioning, encryption and lifecycle: 3.x, or 4.9 and later (4.0-4.8 made them read-only).
    aws = {
      source  = "hashicorp/aws"
      version = ">= 3.39"
    }
  }
}
