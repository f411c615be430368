"""`mlops-sfn smoke`: prove a deployment end to end with one run of the demo pipeline, then remove it.

The run is a copy of the repository's demo item (not the table's, which an operator may have edited)
under names of its own (`smoke-<8 hex>`: its pipeline, upload
prefix, endpoint and model package group), so it neither touches nor is confused with a real
pipeline: the item is pushed to the table, the demo's scripts and data are uploaded under its
prefix with their manifest last (the upload starts the run, through the router, as any upload
does), the run is followed to its end with its approval answered, and then what it made is
checked: the run SUCCEEDED, its model package is Approved, its endpoint is InService, and the
success notification reached the topic. Everything it created is removed afterwards (unless
`keep`), whatever the outcome: the item, the upload and run folders, the endpoint, its configs
and alarms, the model, the package and its group, and the queue that read the notifications.
SageMaker keeps job records for ever (there is no delete for them); their names say `smoke-`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from ..core import names, uploads
from ..core.problems import Error
from ..core.triggers import Upload
from . import approval, items, runs

PIPELINE = "demo-dev-domain-cal-house-price"  # the item the smoke run copies (dynamodb_items/), with its scripts
START_SECONDS = 120  # from the manifest's upload to the run's start: beyond, the router did not start it


class SmokeError(Error):
    """The smoke run could not be set up (no demo item, nothing to upload); nothing was left behind."""


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class SmokeResult:
    pipeline: str
    execution: str | None = None
    status: str = "NOT STARTED"
    failed_stage: str | None = None
    checks: list[Check] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)  # what could not be removed, with why

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)


def smoke_item(demo: dict[str, Any], suffix: str, input_prefix: str, name_prefix: str) -> dict[str, Any]:
    """The demo item under the smoke run's own names; no schedule, no monitoring (nothing outlives it)."""
    item = copy.deepcopy(demo)
    pipeline = f"smoke-{suffix}"
    item["consumption_pipeline_name"] = pipeline
    item["description"] = f"mlops-sfn smoke: a copy of {demo['consumption_pipeline_name']}, removed after its run"
    item["enabled"] = True
    item["trigger"] = {"prefix": f"{input_prefix}{pipeline}/", "complete_on": {"manifest": "manifest.json"}}
    item["notifications"] = {"on": ["failure", "success"]}
    stages = item["stages"]
    stages["register"]["model_package_group"] = f"{name_prefix}{pipeline}"
    stages["deploy"]["endpoint_name"] = f"{name_prefix}{pipeline}"
    stages.setdefault("monitoring", {})["run"] = False
    for stage in stages.values():
        if isinstance(stage, dict):
            stage.pop("cache", None)
    return item


