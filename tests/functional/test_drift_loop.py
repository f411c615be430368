"""Monitoring in the local AWS: the stage's paths in the real state machine, and the loop from a drift
alarm through EventBridge and the router to one run per drift episode."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlops_sfn.core import monitoring
from mlops_sfn.core.plan import SAMPLE_TRIGGER, plan_execution
from mlops_sfn.core.settings import Settings
from mlops_sfn.local import REGION, monitor
from mlops_sfn.local.harness import LocalRuns
from tests.aws import BUCKET, LEDGER, Stack, deploy, eventbridge_may_send
from tests.conftest import edited, load_item

pytestmark = pytest.mark.functional

PIPELINE = "demo-dev-domain-cal-house-price"


# --- The stage ----------------------------------------------------------------------------------------


def test_the_stage_creates_updates_and_removes_the_schedule_and_alarm() -> None:
    item = load_item()
    with LocalRuns() as local:
        sagemaker = boto3.client("sagemaker", region_name=local.settings.region)
        cloudwatch = boto3.client("cloudwatch", region_name=local.settings.region)
        prefix = local.settings.sagemaker_name_prefix
        schedule, alarm = f"{prefix}{PIPELINE}", f"{prefix}drift-{PIPELINE}"

        first = local.run(item, answer="approve")
        assert first.status == "SUCCEEDED" and first.stages["monitoring"] == "succeeded"
        assert watched_states(first) == [
            "Monitoring on?",
            "Baseline",
            "Create job definition",
            "Find schedule",
            "Create schedule",
            "Put drift alarm",
            "Monitored",
        ]
        described = sagemaker.describe_monitoring_schedule(MonitoringScheduleName=schedule)
        created = described["MonitoringScheduleConfig"]["MonitoringJobDefinitionName"]
        watched = sagemaker.describe_data_quality_job_definition(JobDefinitionName=created)
        assert watched["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == "mlops-dev-cal-house-price"
        (metric_alarm,) = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"]
        assert metric_alarm["StateValue"] == "INSUFFICIENT_DATA"  # as AWS starts a new alarm
        serving = sagemaker.describe_endpoint(EndpointName="mlops-dev-cal-house-price")["EndpointConfigName"]
        config = sagemaker.describe_endpoint_config(EndpointConfigName=serving)
        assert config["DataCaptureConfig"]["EnableCapture"] is True

        second = local.run(item, answer="approve")
        assert watched_states(second)[3:6] == ["Find schedule", "Update schedule", "Delete replaced job definition"]
        now = sagemaker.describe_monitoring_schedule(MonitoringScheduleName=schedule)["MonitoringScheduleConfig"]
        assert now["MonitoringJobDefinitionName"] != created
        with pytest.raises(sagemaker.exceptions.ResourceNotFound):  # the replaced one is gone
            sagemaker.describe_data_quality_job_definition(JobDefinitionName=created)

        off = edited(item, {"stages.monitoring.run": False})
        third = local.run(off, answer="approve")
        assert third.status == "SUCCEEDED"
        assert watched_states(third) == [
            "Monitoring on?",
            "Find schedule to remove",
            "Delete schedule",
            "Remove drift alarm",
            "Monitoring removed",
        ]
        with pytest.raises(sagemaker.exceptions.ResourceNotFound):
            sagemaker.describe_monitoring_schedule(MonitoringScheduleName=schedule)
        assert cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"] == []
        assert third.stages["monitoring"] == "succeeded"

        again = local.run(off, answer="approve")  # nothing left to remove: not a failure
        assert again.status == "SUCCEEDED"
        assert watched_states(again) == [
            "Monitoring on?",
            "Find schedule to remove",
            "Remove drift alarm",
            "Monitoring removed",
        ]


def watched_states(report: Any) -> list[str]:
    """The monitoring stage's states, in the order the run entered them."""
    entered = report.states[report.states.index("Run monitoring?") + 1 :]
    return entered[: entered.index("Notify success?")]


