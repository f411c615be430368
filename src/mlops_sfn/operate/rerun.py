"""`mlops-sfn rerun EXECUTION --from STAGE | --failed-segments`: a new run that reuses what an
earlier run's stages made.

The new run is planned from the current item with the earlier run's trigger (its overrides kept,
`--set` applied over them), in the earlier run's folder (its paths are where the earlier stages
wrote). The stages before STAGE are not run again: their results (model, reports, job names) are
copied into the input's `results`, and `reused` names the run they come from; the definition's
"Run <stage>?" Choice skips a reused stage. From STAGE on the stages run as planned, with names of
their own per (earlier run, stage, attempt), since SageMaker names are unique for ever.

Refused, with the reason, when an earlier stage did not succeed, when the item changed a reused
stage (or the trigger would plan another folder), or when what a reused stage made is gone.

`--failed-segments`: a fanned-out run's segments that failed (or never ran) run again, the others
not: the rerun starts from the first stage that runs per segment, with only those segments, in the
earlier run's folder. (Step Functions' redrive of a Map Run would start the failed children again,
but only in a run that failed, and this definition records a failed Map and ends in its Fail state,
where a redrive would fail again: `why_not_redrive` says so.)
"""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass, field, replace
from typing import Any

from ..core import fanout, names, tags, uploads
from ..core.asl import SAGEMAKER, stage_tasks
from ..core.plan import map_strings, plan_run, with_upload_segments
from ..core.problems import Error, InvalidItem
from ..core.settings import Settings
from ..core.stage import merge
from ..core.stages import CHECKPOINTS, PER_RUN_NAME, SERVING, STAGE, STAGES
from ..core.triggers import Trigger
from . import runs


class RerunRefused(Error):
    """The rerun would not be sound; the message says why and what to do instead."""


@dataclass(frozen=True)
class Rerun:
    name: str
    execution_input: dict[str, Any]
    reused: tuple[str, ...]
    segment_inputs: list[dict[str, Any]] = field(default_factory=list)  # what the starter writes first (fanout)


