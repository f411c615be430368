"""Migration from the earlier formats to an item of this framework.

Each importer returns the item and notes: what was not carried over and why. The CLI then checks
the item with the same rules as `validate`.
"""

from __future__ import annotations

import re
from typing import Any

from . import dynamodb_json, names
from .item import ItemFileError

# aiops-modules mlops-stepfunctions: block name -> stage, and the request fields the framework sets.
AIOPS_BLOCKS = {
    "preprocessing": ("preprocessing", "ProcessingJobName"),
    "training": ("training", "TrainingJobName"),
    "evaluation": ("evaluation", "ProcessingJobName"),
    "CreateModel": ("create_model", "ModelName"),
    "batchTransform": ("batch_transform", "TransformJobName"),
}


def _pipeline_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:64] or "imported-pipeline"


def _drop_nulls(value: Any) -> Any:
    """aiops configs list optional members as null; SageMaker rejects nulls."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value if v is not None]
    if isinstance(value, str):
        return value.replace("SFN_EXECUTION_ID", "{execution}")
    return value


def from_aiops(config: Any) -> tuple[dict[str, Any], list[str]]:
    """An item from an aiops-modules `mlops-stepfunctions` input.yaml (already parsed)."""
    if not isinstance(config, dict):
        raise ItemFileError("expected a YAML mapping with app_id, model_id and stage blocks")
    notes: list[str] = []
    app, model = config.get("app_id"), config.get("model_id")
    if not app and not model:
        raise ItemFileError("app_id and model_id: both missing; one of them names the pipeline")
    name = _pipeline_name("-".join(str(p) for p in (app, model) if p))
    item: dict[str, Any] = {
        "consumption_pipeline_name": name,
        "schema_version": 1,
        "enabled": True,
        "description": f"Imported from aiops-modules mlops-stepfunctions (app_id={app}, model_id={model})",
        "stages": {},
    }
    if config.get("job_prefix"):
        notes.append(f"job_prefix {config['job_prefix']!r}: not carried over; job names are derived from the pipeline")
    for block_name, (stage, name_field) in AIOPS_BLOCKS.items():
        block = config.get(block_name)
        if block is None:
            continue
        if not isinstance(block, dict):
            raise ItemFileError(f"{block_name}: expected a mapping with run and input")
        request = _drop_nulls(block.get("input") or {})
        if name_field in request:
            notes.append(f"{block_name}.input.{name_field}: dropped; the framework names every job per execution")
            del request[name_field]
        for role_field in ("RoleArn", "ExecutionRoleArn"):
            if role_field in request:
                notes.append(f"{block_name}.input.{role_field}: dropped; the deployment's SageMaker role is used")
                del request[role_field]
        if stage == "create_model":
            container = request.get("PrimaryContainer", {})
            if "ModelDataUrl" in container:
                item["stages"].setdefault("create_model", {})["model_data_url"] = container.pop("ModelDataUrl")
        if stage == "batch_transform":
            request.pop("ModelName", None)
        item["stages"][stage] = item["stages"].get(stage, {}) | {
            "run": bool(block.get("run")),
            "request": request,
        }
    unknown = sorted(set(config) - set(AIOPS_BLOCKS) - {"app_id", "model_id", "job_prefix"})
    for key in unknown:
        notes.append(f"{key}: not a field of the aiops format; not carried over")
    create_model = item["stages"].get("create_model", {})
    trained = item["stages"].get("training", {}).get("run")
    if create_model.get("run") and trained and "model_data_url" in create_model:
        # aiops found the model by convention under the training output; here it comes from training directly.
        del create_model["model_data_url"]
        notes.append("CreateModel.input.PrimaryContainer.ModelDataUrl: dropped; the model comes from training")
    return item, notes


def _flag(value: Any) -> bool:
    return str(value).strip().upper() in ("Y", "YES", "TRUE")


def from_reusable_framework(document: Any) -> tuple[dict[str, Any], list[str]]:
    """An item from a sagemaker-mlops-reusable-framework DynamoDB item (typed or plain JSON)."""
    if isinstance(document, dict) and set(document) == {"Item"}:
        document = document["Item"]
    if not isinstance(document, dict):
        raise ItemFileError("expected a JSON object holding the earlier framework's DynamoDB item")
    old = dynamodb_json.from_typed(document) if dynamodb_json.is_typed_item(document) else document
    if not old.get("name"):
        raise ItemFileError("name: missing; it is the earlier item's key and names the pipeline")
    notes: list[str] = []
    name = _pipeline_name(str(old["name"]))
    stages: dict[str, Any] = {}
    item: dict[str, Any] = {
        "consumption_pipeline_name": name,
        "schema_version": 1,
        "enabled": True,
        "description": f"Imported from sagemaker-mlops-reusable-framework item {old['name']!r}",
        "stages": stages,
    }
    for key in ("acc_id", "region", "sagemaker_role_arn", "state_machine_name"):
        if old.get(key):
            notes.append(f"{key}: not carried over; the deployment (Terraform) provides it")
    for key in ("dataset_date", "event_source"):
        if old.get(key):
            notes.append(f"{key}: not carried over; it comes from each triggering event")
    for key in ("env", "project", "app", "pipeline_stage"):
        if old.get(key):
            notes.append(f"{key}={old[key]!r}: kept in description only; use Terraform tags for it")
            item["description"] += f"; {key}={old[key]}"

    pre = old.get("preprocessing")
    if isinstance(pre, dict) and pre:
        job_type = pre.get("job_type", "sagemaker-processing")
        if job_type != "sagemaker-processing":
            notes.append(f"preprocessing.job_type {job_type!r}: cannot be carried over; only SageMaker Processing runs")
        else:
            stages["preprocessing"] = {"run": True, "request": _old_processing(pre, notes)}
    training = old.get("training")
    if isinstance(training, dict) and training:
        stages["training"] = {"run": _flag(old.get("training_job")), "request": _old_training(training, pre)}
    tuning = old.get("tuning")
    if isinstance(tuning, dict) and tuning:
        stages["tuning"] = {
            "run": _flag(old.get("tuning_job")),
            "request": _old_tuning(tuning, training, pre, notes),
        }
    model_para = old.get("model_para") or {}
    if _flag(old.get("create_model")) or model_para:
        request: dict[str, Any] = {}
        if model_para.get("environment"):
            request["PrimaryContainer"] = {"Environment": {k: str(v) for k, v in model_para["environment"].items()}}
        stages["create_model"] = {"run": _flag(old.get("create_model")), "request": request}
        if model_para.get("model_name"):
            notes.append("model_para.model_name: dropped; models are named per execution")
    transform = old.get("transform_para") or {}
    if _flag(old.get("transform_job")) or transform:
        request = {
            "TransformInput": {
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": (pre or {}).get("output_test_data_path", "s3://{bucket}/{upload_prefix}"),
                    }
                },
                "ContentType": "text/csv",
            }
        }
        if transform.get("output"):
            request["TransformOutput"] = {"S3OutputPath": transform["output"]}
        stages["batch_transform"] = {"run": _flag(old.get("transform_job")), "request": request}
    endpoint = old.get("endpoint_para") or {}
    if _flag(old.get("create_endpoint")) or endpoint:
        stages["deploy"] = {"run": _flag(old.get("create_endpoint"))}
        if endpoint.get("endpoint_name"):
            stages["deploy"]["endpoint_name"] = names.stable_name(str(endpoint["endpoint_name"]))
        notes.append("deploy: the endpoint is now updated in place when it exists, and waited for")
    if old.get("config_para"):
        notes.append("config_para: dropped; endpoint configs are named per execution")
    if _flag(old.get("postprocessing_job")):
        notes.append("postprocessing_job: cannot be carried over; there is no postprocessing stage")
    if _flag(old.get("create_endpoint_config")) and not _flag(old.get("create_endpoint")):
        notes.append("create_endpoint_config without create_endpoint: not carried over; deploy creates both")
    return item, notes


def _old_processing(pre: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    app: dict[str, Any] = {}
    if pre.get("image_url"):
        app["ImageUri"] = pre["image_url"]
    if pre.get("container_entrypoint"):
        app["ContainerEntrypoint"] = list(pre["container_entrypoint"])
    if pre.get("container_argument"):
        app["ContainerArguments"] = [str(a) for a in pre["container_argument"]]
    request: dict[str, Any] = {"AppSpecification": app}
    if pre.get("instance_type"):
        request["ProcessingResources"] = {"ClusterConfig": {"InstanceType": pre["instance_type"]}}
    if pre.get("source_code_path"):
        request["ProcessingInputs"] = [
            {
                "InputName": "code",
                "S3Input": {
                    "S3Uri": pre["source_code_path"],
                    "LocalPath": "/opt/ml/processing/input/code",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            }
        ]
    outputs = []
    for field, local in (
        ("output_train_data_path", "train"),
        ("output_test_data_path", "test"),
        ("output_result_data_path", "result"),
    ):
        if pre.get(field):
            outputs.append(
                {
                    "OutputName": local,
                    "S3Output": {
                        "S3Uri": pre[field],
                        "LocalPath": f"/opt/ml/processing/output/{local}",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            )
    if outputs:
        request["ProcessingOutputConfig"] = {"Outputs": outputs}
    if pre.get("job_name"):
        notes.append("preprocessing.job_name: dropped; jobs are named per execution")
    if pre.get("entrypoint_path"):
        notes.append("preprocessing.entrypoint_path: carried only through container_entrypoint")
    return request


def _train_channel(pre: dict[str, Any] | None) -> list[dict[str, Any]]:
    uri = (pre or {}).get("output_train_data_path")
    if not uri:
        return []
    return [
        {
            "ChannelName": "train",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}},
            "ContentType": "text/csv",
        }
    ]


def _old_job(block: dict[str, Any], image: str | None, pre: dict[str, Any] | None) -> dict[str, Any]:
    """The fields a training job and a tuning job's training definition share in the earlier item."""
    algorithm: dict[str, Any] = {"TrainingInputMode": "File"}
    if image:
        algorithm["TrainingImage"] = image
    if block.get("metricdefinitions"):
        algorithm["MetricDefinitions"] = list(block["metricdefinitions"])
    job: dict[str, Any] = {"AlgorithmSpecification": algorithm}
    if block.get("instance_type"):
        job["ResourceConfig"] = {"InstanceType": block["instance_type"]}
    if block.get("output_path"):
        job["OutputDataConfig"] = {"S3OutputPath": block["output_path"]}
    channels = _train_channel(pre)
    if channels:
        job["InputDataConfig"] = channels
    return job


