"""`mlops-sfn replay --queue-url URL --function ARN`: the router's dead letters, sent back once fixed."""

from __future__ import annotations

import argparse

from .common import INVALID, OK


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("replay", help="send the router's dead letters back to it once their cause is fixed")
    parser.add_argument(
        "--queue-url", required=True, help="the dead-letter queue (Terraform output dead_letter_queue_url)"
    )
    parser.add_argument("--function", required=True, help="the router (Terraform output router_function_arn)")
    parser.add_argument("--limit", type=int, default=100, help="at most this many messages (default 100)")
    parser.add_argument("--region", help="default: the AWS SDK's")
    parser.add_argument("--endpoint-url", metavar="URL", help="an AWS endpoint, e.g. a local one")
    parser.set_defaults(run=replay_dead_letters)


def replay_dead_letters(args: argparse.Namespace) -> int:
    import boto3
    from botocore.config import Config

    from ..operate.replay import replay

    session = boto3.session.Session(region_name=args.region)
    sqs = session.client("sqs", endpoint_url=args.endpoint_url)
    # A synchronous invoke lasts up to the router's timeout (at most 900 s), longer than botocore's 60 s default.
    functions = session.client("lambda", endpoint_url=args.endpoint_url, config=Config(read_timeout=910))
    result = replay(sqs, functions, args.queue_url, args.function, args.limit)
    return OK if result.still_failing == 0 and result.unreadable == 0 else INVALID
