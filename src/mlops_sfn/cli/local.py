"""`mlops-sfn local run | up | demo | down`: the framework on this machine, no AWS account needed."""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from typing import Any

from ..core.fanout import MAX_SEGMENTS, in_upload, made_up_segments, segments_line
from ..core.problems import InvalidItem
from ..core.sagemaker_api import failure_reason
from ..core.stages import STAGE
from ..local.sagemaker import ENDPOINT_OUTCOMES, EXISTING_ENDPOINT, FAILABLE, SPOT_CAPACITY
from .common import FOLDER, INVALID, OK, UsageError, input_file, meanings, print_problems, problem, read_item


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    local = commands.add_parser("local", help="run the framework on this machine (no AWS account needed)")
    local_commands = local.add_subparsers(dest="local_command", required=True, metavar="COMMAND")
    run = local_commands.add_parser(
        "run", help="execute ITEM's pipeline in the real state machine, on a local AWS with simulated SageMaker jobs"
    )
    run.add_argument("item", type=input_file, metavar="ITEM")
    run.add_argument(
        "--fail", action="append", default=[], choices=FAILABLE, metavar="STAGE", help="make STAGE fail (repeatable)"
    )
    run.add_argument(
        "--fail-segment",
        action="append",
        default=[],
        metavar="ID",
        help="make segment ID's first job fail (an item with fanout; repeatable)",
    )
    run.add_argument(
        "--segments",
        type=_segment_count,
        metavar="N",
        help=f"replace the item's segments with N made-up ones (1-{MAX_SEGMENTS}), to try a run at that scale",
    )
    run.add_argument(
        "--metric",
        type=float,
        metavar="VALUE",
        help="the metric's value in the evaluation report (what a checkpoint on it reads)",
    )
    run.add_argument(
        "--throttle",
        action="append",
        default=[],
        metavar="API",
        help="throttle the first call of API (e.g. sagemaker:describeEndpoint, sagemaker:createModelPackage, "
        "lambda:invoke), as AWS would through that integration (repeatable)",
    )
    _guardrail_options(run, "the run")
    answer = run.add_mutually_exclusive_group()
    answer.add_argument("--approve", dest="answer", action="store_const", const="approve", help="approve the model")
    answer.add_argument("--reject", dest="answer", action="store_const", const="reject", help="reject the model")
    run.add_argument(
        "--endpoint",
        choices=list(ENDPOINT_OUTCOMES),
        default="in_service",
        help=meanings("what the endpoint does after create/update", ENDPOINT_OUTCOMES),
    )
    run.add_argument(
        "--existing-endpoint",
        choices=list(EXISTING_ENDPOINT),
        default="none",
        help=meanings("the item's endpoint before the run", EXISTING_ENDPOINT),
    )
    spot = run.add_mutually_exclusive_group()
    spot.add_argument(
        "--no-spot-capacity",
        dest="spot",
        action="store_const",
        const="none",
        help=f"{SPOT_CAPACITY['none']} (an item with stages.training.spot)",
    )
    spot.add_argument(
        "--spot-interruption",
        dest="spot",
        action="store_const",
        const="interrupted",
        help=f"{SPOT_CAPACITY['interrupted']} (an item with stages.training.spot)",
    )
    run.add_argument("--json", action="store_true", help="print the report as JSON (with each stage's outcome)")
    run.set_defaults(run=local_run, spot="available")

    # These three work on a checkout: they apply the repository's Terraform.
    up = local_commands.add_parser(
        "up", help="start a local AWS and apply the framework's Terraform into it (state in .mlops-local/)"
    )
    _guardrail_options(up, "every run on the local stack")
    up.set_defaults(run=local_stack, checkout=True)
    demo = local_commands.add_parser(
        "demo",
        help="upload sagemaker-artifacts/ to the local deployment (up first if needed) and follow the real run",
    )
    demo.add_argument("--pipeline", default=None, help="the item to run (default: the house-price demo)")
    demo.add_argument(
        "--reject",
        dest="demo_answer",
        action="store_const",
        const="reject",
        default="approve",
        help="reject the model instead of approving it",
    )
    demo.add_argument(
        "--drift",
        action="store_true",
        help="then send drifted traffic to the endpoint, run its monitoring schedule, and follow the run the "
        "drift alarm starts",
    )
    demo.add_argument(
        "--promote",
        action="store_true",
        help="train and register in development, then serve the approved package in a production account of "
        "the same local AWS (with --reject: show that nothing is promoted)",
    )
    demo.set_defaults(run=local_stack, checkout=True, drift=False, promote=False)
    down = local_commands.add_parser("down", help="stop the local AWS and remove .mlops-local/")
    down.set_defaults(run=local_stack, checkout=True)
    outputs = local_commands.add_parser(
        "outputs",
        help="write the local deployment's outputs as `terraform output -json` does, for any command's --outputs",
    )
    outputs.add_argument(
        "file", type=Path, nargs="?", default=Path("local-outputs.json"), help="default: local-outputs.json"
    )
    outputs.add_argument(
        "--account",
        default=None,
        metavar="ACCOUNT",
        help="the deployment in this account of the local AWS (`local demo --promote` makes production's); "
        "prints how to reach that account",
    )
    outputs.set_defaults(run=local_outputs)