def plan_rerun(
    earlier: runs.Run,
    events: list[dict[str, Any]],
    machine: dict[str, Any],
    item: dict[str, Any],
    settings: Settings,
    from_stage: str,
    taken: Any,
    changes: dict[str, Any] | None = None,
    segments: list[str] | None = None,
    s3: Any = None,
) -> Rerun:
    """The rerun's input. `taken(name)` says whether an execution name is already used; `changes`
    (`--set`) go over the earlier run's own overrides, which the rerun keeps; `segments`: a fanned-out
    run's segments to run again (the others' outcomes stay the earlier run's); `s3` reads them from
    the earlier run's upload when a file of it lists them."""
    if from_stage not in STAGES:
        raise RerunRefused(f"--from {from_stage}: not a stage ({', '.join(STAGES)})")
    if earlier.status == "RUNNING":
        raise RerunRefused(f"{earlier.name} is still running: rerun it once it ends")
    per_segment = earlier.execution_input.get("fanout", {}).get("stages", [])
    ran = [stage for stage in STAGES if earlier.execution_input["run"].get(stage) or stage in per_segment]
    if from_stage not in ran:
        raise RerunRefused(
            f"--from {from_stage}: {from_stage} did not run in {earlier.name}; rerun from a stage that did"
            f" ({', '.join(ran) or 'none did: start a new run'})"
        )
    before = STAGES[: STAGES.index(from_stage)]
    outcomes = runs.stage_runs(events, earlier.execution_input, machine)
    reused = tuple(stage for stage in before if earlier.execution_input["run"].get(stage))
    for stage in reused:
        if outcomes[stage].status not in ("succeeded", "reused"):  # reused: the earlier run was a rerun
            raise RerunRefused(
                f"{stage} did not succeed in {earlier.name} ({outcomes[stage].status}): rerun from {stage} or earlier"
            )
    results = runs.results(earlier.output) or runs.results_so_far(events)
    # a reused stage skips its checkpoints: each must have passed in the earlier run
    verdicts = {
        checkpoint.name: results[checkpoint.name]
        for stage in reused
        for checkpoint in STAGE[stage].checkpoints
        if isinstance(results.get(checkpoint.name), dict)
    }
    for name, verdict in verdicts.items():
        if not verdict.get("met"):
            checkpoint, owner = CHECKPOINTS[name]
            raise RerunRefused(
                f"the {checkpoint.title} was not met in {earlier.name}: rerun from {owner.name} or earlier"
            )

    trigger = Trigger.from_dict(earlier.execution_input["trigger"])
    if changes:
        trigger = replace(trigger, overrides=merge(trigger.overrides, changes))
    if fanout.in_upload(item):  # the earlier run's upload lists the segments
        if s3 is None:
            raise RerunRefused("the item's segments are listed by a file of its upload, and nothing reads it here")
        try:
            item = with_upload_segments(item, trigger, settings, s3)
        except InvalidItem as invalid:
            raise RerunRefused(f"the upload's list of segments cannot be read now: {invalid}") from None
    if segments is not None:
        try:
            item = fanout.only(item, segments)
        except KeyError as missing:
            raise RerunRefused(f"segments no longer in the item: {missing.args[0]}; start a new run") from None
    # the earlier run's names and folder: what the reused stages made is there
    folder_of = str(earlier.execution_input.get("run_folder", "")).rstrip("/").rsplit("/", 1)[-1] or None
    try:
        whole = plan_run(item, trigger, settings, execution=folder_of)
    except InvalidItem as invalid:
        raise RerunRefused(f"the item is invalid now: {invalid}") from None
    planned = whole.execution_input
    for key in ("run_folder", "dataset_date"):  # (a rerun's execution name is its own; its folder is not)
        if planned[key] != earlier.execution_input.get(key):
            raise RerunRefused(
                f"the item or the day changed the run's {key} ({earlier.execution_input.get(key)} then,"
                f" {planned[key]} now): the outputs to reuse are not where this run would look; start a new run"
            )
    for stage in before:  # a stage before STAGE runs in neither way: it was reused or it stays off
        if planned["run"].get(stage) != earlier.execution_input["run"].get(stage):
            raise RerunRefused(
                f"stages.{stage}.run changed since {earlier.name}: the stages before {from_stage} must be as they"
                f" were; rerun from {stage} or earlier"
            )
    for stage in reused:
        block = earlier.execution_input["stages"].get(stage)
        if planned["run"].get(stage) is not True or _unnamed(planned["stages"].get(stage)) != _unnamed(block):
            raise RerunRefused(
                f"stages.{stage} changed since {earlier.name}: its outputs no longer match the item;"
                f" rerun from {stage} or earlier"
            )

    name, attempt = _name(earlier, from_stage if segments is None else "failed segments", taken)
    execution_input = _renamed(planned, [s for s in STAGES if s not in before], earlier.name, attempt)
    execution_input["execution_name"] = name
    execution_input["stages"] = tags.retagged(execution_input["stages"], name)  # what it creates is its own
    segment_inputs = [
        _renamed(
            segment, per_segment, earlier.name, attempt, fanout.segment_folder(folder_of or "", segment["segment"])
        )
        | {"execution_name": name}
        for segment in tags.retagged(whole.segment_inputs, name)
    ]
    if "fanout" in execution_input and all(STAGES.index(stage) < STAGES.index(from_stage) for stage in per_segment):
        # from a stage after the segments (the model they published, or its deploy): they do not run again
        del execution_input["fanout"]
        segment_inputs = []
    if "fanout" in execution_input:  # this run's own list and outcomes, in the earlier run's folder
        execution_input["fanout"] |= fanout.locations(settings.bucket, execution_input["run_folder"], name)
    origins = earlier.execution_input.get("reused", {})
    execution_input["reused"] = {stage: origins.get(stage, earlier.name) for stage in reused}
    kept = {stage: copy.deepcopy(results[stage]) for stage in reused if stage in results}
    kept |= copy.deepcopy(verdicts)
    serving = {stage: kept.pop(stage) for stage in SERVING if stage in kept}
    execution_input["results"] = kept | ({"serve": serving} if serving else {})
    return Rerun(name, execution_input, reused, segment_inputs)


# How long a deploy waits for its endpoint: not what it produced.
_WAITING = ("wait_seconds", "max_checks")


def _unnamed(block: Any) -> Any:
    """A stage's block with its per-run names blanked and its waits left out: what a rerun renamed
    still compares equal."""
    if isinstance(block, dict):
        block = {key: value for key, value in block.items() if key not in _WAITING}
    return map_strings(tags.without_tags(block), lambda text: PER_RUN_NAME.sub(r"-\1-*", text))


def _name(earlier: runs.Run, from_stage: str, taken: Any) -> tuple[str, int]:
    """The first free name of the attempts to rerun `earlier` from `from_stage`."""
    pipeline = str(earlier.pipeline)
    for attempt in itertools.count(1):
        name = names.execution_name(pipeline, f"rerun\n{earlier.name}\n{from_stage}\n{attempt}")
        if not taken(name):
            return name, attempt
    raise AssertionError("unreachable")


