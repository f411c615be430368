"""`mlops-sfn logs`: which jobs a run's stages ran, read from its history in Step Functions' own event
shapes (GetExecutionHistory: TaskStateEntered, then TaskScheduled with the request as `parameters`),
and their lines read from CloudWatch Logs stream by stream (moto in-process)."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlops_sfn.core import asl, names
from mlops_sfn.operate import logs
from mlops_sfn.tools import statemachine

MACHINE = statemachine.build()
TASKS = asl.stage_tasks(MACHINE)


def scheduled(events: list[dict[str, Any]], state: str, resource_type: str, resource: str, request: dict) -> None:
    """A Task state entered and its task scheduled, as GetExecutionHistory lists them."""
    entered = {
        "id": len(events) + 1,
        "previousEventId": len(events),
        "timestamp": datetime(2026, 12, 6),
        "type": "TaskStateEntered",
        "stateEnteredEventDetails": {"name": state, "input": "{}"},
    }
    task = {
        "id": len(events) + 2,
        "previousEventId": len(events) + 1,
        "timestamp": datetime(2026, 12, 6),
        "type": "TaskScheduled",
        "taskScheduledEventDetails": {
            "resourceType": resource_type,
            "resource": resource,
            "region": "us-east-1",
            "parameters": json.dumps(request),
        },
    }
    events += [entered, task]


def history() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    scheduled(events, TASKS["preprocessing"][0], "sagemaker", "createProcessingJob.sync", {"ProcessingJobName": "p-1"})
    scheduled(events, TASKS["training"][0], "sagemaker", "createTrainingJob.sync", {"TrainingJobName": "t-1"})
    scheduled(
        events,
        TASKS["quality_gate"][0],
        "lambda",
        "invoke",
        {"FunctionName": "arn:aws:lambda:us-east-1:1:function:gate:$LATEST"},
    )
    scheduled(
        events, TASKS["training"][0], "sagemaker", "createTrainingJob.sync", {"TrainingJobName": "t-1"}
    )  # a retry
    return events


def test_the_jobs_of_a_run_come_from_the_requests_its_history_records_in_order_once_each() -> None:
    found = logs.job_logs(history(), MACHINE)
    assert found == [
        logs.JobLog("preprocessing", "p-1", "/aws/sagemaker/ProcessingJobs", "p-1/"),
        logs.JobLog("training", "t-1", "/aws/sagemaker/TrainingJobs", "t-1/"),
    ]
    assert logs.job_logs(history(), MACHINE, "training") == found[1:]
    assert logs.job_logs(history(), MACHINE, "evaluation") == []
    assert logs.functions(history(), MACHINE) == [("quality_gate", "gate")]


def test_a_tuning_jobs_lines_are_those_of_its_training_jobs() -> None:
    # SageMaker names a tuning job's training jobs "<tuning job>-<NNN>-<8 characters>"
    assert names.JOB_LOG_GROUPS["createHyperParameterTuningJob"] == "/aws/sagemaker/TrainingJobs"
    assert names.job_log_prefix("createHyperParameterTuningJob", "tune-1") == "tune-1-"


@mock_aws
def test_a_reader_reads_each_stream_of_its_job_only_and_each_line_once() -> None:
    client = boto3.client("logs", region_name="us-east-1")
    now = int(time.time() * 1000)  # CloudWatch Logs refuses events older than 14 days (PutLogEvents)
    group = "/aws/sagemaker/TrainingJobs"
    client.create_log_group(logGroupName=group)
    for stream, lines in (("t-1/algo-1-100", ["one", "two"]), ("t-10/algo-1-100", ["another job's"])):
        client.create_log_stream(logGroupName=group, logStreamName=stream)
        events = [{"timestamp": now + index, "message": line} for index, line in enumerate(lines)]
        client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
    reader = logs.Reader(client, logs.JobLog("training", "t-1", group, "t-1/"))
    assert list(reader.new_lines()) == ["one", "two"]
    assert list(reader.new_lines()) == []  # following: nothing new yet
    client.put_log_events(
        logGroupName=group, logStreamName="t-1/algo-1-100", logEvents=[{"timestamp": now + 10, "message": "three"}]
    )
    assert list(reader.new_lines()) == ["three"]
    assert logs.last_lines(client, reader.job, 2) == ["two", "three"]
    # a kind of job that has never logged: no group yet, no lines
    missing = logs.JobLog("preprocessing", "p-1", "/aws/sagemaker/ProcessingJobs", "p-1/")
    assert list(logs.Reader(client, missing).new_lines()) == []


def test_a_refused_read_names_the_call_and_the_reason() -> None:
    from botocore.exceptions import ClientError

    class Refusing:
        class exceptions:  # as a client's: its modeled errors
            ResourceNotFoundException = KeyError

        def get_paginator(self, name: str) -> Any:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, name)

    reader = logs.Reader(Refusing(), logs.JobLog("training", "t-1", "/aws/sagemaker/TrainingJobs", "t-1/"))
    with pytest.raises(
        logs.LogsError, match="DescribeLogStreams on /aws/sagemaker/TrainingJobs: AccessDeniedException"
    ):
        list(reader.new_lines())
