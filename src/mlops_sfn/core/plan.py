"""The execution input: built here, and only here, for `mlops-sfn plan` and for the router Lambda."""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import monitoring, names, sagemaker_api, stages
from .contract import ROUTER_ENVIRONMENT
from .item import check_item, model_sources
from .problems import InvalidItem, Problem
from .stages import OPERATIONS, STAGES, runs
from .triggers import Trigger, completes_upload

EXECUTION_INPUT_VERSION = 1
ENDPOINT_WAIT_SECONDS = 30
ENDPOINT_PROVISIONING_SECONDS = 3600  # SageMaker's own limit for an endpoint to come up
VARIANT_NAME = "AllTraffic"

# Step Functions carries at most 262,144 bytes (UTF-8) in an execution's input and in each state's
# input and output ("Step Functions service quotas"); over it, States.DataLimitExceeded ends the run
# and no Catch sees it. The run adds its results to the input, so the planned input keeps room.
MAX_PLANNED_INPUT_BYTES = 192 * 1024
# A Standard workflow runs at most one year ("Step Functions service quotas"); a run stopped there
# sends no failure notification.
EXECUTION_LIMIT_SECONDS = 365 * 24 * 3600
DEFAULT_JOB_LIMIT_SECONDS = 86_400  # SageMaker's MaxRuntimeInSeconds when a job's request sets none


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

# A trigger used to check filled requests when no event is at hand.
SAMPLE_TRIGGER = Trigger(source="manual", run_id="preview", dataset_date="2024-01-31")


def apply_overrides(item: dict[str, Any], trigger: Trigger) -> dict[str, Any]:
    merged: dict[str, Any] = stages.merge(item, trigger.overrides) if trigger.overrides else item
    return merged


def plan_execution(item: dict[str, Any], trigger: Trigger, settings: Settings) -> dict[str, Any]:
    """The execution input for one trigger of one item; raises InvalidItem listing every problem."""
    item = apply_overrides(item, trigger)
    problems = check_item(item)
    if problems:
        raise InvalidItem(problems)
    pipeline = item["consumption_pipeline_name"]
    execution = names.execution_name(pipeline, trigger.identity())
    values = _placeholder_values(item, trigger, settings, execution)
    run = {stage: runs(item, stage) for stage in STAGES}
    # Monitoring follows each deploy: set up for the new model, or, in an item without it, the endpoint's
    # schedule and drift alarm taken down (switching it off stops it at the next deploy). A run that
    # does not deploy leaves it as it is.
    run["monitoring"] = run["deploy"]
    if trigger.source == "monitoring" and _on_drift(item) == "notify":
        run = {stage: False for stage in STAGES}  # the run only says that the model drifted
    blocks = {stage: fill(_stage_input(item, stage, execution, settings), values) for stage in STAGES if run[stage]}
    problems = _check_filled(blocks) + _check_reach(blocks, settings.sagemaker_name_prefix)
    problems += _check_images(blocks, settings.image_repository_arns)
    problems += _check_access(blocks, settings) + _check_analyzer(blocks, settings.region)
    if problems:
        raise InvalidItem(problems)
    notify = item.get("notifications", {}).get("on", ["failure"])
    execution_input: dict[str, Any] = {
        "version": EXECUTION_INPUT_VERSION,
        "pipeline": pipeline,
        "execution_name": execution,
        "dataset_date": values["dataset_date"],
        "trigger": trigger.as_dict(),
        "run_folder": fill(stages.RUN_FOLDER + "/", values),
        "run": run,
        "stages": blocks,
        "notify": {"on_failure": "failure" in notify, "on_success": "success" in notify},
        "results": {},  # each stage writes its trimmed result here; present even when no stage runs
    }
    if "quality_gate" in item:
        execution_input["quality_gate"] = item["quality_gate"]
    problems = _check_size(execution_input) + _check_duration(blocks)
    if problems:
        raise InvalidItem(problems)
    return execution_input


