"""SageMaker on this machine, as far as the state machine uses it.

moto keeps the records (jobs, models, endpoint configs, endpoints, model packages), so anything
that inspects the local AWS sees what a run created. What moto lacks is added here: jobs that do
their work through a job runner and can fail, `UpdateEndpoint`, endpoints that take a check to come
up (and can fail, never come up, or roll back), and AWS's request checks (patterns and lengths from
botocore's service model), which moto does not enforce.

Status fields are set on moto's backend objects directly (`_backend`), the one place this module
reaches into moto's internals; moto 5.2 is pinned in pyproject.toml for that reason.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from botocore.exceptions import ClientError

from ..core import sagemaker_api
from ..core.problems import Error
from ..core.stages import REPORTED
from ..core.stages.deploy import SHIFT_SHARES
from ..core.stages.shared import field_at
from ..core.stages.training import WARM_POOL_MATCH
from ..core.triggers import PACKAGE_STATE_CHANGE

# What a local endpoint does after CreateEndpoint or UpdateEndpoint, seen at the next describe.
ENDPOINT_OUTCOMES = {
    "in_service": "comes up with the new config",
    "failed": "goes to Failed",
    "stuck": "stays Creating/Updating for ever",
    "rolled_back": "an update ends InService on the previous config (a silent rollback)",
    "rollback_failed": "an update ends UpdateRollbackFailed (the update and its rollback failed)",
    "errors": "the new fleet answers with 5xx errors: a guarded update rolls back when its alarm fires",
}

# The state the item's endpoint is put in before a run (`--existing-endpoint`); the harness's
# default, None, leaves it as it is.
EXISTING_ENDPOINT = {
    "none": "no endpoint of that name",
    "in_service": "InService, on an earlier config",
    "failed": "Failed (only DeleteEndpoint is allowed)",
    "updating": "Updating, and it stays so",
}

# What spot capacity does for a local spot training job (EnableManagedSpotTraining), chosen per run.
# As "Managed Spot Training Lifecycle" (SageMaker developer guide) lists the secondary statuses: an
# interrupted job goes Training -> Interrupted -> Starting and resumes; one that capacity never
# reached goes Starting -> Stopping and ends Stopped, MaxWaitTimeExceeded. Locally the wait is not
# waited, and an interruption comes after the first attempt's script ended, before its model is
# kept: the second attempt starts on a fresh instance with the checkpoints the first one saved.
SPOT_CAPACITY = {
    "available": "spot jobs run uninterrupted",
    "interrupted": "each spot job is interrupted once and resumes from its checkpoints",
    "none": "spot capacity never arrives: each spot job ends Stopped (MaxWaitTimeExceeded)",
}
# BillableTimeInSeconds of a local spot job, per second it trained: AWS reports billable time at the
# spot price, so that 1 - billable/training is the saving ("Managed Spot Training": "up to 90%");
# the local AWS's discount is this fixed one.
LOCAL_SPOT_BILLED = 0.3

# What `mlops-sfn local run --fail` accepts: every stage and checkpoint.
FAILABLE = REPORTED


@dataclass
class Rollout:
    """A create or update the endpoint is going through, advanced at each DescribeEndpoint."""

    config: str  # the config it brings up
    previous: str | None = None  # the config an update replaces
    shares: list[int] = field(default_factory=lambda: [100])  # % of traffic on the new fleet after each step
    alarms: list[str] = field(default_factory=list)  # a guarded update's rollback alarms
    rolling_back: bool = False


def traffic_shares(config: dict[str, Any], instances: int) -> list[int]:
    """The % of traffic (or of the fleet, rolling) on the new fleet after each step of a guarded update
    (SageMaker developer guide, "Deployment guardrails": canary shifts its canary then the rest, linear
    n equal steps, rolling one batch at a time; blue/green all at once)."""
    rolling = config.get("RollingUpdatePolicy")
    routing = config.get("BlueGreenUpdatePolicy", {}).get("TrafficRoutingConfiguration", {})
    size = rolling["MaximumBatchSize"] if rolling else routing.get("CanarySize") or routing.get("LinearStepSize")
    if size is None:
        return [100]
    step = size["Value"] if size["Type"] == "CAPACITY_PERCENT" else 100 * size["Value"] / max(1, instances)
    if routing.get("Type") == "CANARY":
        return [math.ceil(step), 100]
    return [min(100, math.ceil(step * n)) for n in range(1, math.ceil(100 / step) + 1)]


# The share of the variant's instances one step may be, per CapacitySize field (deploy.SHIFT_SHARES cites
# the API reference), as UpdateEndpoint checks it.
_STEP_SHARES = {
    "CanarySize": SHIFT_SHARES["canary"],
    "LinearStepSize": SHIFT_SHARES["linear"],
    "MaximumBatchSize": SHIFT_SHARES["rolling"],
}


def step_problem(config: dict[str, Any], instances: int) -> str | None:
    """What SageMaker refuses in an update's step size, or None."""
    policies = [config.get("BlueGreenUpdatePolicy", {}).get("TrafficRoutingConfiguration", {})]
    policies.append(config.get("RollingUpdatePolicy", {}))
    for policy in policies:
        for name, (least, most) in _STEP_SHARES.items():
            size = policy.get(name)
            if size is None:
                continue
            share = size["Value"] if size["Type"] == "CAPACITY_PERCENT" else 100 * size["Value"] / max(1, instances)
            if not least <= share <= most:
                return (
                    f"{name} {size['Value']} ({size['Type']}) is {share:g}% of the variant's {instances} instances:"
                    f" it must be {least}-{most}%."
                )
    return None


