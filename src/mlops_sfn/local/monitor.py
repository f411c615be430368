"""SageMaker Model Monitor and CloudWatch alarms on this machine, in AWS's formats.

What the local AWS adds for the monitoring stage and the drift loop:
- monitoring schedules (moto has none): Create/Describe/Update/Delete/ListMonitoringSchedules, with
  the errors the SageMaker API reference gives them (ResourceInUse for a name in use,
  ResourceNotFound for a missing schedule);
- data capture: an endpoint whose config enables DataCaptureConfig writes each sampled invocation
  as SageMaker does ("Data capture": one JSON line per request under
  <destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/);
- the analyzer (sagemaker-model-monitor-analyzer): a baseline job writes statistics.json and
  constraints.json, a monitoring execution writes statistics.json and constraint_violations.json
  and publishes feature_baseline_drift_<feature> metrics ("Schema for Statistics", "Schema for
  Constraints", "Schema for Violations", "CloudWatch Metrics");
- alarm evaluation: metric data that reaches an alarm's metrics is evaluated at once, and each
  change of state is sent to EventBridge as a "CloudWatch Alarm State Change" event (CloudWatch user
  guide, "Alarm events and EventBridge"). moto stores alarms but never evaluates them; it also
  starts a new alarm OK and resets an updated one, where AWS starts it INSUFFICIENT_DATA and keeps
  an updated alarm's state (PutMetricAlarm).
A schedule's executions do not start on their own here: `run_schedule` runs one now, as the schedule
would at the top of the hour (`mlops-sfn local monitor`, and `local demo --drift`).

Drift is measured as the analyzer's "Robust" comparison does: the largest distance between the two
distributions' cumulative distribution functions (0 to 1), here computed from the baseline's
sample of each numeric feature and the captured values.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import math
import random
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, cast

from ..core import monitoring
from . import task_permissions

SAMPLE_LIMIT = 2048  # values of a feature kept in statistics.json's sketch (the analyzer's KLL k)
BUCKETS = 10


# --- The analyzer ------------------------------------------------------------------------------


def read_rows(text: str) -> list[list[str]]:
    return [row for row in csv.reader(io.StringIO(text)) if row]


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _inferred_type(values: list[str]) -> str:
    present = [v for v in values if v != ""]
    if not present:
        return "Unknown"
    if all(_number(v) is not None for v in present):
        return "Integral" if all(float(v).is_integer() and "." not in v for v in present) else "Fractional"
    return "String"


def _columns(rows: list[list[str]], header: list[str] | None) -> dict[str, list[str]]:
    width = max((len(row) for row in rows), default=len(header or []))
    names = header or [f"_c{index}" for index in range(width)]  # Spark's names for a CSV without header
    return {name: [row[index] if index < len(row) else "" for row in rows] for index, name in enumerate(names)}


def statistics(rows: list[list[str]], header: list[str] | None = None) -> dict[str, Any]:
    """statistics.json ("Schema for Statistics"), with each numeric feature's KLL buckets and sketch."""
    features = []
    for name, values in _columns(rows, header).items():
        kind = _inferred_type(values)
        present = [v for v in values if v != ""]
        common = {"num_present": len(present), "num_missing": len(values) - len(present)}
        if kind in ("Integral", "Fractional"):
            numbers = sorted(float(v) for v in present)
            low, high = numbers[0], numbers[-1]
            width = (high - low) / BUCKETS or 1.0
            counts = [0] * BUCKETS
            for number in numbers:
                counts[min(int((number - low) / width), BUCKETS - 1)] += 1
            step = max(1, len(numbers) // SAMPLE_LIMIT)
            mean = sum(numbers) / len(numbers)
            features.append(
                {
                    "name": name,
                    "inferred_type": kind,
                    "numerical_statistics": {
                        "common": common,
                        "mean": mean,
                        "sum": sum(numbers),
                        "std_dev": math.sqrt(sum((n - mean) ** 2 for n in numbers) / len(numbers)),
                        "min": low,
                        "max": high,
                        "distribution": {
                            "kll": {
                                "buckets": [
                                    {"lower_bound": low + i * width, "upper_bound": low + (i + 1) * width, "count": c}
                                    for i, c in enumerate(counts)
                                ],
                                "sketch": {
                                    "parameters": {"c": 0.64, "k": float(SAMPLE_LIMIT)},
                                    "data": [numbers[::step]],
                                },
                            }
                        },
                    },
                }
            )
        else:
            distinct = sorted(set(present))
            features.append(
                {
                    "name": name,
                    "inferred_type": kind,
                    "string_statistics": {
                        "common": common,
                        "distinct_count": len(distinct),
                        "distribution": {
                            "categorical": {
                                "buckets": [{"value": v, "count": present.count(v)} for v in distinct[:100]]
                            }
                        },
                    },
                }
            )
    return {"version": 0, "dataset": {"item_count": len(rows)}, "features": features}


def constraints(stats: dict[str, Any]) -> dict[str, Any]:
    """constraints.json ("Schema for Constraints") suggested from a baseline's statistics."""
    features = []
    for feature in stats["features"]:
        common = (feature.get("numerical_statistics") or feature.get("string_statistics"))["common"]
        total = common["num_present"] + common["num_missing"]
        entry: dict[str, Any] = {
            "name": feature["name"],
            "inferred_type": feature["inferred_type"],
            "completeness": common["num_present"] / total if total else 1.0,
        }
        if "numerical_statistics" in feature:
            entry["num_constraints"] = {"is_non_negative": feature["numerical_statistics"]["min"] >= 0}
        features.append(entry)
    return {
        "version": 0,
        "features": features,
        "monitoring_config": {
            "evaluate_constraints": "Enabled",
            "emit_metrics": "Enabled",
            "datatype_check_threshold": 1.0,
            "domain_content_threshold": 1.0,
            "distribution_constraints": {
                "perform_comparison": "Enabled",
                "comparison_threshold": monitoring.DEFAULT_THRESHOLD,
                "comparison_method": "Robust",
            },
        },
    }


def _sample(feature: dict[str, Any]) -> list[float]:
    data = feature["numerical_statistics"]["distribution"]["kll"]["sketch"]["data"]
    return sorted(value for part in data for value in part)


def distance(baseline: list[float], current: list[float]) -> float:
    """The largest gap between the two empirical cumulative distribution functions."""
    if not baseline or not current:
        return 0.0
    gap = 0.0
    for point in sorted(set(baseline) | set(current)):
        below_base = bisect.bisect_right(baseline, point) / len(baseline)
        below_current = bisect.bisect_right(current, point) / len(current)
        gap = max(gap, abs(below_base - below_current))
    return gap


def compare(
    baseline: dict[str, Any], rules: dict[str, Any], current: dict[str, Any]
) -> tuple[list[dict[str, str]], dict[str, float]]:
    """(the violations, as constraint_violations.json lists them; each numeric feature's drift)."""
    violations: list[dict[str, str]] = []
    drift: dict[str, float] = {}
    config = rules.get("monitoring_config", {})
    threshold = float(config.get("distribution_constraints", {}).get("comparison_threshold", 0.1))
    compared = config.get("distribution_constraints", {}).get("perform_comparison", "Enabled") == "Enabled"
    seen = {feature["name"]: feature for feature in current["features"]}
    base = {feature["name"]: feature for feature in baseline["features"]}
    expected = [rule["name"] for rule in rules["features"]]
    if len(seen) < len(expected):
        violations.append(
            {
                "feature_name": ",".join(name for name in expected if name not in seen),
                "constraint_check_type": "missing_column_check",
                "description": f"There are {len(expected)} columns in the baseline, {len(seen)} in the current data",
            }
        )
    if len(seen) > len(expected):
        violations.append(
            {
                "feature_name": ",".join(name for name in seen if name not in expected),
                "constraint_check_type": "extra_column_check",
                "description": f"There are {len(expected)} columns in the baseline, {len(seen)} in the current data",
            }
        )
    for rule in rules["features"]:
        name, feature = rule["name"], seen.get(rule["name"])
        if feature is None:
            continue
        numeric = ("Integral", "Fractional")
        if feature["inferred_type"] != rule["inferred_type"] and not (
            rule["inferred_type"] == "Fractional" and feature["inferred_type"] == "Integral"
        ):
            violations.append(
                {
                    "feature_name": name,
                    "constraint_check_type": "data_type_check",
                    "description": f"Data type match requirement is not met: expected {rule['inferred_type']}, "
                    f"found {feature['inferred_type']}",
                }
            )
            continue
        if rule["inferred_type"] not in numeric or name not in base:
            continue
        common = feature["numerical_statistics"]["common"]
        completeness = common["num_present"] / max(1, common["num_present"] + common["num_missing"])
        if completeness < rule.get("completeness", 0.0):
            violations.append(
                {
                    "feature_name": name,
                    "constraint_check_type": "completeness_check",
                    "description": f"Data completeness {completeness:.4f} is below the baseline's "
                    f"{rule['completeness']}",
                }
            )
        drift[name] = distance(_sample(base[name]), _sample(feature))
        if compared and drift[name] > threshold:
            violations.append(
                {
                    "feature_name": name,
                    "constraint_check_type": "baseline_drift_check",
                    "description": f"Baseline drift distance: {drift[name]:.4f} exceeds threshold: {threshold}",
                }
            )
    return violations, drift


def baseline_job(inputs: Path, outputs: Path, environment: dict[str, str]) -> None:
    """The analyzer as a baseline job: every CSV file under its input, read as `dataset_format` says."""
    header = json.loads(environment.get("dataset_format", "{}")).get("csv", {}).get("header", False)
    names: list[str] | None = None
    rows: list[list[str]] = []
    for path in sorted(inputs.rglob("*")):
        if not path.is_file():
            continue
        found = read_rows(path.read_text())
        if header and found:
            names, found = names or found[0], found[1:]
        rows += found
    if not rows:
        raise ValueError("Job inputs had no data: the baseline dataset holds no CSV rows")
    stats = statistics(rows, names)
    outputs.mkdir(parents=True, exist_ok=True)
    (outputs / "statistics.json").write_text(json.dumps(stats, indent=2))
    (outputs / "constraints.json").write_text(json.dumps(constraints(stats), indent=2))


# --- Data capture --------------------------------------------------------------------------------


def capture_record(
    body: str, content_type: str | None, answer: str, answer_type: str, modes: list[str], now: datetime
) -> dict[str, Any]:
    """One captured invocation, as SageMaker writes it ("Data capture")."""
    data: dict[str, Any] = {}
    if "Input" in modes:
        data["endpointInput"] = {
            "observedContentType": content_type or "text/csv",
            "mode": "INPUT",
            "data": body,
            "encoding": "CSV",
        }
    if "Output" in modes:
        data["endpointOutput"] = {
            "observedContentType": answer_type,
            "mode": "OUTPUT",
            "data": answer,
            "encoding": "CSV",
        }
    return {
        "captureData": data,
        "eventMetadata": {"eventId": str(uuid.uuid4()), "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")},
        "eventVersion": "0",
    }


