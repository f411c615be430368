"""`mlops-sfn approve | reject TOKEN_OR_EXECUTION`: answer the approval a run waits on."""

from __future__ import annotations

import argparse
import os

from ..operate import approval
from .common import INVALID, OK, UsageError, problem


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for verb, meaning in [
        ("approve", "approve the model a run waits on"),
        ("reject", "reject the model a run waits on"),
    ]:
        parser = commands.add_parser(verb, help=meaning)
        parser.add_argument("target", metavar="TOKEN_OR_EXECUTION", help="task token, execution ARN, or execution name")
        parser.add_argument("--comment", help="recorded in the run's results (approve) or as the cause (reject)")
        parser.add_argument(
            "--state-machine",
            metavar="ARN",
            default=os.environ.get("MLOPS_STATE_MACHINE_ARN"),
            help="needed for an execution name (default: $MLOPS_STATE_MACHINE_ARN)",
        )
        parser.add_argument("--region", help="default: the AWS SDK's")
        parser.add_argument("--endpoint-url", metavar="URL", help="an AWS endpoint, e.g. a local one")
        parser.set_defaults(run=answer_approval)


def answer_approval(args: argparse.Namespace) -> int:
    import boto3

    if not args.target.strip():
        raise UsageError("TOKEN_OR_EXECUTION is empty: give a task token, an execution ARN or an execution name")

    sfn = boto3.client("stepfunctions", region_name=args.region, endpoint_url=args.endpoint_url)
    try:
        token = approval.answer(sfn, args.target, args.command == "approve", args.comment, args.state_machine)
    except approval.ApprovalError as error:
        problem(f"mlops-sfn {args.command}: {error}")
        return INVALID
    print(f"{'approved' if args.command == 'approve' else 'rejected'}: answered task token {token[:16]}...")
    return OK