@dataclass(frozen=True)
class JobKind:
    name_field: str
    status_field: str
    describe: str  # boto3 method
    records: str  # moto backend dict of this kind
    status_attribute: str  # moto object attribute


JOBS = {
    "createProcessingJob": JobKind(
        "ProcessingJobName",
        "ProcessingJobStatus",
        "describe_processing_job",
        "processing_jobs",
        "processing_job_status",
    ),
    "createTrainingJob": JobKind(
        "TrainingJobName", "TrainingJobStatus", "describe_training_job", "training_jobs", "training_job_status"
    ),
    "createHyperParameterTuningJob": JobKind(
        "HyperParameterTuningJobName",
        "HyperParameterTuningJobStatus",
        "describe_hyper_parameter_tuning_job",
        "hyper_parameter_tuning_jobs",
        "hyper_parameter_tuning_job_status",
    ),
    "createTransformJob": JobKind(
        "TransformJobName", "TransformJobStatus", "describe_transform_job", "transform_jobs", "transform_job_status"
    ),
}
REQUEST_RESPONSE = ("createModel", "createEndpointConfig", "createEndpoint", "updateEndpoint")
# SageMaker API reference, CreateTrainingJob/CreateProcessingJob/CreateTransformJob: "The name must be
# unique within an AWS Region in an AWS account" (a job is never deleted, so for ever); a model's or
# endpoint config's until it is deleted. A second Create is refused in these words (as users report
# them, e.g. aws/amazon-sagemaker-examples#3108 for a training job, hashicorp/terraform-provider-aws
# #40080 for an endpoint); moto would record the duplicate. action -> (name field, describe method, ARN field,
# error code, message with {arn}).
UNIQUE_NAMES = {
    **{
        action: (
            kind.name_field,
            kind.describe,
            kind.name_field.replace("Name", "Arn"),
            "ResourceInUse",
            f"{noun[0].upper()}{noun[1:]} job names must be unique within an AWS account and region, and a {noun} job"
            " with this name already exists ({arn})",
        )
        for (action, kind), noun in zip(
            JOBS.items(), ("processing", "training", "hyper-parameter tuning", "transform"), strict=True
        )
    },
    "createModel": (
        "ModelName",
        "describe_model",
        "ModelArn",
        "ValidationException",
        'Cannot create already existing model "{arn}".',
    ),
    "createEndpointConfig": (
        "EndpointConfigName",
        "describe_endpoint_config",
        "EndpointConfigArn",
        "ValidationException",
        'Cannot create already existing endpoint configuration "{arn}".',
    ),
}
ACTIONS = (*JOBS, *REQUEST_RESPONSE)


@dataclass(frozen=True)
class JobResult:
    failure_reason: str | None = None  # None: Completed
    best_training_job: str | None = None  # tuning jobs only
    metrics: dict[str, float] = field(default_factory=dict)  # training and tuning: FinalMetricDataList


class JobRunner(Protocol):
    """Does a job's work. `kind` is the create action, e.g. "createTrainingJob"; `s3` and `logs`, when
    given, are clients acting as the job's role, through which its data moves and its log is written
    (None: the runner's own)."""

    def run(
        self, kind: str, request: dict[str, Any], s3: Any = None, logs: Any = None, account: str = ...
    ) -> JobResult: ...


def data_failure(verb: str, uri: str, error: Exception) -> str:
    """A job's FailureReason when S3 refuses its data ("download" or "upload"), in SageMaker's words for
    an input it cannot download: "ClientError: Data download failed:Unable to download object s3://...
    (AccessDenied: Access Denied)" (as users report it, e.g. aws/amazon-sagemaker-examples#4384)."""
    if not isinstance(error, ClientError) and isinstance(error.__context__, ClientError):
        error = error.__context__  # boto3's S3UploadFailedError, raised while handling the ClientError
    detail = (
        f"{error.response['Error']['Code']}: {error.response['Error']['Message']}"
        if isinstance(error, ClientError)
        else str(error)
    )
    return f"ClientError: Data {verb} failed:Unable to {verb} object {uri} ({detail})"


class JobError(Error):
    """The job cannot run as asked; the message becomes its FailureReason."""


def put(s3: Any, bucket: str, key: str, body: bytes) -> None:
    """PutObject by a job: a refusal fails the job (JobError)."""
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    except ClientError as error:
        raise JobError(data_failure("upload", f"s3://{bucket}/{key}", error)) from None


class JobFailed(Error):
    def __init__(self, description: dict[str, Any]) -> None:
        super().__init__(description.get("FailureReason"))
        self.description = description


def client_error(code: str, message: str, operation: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "local"},
        },
        operation,
    )


def operation(action: str) -> str:
    """ "createTrainingJob" -> "CreateTrainingJob"."""
    return action[0].upper() + action[1:]


def snake(action: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in action)


def json_safe(value: Any) -> Any:
    """A boto3 response as Step Functions passes it on: timestamps as epoch milliseconds."""

    def default(item: Any) -> Any:
        if isinstance(item, datetime):
            return int(item.timestamp() * 1000)
        raise TypeError(f"{type(item).__name__} is not JSON")

    return json.loads(json.dumps(value, default=default))