def capture(
    s3: Any,
    config: dict[str, Any],
    endpoint: str,
    variant: str,
    call: tuple[str, str | None, str, str],
    now: datetime | None = None,
) -> str | None:
    """Write one invocation (body, content type, answer, answer type) when the endpoint config
    captures and the sampling draws it; returns the object's URI."""
    if not config or not config.get("EnableCapture", True):
        return None
    if random.uniform(0, 100) >= float(config.get("InitialSamplingPercentage", 100)):
        return None
    now = now or datetime.now(UTC)
    modes = [option["CaptureMode"] for option in config.get("CaptureOptions", [])]
    modes = ["Input", "Output"] if "InputAndOutput" in modes else modes
    record = capture_record(*call, modes=modes, now=now)
    bucket, _, prefix = config["DestinationS3Uri"].removeprefix("s3://").partition("/")
    name = f"{now:%M-%S}-{now.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
    key = f"{prefix.rstrip('/')}/{endpoint}/{variant}/{now:%Y/%m/%d/%H}/{name}"
    s3.put_object(Bucket=bucket, Key=key.lstrip("/"), Body=(json.dumps(record) + "\n").encode())
    return f"s3://{bucket}/{key.lstrip('/')}"


# --- A monitoring execution -------------------------------------------------------------------------