def _old_training(training: dict[str, Any], pre: dict[str, Any] | None) -> dict[str, Any]:
    request = _old_job(training, training.get("image_url"), pre)
    if training.get("hyperparameters"):
        request["HyperParameters"] = {k: str(v) for k, v in training["hyperparameters"].items()}
    return request


def _old_tuning(
    tuning: dict[str, Any], training: dict[str, Any] | None, pre: dict[str, Any] | None, notes: list[str]
) -> dict[str, Any]:
    objective = tuning.get("hyperparametejobobjective") or {}
    definition = _old_job(tuning, tuning.get("image_url") or (training or {}).get("image_url"), pre)
    definition["StaticHyperParameters"] = {k: str(v) for k, v in (tuning.get("statichyperparameters") or {}).items()}
    ranges = tuning.get("parameterranges") or {}
    config: dict[str, Any] = {
        "Strategy": "Bayesian",
        "ResourceLimits": {"MaxNumberOfTrainingJobs": 10, "MaxParallelTrainingJobs": 2},
        "ParameterRanges": ranges,
    }
    if objective:
        config["HyperParameterTuningJobObjective"] = objective
    notes.append("tuning: ResourceLimits set to 10 jobs, 2 in parallel; the earlier item had none")
    return {"HyperParameterTuningJobConfig": config, "TrainingJobDefinition": definition}
