"""State machine benchmarks: state transitions per run (what Step Functions bills) and local run time.

Prints figures and asserts nothing. Run with `make bench`. Targets from the state machine issue:
a disabled stage costs at most one transition; no polling loop except the endpoint wait.
Runs use the local harness (real definition, moto's interpreter, simulated SageMaker jobs).
"""

from __future__ import annotations

import copy
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlops_sfn.core import asl  # noqa: E402
from mlops_sfn.core.asl import Builder  # noqa: E402
from mlops_sfn.core.stages import STAGE, STAGES  # noqa: E402
from mlops_sfn.local.harness import LocalRuns, RunReport  # noqa: E402
from tests.conftest import load_item  # noqa: E402

LOOP = {"Wait for endpoint", "Check endpoint", "Endpoint status?", "Count endpoint check"}


def only(item: dict[str, Any], running: set[str]) -> dict[str, Any]:
    item = copy.deepcopy(item)
    for stage in STAGES:
        item["stages"][stage]["run"] = stage in running
    if "evaluation" not in running:
        item.pop("quality_gate", None)
    if not running & {"training", "tuning"}:  # the (unused) evaluation request still names a model
        item["stages"]["create_model"]["model_data_url"] = "s3://{bucket}/models/existing/model.tar.gz"
    return item


def repeated(report: RunReport) -> set[str]:
    """States entered more than once: polling loops and retries."""
    return {state for state, times in Counter(report.states).items() if times > 1}


def main() -> list[tuple[str, str, str]]:
    """Prints the figures; returns them as (benchmark, measure, value) rows for `make bench`'s table."""
    rows: list[tuple[str, str, str]] = []
    logging.disable(logging.WARNING)
    demo = load_item()
    unmonitored = copy.deepcopy(demo)
    unmonitored["stages"]["monitoring"]["run"] = False
    runs = {
        "full run, model from training (9 stages)": (demo, {"answer": "approve"}),
        "full run, monitoring switched off": (unmonitored, {"answer": "approve"}),
        "full run, model from tuning (9 stages)": (only(demo, set(STAGES) - {"training"}), {"answer": "approve"}),
        "training only": (only(demo, {"training"}), {}),
        "every stage off": (only(demo, set()), {}),
    }
    print("State machine: transitions per run (local harness; the endpoint comes up at its first check)")
    print(f"{'run':<44}{'transitions':>12}{'local s':>9}  repeated states")
    with LocalRuns() as local:
        reports = {}
        for name, (item, options) in runs.items():
            report = local.run(item, **options)
            reports[name] = report
            assert report.status == "SUCCEEDED", (name, report.cause)
            print(f"{name:<44}{report.transitions:>12}{report.seconds:>9.2f}  {sorted(repeated(report)) or 'none'}")
            rows.append(("state machine", f"{name}: transitions", str(report.transitions)))
            rows.append(("state machine", f"{name}: local s", f"{report.seconds:.2f}"))

        for name in ("full run, model from training (9 stages)", "full run, monitoring switched off"):
            states = reports[name].states
            watched = states[states.index("Run monitoring?") : states.index("Notify success?")]
            print(f"monitoring stage in '{name}': {len(watched)} transitions ({' -> '.join(watched)})")
            rows.append(("state machine", f"monitoring stage in '{name}': transitions", str(len(watched))))

        off = reports["every stage off"]
        baseline = len([s for s in off.states if s.startswith("Run ") or s == "Serve model?"])
        print(f"\nCost of a disabled stage: {baseline} Choice transitions for {len(STAGES)} stages switched off")
        for stage in STAGES:
            choice = "Serve model?" if stage in ("batch_transform", "deploy") else f"Run {stage.replace('_', ' ')}?"
            shared = " (shared with the other serving stage)" if choice == "Serve model?" else ""
            print(f"  {stage:<16} {off.states.count(choice)} transition{shared}")

        deploy_transitions(local, demo, rows)

        # IAM evaluation: every Task's calls checked against the role (and guardrails); its cost on the
        # full run, runs with and without it interleaved so both see the same machine load.
        seconds: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(5):
            for checked in (True, False):
                local.local.check_permissions = checked
                seconds[checked].append(local.run(demo, answer="approve").seconds)
        local.local.check_permissions = True
        on, off_ = (sorted(seconds[flag])[2] for flag in (True, False))
        print(f"\nIAM evaluation: full run median {on:.2f} s with, {off_:.2f} s without (5 runs each): ", end="")
        print(f"ratio {on / off_:.3f}")
        rows.append(("state machine", "full run with IAM evaluation / without (median of 5)", f"{on / off_:.3f}"))

        stuck = local.run(demo, answer="approve", endpoint="stuck")
        checks = stuck.states.count("Check endpoint")
        in_loop = sum(stuck.states.count(state) for state in LOOP)
        rows.append(("state machine", "transitions per disabled stage", str(off.states.count("Run training?"))))
        rows.append(
            ("state machine", "transitions per further endpoint check", f"{(in_loop - 1) / max(1, checks - 1):.0f}")
        )
        print(
            f"\nEndpoint wait (the one polling loop): {in_loop} transitions for {checks} checks in a run whose "
            f"endpoint never comes up, {(in_loop - 1) / max(1, checks - 1):.0f} per further check; "
            "on AWS a check every 30 s, bounded by the planned max_checks"
        )
    return rows