def _get(s3: Any, uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def _captured_rows(s3: Any, destination: str, endpoint: str, since: datetime) -> list[list[str]]:
    """The captured requests since `since`: the output's columns first, then the input's (the
    analyzer's output_columns_position START), one row per CSV line."""
    bucket, _, prefix = destination.removeprefix("s3://").partition("/")
    rows: list[list[str]] = []
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix.rstrip('/')}/{endpoint}/")
    for page in pages:
        for entry in page.get("Contents", []):
            if entry["LastModified"] < since:
                continue
            for line in _get(s3, f"s3://{bucket}/{entry['Key']}").decode().splitlines():
                record = json.loads(line)["captureData"]
                inputs = read_rows(record.get("endpointInput", {}).get("data", ""))
                outputs = read_rows(record.get("endpointOutput", {}).get("data", "")) or [[] for _ in inputs]
                rows += [out + row for out, row in zip(outputs, inputs, strict=False)]
    return rows


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


# --- What moto lacks: monitoring schedules, alarm evaluation, alarm events -------------------------


def _schedules(backend: Any) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = backend.__dict__.setdefault("_mlops_monitoring_schedules", {})
    return found


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

_COMPARE = {
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}
_STATS: dict[str, Callable[[list[float]], float]] = {
    "Maximum": max,
    "Minimum": min,
    "Sum": sum,
    "Average": lambda v: sum(v) / len(v),
    "SampleCount": lambda v: float(len(v)),
}


