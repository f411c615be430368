"""`mlops-sfn local demo`: a user's upload to the local deployment, followed to the end of its run.

The demo does what a user and an approver do, through the local AWS's APIs only:
1. uploads `sagemaker-artifacts/<pipeline>/` under the item's trigger prefix, then the manifest its
   `complete_on` names (a list of the files and their ETags: the same files give the same manifest,
   so uploading them again starts nothing new);
2. waits for the execution the router starts (the name is the router's, from the manifest's ETag);
3. prints every Task state as it ends, with its stage and duration; when the run asks for
   approval, reads the request from the approval topic (an SQS inbox stands in for the approvers'
   email) and answers it as `mlops-sfn approve <execution>` does;
4. reports the status, each stage, the metrics, the gate, the model package, the endpoint and its
   smoke test, where the outputs are, and writes the executed graph as Mermaid.

With `--drift`, after that run it closes the monitoring loop (`Demo.drift`): sends the endpoint
traffic whose features have drifted from the training data, runs the endpoint's monitoring schedule
once (as SageMaker would at the top of the hour), shows the violations and the drift alarm going to
ALARM, and follows the run the alarm starts through the router to its end.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from ..checkout import ROOT
from ..core import dynamodb_json, fanout, monitoring, names, uploads
from ..core.problems import Error
from ..core.sagemaker_api import failure_reason
from ..core.stages import CHECKPOINTS
from ..core.triggers import Upload
from ..operate import approval, preview, runs
from . import inbox
from . import monitor as local_monitor
from .deployment import Deployment

PIPELINE = "demo-dev-domain-cal-house-price"
ARTIFACTS = ROOT / "sagemaker-artifacts"
INBOXES = ("approvals", "notifications")


class DemoError(Error):
    """The demo cannot go on; the message says why and where to look."""


@dataclass
class DemoResult:
    pipeline: str
    execution_name: str
    execution_arn: str
    new_run: bool  # False: the upload was the same as an earlier one, whose run this reports
    status: str
    seconds: float
    stages: dict[str, runs.StageRun]
    execution_input: dict[str, Any]
    output: dict[str, Any]
    error: str | None = None
    cause: str | None = None
    notifications: list[dict[str, Any]] = field(default_factory=list)
    graph: Path | None = None


@dataclass
class DriftResult:
    seconds: dict[str, float]  # traffic, monitoring, retraining
    requests: int
    execution: dict[str, Any]  # the monitoring execution: status, folder, violations, drift
    alarm: dict[str, Any]  # AlarmName, StateValue, StateReason
    run: DemoResult | None  # the run the alarm started


# The drift the demo's traffic carries: median incomes three times as high, houses 20 years older.
DRIFT = {0: lambda value: value * 3.0, 1: lambda value: value + 20.0}


def drifted_rows(artifacts: Path, drift: bool = True) -> list[str]:
    """The demo's data as an endpoint receives it (the features, without the target), drifted."""
    rows: list[str] = []
    for path in sorted((artifacts / "data").glob("*.csv")):
        lines = path.read_text().splitlines()[1:]  # a header row; the target last
        for line in lines:
            values = [float(value) for value in line.split(",")[:-1]]
            if drift:
                values = [DRIFT[index](value) if index in DRIFT else value for index, value in enumerate(values)]
            rows.append(",".join(f"{value:g}" for value in values))
    return rows


