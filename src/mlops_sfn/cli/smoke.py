"""`mlops-sfn smoke [--outputs FILE]`: one run of a copy of the demo pipeline on a deployment, followed,
checked (run, package, endpoint, notification) and removed: proof that a deployment works end to end."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..operate import smoke
from ..tools.statemachine import ROOT
from .common import INVALID, OK, add_target, problem, target

ARTIFACTS = ROOT / "sagemaker-artifacts" / smoke.PIPELINE


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    found = commands.add_parser(
        "smoke", help="prove a deployment end to end: one run of a copy of the demo pipeline, checked, then removed"
    )
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
    deployment = target(args.outputs)
    try:
        result = smoke.Smoke(deployment).run(args.artifacts, timeout=args.timeout * 60, keep=args.keep)
    except smoke.SmokeError as error:
        problem(f"mlops-sfn smoke: {error}")
        return INVALID
    for line in smoke.report(result):
        print(line)
    return OK if result.ok else INVALID
