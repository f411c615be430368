"""Migration from the earlier formats to an item of this framework.

The importers carry over what an upstream run did, read from the upstream projects' own state
machines and scripts, not only the fields' names: the members each state machine sent SageMaker
(nothing else), its fixed settings (channels, time limits, volumes, instance types), its naming
conventions rewired to this framework's placeholders, and the deploy-time tokens its files hold,
filled by `--set NAME=VALUE` or reported. Each importer returns the item and notes saying what
changed and why; the CLI then checks the item with the same rules as `validate`.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from ..core import dynamodb_json, names, tags
from ..core.item import ItemFileError
from ..core.plan import map_strings

MODEL = "{model_data_url}"


def _pipeline_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:64] or "imported-pipeline"


def _found(value: Any, pattern: re.Pattern[str]) -> set[str]:
    found: set[str] = set()

    def collect(text: str) -> str:
        found.update(pattern.findall(text))
        return text

    map_strings(value, collect)
    return found


def fill(document: Any, pattern: re.Pattern[str], values: dict[str, str]) -> Any:
    """The earlier file with its deploy-time tokens (pattern's group 1 names each) replaced by `values`."""
    return map_strings(document, lambda text: pattern.sub(lambda m: values.get(m.group(1), m.group(0)), text))


def unfilled(item: Any, pattern: re.Pattern[str]) -> list[str]:
    """The tokens in a document: still in an imported item, each needs `--set NAME=VALUE`."""
    return sorted(_found(item, pattern))


# --- aiops-modules mlops-stepfunctions -----------------------------------------------------------

# Its deployspec.yaml fills these with `sed` at deploy time (SFN_EXECUTION_ID is the run's own).
AIOPS_TOKENS = re.compile(r"\b(MLOPS_BUCKET|IMAGE_URI|SAGEMAKER_EXECUTION_ROLE|MODEL_NAME|AWS_REGION_NAME)\b")
# The tokens this framework fills itself: the deployment's region is every run's {region}.
AIOPS_FILLED = {"AWS_REGION_NAME": "{region}"}
# Block -> (stage, the members its state_machine.json sent SageMaker; anything else was never sent).
_PROCESSING = (
    "AppSpecification",
    "Environment",
    "NetworkConfig",
    "ProcessingInputs",
    "ProcessingOutputConfig",
    "ProcessingResources",
    "RoleArn",
    "StoppingCondition",
    "Tags",
)
AIOPS_BLOCKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "preprocessing": ("preprocessing", _PROCESSING),
    "training": (
        "training",
        (
            "AlgorithmSpecification",
            "HyperParameters",
            "InputDataConfig",
            "OutputDataConfig",
            "ResourceConfig",
            "RoleArn",
            "Environment",
            "StoppingCondition",
            "Tags",
            "RetryStrategy",
            "VpcConfig",
        ),
    ),
    "evaluation": ("evaluation", _PROCESSING),
    "CreateModel": ("create_model", ("Containers", "EnableNetworkIsolation", "PrimaryContainer", "VpcConfig")),
    "batchTransform": (
        "batch_transform",
        (
            "BatchStrategy",
            "Environment",
            "MaxConcurrentTransforms",
            "MaxPayloadInMB",
            "Tags",
            "TransformInput",
            "TransformOutput",
            "TransformResources",
        ),
    ),
}
_AIOPS_NAMED = {"ProcessingJobName", "TrainingJobName", "ModelName", "TransformJobName"}  # from the execution
_AIOPS_ROLES = {"RoleArn", "ExecutionRoleArn"}
_EVALUATION_REPORT = "evaluation.json"  # what the example's scripts/evaluation.py writes


