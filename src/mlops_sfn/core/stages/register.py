"""Register: the run's model as a package of a model package group (approved, or pending approval)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .. import iam, names
from ..asl import SDK, Builder, retry_for
from ..stage import Item, Stage, merge, model_sources, runs
from . import create_model

if TYPE_CHECKING:
    from ..plan import Settings

# The approval stage decides the package's status; the package is named by SageMaker.
facts = Stage("register", operation="CreateModelPackage", framework_fields=("ModelApprovalStatus", "ModelPackageName"))
# What a model package container shares with a model's container (CreateModelPackage's
# ModelPackageContainerDefinition and CreateModel's ContainerDefinition).
_PACKAGE_CONTAINER_FIELDS = ("Image", "Environment", "ContainerHostname")


def model_package_group(item: Item) -> str:
    group = item.get("stages", {}).get("register", {}).get("model_package_group")
    return str(group) if group else names.stable_name(item["consumption_pipeline_name"])


def _serving_containers(item: Item, execution: str) -> list[dict[str, Any]]:
    """The package is registered with the containers the model is created with (image and
    environment, e.g. SAGEMAKER_PROGRAM), so that it deploys from the registry as it does here."""
    own = item.get("stages", {}).get("create_model", {}).get("request", {})
    model = merge(create_model.STAGE.framework_request(item, execution), own)
    containers = model["Containers"] if "Containers" in model else [model["PrimaryContainer"]]
    return [{key: c[key] for key in _PACKAGE_CONTAINER_FIELDS if key in c} for c in containers]


def _defaults(item: Item, execution: str) -> dict[str, Any]:
    return {
        "ModelPackageGroupName": model_package_group(item),
        "InferenceSpecification": {
            "Containers": _serving_containers(item, execution),
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    }


def _plan(item: Item, execution: str, settings: Settings) -> dict[str, Any]:
    request = STAGE.request(item, execution)
    block = item["stages"]["register"]
    if not block.get("model_package_group") and "ModelPackageGroupName" not in block.get("request", {}):
        request["ModelPackageGroupName"] = names.stable_name(
            item["consumption_pipeline_name"], settings.sagemaker_name_prefix
        )
    request["ModelApprovalStatus"] = "PendingManualApproval" if runs(item, "approval") else "Approved"
    create_model.add_model_data(request.get("InferenceSpecification", {}).get("Containers", []))
    return {"request": request, "model_source": model_sources(item)[0]}


def _states(b: Builder, then: str | None) -> str:
    # An existing group is the usual case; any real problem resurfaces in "Register model".
    entry = b.add(
        "Create model package group",
        {
            "Type": "Task",
            "Resource": f"{SDK}sagemaker:createModelPackageGroup",
            "Parameters": {"ModelPackageGroupName.$": "$.stages.register.request.ModelPackageGroupName"},
            "ResultPath": None,
            "Retry": retry_for(f"{SDK}sagemaker:createModelPackageGroup"),
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "Register model"}],
            "Next": "Register model",
        },
    )
    b.task(
        "Register model",
        "register",
        {
            "Resource": f"{SDK}sagemaker:createModelPackage",
            "InputPath": "$.stages.register.request",
            "ResultSelector": {"model_package_arn.$": "$.ModelPackageArn"},
            "ResultPath": "$.results.register",
            "Next": then,
        },
    )
    return entry


def _preview(block: dict[str, Any]) -> str:
    request = block["request"]
    return f"model package group {request['ModelPackageGroupName']} ({request['ModelApprovalStatus']})"


STAGE = replace(
    facts,
    defaults=_defaults,
    plan=_plan,
    states=_states,
    permissions={
        "aws-sdk:sagemaker:createModelPackageGroup": (
            iam.statement("CreateModelPackageGroup", ["sagemaker:CreateModelPackageGroup", *iam.TAGGING], iam.GROUPS),
        ),
        "aws-sdk:sagemaker:createModelPackage": (
            iam.statement("RegisterModel", ["sagemaker:CreateModelPackage", *iam.TAGGING], iam.PACKAGES + iam.GROUPS),
        ),
    },
    preview=_preview,
    outputs=lambda result, block, where: str(result.get("model_package_arn", "")),
    reaches=lambda block: [("stages.register.model_package_group", block["request"]["ModelPackageGroupName"])],
)
