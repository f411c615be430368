"""What a planned run may cost at most, before it starts: each SageMaker job's instances for its
whole time limit, an endpoint's instances for a day, a monitoring schedule's jobs for a day, and
Step Functions' state transitions, at the prices of a dated table (prices.py).

A bound, not a forecast: a job billed by the second rarely runs its `MaxRuntimeInSeconds`; a spot
job counts at the on-demand price, its on-demand fallback as well. What a run did cost is what
SageMaker recorded (operate/bill.py). `budget_usd` is checked against this bound.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .prices import Prices
from .stage import DEFAULT_JOB_LIMIT_SECONDS
from .stages import STAGE

HOUR = 3600
DAY_HOURS = 24
# Step Functions' transitions of a run, about: the states every run enters, then each stage's (its
# Choice, its Tasks, its caching Choice), then a segment's in a fanned-out run (docs/costs.md lists
# what the demo's runs took). An endpoint's wait adds 4 per 30-second check; not counted.
RUN_TRANSITIONS, STAGE_TRANSITIONS, SEGMENT_TRANSITIONS = 13, 5, 21


@dataclass(frozen=True)
class Charge:
    """One thing a stage pays for: `count` instances of a type for `hours`, in `use`."""

    stage: str
    use: str
    instance_type: str
    count: int
    hours: float
    why: str  # where the hours come from
    usd: float | None  # None: the table has no price for it

    def line(self) -> str:
        cost = f"USD {round(self.usd, 4):g}" if self.usd is not None else "no price"
        return f"{cost}: {self.count} x {self.instance_type} for {self.use}, {self.hours:g} h ({self.why})"


def _job(use: str, resources: dict[str, Any], seconds: float, why: str) -> list[tuple[Any, ...]]:
    groups = resources.get("InstanceGroups") or [resources]
    return [
        (use, str(group["InstanceType"]), int(group.get("InstanceCount", 1)), seconds / HOUR, why)
        for group in groups
        if isinstance(group, dict) and "InstanceType" in group
    ]


def _limit(request: dict[str, Any]) -> tuple[int, str]:
    stop = request.get("StoppingCondition", {})
    if "MaxRuntimeInSeconds" in stop:
        return int(stop["MaxRuntimeInSeconds"]), "MaxRuntimeInSeconds"
    return DEFAULT_JOB_LIMIT_SECONDS, "no MaxRuntimeInSeconds: SageMaker's default, a day"


def _runs_per_day(expression: str) -> int:
    """How often a monitoring schedule runs a day: cron(minute hour ...) with the hour "*" is hourly."""
    fields = expression.removeprefix("cron(").rstrip(")").split()
    hours = fields[1] if len(fields) > 1 else "*"
    return DAY_HOURS if hours == "*" else len(hours.split(","))


def _requested(operation: str, request: dict[str, Any], block: dict[str, Any]) -> list[tuple[Any, ...]]:
    """(use, instance type, count, hours, why) of one request."""
    if operation == "CreateProcessingJob":
        seconds, why = _limit(request)
        return _job("processing", request["ProcessingResources"]["ClusterConfig"], seconds, why)
    if operation == "CreateTrainingJob":
        seconds, why = _limit(request)
        resources = request.get("ResourceConfig", {})
        kept = int(resources.get("KeepAlivePeriodInSeconds", 0))  # a warm pool bills while it waits
        pool = _job("training", resources, kept, "its warm pool, kept alive") if kept else []
        return _job("training", resources, seconds, why) + pool
    if operation == "CreateHyperParameterTuningJob":
        definition = request.get("TrainingJobDefinition", {})
        jobs = int(request["HyperParameterTuningJobConfig"].get("ResourceLimits", {}).get("MaxNumberOfTrainingJobs", 1))
        seconds, why = _limit(definition)
        return _job("training", definition.get("ResourceConfig", {}), seconds * jobs, f"{jobs} jobs, {why}")
    if operation == "CreateTransformJob":
        why = "a transform job has no time limit: a day assumed"
        return _job("transform", request["TransformResources"], DEFAULT_JOB_LIMIT_SECONDS, why)
    if operation == "CreateEndpointConfig":
        # an autoscaled variant may run its most instances; a serverless one is billed per request (unbounded)
        most = block.get("autoscaling", {}).get("target", {}).get("MaxCapacity")
        why = f"a day, at most {most} instances as autoscaled" if most else "a day"
        return [
            ("hosting", str(v["InstanceType"]), int(most or v.get("InitialInstanceCount", 1)), DAY_HOURS, why)
            for v in request.get("ProductionVariants", [])
            if "InstanceType" in v
        ]
    if operation == "CreateDataQualityJobDefinition":
        seconds, why = _limit(request)
        schedule = block.get("schedule_request", {}).get("MonitoringScheduleConfig", {}).get("ScheduleConfig", {})
        expression = schedule.get("ScheduleExpression", "cron(0 * ? * * *)")
        runs = _runs_per_day(str(expression))
        resources = request["JobResources"]["ClusterConfig"]
        return _job("processing", resources, seconds * runs, f"{runs} jobs a day, {why}")
    return []


def charges(stage: str, block: dict[str, Any], prices: Prices, region: str) -> list[Charge]:
    """What one planned stage pays for, at `prices` in `region`."""
    found = []
    for operation, request in STAGE[stage].requests(block):
        for use, instance_type, count, hours, why in _requested(operation, request, block):
            hourly = prices.hourly(region, use, instance_type)
            usd = round(hourly * count * hours, 6) if hourly is not None else None
            found.append(Charge(stage, use, instance_type, count, round(hours, 4), why, usd))
    return found


def estimate(
    execution_input: dict[str, Any], segment_inputs: Sequence[dict[str, Any]], prices: Prices, region: str
) -> dict[str, Any]:
    """{usd, stages: {stage: usd}, charges: [line...], unpriced: [...], transitions, prices_as_of, region}:
    the run's bound, its per-segment stages' summed over the segments."""
    found: list[Charge] = []
    for planned in [execution_input, *segment_inputs]:
        for stage, block in planned["stages"].items():
            if planned["run"].get(stage) and stage not in planned.get("reused", {}):
                found += charges(stage, block, prices, region)
    per_segment = execution_input.get("fanout", {}).get("stages", [])
    running = sum(1 for on in execution_input["run"].values() if on) + len(per_segment)
    transitions = RUN_TRANSITIONS + STAGE_TRANSITIONS * running + SEGMENT_TRANSITIONS * len(segment_inputs)
    lines = [f"{charge.stage}: {charge.line()}" for charge in found]
    stages: dict[str, float] = {}
    for charge in found:
        stages[charge.stage] = round(stages.get(charge.stage, 0.0) + (charge.usd or 0.0), 6)
    stages["step_functions"] = round(transitions * prices.transition, 6)
    return {
        "usd": round(sum(stages.values()), 2),
        "stages": stages,
        "charges": [f"{line}, x {n} segments" if n > 1 else line for line, n in Counter(lines).items()],
        "unpriced": sorted({f"{c.instance_type} for {c.use}" for c in found if c.usd is None}),
        "transitions": transitions,
        "prices_as_of": prices.as_of,
        "region": region,
    }