def _deploy_states() -> set[str]:
    builder = Builder("Failed")
    STAGE["deploy"].states(builder, None)
    return set(asl.states({"States": builder.states}))  # a Map's processor states included


DEPLOY_STATES = _deploy_states()


def deployed(report: RunReport) -> int:
    """Transitions of the deploy stage's own states (its Parallel branch runs beside batch transform's)."""
    return sum(state in DEPLOY_STATES for state in report.states)


# Deploy per mode and strategy: each item deploys its own endpoint twice (created, then updated).
DEPLOYS = {
    "realtime, all at once": {"stages.deploy.strategy": "all_at_once"},
    "realtime, blue/green": {},
    "realtime, canary 20 %": {
        "stages.deploy.strategy": "canary",
        "stages.deploy.shift": {"percent": 20, "wait_seconds": 60},
    },
    "realtime, linear 25 %": {
        "stages.deploy.strategy": "linear",
        "stages.deploy.shift": {"percent": 25, "wait_seconds": 60},
    },
    "realtime, rolling 1 of 4": {
        "stages.deploy.strategy": "rolling",
        "stages.deploy.instance_count": 4,
        "stages.deploy.shift": {"instance_count": 1, "wait_seconds": 60},
    },
    "realtime, autoscaled": {"stages.deploy.autoscaling": {"max": 4}},
    "realtime, 2 scheduled": {
        "stages.deploy.autoscaling": {
            "max": 4,
            "schedule": [
                {"name": "mornings", "schedule": "cron(0 7 ? * MON-FRI *)", "min": 2},
                {"name": "nights", "schedule": "cron(0 20 * * ? *)", "min": 1},
            ],
        }
    },
    "serverless": {
        "stages.deploy.mode": "serverless",
        "stages.deploy.instance_type": None,
        "stages.deploy.instance_count": None,
        "stages.monitoring.run": False,
    },
    "async": {"stages.deploy.mode": "async"},
    "async, scaled from zero": {"stages.deploy.mode": "async", "stages.deploy.autoscaling": {"max": 2}},
}


def deploy_transitions(local: LocalRuns, demo: dict[str, Any], rows: list[tuple[str, str, str]]) -> None:
    print("\nDeploy per mode and strategy: the stage's transitions (locally an endpoint is up at its first check)")
    print(f"{'deploy':<28}{'create':>8}{'update':>8}")
    for n, (name, changes) in enumerate(DEPLOYS.items()):
        item = copy.deepcopy(demo)
        item["stages"]["deploy"]["endpoint_name"] = f"mlops-dev-bench-{n}"
        for path, value in changes.items():
            *parents, last = path.split(".")
            node = item
            for key in parents:
                node = node[key]
            if value is None:
                node.pop(last)
            else:
                node[last] = value
        created, updated = (local.run(item, answer="approve") for _ in range(2))
        assert created.status == updated.status == "SUCCEEDED", (name, created.cause, updated.cause)
        print(f"{name:<28}{deployed(created):>8}{deployed(updated):>8}")
        rows.append(
            (
                "state machine",
                f"deploy {name}: create / update transitions",
                f"{deployed(created)} / {deployed(updated)}",
            )
        )


if __name__ == "__main__":
    main()
