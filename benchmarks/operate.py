"""Operator commands benchmark: the AWS calls (and time) `runs` and `status` need for 100 runs.

Prints figures and asserts nothing. 100 executions of a one-state machine, each with an input shaped
as the router's (pipeline, trigger, run flags), in moto in-process; `runs --limit 100` of one
pipeline (half of them), `runs --limit 20`, and `status` of one run are counted call by call. The
time from `mlops-sfn run` to the execution starting is measured on the local stack by demo.py.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from mlops_sfn.core.stages import STAGES  # noqa: E402
from mlops_sfn.operate import runs  # noqa: E402

RUNS = 100


class Counted:
    """A client that counts its API calls (a paginator's pages each count as one call)."""

    def __init__(self, client: Any) -> None:
        self.client, self.calls = client, 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        if name == "get_paginator":
            return lambda operation: _CountedPaginator(self, attribute(operation))
        if callable(attribute) and name != "exceptions":

            def call(*args: Any, **kwargs: Any) -> Any:
                self.calls += 1
                return attribute(*args, **kwargs)

            return call
        return attribute


class _CountedPaginator:
    def __init__(self, counted: Counted, paginator: Any) -> None:
        self.counted, self.paginator = counted, paginator

    def paginate(self, **options: Any) -> Any:
        for page in self.paginator.paginate(**options):
            self.counted.calls += 1
            yield page


def main() -> list[tuple[str, str, str]]:
    rows = []
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
        machine = sfn.create_state_machine(
            name="bench", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/bench"
        )["stateMachineArn"]
        for number in range(RUNS):
            pipeline = "pipeline-a" if number % 2 else "pipeline-b"
            execution_input = {
                "pipeline": pipeline,
                "trigger": {"source": "manual", "run_id": f"r{number}"},
                "run": dict.fromkeys(STAGES, False),
            }
            sfn.start_execution(
                stateMachineArn=machine, name=f"{pipeline}-{number:016x}", input=json.dumps(execution_input)
            )
        print(f"{RUNS} runs of two pipelines, moto in-process:")
        print(f"  {'command':<34} {'AWS calls':>9} {'seconds':>8}")
        for label, pipeline, limit in (
            ("runs --limit 100 (all 100)", None, 100),
            ("runs pipeline-a --limit 100 (50)", "pipeline-a", 100),
            ("runs --limit 20", None, 20),
        ):
            counted = Counted(sfn)
            started = time.perf_counter()
            shown = runs.recent(counted, machine, pipeline, None, limit)
            seconds = time.perf_counter() - started
            print(f"  {label:<34} {counted.calls:9d} {seconds:8.3f}   ({len(shown)} shown)")
            rows.append(("operate", f"{label}: AWS calls", str(counted.calls)))
        counted = Counted(sfn)
        started = time.perf_counter()
        arn = shown[0].arn
        described = counted.describe_execution(executionArn=arn)
        runs.stage_runs(runs.history(counted, arn), json.loads(described["input"]), runs.definition(counted, arn))
        seconds = time.perf_counter() - started
        print(f"  {'status (one run)':<34} {counted.calls:9d} {seconds:8.3f}")
        rows.append(("operate", "status: AWS calls", str(counted.calls)))
    return rows


if __name__ == "__main__":
    main()