class Smoke:
    def __init__(self, target: Any, say: Callable[[str], None] = print) -> None:
        self.target, self.say = target, say
        self.outputs = target.outputs
        self.s3, self.sfn = target.client("s3"), target.client("stepfunctions")
        self.sqs, self.sns = target.client("sqs"), target.client("sns")
        self.dynamodb, self.sagemaker = target.client("dynamodb"), target.client("sagemaker")
        self.cloudwatch = target.client("cloudwatch")

    def run(self, demo: dict[str, Any], artifacts: Path, timeout: float, keep: bool = False) -> SmokeResult:
        """`demo`: the item the run copies (the repository's demo item, as its scripts expect it)."""
        table, bucket = self.outputs["table_name"], self.outputs["bucket_name"]
        files = sorted(path for path in artifacts.rglob("*") if path.is_file())
        if not files:
            raise SmokeError(f"{artifacts}: no scripts or data to upload (the demo pipeline's: sagemaker-artifacts/)")
        suffix = uuid.uuid4().hex[:8]
        item = smoke_item(
            demo,
            suffix,
            str(self.outputs.get("input_prefix") or "input/"),
            str(self.outputs["sagemaker_name_prefix"]),
        )
        result = SmokeResult(pipeline=item["consumption_pipeline_name"])
        queue: str | None = None
        execution_input: dict[str, Any] = {}
        try:
            items.push(self.dynamodb, table, [item], items.revision(self.dynamodb, table))
            self.say(f"pushed item {result.pipeline} (a copy of {demo['consumption_pipeline_name']})")
            queue = self._inbox(result.pipeline)
            done = uploads.put(self.s3, bucket, item["trigger"]["prefix"], artifacts)
            self.say(f"uploaded {done.files} files to s3://{bucket}/{item['trigger']['prefix']}, then manifest.json")
            trigger = Upload(bucket=bucket, key=done.manifest, etag=done.etag)
            name = names.execution_name(result.pipeline, trigger.identity())
            arn = names.execution_arn(self.outputs["state_machine_arn"], name)
            result.execution = name
            if not self._started(arn):
                result.checks.append(
                    Check(
                        "run started",
                        False,
                        f"no execution {name} {START_SECONDS} s after the upload: see the router's dead-letter queue"
                        f" ({self.outputs.get('dead_letter_queue_url')}) and its log",
                    )
                )
                return result
            execution_input = json.loads(self.sfn.describe_execution(executionArn=arn)["input"])
            described, events = runs.follow(
                self.sfn, arn, self.say, time.monotonic() + timeout, self._approver(), poll_seconds=2.0
            )
            result.status = described["status"]
            stages = runs.stage_runs(events, execution_input, runs.definition(self.sfn, arn))
            result.failed_stage = next((stage for stage, run in stages.items() if run.status == "failed"), None)
            outputs = runs.results(json.loads(described.get("output") or "{}")) or runs.results_so_far(events)
            result.checks = self._checks(described, outputs, item, queue)
        except (runs.RunError, KeyboardInterrupt) as error:  # past the timeout, or Ctrl-C: the run stops first
            if result.execution:
                arn = names.execution_arn(self.outputs["state_machine_arn"], result.execution)
                with contextlib.suppress(self.sfn.exceptions.ClientError):  # it ended meanwhile
                    self.sfn.stop_execution(executionArn=arn, error="SmokeStopped", cause="mlops-sfn smoke stopped")
            result.checks.append(Check("run finished", False, str(error) or "interrupted"))
            if isinstance(error, KeyboardInterrupt):
                raise
        finally:
            if keep:
                self.say(f"kept what {result.pipeline} made (--keep)")
            else:
                self._remove(result, item, execution_input, queue)
        return result

    # --- set-up --------------------------------------------------------------------------------

    def _inbox(self, pipeline: str) -> str:
        """A queue subscribed to the notification topic (what the team's email receives), which SNS
        may write to: its policy allows the topic alone."""
        topic = self.outputs["notification_topic_arn"]
        url: str = self.sqs.create_queue(QueueName=f"mlops-sfn-{pipeline}-notifications")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        statement = {
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
        }
        policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
        self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
        self.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        return url

    def _started(self, arn: str) -> bool:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            try:
                self.sfn.describe_execution(executionArn=arn)
                return True
            except self.sfn.exceptions.ExecutionDoesNotExist:
                time.sleep(1.0)
        return False

    def _approver(self) -> Callable[[dict[str, Any], list[dict[str, Any]]], None]:
        answered: set[str] = set()

        def answer(described: dict[str, Any], events: list[dict[str, Any]]) -> None:
            token = approval.requested_token(events)
            if described["status"] == "RUNNING" and token and token not in answered:
                approval.answer(self.sfn, token, approved=True, comment="approved by mlops-sfn smoke")
                answered.add(token)
                self.say("  approval requested: approved (mlops-sfn smoke)")

        return answer

    # --- what the run made ---------------------------------------------------------------------

    def _checks(
        self, described: dict[str, Any], outputs: dict[str, Any], item: dict[str, Any], queue: str | None
    ) -> list[Check]:
        checks = [Check("run succeeded", described["status"] == "SUCCEEDED", str(described["status"]))]
        package = (outputs.get("register") or {}).get("model_package_arn")
        if package:
            status = self.sagemaker.describe_model_package(ModelPackageName=package)["ModelApprovalStatus"]
            checks.append(Check("model package approved", status == "Approved", f"{package}: {status}"))
        else:
            checks.append(Check("model package approved", False, "the run registered no model package"))
        endpoint = item["stages"]["deploy"]["endpoint_name"]
        try:
            status = self.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"]
        except self.sagemaker.exceptions.ClientError as error:
            status = error.response.get("Error", {}).get("Code", "missing")
        checks.append(Check("endpoint in service", status == "InService", f"{endpoint}: {status}"))
        subjects = self._notifications(queue) if queue else []
        checks.append(
            Check(
                "success notification",
                "Pipeline run succeeded" in subjects,
                f"received: {', '.join(subjects) or 'nothing'}",
            )
        )
        return checks

    def _notifications(self, queue: str, wait_seconds: float = 20.0) -> list[str]:
        subjects: list[str] = []
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline and "Pipeline run succeeded" not in subjects:
            answer = self.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in answer.get("Messages", []):
                subjects.append(str(json.loads(message["Body"]).get("Subject")))
                self.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            if "Pipeline run failed" in subjects:
                break
        return subjects

    # --- removal -------------------------------------------------------------------------------

    def _remove(
        self, result: SmokeResult, item: dict[str, Any], execution_input: dict[str, Any], queue: str | None
    ) -> None:
        """Everything the smoke run made, each step on its own: one that fails is reported, not fatal."""
        pipeline, bucket, table = result.pipeline, self.outputs["bucket_name"], self.outputs["table_name"]
        endpoint = item["stages"]["deploy"]["endpoint_name"]
        group = item["stages"]["register"]["model_package_group"]
        deploy = execution_input.get("stages", {}).get("deploy", {})
        alarms = [alarm["AlarmName"] for alarm in deploy.get("alarms", {}).values()]
        sagemaker = self.sagemaker
        steps: list[tuple[str, Callable[[], Any]]] = [
            (f"item {pipeline}", partial(self._delete_item, table, pipeline)),
            *[
                (f"s3://{bucket}/{prefix}", partial(self._empty, bucket, prefix))
                for prefix in (
                    item["trigger"]["prefix"],
                    f"runs/{pipeline}/",
                )
            ],
        ]
        configs = self._endpoint_configs(endpoint)
        steps.append((f"endpoint {endpoint}", partial(self._delete_endpoint, endpoint)))
        steps += [
            (f"endpoint config {c}", partial(sagemaker.delete_endpoint_config, EndpointConfigName=c)) for c in configs
        ]
        if alarms:
            steps.append((f"alarms {', '.join(alarms)}", partial(self.cloudwatch.delete_alarms, AlarmNames=alarms)))
        steps += [(f"model {m}", partial(sagemaker.delete_model, ModelName=m)) for m in self._models(pipeline)]
        steps += [
            (f"model package {p}", partial(sagemaker.delete_model_package, ModelPackageName=p))
            for p in self._packages(group)
        ]
        if self._group_exists(group):  # a run that failed before register made none
            steps.append(
                (
                    f"model package group {group}",
                    partial(sagemaker.delete_model_package_group, ModelPackageGroupName=group),
                )
            )
        if queue:
            steps.append(("notification queue", partial(self._unsubscribe, queue)))
        for what, action in steps:
            try:
                action()
                result.removed.append(what)
            except Exception as error:  # removal goes on: what is left is said
                code = getattr(error, "response", {}).get("Error", {}).get("Code", type(error).__name__)
                result.left.append(f"{what} ({code})")

    def _delete_item(self, table: str, pipeline: str) -> None:
        delete = {"Delete": {"TableName": table, "Key": {"consumption_pipeline_name": {"S": pipeline}}}}
        items.write(self.dynamodb, table, items.revision(self.dynamodb, table), [delete])

    def _empty(self, bucket: str, prefix: str) -> None:
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys = [{"Key": entry["Key"]} for entry in page.get("Contents", [])]
            if keys:
                self.s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})

    def _endpoint_configs(self, endpoint: str) -> list[str]:
        listed = self.sagemaker.list_endpoint_configs(NameContains=endpoint, MaxResults=100)["EndpointConfigs"]
        return [config["EndpointConfigName"] for config in listed if config["EndpointConfigName"].startswith(endpoint)]

    def _delete_endpoint(self, endpoint: str) -> None:
        try:
            self.sagemaker.delete_endpoint(EndpointName=endpoint)
        except self.sagemaker.exceptions.ClientError as error:
            if "Could not find endpoint" not in str(error):
                raise

    def _models(self, pipeline: str) -> list[str]:
        listed = self.sagemaker.list_models(NameContains=pipeline, MaxResults=100)["Models"]
        return [model["ModelName"] for model in listed if model["ModelName"].startswith(f"{pipeline}-")]

    def _packages(self, group: str) -> list[str]:
        try:
            listed = self.sagemaker.list_model_packages(ModelPackageGroupName=group, MaxResults=100)
        except self.sagemaker.exceptions.ClientError:
            return []
        return [package["ModelPackageArn"] for package in listed["ModelPackageSummaryList"]]

    def _group_exists(self, group: str) -> bool:
        try:
            self.sagemaker.describe_model_package_group(ModelPackageGroupName=group)
        except self.sagemaker.exceptions.ClientError:
            return False
        return True

    def _unsubscribe(self, queue: str) -> None:
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        topic = self.outputs["notification_topic_arn"]
        for subscription in self.sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]:
            if subscription["Endpoint"] == queue_arn:
                self.sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
        self.sqs.delete_queue(QueueUrl=queue)


def report(result: SmokeResult) -> list[str]:
    lines = [f"smoke run {result.pipeline}: {result.execution or '(no execution)'} {result.status}"]
    if result.failed_stage:
        lines.append(f"  failed stage: {result.failed_stage} (mlops-sfn status {result.execution})")
    lines += [f"  {'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}" for check in result.checks]
    if result.removed:
        shown = ", ".join(result.removed[:3]) + (", ..." if len(result.removed) > 3 else "")
        lines.append(f"  removed: {len(result.removed)} ({shown})")
    lines += [f"  left: {what}" for what in result.left]
    lines.append("smoke: passed" if result.ok else "smoke: FAILED")
    return lines
