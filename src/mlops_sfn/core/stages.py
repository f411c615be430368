"""The ten stages: their order, their SageMaker operation, and the defaults that keep items short.

Default values may hold placeholders ({bucket}, {role_arn}, ...); plan.py fills them per execution.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import monitoring, names


@dataclass(frozen=True)
class Stage:
    """One stage, described once: the tables below and the policy, names and previews read these."""

    name: str
    operation: str | None = None  # the SageMaker API its "request" is an input of
    name_field: str | None = None  # the name the framework fills per execution (unique for ever)
    name_limit: int = 63
    tag: str | None = None  # in the names of what it creates per run: <pipeline>-<tag>-<hash>
    resource: str | None = None  # the SageMaker ARN type of what it creates per run (role policy)
    described_as: str | None = None  # in previews: "<described_as> <name>"
    framework_fields: tuple[str, ...] = ()  # request fields the framework decides, besides the name
    serving: bool = False  # runs after the others, side by side with the other serving stages
    watches: bool = False  # runs after the serving stages succeeded: it looks after what they deployed
    cacheable: bool = False  # an item may let a run reuse its outputs when nothing it depends on changed

    @property
    def title(self) -> str:
        """As state names show it: "Batch transform"."""
        return self.name.replace("_", " ").capitalize()


def _processing_stage(name: str, tag: str) -> Stage:
    return Stage(
        name, "CreateProcessingJob", "ProcessingJobName", 63, tag, "processing-job", "processing job", cacheable=True
    )


CATALOG = (
    _processing_stage("preprocessing", "prep"),
    Stage(
        "training",
        operation="CreateTrainingJob",
        name_field="TrainingJobName",
        tag="train",
        resource="training-job",
        described_as="training job",
        cacheable=True,
    ),
    Stage(
        "tuning",
        operation="CreateHyperParameterTuningJob",
        name_field="HyperParameterTuningJobName",
        name_limit=32,
        tag="tune",
        resource="hyper-parameter-tuning-job",
        described_as="tuning job",
        cacheable=True,
    ),
    _processing_stage("evaluation", "eval"),
    # The approval stage decides the package's status; the package is named by SageMaker.
    Stage("register", operation="CreateModelPackage", framework_fields=("ModelApprovalStatus", "ModelPackageName")),
    Stage("approval"),
    Stage(
        "create_model",
        operation="CreateModel",
        name_field="ModelName",
        tag="model",
        resource="model",
        described_as="model",
    ),
    Stage(
        "batch_transform",
        operation="CreateTransformJob",
        name_field="TransformJobName",
        tag="transform",
        resource="transform-job",
        described_as="transform job",
        serving=True,
        cacheable=True,
    ),
    # Its endpoint is named by the item; the endpoint config it creates per run is the framework's.
    Stage("deploy", tag="config", resource="endpoint-config", serving=True),
    # Its request is the baseline job's; it also creates the data-quality job definition and the
    # endpoint's monitoring schedule and drift alarm (monitoring.py).
    Stage(
        "monitoring",
        operation="CreateProcessingJob",
        name_field="ProcessingJobName",
        tag="monitor",  # the baseline job and the data-quality job definition: <pipeline>-monitor-<hash>
        resource="processing-job",
        described_as="baseline job",
        watches=True,
    ),
)
STAGE = {stage.name: stage for stage in CATALOG}
STAGES = tuple(STAGE)
SERVING = tuple(stage.name for stage in CATALOG if stage.serving)
WATCHING = tuple(stage.name for stage in CATALOG if stage.watches)
CACHEABLE = tuple(stage.name for stage in CATALOG if stage.cacheable)
# A per-run SageMaker name (names.resource_name): "<pipeline>-<stage tag>-<10 hex>".
PER_RUN_NAME = re.compile(rf"-({'|'.join(re.escape(s.tag) for s in CATALOG if s.tag)})-[0-9a-f]{{10}}\b")
OPERATIONS = {stage.name: stage.operation for stage in CATALOG if stage.operation}
NAME_FIELDS = {stage.name: stage.name_field for stage in CATALOG if stage.name_field}
# Fields an item may not set: the generated names, and what the framework decides.
FRAMEWORK_FIELDS = {
    stage.name: ((stage.name_field,) if stage.name_field else ()) + stage.framework_fields
    for stage in CATALOG
    if stage.name_field or stage.framework_fields
}


def tag(stage: str) -> str:
    """The tag in the names of what a stage creates per run."""
    found = STAGE[stage].tag
    if not found:
        raise KeyError(f"stage {stage} creates nothing named per run")
    return found


def calling(operation: str) -> tuple[str, ...]:
    """The stages whose request is an input of this SageMaker API."""
    return tuple(stage.name for stage in CATALOG if stage.operation == operation)


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


def _register_defaults(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "ModelPackageGroupName": model_package_group(item),
        "InferenceSpecification": {
            "Containers": _serving_containers(item),
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    }


def _create_model_defaults(item: dict[str, Any]) -> dict[str, Any]:
    block = item.get("stages", {}).get("create_model", {})
    container: dict[str, Any] = {"Image": "{image}"}
    if block.get("model_data_url"):
        container["ModelDataUrl"] = block["model_data_url"]
    # CreateModel takes PrimaryContainer or Containers, not both.
    own = block.get("request", {})
    return {"ExecutionRoleArn": "{role_arn}"} | ({} if "Containers" in own else {"PrimaryContainer": container})


# Each stage's framework request, before the item's own fields are merged over it; one entry per
# stage, in catalog order (stages without a SageMaker request have none).
_DEFAULTS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "preprocessing": lambda item: _processing(),
    "training": lambda item: _training_definition("training"),
    "tuning": lambda item: {"TrainingJobDefinition": _training_definition("tuning")},
    "evaluation": lambda item: _processing(),
    "register": _register_defaults,
    "approval": lambda item: {},
    "create_model": _create_model_defaults,
    "batch_transform": lambda item: {
        "TransformOutput": {"S3OutputPath": f"{RUN_FOLDER}/batch-transform/"},
        "TransformResources": {"InstanceCount": 1, "InstanceType": DEFAULT_INSTANCE_TYPE},
    },
    "deploy": lambda item: {},
    "monitoring": lambda item: _baseline_defaults(item),
}
assert list(_DEFAULTS) == list(STAGES), "every stage has its defaults here, in catalog order"


def defaults(stage: str, item: dict[str, Any]) -> dict[str, Any]:
    """The framework's request for a stage before the item's own fields are merged over it."""
    return _DEFAULTS[stage](item)


def _baseline_defaults(item: dict[str, Any]) -> dict[str, Any]:
    """The analyzer's baseline job: the dataset in, statistics.json and constraints.json out."""
    block = item.get("stages", {}).get("monitoring", {})
    request = _processing()
    request["ProcessingResources"]["ClusterConfig"]["InstanceType"] = block.get("instance_type", DEFAULT_INSTANCE_TYPE)
    request["AppSpecification"] = {"ImageUri": block.get("image", "{analyzer_image}")}
    request["Environment"] = monitoring.baseline_environment(block.get("baseline", {}).get("header", True))
    request["ProcessingInputs"] = [
        {
            "InputName": "baseline_dataset_input",
            "S3Input": {
                "S3Uri": block.get("baseline", {}).get("dataset", "{baseline_dataset}"),
                "LocalPath": monitoring.BASELINE_INPUT,
                "S3DataType": "S3Prefix",
                "S3InputMode": "File",
            },
        }
    ]
    request["ProcessingOutputConfig"] = {
        "Outputs": [
            {
                "OutputName": "monitoring_output",
                "S3Output": {
                    "S3Uri": f"{RUN_FOLDER}/monitoring/baseline",
                    "LocalPath": monitoring.ANALYZER_OUTPUT,
                    "S3UploadMode": "EndOfJob",
                },
            }
        ]
    }
    return request


