"""The one generic state machine: its definition, the template file, and the role policy it needs.

`build()` writes the Amazon States Language (JSONPath) for every pipeline: each stage's states come
from its definition (core/stages/), composed here in catalog order; every stage is switched by the
execution input's `run` flags, so a skipped stage costs one Choice transition. The result is
committed as `statemachine/pipeline.asl.json`, a template with `${...}` variables that Terraform
renders with `templatefile` and `render()` renders the same way; a test keeps the file current.
policy.py derives the state machine role's policy from the same definition.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

from ..checkout import ROOT
from ..core.asl import DYNAMODB, LAMBDA, Builder, choice, renamed, retry_for
from ..core.contract import DEFINITION_VARIABLES
from ..core.fanout import SERVED_AFTER, STAGE_NAME
from ..core.stages import SERVING, STAGE, STAGES, WATCHING, create_model

TEMPLATE = ROOT / "statemachine" / "pipeline.asl.json"

# Template variables: Terraform passes the same names to templatefile() (contract.json lists them).
VARIABLES = DEFINITION_VARIABLES


def _recorded(b: Builder, stage: str, then: str | None) -> str | None:
    """For a stage an item may cache: where the stage goes once it succeeded. When the run asks
    (`$.cache.<stage>`, set by the router on a cache miss), its outputs are recorded in the run
    ledger first; a record that fails only costs a later run a miss. `then` None ends a branch."""
    if not STAGE[stage].cacheable:
        return then
    title = STAGE[stage].title.lower()
    if then is None:
        then = b.add(f"{STAGE[stage].title} done", {"Type": "Pass", "OutputPath": f"$.results.{stage}", "End": True})
    record = b.add(
        f"Record {title}",
        {
            "Type": "Task",
            "Resource": f"{DYNAMODB}putItem",
            "Parameters": {
                "TableName": "${ledger_table_name}",
                "Item": {
                    "cache_key": {"S.$": f"$.cache.{stage}.key"},
                    "stage": {"S": stage},
                    "execution": {"S.$": "$.execution_name"},
                    "run_folder": {"S.$": "$.run_folder"},
                    "name": {"S.$": f"$.stages.{stage}.request.{STAGE[stage].name_field}"},
                    "results": {"S.$": f"States.JsonToString($.results.{stage})"},
                    "recorded_at": {"S.$": "$$.State.EnteredTime"},
                    "expires_at": {"N.$": f"States.Format('{{}}', $.cache.{stage}.expires_at)"},
                },
            },
            "ResultPath": None,
            "Retry": retry_for(f"{DYNAMODB}putItem"),
            # not a failure of the run (a $.failure in a serving branch's output would say so)
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.unrecorded", "Next": then}],
            "Next": then,
        },
    )
    return b.add(
        f"Record {title}?",
        {
            "Type": "Choice",
            "Choices": [{"Variable": f"$.cache.{stage}", "IsPresent": True, "Next": record}],
            "Default": then,
        },
    )


def _run(stage: str) -> str:
    """The Choice that skips a stage in one transition: "Run create model?"."""
    return f"Run {STAGE[stage].title.lower()}?"


def _pipeline(b: Builder) -> None:
    """The run: drift reported first, the stages in catalog order, the serving stages side by side,
    the watching stages, then the endings; no state names the next stage by hand."""
    served = _run(WATCHING[0]) if WATCHING else "Notify success?"
    _stages(b)
    _drift(b)
    _serving(b, served)
    # a fanned-out run watches nothing (item rules) and serves, if anything, its segments' models
    _segments(b, served)
    _endings(b)


def _stages(b: Builder) -> None:
    """Each stage (but the serving ones) behind its "Run X?" Choice, in catalog order; the watching
    stages run once the serving stages succeeded, then the run ends."""
    sequence = [stage for stage in STAGES if stage not in SERVING and stage not in WATCHING]
    follows = {stage: _run(after) for stage, after in itertools.pairwise(sequence)}
    follows[sequence[-1]] = "Serve model?"
    follows |= {stage: _run(after) for stage, after in itertools.pairwise(WATCHING)}
    if WATCHING:
        follows[WATCHING[-1]] = "Notify success?"
    for stage in sequence + list(WATCHING):
        entry = STAGE[stage].states(b, _recorded(b, stage, follows[stage]))
        b.add(_run(stage), choice(stage, entry, follows[stage], reused=follows[stage]))
    # A run that serves its segments' models ($.fanout.models) runs its segments before the model of them.
    b.states[_run(SERVED_AFTER[0])]["Choices"].insert(0, {"And": _segments_pending("models"), "Next": "Segments"})
    # A model served from a registered package is read Approved first, in the same Choice (no transition
    # more for any other run); a rerun that reuses the model reads nothing.
    creates = b.states[_run("create_model")]["Choices"]
    package = {"Variable": "$.stages.create_model.package", "IsPresent": True}
    entry = create_model.package_states(b, creates[-1]["Next"])
    runs = {key: value for key, value in creates[-1].items() if key != "Next"}  # $.run.create_model is true
    creates.insert(len(creates) - 1, {"And": [runs, package], "Next": entry})


def _segments_pending(field: str) -> list[dict[str, Any]]:
    """A fanned-out run ($.fanout.<field>) whose segments have not run yet (the Map writes $.results.segments)."""
    return [
        {"Variable": f"$.fanout{'.' + field if field else ''}", "IsPresent": True},
        {"Not": {"Variable": "$.results.segments", "IsPresent": True}},
    ]


SEGMENT = "Segment: "  # the names of the states a segment's child execution runs


def _segments(b: Builder, then: str) -> None:
    """The stages a segment may run, once more, inside a Distributed Map that runs one child
    execution per segment (core/fanout.py); "Serve model?" leads a run with `$.fanout` here.
    The Map reads the segments' inputs from S3 and writes their outcomes there; a child fails with
    its failed stage in the error, and the Map fails the run only beyond the tolerated failures."""
    inside = Builder("Failed")
    sequence = [stage for stage in STAGES if STAGE[stage].per_segment]
    follows = {stage: _run(after) for stage, after in itertools.pairwise(sequence)}
    follows[sequence[-1]] = "Publish model?"
    for stage in sequence:  # each recorded and reused per segment, as in the run (core/cache.py)
        entry = STAGE[stage].states(inside, _recorded(inside, stage, follows[stage]))
        inside.add(_run(stage), choice(stage, entry, follows[stage], reused=follows[stage]))
    # A run that serves its segments' models: each segment's, once its stages succeeded, copied to where
    # the run's multi-model endpoint loads it (<run folder>/segments/models/<id>.tar.gz), by the Lambda
    # that copies tuning's best model (S3's CopyObject refuses sources above 5 GB).
    inside.when("Publish model?", "$.publish", "Publish model", "Done")
    inside.call(
        "Publish model",
        SERVED_AFTER[0],
        LAMBDA,
        parameters={
            "FunctionName": "${model_copy_function_arn}",
            "Payload": {"source.$": "$.publish.source", "target.$": "$.publish.target"},
        },
        selector={"model_data_url.$": "$.Payload.model_data_url", "bytes.$": "$.Payload.bytes"},
        result="$.results.publish",
        then="Done",
    )
    # What the ResultWriter keeps of a segment that succeeded: its id, its stages' trimmed results, and
    # the stages it reused (from which run).
    done = {"segment.$": "$.segment", "results.$": "$.results", "reused.$": "$.reused"}
    inside.add("Done", {"Type": "Pass", "Parameters": done, "End": True})
    inside.add(
        "Failed",
        {
            "Type": "Fail",
            "ErrorPath": "States.Format('{}.{}', $.failure.stage, $.failure.error)",
            "CausePath": "$.failure.cause",
        },
    )
    b.add(
        "Segments",
        {
            "Type": "Map",
            "ItemReader": {
                "Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "JSON"},
                "Parameters": {"Bucket.$": "$.fanout.items.Bucket", "Key.$": "$.fanout.items.Key"},
            },
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": SEGMENT + _run(sequence[0]),
                "States": renamed(inside.states, SEGMENT),
            },
            "MaxConcurrencyPath": "$.fanout.max_concurrency",
            "ToleratedFailurePercentagePath": "$.fanout.tolerated_failure_percentage",
            "ToleratedFailureCountPath": "$.fanout.tolerated_failure_count",
            "ResultWriter": {
                "Resource": "arn:aws:states:::s3:putObject",
                "Parameters": {"Bucket.$": "$.fanout.results.Bucket", "Prefix.$": "$.fanout.results.Prefix"},
            },
            "ResultPath": "$.results.segments",  # {MapRunArn, ResultWriterDetails}: where, not what
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Summarize segments"}],
            "Next": "Summarize segments",
        },
    )
    # Whether the Map succeeded or failed, the run's one notification says how its segments went.
    b.add(
        "Summarize segments",
        {
            "Type": "Task",
            "Resource": LAMBDA,
            "Parameters": {"FunctionName": "${segments_function_arn}", "Payload": {"results.$": "$.fanout.results"}},
            "ResultSelector": {
                "total.$": "$.Payload.total",
                "succeeded.$": "$.Payload.succeeded",
                "failed.$": "$.Payload.failed",
                "failures.$": "$.Payload.failures",
                "message.$": "$.Payload.message",
            },
            "ResultPath": "$.results.segments_summary",
            "Retry": retry_for(LAMBDA),
            # not a failure of the run: the outcomes are in the run's folder all the same
            "Catch": [
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.unsummarized", "Next": "Segments not summarized"}
            ],
            "Next": "Segments failed?",
        },
    )
    unread = {"message": "the segments' outcomes could not be summarized here: mlops-sfn status lists them"}
    b.add(
        "Segments not summarized",
        {"Type": "Pass", "Result": unread, "ResultPath": "$.results.segments_summary", "Next": "Segments failed?"},
    )
    # Then the run ends, or serves its segments' models ($.fanout.models): not when none was published.
    # Choice rules are examined in order and the first that matches is taken ("Choice workflow
    # state"), so the count is read only when the summary has one.
    b.add(
        "Segments failed?",
        {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.failure", "IsPresent": True, "Next": "Segments failed"},  # the Map's error, caught
                {"Not": {"Variable": "$.fanout.models", "IsPresent": True}, "Next": then},
                {"Variable": "$.unsummarized", "IsPresent": True, "Next": _run(SERVED_AFTER[0])},
                {
                    "Variable": "$.results.segments_summary.succeeded",
                    "NumericEquals": 0,
                    "Next": "No segment model to serve",
                },
            ],
            "Default": _run(SERVED_AFTER[0]),
        },
    )
    b.fail(
        "No segment model to serve",
        STAGE_NAME,
        "NoSegmentModel",
        "States.Format('no segment succeeded, so no model was published and the endpoint was left as it was: {}',"
        " $.results.segments_summary.message)",
    )
    b.add(
        "Segments failed",
        {
            "Type": "Pass",
            "Parameters": {
                "stage": STAGE_NAME,
                "error.$": "$.failure.Error",
                "cause.$": "States.Format('{} {}', $.failure.Cause, $.results.segments_summary.message)",
            },
            "ResultPath": "$.failure",
            "Next": b.failure_target,
        },
    )


def _drift(b: Builder) -> None:
    """A run a drift alarm started says so first, whether it retrains or only reports (the router set it up)."""
    b.add(
        "Started by drift?",
        {
            "Type": "Choice",
            "Choices": [
                {
                    # (a rerun of a drift run reuses stages: the drift was reported by the run it reruns)
                    "And": [
                        {"Variable": "$.trigger.source", "StringEquals": "monitoring"},
                        {"Not": {"Variable": "$.reused", "IsPresent": True}},
                    ],
                    "Next": "Notify drift",
                }
            ],
            "Default": _run(STAGES[0]),
        },
    )
    message = {
        "status": "DRIFT",
        "pipeline.$": "$.pipeline",
        "execution_name.$": "$.execution_name",
        "trigger.$": "$.trigger",  # the alarm, CloudWatch's reason, the violations the router read
        "retraining.$": "$.run",
    }
    b.notify("Notify drift", "Model drift detected", message, _run(STAGES[0]))


def _serving(b: Builder, served: str) -> None:
    """The serving stages side by side, one Parallel branch each; then the run fails naming every
    serving stage that failed, and notifies once."""
    b.add(
        "Serve model?",
        {
            "Type": "Choice",
            "Choices": [
                # A fanned-out run goes to its segments here, so a run without costs no extra transition.
                {"And": _segments_pending(""), "Next": "Segments"},
                {"Or": [{"Variable": f"$.run.{stage}", "BooleanEquals": True} for stage in SERVING], "Next": "Serve"},
            ],
            "Default": served,
        },
    )
    b.add(
        "Serve",
        {
            "Type": "Parallel",
            "Branches": [_branch(stage) for stage in SERVING],
            "ResultSelector": {f"{stage}.$": f"$[{index}]" for index, stage in enumerate(SERVING)},
            "ResultPath": "$.results.serve",
            # No Catch: a failing branch would stop its sibling (and its running job), so each branch
            # catches its own failures and ends with {"failure": ...}; what could still fail here
            # (States.Runtime, States.DataLimitExceeded) no Catch can handle.
            "Next": "Serving failed?",
        },
    )
    serve = "$.results.serve"
    failed = {stage: f"{STAGE[stage].title} branch failed" for stage in SERVING}
    b.add(
        "Serving failed?",
        {
            "Type": "Choice",
            "Choices": [
                {
                    "And": [{"Variable": f"{serve}.{stage}.failure", "IsPresent": True} for stage in SERVING],
                    "Next": "Both serving stages failed",
                },
                *({"Variable": f"{serve}.{s}.failure", "IsPresent": True, "Next": failed[s]} for s in SERVING),
            ],
            "Default": served,
        },
    )
    for stage in SERVING:
        state = {"Type": "Pass", "InputPath": f"{serve}.{stage}.failure", "ResultPath": "$.failure"}
        b.add(failed[stage], state | {"Next": b.failure_target})
    b.fail(
        "Both serving stages failed",
        ",".join(SERVING),
        "StagesFailed",
        "States.Format('{}', {})".format(
            " | ".join(f"{stage}: {{}}: {{}}" for stage in SERVING),
            ", ".join(f"{serve}.{stage}.failure.{part}" for stage in SERVING for part in ("error", "cause")),
        ),
    )


def _endings(b: Builder) -> None:
    """Success and failure, each notified when the item asks; a notification that cannot be sent
    changes neither (a run that succeeded must not turn FAILED; a failure must not be hidden)."""
    b.when("Notify success?", "$.notify.on_success", "Notify success", "Succeeded", test={"BooleanEquals": True})
    success = {
        "status": "SUCCEEDED",
        "pipeline.$": "$.pipeline",
        "execution_name.$": "$.execution_name",
        "run_folder.$": "$.run_folder",
        "stages_run.$": "$.run",
        "results.$": "$.results",
    }
    b.notify("Notify success", "Pipeline run succeeded", success, "Succeeded")
    b.add("Succeeded", {"Type": "Succeed"})
    b.when("Notify failure?", "$.notify.on_failure", "Notify failure", "Failed", test={"BooleanEquals": True})
    failure = {
        "status": "FAILED",
        "pipeline.$": "$.pipeline",
        "execution_name.$": "$.execution_name",
        "failed_stage.$": "$.failure.stage",
        "error.$": "$.failure.error",
        "cause.$": "$.failure.cause",
        "run_folder.$": "$.run_folder",
    }
    b.notify("Notify failure", "Pipeline run failed", failure, "Failed")
    # The error names the stage, then what went wrong there: "training.States.TaskFailed",
    # "<checkpoint>.<its error>". (A Fail error may not start with "States.".)
    b.add(
        "Failed",
        {
            "Type": "Fail",
            "ErrorPath": "States.Format('{}.{}', $.failure.stage, $.failure.error)",
            "CausePath": "$.failure.cause",
        },
    )


def _branch_failure(b: Builder) -> None:
    """Inside a Parallel branch: end the branch successfully with its failure record, so that the
    other branch finishes (a failed branch would stop it)."""
    b.add(b.failure_target, {"Type": "Pass", "Parameters": {"failure.$": "$.failure"}, "End": True})


def _branch(stage: str) -> dict[str, Any]:
    """A serving stage's Parallel branch: its "Run X?" Choice, its states (the last one ends the
    branch with the stage's results as output), and the failure record that ends it otherwise."""
    b = Builder(f"End {STAGE[stage].title.lower()} branch: failed")
    entry, skipped = STAGE[stage].states(b, _recorded(b, stage, None)), f"No {STAGE[stage].title.lower()}"
    # A rerun reuses stages before the one it starts from, so never the last (it has no Reused state).
    reused = f"Reused {STAGE[stage].title.lower()}" if stage != STAGES[-1] else None
    b.states = {_run(stage): choice(stage, entry, skipped, reused), **b.states}
    b.add(skipped, {"Type": "Pass", "Result": {"skipped": True}, "End": True})
    if reused:  # a rerun's input holds the earlier run's results of this branch: they are its output again
        b.add(reused, {"Type": "Pass", "InputPath": f"$.results.serve.{stage}", "End": True})
    _branch_failure(b)
    return {"StartAt": _run(stage), "States": b.states}


