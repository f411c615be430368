"""What a run cost, from what SageMaker recorded of its jobs and endpoint (`status`, `runs --cost`).

- a training job: `BillableTimeInSeconds` x its instance count ("Multiply BillableTimeInSeconds by
  the number of instances", SageMaker API reference, DescribeTrainingJob). A managed spot job reports
  its billable time at the spot price, so `(1 - BillableTimeInSeconds / TrainingTimeInSeconds) * 100`
  is the saving in percent (developer guide, "Managed Spot Training");
- a processing or transform job: its instances from `ProcessingStartTime`/`TransformStartTime` to
  its end time (SageMaker bills instances by the second while a job runs);
- the endpoint, when it still serves the run's config: its instances since it last changed
  (`LastModifiedTime`), up to now;
each at the hourly on-demand price of the table the estimate uses (core/prices.py); a fanned-out
run's segments' jobs too (their planned inputs, which the run's Map read). Not counted: tuning's
training jobs, the monitoring schedule's hourly jobs, storage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..core.prices import Prices
from ..core.stages import STAGE

HOUR = 3600.0
NOT_COUNTED = "tuning's training jobs, the monitoring schedule's jobs and storage are not counted"


class Recorded:
    """A SageMaker client that describes each training job once: `status` reads a spot run's training
    jobs for its spot line and again for its cost."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._training: dict[str, dict[str, Any]] = {}

    def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:
        if TrainingJobName not in self._training:
            self._training[TrainingJobName] = self._client.describe_training_job(TrainingJobName=TrainingJobName)
        return self._training[TrainingJobName]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@dataclass(frozen=True)
class Trained:
    """One training job as SageMaker recorded it."""

    job: str
    status: str
    training_seconds: int
    billable_seconds: int
    spot: bool

    @property
    def saving_percent(self) -> float | None:
        """The spot saving (AWS's formula); None for an on-demand job or one that trained no time."""
        if not self.spot or not self.training_seconds:
            return None
        return round((1 - self.billable_seconds / self.training_seconds) * 100, 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "status": self.status,
            "training_seconds": self.training_seconds,
            "billable_seconds": self.billable_seconds,
            "spot": self.spot,
            "saving_percent": self.saving_percent,
        }


def trained(sagemaker: Any, job: str) -> Trained:
    """The job as DescribeTrainingJob reports it (a job that never trained: 0 seconds)."""
    described = sagemaker.describe_training_job(TrainingJobName=job)
    return Trained(
        job=job,
        status=f"{described['TrainingJobStatus']} ({described.get('SecondaryStatus', '')})",
        training_seconds=int(described.get("TrainingTimeInSeconds", 0)),
        billable_seconds=int(described.get("BillableTimeInSeconds", 0)),
        spot=described.get("EnableManagedSpotTraining") is True,
    )


def spot_planned(execution_input: dict[str, Any]) -> bool:
    """Whether the run's training was planned on spot capacity (with its on-demand fallback)."""
    return "on_demand" in execution_input.get("stages", {}).get("training", {})


def spot_training(sagemaker: Any, execution_input: dict[str, Any], results: dict[str, Any]) -> dict[str, Any] | None:
    """A run's spot training as SageMaker recorded it: {"jobs": [Trained...]} (the spot job, and the
    on-demand job when capacity missed it), or {"unread": why} when the jobs cannot be described;
    None when its training did not run on spot capacity."""
    if not spot_planned(execution_input):
        return None
    block = execution_input["stages"]["training"]
    names = [block["request"]["TrainingJobName"]]
    if results.get("training", {}).get("on_demand"):
        names.append(block["on_demand"]["request"]["TrainingJobName"])
    try:
        return {"jobs": [trained(sagemaker, name) for name in names]}
    except (ClientError, BotoCoreError) as error:
        return {"unread": str(error)}


def spot_line(found: dict[str, Any]) -> str:
    """status's line on a run's spot training."""
    if "unread" in found:
        return f"spot: SageMaker's record of the jobs could not be read: {found['unread']}"
    spot, *fallback = found["jobs"]
    if fallback:
        (on_demand,) = fallback
        return (
            f"spot: capacity did not arrive ({spot.job}: {spot.status}, {spot.billable_seconds} s billed);"
            f" on demand {on_demand.job}: {on_demand.billable_seconds} s billed"
        )
    saving = spot.saving_percent
    saved = f": saved {saving:g} %" if saving is not None else ""
    return f"spot: {spot.billable_seconds} s billed of {spot.training_seconds} s trained{saved}"


@dataclass(frozen=True)
class Billed:
    """One job or endpoint of a run, as SageMaker recorded it."""

    stage: str
    name: str
    use: str
    instance_type: str
    count: int
    seconds: float  # billed instance time of one instance
    usd: float | None  # None: no price in the table

    def line(self) -> str:
        cost = f"USD {self.usd:.4f}" if self.usd is not None else "no price"
        return f"{self.stage}: {cost} ({self.count} x {self.instance_type} for {self.seconds:g} s, {self.name})"


def _seconds(described: dict[str, Any], start: str, end: str | None, now: datetime) -> float:
    """From `start` to `end` (None, or not recorded yet: now)."""
    began, ended = described.get(start), (described.get(end) if end else None) or now
    return max(0.0, (ended - began).total_seconds()) if isinstance(began, datetime) else 0.0