def _check_size(execution_input: dict[str, Any]) -> list[Problem]:
    """The input as the router sends it must leave room for the results the run adds."""
    size = len(json.dumps(execution_input).encode("utf-8"))
    if size <= MAX_PLANNED_INPUT_BYTES:
        return []
    blocks = execution_input["stages"]
    largest = max(blocks, key=lambda stage: len(json.dumps(blocks[stage]).encode("utf-8")))
    return [
        Problem(
            f"stages.{largest}",
            f"the run's input would be {size} bytes, more than {MAX_PLANNED_INPUT_BYTES} (Step Functions"
            " carries at most 262,144 bytes per state, and the run adds its results): shrink the largest"
            " block, this one, e.g. move long values into a file the job reads from S3",
        )
    ]


def _job_limit(request: dict[str, Any]) -> int:
    stop = request.get("StoppingCondition", {})
    return max(
        int(stop.get("MaxRuntimeInSeconds", DEFAULT_JOB_LIMIT_SECONDS)), int(stop.get("MaxWaitTimeInSeconds", 0))
    )


def _tuning_limit(block: dict[str, Any]) -> int:
    request = block["request"]
    limits = request["HyperParameterTuningJobConfig"].get("ResourceLimits", {})
    if "MaxRuntimeInSeconds" in limits:
        return int(limits["MaxRuntimeInSeconds"])
    rounds = -(-int(limits.get("MaxNumberOfTrainingJobs", 1)) // int(limits.get("MaxParallelTrainingJobs", 1)))
    return rounds * _job_limit(request.get("TrainingJobDefinition", {}))


# The longest each running stage can take, in seconds, as far as its planned input bounds it; stages
# not listed are single API calls, or a transform job (SageMaker sets no run time limit on one).
_LIMITS: dict[str, Callable[[dict[str, Any]], int]] = {
    "preprocessing": lambda block: _job_limit(block["request"]),
    "training": lambda block: _job_limit(block["request"]),
    "tuning": _tuning_limit,
    "evaluation": lambda block: _job_limit(block["request"]),
    "approval": lambda block: int(block["timeout_seconds"]),
    # waiting for a busy endpoint, then for its own update
    "deploy": lambda block: 2 * int(block["wait_seconds"]) * int(block["max_checks"]),
    "monitoring": lambda block: _job_limit(block["request"]) if "request" in block else 0,
}


def _check_duration(blocks: dict[str, Any]) -> list[Problem]:
    """A run must be able to finish within the execution limit, approval wait included."""
    total = sum(_LIMITS[stage](block) for stage, block in blocks.items() if stage in _LIMITS)
    if total < EXECUTION_LIMIT_SECONDS:
        return []
    where = "stages.approval.timeout_hours" if "approval" in blocks else "stages"
    return [
        Problem(
            where,
            f"the run could take {total / 86_400:.0f} days (the approval timeout plus the stages' time limits),"
            " and Step Functions stops a run after 365 days without a failure notification: lower the"
            " approval timeout or the StoppingCondition of the jobs",
        )
    ]


def _placeholder_values(item: dict[str, Any], trigger: Trigger, settings: Settings, execution: str) -> dict[str, str]:
    upload_prefix = item.get("trigger", {}).get("prefix", "")
    if trigger.source in ("s3", "monitoring") and trigger.key:  # a drift run: the latest upload's (router)
        upload_prefix = trigger.key.rsplit("/", 1)[0] + "/" if "/" in trigger.key else ""
    values = {
        "bucket": settings.bucket,
        "pipeline": item["consumption_pipeline_name"],
        "execution": execution,
        "dataset_date": trigger.day(),
        "upload_prefix": upload_prefix,
        "region": settings.region,
        "role_arn": settings.sagemaker_role_arn,
        "image": settings.default_image_uri,
    }
    analyzer = monitoring.analyzer_image(settings.region)
    if analyzer:
        values["analyzer_image"] = analyzer
    dataset = stages.training_data(item)
    if dataset:
        values["baseline_dataset"] = fill(dataset, values)
    sources = model_sources(item)
    if sources:
        values["model_data_url"] = fill(stages.model_data_url(item, sources[0], execution), values)
    return values


# Each stage's part of the execution input, which its states read: given the item, the run's
# execution name and the deployment, one function per stage (in catalog order, as the definition
# builder composes its states).
def _request(item: dict[str, Any], stage: str, execution: str) -> dict[str, Any]:
    return {"request": stages.merged_request(stage, item, execution)}


def _job_input(stage: str) -> Callable[[dict[str, Any], str, Settings], dict[str, Any]]:
    """A stage that is its SageMaker request and nothing more."""
    return lambda item, execution, settings: _request(item, stage, execution)


def _tuning_input(item: dict[str, Any], execution: str, settings: Settings) -> dict[str, Any]:
    result = _request(item, "tuning", execution)
    # The state machine copies the best job's model.tar.gz (under source_folder) to where
    # {model_data_url} points, which the later stages were planned with.
    output = result["request"]["TrainingJobDefinition"]["OutputDataConfig"]["S3OutputPath"].rstrip("/")
    result["best_model"] = {"source_folder": output, "target": stages.model_data_url(item, "tuning", execution)}
    return result


def _evaluation_input(item: dict[str, Any], execution: str, settings: Settings) -> dict[str, Any]:
    result = _request(item, "evaluation", execution)
    uri = item["stages"]["evaluation"].get("report_uri", stages.RUN_FOLDER + "/evaluation/evaluation.json")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    result["report"] = {"Bucket": bucket, "Key": key}  # where the quality gate reads it
    return result


def _register_input(item: dict[str, Any], execution: str, settings: Settings) -> dict[str, Any]:
    result = _request(item, "register", execution)
    block = item["stages"]["register"]
    if not block.get("model_package_group") and "ModelPackageGroupName" not in block.get("request", {}):
        pipeline = item["consumption_pipeline_name"]
        result["request"]["ModelPackageGroupName"] = names.stable_name(pipeline, settings.sagemaker_name_prefix)
    result["request"]["ModelApprovalStatus"] = "PendingManualApproval" if runs(item, "approval") else "Approved"
    _add_model_data(result["request"].get("InferenceSpecification", {}).get("Containers", []))
    result["model_source"] = model_sources(item)[0]
    return result


def _approval_input(item: dict[str, Any], execution: str, settings: Settings) -> dict[str, Any]:
    return {"timeout_seconds": item["stages"]["approval"].get("timeout_hours", 24) * 3600}


def _create_model_input(item: dict[str, Any], execution: str, settings: Settings) -> dict[str, Any]:
    result = _request(item, "create_model", execution)
    request = result["request"]
    _add_model_data([request["PrimaryContainer"]] if "PrimaryContainer" in request else request["Containers"])
    result["model_source"] = model_sources(item)[0]
    return result


def _deploy_stage_input(item: dict[str, Any], execution: str, settings: Settings) -> dict[str, Any]:
    result = _deploy_input(item, execution, settings.sagemaker_name_prefix)
    if runs(item, "monitoring"):
        pipeline = item["consumption_pipeline_name"]
        capture = monitoring.data_capture_config(item["stages"]["monitoring"], settings.bucket, pipeline)
        result["endpoint_config_request"]["DataCaptureConfig"] = capture
    return result


def _monitoring_input(item: dict[str, Any], execution: str, settings: Settings) -> dict[str, Any]:
    """The baseline job, the job definition, the schedule and the drift alarm of the deployed endpoint;
    or, when the item deploys without monitoring, what to remove."""
    pipeline, prefix = item["consumption_pipeline_name"], settings.sagemaker_name_prefix
    endpoint = _deploy_input(item, execution, prefix)["endpoint_name"]
    schedule = names.stable_name(pipeline, prefix)
    alarm_name = monitoring.drift_alarm_name(pipeline, prefix)
    if not runs(item, "monitoring"):
        return {"remove": True, "schedule_name": schedule, "alarm_name": alarm_name}
    block = item["stages"]["monitoring"]
    result = _request(item, "monitoring", execution)
    baseline = result["request"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"].rstrip("/")
    job_definition = monitoring.job_definition_name(pipeline, execution, stages.tag("monitoring"))
    resources = result["request"]["ProcessingResources"]["ClusterConfig"]
    result["schedule_name"] = schedule
    result["job_definition_request"] = {
        "JobDefinitionName": job_definition,
        "DataQualityBaselineConfig": {
            "ConstraintsResource": {"S3Uri": f"{baseline}/constraints.json"},
            "StatisticsResource": {"S3Uri": f"{baseline}/statistics.json"},
        },
        "DataQualityAppSpecification": {"ImageUri": result["request"]["AppSpecification"]["ImageUri"]},
        "DataQualityJobInput": {"EndpointInput": {"EndpointName": endpoint, "LocalPath": monitoring.ENDPOINT_INPUT}},
        "DataQualityJobOutputConfig": {
            "MonitoringOutputs": [
                {
                    "S3Output": {
                        "S3Uri": monitoring.reports_folder(settings.bucket, pipeline),
                        "LocalPath": monitoring.ANALYZER_OUTPUT,
                        "S3UploadMode": "EndOfJob",
                    }
                }
            ]
        },
        "JobResources": {"ClusterConfig": {**resources}},
        "RoleArn": result["request"]["RoleArn"],
        # An hourly execution must end within the hour (Model Monitor: MaxRuntimeInSeconds <= 3600).
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }
    result["schedule_request"] = {
        "MonitoringScheduleName": schedule,
        "MonitoringScheduleConfig": {
            "ScheduleConfig": {"ScheduleExpression": monitoring.schedule_expression(block.get("schedule", "hourly"))},
            "MonitoringJobDefinitionName": job_definition,
            "MonitoringType": "DataQuality",
        },
    }
    result["alarm"] = monitoring.drift_alarm(pipeline, prefix, endpoint, schedule, block)
    return result


def _on_drift(item: dict[str, Any]) -> str:
    return str(item.get("stages", {}).get("monitoring", {}).get("retrain", {}).get("on_drift", "notify"))


_INPUTS: dict[str, Callable[[dict[str, Any], str, Settings], dict[str, Any]]] = {
    "preprocessing": _job_input("preprocessing"),
    "training": _job_input("training"),
    "tuning": _tuning_input,
    "evaluation": _evaluation_input,
    "register": _register_input,
    "approval": _approval_input,
    "create_model": _create_model_input,
    "batch_transform": _job_input("batch_transform"),
    "deploy": _deploy_stage_input,
    "monitoring": _monitoring_input,
}
assert list(_INPUTS) == list(STAGES), "every stage plans its input here, in catalog order"


def _stage_input(item: dict[str, Any], stage: str, execution: str, settings: Settings) -> dict[str, Any]:
    """What the state machine needs for one running stage."""
    return _INPUTS[stage](item, execution, settings)


def _add_model_data(containers: list[dict[str, Any]]) -> None:
    """Containers without a ModelDataUrl serve the run's model (its URL is known before the run starts)."""
    for container in containers:
        container.setdefault("ModelDataUrl", "{model_data_url}")


def _deploy_input(item: dict[str, Any], execution: str, name_prefix: str) -> dict[str, Any]:
    block = item["stages"]["deploy"]
    pipeline = item["consumption_pipeline_name"]
    model = block.get("model_name") or stages.model_name(item, execution)
    config_name = names.resource_name(pipeline, stages.tag("deploy"), execution)
    result: dict[str, Any] = {
        "endpoint_name": block.get("endpoint_name") or names.stable_name(pipeline, name_prefix),
        "endpoint_config_request": {
            "EndpointConfigName": config_name,
            "ProductionVariants": [
                {
                    "VariantName": VARIANT_NAME,
                    "ModelName": model,
                    "InstanceType": block.get("instance_type", stages.DEFAULT_INSTANCE_TYPE),
                    "InitialInstanceCount": block.get("instance_count", 1),
                }
            ],
        },
        "strategy": block.get("strategy", "all_at_once"),
    }
    result["alarms"] = endpoint_alarms(result["endpoint_name"], block.get("alarms", {}))
    if result["strategy"] == "blue_green":
        bake = block.get("bake_minutes", 5) * 60
        config: dict[str, Any] = {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": bake},
                "TerminationWaitInSeconds": bake,
            }
        }
        # The framework's own alarms first, then the item's (checked to exist before the update).
        rollback = [alarm["AlarmName"] for alarm in result["alarms"].values()] + block.get("rollback_alarms", [])
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": name} for name in rollback]}
        result["rollback_alarms"] = rollback
        result["rollback_alarm_count"] = len(rollback)
        result["deployment_config"] = config
    if "smoke_test" in block:
        result["smoke_test"] = {"content_type": "text/csv"} | block["smoke_test"]
    # What the state machine sends: CreateEndpoint when the endpoint is new, UpdateEndpoint otherwise.
    names_only = {"EndpointName": result["endpoint_name"], "EndpointConfigName": config_name}
    result["create_request"] = names_only
    result["update_request"] = names_only | (
        {"DeploymentConfig": result["deployment_config"]} if "deployment_config" in result else {}
    )
    # The bounded wait: every ENDPOINT_WAIT_SECONDS, long enough for provisioning plus a blue/green bake.
    budget = ENDPOINT_PROVISIONING_SECONDS + 2 * block.get("bake_minutes", 5) * 60 * (
        result["strategy"] == "blue_green"
    )
    result["wait_seconds"] = ENDPOINT_WAIT_SECONDS
    result["max_checks"] = -(-budget // ENDPOINT_WAIT_SECONDS)
    return result


def endpoint_alarms(endpoint: str, thresholds: dict[str, int]) -> dict[str, dict[str, Any]]:
    """The PutMetricAlarm requests of the alarms created for every endpoint the framework deploys
    (metrics of SageMaker's AWS/SageMaker namespace, per endpoint and variant)."""

    def alarm(suffix: str, metric: str, statistic: str, threshold: int, minutes: int, what: str) -> dict[str, Any]:
        return {
            "AlarmName": f"{endpoint}-{suffix}",
            "AlarmDescription": f"mlops-sfn: {what} on endpoint {endpoint}; rolls a blue/green update back",
            "Namespace": "AWS/SageMaker",
            "MetricName": metric,
            "Dimensions": [
                {"Name": "EndpointName", "Value": endpoint},
                {"Name": "VariantName", "Value": VARIANT_NAME},
            ],
            "Statistic": statistic,
            "Period": 60,
            "EvaluationPeriods": minutes,
            "Threshold": threshold,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",  # no traffic is not a failure
        }

    errors, latency_ms = thresholds.get("errors_5xx", 1), thresholds.get("model_latency_ms", 1000)
    return {
        "errors": alarm("5xx-errors", "Invocation5XXErrors", "Sum", errors, 1, f"{errors}+ 5xx errors a minute"),
        # ModelLatency is in microseconds.
        "latency": alarm("model-latency", "ModelLatency", "Average", latency_ms * 1000, 3, f"latency {latency_ms}+ ms"),
    }


def map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """`value` (JSON-shaped) with `change` applied to every string in it."""
    if isinstance(value, dict):
        return {key: map_strings(entry, change) for key, entry in value.items()}
    if isinstance(value, list):
        return [map_strings(entry, change) for entry in value]
    return change(value) if isinstance(value, str) else value


def fill(value: Any, values: Mapping[str, str]) -> Any:
    """Replace {placeholders} in every string ({model_data_url} only exists when the pipeline has a model)."""
    placeholder = sagemaker_api.PLACEHOLDER
    return map_strings(value, lambda text: placeholder.sub(lambda m: values.get(m.group(1), m.group(0)), text))


def _check_reach(blocks: dict[str, Any], prefix: str) -> list[Problem]:
    """An item may only touch the deployment's own endpoints and model package groups: without this,
    anyone who can edit the table could redeploy an unrelated endpoint (the role's policy agrees)."""
    named = []
    if "register" in blocks:
        named.append(("stages.register.model_package_group", blocks["register"]["request"]["ModelPackageGroupName"]))
    if "deploy" in blocks:
        deploy = blocks["deploy"]
        named.append(("stages.deploy.endpoint_name", deploy["endpoint_name"]))
        own = {alarm["AlarmName"] for alarm in deploy["alarms"].values()}  # named after the endpoint
        named += [
            ("stages.deploy.rollback_alarms", name) for name in deploy.get("rollback_alarms", []) if name not in own
        ]
    return [
        Problem(
            path,
            f"{name!r} is outside this deployment, whose names start with {prefix!r}: rename it, or deploy"
            " with a sagemaker_name_prefix it starts with (mlops-sfn validate reads SAGEMAKER_NAME_PREFIX)",
        )
        for path, name in named
        if not name.startswith(prefix)
    ]


_ROLE_FIELDS = {"RoleArn", "ExecutionRoleArn"}


def _strings(value: Any, path: str) -> list[tuple[str, str, str]]:
    """(path, key, string) of every string in a planned block, the key being the field holding it."""
    if isinstance(value, dict):
        found = []
        for key, entry in value.items():
            if isinstance(entry, str):
                found.append((f"{path}.{key}", key, entry))
            else:
                found += _strings(entry, f"{path}.{key}")
        return found
    if isinstance(value, list):
        return [triple for index, entry in enumerate(value) for triple in _strings(entry, f"{path}[{index}]")]
    return []


# Request paths whose S3 locations SageMaker writes (outputs, checkpoints, captured data): these
# must be in the framework's bucket; data buckets are read only.
WRITTEN = re.compile(r"Output|Checkpoint|Capture|Destination")  # fields naming where SageMaker writes
_KMS_FIELDS = {"KmsKeyId", "VolumeKmsKeyId"}


def _check_access(blocks: dict[str, Any], settings: Settings) -> list[Problem]:
    """Only the deployment's SageMaker role may be passed, and it reaches only the deployment's
    bucket (and reads its data buckets) with only its key: anything else would start and then fail
    with AccessDenied, after the stages before it."""
    problems = []
    readable = settings.data_bucket_names()
    for path, key, value in _strings(blocks, "stages"):
        if key in _ROLE_FIELDS and value != settings.sagemaker_role_arn:
            problems.append(
                Problem(
                    path,
                    f"{value!r} is not this deployment's SageMaker role, the only one the state machine may pass"
                    " (validate reads SAGEMAKER_ROLE_ARN): remove the field, the framework's role is the default",
                )
            )
        elif key in _KMS_FIELDS and not _usable_key(value, settings.kms_key_arn):
            deployed = f"its key {settings.kms_key_arn!r}" if settings.kms_key_arn else "no customer-managed key"
            problems.append(
                Problem(
                    path,
                    f"KMS key {value!r} is not this deployment's: its roles may use {deployed} (validate reads"
                    " KMS_KEY_ARN); remove the field (the bucket's default encryption applies), or deploy with"
                    " kms_key_arn set to that key",
                )
            )
        elif value.startswith("s3://"):
            bucket = value.removeprefix("s3://").split("/", 1)[0]
            written = bool(WRITTEN.search(path.split(".request.", 1)[-1]))
            if bucket == settings.bucket or (bucket in readable and not written):
                continue
            if bucket in readable:
                reason = (
                    f"bucket {bucket!r} is declared for reading (data_buckets), and a run writes here: write to"
                    f" s3://{{bucket}}/... (this deployment's {settings.bucket!r})"
                )
            else:
                reason = (
                    f"bucket {bucket!r} is outside this deployment: its SageMaker role reaches only"
                    f" {settings.bucket!r}{' and reads ' + ', '.join(map(repr, readable)) if readable else ''};"
                    " move the data there (write s3://{bucket}/...), or declare the bucket in the root variable"
                    " data_buckets if runs only read it (validate reads DATA_BUCKETS)"
                )
            problems.append(Problem(path, reason))
    report = blocks.get("evaluation", {}).get("report")
    if report and report["Bucket"] != settings.bucket:
        problems.append(
            Problem(
                "stages.evaluation.report_uri",
                f"bucket {report['Bucket']!r} is outside this deployment: the quality gate reads only"
                f" {settings.bucket!r}; write the report there (the default does)",
            )
        )
    return problems


def _usable_key(value: str, deployed: str) -> bool:
    """A key the SageMaker role may use: the deployment's (by ARN or key id), or an AWS managed key
    (alias/aws/...), which AWS services use on the caller's behalf."""
    if value.startswith("alias/aws/") or ":alias/aws/" in value:
        return True
    return bool(deployed) and (value == deployed or deployed.endswith(f":key/{value}"))


_ECR_IMAGE = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([^:@]+)")
_IMAGE_FIELDS = {"ImageUri", "TrainingImage", "Image"}


def _check_images(blocks: dict[str, Any], repositories: str) -> list[Problem]:
    """Every ECR image a run would pull comes from a repository the SageMaker role may pull from;
    otherwise the job would start and fail on an access error, after the runs before it."""
    allowed = [arn.strip() for arn in repositories.split(",") if arn.strip()]
    problems = []
    for path, key, image in _strings(blocks, "stages"):
        if key not in _IMAGE_FIELDS:
            continue
        found = _ECR_IMAGE.match(image)
        if not found:
            continue  # not an ECR image: SageMaker's own check applies
        account, region, repository = found.groups()
        if monitoring.is_analyzer(account, repository):
            continue  # AWS's own image, pulled by SageMaker for the job
        wanted = f"repository/{repository}"
        if not any(
            arn.split(":")[3:5] == [region, account] and fnmatch.fnmatchcase(wanted, arn.split(":", 5)[5])
            for arn in allowed
        ):
            problems.append(
                Problem(
                    path,
                    f"image {image!r} is in a repository this deployment may not pull from: add its ARN"
                    " to the root variable image_repository_arns",
                )
            )
    return problems


def _check_analyzer(blocks: dict[str, Any], region: str) -> list[Problem]:
    request = blocks.get("monitoring", {}).get("request")
    if request and "{analyzer_image}" in request["AppSpecification"]["ImageUri"]:
        return [
            Problem(
                "stages.monitoring.image",
                f"no prebuilt Model Monitor analyzer is known in {region}: set the analyzer image's URI "
                "(SageMaker's Docker registry paths list it per region)",
            )
        ]
    return []


def _check_filled(blocks: dict[str, Any]) -> list[Problem]:
    """Patterns and lengths, once placeholders hold real values (e.g. a '_' from {pipeline} in a name)."""
    problems: list[Problem] = []
    for stage, block in blocks.items():
        if stage in OPERATIONS:
            if "request" not in block:
                continue  # monitoring, when the run only removes it
            found = sagemaker_api.check_request(OPERATIONS[stage], block["request"], f"stages.{stage}.request")
            problems += [Problem(p.path, f"after placeholders are filled: {p.message}") for p in found]
    if "deploy" in blocks:
        deploy = blocks["deploy"]
        for operation, request in [
            ("CreateEndpointConfig", deploy["endpoint_config_request"]),
            ("CreateEndpoint", deploy["create_request"]),
            ("UpdateEndpoint", deploy["update_request"]),
        ]:
            problems += sagemaker_api.check_request(operation, request, "stages.deploy")
    watching = blocks.get("monitoring", {})
    for operation, field in [
        ("CreateDataQualityJobDefinition", "job_definition_request"),
        ("CreateMonitoringSchedule", "schedule_request"),
    ]:
        if field in watching:
            problems += sagemaker_api.check_request(operation, watching[field], "stages.monitoring")
    return problems


def check_with_sample(item: Any, settings: Settings = EXAMPLE_SETTINGS) -> list[Problem]:
    """All problems `validate` reports: the item's own, then those of its requests once filled."""
    try:
        plan_execution(item, SAMPLE_TRIGGER, settings)
    except InvalidItem as error:
        return error.problems
    return []


def mismatch(item: dict[str, Any], trigger: Trigger) -> str | None:
    """Why this trigger does not start this item's pipeline, or None when it does.

    Tolerates a malformed item: whatever cannot be read here is reported by plan_execution's checks.
    """
    name = item.get("consumption_pipeline_name")
    if trigger.source != "s3":
        if trigger.pipeline != name:
            return f"the event names pipeline {trigger.pipeline!r}, not {name!r}"
        return None
    prefix = trigger_prefix(item)
    key = trigger.key or ""
    if prefix is None:
        return f"pipeline {name!r} has no trigger.prefix, so uploads do not start it"
    if not key.startswith(prefix):
        return f"{key!r} is not under the trigger prefix {prefix!r}"
    config = item["trigger"]
    complete_on = config.get("complete_on")
    readable = isinstance(complete_on, dict) and all(isinstance(v, str) for v in complete_on.values())
    if readable and not completes_upload(config, key):
        return f"{key!r} is part of an upload; only the object named by trigger.complete_on starts a run"
    return None


def trigger_prefix(item: dict[str, Any]) -> str | None:
    """The item's trigger.prefix when it has a usable one."""
    config = item.get("trigger")
    prefix = config.get("prefix") if isinstance(config, dict) else None
    return prefix if isinstance(prefix, str) and prefix else None