class LocalSageMaker:
    """Answers the state machine's SageMaker calls. `client(service, region, account)` gives a boto3 client
    of the local AWS in that account (accounts.client)."""

    def __init__(
        self,
        runner: JobRunner,
        client: Callable[[str, str, str], Any],
        backend: Callable[[str, str], Any],
        endpoint_outcome: str = "in_service",
    ) -> None:
        if endpoint_outcome not in ENDPOINT_OUTCOMES:
            raise ValueError(f"endpoint outcome {endpoint_outcome!r}: use one of {', '.join(ENDPOINT_OUTCOMES)}")
        self.runner = runner
        self.client = client
        self._backend = backend
        self.endpoint_outcome = endpoint_outcome
        self.spot_capacity = "available"  # SPOT_CAPACITY
        # by endpoint ARN: accounts (and regions) may each have an endpoint of one name
        self._rolling_out: dict[str, Rollout] = {}  # endpoint -> the create/update it is going through
        self.traffic: dict[str, list[int]] = {}  # endpoint -> the shares its last guarded update reached
        self._stopped: set[str] = set()  # jobs a stopped execution or Parallel branch stopped
        self._pools: dict[str, tuple[dict[str, Any], datetime, int]] = {}  # job -> request, end, keep-alive s

    def call(self, action: str, request: dict[str, Any], region: str, account: str) -> dict[str, Any]:
        """A create call (request/response part): checked as AWS would, then recorded in moto."""
        if action not in ACTIONS:
            raise client_error("UnknownOperationException", f"sagemaker:{action} is not served locally", action)
        problems = sagemaker_api.check_request(operation(action), request, "")
        if problems:
            detail = "; ".join(f"{p.path or 'request'}: {p.message}" for p in problems)
            raise client_error("ValidationException", f"{len(problems)} validation error(s) detected: {detail}", action)
        if action in UNIQUE_NAMES:
            field_name, describe, arn_field, code, message = UNIQUE_NAMES[action]
            try:
                sagemaker = self.client("sagemaker", region, account)
                existing = getattr(sagemaker, describe)(**{field_name: request[field_name]})
            except ClientError:
                pass  # no such name yet
            else:
                raise client_error(code, message.format(arn=existing[arn_field]), action[0].upper() + action[1:])
        if action == "updateEndpoint":
            return self._update_endpoint(request, region, account)
        if action == "createEndpoint" and request["EndpointName"] in self._backend(account, region).endpoints:
            # SageMaker API reference, CreateEndpoint: endpoint names are unique in a region; moto
            # would replace the existing one.
            existing = self._backend(account, region).endpoints[request["EndpointName"]]
            raise client_error(
                "ValidationException", f'Cannot create already existing endpoint "{existing.arn}".', "CreateEndpoint"
            )
        response: dict[str, Any] = getattr(self.client("sagemaker", region, account), snake(action))(**request)
        response.pop("ResponseMetadata", None)
        if action == "createEndpoint":
            endpoint = self._backend(account, region).endpoints[request["EndpointName"]]
            endpoint.endpoint_status = "Creating"
            self._rolling_out[endpoint.arn] = Rollout(request["EndpointConfigName"])
        if action in JOBS:  # moto records a new job as Completed; SageMaker reports InProgress until it
            # ends (SageMaker API reference, Describe*Job: the job's status)
            kind = JOBS[action]
            record = getattr(self._backend(account, region), kind.records)[request[kind.name_field]]
            setattr(record, kind.status_attribute, "InProgress")
            if action == "createProcessingJob":  # moto drops it; DescribeProcessingJob returns it (required)
                record.processing_resources = request["ProcessingResources"]
        return response

    def model_role(self, model: str, region: str, account: str) -> str | None:
        """The role a model's containers run as (a transform job reads and writes as it), if the model exists."""
        try:
            role: str = self.client("sagemaker", region, account).describe_model(ModelName=model)["ExecutionRoleArn"]
        except ClientError:
            return None
        return role

    def start_job(
        self, action: str, request: dict[str, Any], region: str, account: str, s3: Any = None, logs: Any = None
    ) -> Future[dict[str, Any]]:
        """The .sync part, begun: the job runs in its own thread, as a SageMaker job runs on its own
        while Step Functions polls it; the future holds run_job's answer."""
        future: Future[dict[str, Any]] = Future()

        def work() -> None:
            try:
                future.set_result(self.run_job(action, request, region, account, s3, logs))
            except BaseException as error:  # JobFailed, or a local fault: the task reports it
                future.set_exception(error)

        threading.Thread(target=work, name=f"job {request[JOBS[action].name_field]}", daemon=True).start()
        return future

    def stop_job(self, action: str, request: dict[str, Any], region: str, account: str) -> None:
        """What Step Functions does to a running `.sync` job whose execution or Parallel branch stops:
        a best-effort Stop* call (Step Functions guide, Parallel state and "Run a Job (.sync)"; hence
        the Stop* permission a .sync integration needs), and the job ends `Stopped`. A local job
        finishes its work, but its outcome is not recorded."""
        kind = JOBS[action]
        name = request[kind.name_field]
        self._stopped.add(name)
        record = getattr(self._backend(account, region), kind.records).get(name)
        if record is not None:
            setattr(record, kind.status_attribute, "Stopped")

    def run_job(
        self, action: str, request: dict[str, Any], region: str, account: str, s3: Any = None, logs: Any = None
    ) -> dict[str, Any]:
        """The .sync part: run the job, record its outcome, return its Describe* response; JobFailed when it failed."""
        kind = JOBS[action]
        name = request[kind.name_field]
        record = getattr(self._backend(account, region), kind.records)[name]
        spot = action == "createTrainingJob" and request.get("EnableManagedSpotTraining") is True
        if spot and self.spot_capacity == "none":
            return self._capacity_missed(kind, record, name, region, account)
        started, began = time.monotonic(), datetime.now(UTC)
        if action == "createTrainingJob":
            self._take_pool(record, request, region, account)
        result = self.runner.run(action, request, s3, logs, account)
        transitions = ["Starting", "Downloading", "Training"]
        if spot and self.spot_capacity == "interrupted" and not result.failure_reason:
            transitions += ["Interrupted", "Starting", "Downloading", "Training"]
            result = self.runner.run(action, request, s3, logs, account)  # a new instance, the checkpoints restored
        if name in self._stopped:
            return {kind.status_field: "Stopped"}  # nobody waits for it any more
        setattr(record, kind.status_attribute, "Failed" if result.failure_reason else "Completed")
        record.failure_reason = result.failure_reason
        if action == "createTrainingJob":
            trained = max(1, math.ceil(time.monotonic() - started))
            ended = "Failed" if result.failure_reason else "Completed"
            _trained(record, [*transitions, *([] if result.failure_reason else ["Uploading"]), ended], trained, spot)
            self._leave_pool(record, request, name)
        if action in ("createProcessingJob", "createTransformJob"):  # when its instances ran (moto's: now)
            kind_of = "processing" if action == "createProcessingJob" else "transform"
            setattr(record, f"{kind_of}_start_time", began)
            setattr(record, f"{kind_of}_end_time", datetime.now(UTC))
        if result.best_training_job:
            record.best_training_job = dict(record.best_training_job, TrainingJobName=result.best_training_job)
        if result.metrics and kind.name_field == "TrainingJobName":  # moto keeps a canned train:progress
            record.final_metric_data_list = [
                {"MetricName": name, "Value": value, "Timestamp": record.creation_time}
                for name, value in result.metrics.items()
            ]
        client = self.client("sagemaker", region, account)
        description: dict[str, Any] = getattr(client, kind.describe)(**{kind.name_field: name})
        description.pop("ResponseMetadata", None)
        # moto leaves fields out or keeps canned ones; the describe must say what the runner did.
        description[kind.status_field] = "Failed" if result.failure_reason else "Completed"
        if result.failure_reason:
            description["FailureReason"] = result.failure_reason
            raise JobFailed(json_safe(description))
        if result.best_training_job:
            description["BestTrainingJob"] = dict(
                description["BestTrainingJob"], TrainingJobName=result.best_training_job
            )
        return dict(json_safe(description))

    def _take_pool(self, record: Any, request: dict[str, Any], region: str, account: str) -> None:
        """A new training job takes the first matching warm pool still alive ("Matching training jobs",
        SageMaker developer guide, warm pools): that pool becomes Reused by it, billed until now;
        pools past their keep-alive period are Terminated, billed for all of it. Only a job that asks
        for a pool itself takes one (locally: the developer guide's matching criteria leave it open,
        and taking none is never more than AWS does)."""
        now = datetime.now(UTC)
        wants = bool(request.get("ResourceConfig", {}).get("KeepAlivePeriodInSeconds"))
        jobs = self._backend(account, region).training_jobs
        for name, (earlier, ended, keep) in list(self._pools.items()):
            waited = (now - ended).total_seconds()
            status: dict[str, Any] | None = None
            if waited > keep:
                status = {"Status": "Terminated", "ResourceRetainedBillableTimeInSeconds": keep}
            elif wants and all(field_at(earlier, path) == field_at(request, path) for path in WARM_POOL_MATCH):
                status = {
                    "Status": "Reused",
                    "ResourceRetainedBillableTimeInSeconds": math.ceil(waited),
                    "ReusedByJob": request["TrainingJobName"],
                }
                record.warm_pool_status = {"Status": "InUse"}
            if status is not None:
                del self._pools[name]
                if name in jobs:
                    jobs[name].warm_pool_status = status
                if status["Status"] == "Reused":
                    return

    def _leave_pool(self, record: Any, request: dict[str, Any], name: str) -> None:
        """A training job with KeepAlivePeriodInSeconds leaves its instances in a warm pool: Available."""
        keep = int(request.get("ResourceConfig", {}).get("KeepAlivePeriodInSeconds", 0))
        if keep and record.training_job_status == "Completed":
            record.warm_pool_status = {"Status": "Available", "ResourceRetainedBillableTimeInSeconds": 0}
            self._pools[name] = (request, datetime.now(UTC), keep)

    def _capacity_missed(self, kind: JobKind, record: Any, name: str, region: str, account: str) -> dict[str, Any]:
        """A spot training job that capacity never reached: Stopped, MaxWaitTimeExceeded, nothing billed.
        Its task fails as for a job that failed (States.TaskFailed, the description as the cause): a
        `.sync` task succeeds only when its job completes."""
        setattr(record, kind.status_attribute, "Stopped")
        _trained(record, ["Starting", "Stopping", "MaxWaitTimeExceeded"], 0, spot=True)
        described = getattr(self.client("sagemaker", region, account), kind.describe)(**{kind.name_field: name})
        described.pop("ResponseMetadata", None)
        raise JobFailed(json_safe(described))

    def _update_endpoint(self, request: dict[str, Any], region: str, account: str) -> dict[str, Any]:
        backend = self._backend(account, region)
        name, config = request["EndpointName"], request["EndpointConfigName"]
        endpoint = backend.endpoints.get(name)
        if endpoint is None:
            raise client_error("ValidationException", f"Could not find endpoint {name!r}.", "UpdateEndpoint")
        if config not in backend.endpoint_configs:
            raise client_error(
                "ValidationException", f"Could not find endpoint configuration {config!r}.", "UpdateEndpoint"
            )
        if endpoint.endpoint_status != "InService":
            # SageMaker API reference, DescribeEndpoint/EndpointSummary: only an InService endpoint
            # can be updated; "DeleteEndpoint is the only operation that can be performed on a
            # failed endpoint", and Creating/Updating/SystemUpdating/RollingBack must settle first.
            raise client_error(
                "ValidationException",
                f"Cannot update endpoint {name!r} while it is {endpoint.endpoint_status}: only an InService endpoint"
                " can be updated.",
                "UpdateEndpoint",
            )
        current = backend.endpoint_configs[endpoint.endpoint_config_name].production_variants
        new = backend.endpoint_configs[config].production_variants
        refused = _update_problem(name, current, new, request.get("DeploymentConfig", {}), account, region)
        if refused:
            raise client_error("ValidationException", refused, "UpdateEndpoint")
        endpoint.endpoint_status = "Updating"
        deployment = request.get("DeploymentConfig", {})
        alarms = [alarm["AlarmName"] for alarm in deployment.get("AutoRollbackConfiguration", {}).get("Alarms", [])]
        instances = int(current[0].get("InitialInstanceCount", 1)) if current else 1
        shares = traffic_shares(deployment, instances)
        self._rolling_out[endpoint.arn] = Rollout(config, endpoint.endpoint_config_name, shares, alarms)
        self.traffic[endpoint.arn] = []
        return {"EndpointArn": endpoint.arn}

    def forget_rollout(self, arn: str) -> None:
        """The endpoint's state was set from outside (a run's --existing-endpoint): nothing of ours is rolling out."""
        self._rolling_out.pop(arn, None)

    def advance_endpoint(self, name: str, region: str, account: str) -> None:
        """Called before each DescribeEndpoint: a Creating or Updating endpoint settles as endpoint_outcome
        says; a guarded update takes one step of traffic each time, and rolls back when one of its
        alarms is in ALARM after a step ("Auto-Rollback Configuration and Monitoring", SageMaker guide)."""
        endpoint = self._backend(account, region).endpoints.get(name)
        if endpoint is None or endpoint.arn not in self._rolling_out or self.endpoint_outcome == "stuck":
            return
        rollout = self._rolling_out[endpoint.arn]
        if rollout.alarms and rollout.previous and self.endpoint_outcome in ("in_service", "errors"):
            self._step(endpoint, rollout, region, account)
            return
        del self._rolling_out[endpoint.arn]
        config = rollout.config
        if self.endpoint_outcome == "failed":
            endpoint.endpoint_status = "Failed"
            endpoint.failure_reason = (
                "The primary container for production variant AllTraffic did not pass the ping health check "
                "(local simulation)."
            )
            return
        creating = endpoint.endpoint_status == "Creating"  # a new endpoint has nothing to roll back to
        if self.endpoint_outcome == "rollback_failed" and not creating:
            endpoint.endpoint_status = "UpdateRollbackFailed"
            return
        endpoint.endpoint_status = "InService"
        if self.endpoint_outcome in ("in_service", "errors") or creating:  # nothing watches an unguarded update
            endpoint.endpoint_config_name = config
            endpoint.last_modified_time = datetime.now(UTC)  # DescribeEndpoint: when it last changed

    def _step(self, endpoint: Any, rollout: Rollout, region: str, account: str) -> None:
        """One step of a guarded update: traffic moves (a failing new fleet then reports its 5xx errors,
        which its alarm evaluates), and the rollback alarms are read; any in ALARM rolls the update back
        to the previous config, which ends InService on it."""
        name, arn = endpoint.endpoint_name, endpoint.arn
        if rollout.rolling_back:
            endpoint.endpoint_status = "InService"
            del self._rolling_out[arn]
            return
        reached = self.traffic[arn] = [*self.traffic.get(arn, []), rollout.shares[len(self.traffic.get(arn, []))]]
        if self.endpoint_outcome == "errors":  # the new fleet's answers, as SageMaker reports them per variant
            self.client("cloudwatch", region, account).put_metric_data(
                Namespace="AWS/SageMaker",
                MetricData=[
                    {
                        "MetricName": "Invocation5XXErrors",
                        "Dimensions": [
                            {"Name": "EndpointName", "Value": name},
                            {"Name": "VariantName", "Value": "AllTraffic"},
                        ],
                        "Value": float(reached[-1]),  # more errors the more traffic it takes
                        "Unit": "None",
                    }
                ],
            )
        alarms = self.client("cloudwatch", region, account).describe_alarms(AlarmNames=rollout.alarms)["MetricAlarms"]
        if any(alarm["StateValue"] == "ALARM" for alarm in alarms):
            endpoint.endpoint_status, rollout.rolling_back = "RollingBack", True
        elif len(reached) == len(rollout.shares):  # every step taken, no alarm: the new config serves
            endpoint.endpoint_status = "InService"
            endpoint.endpoint_config_name = rollout.config
            endpoint.last_modified_time = datetime.now(UTC)
            del self._rolling_out[arn]


