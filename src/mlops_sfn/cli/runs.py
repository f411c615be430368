"""`mlops-sfn run | runs | status`: start a pipeline's run through the deployed router, list runs,
show one stage by stage. The same code acts on AWS and on the local deployment (common.target)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..core import dynamodb_json, fanout, names, prices
from ..core.names import EXECUTION_NAME
from ..core.problems import InvalidItem
from ..core.sagemaker_api import failure_reason
from ..core.stages import CHECKPOINTS, STAGES
from ..core.triggers import SOURCES
from ..operate import approval, bill, logs, preview, rerun, runs
from .common import (
    FOLDER,
    INTERRUPTED,
    INVALID,
    OK,
    Target,
    UsageError,
    add_sets,
    add_target,
    overrides,
    problem,
    target,
)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser("run", help="start a run of PIPELINE through the deployed router (validated like any)")
    run.add_argument("pipeline", metavar="PIPELINE", help="the item's consumption_pipeline_name")
    add_sets(run, "this run")
    run.add_argument(
        "--over-budget",
        action="store_true",
        help="start it even if its estimate is above the item's budget_usd (the run's trigger records it)",
    )
    _add_wait(run)
    add_target(run)
    run.set_defaults(run=start_run)

    listing = commands.add_parser("runs", help="the recent runs (of PIPELINE), newest first")
    listing.add_argument("pipeline", nargs="?", metavar="PIPELINE")
    listing.add_argument("--status", choices=runs.STATUSES, help="only runs with this status")
    listing.add_argument("--limit", type=int, default=20, metavar="N", help="at most N runs (default 20)")
    listing.add_argument("--json", action="store_true")
    listing.add_argument(
        "--cost", action="store_true", help="what each run cost, from what SageMaker recorded (a few calls a run)"
    )
    add_target(listing)
    listing.set_defaults(run=list_runs)

    rerun = commands.add_parser(
        "rerun", help="run EXECUTION again from STAGE, reusing what its earlier stages made (no retraining)"
    )
    rerun.add_argument("execution", metavar="EXECUTION", help="execution name or ARN")
    again = rerun.add_mutually_exclusive_group(required=True)
    again.add_argument("--from", dest="from_stage", choices=STAGES, metavar="STAGE")
    again.add_argument(
        "--failed-segments",
        action="store_true",
        help="a fanned-out run: run again only the segments that failed (or never ran), the others not",
    )
    add_sets(rerun, "this rerun, over the earlier run's own (which it keeps)")
    rerun.add_argument(
        "--accept-changed-upload",
        action="store_true",
        help="read the earlier run's upload as it is now, though files changed since its manifest was"
        " checked (a script fixed in place, say); without it such a rerun is refused, naming them",
    )
    _add_wait(rerun)
    add_target(rerun)
    rerun.set_defaults(run=rerun_from)

    redrive = commands.add_parser(
        "redrive", help="Step Functions' redrive of a stopped or failed run, where it can work (else: rerun)"
    )
    redrive.add_argument("execution", metavar="EXECUTION", help="execution name or ARN")
    _add_wait(redrive)
    add_target(redrive)
    redrive.set_defaults(run=redrive_run)

    status = commands.add_parser("status", help="one run, stage by stage: outcome, time, outputs, failure")
    status.add_argument("execution", metavar="EXECUTION", help="execution name or ARN")
    status.add_argument("--json", action="store_true")
    status.add_argument("--graph", type=Path, metavar="FILE", help="write the executed graph (Mermaid) to FILE")
    add_target(status)
    status.set_defaults(run=show_status)


def _add_wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", action="store_true", help="follow the run stage by stage; exit 0 only if it succeeds")
    parser.add_argument("--timeout", type=float, default=240, metavar="MINUTES", help="stop waiting after (240)")
    parser.add_argument("--json", action="store_true", help="print the run (and, with --wait, its end) as JSON")


def start_run(args: argparse.Namespace) -> int:
    changes = overrides(args.sets)  # a malformed --set is a usage error before anything is asked of AWS
    deployment = target(args.outputs)
    event: dict[str, Any] = {"consumption_pipeline_name": args.pipeline}
    if changes:
        event["overrides"] = changes
    if args.over_budget:
        event["over_budget"] = True
    started = time.monotonic()
    answer = deployment.client("lambda").invoke(
        FunctionName=deployment.output("router_function_arn"), Payload=json.dumps(event).encode()
    )
    payload = json.loads(answer["Payload"].read() or b"{}")
    if answer.get("FunctionError"):
        # The router refuses an unknown pipeline or an invalid item (RejectedEvent), naming the field.
        problem(f"mlops-sfn run: the router refused the run: {payload.get('errorMessage', payload)}")
        return INVALID
    if not payload.get("executions"):
        problem(
            f"mlops-sfn run: the router started nothing for {args.pipeline} ({payload}): the item is disabled"
            " (enabled: false) or the same run exists; its log says which"
        )
        return INVALID
    name = payload["executions"][0]
    arn = names.execution_arn(deployment.output("state_machine_arn"), name)
    if not args.wait:
        follow = "" if deployment.local else f"\n  {runs.console_url(arn)}"
        print(json.dumps({"name": name, "arn": arn}) if args.json else f"started {name}{follow}")
        return OK
    if not args.json:
        print(f"started {name} ({time.monotonic() - started:.1f} s); following it")
    return _wait(deployment, arn, args)


def _wait(deployment: Target, arn: str, args: argparse.Namespace, since: int = 0) -> int:
    """Follow a started run to its end; exit 0 only when it succeeded."""
    sfn = deployment.client("stepfunctions")
    say = (lambda line: None) if args.json else print
    deadline = time.monotonic() + args.timeout * 60
    name = arn.rsplit(":", 1)[1]
    reach = outputs_option(args.outputs)
    try:
        described, events = runs.follow(sfn, arn, say, deadline, _approval_notice(say, args.outputs), since=since)
    except runs.RunError as error:
        problem(f"mlops-sfn {args.command}: {error}: mlops-sfn status {name}{reach}")
        return INVALID
    except KeyboardInterrupt:  # the run is Step Functions', not this process's: it goes on
        problem(f"mlops-sfn {args.command}: stopped following {name}; the run goes on: mlops-sfn status {name}{reach}")
        return INTERRUPTED
    run = runs.from_description(described)
    logs_client = deployment.client("logs")
    sagemaker = deployment.client("sagemaker")
    _report(sfn, run, args.json, None, events, not deployment.local, logs_client, reach, sagemaker=sagemaker)
    return OK if run.status == "SUCCEEDED" else INVALID


def redrive_run(args: argparse.Namespace) -> int:
    deployment = target(args.outputs)
    sfn = deployment.client("stepfunctions")
    earlier = _named_run(deployment, sfn, args)
    if earlier is None:
        return INVALID
    arn = earlier.arn
    events = runs.history(sfn, arn)
    refused = rerun.why_not_redrive(earlier, events, runs.definition(sfn, arn))
    if refused:
        problem(f"mlops-sfn redrive: {refused}")
        return INVALID
    try:
        sfn.redrive_execution(executionArn=arn)
    except sfn.exceptions.ExecutionNotRedrivable as error:  # e.g. past the 14 days AWS allows
        problem(f"mlops-sfn redrive: {earlier.name}: {error.response['Error']['Message']}")
        return INVALID
    if not args.wait:
        print(json.dumps({"name": earlier.name, "arn": arn}) if args.json else f"redriven {earlier.name}")
        return OK
    if not args.json:
        print(f"redriven {earlier.name}; following it")
    return _wait(deployment, arn, args, since=len(events))


def rerun_from(args: argparse.Namespace) -> int:
    changes = overrides(args.sets)  # a malformed --set is a usage error before anything is asked of AWS
    deployment = target(args.outputs)
    sfn = deployment.client("stepfunctions")
    earlier = _named_run(deployment, sfn, args)
    if earlier is None:
        return INVALID
    arn = earlier.arn
    stored = deployment.client("dynamodb").get_item(
        TableName=deployment.output("table_name"), Key={"consumption_pipeline_name": {"S": str(earlier.pipeline)}}
    )
    if "Item" not in stored:
        problem(f"mlops-sfn rerun: the pipeline {earlier.pipeline} is no longer in the table")
        return INVALID
    machine = deployment.output("state_machine_arn")

    def taken(name: str) -> bool:
        try:
            sfn.describe_execution(executionArn=names.execution_arn(machine, name))
        except sfn.exceptions.ExecutionDoesNotExist:
            return False
        return True

    from_stage, segments = args.from_stage, None
    try:
        if args.failed_segments:
            from_stage, segments = _failed_segments(deployment, earlier)
        planned = rerun.plan_rerun(
            earlier,
            runs.history(sfn, arn),
            runs.definition(sfn, arn),
            dynamodb_json.from_typed(stored["Item"]),
            deployment.settings(),
            from_stage,
            taken,
            changes,
            segments,
            deployment.client("s3"),
        )
    except rerun.RerunRefused as refused:
        problem(f"mlops-sfn rerun: {refused}")
        return INVALID
    gone = rerun.missing_outputs(planned, deployment.client("s3"), deployment.client("sagemaker"))
    if gone:
        problem(f"mlops-sfn rerun: what {earlier.name} made is gone, rerun from an earlier stage: {'; '.join(gone)}")
        return INVALID
    unverified = rerun.upload_changed(planned, dynamodb_json.from_typed(stored["Item"]), deployment.client("s3"))
    if unverified and not args.accept_changed_upload:
        problem(
            f"mlops-sfn rerun: the upload {earlier.name} read changed since its manifest was checked ({unverified})."
            " Rerun with --accept-changed-upload to read it as it is now (a script fixed in place, say), or start"
            " a run from a new upload"
        )
        return INVALID
    if unverified:
        print(f"reading the upload as it is now, as asked: {unverified}", file=sys.stderr)
    if planned.segment_inputs:  # as the router does: segments at once within SageMaker's quotas
        quotas = fanout.read_quotas(deployment.client("service-quotas"))
        try:
            lowered = fanout.within_quotas(planned.execution_input, planned.segment_inputs, quotas)
        except InvalidItem as error:
            problem(f"mlops-sfn rerun: {error.problems[0].path}: {error.problems[0].message}")
            return INVALID
        if lowered:
            print(lowered, file=sys.stderr)
    fanout.write(deployment.client("s3"), planned.execution_input, planned.segment_inputs)  # its Map reads them
    started = sfn.start_execution(
        stateMachineArn=machine, name=planned.name, input=json.dumps(planned.execution_input)
    )["executionArn"]
    again = [segment["segment"] for segment in planned.segment_inputs] if segments is not None else None
    if args.json and not args.wait:
        print(
            json.dumps(
                {"name": planned.name, "arn": started, "reused": list(planned.reused)}
                | ({"segments": again} if again is not None else {})
            )
        )
        return OK
    if not args.json:
        print(f"started {planned.name}, reusing {', '.join(planned.reused) or 'nothing'} from {earlier.name}")
        if again is not None:
            print(f"  running again the segments that did not succeed in {earlier.name}: {', '.join(again)}")
        kept = _paths(earlier.execution_input.get("trigger", {}).get("overrides") or {})
        changed = _paths(changes)
        if kept:  # paths only: an override's value may be anything (it is kept out of logs too)
            print(f"  keeping {earlier.name}'s overrides: {', '.join(kept)}")
        if changed:
            print(f"  with this rerun's: {', '.join(changed)}")
    return _wait(deployment, started, args) if args.wait else OK


def _failed_segments(deployment: Target, earlier: runs.Run) -> tuple[str, list[str]]:
    """Where a rerun of `earlier`'s failed segments starts (its first stage per segment), and which."""
    config = earlier.execution_input.get("fanout")
    if not config:
        raise rerun.RerunRefused(f"--failed-segments: {earlier.name} did not fan out (it has no segments)")
    if earlier.status == "RUNNING":
        raise rerun.RerunRefused(f"{earlier.name} is still running: rerun its failed segments once it ends")
    outcome = fanout.outcome(deployment.client("s3"), earlier.execution_input)
    if outcome is None:
        raise rerun.RerunRefused(
            f"--failed-segments: {earlier.name} wrote no outcome of its segments (its Map never ended):"
            f" rerun it --from {config['stages'][0]}"
        )
    failed = [failure["segment"] for failure in outcome["failed"]] + outcome["not_run"]
    if not failed:
        raise rerun.RerunRefused(f"--failed-segments: every segment of {earlier.name} succeeded")
    return config["stages"][0], failed


