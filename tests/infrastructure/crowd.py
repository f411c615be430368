"""Many pipelines, concurrent uploads, against a running local stack: what the end-to-end test asserts
and benchmarks/uploads.py measures (runs started, how long after the last upload, dead letters)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from mlops_sfn.core import dynamodb_json
from mlops_sfn.local.deployment import Deployment


@dataclass
class Crowd:
    started: int  # executions of the crowd's pipelines
    after_last_upload: float  # seconds from the last upload to the last of those starts
    dead_letters: int
    router_containers: int  # execution environments the router's log shows


def item(number: int) -> dict[str, Any]:
    """A pipeline of its own prefix that runs no stage: a run is one pass through the Choices.

    Small on purpose: moto computes every item's size on each Scan, slowly for large items, and the
    router scans the table whenever a container starts or a key misses its cached map."""
    return {
        "schema_version": 1,
        "consumption_pipeline_name": f"crowd-{number:03d}",
        "trigger": {"prefix": f"input/crowd/{number:03d}/", "complete_on": {"manifest": "manifest.json"}},
        "stages": {},
    }


def crowd(running: Deployment, pipelines: int, uploads: int, deadline: float = 180) -> Crowd:
    dynamodb, s3, sfn, sqs = (running.client(name) for name in ("dynamodb", "s3", "stepfunctions", "sqs"))
    outputs = running.outputs
    for number in range(pipelines):
        dynamodb.put_item(TableName=outputs["table_name"], Item=dynamodb_json.to_typed(item(number)))

    def upload(number: int) -> float:
        body = json.dumps({"files": [], "upload": time.time()}).encode()
        s3.put_object(Bucket=outputs["bucket_name"], Key=f"input/crowd/{number:03d}/manifest.json", Body=body)
        return time.time()

    with ThreadPoolExecutor(max_workers=uploads) as pool:
        last_upload = max(pool.map(upload, range(uploads)))
    starts: list[float] = []
    give_up = time.monotonic() + deadline
    while time.monotonic() < give_up:
        pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=outputs["state_machine_arn"])
        starts = [
            execution["startDate"].timestamp()
            for page in pages
            for execution in page["executions"]
            if execution["name"].startswith("crowd-")
        ]
        if len(starts) >= uploads:
            break
        time.sleep(0.2)
    waiting = sqs.get_queue_attributes(
        QueueUrl=outputs["dead_letter_queue_url"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    name = outputs["router_function_arn"].rsplit(":", 1)[1]
    log = (running.runtime / "logs" / "lambda" / f"{name}.log").read_text()
    return Crowd(
        started=len(starts),
        after_last_upload=max(starts, default=last_upload) - last_upload,
        dead_letters=sum(int(value) for value in waiting.values()),
        router_containers=log.count("INIT_START"),
    )
