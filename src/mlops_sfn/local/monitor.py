"""SageMaker Model Monitor's schedules on this machine, in AWS's formats (with analyzer.py, capture.py
and alarms.py: the monitoring stage's and the drift loop's services).

moto has no monitoring schedules: Create/Describe/Update/Delete/ListMonitoringSchedules are added,
with the errors the SageMaker API reference gives them (ResourceInUse for a name in use,
ResourceNotFound for a missing schedule). A schedule's executions do not start on their own here:
`run_schedule` runs one now, as the schedule would at the top of the hour (`mlops-sfn local
monitor`, and `local demo --drift`): the analyzer compares the past hour's capture with the
baseline, and its drift metrics reach CloudWatch, which evaluates the alarms watching them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ..core import monitoring
from . import alarms, task_permissions
from .analyzer import compare, statistics
from .capture import _captured_rows, _get


def publishes(definition: dict[str, Any], rules: dict[str, Any]) -> bool:
    """Whether an execution publishes metrics, as the built-in analyzer decides: its job definition's
    Environment says publish_cloudwatch_metrics=Enabled ("CloudWatch Metrics for Bring Your Own
    Containers") and the baseline constraints do not switch emit_metrics off ("Schema for
    Constraints")."""
    environment = definition.get("DataQualityAppSpecification", {}).get("Environment", {})
    enabled = environment.get("publish_cloudwatch_metrics") == "Enabled"
    return enabled and bool(rules.get("monitoring_config", {}).get("emit_metrics", "Enabled") == "Enabled")


def run_schedule(
    client: Callable[[str], Any],
    schedule: str,
    now: datetime | None = None,
    guardrails: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """One execution of a data-quality schedule over the past hour's capture: its reports in the
    job definition's output, its metrics in CloudWatch (which evaluates the alarms watching them), when
    the job definition's role, within `guardrails` (local up --deny/--scp), may write them."""
    now = now or datetime.now(UTC)
    sagemaker, s3, cloudwatch = client("sagemaker"), client("s3"), client("cloudwatch")
    described = sagemaker.describe_monitoring_schedule(MonitoringScheduleName=schedule)
    definition = sagemaker.describe_data_quality_job_definition(
        JobDefinitionName=described["MonitoringScheduleConfig"]["MonitoringJobDefinitionName"]
    )
    endpoint = definition["DataQualityJobInput"]["EndpointInput"]["EndpointName"]
    config_name = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    capture_config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name).get("DataCaptureConfig", {})
    if not capture_config.get("DestinationS3Uri"):
        raise ValueError(f"endpoint {endpoint} captures no data: its endpoint config has no DataCaptureConfig")
    rows = _captured_rows(s3, capture_config["DestinationS3Uri"], endpoint, now - timedelta(hours=1))
    output = definition["DataQualityJobOutputConfig"]["MonitoringOutputs"][0]["S3Output"]["S3Uri"].rstrip("/")
    folder = f"{output}/{endpoint}/{schedule}/{now:%Y/%m/%d/%H}"
    bucket, _, prefix = folder.removeprefix("s3://").partition("/")
    if not rows:  # the analyzer fails an execution that finds no captured data
        return {
            "status": "Failed",
            "reason": "Job inputs had no data",
            "folder": folder,
            "violations": [],
            "drift": {},
            "published": False,
            "unpublished": "the execution failed",
        }
    baseline_config = definition["DataQualityBaselineConfig"]
    baseline = json.loads(_get(s3, baseline_config["StatisticsResource"]["S3Uri"]))
    rules = json.loads(_get(s3, baseline_config["ConstraintsResource"]["S3Uri"]))
    names = [feature["name"] for feature in rules["features"]]
    width = max(len(row) for row in rows)
    current = statistics(rows, names if width == len(names) else None)
    violations, drift = compare(baseline, rules, current)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/statistics.json", Body=json.dumps(current, indent=2).encode())
    s3.put_object(
        Bucket=bucket,
        Key=f"{prefix}/constraint_violations.json",
        Body=json.dumps({"violations": violations}, indent=2).encode(),
    )
    unpublished = None if publishes(definition, rules) else "the job definition does not ask for them (Environment)"
    if unpublished is None and drift:  # the analyzer writes them as the job definition's role
        unpublished = task_permissions.refusal(
            definition["RoleArn"],
            [
                task_permissions.Call(
                    "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": monitoring.METRIC_NAMESPACE}
                )
            ],
            task_permissions.role_policies_via_api(client("iam"), definition["RoleArn"]) or [],
            guardrails,
        )
    if unpublished is None and drift:
        dimensions = [{"Name": "Endpoint", "Value": endpoint}, {"Name": "MonitoringSchedule", "Value": schedule}]
        cloudwatch.put_metric_data(
            Namespace=monitoring.METRIC_NAMESPACE,
            MetricData=[
                {
                    "MetricName": monitoring.DRIFT_METRIC.format(feature=name),
                    "Dimensions": dimensions,
                    "Timestamp": now,
                    "Value": value,
                }
                for name, value in drift.items()
            ],
        )
    status = "CompletedWithViolations" if violations else "Completed"
    return {
        "status": status,
        "folder": folder,
        "violations": violations,
        "drift": drift,
        "rows": len(rows),
        "published": unpublished is None,
        "unpublished": unpublished,  # why no metric was published, when none was
    }


