"""Router benchmarks: cold import, time per event against moto, AWS calls per execution, a 1,000-event burst,
an SQS batch of 10 records with one poisoned, and the time per event side by side with what the earlier
framework's routing Lambda did.

Prints figures and asserts nothing (the machines are shared and noisy). Run with `make bench` (all
benchmarks, one table) or `python benchmarks/router.py`.
Targets from the router issue: the handler adds < 25 ms to `import boto3`; 2 AWS calls per started execution.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from moto import mock_aws  # noqa: E402

from mlops_sfn.core import contract  # noqa: E402
from mlops_sfn.core.router import Config, Router  # noqa: E402
from tests.aws import BUCKET, TABLE, deploy  # noqa: E402
from tests.conftest import load_event, load_item  # noqa: E402

PREFIX = "input/demo-dev-domain-cal-house-price/"
IMPORT_RUNS = 15

COLD_IMPORT = """
import importlib.util, sys, time
t0 = time.perf_counter()
import boto3
t1 = time.perf_counter()
spec = importlib.util.spec_from_file_location("router_handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def cold_import() -> tuple[float, float]:
    """Median seconds for `import boto3`, and what loading handler.py adds, each in a fresh interpreter."""
    environment = dict(os.environ) | {
        "AWS_REGION": "us-east-1",
        **contract.router_environment(
            {
                "table_name": "bench-table",
                "state_machine_arn": "arn:aws:states:us-east-1:123456789012:stateMachine:bench",
                "bucket": BUCKET,
                "sagemaker_role_arn": "arn:aws:iam::123456789012:role/bench",
                "default_image_uri": "image",
                "sagemaker_name_prefix": "mlops-dev-",
                "image_repository_arns": "arn:aws:ecr:us-east-1:683313688378:repository/*",
            }
        ),
    }
    boto3_times, handler_times = [], []
    for _ in range(IMPORT_RUNS):
        out = subprocess.run(
            [sys.executable, "-c", COLD_IMPORT, str(ROOT / "lambdas/router/handler.py")],
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        boto3_times.append(float(out[0]))
        handler_times.append(float(out[1]))
    return statistics.median(boto3_times), statistics.median(handler_times)


class CallCounter:
    """AWS calls made through these clients and the time spent inside them (moto answers in-process)."""

    def __init__(self, *clients: Any) -> None:
        self.calls: list[str] = []
        self.seconds = 0.0
        self._began = 0.0
        for client in clients:
            client.meta.events.register("before-call", self._before)
            client.meta.events.register("after-call", self._after)

    def _before(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)
        self._began = time.perf_counter()

    def _after(self, **_: Any) -> None:
        self.seconds += time.perf_counter() - self._began


def per_event() -> dict[str, Any]:
    with mock_aws():
        stack = deploy([load_item(), load_item("demo-dev-train-and-batch-score")])
        router = stack.router()
        s3_event = stack.s3_event
        began = time.perf_counter()
        router.handle(s3_event(f"{PREFIX}manifest.json", "cold"), "cold")
        first = time.perf_counter() - began
        counter = CallCounter(*router.clients, router.s3)
        figures: dict[str, Any] = {"first event (cold container), ms": first * 1000}
        suffix_pipeline = "input/demo-dev-train-and-batch-score/"
        for label, make in [
            ("started (suffix marker)", lambda n: s3_event(f"{suffix_pipeline}{n}/_SUCCESS", "s")),
            ("started", lambda n: s3_event(f"{PREFIX}manifest.json", f"warm-{n}")),
            ("skipped (part of an upload)", lambda n: s3_event(f"{PREFIX}data/part-{n}.csv", f"p{n}")),
            ("duplicate", lambda n: s3_event(f"{PREFIX}manifest.json", "warm-0")),
        ]:
            counter.calls.clear()
            counter.seconds = 0.0
            runs = 50
            began = time.perf_counter()
            for n in range(runs):
                router.handle(make(n), f"{label}-{n}")
            total = time.perf_counter() - began
            figures[f"{label}: per event, ms"] = total / runs * 1000
            figures[f"{label}: router's own share, ms"] = (total - counter.seconds) / runs * 1000
            figures[f"{label}: AWS calls per event"] = len(counter.calls) / runs
        figures["AWS calls per started execution, suffix marker (warm)"] = figures.pop(
            "started (suffix marker): AWS calls per event"
        )
        figures["AWS calls per started execution, manifest (warm)"] = figures.pop("started: AWS calls per event")
        return figures


def burst(events_total: int = 1000) -> dict[str, Any]:
    """One upload of 200 files plus its manifest, every object delivered several times, shuffled."""
    with mock_aws():
        stack = deploy([load_item()])
        parts = [stack.s3_event(f"{PREFIX}data/part-{n:04d}.csv", f"p{n}") for n in range(200)]
        events = parts * 4 + [stack.s3_event(f"{PREFIX}manifest.json", "m1")] * (events_total - 800)
        random.Random(7).shuffle(events)
        router = stack.router()
        counter = CallCounter(*router.clients, router.s3)
        totals = {"started": 0, "duplicates": 0, "skipped": 0}
        began = time.perf_counter()
        for number, event in enumerate(events):
            summary = router.handle(event, f"burst-{number}")
            for key in totals:
                totals[key] += summary[key]
        seconds = time.perf_counter() - began
        return {
            "burst: events": len(events),
            "burst: executions started": len(stack.executions()),
            "burst: summaries (started/duplicates/skipped)": "/".join(str(totals[k]) for k in totals),
            "burst: total, s": seconds,
            "burst: AWS calls": len(counter.calls),
            "burst: Scan calls (prefix map)": counter.calls.count("Scan"),
        }


def poisoned_batch(batches: int = 20) -> dict[str, Any]:
    """SQS batches of 10 manual triggers, the 6th unreadable, through a mapping that reports partial failures."""
    with mock_aws():
        stack = deploy([load_item()])
        router = Router(Config.from_environment(stack.environment | {"REPORT_BATCH_ITEM_FAILURES": "true"}))
        router.handle(load_event("manual") | {"run_id": "warm-up"}, "warm-up")  # clients, not counted
        counter = CallCounter(*router.clients, router.s3)
        template = load_event("sqs_records_legacy")["Records"][0]
        reported, seconds = 0, 0.0
        for number in range(batches):
            records = []
            for n in range(10):
                body = {"consumption_pipeline_name": "demo-dev-domain-cal-house-price", "run_id": f"b{number}-{n}"}
                records.append(template | {"messageId": f"m{number}-{n}", "body": json.dumps(body)})
            records[5]["body"] = "{not json"
            began = time.perf_counter()
            summary = router.handle({"Records": records}, f"batch-{number}")
            seconds += time.perf_counter() - began
            reported += len(summary.get("batchItemFailures", []))
        started = len(stack.executions()) - 1
        return {
            "batch of 10 SQS records, 1 poisoned: executions started per batch": started / batches,
            "batch of 10 SQS records, 1 poisoned: records reported failed per batch": reported / batches,
            "batch of 10 SQS records, 1 poisoned: per batch, ms": seconds / batches * 1000,
            "batch of 10 SQS records, 1 poisoned: AWS calls per started execution": len(counter.calls) / started,
        }


def earlier_router(dynamodb: Any, stepfunctions: Any, machine: str, event: dict[str, Any]) -> None:
    """What the earlier framework's routing Lambda did with an event (reference.md, section 5), written
    here from that description: the item read by consumption_pipeline_name and passed to the state
    machine as it is, nothing checked, nothing planned."""
    for record in event["Records"]:
        body = record["body"] if isinstance(record["body"], dict) else json.loads(record["body"])
        pipeline = body["consumption_pipeline_name"]
        key = {"consumption_pipeline_name": {"S": pipeline}}
        found = dynamodb.get_item(TableName=TABLE, Key=key)["Item"]
        execution_input = {name: value.get("S", value) for name, value in found.items()} | body
        name = f"{pipeline[:40]}-{uuid.uuid4().hex[:16]}"
        stepfunctions.start_execution(stateMachineArn=machine, name=name, input=json.dumps(execution_input))


def against_earlier(events: int = 200) -> dict[str, Any]:
    """The same manual trigger routed by this router and by the earlier one, alternately in one
    process (both warm, same table, same moto), event by event."""
    with mock_aws():
        stack = deploy([load_item()])
        router = stack.router()
        manual = load_event("manual")
        manual.pop("overrides")  # the earlier router knew none
        router.handle(manual | {"run_id": "warm-up"}, "warm-up")
        earlier = {"Records": [{"body": manual}]}
        earlier_router(stack.dynamodb, stack.stepfunctions, stack.state_machine_arn, earlier)
        counters = CallCounter(*router.clients, router.s3), CallCounter(stack.dynamodb, stack.stepfunctions)
        ours, theirs, own = [], [], []
        for n in range(events):
            began, in_aws = time.perf_counter(), counters[0].seconds
            router.handle(manual | {"run_id": f"side-{n}"}, f"side-{n}")
            ours.append(time.perf_counter() - began)
            own.append(ours[-1] - (counters[0].seconds - in_aws))
            began = time.perf_counter()
            earlier_router(stack.dynamodb, stack.stepfunctions, stack.state_machine_arn, earlier)
            theirs.append(time.perf_counter() - began)
        ratios = [mine / earlier for mine, earlier in zip(ours, theirs, strict=True)]
        return {
            "side by side: this router, per manual event, ms (median)": statistics.median(ours) * 1000,
            "side by side: the earlier router, per manual event, ms (median)": statistics.median(theirs) * 1000,
            "side by side: per-event ratio, this / earlier (median; goal <= 1.0)": f"{statistics.median(ratios):.2f}",
            "side by side: this router's own share (checks, plan), ms (median)": statistics.median(own) * 1000,
            "side by side: AWS calls per event, this / earlier": f"{len(counters[0].calls) / events:.0f} / "
            f"{len(counters[1].calls) / events:.0f}",
        }


def main() -> list[tuple[str, str, str]]:
    """Prints the figures; returns them as (benchmark, measure, value) rows for `make bench`'s table."""
    sys.stdout = open(os.devnull, "w")  # the router's JSON decision lines  # noqa: SIM115
    try:
        boto3_seconds, handler_seconds = cold_import()
        figures: dict[str, Any] = {
            "cold import: boto3 alone, ms (median of 15)": boto3_seconds * 1000,
            "cold import: handler.py adds, ms (target < 25)": handler_seconds * 1000,
        }
        figures |= per_event()
        figures |= burst()
        figures |= poisoned_batch()
        figures |= against_earlier()
    finally:
        sys.stdout.close()
        sys.stdout = sys.__stdout__
    width = max(len(name) for name in figures)
    print("router benchmark (moto in-process; figures include moto's own time unless marked 'own share')")
    for name, value in figures.items():
        shown = f"{value:.1f}" if isinstance(value, float) else str(value)
        print(f"  {name:<{width}}  {shown}")
    if "--json" in sys.argv:
        print(json.dumps(figures))
    return [
        ("router", name, f"{value:.1f}" if isinstance(value, float) else str(value)) for name, value in figures.items()
    ]


if __name__ == "__main__":
    main()
