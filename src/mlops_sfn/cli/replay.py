"""`mlops-sfn replay`: the router's dead letters, sent back once their cause is fixed."""

from __future__ import annotations

import argparse

from .common import INVALID, OK, add_target, target


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("replay", help="send the router's dead letters back to it once their cause is fixed")
    parser.add_argument("--queue-url", help="the dead-letter queue (default: the deployment's dead_letter_queue_url)")
    parser.add_argument("--function", help="the router (default: the deployment's router_function_arn)")
    parser.add_argument("--limit", type=int, default=100, help="at most this many messages (default 100)")
    add_target(parser)
    parser.add_argument("--region", help="with --queue-url and --function: default the AWS SDK's")
    parser.add_argument("--endpoint-url", metavar="URL", help="with --queue-url and --function: an AWS endpoint")
    parser.set_defaults(run=replay_dead_letters)


def replay_dead_letters(args: argparse.Namespace) -> int:
    import boto3
    from botocore.config import Config

    from ..operate.replay import replay

    # A synchronous invoke lasts up to the router's timeout (at most 900 s), longer than botocore's 60 s default.
    slow = Config(read_timeout=910)
    if args.queue_url and args.function and args.outputs is None:  # named in full: the AWS SDK's settings
        session = boto3.session.Session(region_name=args.region)
        queue, function = args.queue_url, args.function
        sqs = session.client("sqs", endpoint_url=args.endpoint_url)
        functions = session.client("lambda", endpoint_url=args.endpoint_url, config=slow)
    else:
        deployment = target(args.outputs)
        queue = args.queue_url or deployment.output("dead_letter_queue_url")
        function = args.function or deployment.output("router_function_arn")
        sqs, functions = deployment.client("sqs"), deployment.client("lambda", config=slow)
    result = replay(sqs, functions, queue, function, args.limit)
    return OK if result.still_failing == 0 and result.unreadable == 0 else INVALID