def _update_problem(
    endpoint: str,
    current: list[dict[str, Any]],
    new: list[dict[str, Any]],
    deployment: dict[str, Any],
    account: str,
    region: str,
) -> str | None:
    """What SageMaker refuses in an UpdateEndpoint, or None:
    - an instance-based endpoint made serverless ("You cannot convert your instance-based, real-time
      endpoint to a serverless endpoint", SageMaker developer guide, serverless endpoints, feature
      exclusions);
    - a new instance type (or no variant) for a variant Application Auto Scaling scales ("If the update
      would change the instance type for any model that is a target for auto scaling, the update
      fails", "Update endpoints that use auto scaling");
    - a rolling update of a serverless endpoint ("Exclusions", deployment guardrails);
    - a step outside its share of the variant's instances (step_problem)."""
    from . import autoscaling

    was_serverless = any("ServerlessConfig" in variant for variant in current)
    if not was_serverless and any("ServerlessConfig" in variant for variant in new):
        return f"Endpoint {endpoint} is instance-based: it cannot be updated to a serverless endpoint."
    types = {variant["VariantName"]: variant.get("InstanceType") for variant in new}
    for variant in current:
        name = variant["VariantName"]
        if autoscaling.scaled(account, region, endpoint, name) and types.get(name) != variant.get("InstanceType"):
            return (
                f"Variant {name} of endpoint {endpoint} is a target for auto scaling: deregister it before an update"
                " that changes its instance type or removes it."
            )
    if "RollingUpdatePolicy" in deployment and any("ServerlessConfig" in variant for variant in new + current):
        return "A rolling deployment is not supported for a serverless endpoint."
    instances = int(current[0].get("InitialInstanceCount", 1)) if current else 1
    return step_problem(deployment, instances)


