"""Fan-out benchmark: the segmented demo with 1,000 made-up segments (`local run --segments 1000`).

Prints figures and asserts nothing. The local harness (moto in-process, simulated jobs) plans the
run as the router does, writes the segments' inputs, and runs the real definition: one child
execution per segment in the Distributed Map. Reported: the planning time and the list's size, the
run's wall time, its state transitions (the parent's and its children's: Step Functions bills both)
and per segment, and the largest state the parent held (Step Functions' quota is 256 KiB a state).
Simulated jobs take no time: on AWS the segments' jobs set the run's duration.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlops_sfn.core import fanout  # noqa: E402
from mlops_sfn.core.plan import SAMPLE_TRIGGER, plan_run  # noqa: E402
from mlops_sfn.local.harness import LocalRuns  # noqa: E402
from tests.conftest import load_item  # noqa: E402

SEGMENTS = int(os.environ.get("FANOUT_SEGMENTS", "1000"))
# Standard workflows: USD 0.025 per 1,000 state transitions (AWS Step Functions pricing, us-east-1;
# the first 4,000 a month are free).
USD_PER_TRANSITION = 0.025 / 1000


def main() -> list[tuple[str, str, str]]:
    item = fanout.made_up_segments(load_item("demo-dev-segmented-house-price"), SEGMENTS)
    with LocalRuns() as local:
        started = time.perf_counter()
        planned = plan_run(item, SAMPLE_TRIGGER, local.settings)
        planning = time.perf_counter() - started
        listed = len(json.dumps(planned.segment_inputs, separators=(",", ":")).encode())
        print(f"planned {SEGMENTS} segments in {planning:.2f} s; their list: {listed / 1e6:.1f} MB in S3")
        report = local.run(item, timeout=3600)
        segments = report.segments or {"succeeded": [], "failed": []}
        states = [
            details.get("input") or details.get("output") or ""
            for event in report.history
            for details in (event.get("stateEnteredEventDetails") or event.get("stateExitedEventDetails") or {},)
        ]
        largest = max(len(state.encode()) for state in states)
        children = report.transitions - sum(1 for event in report.history if "stateEnteredEventDetails" in event)
        per_segment = children / SEGMENTS
        print(
            f"run: {report.status} in {report.seconds:.1f} s, {len(segments['succeeded'])} segments succeeded,"
            f" {len(segments['failed'])} failed"
        )
        print(
            f"transitions: {report.transitions} ({report.transitions - children} in the run, {children} in its"
            f" segments: {per_segment:.1f} per segment, about USD {per_segment * USD_PER_TRANSITION:.6f} each on AWS)"
        )
        print(f"the run's largest state: {largest} bytes (Step Functions' quota: 262,144)")
    return [
        ("fanout", f"plan {SEGMENTS} segments", f"{planning:.2f} s"),
        ("fanout", "segments' list in S3", f"{listed / 1e6:.1f} MB"),
        ("fanout", f"run of {SEGMENTS} segments (simulated jobs)", f"{report.seconds:.1f} s"),
        ("fanout", "transitions in all", str(report.transitions)),
        ("fanout", "transitions per segment", f"{per_segment:.1f}"),
        ("fanout", "the run's largest state", f"{largest} B"),
    ]


if __name__ == "__main__":
    main()