def test_a_failing_baseline_job_fails_the_run_and_notifies() -> None:
    with LocalRuns() as local:
        report = local.run(load_item(), answer="approve", fail=["monitoring"])
    assert report.status == "FAILED" and report.error == "monitoring.States.TaskFailed"
    assert report.stages["deploy"] == "succeeded" and report.stages["monitoring"] == "failed"
    (failed,) = [note for note in report.notifications if note["subject"] == "Pipeline run failed"]
    assert failed["message"]["failed_stage"] == "monitoring"


def test_the_local_aws_refuses_what_sagemaker_refuses_for_schedules() -> None:
    """CreateMonitoringSchedule: ResourceInUse for a name in use; Describe/Update/Delete:
    ResourceNotFound for a missing schedule (SageMaker API reference). A permissive local AWS would
    hide a state machine that creates twice or updates what is not there."""
    with mock_aws():
        uninstall = monitor.install()
        try:
            sagemaker = boto3.client("sagemaker", region_name=REGION)
            config = {"MonitoringJobDefinitionName": "d", "MonitoringType": "DataQuality"}
            sagemaker.create_monitoring_schedule(MonitoringScheduleName="s", MonitoringScheduleConfig=config)
            with pytest.raises(sagemaker.exceptions.ResourceInUse):
                sagemaker.create_monitoring_schedule(MonitoringScheduleName="s", MonitoringScheduleConfig=config)
            for call in (
                lambda: sagemaker.describe_monitoring_schedule(MonitoringScheduleName="t"),
                lambda: sagemaker.update_monitoring_schedule(
                    MonitoringScheduleName="t", MonitoringScheduleConfig=config
                ),
                lambda: sagemaker.delete_monitoring_schedule(MonitoringScheduleName="t"),
            ):
                with pytest.raises(sagemaker.exceptions.ResourceNotFound):
                    call()
        finally:
            uninstall()


# --- The loop -----------------------------------------------------------------------------------------


class Loop:
    """The drift alarm a run created, the EventBridge rule the Terraform writes (an SQS queue stands
    in for the router function it targets), and the router."""

    def __init__(self, stack: Stack, item: dict[str, Any]) -> None:
        self.stack = stack
        session = boto3.session.Session(region_name=REGION)
        self.cloudwatch, events, self.sqs = (session.client(name) for name in ("cloudwatch", "events", "sqs"))
        self.queue = self.sqs.create_queue(QueueName="router-deliveries")["QueueUrl"]
        eventbridge_may_send(self.sqs, self.queue)
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        prefix = stack.environment["SAGEMAKER_NAME_PREFIX"]
        pattern = {  # modules/triggers: aws_cloudwatch_event_rule.drift
            "source": ["aws.cloudwatch"],
            "detail-type": ["CloudWatch Alarm State Change"],
            "detail": {
                "alarmName": [{"prefix": f"{prefix}{monitoring.DRIFT_ALARM_INFIX}"}],
                "state": {"value": ["ALARM"]},
            },
        }
        events.put_rule(Name="drift", EventPattern=json.dumps(pattern))
        events.put_targets(Rule="drift", Targets=[{"Id": "router", "Arn": arn}])
        planned = plan_execution(item, SAMPLE_TRIGGER, Settings.from_environment(stack.environment))
        self.alarm = planned["stages"]["monitoring"]["alarm"]
        self.cloudwatch.put_metric_alarm(**self.alarm)
        self.clock = datetime.now(UTC)

    def drift(self, value: float) -> list[dict[str, Any]]:
        """One monitoring execution's drift of a watched feature, an hour after the last; the events
        delivered to the router since."""
        self.clock += timedelta(hours=1)
        metric = self.alarm["Metrics"][0]["MetricStat"]["Metric"]
        self.cloudwatch.put_metric_data(
            Namespace=metric["Namespace"],
            MetricData=[
                {
                    "MetricName": metric["MetricName"],
                    "Dimensions": metric["Dimensions"],
                    "Timestamp": self.clock,
                    "Value": value,
                }
            ],
        )
        received = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages", [])
        for message in received:
            self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])
        return [json.loads(message["Body"]) for message in received]

    def state(self) -> str:
        (alarm,) = self.cloudwatch.describe_alarms(AlarmNames=[self.alarm["AlarmName"]])["MetricAlarms"]
        return str(alarm["StateValue"])