# --- The model registry's deletes, which moto 5.2 lacks (HTTP 500) --------------------------------------


def _delete_model_package(self: Any) -> Any:
    """DeleteModelPackage (by name or ARN); an unknown package is refused as DescribeModelPackage refuses it."""
    from .motoport import EmptyResult

    backend = self.sagemaker_backend
    package = backend.describe_model_package(self._get_param("ModelPackageName"))  # ValidationError if unknown
    for name, arn in list(backend.model_package_name_mapping.items()):
        if arn == package.arn:
            del backend.model_package_name_mapping[name]
    del backend.model_packages[package.arn]
    return EmptyResult()


def _group_of(self: Any) -> tuple[Any, str]:
    """The backend and the existing group a request names (ValidationException)."""
    from .motoport import JsonRESTError

    backend = self.sagemaker_backend
    name = str(self._get_param("ModelPackageGroupName")).rsplit("/", 1)[-1]
    if name not in backend.model_package_groups:
        raise JsonRESTError("ValidationException", f"ModelPackageGroup {name} does not exist.")
    return backend, name


def _delete_model_package_group(self: Any) -> Any:
    """DeleteModelPackageGroup. The API reference lists one error, ConflictException (HTTP 400); it is
    answered for a group that still holds model packages, so the local AWS is never the more permissive
    (whoever deletes a group deletes its versions first, as `mlops-sfn smoke` does)."""
    from .motoport import EmptyResult, JsonRESTError

    backend, name = _group_of(self)
    if any(package.model_package_group_name == name for package in backend.model_packages.values()):
        raise JsonRESTError("ConflictException", f"Model Package Group {name} has model packages: delete them first.")
    del backend.model_package_groups[name]
    return EmptyResult()