def _guardrail_options(parser: argparse.ArgumentParser, whom: str) -> None:
    parser.add_argument(
        "--deny",
        action="append",
        default=[],
        metavar="ACTION",
        help=f"deny ACTION (e.g. sagemaker:CreateEndpoint, sagemaker:Create*) to {whom} whatever its role allows, "
        "as an organisation's service control policy would (repeatable)",
    )
    parser.add_argument(
        "--scp",
        type=input_file,
        metavar="FILE",
        help="a policy document (JSON) every call must also be allowed by, as a service control policy or a "
        "permissions boundary: an explicit Deny wins, and only what it allows is allowed",
    )


def _needs_local_runtime(error: ModuleNotFoundError) -> UsageError:
    return UsageError(f"the local runtime needs {error.name}: pip install 'mlops-sfn[local]'")


def _actions(denied: list[str]) -> list[str]:
    wrong = [action for action in denied if not re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9*?]+", action)]
    if wrong:
        raise UsageError(
            f"--deny {', '.join(wrong)}: name an IAM action as service:Action, e.g. sagemaker:CreateEndpoint"
        )
    return denied


def _policy_file(path: Path | None) -> dict[str, Any] | None:
    """The --scp document, refused with what is wrong with it."""
    if path is None:
        return None
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(
            f"--scp {path}: cannot read it ({error.strerror if isinstance(error, OSError) else error})"
        ) from None
    except ValueError as error:
        raise UsageError(f"--scp {path}: not JSON ({error})") from None
    statements = document.get("Statement") if isinstance(document, dict) else None
    if not isinstance(statements, (list, dict)):
        raise UsageError(f'--scp {path}: not a policy document: it needs a "Statement" list, as IAM policies have')
    return dict(document)


def local_run(args: argparse.Namespace) -> int:
    item = read_item(args.item)
    if item is None:
        return INVALID
    try:
        from ..local.harness import LocalRuns
    except ModuleNotFoundError as error:
        raise _needs_local_runtime(error) from error

    spot = {"none": "--no-spot-capacity", "interrupted": "--spot-interruption"}.get(args.spot)
    if spot and not item.get("stages", {}).get("training", {}).get("spot"):
        raise UsageError(f"{spot}: {args.item} trains on demand: set stages.training.spot to try spot capacity")
    if args.segments is not None:
        if "fanout" not in item:
            raise UsageError(f"--segments: {args.item} has no fanout block, so no segments to replace")
        item = made_up_segments(item, args.segments)
    elif in_upload(item):
        raise UsageError(
            f"{args.item} lists its segments in a file of each upload (fanout.segments_file), and local run has no"
            " upload: give --segments N to run N made-up ones, or run it on the local stack (local demo)"
        )
    try:
        with LocalRuns() as local:
            report = local.run(
                item,
                fail=args.fail,
                fail_segments=args.fail_segment,
                metric=args.metric,
                answer=args.answer,
                endpoint=args.endpoint,
                throttle=args.throttle,
                existing_endpoint=args.existing_endpoint,
                deny=_actions(args.deny),
                scp=_policy_file(args.scp),
                spot=args.spot,
            )
    except InvalidItem as error:
        print_problems(args.item, error.problems)
        return INVALID
    except ValueError as error:
        raise UsageError(str(error)) from error
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(
            f"{report.execution_name}: {report.status} in {report.seconds:.1f} s, "
            f"{report.transitions} state transitions"
        )
        if report.error:
            reason = failure_reason(report.cause)
            more = " (the job's description is in --json)" if reason != report.cause else ""
            print(f"error: {report.error}\ncause: {reason}{more}")
        print("stages: " + ", ".join(f"{stage} {outcome}" for stage, outcome in report.stages.items()))
        if report.results.get("training", {}).get("on_demand"):  # the spot job's fallback
            print("training: " + STAGE["training"].report(report.results["training"], {}, str))
        if report.segments is not None:
            print(segments_line(report.segments))
        print("states: " + " -> ".join(report.states))
        for note in report.notifications:
            print(f"notification [{note['topic']}] {note['subject']}: {json.dumps(note['message'])}")
        if "Ask for approval" in report.states and args.answer is None:
            print("nobody answered the approval request: pass --approve or --reject")
    return OK if report.status == "SUCCEEDED" else INVALID