@pytest.fixture
def loop() -> Iterator[Loop]:
    with mock_aws():
        uninstall = monitor.install()
        try:
            yield Loop(deploy([load_item()]), load_item())
        finally:
            uninstall()


def test_one_drift_episode_starts_one_run_and_the_next_waits_for_the_cool_down(loop: Loop) -> None:
    router = loop.stack.router()
    assert loop.drift(0.05) == [] and loop.state() == "OK"  # no drift: no event reaches the router
    (event,) = loop.drift(0.62)
    assert loop.state() == "ALARM" and event["detail"]["previousState"]["value"] == "OK"

    # The monitoring execution's report, where the job definition writes it: the run carries its violations.
    reports = "monitoring/demo-dev-domain-cal-house-price/reports/mlops-dev-cal-house-price/mlops-dev-demo/2024"
    violation = {"feature_name": "_c1", "constraint_check_type": "baseline_drift_check", "description": "0.62"}
    for hour, found in (("05/01/13", []), ("05/01/14", [violation])):
        body = json.dumps({"violations": found}).encode()
        loop.stack.s3.put_object(Bucket=BUCKET, Key=f"{reports}/{hour}/constraint_violations.json", Body=body)

    # The data it retrains on: the latest completed upload under the item's prefix.
    time.sleep(1.1)  # S3 lists LastModified to the second
    latest = "input/demo-dev-domain-cal-house-price/2024-06-02/"
    loop.stack.s3.put_object(Bucket=BUCKET, Key=f"{latest}manifest.json", Body=b'{"files": []}')

    summary = router.handle(event, "req-1")
    assert summary["started"] == 1
    (execution,) = loop.stack.executions()
    started = loop.stack.execution_input(execution["name"])
    read = [entry["S3Input"]["S3Uri"] for entry in started["stages"]["preprocessing"]["request"]["ProcessingInputs"]]
    assert read == [f"s3://{BUCKET}/{latest}code/preprocessing.py", f"s3://{BUCKET}/{latest}data/"]
    assert started["trigger"]["violations"] == {
        "report": f"s3://{BUCKET}/{reports}/05/01/14/constraint_violations.json",
        "count": 1,
        "violations": [violation],
    }
    assert started["trigger"]["source"] == "monitoring" and started["trigger"]["alarm"] == loop.alarm["AlarmName"]
    assert "greater than the threshold" in started["trigger"]["reason"]
    assert started["run"]["training"] is True  # retrain: run
    assert router.handle(event, "req-2")["duplicates"] == 1  # EventBridge delivers at least once

    assert loop.drift(0.7) == []  # still drifting: the same episode, no new event
    assert loop.drift(0.01) == [] and loop.state() == "OK"
    (second,) = loop.drift(0.8)  # a new episode within the cool-down (PT6H)
    assert router.handle(second, "req-3")["skipped"] == 1
    assert len(loop.stack.executions()) == 1

    # Once the cool-down has passed, the next episode starts its own run.
    record = {"cache_key": {"S": monitoring.episode_key(PIPELINE)}}
    past = str(int(datetime.now(UTC).timestamp()) - 1)
    loop.stack.dynamodb.update_item(
        TableName=LEDGER,
        Key=record,
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": past}},
    )
    assert loop.drift(0.02) == []
    (third,) = loop.drift(0.9)
    assert router.handle(third, "req-4")["started"] == 1
    assert len(loop.stack.executions()) == 2


