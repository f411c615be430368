"""`mlops-sfn smoke [--outputs FILE]`: one run of a copy of the demo pipeline on a deployment, followed,
checked (run, package, endpoint, notification) and removed: proof that a deployment works end to end."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..checkout import ROOT
from ..core import bounds
from ..operate import smoke
from .common import INVALID, OK, UsageError, add_target, input_file, problem, target

ARTIFACTS = ROOT / "sagemaker-artifacts" / smoke.PIPELINE
ITEM = ROOT / "dynamodb_items" / f"{smoke.PIPELINE}.json"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    found = commands.add_parser(
        "smoke", help="prove a deployment end to end: one run of a copy of the demo pipeline, checked, then removed"
    )
    found.add_argument("--item", type=input_file, default=ITEM, metavar="FILE", help=f"the item copied ({ITEM})")
    found.add_argument(
        "--artifacts", type=Path, default=ARTIFACTS, metavar="DIR", help=f"the scripts and data (default {ARTIFACTS})"
    )
    found.add_argument("--timeout", type=float, default=60.0, metavar="MINUTES", help="give up after (default 60)")
    found.add_argument(
        "--keep", action="store_true", help="leave what the run made (to look at it), for removal by hand"
    )
    add_target(found)
    found.set_defaults(run=run_smoke)


def run_smoke(args: argparse.Namespace) -> int:
    for given, default, option in ((args.item, ITEM, "--item FILE"), (args.artifacts, ARTIFACTS, "--artifacts DIR")):
        if given == default and not default.exists():
            raise UsageError(f"{option}: without it, `mlops-sfn smoke` runs on a checkout ({default} is not here)")
    try:
        demo = bounds.read_json(args.item)
    except (OSError, ValueError) as error:  # bounds.InputRefused and JSONDecodeError are ValueErrors
        problem(f"mlops-sfn smoke: --item {args.item}: {error}")
        return INVALID
    deployment = target(args.outputs)
    try:
        result = smoke.Smoke(deployment).run(demo, args.artifacts, timeout=args.timeout * 60, keep=args.keep)
    except smoke.SmokeError as error:
        problem(f"mlops-sfn smoke: {error}")
        return INVALID
    for line in smoke.report(result):
        print(line)
    return OK if result.ok else INVALID