# --- Tags, for every kind a run creates. moto 5.2's ListTags fails (HTTP 500) for a transform job
# created without tags (it keeps None), a model package (its ARN ends in /<group>/<version>) and a
# monitoring schedule (moto has none: monitor.py's); its AddTags appends a key it already has. The
# SageMaker API reference: AddTags "Adds or overwrites one or more tags for the specified SageMaker
# resource"; ListTags "Returns the tags for the specified SageMaker resource"; DeleteTags removes
# the keys named.


def _tags(backend: Any, arn: str) -> list[dict[str, str]]:
    """The resource's tags, as a list to read and change; ValidationException for what does not exist
    (as moto answers an unknown name of the kinds it knows)."""
    from . import monitor
    from .motoport import JsonRESTError

    kind, _, name = arn.split(":", 5)[-1].partition("/")
    if kind == "monitoring-schedule":
        return monitor.schedule_tags(backend, name)
    try:
        resource = backend.model_packages.get(arn) if kind == "model-package" else backend._get_resource_from_arn(arn)
    except (AttributeError, ValueError):  # a kind moto does not keep, or an ARN it cannot split
        resource = None
    if resource is None:
        raise JsonRESTError("ValidationException", f"Could not find {kind} with name {name}")
    if resource.tags is None:
        resource.tags = []
    tags: list[dict[str, str]] = resource.tags
    return tags


def _list_tags(self: Any) -> Any:
    from .motoport import ActionResult

    return ActionResult({"Tags": list(_tags(self.sagemaker_backend, self._get_param("ResourceArn")))})


def _add_tags(self: Any) -> Any:
    from .motoport import ActionResult

    tags = _tags(self.sagemaker_backend, self._get_param("ResourceArn"))
    added = self._get_param("Tags") or []
    keys = {tag["Key"] for tag in added}
    tags[:] = [tag for tag in tags if tag["Key"] not in keys] + list(added)
    return ActionResult({"Tags": list(tags)})


def _delete_tags(self: Any) -> Any:
    from .motoport import EmptyResult

    tags = _tags(self.sagemaker_backend, self._get_param("ResourceArn"))
    keys = set(self._get_param("TagKeys") or [])
    tags[:] = [tag for tag in tags if tag["Key"] not in keys]
    return EmptyResult()


TAGS_API = {"list_tags": _list_tags, "add_tags": _add_tags, "delete_tags": _delete_tags}


