"""`mlops-sfn approve | reject TOKEN_OR_EXECUTION`: answer the approval a run waits on."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from ..operate import approval
from .common import INVALID, OK, UsageError, add_target, problem, target


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for verb, meaning in [
        ("approve", "approve the model a run waits on"),
        ("reject", "reject the model a run waits on"),
    ]:
        parser = commands.add_parser(verb, help=meaning)
        parser.add_argument("target", metavar="TOKEN_OR_EXECUTION", help="task token, execution ARN, or execution name")
        parser.add_argument("--comment", help="recorded in the run's results (approve) or as the cause (reject)")
        add_target(parser)
        parser.add_argument(
            "--state-machine",
            metavar="ARN",
            default=os.environ.get("MLOPS_STATE_MACHINE_ARN"),
            help="instead of a deployment: the state machine an execution name belongs to, reached with the AWS"
            " SDK's settings (default: $MLOPS_STATE_MACHINE_ARN)",
        )
        parser.add_argument("--region", help="with --state-machine, or a token or ARN: default the AWS SDK's")
        parser.add_argument("--endpoint-url", metavar="URL", help="with --state-machine: an AWS endpoint")
        parser.set_defaults(run=answer_approval)


def _reach(args: argparse.Namespace) -> tuple[Callable[[], Any], str | None]:
    """(a maker of the Step Functions client, the state machine ARN) of the deployment the answer goes
    to: --state-machine with the SDK's settings when given, else the deployment (--outputs FILE, else
    the local one that is up); a token or an execution ARN needs no deployment, so the SDK's settings
    serve them too."""
    import boto3

    if args.state_machine or args.region or args.endpoint_url:
        region, endpoint = args.region, args.endpoint_url
        return lambda: boto3.client("stepfunctions", region_name=region, endpoint_url=endpoint), args.state_machine
    try:
        deployment = target(args.outputs)
    except UsageError:
        if args.outputs is not None:
            raise
        # A token or an ARN (a name is refused by the caller): an ARN names its region, a token needs the SDK's.
        region = args.target.split(":")[3] if args.target.startswith("arn:") else boto3.session.Session().region_name
        if not region and not approval.is_execution_name(args.target):
            raise UsageError(
                "no deployment found, and the AWS SDK has no region: give --outputs FILE, start the local one"
                " with `mlops-sfn local up`, or give --region"
            ) from None
        return lambda: boto3.client("stepfunctions", region_name=region), None
    return lambda: deployment.client("stepfunctions"), deployment.output("state_machine_arn")


def answer_approval(args: argparse.Namespace) -> int:
    if not args.target.strip():
        raise UsageError("TOKEN_OR_EXECUTION is empty: give a task token, an execution ARN or an execution name")
    client, machine = _reach(args)
    if machine is None and approval.is_execution_name(args.target):
        raise UsageError(
            f"{args.target} is an execution name: give the deployment it ran in (--outputs FILE, or the local one"
            " that is up) or --state-machine ARN, or give the execution's ARN or the task token"
        )
    execution = approval.execution_arn(args.target, machine)
    try:
        token = approval.answer(client(), args.target, args.command == "approve", args.comment, machine)
    except approval.ApprovalError as error:
        problem(f"mlops-sfn {args.command}: {error}")
        return INVALID
    verdict = "approved" if args.command == "approve" else "rejected"
    answered = f"execution {execution.rsplit(':', 1)[1]}" if execution else f"task token {token[:16]}..."
    print(f"{verdict}: {answered}" + (f" ({args.comment})" if args.comment else ""))
    return OK