def _job(sagemaker: Any, operation: str, request: dict[str, Any], now: datetime) -> tuple[str, str, int, float] | None:
    """(use, instance type, count, seconds) of one job as SageMaker recorded it; None: never created."""
    try:
        if operation == "CreateTrainingJob":
            described = sagemaker.describe_training_job(TrainingJobName=request["TrainingJobName"])
            resources = described.get("ResourceConfig", {})
            # its warm pool bills while it waits: ResourceRetainedBillableTimeInSeconds x InstanceCount
            # (SageMaker API reference, WarmPoolStatus)
            retained = described.get("WarmPoolStatus", {}).get("ResourceRetainedBillableTimeInSeconds", 0)
            seconds = float(described.get("BillableTimeInSeconds", 0)) + float(retained)
            return "training", resources.get("InstanceType", ""), int(resources.get("InstanceCount", 1)), seconds
        if operation == "CreateProcessingJob":
            described = sagemaker.describe_processing_job(ProcessingJobName=request["ProcessingJobName"])
            cluster = described.get("ProcessingResources", {}).get("ClusterConfig", {})
            seconds = _seconds(described, "ProcessingStartTime", "ProcessingEndTime", now)
            return "processing", cluster.get("InstanceType", ""), int(cluster.get("InstanceCount", 1)), seconds
        if operation == "CreateTransformJob":
            described = sagemaker.describe_transform_job(TransformJobName=request["TransformJobName"])
            resources = described.get("TransformResources", {})
            seconds = _seconds(described, "TransformStartTime", "TransformEndTime", now)
            return "transform", resources.get("InstanceType", ""), int(resources.get("InstanceCount", 1)), seconds
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound"):
            return None  # the run never created it ("Could not find ...")
        raise
    return None


def _endpoint(sagemaker: Any, block: dict[str, Any], now: datetime) -> list[tuple[str, str, int, float]]:
    """The endpoint's instances since it took the run's config, when it still serves it."""
    request = block.get("endpoint_config_request", {})
    try:
        described = sagemaker.describe_endpoint(EndpointName=block["endpoint_name"])
    except ClientError:
        return []
    if described.get("EndpointConfigName") != request.get("EndpointConfigName"):
        return []  # gone, or serving another run's config since
    since = _seconds(described, "LastModifiedTime", None, now)
    # a serverless variant has no instances: it is billed per request, which this bill does not count
    types = {v["VariantName"]: v["InstanceType"] for v in request.get("ProductionVariants", []) if "InstanceType" in v}
    return [
        ("hosting", types[v["VariantName"]], int(v.get("CurrentInstanceCount", 0)), since)
        for v in described.get("ProductionVariants", [])
        if v["VariantName"] in types
    ]


def run_cost(
    sagemaker: Any,
    execution_input: dict[str, Any],
    prices: Prices,
    region: str,
    now: datetime,
    segment_inputs: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """{usd, stages: {stage: usd}, lines: [...], unpriced: [...], not_counted} of one run (its segments'
    jobs summed into their stages), or {"unread": why}."""
    found: list[Billed] = []
    planned = [(stage, block, execution_input) for stage, block in execution_input.get("stages", {}).items()]
    planned += [(stage, block, segment) for segment in segment_inputs for stage, block in segment["stages"].items()]
    try:
        for stage, block, run in planned:
            if not run.get("run", {}).get(stage) or stage in run.get("reused", {}):
                continue
            recorded = [
                (
                    next((str(v) for k, v in request.items() if k.endswith("JobName")), ""),
                    _job(sagemaker, operation, request, now),
                )
                for operation, request in STAGE[stage].requests(block)
            ]
            if stage == "deploy":
                recorded += [(block["endpoint_name"], serving) for serving in _endpoint(sagemaker, block, now)]
            for name, job in recorded:
                if job is None:
                    continue
                use, instance_type, count, seconds = job
                hourly = prices.hourly(region, use, instance_type)
                usd = round(hourly * count * seconds / HOUR, 6) if hourly is not None else None
                found.append(Billed(stage, name, use, instance_type, count, round(seconds, 1), usd))
    except (ClientError, BotoCoreError) as error:
        return {"unread": str(error)}
    stages: dict[str, float] = {}
    for billed in found:
        stages[billed.stage] = round(stages.get(billed.stage, 0.0) + (billed.usd or 0.0), 6)
    return {
        "usd": round(sum(stages.values()), 4),
        "stages": stages,
        "lines": [billed.line() for billed in found],
        "unpriced": sorted({f"{b.instance_type} for {b.use}" for b in found if b.usd is None}),
        "not_counted": NOT_COUNTED,
    }


def cost_line(cost: dict[str, Any], estimate: dict[str, Any] | None) -> str:
    """status's and runs --cost's words for a run's cost."""
    if "unread" in cost:
        return f"cost: SageMaker's record of the run could not be read: {cost['unread']}"
    bound = f" (estimate at the start: at most USD {estimate['usd']:.2f})" if estimate else ""
    return f"cost: USD {cost['usd']:.4f} so far, from what SageMaker recorded{bound}"