# What a model package container shares with a model's container (CreateModelPackage's
# ModelPackageContainerDefinition and CreateModel's ContainerDefinition).
_PACKAGE_CONTAINER_FIELDS = ("Image", "Environment", "ContainerHostname")


def _serving_containers(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The package is registered with the containers the model is created with (image and
    environment, e.g. SAGEMAKER_PROGRAM), so that it deploys from the registry as it does here."""
    model = merge(defaults("create_model", item), item.get("stages", {}).get("create_model", {}).get("request", {}))
    containers = model["Containers"] if "Containers" in model else [model["PrimaryContainer"]]
    return [{key: c[key] for key in _PACKAGE_CONTAINER_FIELDS if key in c} for c in containers]


def merged_request(stage: str, item: dict[str, Any], execution: str) -> dict[str, Any]:
    """Defaults, then the item's request over them, then the per-execution names."""
    request: dict[str, Any] = merge(defaults(stage, item), item.get("stages", {}).get(stage, {}).get("request", {}))
    pipeline = item["consumption_pipeline_name"]
    described = STAGE[stage]
    if described.name_field and described.tag:
        request[described.name_field] = names.resource_name(pipeline, described.tag, execution, described.name_limit)
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
    return names.resource_name(item["consumption_pipeline_name"], tag("create_model"), execution)


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


def training_data(item: dict[str, Any]) -> str | None:
    """Where the item's training data is (the "train" channel, else the first): the default baseline
    a deployed model's traffic is compared with. The running stage's, else the training or tuning
    block's (a rerun that reuses training trained on it too)."""
    blocks = item.get("stages", {})
    ordered = sorted(("training", "tuning"), key=lambda stage: not runs(item, stage))
    for stage in (stage for stage in ordered if stage in blocks):
        request = merge(defaults(stage, item), blocks[stage].get("request", {}))
        definition = request if stage == "training" else request.get("TrainingJobDefinition", {})
        channels = definition.get("InputDataConfig", [])
        chosen = next((c for c in channels if c.get("ChannelName") == "train"), channels[0] if channels else None)
        uri = (chosen or {}).get("DataSource", {}).get("S3DataSource", {}).get("S3Uri")
        if uri:
            return str(uri)
    return None
