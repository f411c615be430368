"""What the deployment provides to planning: its bucket, role, image, name prefix, region and keys.

The router reads it from its environment (set by Terraform, names in contract.py); the CLI from the
root's Terraform outputs, or the example deployment when none is named.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .contract import ROUTER_ENVIRONMENT

# Settings a deployment may leave empty (no extra data bucket, no customer-managed key, no tags, no
# accounts it shares models with or serves them from).
OPTIONAL_SETTINGS = (
    "data_buckets",
    "kms_key_arn",
    "deployment_tags",
    "required_tags",
    "model_consumer_accounts",
    "model_source_account",
    "model_source_prefix",
)
_FROM_TERRAFORM = (
    "bucket",
    "sagemaker_role_arn",
    "default_image_uri",
    "sagemaker_name_prefix",
    "image_repository_arns",
    *OPTIONAL_SETTINGS,
)
# Settings field -> the environment variable the router Lambda reads it from (contract.py; the
# region is the Lambda runtime's own).
SETTINGS_ENVIRONMENT = {field: ROUTER_ENVIRONMENT[field] for field in _FROM_TERRAFORM} | {"region": "AWS_REGION"}


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
    # The deployment's tags (root variable tags), a JSON object: what a run creates carries them (tags.py).
    deployment_tags: str = ""
    # Comma-separated tag keys every item must set (root variable required_tags).
    required_tags: str = ""
    # Comma-separated accounts that serve this deployment's model packages (root variable
    # model_consumer_accounts): each package group a run registers in is shared with them.
    model_consumer_accounts: str = ""
    # The account whose approved packages this deployment may serve besides its own (root variable
    # model_source), and the start of its groups' names: the role's policy names those packages.
    model_source_account: str = ""
    model_source_prefix: str = ""

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
        # `terraform output -json` wraps each value ({"sensitive", "type", "value"}); a map output is a dict too
        values = {
            name: entry.get("value") if isinstance(entry, dict) and {"type", "value"} <= entry.keys() else entry
            for name, entry in outputs.items()
        }
        missing = [
            name
            for field, name in TERRAFORM_OUTPUTS.items()
            if field not in OPTIONAL_SETTINGS and values.get(name) in (None, "", [])
        ]
        if missing:
            raise KeyError(", ".join(missing))
        found: dict[str, Any] = {field: values.get(name) or "" for field, name in TERRAFORM_OUTPUTS.items()}
        listed_outputs = ("image_repository_arns", "data_buckets", "required_tags", "model_consumer_accounts")
        for listed in listed_outputs:  # lists, joined as in the environment
            if not isinstance(found[listed], str):
                found[listed] = ",".join(found[listed])
        if not isinstance(found["deployment_tags"], str):  # a map in Terraform, JSON as in the environment
            found["deployment_tags"] = json.dumps(found["deployment_tags"] or {}, sort_keys=True)
        return cls(**{field: str(value) for field, value in found.items()})

    def data_bucket_names(self) -> list[str]:
        return [name.strip() for name in self.data_buckets.split(",") if name.strip()]

    def tags(self) -> dict[str, str]:
        """The deployment's tags, {} when it has none."""
        return parse_tags(self.deployment_tags)

    def required_tag_keys(self) -> list[str]:
        return [key.strip() for key in self.required_tags.split(",") if key.strip()]

    def account(self) -> str:
        """The deployment's account: its SageMaker role's ("" for a role ARN without one)."""
        parts = self.sagemaker_role_arn.split(":")
        return parts[4] if len(parts) > 4 else ""

    def consumer_accounts(self) -> list[str]:
        return [account.strip() for account in self.model_consumer_accounts.split(",") if account.strip()]


def parse_tags(text: str) -> dict[str, str]:
    """Tags as the environment holds them (a JSON object); ValueError for anything else."""
    found = json.loads(text) if text.strip() else {}
    if not isinstance(found, dict):
        raise ValueError(f"not a JSON object: {text!r}")
    return {str(key): str(value) for key, value in found.items()}


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
    "deployment_tags": "deployment_tags",
    "required_tags": "required_tags",
    "model_consumer_accounts": "model_consumer_accounts",
    "model_source_account": "model_source_account",
    "model_source_prefix": "model_source_prefix",
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