def _drop_nulls(value: Any) -> Any:
    """aiops configs list optional members as null; SageMaker rejects nulls."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value if v is not None]
    return value


def _move_tags(request: dict[str, Any], item: dict[str, Any], where: str, notes: list[str]) -> None:
    """A request's Tags become the item's tags, which every resource of a run carries (tags.py)."""
    listed = request.pop("Tags", None)
    if not isinstance(listed, list) or not listed:
        return
    kept = item.setdefault("tags", {})
    for tag in listed:
        key, value = str(tag.get("Key", "")), str(tag.get("Value", ""))
        if key.lower().startswith(tags.RESERVED):
            notes.append(f"{where}: {key!r} dropped; keys starting with aws: or mlops-sfn: are not an item's")
        elif kept.setdefault(key, value) != value:
            notes.append(f"{where}: {key}={value!r} dropped; the item's tags keep {key}={kept[key]!r}")
    notes.append(f"{where}: moved to the item's tags; every resource a run creates carries them")


def from_aiops(config: Any, values: dict[str, str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """An item from an aiops-modules `mlops-stepfunctions` input.yaml (already parsed)."""
    if not isinstance(config, dict):
        raise ItemFileError("expected a YAML mapping with app_id, model_id and stage blocks")
    config = fill(config, AIOPS_TOKENS, AIOPS_FILLED | (values or {}))
    # The run's execution name, which its handler put in place of SFN_EXECUTION_ID.
    config = map_strings(config, lambda text: text.replace("SFN_EXECUTION_ID", "{execution}"))
    notes: list[str] = []
    app, model = config.get("app_id"), config.get("model_id")
    if not app and not model:
        raise ItemFileError("app_id and model_id: both missing; one of them names the pipeline")
    item: dict[str, Any] = {
        "consumption_pipeline_name": _pipeline_name("-".join(str(p) for p in (app, model) if p)),
        "schema_version": 1,
        "enabled": True,
        "description": f"Imported from aiops-modules mlops-stepfunctions (app_id={app}, model_id={model})",
        "stages": {},
    }
    if config.get("job_prefix"):
        notes.append(f"job_prefix {config['job_prefix']!r}: not carried over; runs are named per trigger")
    for block_name, (stage, sent) in AIOPS_BLOCKS.items():
        block = config.get(block_name)
        if block is None:
            continue
        if not isinstance(block, dict):
            raise ItemFileError(f"{block_name}: expected a mapping with run and input")
        request = _drop_nulls(block.get("input") or {})
        for field in sorted(set(request) - set(sent)):
            del request[field]
            if field in _AIOPS_NAMED:
                notes.append(f"{block_name}.input.{field}: dropped; the framework names every job per run")
            elif field in _AIOPS_ROLES:
                notes.append(f"{block_name}.input.{field}: dropped; the deployment's SageMaker role is used")
            else:
                notes.append(f"{block_name}.input.{field}: dropped; the earlier state machine never sent it")
        for field in sorted(_AIOPS_ROLES & set(request)):
            del request[field]
            notes.append(f"{block_name}.input.{field}: dropped; the deployment's SageMaker role is used")
        _move_tags(request, item, f"{block_name}.input.Tags", notes)
        item["stages"][stage] = {"run": bool(block.get("run")), "request": request}
    unknown = sorted(set(config) - set(AIOPS_BLOCKS) - {"app_id", "model_id", "job_prefix"})
    for key in unknown:
        notes.append(f"{key}: not a field of the aiops format; not carried over")
    _rewire_aiops_model(item["stages"], notes)
    _aiops_report(item["stages"], notes)
    return item, notes


def _rewire_aiops_model(stages: dict[str, Any], notes: list[str]) -> None:
    """The earlier runs found their model by convention: the training job was named after the
    execution, so the model was at <S3OutputPath>/<execution>/output/model.tar.gz. Here jobs have
    their own names, and {model_data_url} is this run's model."""
    training = stages.get("training", {})
    output = training.get("request", {}).get("OutputDataConfig", {}).get("S3OutputPath")
    if not output:
        return
    convention = f"{output.rstrip('/')}/{{execution}}/output/model.tar.gz"
    rewired: list[str] = []

    def rewire(text: str) -> str:
        return MODEL if text == convention else text

    for stage in ("evaluation", "create_model", "batch_transform"):
        if stage in stages:
            before = copy.deepcopy(stages[stage])
            stages[stage] = map_strings(stages[stage], rewire)
            if stages[stage] != before:
                rewired.append(stage)
    container = stages.get("create_model", {}).get("request", {}).get("PrimaryContainer", {})
    if container.get("ModelDataUrl") == MODEL:
        del container["ModelDataUrl"]  # the framework's default for a trained model
    if rewired:
        source = "training" if training.get("run") else "stages.create_model.model_data_url (training does not run)"
        notes.append(
            f"{', '.join(rewired)}: {convention} (the earlier convention: training named after the run) is now"
            f" {MODEL}, the model this run trains; from {source}"
        )