def _dimensions(dimensions: Any) -> dict[str, str]:
    return {
        (d["Name"] if isinstance(d, dict) else d.name): (d["Value"] if isinstance(d, dict) else d.value)
        for d in dimensions or []
    }


def _latest(backend: Any, namespace: str, name: str, dimensions: Any, period: int, stat: str) -> float | None:
    """The statistic of a metric over the latest `period` seconds of data it has (as an alarm with one
    evaluation period sees it), None without data."""
    wanted = _dimensions(dimensions)
    found = [
        datum
        for datum in backend.metric_data
        if datum.namespace == namespace and datum.name == name and _dimensions(datum.dimensions) == wanted
    ]
    if not found:
        return None
    end = max(datum.timestamp for datum in found)
    values = [float(datum.value) for datum in found if datum.timestamp > end - timedelta(seconds=period)]
    return float(_STATS[stat](values)) if values and stat in _STATS else None


def _alarm_value(backend: Any, alarm: Any) -> float | None:
    """An alarm's current value: its metric, or the maximum of its metrics (MAX(METRICS()), the one
    metric math expression the framework's alarms use)."""
    if not alarm.metric_data_queries:
        return _latest(backend, alarm.namespace, alarm.metric_name, alarm.dimensions, alarm.period, alarm.statistic)
    values = []
    for query in alarm.metric_data_queries:
        if query.metric_stat is None:
            if query.expression not in (None, "MAX(METRICS())"):
                return None  # not evaluated here: the alarm keeps its state
            continue
        stat, metric = query.metric_stat, query.metric_stat.metric
        value = _latest(backend, metric.namespace, metric.metric_name, metric.dimensions, int(stat.period), stat.stat)
        if value is not None:
            values.append(value)
    return max(values) if values else None


def _state_change_event(backend: Any, alarm: Any, previous: dict[str, Any]) -> dict[str, Any]:
    """The event CloudWatch sends EventBridge when an alarm changes state ("Alarm events and EventBridge")."""

    def stamp(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"

    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": backend.account_id,
        "time": datetime.now(UTC).timestamp(),  # moto's events carry epoch seconds until delivered
        "region": backend.region_name,
        "resources": [alarm.alarm_arn],
        "detail": {
            "alarmName": alarm.name,
            "state": {
                "value": alarm.state_value,
                "reason": alarm.state_reason,
                "reasonData": alarm.state_reason_data,
                "timestamp": stamp(alarm.state_updated_timestamp),
            },
            "previousState": previous,
            "configuration": {"description": alarm.description or ""},
        },
    }


def _send(backend: Any, event: dict[str, Any]) -> None:
    from .motoport import events_backends

    for bus in events_backends[backend.account_id][backend.region_name].event_buses.values():
        for rule in list(bus.rules.values()):
            rule.send_to_targets(cast(Any, event), transform_input=False)


def _notify(backend: Any, alarm: Any, previous: str) -> None:
    """Run the alarm's SNS actions for its new state, as CloudWatch does: it publishes as
    cloudwatch.amazonaws.com, so the topic's policy, and an encrypted topic's key policy, must let it
    (SNS developer guide, "Key management": AWS services and encrypted topics; an AWS managed key
    never does). A refused action is logged, as CloudWatch records "Failed to execute action" in the
    alarm's history; the state change itself stands."""
    from .motoport import sns_backends
    from .resource_policies import write_refusal

    if not alarm.actions_enabled:
        return
    actions = {
        "ALARM": alarm.alarm_actions,
        "OK": alarm.ok_actions,
        "INSUFFICIENT_DATA": alarm.insufficient_data_actions,
    }[alarm.state_value]
    message = {  # the fields of CloudWatch's alarm notification ("Using Amazon SNS topics")
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AWSAccountId": backend.account_id,
        "NewStateValue": alarm.state_value,
        "NewStateReason": alarm.state_reason,
        "StateChangeTime": alarm.state_updated_timestamp.isoformat(),
        "Region": backend.region_name,
        "AlarmArn": alarm.alarm_arn,
        "OldStateValue": previous,
    }
    # what CloudWatch's publish tells SNS: the alarm, and its account (the default topic policy's SourceOwner)
    account = backend.account_id
    context = {"aws:SourceArn": alarm.alarm_arn, "aws:SourceAccount": account, "aws:SourceOwner": account}
    for action in actions or []:
        if not str(action).startswith("arn:aws:sns:"):
            continue  # other actions (Auto Scaling, EC2, Lambda) are not run here
        refused = write_refusal("cloudwatch.amazonaws.com", action, context=context)
        if refused:
            print(
                f"CloudWatch alarm {alarm.name}: Failed to execute action {action}: {refused.message}", file=sys.stderr
            )
            continue
        _, _, _, region, owner, _ = action.split(":", 5)
        sns_backends[owner][region].publish(message=json.dumps(message), arn=action)