def _versioned_package_tags(create: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """CreateModelPackage, refusing Tags beside ModelPackageGroupName, as the API reference says:
    "If you supply ModelPackageGroupName, your model package belongs to the model group you specify
    and uses the tags associated with the model group. In this case, you cannot supply a tag
    argument." (moto records them)."""

    def create_model_package(self: Any) -> Any:
        from .motoport import JsonRESTError

        if self._get_param("ModelPackageGroupName") and self._get_param("Tags"):
            raise JsonRESTError(
                "ValidationException",
                "A model package in a model package group uses the group's tags: Tags cannot be supplied with"
                " ModelPackageGroupName.",
            )
        return create(self)

    return create_model_package


def install_tags() -> Callable[[], None]:
    from .motoport import SageMakerResponse

    kept = {name: getattr(SageMakerResponse, name) for name in [*TAGS_API, "create_model_package"]}
    for name, method in TAGS_API.items():
        setattr(SageMakerResponse, name, method)
    SageMakerResponse.create_model_package = _versioned_package_tags(kept["create_model_package"])  # type: ignore[method-assign,assignment]

    def uninstall() -> None:
        for name, method in kept.items():
            setattr(SageMakerResponse, name, method)

    return uninstall


# A group's resource policy (moto has none): PutModelPackageGroupPolicy sets it, Get reads it, Delete
# removes it (SageMaker API reference). Kept on the account's backend (a reset forgets it with the
# groups); the local IAM decides a request on the group or its packages from another account with it.


def _policies(backend: Any) -> dict[str, str]:
    found: dict[str, str] = backend.__dict__.setdefault("model_package_group_policies", {})
    return found


def _put_model_package_group_policy(self: Any) -> Any:
    backend, name = _group_of(self)
    _policies(backend)[name] = str(self._get_param("ResourcePolicy"))
    return json.dumps({"ModelPackageGroupArn": backend.model_package_groups[name].arn})


def _get_model_package_group_policy(self: Any) -> Any:
    from .motoport import JsonRESTError

    backend, name = _group_of(self)
    if name not in _policies(backend):
        raise JsonRESTError("ValidationException", f"Cannot find resource policy for ModelPackageGroup {name}.")
    return json.dumps({"ResourcePolicy": _policies(backend)[name]})


def _delete_model_package_group_policy(self: Any) -> Any:
    from .motoport import EmptyResult

    backend, name = _group_of(self)
    _policies(backend).pop(name, None)
    return EmptyResult()


def group_policy(arn: str) -> dict[str, Any] | None:
    """The resource policy of the group a model package or group ARN is in, or None."""
    from .motoport import sagemaker_backends

    parts = arn.split(":")
    if len(parts) < 6 or not parts[5].startswith(("model-package/", "model-package-group/")):
        return None
    group = parts[5].split("/")[1]
    policies = _policies(sagemaker_backends[parts[4]][parts[3]])
    found = [text for name, text in policies.items() if name.lower() == group]
    return json.loads(found[0]) if found else None


def _describe_shared_package(self: Any) -> Any:
    """DescribeModelPackage of a package by its ARN: answered from the registry of the account the ARN
    names, which may be another's ("Deploy a model version from a different account": a consumer reads
    the source's shared package; moto looks in the caller's own only). Whether the caller may read it
    is IAM's decision, with the group's resource policy (task_permissions), not the registry's."""
    name = str(self._get_param("ModelPackageName"))
    parts = name.split(":")
    if len(parts) > 5 and parts[2] == "sagemaker" and parts[4] != self.current_account:
        self.current_account = parts[4]  # this request's own response object
    return _MOTO_API["describe_model_package"](self)


GROUP_POLICY_API = {
    "put_model_package_group_policy": _put_model_package_group_policy,
    "get_model_package_group_policy": _get_model_package_group_policy,
    "delete_model_package_group_policy": _delete_model_package_group_policy,
    "describe_model_package": _describe_shared_package,
}
_MOTO_API: dict[str, Any] = {}  # moto's own methods the fills replace, which some of them call


def install_group_policies() -> Callable[[], None]:
    """A run's register stage shares its group, and a consumer reads the shared packages (in-process
    runs and the local stack alike)."""
    from .motoport import SageMakerResponse

    kept = {name: getattr(SageMakerResponse, name, None) for name in GROUP_POLICY_API}
    for name, method in kept.items():
        if method is not None and method is not GROUP_POLICY_API[name]:  # installed twice: keep moto's
            _MOTO_API[name] = method
    for name, method in GROUP_POLICY_API.items():
        setattr(SageMakerResponse, name, method)

    def uninstall() -> None:
        for name, method in kept.items():
            if method is None:
                delattr(SageMakerResponse, name)
            else:
                setattr(SageMakerResponse, name, method)

    return uninstall


# --- Model package state changes on the default event bus ------------------------------------------
# SageMaker sends EventBridge a "SageMaker Model Package State Change" when a package is created or
# its status changes ("Events that Amazon SageMaker sends to Amazon EventBridge", model package state
# change: detail holds the package as DescribeModelPackage describes it); moto sends nothing.
PACKAGE_EVENT_FIELDS = (
    "ModelPackageGroupName",
    "ModelPackageVersion",
    "ModelPackageArn",
    "CreationTime",
    "InferenceSpecification",
    "ModelPackageStatus",
    "ModelApprovalStatus",
    "ModelMetrics",
    "LastModifiedTime",
)


def package_event(package: dict[str, Any]) -> dict[str, Any]:
    """The PutEvents entry SageMaker's event is, from a DescribeModelPackage response."""
    now = datetime.now(UTC)
    detail = {field: package[field] for field in PACKAGE_EVENT_FIELDS if field in package}
    detail.setdefault("LastModifiedTime", now)
    for name in ("CreationTime", "LastModifiedTime"):
        if isinstance(detail.get(name), datetime):
            detail[name] = detail[name].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "Source": "aws.sagemaker",
        "DetailType": PACKAGE_STATE_CHANGE,
        "Detail": json.dumps(detail, default=str),
        "Resources": [package["ModelPackageArn"]],
        "EventBusName": "default",
    }