def _aiops_report(stages: dict[str, Any], notes: list[str]) -> None:
    """The example's evaluation.py writes evaluation.json in its one output: evaluation's checkpoint reads it there."""
    outputs = stages.get("evaluation", {}).get("request", {}).get("ProcessingOutputConfig", {}).get("Outputs", [])
    if len(outputs) != 1 or "S3Output" not in outputs[0]:
        return
    report = f"{outputs[0]['S3Output']['S3Uri'].rstrip('/')}/{_EVALUATION_REPORT}"
    stages["evaluation"]["report_uri"] = report
    notes.append(
        f"evaluation.report_uri: {report}, where the example's evaluation.py writes its report; change it if"
        " your script writes another file"
    )


# --- sagemaker-mlops-reusable-framework ----------------------------------------------------------

# Placeholders its sample item carries for the user to fill, e.g. "<your bucket>".
REUSABLE_TOKENS = re.compile(r"<([^<>]+)>")
# What its state machine (statemachines/this.json) set itself, whatever the item held.
_VOLUME_GB = 30
_PROCESSING_SECONDS = 7200
_TRAINING_SECONDS = 86400
_TUNING_LIMITS = {"MaxNumberOfTrainingJobs": 10, "MaxParallelTrainingJobs": 5}
_TRANSFORM_INSTANCE = "ml.m4.xlarge"
_ENDPOINT_INSTANCE = "ml.t2.medium"


# Names the earlier item fixed, so that a second run collided with the first.
_FIXED_NAMES = (
    ("preprocessing", "job_name"),
    ("training", "job_name"),
    ("tuning", "job_name"),
    ("model_para", "model_name"),
    ("transform_para", "job_name"),
    ("config_para", "config_name"),
)


def _flag(value: Any) -> bool:
    return str(value).strip().upper() in ("Y", "YES", "TRUE")