def _changed(backend: Any, alarm: Any, state: str, change: Callable[[], None]) -> None:
    """Put the alarm in `state` with `change`; when its state changed, send the event CloudWatch sends
    and run the alarm's actions for that state."""
    previous = {"value": alarm.state_value, "reason": alarm.state_reason, "reasonData": alarm.state_reason_data}
    change()
    if previous["value"] != state:
        _send(backend, _state_change_event(backend, alarm, previous))
        _notify(backend, alarm, previous["value"])


def evaluate(backend: Any) -> None:
    """Evaluate every metric alarm on the data it has; missing data keeps an alarm's state (the
    framework's drift alarm treats missing data as "ignore")."""
    for alarm in list(backend.alarms.values()):
        if alarm.rule is not None:  # composite alarms are not evaluated here
            continue
        value = _alarm_value(backend, alarm)
        if value is None or alarm.comparison_operator not in _COMPARE:
            continue
        breaching = _COMPARE[alarm.comparison_operator](value, float(alarm.threshold))
        state = "ALARM" if breaching else "OK"
        if state != alarm.state_value:
            relation = "greater than" if breaching else "not greater than"
            reason = f"Threshold Crossed: 1 datapoint [{value:.4f}] was {relation} the threshold ({alarm.threshold})."
            data = json.dumps({"version": "1.0", "recentDatapoints": [value]})
            _changed(backend, alarm, state, partial(alarm.update_state, reason, data, state))


def install() -> Callable[[], None]:
    """Add monitoring schedules to moto's SageMaker, alarm evaluation to its CloudWatch, and the
    alarm state change events; returns what undoes it."""
    from .motoport import CloudWatchBackend, SageMakerResponse

    put_metric_data, set_alarm_state = CloudWatchBackend.put_metric_data, CloudWatchBackend.set_alarm_state
    put_metric_alarm = CloudWatchBackend.put_metric_alarm

    def put_keeping_state(backend: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        # CloudWatch API reference, PutMetricAlarm: a new alarm starts INSUFFICIENT_DATA (moto: OK), and
        # "when you update an existing alarm, its state is left unchanged" (moto starts it afresh).
        existing = backend.alarms.get(name)
        alarm = put_metric_alarm(backend, name, *args, **kwargs)
        if existing is None:
            alarm.state_value, alarm.state_reason = "INSUFFICIENT_DATA", "Unchecked: Initial alarm creation"
        else:
            for field in ("state_value", "state_reason", "state_reason_data", "state_updated_timestamp", "history"):
                setattr(alarm, field, getattr(existing, field))
        return alarm

    def put_and_evaluate(backend: Any, namespace: str, metric_data: list[dict[str, Any]]) -> None:
        put_metric_data(backend, namespace, metric_data)
        evaluate(backend)

    def set_and_announce(backend: Any, alarm_name: str, reason: str, reason_data: str, state_value: str) -> None:
        alarm = backend.alarms.get(alarm_name)
        change = partial(set_alarm_state, backend, alarm_name, reason, reason_data, state_value)
        if alarm is None:
            change()  # moto refuses it: ResourceNotFound
        else:
            _changed(backend, alarm, state_value, change)

    for name, method in _SCHEDULE_API.items():
        setattr(SageMakerResponse, name, method)
    CloudWatchBackend.put_metric_data = put_and_evaluate  # type: ignore[method-assign,assignment]
    CloudWatchBackend.set_alarm_state = set_and_announce  # type: ignore[method-assign,assignment]
    CloudWatchBackend.put_metric_alarm = put_keeping_state  # type: ignore[method-assign,assignment]

    def uninstall() -> None:
        for name in _SCHEDULE_API:
            delattr(SageMakerResponse, name)
        CloudWatchBackend.put_metric_data = put_metric_data  # type: ignore[method-assign]
        CloudWatchBackend.set_alarm_state = set_alarm_state  # type: ignore[method-assign]
        CloudWatchBackend.put_metric_alarm = put_metric_alarm  # type: ignore[method-assign]

    return uninstall
