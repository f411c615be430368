"""Data-quality monitoring of a deployed endpoint: what SageMaker Model Monitor is asked for, and the
names, metrics and files the loop from drift back to a run agrees on.

The formats are AWS's (SageMaker developer guide, Model Monitor): the captured traffic ("Data
capture"), the analyzer's statistics.json and constraints.json ("Schema for Statistics", "Schema for
Constraints") and constraint_violations.json ("Schema for Violations"), and the CloudWatch metrics a
monitoring execution publishes ("CloudWatch Metrics": feature_baseline_drift_<feature>). The local
AWS produces the same files and metrics (local/monitor.py).
"""

from __future__ import annotations

import json
from typing import Any

from . import contract, names

# The prebuilt analyzer (sagemaker-model-monitor-analyzer) lives in one AWS account per region
# (SageMaker developer guide, "Amazon SageMaker Model Monitor prebuilt container", and its Docker
# registry paths). SageMaker pulls it for the job: the SageMaker role needs no ECR access to it.
ANALYZER_REPOSITORY = "sagemaker-model-monitor-analyzer"
ANALYZER_REGISTRIES = {
    "us-east-1": "156813124566",
    "us-east-2": "777275614652",
    "us-west-1": "890145073186",
    "us-west-2": "159807026194",
    "ca-central-1": "536280801234",
    "eu-west-1": "468650794304",
    "eu-west-2": "749857270468",
    "eu-west-3": "680080141114",
    "eu-central-1": "048819808253",
    "eu-north-1": "895015795356",
    "ap-south-1": "126357580389",
    "ap-northeast-1": "574779866223",
    "ap-northeast-2": "709848358524",
    "ap-southeast-1": "245545462676",
    "ap-southeast-2": "563025443158",
    "ap-east-1": "001633400207",
    "sa-east-1": "539772159869",
    "me-south-1": "607024016150",
    "cn-north-1": "453000072557",
    "cn-northwest-1": "453252182341",
}

# Where the analyzer reads and writes inside its container (the built-in container's contract, as the
# SageMaker Python SDK's DefaultModelMonitor passes it), and the environment that selects baselining.
BASELINE_INPUT = "/opt/ml/processing/input/baseline_dataset_input"
ANALYZER_OUTPUT = "/opt/ml/processing/output"
ENDPOINT_INPUT = "/opt/ml/processing/input/endpoint"

# Metrics of a real-time endpoint's data-quality executions, with the Endpoint and MonitoringSchedule
# dimensions; the namespace is in the contract because the SageMaker role must be allowed to write it.
METRIC_NAMESPACE = contract.MONITORING_METRIC_NAMESPACE
DRIFT_METRIC = "feature_baseline_drift_{feature}"
MAX_FEATURES = 9  # PutMetricAlarm takes at most 10 metrics: one per feature, and their maximum

SCHEDULES = {"hourly": "cron(0 * ? * * *)", "daily": "cron(0 0 ? * * *)"}
DEFAULT_THRESHOLD = 0.1  # the analyzer's own default comparison_threshold
DEFAULT_COOL_DOWN = "PT24H"

# A drift alarm is named for its pipeline, so the router finds the pipeline from the event alone,
# and the EventBridge rule matches the alarms by their prefix.
DRIFT_ALARM_INFIX = contract.DRIFT_ALARM_INFIX


def analyzer_image(region: str) -> str | None:
    account = ANALYZER_REGISTRIES.get(region)
    if account is None:
        return None
    suffix = ".cn" if region.startswith("cn-") else ""
    return f"{account}.dkr.ecr.{region}.amazonaws.com{suffix}/{ANALYZER_REPOSITORY}"


def is_analyzer(account: str, repository: str) -> bool:
    return repository == ANALYZER_REPOSITORY and account in ANALYZER_REGISTRIES.values()


def on_drift(item: dict[str, Any]) -> str:
    """What a drift episode does for this item: "off", "notify" (a run of no stage) or "run" (retrain)."""
    return str(item.get("stages", {}).get("monitoring", {}).get("retrain", {}).get("on_drift", "notify"))


def drift_alarm_name(pipeline: str, name_prefix: str) -> str:
    return f"{name_prefix}{DRIFT_ALARM_INFIX}{pipeline}"