# --- What moto lacks: monitoring schedules -------------------------------------------------------


def _schedules(backend: Any) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = backend.__dict__.setdefault("_mlops_monitoring_schedules", {})
    return found


def schedule_tags(backend: Any, name: str) -> list[dict[str, str]]:
    """A monitoring schedule's tags (what CreateMonitoringSchedule's Tags gave, then AddTags): the list
    itself, for ListTags, AddTags and DeleteTags to read and change (sagemaker.py)."""
    if name not in _schedules(backend):
        raise _missing(name)
    tags: dict[str, list[dict[str, str]]] = backend.__dict__.setdefault("_mlops_monitoring_schedule_tags", {})
    return tags.setdefault(name, [])


def _missing(name: str) -> Exception:
    from .motoport import JsonRESTError

    return JsonRESTError("ResourceNotFound", f"Monitoring Schedule {name} does not exist.")


def _create_monitoring_schedule(self: Any) -> Any:
    from .motoport import ActionResult, JsonRESTError

    name, schedules = self._get_param("MonitoringScheduleName"), _schedules(self.sagemaker_backend)
    if name in schedules:
        # SageMaker API reference, CreateMonitoringSchedule: ResourceInUse, "Resource being accessed is in use".
        raise JsonRESTError("ResourceInUse", f"Monitoring Schedule {name} already exists.")
    config = self._get_param("MonitoringScheduleConfig")
    backend = self.sagemaker_backend
    arn = f"arn:aws:sagemaker:{backend.region_name}:{backend.account_id}:monitoring-schedule/{name}"
    now = datetime.now(UTC)
    schedules[name] = {
        "MonitoringScheduleArn": arn,
        "MonitoringScheduleName": name,
        "MonitoringScheduleStatus": "Scheduled",
        "MonitoringType": config.get("MonitoringType", "DataQuality"),
        "CreationTime": now,
        "LastModifiedTime": now,
        "MonitoringScheduleConfig": config,
    }
    schedule_tags(backend, name)[:] = list(self._get_param("Tags") or [])
    return ActionResult({"MonitoringScheduleArn": arn})


def _describe_monitoring_schedule(self: Any) -> Any:
    from .motoport import ActionResult

    name = self._get_param("MonitoringScheduleName")
    found = _schedules(self.sagemaker_backend).get(name)
    if found is None:
        raise _missing(name)
    return ActionResult(found)


def _update_monitoring_schedule(self: Any) -> Any:
    from .motoport import ActionResult

    name = self._get_param("MonitoringScheduleName")
    found = _schedules(self.sagemaker_backend).get(name)
    if found is None:
        raise _missing(name)
    found["MonitoringScheduleConfig"] = self._get_param("MonitoringScheduleConfig")
    found["LastModifiedTime"] = datetime.now(UTC)
    return ActionResult({"MonitoringScheduleArn": found["MonitoringScheduleArn"]})


def _delete_monitoring_schedule(self: Any) -> Any:
    from .motoport import EmptyResult

    name = self._get_param("MonitoringScheduleName")
    if _schedules(self.sagemaker_backend).pop(name, None) is None:
        raise _missing(name)
    return EmptyResult()


def _list_monitoring_schedules(self: Any) -> Any:
    from .motoport import ActionResult

    endpoint = self._get_param("EndpointName")
    summaries = []
    for schedule in _schedules(self.sagemaker_backend).values():
        definition = schedule["MonitoringScheduleConfig"].get("MonitoringJobDefinitionName")
        watched = None
        try:
            described = self.sagemaker_backend.describe_data_quality_job_definition(definition)
            watched = described["DataQualityJobInput"]["EndpointInput"]["EndpointName"]
        except Exception:  # a definition deleted since: the schedule is still listed
            pass
        if endpoint and watched != endpoint:
            continue
        summaries.append(
            {
                key: schedule[key]
                for key in ("MonitoringScheduleName", "MonitoringScheduleArn", "CreationTime", "LastModifiedTime")
            }
            | {"MonitoringScheduleStatus": schedule["MonitoringScheduleStatus"], "EndpointName": watched}
        )
    return ActionResult({"MonitoringScheduleSummaries": summaries})


_SCHEDULE_API = {
    "create_monitoring_schedule": _create_monitoring_schedule,
    "describe_monitoring_schedule": _describe_monitoring_schedule,
    "update_monitoring_schedule": _update_monitoring_schedule,
    "delete_monitoring_schedule": _delete_monitoring_schedule,
    "list_monitoring_schedules": _list_monitoring_schedules,
}


def install() -> Callable[[], None]:
    """Add monitoring schedules to moto's SageMaker, alarm evaluation to its CloudWatch, and the
    alarm state change events; returns what undoes it."""
    from .motoport import SageMakerResponse

    for name, method in _SCHEDULE_API.items():
        setattr(SageMakerResponse, name, method)
    uninstall_alarms = alarms.install()

    def uninstall() -> None:
        for name in _SCHEDULE_API:
            delattr(SageMakerResponse, name)
        uninstall_alarms()

    return uninstall