def from_reusable_framework(document: Any, values: dict[str, str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """An item from a sagemaker-mlops-reusable-framework DynamoDB item (typed or plain JSON)."""
    if isinstance(document, dict) and set(document) == {"Item"}:
        document = document["Item"]
    if not isinstance(document, dict):
        raise ItemFileError("expected a JSON object holding the earlier framework's DynamoDB item")
    old = dynamodb_json.from_typed(document) if dynamodb_json.is_typed_item(document) else document
    old = fill(old, REUSABLE_TOKENS, values or {})
    if not old.get("name"):
        raise ItemFileError("name: missing; it is the earlier item's key and names the pipeline")
    notes: list[str] = []
    stages: dict[str, Any] = {}
    item: dict[str, Any] = {
        "consumption_pipeline_name": _pipeline_name(str(old["name"])),
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
    fixed = [
        f"{block}.{field}"
        for block, field in _FIXED_NAMES
        if isinstance(old.get(block), dict) and old[block].get(field)
    ]
    if fixed:
        notes.append(f"{', '.join(fixed)}: dropped; the framework names jobs, models and endpoint configs per run")

    pre = old.get("preprocessing") if isinstance(old.get("preprocessing"), dict) else {}
    training = old.get("training") if isinstance(old.get("training"), dict) else {}
    if pre:
        job_type = pre.get("job_type", "sagemaker-processing")
        if job_type != "sagemaker-processing":
            notes.append(f"preprocessing.job_type {job_type!r}: cannot be carried over; only SageMaker Processing runs")
        else:
            # The earlier state machine ran preprocessing whenever its job_type said SageMaker.
            stages["preprocessing"] = {"run": True, "request": _old_processing(pre)}
    if training:
        stages["training"] = {"run": _flag(old.get("training_job")), "request": _old_training(training, pre)}
    tuning = old.get("tuning")
    if isinstance(tuning, dict) and tuning:
        stages["tuning"] = {"run": _flag(old.get("tuning_job")), "request": _old_tuning(tuning, training, pre)}
        notes.append(
            "tuning: Bayesian, at most 10 training jobs, 5 in parallel, the training image and both channels,"
            " as the earlier state machine set them"
        )
    model_para = old.get("model_para") or {}
    if _flag(old.get("create_model")) or model_para:
        container: dict[str, Any] = {}
        if training.get("image_url"):
            container["Image"] = training["image_url"]  # served with the image it was trained with
        if model_para.get("environment"):
            container["Environment"] = {k: str(v) for k, v in model_para["environment"].items()}
        stages["create_model"] = {"run": _flag(old.get("create_model"))}
        if container:
            stages["create_model"]["request"] = {"PrimaryContainer": container}
        if _flag(old.get("tuning_job")) and not _flag(old.get("training_job")):
            notes.append("create_model: the model is the best tuning job's; the earlier state machine read training's")
    transform = old.get("transform_para") or {}
    if _flag(old.get("transform_job")) or transform:
        stages["batch_transform"] = {"run": _flag(old.get("transform_job")), "request": _old_transform(transform, pre)}
        notes.append(
            "batch_transform: the earlier state machine read $.tansform_para (sic), so with an item holding"
            " transform_para, as its sample does, its transform step failed; the import takes transform_para"
        )
    endpoint = old.get("endpoint_para") or {}
    if _flag(old.get("create_endpoint")) or endpoint:
        stages["deploy"] = {
            "run": _flag(old.get("create_endpoint")),
            "instance_type": _ENDPOINT_INSTANCE,
            "instance_count": 1,
        }
        if endpoint.get("endpoint_name"):
            stages["deploy"]["endpoint_name"] = names.stable_name(str(endpoint["endpoint_name"]))
        notes.append(
            f"deploy: one {_ENDPOINT_INSTANCE}, as the earlier endpoint config; an existing endpoint is now"
            " updated in place, and waited for"
        )
    if _flag(old.get("postprocessing_job")):
        notes.append("postprocessing_job: cannot be carried over; there is no postprocessing stage")
    if _flag(old.get("create_endpoint_config")) and not _flag(old.get("create_endpoint")):
        notes.append("create_endpoint_config without create_endpoint: not carried over; deploy creates both")
    return item, notes


def _s3_input(name: str, uri: str, local: str) -> dict[str, Any]:
    return {
        "InputName": name,
        "AppManaged": False,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
            "S3CompressionType": "None",
        },
    }


def _old_processing(pre: dict[str, Any]) -> dict[str, Any]:
    """The earlier "Execute preprocessing SageMaker Processing" request."""
    app: dict[str, Any] = {}
    if pre.get("image_url"):
        app["ImageUri"] = pre["image_url"]
    if pre.get("container_entrypoint"):
        app["ContainerEntrypoint"] = list(pre["container_entrypoint"])
    if pre.get("container_argument"):
        app["ContainerArguments"] = [str(a) for a in pre["container_argument"]]
    cluster: dict[str, Any] = {"InstanceCount": 1, "VolumeSizeInGB": _VOLUME_GB}
    if pre.get("instance_type"):
        cluster["InstanceType"] = pre["instance_type"]
    request: dict[str, Any] = {
        "AppSpecification": app,
        "ProcessingResources": {"ClusterConfig": cluster},
        "StoppingCondition": {"MaxRuntimeInSeconds": _PROCESSING_SECONDS},
    }
    inputs = [
        _s3_input(name, pre[field], f"/opt/ml/processing/input/{name}")
        for name, field in (("code", "source_code_path"), ("entrypoint", "entrypoint_path"))
        if pre.get(field)
    ]
    if inputs:
        request["ProcessingInputs"] = inputs
    outputs = [
        {
            "OutputName": name,
            "AppManaged": False,
            "S3Output": {"S3Uri": pre[field], "LocalPath": local, "S3UploadMode": "EndOfJob"},
        }
        for name, field, local in (
            ("train_data", "output_train_data_path", "/opt/ml/processing/train"),
            ("test_data", "output_test_data_path", "/opt/ml/processing/test"),
            ("result_data", "output_result_data_path", "/opt/ml/processing/output"),
        )
        if pre.get(field)
    ]
    if outputs:
        request["ProcessingOutputConfig"] = {"Outputs": outputs}
    return request


def _channels(pre: dict[str, Any]) -> list[dict[str, Any]]:
    """train and test, from preprocessing's outputs, as the earlier state machine gave every training job."""
    return [
        {
            "ChannelName": name,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": pre[field],
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
            "ContentType": "text/csv",
        }
        for name, field in (("train", "output_train_data_path"), ("test", "output_test_data_path"))
        if pre.get(field)
    ]


def _old_job(block: dict[str, Any], image: str | None, pre: dict[str, Any]) -> dict[str, Any]:
    """What a training job and a tuning job's training definition shared in the earlier state machine."""
    algorithm: dict[str, Any] = {"TrainingInputMode": "File"}
    if image:
        algorithm["TrainingImage"] = image
    if block.get("metricdefinitions"):
        algorithm["MetricDefinitions"] = list(block["metricdefinitions"])
    resources: dict[str, Any] = {"InstanceCount": 1, "VolumeSizeInGB": _VOLUME_GB}
    if block.get("instance_type"):
        resources["InstanceType"] = block["instance_type"]
    job: dict[str, Any] = {
        "AlgorithmSpecification": algorithm,
        "ResourceConfig": resources,
        "StoppingCondition": {"MaxRuntimeInSeconds": _TRAINING_SECONDS},
    }
    if block.get("output_path"):
        job["OutputDataConfig"] = {"S3OutputPath": block["output_path"]}
    channels = _channels(pre)
    if channels:
        job["InputDataConfig"] = channels
    return job


def _old_training(training: dict[str, Any], pre: dict[str, Any]) -> dict[str, Any]:
    request = _old_job(training, training.get("image_url"), pre)
    if training.get("hyperparameters"):
        request["HyperParameters"] = {k: str(v) for k, v in training["hyperparameters"].items()}
    if training.get("output_path"):
        request["DebugHookConfig"] = {"S3OutputPath": training["output_path"]}
    return request


def _old_tuning(tuning: dict[str, Any], training: dict[str, Any], pre: dict[str, Any]) -> dict[str, Any]:
    # The earlier tuning ran training's image, whatever the tuning block held.
    definition = _old_job(tuning, training.get("image_url") or tuning.get("image_url"), pre)
    definition["StaticHyperParameters"] = {k: str(v) for k, v in (tuning.get("statichyperparameters") or {}).items()}
    config: dict[str, Any] = {
        "Strategy": "Bayesian",
        "ResourceLimits": dict(_TUNING_LIMITS),
        "ParameterRanges": tuning.get("parameterranges") or {},
    }
    if tuning.get("hyperparametejobobjective"):
        config["HyperParameterTuningJobObjective"] = tuning["hyperparametejobobjective"]
    return {"HyperParameterTuningJobConfig": config, "TrainingJobDefinition": definition}


def _old_transform(transform: dict[str, Any], pre: dict[str, Any]) -> dict[str, Any]:
    """The earlier "SageMaker - Batch Transform" request: the test data, its header line dropped."""
    request: dict[str, Any] = {
        "TransformInput": {
            "SplitType": "Line",
            "CompressionType": "None",
            "ContentType": "text/csv",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": pre.get("output_test_data_path", "s3://{bucket}/{upload_prefix}"),
                }
            },
        },
        "DataProcessing": {"InputFilter": "$[1:]"},
        "TransformResources": {"InstanceCount": 1, "InstanceType": _TRANSFORM_INSTANCE},
    }
    if transform.get("output"):
        request["TransformOutput"] = {"S3OutputPath": transform["output"], "AssembleWith": "Line", "Accept": "text/csv"}
    return request
