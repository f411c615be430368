"""`mlops-sfn logs EXECUTION [--stage S] [--follow]`: the log lines of the SageMaker jobs a run's stages
ran, from CloudWatch Logs (on AWS, and on the local stack, whose jobs write there too)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..core.stages import STAGES
from ..operate import logs, runs
from .common import INTERRUPTED, INVALID, OK, UsageError, add_target, problem, target
from .runs import execution_arn, outputs_option

POLL_SECONDS = 2.0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    found = commands.add_parser("logs", help="the log lines of the SageMaker jobs a run's stages ran (CloudWatch Logs)")
    found.add_argument("execution", metavar="EXECUTION", help="execution name or ARN")
    found.add_argument("--stage", choices=STAGES, metavar="STAGE", help="only this stage's jobs")
    found.add_argument("--follow", action="store_true", help="print new lines as the run goes on, until it ends")
    add_target(found)
    found.set_defaults(run=show_logs)


def show_logs(args: argparse.Namespace) -> int:
    deployment = target(args.outputs)
    sfn = deployment.client("stepfunctions")
    arn = execution_arn(deployment, args.execution)
    try:
        described = sfn.describe_execution(executionArn=arn)
    except sfn.exceptions.ExecutionDoesNotExist:
        problem(f"mlops-sfn logs: no execution {args.execution} in {deployment.output('state_machine_arn')}")
        return INVALID
    run = runs.from_description(described)
    if args.stage and not run.execution_input.get("run", {}).get(args.stage):
        ran = [stage for stage in STAGES if run.execution_input.get("run", {}).get(stage)]
        raise UsageError(f"--stage {args.stage}: the stage did not run in {run.name} (it ran: {', '.join(ran)})")
    machine = runs.definition(sfn, arn)
    client = deployment.client("logs")
    readers: dict[logs.JobLog, logs.Reader] = {}
    shown: list[logs.JobLog | None] = [None]

    def read(events: list[dict[str, Any]]) -> None:
        for job in logs.job_logs(events, machine, args.stage):
            reader = readers.setdefault(job, logs.Reader(client, job))
            for line in reader.new_lines():
                if shown[0] != job:
                    print(f"== {job.stage}: {job.job} ({job.group})")
                    shown[0] = job
                print(line)

    try:
        events = runs.history(sfn, arn)
        read(events)
        while args.follow and run.status == "RUNNING":
            time.sleep(POLL_SECONDS)
            run = runs.from_description(sfn.describe_execution(executionArn=arn))
            events = runs.history(sfn, arn)
            read(events)
    except logs.LogsError as error:
        problem(f"mlops-sfn logs: {error}")
        return INVALID
    except KeyboardInterrupt:  # the run is Step Functions', not this process's: it goes on
        again = f"mlops-sfn logs {run.name}{' --stage ' + args.stage if args.stage else ''} --follow"
        problem(f"mlops-sfn logs: stopped following {run.name}; the run goes on: {again}{outputs_option(args.outputs)}")
        return INTERRUPTED
    if not readers:
        what = "no SageMaker job" + (f" in {args.stage}" if args.stage else "")
        problem(f"mlops-sfn logs: {run.name} ran {what} (yet)" + _functions_note(events, machine, args.stage))
    elif shown[0] is None:
        problem(
            f"mlops-sfn logs: no log lines yet for {', '.join(job.job for job in readers)}: SageMaker writes them"
            " once a job's instances start, and only if the job's role may (logs:CreateLogStream, logs:PutLogEvents)"
        )
    else:
        note = _functions_note(events, machine, args.stage)
        if note:
            problem(note.lstrip("; "))
    return OK


def _functions_note(events: list[dict[str, Any]], machine: dict[str, Any], stage: str | None) -> str:
    called = logs.functions(events, machine, stage)
    if not called:
        return ""
    named = [f"{owner} ran the Lambda function {name} (log group /aws/lambda/{name})" for owner, name in called]
    return "; " + ", ".join(named)
