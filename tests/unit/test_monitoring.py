"""The monitoring stage: the item's block, what a run plans from it, the drift alarm's event, and the
analyzer's files in AWS's formats (SageMaker developer guide, Model Monitor)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from mlops_sfn.core import contract, monitoring
from mlops_sfn.core.item import check_item
from mlops_sfn.core.plan import SAMPLE_TRIGGER, plan_execution
from mlops_sfn.core.problems import InvalidItem
from mlops_sfn.core.settings import EXAMPLE_SETTINGS
from mlops_sfn.core.stages import STAGES
from mlops_sfn.core.triggers import InvalidEvent, Trigger, parse_event
from mlops_sfn.local import analyzer, capture, monitor
from tests.conftest import DELETE, edited, load_event, load_item


def problems(item: dict[str, Any]) -> dict[str, str]:
    return {problem.path: problem.message for problem in check_item(item)}


def planned(item: dict[str, Any], trigger: Trigger = SAMPLE_TRIGGER, **settings: str) -> dict[str, Any]:
    from dataclasses import replace

    return plan_execution(item, trigger, replace(EXAMPLE_SETTINGS, **settings))


# --- The item ----------------------------------------------------------------------------------------


def test_monitoring_needs_a_deploy_stage_and_a_baseline() -> None:
    without_deploy = edited(load_item(), {"stages.deploy": DELETE, "stages.batch_transform.run": True})
    assert "needs the deploy stage" in problems(without_deploy)["stages.monitoring"]
    untrained = edited(load_item(), {"stages.training": DELETE, "stages.tuning": DELETE, "quality_gate": DELETE})
    untrained = edited(untrained, {"stages.create_model.model_data_url": "s3://b/m", "stages.evaluation.run": False})
    untrained = edited(untrained, {"stages.register.run": False, "stages.approval.run": False})
    assert "is required when the run trains" in problems(untrained)["stages.monitoring.baseline.dataset"]
    named = edited(untrained, {"stages.monitoring.baseline.dataset": "s3://{bucket}/baseline/"})
    assert "stages.monitoring.baseline.dataset" not in problems(named)


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"stages.monitoring.features": [f"f{i}" for i in range(10)]}, "stages.monitoring.features"),
        ({"stages.monitoring.features": []}, "stages.monitoring.features"),
        ({"stages.monitoring.schedule": "every hour"}, "stages.monitoring.schedule"),
        ({"stages.monitoring.drift_threshold": 0}, "stages.monitoring.drift_threshold"),
        ({"stages.monitoring.retrain.on_drift": "retrain"}, "stages.monitoring.retrain.on_drift"),
        ({"stages.monitoring.retrain.cool_down": "6 hours"}, "stages.monitoring.retrain.cool_down"),
        (
            {"stages.monitoring.data_capture.sampling_percentage": 0},
            "stages.monitoring.data_capture.sampling_percentage",
        ),
    ],
)
def test_the_schema_refuses_what_monitoring_cannot_use(change: dict[str, Any], path: str) -> None:
    assert path in problems(edited(load_item(), change))


# --- The plan ----------------------------------------------------------------------------------------


def test_a_monitored_deploy_captures_and_plans_the_schedule_and_alarm() -> None:
    execution_input = planned(load_item())
    deploy, watch = execution_input["stages"]["deploy"], execution_input["stages"]["monitoring"]
    capture = deploy["endpoint_config_request"]["DataCaptureConfig"]
    assert capture["DestinationS3Uri"] == "s3://example-mlops-bucket/monitoring/demo-dev-domain-cal-house-price/capture"
    assert capture["CaptureOptions"] == [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]
    # The baseline is the data the run trains on, read as the analyzer's baseline job reads it.
    (dataset,) = watch["request"]["ProcessingInputs"]
    train = execution_input["stages"]["training"]["request"]["InputDataConfig"][0]["DataSource"]["S3DataSource"]
    assert dataset["S3Input"]["S3Uri"] == train["S3Uri"]
    assert json.loads(watch["request"]["Environment"]["dataset_format"]) == {
        "csv": {"header": False, "output_columns_position": "START"}
    }
    assert watch["request"]["AppSpecification"]["ImageUri"] == monitoring.analyzer_image(EXAMPLE_SETTINGS.region)
    baseline = watch["request"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    definition = watch["job_definition_request"]
    assert definition["DataQualityBaselineConfig"]["StatisticsResource"]["S3Uri"] == f"{baseline}/statistics.json"
    assert definition["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == deploy["endpoint_name"]
    config = watch["schedule_request"]["MonitoringScheduleConfig"]
    assert config["MonitoringJobDefinitionName"] == definition["JobDefinitionName"]
    assert config["ScheduleConfig"]["ScheduleExpression"] == "cron(0 * ? * * *)"
    alarm = watch["alarm"]
    assert alarm["AlarmName"] == "mlops-dev-drift-demo-dev-domain-cal-house-price"
    watched = [m["MetricStat"]["Metric"]["MetricName"] for m in alarm["Metrics"] if "MetricStat" in m]
    assert watched == [f"feature_baseline_drift_{f}" for f in load_item()["stages"]["monitoring"]["features"]]
    assert alarm["Threshold"] == 0.3 and alarm["TreatMissingData"] == "ignore"
    # The schedule's executions publish what the alarm watches: the analyzer emits metrics only when
    # its Environment asks ("CloudWatch Metrics for Bring Your Own Containers"); the baseline job not.
    assert definition["DataQualityAppSpecification"]["Environment"] == {"publish_cloudwatch_metrics": "Enabled"}
    assert watch["request"]["Environment"]["publish_cloudwatch_metrics"] == "Disabled"
    assert {m["MetricStat"]["Metric"]["Namespace"] for m in alarm["Metrics"] if "MetricStat" in m} == {
        contract.MONITORING_METRIC_NAMESPACE
    }


def test_a_deploy_without_monitoring_removes_it_and_a_run_without_deploy_leaves_it() -> None:
    off = planned(edited(load_item(), {"stages.monitoring.run": False}))
    assert off["run"]["monitoring"] is True
    assert off["stages"]["monitoring"] == {
        "remove": True,
        "schedule_name": "mlops-dev-demo-dev-domain-cal-house-price",
        "alarm_name": "mlops-dev-drift-demo-dev-domain-cal-house-price",
    }
    assert "DataCaptureConfig" not in off["stages"]["deploy"]["endpoint_config_request"]
    undeployed = planned(edited(load_item(), {"stages.deploy.run": False, "stages.batch_transform.run": True}))
    assert undeployed["run"]["monitoring"] is False and "monitoring" not in undeployed["stages"]


def test_a_region_without_a_known_analyzer_needs_the_image() -> None:
    images = "arn:aws:ecr:eu-south-2:683313688378:repository/*"  # the demo's images, in that region
    item = json.loads(json.dumps(load_item()).replace("us-east-1", "eu-south-2"))
    default = EXAMPLE_SETTINGS.default_image_uri.replace("us-east-1", "eu-south-2")
    with pytest.raises(InvalidItem) as refused:
        planned(item, region="eu-south-2", image_repository_arns=images, default_image_uri=default)
    assert [problem.path for problem in refused.value.problems] == ["stages.monitoring.image"]
    image = "123456789012.dkr.ecr.eu-south-2.amazonaws.com/sagemaker-model-monitor-analyzer"
    mine = f"{images},arn:aws:ecr:eu-south-2:123456789012:repository/*"
    found = planned(
        edited(item, {"stages.monitoring.image": image}),
        region="eu-south-2",
        image_repository_arns=mine,
        default_image_uri=default,
    )
    assert found["stages"]["monitoring"]["request"]["AppSpecification"]["ImageUri"] == image


# --- The drift alarm's event -------------------------------------------------------------------------


def test_a_drift_alarm_event_is_a_monitoring_trigger_named_per_episode() -> None:
    event = load_event("cloudwatch_alarm_state_change")
    (trigger,) = parse_event(event)
    assert trigger.source == "monitoring" and trigger.alarm == event["detail"]["alarmName"]
    assert trigger.time == event["detail"]["state"]["timestamp"] and trigger.day() == "2024-06-03"
    assert "greater than the threshold" in (trigger.reason or "")
    redelivered = json.loads(json.dumps(event))
    redelivered["id"] = "another-delivery"
    assert parse_event(redelivered)[0].identity() == trigger.identity()
    later = json.loads(json.dumps(event))
    later["detail"]["state"]["timestamp"] = "2024-06-04T09:00:42.001+0000"
    assert parse_event(later)[0].identity() != trigger.identity()
    assert monitoring.pipeline_of_alarm(trigger.alarm or "", "mlops-dev-") == "demo-dev-domain-cal-house-price"


def test_a_drift_runs_trigger_as_the_router_records_it_is_read_back_for_a_rerun() -> None:
    (trigger,) = parse_event(load_event("cloudwatch_alarm_state_change"))
    recorded = planned(load_item(), trigger)["trigger"] | {"violations": {"count": 0, "violations": []}}
    assert Trigger.from_dict(recorded) == trigger


def test_only_a_change_to_alarm_is_a_trigger() -> None:
    event = load_event("cloudwatch_alarm_state_change")
    event["detail"]["state"]["value"] = "OK"
    with pytest.raises(InvalidEvent, match=r"detail\.state\.value"):
        parse_event(event)


def test_a_notify_only_episode_runs_no_stage() -> None:
    (trigger,) = parse_event(load_event("cloudwatch_alarm_state_change"))
    item = edited(load_item(), {"stages.monitoring.retrain.on_drift": "notify"})
    execution_input = planned(item, trigger)
    assert not any(execution_input["run"].values()) and execution_input["stages"] == {}
    assert execution_input["trigger"]["alarm"] == trigger.alarm
    retrained = planned(load_item(), trigger)
    assert [stage for stage in STAGES if retrained["run"][stage]] == [stage for stage in STAGES if stage != "tuning"]


# --- The analyzer's files ----------------------------------------------------------------------------


def rows(count: int, scale: float = 1.0) -> list[list[str]]:
    return [[f"{i % 7}", f"{(i % 50) * scale:.2f}", "a" if i % 2 else "b"] for i in range(count)]


def test_baseline_files_have_the_documented_shape() -> None:
    stats = analyzer.statistics(rows(200), ["label", "income", "kind"])
    assert stats["version"] == 0 and stats["dataset"] == {"item_count": 200}
    label, income, kind = stats["features"]
    assert (label["inferred_type"], income["inferred_type"], kind["inferred_type"]) == (
        "Integral",
        "Fractional",
        "String",
    )
    numbers = income["numerical_statistics"]
    assert numbers["common"] == {"num_present": 200, "num_missing": 0}
    assert {"mean", "sum", "std_dev", "min", "max"} <= set(numbers)
    assert sum(bucket["count"] for bucket in numbers["distribution"]["kll"]["buckets"]) == 200
    assert kind["string_statistics"]["distinct_count"] == 2
    rules = analyzer.constraints(stats)
    assert [rule["name"] for rule in rules["features"]] == ["label", "income", "kind"]
    assert rules["monitoring_config"]["distribution_constraints"]["comparison_method"] == "Robust"


def test_drifted_data_violates_the_baseline_and_the_same_data_does_not() -> None:
    names = ["label", "income", "kind"]
    baseline = analyzer.statistics(rows(200), names)
    rules = analyzer.constraints(baseline)
    same, drift = analyzer.compare(baseline, rules, analyzer.statistics(rows(120), names))
    assert same == [] and drift["income"] < 0.1
    violations, drift = analyzer.compare(baseline, rules, analyzer.statistics(rows(120, scale=3.0), names))
    assert drift["income"] > 0.5
    assert [(v["feature_name"], v["constraint_check_type"]) for v in violations] == [("income", "baseline_drift_check")]
    narrow = [row[:2] for row in rows(50)]
    missing, _ = analyzer.compare(baseline, rules, analyzer.statistics(narrow, None))
    assert missing[0]["constraint_check_type"] == "missing_column_check"
    typed = [[row[0], "n/a", row[2]] for row in rows(50)]
    wrong, _ = analyzer.compare(baseline, rules, analyzer.statistics(typed, names))
    assert [(v["feature_name"], v["constraint_check_type"]) for v in wrong] == [("income", "data_type_check")]


def test_a_captured_invocation_has_sagemakers_capture_format() -> None:
    now = datetime(2024, 6, 3, 13, 5, 7, tzinfo=UTC)
    record = capture.capture_record("1,2\n3,4\n", "text/csv", "0.5\n0.7\n", "text/csv", ["Input", "Output"], now)
    assert record["captureData"]["endpointInput"] == {
        "observedContentType": "text/csv",
        "mode": "INPUT",
        "data": "1,2\n3,4\n",
        "encoding": "CSV",
    }
    assert record["captureData"]["endpointOutput"]["mode"] == "OUTPUT"
    assert record["eventMetadata"]["inferenceTime"] == "2024-06-03T13:05:07Z" and record["eventVersion"] == "0"
    only_input = capture.capture_record("1,2", "text/csv", "0.5", "text/csv", ["Input"], now)
    assert set(only_input["captureData"]) == {"endpointInput"}


@pytest.mark.parametrize(
    ("environment", "emit_metrics", "published"),
    [
        ({"publish_cloudwatch_metrics": "Enabled"}, "Enabled", True),
        ({}, "Enabled", False),  # the job definitions made before the fix: the alarm never fired on AWS
        ({"publish_cloudwatch_metrics": "Disabled"}, "Enabled", False),
        ({"publish_cloudwatch_metrics": "Enabled"}, "Disabled", False),
    ],
)
def test_the_local_analyzer_publishes_metrics_only_when_its_job_definition_asks(
    environment: dict[str, str], emit_metrics: str, published: bool
) -> None:
    definition = {"DataQualityAppSpecification": {"ImageUri": "analyzer", "Environment": environment}}
    rules = {"monitoring_config": {"emit_metrics": emit_metrics}}
    assert monitor.publishes(definition, rules) is published