@pytest.mark.parametrize(("on_drift", "runs"), [("off", None), ("notify", [])])
def test_retrain_off_starts_nothing_and_notify_starts_a_run_of_no_stage(
    loop: Loop, on_drift: str, runs: list[str] | None
) -> None:
    loop.stack.put_item(edited(load_item(), {"stages.monitoring.retrain.on_drift": on_drift}))
    (event,) = loop.drift(0.62)
    summary = loop.stack.router().handle(event, "req-1")
    if runs is None:
        assert summary["skipped"] == 1 and loop.stack.executions() == []
        return
    (execution,) = loop.stack.executions()
    started = loop.stack.execution_input(execution["name"])
    assert [stage for stage, on in started["run"].items() if on] == runs
    assert started["trigger"]["violations"]["unread"].startswith("no constraint_violations.json under")


def test_an_alarm_that_is_not_a_drift_alarm_of_the_deployment_is_rejected(loop: Loop) -> None:
    from mlops_sfn.core.router import RejectedEvent

    (event,) = loop.drift(0.62)
    event["detail"]["alarmName"] = "mlops-dev-cal-house-price-5xx-errors"
    with pytest.raises(RejectedEvent, match="not a drift alarm"):
        loop.stack.router().handle(event, "req-1")


def test_a_drift_run_never_trains_on_an_upload_whose_files_are_not_those_its_manifest_lists(loop: Loop) -> None:
    """An upload the router refused (its manifest's ETags do not match the files) is newer than the last
    accepted one: the drift run retrains on the accepted one and the router logs the one passed over;
    with no upload that passes, the drift event is refused, kept in the dead-letter queue with why."""
    from mlops_sfn.core.router import RejectedEvent

    s3, router = loop.stack.s3, loop.stack.router()
    accepted, refused = (f"input/{PIPELINE}/2024-06-0{day}/" for day in (1, 2))
    time.sleep(1.1)  # after the deployment's own upload: S3 lists LastModified to the second
    etag = s3.put_object(Bucket=BUCKET, Key=f"{accepted}data/houses.csv", Body=b"6000 rows")["ETag"].strip('"')
    manifest = {"files": [{"key": "data/houses.csv", "etag": etag}]}
    s3.put_object(Bucket=BUCKET, Key=f"{accepted}manifest.json", Body=json.dumps(manifest).encode())
    time.sleep(1.1)  # S3 lists LastModified to the second
    s3.put_object(Bucket=BUCKET, Key=f"{refused}data/houses.csv", Body=b"100 rows")  # not what its manifest lists
    s3.put_object(Bucket=BUCKET, Key=f"{refused}manifest.json", Body=json.dumps(manifest).encode())

    (event,) = loop.drift(0.62)
    assert router.handle(event, "req-1")["started"] == 1
    (execution,) = loop.stack.executions()
    started = loop.stack.execution_input(execution["name"])
    read = [entry["S3Input"]["S3Uri"] for entry in started["stages"]["preprocessing"]["request"]["ProcessingInputs"]]
    assert read == [f"s3://{BUCKET}/{accepted}code/preprocessing.py", f"s3://{BUCKET}/{accepted}data/"]

    s3.put_object(Bucket=BUCKET, Key=f"{accepted}data/houses.csv", Body=b"changed since")  # now neither passes
    for entry in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"input/{PIPELINE}/")["Contents"]:  # nor the fixtures'
        if entry["Key"].endswith("manifest.json") and not entry["Key"].startswith((accepted, refused)):
            s3.delete_object(Bucket=BUCKET, Key=entry["Key"])
    loop.stack.dynamodb.delete_item(TableName=LEDGER, Key={"cache_key": {"S": monitoring.episode_key(PIPELINE)}})
    assert loop.drift(0.01) == []
    (again,) = loop.drift(0.9)
    with pytest.raises(RejectedEvent, match="passes its manifest's check") as raised:
        router.handle(again, "req-2")
    assert raised.value.rejections[0]["field"] == "trigger.complete_on.manifest"
    assert len(loop.stack.executions()) == 1