def _renamed(
    planned: dict[str, Any], running: list[str], earlier: str, attempt: int, execution: str | None = None
) -> dict[str, Any]:
    """The input with every per-run name of the stages that run again replaced by one of this attempt
    (`execution`: what the names were made from, when not the input's execution: a segment's)."""
    pipeline, execution = planned["pipeline"], execution or planned["execution_name"]
    renames = {}
    for stage in running:
        described = STAGE[stage]
        if described.tag and planned["run"].get(stage):
            old = names.resource_name(pipeline, described.tag, execution, described.name_limit)
            renames[old] = names.resource_name(
                pipeline, described.tag, f"{execution}\nrerun {earlier} {attempt}", described.name_limit
            )
    if not renames:
        return planned
    # a name also appears inside other strings (a model's S3 path names its training job)
    pattern = re.compile("|".join(re.escape(name) for name in sorted(renames, key=len, reverse=True)))
    result: dict[str, Any] = map_strings(planned, lambda text: pattern.sub(lambda m: renames[m.group(0)], text))
    return result


def missing_outputs(rerun: Rerun, s3: Any, sagemaker: Any) -> list[str]:
    """What a reused stage made, and later stages need, that is gone (each stage says what it made:
    S3 outputs, a model package, a model)."""
    gone = []
    blocks, results = rerun.execution_input["stages"], runs.results(rerun.execution_input)
    for stage in rerun.reused:
        for made in STAGE[stage].made(blocks.get(stage, {}), results.get(stage) or {}):
            if made.needed and made.location:
                bucket, _, key = made.value.removeprefix("s3://").partition("/")
                if not s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("KeyCount"):
                    gone.append(f"{stage}: {made.value}")
            elif made.needed and made.describe:
                call, parameter = made.describe
                try:
                    getattr(sagemaker, call)(**{parameter: made.value})
                except sagemaker.exceptions.ClientError:
                    gone.append(f"{stage}: {made.value}")
    return gone


def upload_changed(rerun: Rerun, item: dict[str, Any], s3: Any) -> str | None:
    """Why the upload the earlier run read no longer passes its manifest's check (its manifest replaced,
    a file changed or gone), or None: a rerun reads that folder again and must find what was verified."""
    trigger = rerun.execution_input.get("trigger", {})
    complete_on = item.get("trigger", {}).get("complete_on") or []
    if not (trigger.get("bucket") and trigger.get("key")) or "manifest" not in complete_on:
        return None
    if not uploads.reads_upload(item):
        return None
    return uploads.problem(s3, trigger["bucket"], trigger["key"], trigger.get("etag"))


def why_not_redrive(earlier: runs.Run, events: list[dict[str, Any]], machine: dict[str, Any]) -> str | None:
    """Why Step Functions' redrive cannot help this run, with what to do instead; None when it can.

    A redrive starts again at the unsuccessful step with its input: where a caught failure ended
    (the Fail state) it would fail again there, and a SageMaker job task would create its job
    again under the same name, which SageMaker refuses (a job name is unique for ever)."""
    if earlier.status not in ("FAILED", "TIMED_OUT", "ABORTED"):
        return f"{earlier.name} is {earlier.status}: only a failed, timed-out or stopped run can be redriven"
    found = runs.unsuccessful_state(events, machine["States"])
    if found is None:
        return f"{earlier.name} has no unsuccessful state to start again from"
    state = found[0]
    task_stage = {task: stage for stage, tasks in stage_tasks(machine).items() for task in tasks}
    if machine["States"][state]["Type"] == "Fail" and earlier.failed_stage == fanout.STAGE_NAME:
        return (
            f"{earlier.name} failed in its segments and the failure was recorded (it ended in the {state} state,"
            f" where a redrive would fail again): mlops-sfn rerun {earlier.name} --failed-segments"
        )
    if machine["States"][state]["Type"] == "Fail" and earlier.failed_stage:
        stage = earlier.failed_stage.split(",")[0]
        stage = CHECKPOINTS[stage][1].name if stage in CHECKPOINTS else stage  # its stage reruns it
        return (
            f"{earlier.name} failed at {earlier.failed_stage} and the failure was recorded (it ended in the"
            f" {state} state, where a redrive would fail again): mlops-sfn rerun {earlier.name} --from {stage}"
        )
    if machine["States"][state].get("Resource", "").startswith(SAGEMAKER) and state in task_stage:
        return (
            f"{earlier.name} stopped in {state}, whose SageMaker job name is taken (a redrive would create it again):"
            f" mlops-sfn rerun {earlier.name} --from {task_stage[state]}"
        )
    return None
