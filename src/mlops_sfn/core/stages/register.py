"""Register: the run's model as a package of a model package group (approved, or pending approval)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .. import iam, names
from ..asl import SDK, Builder, retry_for
from ..stage import Block, Item, Made, Stage, Statements, Where, merge, model_sources, runs
from .shared import add_model_data, evaluation_report, model_request

if TYPE_CHECKING:
    from ..settings import Settings

# What a model package container shares with a model's container (CreateModelPackage's
# ModelPackageContainerDefinition and CreateModel's ContainerDefinition).
_PACKAGE_CONTAINER_FIELDS = ("Image", "Environment", "ContainerHostname")


def model_package_group(item: Item) -> str:
    group = item.get("stages", {}).get("register", {}).get("model_package_group")
    return str(group) if group else names.stable_name(item["consumption_pipeline_name"])


def _serving_containers(item: Item) -> list[dict[str, Any]]:
    """The package is registered with the containers the model is created with (image and
    environment, e.g. SAGEMAKER_PROGRAM), so that it deploys from the registry as it does here."""
    own = item.get("stages", {}).get("create_model", {}).get("request", {})
    model = merge(model_request(item), own)
    containers = model["Containers"] if "Containers" in model else [model["PrimaryContainer"]]
    return [{key: c[key] for key in _PACKAGE_CONTAINER_FIELDS if key in c} for c in containers]


class Register(Stage):
    name = "register"
    per_segment = True
    operation = "CreateModelPackage"
    # The approval stage decides the package's status; the package is named by SageMaker.
    framework_fields = ("ModelApprovalStatus", "ModelPackageName")

    def defaults(self, item: Item, execution: str) -> dict[str, Any]:
        return {
            "ModelPackageGroupName": model_package_group(item),
            "InferenceSpecification": {
                "Containers": _serving_containers(item),
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        }

    def plan(self, item: Item, execution: str, settings: Settings) -> Block:
        request = self.request(item, execution)
        block = item["stages"]["register"]
        if not block.get("model_package_group") and "ModelPackageGroupName" not in block.get("request", {}):
            request["ModelPackageGroupName"] = names.stable_name(
                item["consumption_pipeline_name"], settings.sagemaker_name_prefix
            )
        request["ModelApprovalStatus"] = "PendingManualApproval" if runs(item, "approval") else "Approved"
        if runs(item, "evaluation") and "ModelMetrics" not in block.get("request", {}):
            # the package names the report it was judged by (what `mlops-sfn promote` shows); a run that
            # reuses evaluation names the earlier run's report (cache.py moves it)
            report = {"ContentType": "application/json", "S3Uri": evaluation_report(item)}
            request["ModelMetrics"] = {"ModelQuality": {"Statistics": report}}
        add_model_data(request.get("InferenceSpecification", {}).get("Containers", []))
        # the group, made by the first run that registers in it: its tags are its packages' (tags.py)
        group = {"ModelPackageGroupName": request["ModelPackageGroupName"]}
        block = {"request": request, "group_request": group, "model_source": model_sources(item)[0]}
        consumers = settings.consumer_accounts()
        if consumers:  # the accounts that serve this deployment's models may read the group's packages
            policy = group_policy(request["ModelPackageGroupName"], consumers, settings)
            block["group_policy_request"] = group | {"ResourcePolicy": json.dumps(policy, separators=(",", ":"))}
        return block

    def requests(self, block: Block) -> list[tuple[str, dict[str, Any]]]:
        return [("CreateModelPackageGroup", block["group_request"]), *super().requests(block)]

    def states(self, b: Builder, then: str | None) -> str:
        # An existing group is the usual case; any real problem resurfaces in "Register model".
        entry = b.add(
            "Create model package group",
            {
                "Type": "Task",
                "Resource": f"{SDK}sagemaker:createModelPackageGroup",
                "InputPath": "$.stages.register.group_request",
                "ResultPath": None,
                "Retry": retry_for(f"{SDK}sagemaker:createModelPackageGroup"),
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "Register model"}],
                "Next": "Register model",
            },
        )
        assert then is not None, "a stage follows register (or the segment's end)"
        b.call(
            "Register model",
            self.name,
            f"{SDK}sagemaker:createModelPackage",
            input_path="$.stages.register.request",
            selector={"model_package_arn.$": "$.ModelPackageArn"},
            result="$.results.register",
            then="Share model package group?",
        )
        # every run puts the policy again (the consumer accounts are the deployment's, and may change),
        # before anyone can approve the package
        b.when(
            "Share model package group?", "$.stages.register.group_policy_request", "Share model package group", then
        )
        b.call(
            "Share model package group",
            self.name,
            f"{SDK}sagemaker:putModelPackageGroupPolicy",
            input_path="$.stages.register.group_policy_request",
            result=None,
            then=then,
        )
        return entry

    def permissions(self) -> Statements:
        return {
            "aws-sdk:sagemaker:createModelPackageGroup": (
                iam.statement(
                    "CreateModelPackageGroup", ["sagemaker:CreateModelPackageGroup", *iam.TAGGING], iam.GROUPS
                ),
            ),
            "aws-sdk:sagemaker:putModelPackageGroupPolicy": (
                iam.statement("CreateModelPackageGroup", ["sagemaker:PutModelPackageGroupPolicy"], iam.GROUPS),
            ),
            "aws-sdk:sagemaker:createModelPackage": (
                # a package in a group carries no Tags of its own (tags.py): no AddTags
                iam.statement("RegisterModel", ["sagemaker:CreateModelPackage"], iam.PACKAGES + iam.GROUPS),
            ),
        }

    def made(self, block: Block, result: dict[str, Any] | None = None) -> list[Made]:
        arn = (result or {}).get("model_package_arn")
        if not isinstance(arn, str) or not arn:
            return []
        return [Made(arn, needed=True, describe=("describe_model_package", "ModelPackageName"))]

    def preview(self, block: Block) -> str:
        request = block["request"]
        return f"model package group {request['ModelPackageGroupName']} ({request['ModelApprovalStatus']})"

    def report(self, result: dict[str, Any], block: Block, where: Where) -> str:
        return str(result.get("model_package_arn", ""))

    def reaches(self, block: Block) -> list[tuple[str, str]]:
        return [("stages.register.model_package_group", block["request"]["ModelPackageGroupName"])]


def group_policy(group: str, consumers: list[str], settings: Settings) -> dict[str, Any]:
    """The package group's resource policy for the accounts that serve its packages: they may read the
    group and its packages, nothing else (the consumer's own IAM policies must allow it too: "Cross-
    account policy evaluation logic"). Each account is named whole ("arn:<partition>:iam::<id>:root")."""
    partition = settings.sagemaker_role_arn.split(":")[1]
    arn = f"arn:{partition}:sagemaker:{settings.region}:{settings.account()}"
    readers = {"AWS": [f"arn:{partition}:iam::{consumer}:root" for consumer in consumers]}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ConsumersReadGroup",
                "Effect": "Allow",
                "Principal": readers,
                "Action": ["sagemaker:DescribeModelPackageGroup"],
                "Resource": f"{arn}:model-package-group/{group.lower()}",
            },
            {
                "Sid": "ConsumersReadPackages",
                "Effect": "Allow",
                "Principal": readers,
                "Action": ["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages"],
                "Resource": f"{arn}:model-package/{group.lower()}/*",
            },
        ],
    }


STAGE = Register()