def pipeline_of_alarm(alarm: str, name_prefix: str) -> str | None:
    """The pipeline a drift alarm is named for, or None when the name is not one of ours."""
    start = f"{name_prefix}{DRIFT_ALARM_INFIX}"
    return alarm[len(start) :] if alarm.startswith(start) and len(alarm) > len(start) else None


def schedule_expression(schedule: str) -> str:
    return SCHEDULES.get(schedule, schedule)


def capture_folder(bucket: str, pipeline: str) -> str:
    return f"s3://{bucket}/monitoring/{pipeline}/capture"


def reports_folder(bucket: str, pipeline: str) -> str:
    return f"s3://{bucket}/monitoring/{pipeline}/reports"


def data_capture_config(block: dict[str, Any], bucket: str, pipeline: str) -> dict[str, Any]:
    """The endpoint config's DataCaptureConfig (SageMaker API reference, DataCaptureConfig)."""
    capture = block.get("data_capture", {})
    modes = capture.get("capture", ["input", "output"])
    return {
        "EnableCapture": True,
        "InitialSamplingPercentage": capture.get("sampling_percentage", 100),
        "DestinationS3Uri": capture_folder(bucket, pipeline),
        "CaptureOptions": [{"CaptureMode": mode.capitalize()} for mode in modes],
        # Without it SageMaker base64-encodes what it captures; the analyzer reads CSV.
        "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
    }


def baseline_environment(header: bool) -> dict[str, str]:
    """What tells the analyzer to compute a baseline from a CSV dataset."""
    return {
        "dataset_format": json.dumps({"csv": {"header": header, "output_columns_position": "START"}}),
        "dataset_source": BASELINE_INPUT,
        "output_path": ANALYZER_OUTPUT,
        "publish_cloudwatch_metrics": "Disabled",
    }


def analyzer_environment() -> dict[str, str]:
    """What makes a schedule's executions publish their metrics: the analyzer emits CloudWatch metrics
    only when publish_cloudwatch_metrics is Enabled in its Environment (Model Monitor, "CloudWatch
    Metrics for Bring Your Own Containers"; the SageMaker Python SDK always sets it). Without it the
    drift alarm never leaves INSUFFICIENT_DATA."""
    return {"publish_cloudwatch_metrics": "Enabled"}


def drift_alarm(pipeline: str, name_prefix: str, endpoint: str, schedule: str, block: dict[str, Any]) -> dict[str, Any]:
    """PutMetricAlarm: the largest drift of the watched features above the threshold. Missing data
    (no execution in a period) keeps the alarm's state, so one drift episode is one ALARM."""
    threshold = block.get("drift_threshold", DEFAULT_THRESHOLD)
    period = 86_400 if block.get("schedule") == "daily" else 3_600
    metrics: list[dict[str, Any]] = [
        {
            "Id": f"f{index}",
            "MetricStat": {
                "Metric": {
                    "Namespace": METRIC_NAMESPACE,
                    "MetricName": DRIFT_METRIC.format(feature=feature),
                    "Dimensions": [
                        {"Name": "Endpoint", "Value": endpoint},
                        {"Name": "MonitoringSchedule", "Value": schedule},
                    ],
                },
                "Period": period,
                "Stat": "Maximum",
            },
            "ReturnData": False,
        }
        for index, feature in enumerate(block["features"])
    ]
    largest = {"Id": "drift", "Expression": "MAX(METRICS())", "Label": "largest feature drift", "ReturnData": True}
    metrics.append(largest)
    return {
        "AlarmName": drift_alarm_name(pipeline, name_prefix),
        "AlarmDescription": f"mlops-sfn: data drift on endpoint {endpoint} above {threshold} "
        f"({', '.join(block['features'])}); retrain: {block.get('retrain', {}).get('on_drift', 'notify')}",
        "Metrics": metrics,
        "Threshold": threshold,
        "ComparisonOperator": "GreaterThanThreshold",
        "EvaluationPeriods": 1,
        "TreatMissingData": "ignore",
    }


def episode_key(pipeline: str) -> str:
    """The run ledger's record of a pipeline's last drift run (the cool-down)."""
    return f"drift#{pipeline}"


def job_definition_name(pipeline: str, execution: str, tag: str) -> str:
    """Named as the run's baseline job (another SageMaker resource type, so another namespace)."""
    return names.resource_name(pipeline, tag, execution)