class Demo:
    def __init__(self, deployment: Deployment, say: Callable[[str], None] = print) -> None:
        self.deployment = deployment
        self.say = say
        self.s3 = deployment.client("s3")
        self.sfn = deployment.client("stepfunctions")
        self.sqs = deployment.client("sqs")
        self.sns = deployment.client("sns")
        self.outputs = deployment.outputs
        self._inboxes = {topic: self._inbox(topic) for topic in INBOXES}
        # called with an approval request's message before it is answered (promotion.py)
        self.on_approval_request: Callable[[dict[str, Any]], None] | None = None

    # --- the user's side -------------------------------------------------------------------------

    def item(self, pipeline: str) -> dict[str, Any]:
        table = self.deployment.client("dynamodb")
        found = table.get_item(TableName=self.outputs["table_name"], Key={"consumption_pipeline_name": {"S": pipeline}})
        if "Item" not in found:
            raise DemoError(f"no item {pipeline!r} in {self.outputs['table_name']}: is it in dynamodb_items/?")
        return dynamodb_json.from_typed(found["Item"])

    def upload(self, pipeline: str, folder: Path, into: str = "") -> tuple[str, str]:
        """The folder's files under the item's prefix (in its subfolder `into`, e.g. "dt=2024-05-31/"),
        the manifest last; returns (manifest key, its ETag)."""
        trigger = self.item(pipeline).get("trigger", {})
        manifest = trigger.get("complete_on", {}).get("manifest")
        if not manifest:
            raise DemoError(f"{pipeline}: the demo needs trigger.complete_on.manifest, so one upload starts one run")
        prefix, bucket = trigger["prefix"] + into, self.outputs["bucket_name"]
        files = sorted(path for path in folder.rglob("*") if path.is_file())
        if not files:
            why = "is empty" if folder.is_dir() else "does not exist"
            raise DemoError(
                f"nothing to upload for {pipeline}: {folder} {why}; the demo uploads a pipeline's scripts and data"
                " from there (only the demo pipeline has them: docs/getting-started.md says why)"
            )
        done = uploads.put(self.s3, bucket, prefix, folder, manifest, pipeline=pipeline)
        self.say(
            f"uploaded {done.files} files ({done.bytes / 1024:.0f} KiB) to s3://{bucket}/{prefix}, then {manifest}"
        )
        return done.manifest, done.etag

    # --- inboxes: what the approvers' and the team's email would receive ------------------------

    def _inbox(self, topic: str) -> str:
        name = f"{self.outputs['state_machine_arn'].rsplit(':', 1)[1]}-demo-{topic}"
        topic_arn = self.outputs["approval_topic_arn" if topic == "approvals" else "notification_topic_arn"]
        return inbox.subscribe(self.sqs, self.sns, topic_arn, name)

    def receive(self, topic: str) -> list[dict[str, Any]]:
        return inbox.drain(self.sqs, self._inboxes[topic], topic)

    # --- the run ----------------------------------------------------------------------------------

    def run(
        self,
        pipeline: str = PIPELINE,
        artifacts: Path = ARTIFACTS,
        answer: str = "approve",
        timeout: float = 600,
        into: str = "",
    ) -> DemoResult:
        for topic in INBOXES:
            self.receive(topic)  # what earlier runs left
        started = time.monotonic()
        uploaded_at = datetime.now().astimezone()
        key, etag = self.upload(pipeline, artifacts / pipeline, into)
        trigger = Upload(bucket=self.outputs["bucket_name"], key=key, etag=etag)
        name = names.execution_name(pipeline, trigger.identity())
        arn = names.execution_arn(self.outputs["state_machine_arn"], name)
        described = self._wait_for(arn, name, started + 60)
        new_run = described["startDate"] >= uploaded_at.replace(microsecond=0)
        if new_run:
            self.say(f"the router started {name} {time.monotonic() - started:.1f} s after the upload began")
        else:
            self.say(f"the same files as {name} (started {described['startDate']:%H:%M:%S}): nothing new started")
        result = self.followed(pipeline, arn, new_run, answer, started, timeout)
        if not new_run and described.get("stopDate"):  # the earlier run's own time, not this call's
            result.seconds = round((described["stopDate"] - described["startDate"]).total_seconds(), 1)
        result.graph = write_graph(Path(self.deployment.home) / "runs", result)
        return result

    def followed(
        self, pipeline: str, arn: str, new_run: bool, answer: str, started: float, timeout: float
    ) -> DemoResult:
        """An execution followed to its end (its approval answered), with the notifications it sent."""
        execution_input = json.loads(self.sfn.describe_execution(executionArn=arn)["input"])
        definition = runs.definition(self.sfn, arn)
        # an earlier run is reported, not replayed: its task lines were printed when it ran
        described, history = self._follow(arn, answer, started + timeout, quiet=not new_run)
        result = DemoResult(
            pipeline=pipeline,
            execution_name=arn.rsplit(":", 1)[1],
            execution_arn=arn,
            new_run=new_run,
            status=described["status"],
            seconds=round(time.monotonic() - started, 1),
            stages=runs.stage_runs(history, execution_input, definition),
            execution_input=execution_input,
            output=json.loads(described.get("output") or "{}"),
            error=described.get("error"),
            cause=described.get("cause"),
        )
        time.sleep(0.2)  # SNS to SQS delivery is synchronous in the local AWS; this is margin
        result.notifications = self.receive("notifications")
        return result

    def _wait_for(self, arn: str, name: str, deadline: float) -> dict[str, Any]:
        while True:
            try:
                described: dict[str, Any] = self.sfn.describe_execution(executionArn=arn)
                return described
            except self.sfn.exceptions.ExecutionDoesNotExist:
                if time.monotonic() > deadline:
                    raise DemoError(self._why_not_started(name)) from None
                time.sleep(0.1)

    def _why_not_started(self, name: str) -> str:
        waiting = self.sqs.get_queue_attributes(
            QueueUrl=self.outputs["dead_letter_queue_url"], AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
        log = self.deployment.runtime / "logs" / "lambda"
        return (
            f"no execution {name} after 60 s. Dead-letter queue: {waiting} message(s) "
            f"({self.outputs['dead_letter_queue_url']}); the router's log: {log}/"
        )

    def _follow(
        self, arn: str, answer: str, deadline: float, quiet: bool = False
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        answered: list[bool] = []

        def answer_once(described: dict[str, Any], events: list[dict[str, Any]]) -> None:
            if described["status"] == "RUNNING" and not answered and self._answer_approval(answer, described):
                answered.append(True)

        try:
            say = (lambda line: None) if quiet else self.say
            return runs.follow(self.sfn, arn, say, deadline, answer_once, poll_seconds=0.2)
        except runs.RunError:
            self.sfn.stop_execution(executionArn=arn, error="DemoTimeout", cause="mlops-sfn local demo stopped waiting")
            raise DemoError(f"{arn} still running after the demo's timeout: stopped") from None

    # --- the monitoring loop -----------------------------------------------------------------------

    def drift(
        self, pipeline: str = PIPELINE, artifacts: Path = ARTIFACTS, requests: int = 40, timeout: float = 600
    ) -> DriftResult:
        """Drifted traffic, one monitoring execution, the alarm, and the run it starts, followed."""
        item = self.item(pipeline)
        block = item["stages"].get("monitoring", {})
        if block.get("run") is not True:
            raise DemoError(f"{pipeline} does not monitor its endpoint: set stages.monitoring (docs/monitoring.md)")
        prefix = self.outputs["sagemaker_name_prefix"]
        endpoint = item["stages"]["deploy"].get("endpoint_name") or names.stable_name(pipeline, prefix)
        schedule = names.stable_name(pipeline, prefix)
        alarm_name = monitoring.drift_alarm_name(pipeline, prefix)
        seconds: dict[str, float] = {}
        for topic in INBOXES:
            self.receive(topic)  # what earlier runs left

        started = time.monotonic()
        runtime = self.deployment.client("sagemaker-runtime")
        rows = drifted_rows(artifacts / pipeline)
        batch = max(1, -(-len(rows) // requests))
        sent = 0
        for first in range(0, len(rows), batch):
            body = "\n".join(rows[first : first + batch]) + "\n"
            runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=body.encode())
            sent += 1
        seconds["traffic"] = round(time.monotonic() - started, 1)
        self.say(f"sent {sent} requests ({len(rows)} rows, median income x3, houses 20 years older) to {endpoint}")

        cloudwatch = self.deployment.client("cloudwatch")
        before = cloudwatch.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"]
        started = time.monotonic()
        monitored_at = datetime.now().astimezone()
        execution = local_monitor.run_schedule(self.deployment.client, schedule, guardrails=self.deployment.guardrails)
        seconds["monitoring"] = round(time.monotonic() - started, 1)
        self.say(f"monitoring execution of {schedule}: {execution['status']} ({execution.get('rows', 0)} rows)")
        for violation in execution["violations"]:
            self.say(
                f"  violation {violation['constraint_check_type']} {violation['feature_name']}: "
                f"{violation['description']}"
            )
        self.say(f"  reports: {execution['folder']}/")
        if execution["status"] != "Failed" and not execution["published"]:
            self.say(f"  no metrics published: {execution['unpublished']}")
        described = cloudwatch.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"]
        alarm = {key: described[0][key] for key in ("AlarmName", "StateValue", "StateReason")} if described else {}
        self.say(f"alarm {alarm_name}: {alarm.get('StateValue', 'missing')} ({alarm.get('StateReason', '')})")
        # Only a change to ALARM is a new drift episode; an alarm already in ALARM starts nothing.
        episode = alarm.get("StateValue") == "ALARM" and not (before and before[0]["StateValue"] == "ALARM")
        if alarm.get("StateValue") == "ALARM" and not episode:
            self.say("  the alarm was already in ALARM: the same drift episode, no new run")

        started = time.monotonic()
        run = None
        if episode:
            arn = self._drift_run(pipeline, monitored_at, time.monotonic() + 60)
            self.say(f"the drift alarm started {arn.rsplit(':', 1)[1]} through the router")
            run = self.followed(pipeline, arn, True, "approve", started, timeout)
        seconds["retraining"] = round(time.monotonic() - started, 1)
        return DriftResult(seconds, sent, execution, alarm, run)

    def _drift_run(self, pipeline: str, since: datetime, deadline: float) -> str:
        """The execution the router started for the alarm: the newest of this pipeline since `since`
        whose trigger is the monitoring one."""
        seen: set[str] = set()
        while True:
            pages = self.sfn.get_paginator("list_executions").paginate(
                stateMachineArn=self.outputs["state_machine_arn"]
            )
            for entry in (entry for page in pages for entry in page["executions"]):
                if entry["executionArn"] in seen or not entry["name"].startswith(pipeline):
                    continue
                seen.add(entry["executionArn"])
                if entry["startDate"] < since.replace(microsecond=0):
                    continue
                described = self.sfn.describe_execution(executionArn=entry["executionArn"])
                if json.loads(described["input"]).get("trigger", {}).get("source") == "monitoring":
                    return str(entry["executionArn"])
            if time.monotonic() > deadline:
                raise DemoError(self._why_not_started(f"(a drift run of {pipeline})"))
            time.sleep(0.2)

    def _answer_approval(self, answer: str, described: dict[str, Any]) -> bool:
        for request in self.receive("approvals"):
            message = request["message"]
            if message.get("execution_name") != described["name"]:
                continue  # another execution's request (someone else answers it)
            self.say(f'  approval requested: "{request["subject"]}" for {message.get("model_package_arn")}')
            if self.on_approval_request:
                self.on_approval_request(message)
            self.say(f"  answering as an approver: mlops-sfn {answer} {message['execution_name']}")
            approval.answer(
                self.sfn,
                message["execution_name"],
                approved=answer == "approve",
                comment=f"{'approved' if answer == 'approve' else 'rejected'} by mlops-sfn local demo",
                state_machine_arn=described["stateMachineArn"],
            )
            return True
        return False


def write_graph(folder: Path, result: DemoResult) -> Path:
    """The executed graph as Mermaid, and as PNG when a Mermaid renderer is installed (`render`)."""
    folder.mkdir(parents=True, exist_ok=True)
    outcomes = {stage: (run.status, run.seconds) for stage, run in result.stages.items()}
    for name in CHECKPOINTS:
        verdict = result.output.get("results", {}).get(name)
        if isinstance(verdict, dict) and "met" in verdict:
            outcomes[name] = ("met" if verdict["met"] else "not met", None)
    path = folder / f"{result.execution_name}.mmd"
    path.write_text(preview.mermaid(result.execution_input, outcomes) + "\n")
    render(path)
    return path


def render(path: Path) -> Path | None:
    """`mmdc` (npm's @mermaid-js/mermaid-cli) draws the graph with a headless browser; given a
    system Chromium (Debian's package), it uses that instead of downloading one."""
    renderer = shutil.which("mmdc")
    if renderer is None:
        return None
    image = path.with_suffix(".png")
    command = [renderer, "-i", str(path), "-o", str(image), "--quiet"]
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser:
        config = path.parent / "puppeteer.json"
        config.write_text(json.dumps({"executablePath": browser, "args": ["--no-sandbox"]}))
        command += ["-p", str(config)]
    try:
        subprocess.run(command, check=False, capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return image if image.exists() else None


def report(result: DemoResult, demo: Demo) -> list[str]:
    """The end-of-run summary, read from the execution's input and output and the local AWS."""
    results = runs.results(result.output)
    took = (
        f"{result.seconds:.1f} s since the upload began"
        if result.new_run
        else f"an earlier run of the same files, which took {result.seconds:.1f} s; change a file or the item"
        " for a new one"
    )
    lines = [f"execution {result.execution_name}: {result.status} ({took})"]
    if result.error:
        lines.append(f"  error: {result.error}: {failure_reason(result.cause, 300)}")
    lines.append("stages:")
    for stage, run in result.stages.items():
        took = f"{run.seconds:6.1f} s" if run.seconds is not None else " " * 8
        detail = (
            stage_detail(stage, results.get(stage), result.execution_input, demo) if run.status == "succeeded" else ""
        )
        if stage == "deploy" and detail and not result.new_run:
            endpoint = str(result.execution_input.get("stages", {}).get("deploy", {}).get("endpoint_name", ""))
            detail += _serving_now(endpoint, results.get("deploy"), demo)
        lines.append(f"  {stage:<16} {run.status:<12} {took}  {detail}".rstrip())
    for name, (checkpoint, _) in CHECKPOINTS.items():
        verdict = results.get(name)
        if isinstance(verdict, dict) and verdict.get("message"):
            lines.append(f"{checkpoint.title}: {verdict['message']}")
    report_location = result.execution_input.get("stages", {}).get("evaluation", {}).get("report")
    evaluation = _evaluation_report(demo, report_location) if "evaluation" in results else None
    if isinstance(evaluation, dict):
        metrics = ", ".join(
            f"{name} {value['value']:.4f}"
            for name, value in evaluation.get("regression_metrics", {}).items()
            if isinstance(value, dict) and "value" in value
        )
        where = f" (s3://{report_location['Bucket']}/{report_location['Key']})" if report_location else ""
        lines.append(f"metrics: {metrics or json.dumps(evaluation)[:200]}{where}")
    if "fanout" in result.execution_input:  # each segment's metrics are in its folder: status lists the segments
        outcome = fanout.outcome(demo.s3, result.execution_input)
        lines.append(fanout.segments_line(outcome) if outcome else "segments: no outcome written")
    lines.append(f"outputs: {result.execution_input.get('run_folder')}")
    for note in result.notifications:
        message = note["message"]
        text = message.get("error") or message.get("status") if isinstance(message, dict) else str(message)
        lines.append(f"notification [{note['topic']}] {note['subject']}: {failure_reason(str(text), 300)}")
    if result.graph:
        image = result.graph.with_suffix(".png")
        lines.append(f"graph: {result.graph}" + (f" and {image}" if image.exists() else " (Mermaid)"))
    return lines


def _serving_now(name: str, result: Any, demo: Demo) -> str:
    """For an earlier run: what its endpoint serves now, when a later run changed it."""
    deployed = result.get("endpoint", {}).get("config") if isinstance(result, dict) else None
    if not name or not deployed:
        return ""
    try:
        now = demo.deployment.client("sagemaker").describe_endpoint(EndpointName=name)["EndpointConfigName"]
    except ClientError:
        return "; the endpoint is gone now"
    return f"; a later run moved it to {now}" if now != deployed else ""


def _evaluation_report(demo: Demo, location: dict[str, str] | None) -> Any:
    """The report the evaluation job wrote (the run's state carries only the gate's verdict)."""
    if not location:
        return None
    try:
        return json.loads(demo.s3.get_object(Bucket=location["Bucket"], Key=location["Key"])["Body"].read())
    except (ClientError, ValueError):
        return None


def stage_detail(stage: str, result: Any, execution_input: dict[str, Any], demo: Demo) -> str:
    """One line on what a stage produced; a training job's final metrics too."""
    line = runs.stage_outputs(stage, result, execution_input)
    job = (result.get("job_name") or result.get("best_training_job")) if isinstance(result, dict) else None
    if stage in ("training", "tuning") and job:
        described = demo.deployment.client("sagemaker").describe_training_job(TrainingJobName=job)
        metrics = ", ".join(f"{m['MetricName']} {m['Value']:.4f}" for m in described.get("FinalMetricDataList", []))
        line += f" ({metrics})" if metrics else ""
    return line


def drift_report(result: DriftResult) -> list[str]:
    lines = ["drift loop:"]
    drift = ", ".join(f"{name} {value:.2f}" for name, value in sorted(result.execution["drift"].items()))
    lines.append(f"  drift from the baseline: {drift or 'none measured'}")
    lines.append(
        f"  violations: {len(result.execution['violations'])} ({result.execution['folder']}/constraint_violations.json)"
    )
    lines.append(f"  alarm {result.alarm.get('AlarmName')}: {result.alarm.get('StateValue')}")
    if result.run:
        lines.append(f"  retraining run {result.run.execution_name}: {result.run.status}")
        for stage, run in result.run.stages.items():
            took = f"{run.seconds:6.1f} s" if run.seconds is not None else " " * 8
            lines.append(f"    {stage:<16} {run.status:<12} {took}")
        for note in result.run.notifications:
            lines.append(f"  notification [{note['topic']}] {note['subject']}")
    else:
        lines.append("  no run started: the alarm did not fire")
    timings = ", ".join(f"{part} {value:.1f} s" for part, value in result.seconds.items())
    lines.append(f"  took: {timings}")
    return lines
