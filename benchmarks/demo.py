"""`mlops-sfn local demo [--drift]` benchmark: wall time of each phase and of each stage (targets: under 60 s
on 2 cores for the demo, and under 60 s after `up` for the drift loop).

Prints figures and asserts nothing. Run with `make bench` (or `python benchmarks/demo.py`). It uses
its own folder, so a deployment `make demo` left running is not touched:
  up      moto server start + terraform init/apply into it (the offline toolchain, already installed)
  run     from the first upload to the end of the execution (router, jobs, approval, endpoint)
  down    stopping the server and removing the folder
and, on the same deployment, `mlops-sfn run PIPELINE` (through the router) until its execution exists,
then the drift loop of `local demo --drift` (Demo.drift): drifted traffic to the endpoint, one
monitoring execution, and the run the drift alarm starts, followed to its end.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

from mlops_sfn import cli
from mlops_sfn.local import deployment
from mlops_sfn.local.demo import PIPELINE, Demo
from mlops_sfn.tools import toolchain


def main() -> list[tuple[str, str, str]]:
    """Prints the figures; returns them as (benchmark, measure, value) rows for `make bench`'s table."""
    toolchain.ensure()  # a download on a fresh machine is not what this measures
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / ".mlops-local"
        started = time.monotonic()
        running = deployment.up(home, say=lambda _: None)
        up = time.monotonic() - started
        try:
            demo = Demo(running, say=lambda _: None)
            result = demo.run()
            start_seconds = manual_run(running, Path(scratch))
            drift_started = time.monotonic()
            drift = demo.drift()
            drift_seconds = time.monotonic() - drift_started
        finally:
            stopping = time.monotonic()
            deployment.down(home, say=lambda _: None)
            down = time.monotonic() - stopping
    total = time.monotonic() - started - drift_seconds  # the demo's own figure, as before the drift loop
    print(f"local demo ({result.status}), this machine:")
    print(f"  {'phase':<18} {'seconds':>8}")
    print(f"  {'up (apply)':<18} {up:8.1f}")
    print(f"  {'run':<18} {result.seconds:8.1f}")
    print(f"  {'down':<18} {down:8.1f}")
    print(f"  {'total':<18} {total:8.1f}   (target < 60)")
    print(f"  {'run to start':<18} {start_seconds:8.1f}   (mlops-sfn run: the router invoked, the execution started)")
    print(f"  {'stage':<18} {'seconds':>8}")
    for stage, run in result.stages.items():
        took = f"{run.seconds:8.1f}" if run.seconds is not None else f"{'-':>8}"
        print(f"  {stage:<18} {took}   {run.status}")
    loop = {"deploy (the demo's run)": result.seconds, **drift.seconds}
    print(f"local demo --drift after up ({drift.run.status if drift.run else 'no run started'}):")
    for phase, seconds in loop.items():
        print(f"  {phase:<24} {seconds:8.1f}")
    print(f"  {'total':<24} {sum(loop.values()):8.1f}   (target < 60)")
    rows = [("local demo", "status", result.status)]
    rows += [("local demo --drift", f"{phase}, s", f"{seconds:.1f}") for phase, seconds in loop.items()]
    rows.append(("local demo --drift", "total after up (target < 60), s", f"{sum(loop.values()):.1f}"))
    rows.append(("local demo --drift", "retraining run", drift.run.status if drift.run else "none"))
    rows += [
        ("local demo", f"{phase}, s", f"{seconds:.1f}")
        for phase, seconds in (("up", up), ("run", result.seconds), ("down", down), ("total (target < 60)", total))
    ]
    rows.append(("local demo", "mlops-sfn run to execution started, s", f"{start_seconds:.2f}"))
    rows += [
        ("local demo", f"stage {stage}, s", f"{run.seconds:.1f}")
        for stage, run in result.stages.items()
        if run.seconds is not None
    ]
    return rows


def manual_run(running: deployment.Deployment, folder: Path) -> float:
    """`mlops-sfn run PIPELINE --outputs FILE` as an operator types it: the seconds until it returns,
    when the router has started the execution."""
    outputs = folder / "outputs.json"
    outputs.write_text(json.dumps({name: {"value": value} for name, value in running.outputs.items()}))
    shell = {"AWS_ENDPOINT_URL": running.endpoint, "AWS_CA_BUNDLE": running.cert}
    shell |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    started = time.monotonic()
    with mock.patch.dict(os.environ, shell), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["run", PIPELINE, "--set", "approval.run=false", "--json", "--outputs", str(outputs)])
    seconds = time.monotonic() - started
    if code != 0:
        raise RuntimeError(f"mlops-sfn run exited {code}")
    return seconds


if __name__ == "__main__":
    sys.exit(0 if main()[0][2] == "SUCCEEDED" else 1)
