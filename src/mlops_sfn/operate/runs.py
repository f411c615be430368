"""Runs of a deployed pipeline read back from Step Functions: listed, described stage by stage, followed.

The same code serves AWS and the local AWS (`run`, `runs`, `status`, `local demo`). What a run did
comes from its execution: the input the router planned (which stages run), the history (when each
stage's tasks entered and exited, and which stage's failure record was entered) and the output.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..core import asl, names
from ..core.problems import Error
from ..core.sagemaker_api import failure_reason
from ..core.stage import where_in
from ..core.stages import CHECKPOINTS, STAGE, STAGES

STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")


class RunError(Error):
    """The run cannot be read or followed; the message says which and why."""


@dataclass
class StageRun:
    status: str  # succeeded, failed, skipped, not reached, running, reused, stopped, timed out, per segment
    seconds: float | None = None
    reused_from: str | None = None  # the run whose outputs a reused stage took (a rerun's, or the ledger's)
    not_reused: str | None = None  # why a cached stage ran although the ledger held a record of it


@dataclass
class Run:
    """One execution as `runs` lists it and `status` starts from."""

    name: str
    arn: str
    status: str
    started: datetime
    stopped: datetime | None = None
    pipeline: str | None = None
    trigger: str | None = None  # the trigger's source: s3, schedule, manual, records
    failed_stage: str | None = None
    error: str | None = None
    cause: str | None = None
    checks: dict[str, str] = field(default_factory=dict)  # checkpoint -> its verdict's message, when it ran
    execution_input: dict[str, Any] = field(default_factory=dict, repr=False)
    output: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def rerun_of(self) -> str | None:
        """The run whose folder a rerun works in (`mlops-sfn rerun`), else None: every other run's folder
        is named after the run itself (a cached run's too, which also reuses stages)."""
        folder = str(self.execution_input.get("run_folder", "")).rstrip("/").rsplit("/", 1)[-1]
        return folder if folder and folder != self.name else None

    @property
    def seconds(self) -> float | None:
        return (self.stopped - self.started).total_seconds() if self.stopped else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arn": self.arn,
            "pipeline": self.pipeline,
            "trigger": self.trigger,
            "status": self.status,
            "started": self.started.isoformat(),
            "seconds": self.seconds,
            "failed_stage": self.failed_stage,
            "error": self.error,
            "cause": failure_reason(self.cause, 500) if self.cause else None,
            **{name: self.checks.get(name) for name in CHECKPOINTS},
            "rerun_of": self.rerun_of,
        }


def from_description(described: dict[str, Any]) -> Run:
    """A Run from DescribeExecution's answer (its input is the router's plan, its output the results)."""
    execution_input = _json(described.get("input"))
    output = _json(described.get("output"))
    error = described.get("error")
    results = output.get("results", {}) if isinstance(output.get("results"), dict) else {}
    verdicts = {name: results.get(name) for name in CHECKPOINTS}
    return Run(
        name=described["name"],
        arn=described["executionArn"],
        status=described["status"],
        started=described["startDate"],
        stopped=described.get("stopDate"),
        pipeline=execution_input.get("pipeline"),
        trigger=(execution_input.get("trigger") or {}).get("source"),
        failed_stage=error.split(".")[0] if error and described["status"] == "FAILED" else None,
        error=error,
        cause=described.get("cause"),
        checks={name: str(v["message"]) for name, v in verdicts.items() if isinstance(v, dict) and "message" in v},
        execution_input=execution_input,
        output=output,
    )


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def executions(sfn: Any, state_machine_arn: str, status: str | None = None) -> Iterator[dict[str, Any]]:
    """ListExecutions page by page: "sorted by time, with the most recent execution first", up to
    1,000 a call (maxResults, 1-1000; Step Functions API reference, ListExecutions)."""
    options: dict[str, Any] = {"stateMachineArn": state_machine_arn, "PaginationConfig": {"PageSize": 1000}}
    if status:
        options["statusFilter"] = status
    for page in sfn.get_paginator("list_executions").paginate(**options):
        yield from page["executions"]


def recent(
    sfn: Any, state_machine_arn: str, pipeline: str | None = None, status: str | None = None, limit: int = 20
) -> list[Run]:
    """The newest `limit` runs (of one pipeline): one paginated list, then one DescribeExecution per run
    shown (only it holds the trigger, the failure and the gate's verdict)."""
    runs: list[Run] = []
    for listed in executions(sfn, state_machine_arn, status):
        if len(runs) == limit:
            break
        if pipeline and not listed["name"].startswith(names.execution_prefix(pipeline)):
            continue
        run = from_description(sfn.describe_execution(executionArn=listed["executionArn"]))
        if pipeline and run.pipeline != pipeline:  # a longer name cut to the same 63 characters
            continue
        runs.append(run)
    return runs


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events += page["events"]
    return events


def definition(sfn: Any, execution_arn: str) -> dict[str, Any]:
    """The definition the execution runs (the state machine's, as deployed)."""
    state_machine = sfn.describe_state_machine_for_execution(executionArn=execution_arn)
    result: dict[str, Any] = json.loads(state_machine["definition"])
    return result


# How a run that ended inside a stage's task left that stage (the execution's last history event):
# stopped by StopExecution, timed out, or failed without its catch (States.DataLimitExceeded, say,
# which no Catch of States.ALL catches).
_ENDED_IN = {"ExecutionAborted": "stopped", "ExecutionTimedOut": "timed out", "ExecutionFailed": "failed"}