def _paths(changes: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted paths an overrides document sets."""
    found: list[str] = []
    for key, value in changes.items():
        path = f"{prefix}{key}"
        found += _paths(value, path + ".") if isinstance(value, dict) and value else [path]
    return found


def outputs_option(outputs: Path | None) -> str:
    """` --outputs FILE` as a printed command needs it to reach the same deployment ("" for the local one)."""
    return f" --outputs {shlex.quote(str(outputs))}" if outputs is not None else ""


def _approval_notice(say: Any, outputs: Path | None) -> Any:
    """Tell once that the run waits for a person, and the command that answers, as it works here."""
    told: list[bool] = []
    reach = outputs_option(outputs)

    def notice(described: dict[str, Any], events: list[dict[str, Any]]) -> None:
        if not told and approval.requested_token(events):
            told.append(True)
            say(f"  waiting for approval: mlops-sfn approve {described['name']}{reach} (or reject)")

    return notice


def list_runs(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError("--limit: expected a number of runs >= 1")
    deployment = target(args.outputs)
    if args.pipeline and "Item" not in deployment.client("dynamodb").get_item(
        TableName=deployment.output("table_name"),
        Key={"consumption_pipeline_name": {"S": args.pipeline}},
        ProjectionExpression="consumption_pipeline_name",
    ):
        problem(f"mlops-sfn runs: no pipeline {args.pipeline} in {deployment.output('table_name')}")
        return INVALID
    sfn = deployment.client("stepfunctions")
    found = runs.recent(sfn, deployment.output("state_machine_arn"), args.pipeline, args.status, args.limit)
    s3 = deployment.client("s3") if any("fanout" in run.execution_input for run in found) else None
    segments = {run.name: fanout.outcome(s3, run.execution_input) for run in found if "fanout" in run.execution_input}
    sagemaker = deployment.client("sagemaker") if args.cost else None
    costs = {run.name: _cost(sagemaker, run, s3) for run in found} if sagemaker is not None else {}
    if args.json:
        listed = [
            run.as_dict()
            | ({"segments": segments[run.name]} if run.name in segments else {})
            | ({"cost": costs[run.name]} if run.name in costs else {})
            for run in found
        ]
        print(json.dumps(listed, indent=2))
        return OK
    if not found:
        print("no runs" + (f" of {args.pipeline}" if args.pipeline else ""))
        return OK
    cost_header = f"{'cost (USD)':>11}  " if costs else ""
    kind = max(len(source) for source in SOURCES)  # the widest trigger's name: model_package
    print(f"{'started':<19}  {'status':<9} {'took':>9}  {cost_header}{'trigger':<{kind}} {'execution':<48}  outcome")
    for run in found:
        took = f"{run.seconds:7.0f} s" if run.seconds is not None else "running"
        why = "; ".join(run.checks.values())
        if run.failed_stage:
            why = f"{run.failed_stage}: {failure_reason(run.cause, 80)}"
        counted = segments.get(run.name)
        if counted:
            why = f"segments: {len(counted['succeeded'])} of {counted['total']} succeeded; {why}".rstrip("; ")
        if run.rerun_of:
            why = f"(rerun of {run.rerun_of}) {why}".rstrip()
        started = f"{run.started:%Y-%m-%d %H:%M:%S}"
        cost = costs.get(run.name)
        billed = "" if cost is None else f"{cost['usd']:>11.4f}  " if "usd" in cost else f"{'unread':>11}  "
        trigger = run.trigger or "?"
        print(f"{started}  {run.status:<9} {took:>9}  {billed}{trigger:<{kind}} {run.name:<48}  {why}".rstrip())
    return OK


def show_status(args: argparse.Namespace) -> int:
    graph: Path | None = args.graph
    if graph is not None and (graph.is_dir() or not graph.parent.is_dir()):
        where = f"{FOLDER}: name the file to write" if graph.is_dir() else f"its folder {graph.parent} does not exist"
        raise UsageError(f"--graph {graph}: {where}")
    deployment = target(args.outputs)
    sfn = deployment.client("stepfunctions")
    run = _named_run(deployment, sfn, args)
    if run is None:
        return INVALID
    try:
        _report(
            sfn,
            run,
            args.json,
            graph,
            console=not deployment.local,
            logs_client=deployment.client("logs"),
            s3=deployment.client("s3") if "fanout" in run.execution_input else None,
            reach=outputs_option(args.outputs),
            sagemaker=deployment.client("sagemaker"),
        )
    except OSError as error:  # the graph could not be written
        raise UsageError(f"--graph {graph}: cannot write: {error.strerror or error}") from None
    return OK if run.status in ("SUCCEEDED", "RUNNING") else INVALID


def _named_run(deployment: Target, sfn: Any, args: argparse.Namespace) -> runs.Run | None:
    """The run args.execution names, or None once the reason it is not there is printed."""
    try:
        return runs.from_description(sfn.describe_execution(executionArn=execution_arn(deployment, args.execution)))
    except sfn.exceptions.ExecutionDoesNotExist:
        problem(f"mlops-sfn {args.command}: no execution {args.execution} in {deployment.output('state_machine_arn')}")
        return None


def execution_arn(deployment: Target, execution: str) -> str:
    """An execution name or ARN, as the ARN of an execution of the deployment's state machine."""
    machine = deployment.output("state_machine_arn")
    if execution.startswith("arn:"):
        if execution.rsplit(":", 1)[0] != machine.replace(":stateMachine:", ":execution:", 1):
            raise UsageError(f"{execution} is an execution of another state machine than {machine}")
        return execution
    if not EXECUTION_NAME.fullmatch(execution):
        raise UsageError(f"{execution!r} is neither an execution name nor an execution ARN")
    return names.execution_arn(machine, execution)


def _report(
    sfn: Any,
    run: runs.Run,
    as_json: bool,
    graph: Path | None,
    events: list[dict[str, Any]] | None = None,
    console: bool = True,
    logs_client: Any = None,
    reach: str = "",
    s3: Any = None,
    sagemaker: Any = None,
) -> None:
    """A run's report; `console`: with its link to the AWS console (not for the local stack); with
    `logs_client`, a failed stage's report ends with the last lines of its job's log; with `sagemaker`,
    what its spot training was billed."""
    events = runs.history(sfn, run.arn) if events is None else events
    stages = runs.stage_runs(events, run.execution_input, runs.definition(sfn, run.arn), run.status == "RUNNING")
    found = runs.results(run.output) or runs.results_so_far(events)
    sagemaker = bill.Recorded(sagemaker) if sagemaker is not None else None
    spot = bill.spot_training(sagemaker, run.execution_input, found) if sagemaker is not None else None
    cost = _cost(sagemaker, run, s3) if sagemaker is not None else None
    segments = fanout.outcome(s3, run.execution_input) if s3 is not None else None  # what its Map wrote
    if graph:
        outcomes = {stage: (stage_run.status, stage_run.seconds) for stage, stage_run in stages.items()}
        graph.write_text(preview.mermaid(run.execution_input, outcomes) + "\n")
    if as_json:
        document = (
            run.as_dict()
            | {
                "stages": {
                    stage: {
                        "outcome": stage_run.status,
                        "seconds": stage_run.seconds,
                        "outputs": found.get(stage) if stage_run.status in ("succeeded", "reused") else None,
                    }
                    | ({"reused_from": stage_run.reused_from} if stage_run.reused_from else {})
                    | ({"not_reused": stage_run.not_reused} if stage_run.not_reused else {})
                    | ({"spot": _spot_json(spot)} if spot and stage == "training" else {})
                    for stage, stage_run in stages.items()
                },
            }
            | ({"segments": segments} if "fanout" in run.execution_input else {})
            | ({"cost": cost} if cost is not None else {})
            | ({"estimate": run.execution_input["estimate"]} if "estimate" in run.execution_input else {})
            | ({"console_url": runs.console_url(run.arn)} if console else {})
        )
        print(json.dumps(document, indent=2, default=str))
    else:
        took = f" in {run.seconds:.1f} s" if run.seconds is not None else ""
        print(f"{run.name}: {run.status}{took} (pipeline {run.pipeline}, trigger {run.trigger})")
        if run.error:
            print(f"  error: {run.error}: {failure_reason(run.cause, 300)}")
        for name, message in run.checks.items():
            print(f"  {CHECKPOINTS[name][0].title}: {message}")
        for stage, stage_run in stages.items():
            seconds = f"{stage_run.seconds:6.1f} s" if stage_run.seconds is not None else " " * 8
            detail = runs.stage_outputs(stage, found.get(stage), run.execution_input)
            line = f"  {stage:<16} {stage_run.status:<12} {seconds}  "
            if stage_run.reused_from:
                detail = f"from {stage_run.reused_from}{'; ' + detail if detail else ''}"
            print((line + (detail if stage_run.status in ("succeeded", "reused") else "")).rstrip())
            if stage_run.not_reused:
                print(f"  {'':<16} ran: {stage_run.not_reused}")
            if spot and stage == "training" and stage_run.status in ("succeeded", "failed"):
                print(f"  {'':<16} {bill.spot_line(spot)}")
        if "fanout" in run.execution_input:
            print("  " + (fanout.segments_line(segments) if segments else "segments: no outcome written (yet)"))
        if cost is not None:
            print(f"  {bill.cost_line(cost, run.execution_input.get('estimate'))}")
            for line in cost.get("lines", []):
                print(f"    {line}")
        print(f"  outputs: {run.execution_input.get('run_folder', '')}")
        if console:
            print(f"  console: {runs.console_url(run.arn)}")
        if graph:
            print(f"  graph: {graph}")
        failed = next((stage for stage, stage_run in stages.items() if stage_run.status == "failed"), None)
        if failed and logs_client is not None:
            _failed_job_log(logs_client, run, failed, events, runs.definition(sfn, run.arn), reach)


def _cost(sagemaker: Any, run: runs.Run, s3: Any = None) -> dict[str, Any]:
    """What the run cost so far, at the prices of the table its estimate used (core/prices.py); with
    `s3`, its segments' jobs too (their inputs in the run's folder)."""
    region = run.arn.split(":")[3]
    segments = fanout.planned_segments(s3, run.execution_input) if s3 is not None else []
    return bill.run_cost(sagemaker, run.execution_input, prices.load(), region, datetime.now(UTC), segments)


def _spot_json(found: dict[str, Any]) -> dict[str, Any]:
    return {"jobs": [job.as_dict() for job in found["jobs"]]} if "jobs" in found else found


LAST_LINES = 10


def _failed_job_log(
    client: Any, run: runs.Run, stage: str, events: list[dict[str, Any]], machine: dict[str, Any], reach: str
) -> None:
    """The last lines the failed stage's job printed, and the command that shows them all."""
    jobs = logs.job_logs(events, machine, stage)
    if not jobs:
        return
    try:
        lines = logs.last_lines(client, jobs[-1], LAST_LINES)
    except logs.LogsError as error:
        print(f"  {jobs[-1].job}'s log: not readable ({error})")
        return
    if not lines:
        print(f"  {jobs[-1].job} left no log lines in {jobs[-1].group}")
        return
    print(f"  last lines of {jobs[-1].job}'s log:")
    for line in lines:
        print(f"    {line}")
    print(f"  more: mlops-sfn logs {run.name} --stage {stage}{reach}")