def install_package_events(describe: Callable[[str, str], dict[str, Any]]) -> Callable[[], None]:
    """Send each created package, and each package whose approval status is updated, to its account's
    default bus (`describe(arn, region)`: the DescribeModelPackage response); returns the undo."""
    from .motoport import SageMakerResponse, events_backends

    kept = {name: getattr(SageMakerResponse, name) for name in ("create_model_package", "update_model_package")}

    def sending(name: str) -> Callable[[Any], Any]:
        def method(self: Any) -> Any:
            result = kept[name](self)
            answered = getattr(result, "result", None)  # moto's ActionResult
            arn = answered.get("ModelPackageArn") if isinstance(answered, dict) else None
            if arn and (name == "create_model_package" or self._get_param("ModelApprovalStatus")):
                entry = package_event(describe(str(arn), self.region))
                events_backends[self.current_account][self.region].put_events([entry])
            return result

        return method

    for name in kept:
        setattr(SageMakerResponse, name, sending(name))

    def uninstall() -> None:
        for name, method in kept.items():
            setattr(SageMakerResponse, name, method)

    return uninstall


REGISTRY_API = {
    "delete_model_package": _delete_model_package,
    "delete_model_package_group": _delete_model_package_group,
}


def install_registry() -> None:
    from .motoport import SageMakerResponse

    for name, method in REGISTRY_API.items():
        setattr(SageMakerResponse, name, method)


# --- InvokeEndpoint on a multi-model endpoint ------------------------------------------------------
# A model whose container is in MultiModel mode serves the models under its ModelDataUrl, an S3
# prefix; each invocation names one in TargetModel, its path relative to that prefix, and SageMaker
# loads <prefix><TargetModel> ("Invoke a Multi-Model Endpoint", SageMaker developer guide;
# InvokeEndpoint, SageMaker Runtime API reference: "TargetModel: The model to request for inference
# when invoking a multi-model endpoint"). An invocation that SageMaker cannot serve is a
# ValidationError (400); the messages are the local AWS's.


def _trained(record: Any, statuses: list[str], seconds: int, spot: bool) -> None:
    """What DescribeTrainingJob reports of how a local training job went (moto keeps canned values):
    its secondary statuses in order, the last one current, and its training and billable seconds
    (a spot job's billed at LOCAL_SPOT_BILLED)."""
    now = datetime.now(UTC)
    record.training_start_time = now - timedelta(seconds=seconds)
    record.secondary_status = statuses[-1]
    record.secondary_status_transitions = [
        {"Status": status, "StartTime": now, **({"EndTime": now} if index < len(statuses) - 1 else {})}
        for index, status in enumerate(statuses)
    ]
    record.training_end_time = now
    record.training_time_in_seconds = seconds
    record.billable_time_in_seconds = math.ceil(seconds * LOCAL_SPOT_BILLED) if spot else seconds


def package_containers(sagemaker: Any, containers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The containers a model serves: one naming a model package (ContainerDefinition.ModelPackageName,
    "The name or Amazon Resource Name (ARN) of the model package to use to create the model") is the
    package's inference containers, its image, model data and environment as registered."""
    served: list[dict[str, Any]] = []
    for container in containers:
        if "ModelPackageName" not in container:
            served.append(container)
            continue
        package = sagemaker.describe_model_package(ModelPackageName=container["ModelPackageName"])
        served += package["InferenceSpecification"]["Containers"]
    return served


class NotServed(Error, LookupError):
    """An invocation the endpoint's model cannot serve (InvokeEndpoint's ValidationError)."""


def served_container(model: dict[str, Any], endpoint: str, target_model: str | None) -> dict[str, Any]:
    """The container an invocation of `endpoint` reaches (a DescribeModel response's): for a
    multi-model one, with the ModelDataUrl of the model TargetModel names. NotServed when a
    multi-model endpoint is invoked without TargetModel."""
    container: dict[str, Any] = model.get("PrimaryContainer") or model["Containers"][0]
    if container.get("Mode", "SingleModel") != "MultiModel":
        return container
    if not target_model:
        raise NotServed(
            f"Endpoint {endpoint} is a multi-model endpoint: name the model to invoke in TargetModel, its path"
            f" under {container.get('ModelDataUrl', '')}"
        )
    return container | {"ModelDataUrl": str(container.get("ModelDataUrl", "")) + target_model}


def not_downloadable(url: str, target_model: str) -> NotServed:
    """The refusal of a TargetModel with no model at <prefix><TargetModel>."""
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return NotServed(f"Failed to download model data (bucket: {bucket}, key: {key}) for TargetModel {target_model}")


def install_multi_model() -> Callable[[], None]:
    """In-process runs: moto answers InvokeEndpoint with canned data whatever the endpoint serves; a
    multi-model endpoint's invocation is refused here as SageMaker refuses it (its answer stays moto's)."""
    import boto3

    from .motoport import JsonRESTError, SageMakerRuntimeResponse

    kept = SageMakerRuntimeResponse.invoke_endpoint

    def invoke_endpoint(self: Any) -> Any:
        endpoint = self._get_param("EndpointName")
        target = self.headers.get("X-Amzn-SageMaker-Target-Model")
        sagemaker = boto3.client("sagemaker", region_name=self.region)
        try:
            config = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
            variant = sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]
            model = sagemaker.describe_model(ModelName=variant["ModelName"])
        except ClientError:
            return kept(self)  # moto's own answer for an endpoint it does not know
        try:
            container = served_container(model, endpoint, target)
            if container.get("Mode") == "MultiModel":
                bucket, _, key = str(container["ModelDataUrl"]).removeprefix("s3://").partition("/")
                try:
                    boto3.client("s3", region_name=self.region).head_object(Bucket=bucket, Key=key)
                except ClientError:
                    raise not_downloadable(container["ModelDataUrl"], target) from None
        except NotServed as refused:
            raise JsonRESTError("ValidationError", str(refused)) from None
        return kept(self)

    SageMakerRuntimeResponse.invoke_endpoint = invoke_endpoint  # type: ignore[method-assign]

    def uninstall() -> None:
        SageMakerRuntimeResponse.invoke_endpoint = kept  # type: ignore[method-assign]

    return uninstall
