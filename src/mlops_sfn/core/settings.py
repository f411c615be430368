"""What the deployment provides to planning: its bucket, role, image, name prefix, region and keys.

The router reads it from its environment (set by Terraform, names in contract.py); the CLI from the
root's Terraform outputs, or the example deployment when none is named.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .contract import ROUTER_ENVIRONMENT

# Settings field -> the environment variable the router Lambda reads it from (contract.py; the
# region is the Lambda runtime's own).
_FROM_TERRAFORM = (
    "bucket",
    "sagemaker_role_arn",
    "default_image_uri",
    "sagemaker_name_prefix",
    "image_repository_arns",
    "data_buckets",
    "kms_key_arn",
)
SETTINGS_ENVIRONMENT = {field: ROUTER_ENVIRONMENT[field] for field in _FROM_TERRAFORM} | {"region": "AWS_REGION"}
# Settings a deployment may leave empty (no extra data bucket, no customer-managed key).
OPTIONAL_SETTINGS = ("data_buckets", "kms_key_arn")


@dataclass(frozen=True)
class Settings:
    """What the deployment provides: the router reads it from its environment (set by Terraform)."""

    bucket: str
    sagemaker_role_arn: str
    default_image_uri: str
    # Endpoints and model package groups an item may touch start with this (the role's policy says the same).
    sagemaker_name_prefix: str
    # Comma-separated ECR repository ARNs ("repository/*" for a registry) the SageMaker role may pull from.
    image_repository_arns: str
    region: str
    # Comma-separated buckets besides `bucket` the SageMaker role may read (root variable data_buckets).
    data_buckets: str = ""
    # The deployment's customer-managed KMS key, the only one its roles may use ("" for none).
    kms_key_arn: str = ""

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None, fallback: Settings | None = None) -> Settings:
        """Settings from environment variables, each missing one taken from `fallback`; without a
        fallback, raises KeyError naming those missing."""
        environ = os.environ if environ is None else environ
        required = {field: var for field, var in SETTINGS_ENVIRONMENT.items() if field not in OPTIONAL_SETTINGS}
        missing = [var for var in required.values() if not environ.get(var)]
        if missing and fallback is None:
            raise KeyError(", ".join(missing))
        values = {field: environ.get(var) or getattr(fallback, field) for field, var in required.items()}
        optional = {field: environ.get(SETTINGS_ENVIRONMENT[field], "") for field in OPTIONAL_SETTINGS}
        return cls(**values, **optional)

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, Any]) -> Settings:
        """The deployment as `terraform output -json` of the root describes it ({name: {"value": ...}});
        raises KeyError naming the outputs it lacks."""
        values = {name: entry.get("value") if isinstance(entry, dict) else entry for name, entry in outputs.items()}
        missing = [
            name
            for field, name in TERRAFORM_OUTPUTS.items()
            if field not in OPTIONAL_SETTINGS and values.get(name) in (None, "", [])
        ]
        if missing:
            raise KeyError(", ".join(missing))
        found: dict[str, Any] = {field: values.get(name) or "" for field, name in TERRAFORM_OUTPUTS.items()}
        for listed in ("image_repository_arns", "data_buckets"):  # lists in Terraform, joined as in the environment
            if not isinstance(found[listed], str):
                found[listed] = ",".join(found[listed])
        return cls(**{field: str(value) for field, value in found.items()})

    def data_bucket_names(self) -> list[str]:
        return [name.strip() for name in self.data_buckets.split(",") if name.strip()]


# Settings field -> the root's Terraform output that holds it (outputs.tf).
TERRAFORM_OUTPUTS = {
    "bucket": "bucket_name",
    "sagemaker_role_arn": "sagemaker_role_arn",
    "default_image_uri": "image_uri",
    "sagemaker_name_prefix": "sagemaker_name_prefix",
    "image_repository_arns": "image_repository_arns",
    "region": "region",
    "data_buckets": "data_buckets",
    "kms_key_arn": "kms_key_arn",
}

# Used by `plan` and `validate` when the environment does not name a deployment.
EXAMPLE_SETTINGS = Settings(
    bucket="example-mlops-bucket",
    sagemaker_role_arn="arn:aws:iam::123456789012:role/example-sagemaker-execution",
    default_image_uri="683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
    sagemaker_name_prefix="mlops-dev-",  # the root's default deployment
    image_repository_arns="arn:aws:ecr:us-east-1:683313688378:repository/*",  # the default image's registry
    region="us-east-1",
)