def _segment_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_SEGMENTS:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of segments from 1 to {MAX_SEGMENTS}")
    return count


def local_stack(args: argparse.Namespace) -> int:
    """`mlops-sfn local up | demo | down`."""
    try:
        from ..local import deployment
        from ..local.demo import PIPELINE, Demo, DemoError, drift_report, report
    except ModuleNotFoundError as error:
        raise _needs_local_runtime(error) from error
    if args.local_command == "down":
        deployment.down()
        return OK
    if args.local_command == "demo" and args.drift and args.promote:
        raise UsageError("--drift and --promote are two demos: run one, then the other")
    guardrails = None  # a running stack keeps its own; `up` without options asks for none
    if args.local_command == "up" and (args.deny or args.scp):
        from ..local.task_permissions import guardrail

        guardrails = guardrail(_actions(args.deny), _policy_file(args.scp))
    try:
        running = deployment.up(guardrails=guardrails)
        if args.local_command == "up":
            print("# to use the AWS CLI or an AWS SDK against it:")
            print("export " + " ".join(f"{name}={value}" for name, value in running.reach().items()))
            return OK
        if args.promote:
            return _promotion_demo(running, args)
        demo = Demo(running)
        started = time.monotonic()
        result = demo.run(args.pipeline or PIPELINE, answer=args.demo_answer)
        for line in report(result, demo):
            print(line)
        if args.drift and result.status == "SUCCEEDED":
            deployed = time.monotonic() - started
            drift = demo.drift(args.pipeline or PIPELINE)
            drift.seconds = {"deploy": round(deployed, 1), **drift.seconds}
            for line in drift_report(drift):
                print(line)
            ok = drift.run is not None and drift.run.status == "SUCCEEDED"
            print("the local AWS keeps running: mlops-sfn local down removes it")
            return OK if ok else INVALID
    except (deployment.DeploymentError, DemoError) as error:
        problem(f"mlops-sfn local {args.local_command}: {error}")
        return INVALID
    print("the local AWS keeps running: mlops-sfn local up prints how to reach it, mlops-sfn local down removes it")
    return OK if result.status == "SUCCEEDED" else INVALID


def _promotion_demo(running: Any, args: argparse.Namespace) -> int:
    """`local demo --promote [--reject]`: development trains and registers, production serves (promotion.py)."""
    from ..local import promotion
    from ..local.demo import PIPELINE, Demo, report

    development, production = promotion.prepare(running)
    demo = Demo(development)
    trained, promoted = promotion.Promotion(demo, production).run(args.pipeline or PIPELINE, args.demo_answer)
    for line in [*report(trained, demo), *promotion.report(promoted)]:
        print(line)
    print(
        f"the local AWS keeps running, production in account {promotion.PRODUCTION} beside development:"
        f" mlops-sfn local outputs --account {promotion.PRODUCTION} prod-outputs.json writes production's outputs"
        " and prints how to reach it; mlops-sfn local down removes both"
    )
    if args.demo_answer == "approve":
        return OK if promotion.promoted(promoted) else INVALID
    return OK if promotion.not_promoted(promoted) else INVALID


def local_outputs(args: argparse.Namespace) -> int:
    """`mlops-sfn local outputs [FILE]`: the running local deployment's outputs, as a file --outputs reads."""
    try:
        from ..local import deployment
    except ModuleNotFoundError as error:
        raise _needs_local_runtime(error) from error
    running = deployment.load(account=args.account) if args.account else deployment.load()
    if running is None:
        if args.account and deployment.load():
            problem(
                f"mlops-sfn local outputs: nothing is deployed in account {args.account} of the local AWS:"
                " mlops-sfn local demo --promote deploys production beside development"
            )
        else:
            problem("mlops-sfn local outputs: no local deployment is up: mlops-sfn local up starts one")
        return INVALID
    if args.file.is_dir():
        raise UsageError(f"{args.file}: {FOLDER}: name the file to write, e.g. {args.file / 'local-outputs.json'}")
    document = {name: {"sensitive": False, "value": value} for name, value in sorted(running.outputs.items())}
    try:
        args.file.write_text(json.dumps(document, indent=2) + "\n")
    except OSError as error:
        raise UsageError(f"{args.file}: cannot write: {error.strerror or error}") from None
    if args.account:
        print(f"wrote {args.file}; with this environment, any command takes --outputs {args.file}:")
        print("export " + " ".join(f"{name}={value}" for name, value in running.reach().items()))
        return OK
    print(
        f"wrote {args.file}; with the export line `mlops-sfn local up` printed, any command takes --outputs {args.file}"
    )
    return OK