def build() -> dict[str, Any]:
    """The definition template, with ${...} template variables still in it."""
    b = Builder("Notify failure?")
    _pipeline(b)
    return {
        "Comment": "mlops-sfn: one generic pipeline; the execution input's `run` flags choose the stages. "
        "Generated by mlops_sfn.tools.statemachine.build(): edit that, then run `mlops-sfn generate`.",
        "StartAt": "Started by drift?",
        "States": b.states,
    }


def template_text() -> str:
    return json.dumps(build(), indent=2) + "\n"


# statelint 3.1, the independent validator `make lint` and the tests run, predates a field AWS
# documents for a Distributed Map's item reader (ReaderConfig's InputType, "ItemReader (Map)", Step
# Functions developer guide): its complaint about that field is not a problem of the definition.
STATELINT_GAPS = (
    re.compile(r'^Field "InputType" not allowed in State Machine\.States\.[^.]+\.ItemReader\.ReaderConfig$'),
)


def lint(path: str) -> int:
    """statelint on a definition file, its known gaps left out: prints the problems, returns 0 or 1."""
    import subprocess
    import sys

    statelint = str(Path(sys.executable).parent / "statelint")
    found = subprocess.run([statelint, path], capture_output=True, text=True, check=False)
    listed = [line.strip() for line in found.stdout.splitlines() if line.startswith(" ")]  # " <problem>"
    problems = [problem for problem in listed if not any(gap.match(problem) for gap in STATELINT_GAPS)]
    if found.returncode != 0 and not listed:  # statelint itself failed
        print(found.stdout + found.stderr)
        return 1
    print("\n".join(problems) if problems else f"{path}: valid (statelint, known gaps left out)")
    return 1 if problems else 0


_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def render(variables: dict[str, str], text: str | None = None) -> dict[str, Any]:
    """The template with its variables filled, as Terraform's templatefile() does for this file."""
    text = template_text() if text is None else text  # what TEMPLATE holds (generate --check), without the file
    return fill_template(text, variables, VARIABLES)


def fill_template(text: str, variables: dict[str, str], declared: dict[str, str]) -> dict[str, Any]:
    """A JSON template's ${...} variables filled; every declared variable must be given, no other may appear."""
    missing = sorted(set(declared) - set(variables))
    if missing:
        raise KeyError(f"template variables not given: {', '.join(missing)}")

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in declared or name not in variables:
            raise KeyError(f"unknown template variable ${{{name}}}")
        return json.dumps(variables[name])[1:-1]  # the value sits inside a JSON string

    result: dict[str, Any] = json.loads(_VARIABLE.sub(substitute, text))
    return result
