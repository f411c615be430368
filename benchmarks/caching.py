"""Step caching benchmark: a second run with caching on against the first, and what a lookup costs.

Prints figures and asserts nothing. The local harness (moto in-process, simulated jobs) runs the
demo pipeline (preprocessing, training, evaluation, register, create model, batch transform and
deploy) with preprocessing, training and evaluation cached, twice with nothing changed; then the
router's lookup alone (`cache.reuse`) is timed and its AWS calls counted. Simulated jobs take no
time, so the wall-time gain is only the skipped states; on AWS a reused training job saves its
whole run (minutes to hours) and its instance cost.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from operate import Counted  # noqa: E402

from mlops_sfn.core import cache  # noqa: E402
from mlops_sfn.core.plan import plan_execution  # noqa: E402
from mlops_sfn.core.triggers import Manual  # noqa: E402
from mlops_sfn.local.harness import LocalRuns  # noqa: E402
from tests.conftest import edited, load_item  # noqa: E402

CACHED = ("preprocessing", "training", "evaluation")
LOOKUPS = 50


def main() -> list[tuple[str, str, str]]:
    item = edited(load_item(), {f"stages.{stage}.cache": {"enabled": True} for stage in CACHED})
    prefix = item["trigger"]["prefix"]
    with LocalRuns() as local:
        for name in ("code/preprocessing.py", "code/evaluation.py", "code/sourcedir.tar.gz", "data/part-1.csv"):
            local.s3.put_object(Bucket=local.settings.bucket, Key=prefix + name, Body=b"x")
        first = local.run(item, answer="approve")
        second = local.run(item, answer="approve")
        print(f"first run:  {first.status}, {first.transitions} transitions, {first.seconds:.2f} s")
        reused = [stage for stage, outcome in second.stages.items() if outcome == "reused"]
        print(f"second run: {second.status}, {second.transitions} transitions, {second.seconds:.2f} s, reused {reused}")

        s3, dynamodb, sfn = Counted(local.s3), Counted(local.dynamodb), Counted(local.sfn)
        took = []
        for number in range(LOOKUPS):
            trigger = Manual(pipeline=item["consumption_pipeline_name"], run_id=f"bench-{number}")
            planned = plan_execution(item, trigger, local.settings)
            started = time.perf_counter()
            cache.reuse(item, planned, (s3, dynamodb, sfn), local.ledger, local.state_machine_arn)
            took.append(time.perf_counter() - started)
        s3_calls, ledger_calls, run_calls = s3.calls / LOOKUPS, dynamodb.calls / LOOKUPS, sfn.calls / LOOKUPS
        print(
            f"lookup ({len(CACHED)} cached stages): median {statistics.median(took) * 1000:.1f} ms in moto,"
            f" {s3_calls:.0f} ListObjectsV2 pages, {ledger_calls:.0f} GetItem and {run_calls:.0f} DescribeExecution"
            " per run"
        )
    rows: list[tuple[str, str, str]] = [
        ("caching", "first run transitions", str(first.transitions)),
        ("caching", "second run transitions (reused)", str(second.transitions)),
        ("caching", "first run wall time (s)", f"{first.seconds:.2f}"),
        ("caching", "second run wall time (s)", f"{second.seconds:.2f}"),
        ("caching", "lookup median (ms, moto)", f"{statistics.median(took) * 1000:.1f}"),
        (
            "caching",
            "lookup calls (list pages + GetItem + DescribeExecution)",
            f"{s3_calls:.0f} + {ledger_calls:.0f} + {run_calls:.0f}",
        ),
    ]
    return rows
