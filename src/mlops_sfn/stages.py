"""The nine stages: their order, their SageMaker operation, and the defaults that keep items short.

Default values may hold placeholders ({bucket}, {role_arn}, ...); plan.py fills them per execution.
"""

from __future__ import annotations

import copy
from typing import Any

from . import names

STAGES = (
    "preprocessing",
    "training",
    "tuning",
    "evaluation",
    "register",
    "approval",
    "create_model",
    "batch_transform",
    "deploy",
)

# The SageMaker API each stage's "request" is an input of.
OPERATIONS = {
    "preprocessing": "CreateProcessingJob",
    "training": "CreateTrainingJob",
    "tuning": "CreateHyperParameterTuningJob",
    "evaluation": "CreateProcessingJob",
    "register": "CreateModelPackage",
    "create_model": "CreateModel",
    "batch_transform": "CreateTransformJob",
}

# The name field the framework fills for each execution (SageMaker keeps names unique for ever).
NAME_FIELDS = {
    "preprocessing": "ProcessingJobName",
    "training": "TrainingJobName",
    "tuning": "HyperParameterTuningJobName",
    "evaluation": "ProcessingJobName",
    "create_model": "ModelName",
    "batch_transform": "TransformJobName",
}

# Fields an item may not set: the generated names, and register's fields that the approval stage decides.
FRAMEWORK_FIELDS = {stage: (field,) for stage, field in NAME_FIELDS.items()} | {
    "register": ("ModelApprovalStatus", "ModelPackageName"),
}

NAME_LIMITS = {"tuning": 32}  # HyperParameterTuningJobName; the rest allow 63

DEFAULT_INSTANCE_TYPE = "ml.m5.large"
RUN_FOLDER = "s3://{bucket}/runs/{pipeline}/{execution}"


def _processing() -> dict[str, Any]:
    return {
        "RoleArn": "{role_arn}",
        "AppSpecification": {"ImageUri": "{image}"},
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": DEFAULT_INSTANCE_TYPE, "VolumeSizeInGB": 30}
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }


def _training_definition(stage: str) -> dict[str, Any]:
    return {
        "RoleArn": "{role_arn}",
        "AlgorithmSpecification": {"TrainingImage": "{image}", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": f"{RUN_FOLDER}/{stage}/"},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": DEFAULT_INSTANCE_TYPE, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }


def defaults(stage: str, item: dict[str, Any]) -> dict[str, Any]:
    """The framework's request for a stage before the item's own fields are merged over it."""
    stages = item.get("stages", {})
    if stage in ("preprocessing", "evaluation"):
        return _processing()
    if stage == "training":
        return _training_definition("training")
    if stage == "tuning":
        return {"TrainingJobDefinition": _training_definition("tuning")}
    if stage == "register":
        return {
            "ModelPackageGroupName": model_package_group(item),
            "InferenceSpecification": {
                "Containers": [{"Image": "{image}"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        }
    if stage == "create_model":
        container: dict[str, Any] = {"Image": "{image}"}
        url = stages.get("create_model", {}).get("model_data_url")
        if url:
            container["ModelDataUrl"] = url
        own = stages.get("create_model", {}).get("request", {})
        # CreateModel takes PrimaryContainer or Containers, not both.
        return {"ExecutionRoleArn": "{role_arn}"} | ({} if "Containers" in own else {"PrimaryContainer": container})
    if stage == "batch_transform":
        return {
            "TransformOutput": {"S3OutputPath": f"{RUN_FOLDER}/batch-transform/"},
            "TransformResources": {"InstanceCount": 1, "InstanceType": DEFAULT_INSTANCE_TYPE},
        }
    return {}


def merged_request(stage: str, item: dict[str, Any], execution: str) -> dict[str, Any]:
    """Defaults, then the item's request over them, then the per-execution names."""
    request: dict[str, Any] = merge(defaults(stage, item), item.get("stages", {}).get(stage, {}).get("request", {}))
    pipeline = item["consumption_pipeline_name"]
    if stage in NAME_FIELDS:
        request[NAME_FIELDS[stage]] = names.resource_name(pipeline, stage, execution, NAME_LIMITS.get(stage, 63))
    if stage == "batch_transform" and "ModelName" not in request:
        request["ModelName"] = model_name(item, execution)
    return request


def model_data_url(item: dict[str, Any], source: str, execution: str) -> str:
    """Where the run's model.tar.gz is, with placeholders left in (they are filled with the rest)."""
    if source == "training":
        request = merged_request("training", item, execution)
        folder = request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        return f"{folder}/{request['TrainingJobName']}/output/model.tar.gz"
    if source == "tuning":
        return f"{RUN_FOLDER}/tuning/best/model.tar.gz"  # the state machine copies the best job's model here
    return str(item["stages"]["create_model"]["model_data_url"])


def model_name(item: dict[str, Any], execution: str) -> str:
    return names.resource_name(item["consumption_pipeline_name"], "create_model", execution)


def model_package_group(item: dict[str, Any]) -> str:
    group = item.get("stages", {}).get("register", {}).get("model_package_group")
    return str(group) if group else names.stable_name(item["consumption_pipeline_name"])


def merge(base: Any, override: Any) -> Any:
    """Deep merge: objects merge key by key, anything else (lists included) is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        result = copy.deepcopy(base)
        for key, value in override.items():
            result[key] = merge(result.get(key), value) if key in result else copy.deepcopy(value)
        return result
    return copy.deepcopy(override)


def runs(item: dict[str, Any], stage: str) -> bool:
    return item.get("stages", {}).get(stage, {}).get("run") is True
