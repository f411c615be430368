"""What a run's jobs cost, from what SageMaker recorded of them (DescribeTrainingJob).

`BillableTimeInSeconds` is what SageMaker bills a training job's instances for; a managed spot job
reports it at the spot price, so that `(1 - BillableTimeInSeconds / TrainingTimeInSeconds) * 100` is
the saving in percent (SageMaker API reference, DescribeTrainingJob; developer guide, "Managed Spot
Training"). `status` shows it for a run whose training ran on spot capacity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError


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