def stage_runs(
    events: list[dict[str, Any]], execution_input: dict[str, Any], machine: dict[str, Any], running: bool = False
) -> dict[str, StageRun]:
    """Each stage's outcome and time (first of its tasks entered to last exited). A stage failed when
    the state its catch-all leads to (the one recording which stage failed) was entered."""
    every = asl.states(machine)
    task_stage = {task: stage for stage, tasks in asl.stage_tasks(machine).items() for task in tasks}
    records = {
        catch["Next"]: task_stage[name]
        for name in task_stage
        for catch in every[name].get("Catch", [])
        if "States.ALL" in catch["ErrorEquals"]
    }
    ending = events[-1]["type"] if events else ""
    first: dict[str, datetime] = {}
    last: dict[str, datetime] = {}
    inside: dict[str, int] = {}  # tasks entered and not yet exited, per stage
    failed: set[str] = set()
    for event in events:
        entered = event.get("stateEnteredEventDetails")
        if entered and entered["name"] in task_stage:
            stage = task_stage[entered["name"]]
            first.setdefault(stage, event["timestamp"])
            inside[stage] = inside.get(stage, 0) + 1
        if entered and entered["name"] in records:
            failed.add(records[entered["name"]])
        exited = event.get("stateExitedEventDetails")
        if exited and exited["name"] in task_stage:
            stage = task_stage[exited["name"]]
            last[stage] = event["timestamp"]
            inside[stage] = inside.get(stage, 1) - 1
    runs: dict[str, StageRun] = {}
    per_segment = execution_input.get("fanout", {}).get("stages", [])
    for stage in STAGES:
        if stage in per_segment:  # in the child executions: the segments' summary tells how each went
            runs[stage] = StageRun("per segment")
        elif stage in execution_input.get("reused", {}):
            runs[stage] = StageRun("reused", reused_from=execution_input["reused"][stage])
        elif not execution_input.get("run", {}).get(stage):
            runs[stage] = StageRun("skipped")
        elif stage not in first:
            runs[stage] = StageRun("not reached")
        else:
            end = last.get(stage, events[-1]["timestamp"])
            seconds = round((end - first[stage]).total_seconds(), 1)
            if stage in failed:
                status = "failed"
            elif inside.get(stage):  # a task entered and never left: the run is still in it, or ended there
                status = "running" if running else _ENDED_IN.get(ending, "failed")
            else:
                status = "succeeded"
            why = execution_input.get("cache", {}).get(stage, {}).get("why")
            runs[stage] = StageRun(status, seconds, not_reused=why)
    return runs


def follow(
    sfn: Any,
    execution_arn: str,
    say: Callable[[str], None],
    deadline: float,
    each_poll: Callable[[dict[str, Any], list[dict[str, Any]]], None] | None = None,
    poll_seconds: float = 2.0,
    since: int = 0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Print every Task state as it ends (its stage and duration) until the run ends; returns its
    description and history. `each_poll` sees the description and the events new since the last poll;
    the first `since` events (a redriven run's earlier attempt) are not reported again. Past `deadline`
    (time.monotonic()) it raises RunError and leaves the run going."""
    tasks = asl.stage_tasks(definition(sfn, execution_arn))
    task_stage = {task: stage for stage, names in tasks.items() for task in names}
    entered: dict[str, datetime] = {}
    seen = since
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        events = history(sfn, execution_arn)
        for event in events[seen:]:
            if "stateEnteredEventDetails" in event:
                entered[event["stateEnteredEventDetails"]["name"]] = event["timestamp"]
            details = event.get("stateExitedEventDetails")
            if details and details["name"] in task_stage and event["type"] == "TaskStateExited":
                state = details["name"]
                took = (event["timestamp"] - entered.get(state, event["timestamp"])).total_seconds()
                say(f"  {task_stage[state]:<16} {state:<32} {took:6.1f} s")
        if each_poll:
            each_poll(described, events[seen:])
        seen = len(events)
        if described["status"] != "RUNNING":
            return described, events
        if time.monotonic() > deadline:
            raise RunError(f"{described['name']} is still running: stopped waiting (it goes on)")
        time.sleep(poll_seconds)


def console_url(execution_arn: str) -> str:
    """The execution in the Step Functions console."""
    region = execution_arn.split(":")[3]
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"


def stage_outputs(stage: str, result: Any, execution_input: dict[str, Any]) -> str:
    """One line on what a stage produced, from the run's input and results alone (its definition says how)."""
    if not isinstance(result, dict) or stage not in STAGE:
        return ""
    block = execution_input.get("stages", {}).get(stage, {})
    return STAGE[stage].report(result, block, where_in(str(execution_input.get("run_folder", ""))))


def results(output: dict[str, Any]) -> dict[str, Any]:
    """Each stage's results in a run's output, the serving stages' (run side by side) included."""
    found = output.get("results", {}) if isinstance(output.get("results"), dict) else {}
    return {**found, **(found.get("serve") or {})}


def results_so_far(events: list[dict[str, Any]]) -> dict[str, Any]:
    """A run's results from its history, for a run that failed or still runs (its output has none):
    the latest state output that holds them."""
    for event in reversed(events):
        details = event.get("stateExitedEventDetails")
        output = _json(details.get("output")) if details else {}
        if isinstance(output.get("results"), dict):
            return results(output)
    return {}


def unsuccessful_state(events: list[dict[str, Any]], top_level: dict[str, Any]) -> tuple[str, Any] | None:
    """Where a redrive starts again: the last top-level state entered and never exited (a Task that
    failed or was running when the run stopped, or the Fail state a caught error led to), with the
    input it was entered with; None when every state entered was left."""
    open_states: dict[str, Any] = {}
    for event in events:
        entered = event.get("stateEnteredEventDetails")
        if entered and entered["name"] in top_level:
            open_states[entered["name"]] = _json(entered.get("input"))
        exited = event.get("stateExitedEventDetails")
        if exited:
            open_states.pop(exited["name"], None)
    if not open_states:
        return None
    name = list(open_states)[-1]
    return name, open_states[name]
