"""Cost benchmark: the demo item's estimate before it runs, and what `status` reports it cost after a
run on the local stack (real scripts), from the seconds SageMaker recorded.

Prints figures and asserts nothing. The estimate is a bound: each job's instances for its whole
`MaxRuntimeInSeconds`, so for the demo's jobs, which take seconds here, it is hours above the bill.
To compare the two computations rather than the bound with a short run, the item is planned once more
with each job's time limit set to the seconds its job took (at least 1, SageMaker's minimum), and
that estimate set beside the bill for the training and processing stages: they should agree within
25 % (the bill counts fractions of a second, a limit whole seconds).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlops_sfn import cli  # noqa: E402
from mlops_sfn.core.plan import SAMPLE_TRIGGER, plan_run  # noqa: E402
from mlops_sfn.core.settings import EXAMPLE_SETTINGS  # noqa: E402
from mlops_sfn.local import deployment  # noqa: E402
from mlops_sfn.local.demo import PIPELINE, Demo  # noqa: E402
from mlops_sfn.tools import toolchain  # noqa: E402
from tests.conftest import load_item  # noqa: E402

COMPARED = ("preprocessing", "training", "evaluation")  # processing and training jobs the item bounds


def main() -> list[tuple[str, str, str]]:
    toolchain.ensure()
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / ".mlops-local"
        running = deployment.up(home, say=lambda _: None)
        try:
            result = Demo(running, say=lambda _: None).run()
            cost = status_cost(running, Path(scratch), result.execution_name)
        finally:
            deployment.down(home, say=lambda _: None)
    planned = result.execution_input
    bound = planned["estimate"]
    print(f"demo run {result.execution_name}: {result.status}")
    print(f"estimate before the run (a bound, MaxRuntimeInSeconds): USD {bound['usd']:.2f}")
    print(f"cost status reports (what SageMaker recorded):           USD {cost['usd']:.6f}")
    seconds = billed_seconds(cost)
    again = plan_run(limits_at(seconds), SAMPLE_TRIGGER, EXAMPLE_SETTINGS).estimate
    print(f"  {'stage':<14} {'billed s':>9} {'estimate USD':>13} {'status USD':>11} {'ratio':>6}")
    rows = [
        ("cost", "demo estimate (bound), USD", f"{bound['usd']:.2f}"),
        ("cost", "demo cost status reports, USD", f"{cost['usd']:.6f}"),
    ]
    for stage in COMPARED:
        billed, estimated = cost["stages"].get(stage, 0.0), again["stages"].get(stage, 0.0)
        ratio = estimated / billed if billed else math.nan
        print(f"  {stage:<14} {seconds.get(stage, 0):>9.1f} {estimated:>13.6f} {billed:>11.6f} {ratio:>6.2f}")
        rows.append(("cost", f"{stage}: estimate at its job's seconds / status", f"{ratio:.2f}"))
    return rows


def status_cost(running: deployment.Deployment, folder: Path, execution: str) -> dict[str, Any]:
    """`mlops-sfn status EXECUTION --json` as an operator runs it: its `cost`."""
    outputs = folder / "outputs.json"
    outputs.write_text(json.dumps({name: {"value": value} for name, value in running.outputs.items()}))
    shell = {"AWS_ENDPOINT_URL": running.endpoint, "AWS_CA_BUNDLE": running.cert}
    shell |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    printed = io.StringIO()
    with mock.patch.dict(os.environ, shell), contextlib.redirect_stdout(printed):
        cli.main(["status", execution, "--json", "--outputs", str(outputs)])
    found: dict[str, Any] = json.loads(printed.getvalue())["cost"]
    return found


def billed_seconds(cost: dict[str, Any]) -> dict[str, float]:
    """Each stage's billed seconds, read back from status's lines ("(1 x ml.m5.large for 3.2 s, job)")."""
    found: dict[str, float] = {}
    for line in cost["lines"]:
        stage, _, rest = line.partition(": ")
        found[stage] = found.get(stage, 0.0) + float(rest.split(" for ", 1)[1].split(" s,", 1)[0])
    return found


def limits_at(seconds: dict[str, float]) -> dict[str, Any]:
    """The demo item with each compared job's MaxRuntimeInSeconds at the seconds its job took."""
    item = load_item(PIPELINE)
    for stage in COMPARED:
        request = item["stages"][stage].setdefault("request", {})
        request.setdefault("StoppingCondition", {})["MaxRuntimeInSeconds"] = max(1, math.ceil(seconds.get(stage, 1)))
    return item


if __name__ == "__main__":
    main()
