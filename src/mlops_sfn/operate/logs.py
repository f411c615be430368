"""A run's job logs: the SageMaker jobs its stages ran, read from the execution's history, and their
lines in CloudWatch Logs, where SageMaker writes what a job's containers print (names.JOB_LOG_GROUPS).
The same calls read AWS and the local AWS, whose jobs write their output there too (local/jobs.py).

Each log stream of a job is read with GetLogEvents from its start (DescribeLogStreams finds them by
the job's name as their prefix); following a run reads each stream on from the token it stopped at.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ..core import asl, names
from ..core.problems import Error


class LogsError(Error):
    """CloudWatch Logs refused a read; the message names the call and its reason."""


@dataclass(frozen=True)
class JobLog:
    """Where one job's log lines are."""

    stage: str
    job: str
    group: str
    prefix: str  # of the job's stream names


@dataclass
class Reader:
    """Reads a job's streams on from where it stopped (follow), each line once."""

    logs: Any
    job: JobLog
    tokens: dict[str, str] = field(default_factory=dict)  # stream -> GetLogEvents' nextForwardToken

    def streams(self) -> list[str]:
        found: list[str] = []
        try:
            pages = self.logs.get_paginator("describe_log_streams").paginate(
                logGroupName=self.job.group, logStreamNamePrefix=self.job.prefix
            )
            for page in pages:
                found += [stream["logStreamName"] for stream in page.get("logStreams", [])]
        except self.logs.exceptions.ResourceNotFoundException:
            return []  # no job of this kind has logged yet
        except ClientError as error:
            raise LogsError(_refused("DescribeLogStreams", self.job.group, error)) from None
        return sorted(found)

    def new_lines(self) -> Iterator[str]:
        for stream in self.streams():
            while True:
                request = {"logGroupName": self.job.group, "logStreamName": stream, "startFromHead": True}
                if stream in self.tokens:
                    request["nextToken"] = self.tokens[stream]
                try:
                    page = self.logs.get_log_events(**request)
                except ClientError as error:
                    raise LogsError(_refused("GetLogEvents", f"{self.job.group} {stream}", error)) from None
                for event in page.get("events", []):
                    yield event["message"].rstrip("\n")
                token = page.get("nextForwardToken")
                # GetLogEvents answers the token it was given once the stream's end is reached
                done = not page.get("events") or token is None or token == self.tokens.get(stream)
                if token:
                    self.tokens[stream] = token
                if done:
                    break


def _refused(call: str, where: str, error: ClientError) -> str:
    detail = error.response.get("Error", {})
    return f"CloudWatch Logs {call} on {where}: {detail.get('Code')}: {detail.get('Message')}"


def _scheduled(
    events: list[dict[str, Any]], machine: dict[str, Any], resource_type: str
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(stage, resource, request) of each task of `resource_type` the history scheduled, in order: the
    stage is that of the Task state entered just before (TaskScheduled's previousEventId)."""
    task_stage = {task: name for name, tasks in asl.stage_tasks(machine).items() for task in tasks}
    by_id = {event["id"]: event for event in events}
    for event in events:
        details = event.get("taskScheduledEventDetails")
        if not details or details.get("resourceType") != resource_type:
            continue
        entered = by_id.get(event.get("previousEventId"), {}).get("stateEnteredEventDetails", {})
        owner = task_stage.get(entered.get("name", ""))
        try:
            request = json.loads(details.get("parameters") or "{}")
        except ValueError:
            continue
        if owner and isinstance(request, dict):
            yield owner, str(details.get("resource", "")), request


def job_logs(events: list[dict[str, Any]], machine: dict[str, Any], stage: str | None = None) -> list[JobLog]:
    """Each SageMaker job the run's stages started (of `stage` only, when given), in the order they
    started: the job names come from the requests the history records (TaskScheduled)."""
    found: list[JobLog] = []
    for owner, resource, request in _scheduled(events, machine, "sagemaker"):
        kind = resource.split(".")[0]
        job = next((str(v) for k, v in request.items() if k.endswith("JobName") and isinstance(v, str)), None)
        if kind not in names.JOB_LOG_GROUPS or job is None or (stage is not None and owner != stage):
            continue
        log = JobLog(owner, job, names.JOB_LOG_GROUPS[kind], names.job_log_prefix(kind, job))
        if log not in found:
            found.append(log)
    return found


def last_lines(logs: Any, job: JobLog, count: int) -> list[str]:
    """The last `count` lines of a job's log: of each stream, its last `count` events (GetLogEvents
    from the end), the streams in name order."""
    lines: list[str] = []
    for stream in Reader(logs, job).streams():
        try:
            page = logs.get_log_events(logGroupName=job.group, logStreamName=stream, startFromHead=False, limit=count)
        except ClientError as error:
            raise LogsError(_refused("GetLogEvents", f"{job.group} {stream}", error)) from None
        lines += [event["message"].rstrip("\n") for event in page.get("events", [])]
    return lines[-count:]


def functions(events: list[dict[str, Any]], machine: dict[str, Any], stage: str | None = None) -> list[tuple[str, str]]:
    """(stage, function name) of each Lambda function the run's stages invoked: their lines are in the
    function's log group (/aws/lambda/<name>), among every other invocation's."""
    found: list[tuple[str, str]] = []
    for owner, _, request in _scheduled(events, machine, "lambda"):
        function = str(request.get("FunctionName", ""))
        name = function.split(":")[6] if function.startswith("arn:") else function.rsplit(":", 1)[-1]
        if function and (stage is None or owner == stage) and (owner, name) not in found:
            found.append((owner, name))
    return found
