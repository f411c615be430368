"""The one generic state machine: its definition, the template file, and the role policy it needs.

`build()` writes the Amazon States Language (JSONPath) for every pipeline; every stage is switched
by the execution input's `run` flags, so a skipped stage costs one Choice transition. The result is
committed as `statemachine/pipeline.asl.json`, a template with `${...}` variables that Terraform
renders with `templatefile` and `render()` renders the same way; a test keeps the file current.
policy.py derives the state machine role's policy from the same definition.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.stages import SERVING, STAGE, STAGES, WATCHING

ROOT = Path(__file__).resolve().parents[3]  # the repository checkout (src/mlops_sfn/tools/)
TEMPLATE = ROOT / "statemachine" / "pipeline.asl.json"

# Template variables: Terraform passes the same names to templatefile().
VARIABLES = {
    "notification_topic_arn": "SNS topic for failure and success summaries",
    "approval_topic_arn": "SNS topic that carries approval requests (with their task tokens)",
    "quality_gate_function_arn": "Lambda function that compares the evaluation metric with the threshold",
    "model_copy_function_arn": "Lambda function that copies the best tuning job's model into the run folder",
    "ledger_table_name": "DynamoDB table of the run ledger, where succeeded stages are recorded for step caching",
}

SAGEMAKER = "arn:aws:states:::sagemaker:"
SDK = "arn:aws:states:::aws-sdk:"

LAMBDA = "arn:aws:states:::lambda:invoke"
DYNAMODB = "arn:aws:states:::dynamodb:"
# Step Functions names an AWS SDK integration's errors <Service>.<Error>Exception, the service in
# PascalCase; errors the service's API does not model (throttling, 5xx, validation) become
# <Service>.<Service>Exception ("Using AWS SDK service integrations", Step Functions guide).
SDK_SERVICES = {
    "sagemaker": "SageMaker",
    "s3": "S3",
    "sagemakerruntime": "SageMakerRuntime",
    "cloudwatch": "CloudWatch",
}

# API errors worth another attempt, as each integration type reports them: throttling, capacity
# quotas, 5xx. A job that ran and failed (States.TaskFailed) is not retried: its cause goes to the
# notification. The optimised SageMaker integration reports unmodelled errors as
# SageMaker.AmazonSageMakerException; Lambda's are listed in "Handling errors" (Lambda.*).
TRANSIENT = {
    "sagemaker": ["SageMaker.AmazonSageMakerException", "SageMaker.ResourceLimitExceededException"],
    # The optimised DynamoDB integration names errors DynamoDB.<error> ("Call DynamoDB APIs with Step
    # Functions": uppercase DB, unlike the SDK integration's DynamoDb).
    "dynamodb": [
        "DynamoDB.ProvisionedThroughputExceededException",
        "DynamoDB.RequestLimitExceeded",
        "DynamoDB.ThrottlingException",
        "DynamoDB.InternalServerError",
        "DynamoDB.AmazonDynamoDBException",
    ],
    "lambda": [
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    ],
    **{
        f"aws-sdk:{service}": [f"{name}.{name}Exception", f"{name}.SdkClientException"]
        + (["SageMaker.ResourceLimitExceededException"] if service == "sagemaker" else [])
        for service, name in SDK_SERVICES.items()
    },
}
_BACKOFF = {"IntervalSeconds": 15, "BackoffRate": 2.0, "MaxAttempts": 4}
_QUICK_BACKOFF = {"IntervalSeconds": 2, "BackoffRate": 2.0, "MaxAttempts": 4}  # a function, not a control plane


def integration(resource: str) -> str:
    """The integration type of a Task's Resource: "sagemaker", "lambda" or "aws-sdk:<service>"."""
    if resource.startswith(SDK):
        return "aws-sdk:" + resource.removeprefix(SDK).split(":")[0]
    if resource.startswith(SAGEMAKER):
        return "sagemaker"
    if resource.startswith(LAMBDA):
        return "lambda"
    if resource.startswith(DYNAMODB):
        return "dynamodb"
    return resource


def retry_for(resource: str) -> list[dict[str, Any]]:
    """The Retry of a Task calling `resource`: its integration's transient errors, with backoff."""
    kind = integration(resource)
    return [{"ErrorEquals": TRANSIENT[kind], **(_QUICK_BACKOFF if kind == "lambda" else _BACKOFF)}]


def _choice(flag: str, then: str, otherwise: str, reused: str | None = None) -> dict[str, Any]:
    """Run the stage, or skip it; a stage a rerun reuses (`$.reused.<stage>`, its results already in
    `$.results`) goes to `reused`."""
    rules = [{"Variable": f"$.reused.{flag}", "IsPresent": True, "Next": reused}] if reused else []
    return {
        "Type": "Choice",
        "Choices": [*rules, {"Variable": f"$.run.{flag}", "BooleanEquals": True, "Next": then}],
        "Default": otherwise,
    }


class _Builder:
    """Collects states; every task gets the same retry and a catch that records the failed stage."""

    def __init__(self, failure_target: str) -> None:
        self.states: dict[str, Any] = {}
        self.failure_target = failure_target

    def add(self, name: str, state: dict[str, Any]) -> str:
        assert name not in self.states, name
        self.states[name] = state
        return name

    def recorder(self, stage: str) -> str:
        """ "<stage> failed": turns the error caught at $.caught into the failure record {stage, error, cause}."""
        name = f"{stage.replace('_', ' ').capitalize()} failed"  # a stage, or "quality_gate"
        if name not in self.states:
            self.add(
                name,
                {
                    "Type": "Pass",
                    "Parameters": {"stage": stage, "error.$": "$.caught.Error", "cause.$": "$.caught.Cause"},
                    "ResultPath": "$.failure",
                    "Next": self.failure_target,
                },
            )
        return name

    def task(self, name: str, stage: str, state: dict[str, Any], retry: bool = True) -> str:
        """A Task whose errors go to its stage's recorder, then to the failure path."""
        recorder = self.recorder(stage)
        state = {"Type": "Task", **state}
        if retry:
            state["Retry"] = retry_for(state["Resource"])
        state["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.caught", "Next": recorder}]
        return self.add(name, state)


def _sagemaker_job(stage: str, selector: dict[str, str], then: str | None) -> dict[str, Any]:
    """A `.sync` SageMaker job: the stage's planned request in, the selected outputs to its results;
    without `then`, the job ends its branch."""
    operation = STAGE[stage].operation or ""
    return {
        "Resource": f"{SAGEMAKER}{operation[0].lower()}{operation[1:]}.sync",
        "InputPath": f"$.stages.{stage}.request",
        "ResultSelector": selector,
        "ResultPath": f"$.results.{stage}",
    } | ({"Next": then} if then else {"End": True})


def _job_name(stage: str) -> dict[str, str]:
    return {"job_name.$": f"$.{STAGE[stage].name_field}"}


# Each stage's states (collected in _STATES below): given the state that follows the stage, add them
# and return the first.


def _preprocessing(b: _Builder, then: str) -> str:
    return b.task("Preprocessing", "preprocessing", _sagemaker_job("preprocessing", _job_name("preprocessing"), then))


def _training(b: _Builder, then: str) -> str:
    selector = _job_name("training") | {"model_data_url.$": "$.ModelArtifacts.S3ModelArtifacts"}
    return b.task("Training", "training", _sagemaker_job("training", selector, then))


def _tuning(b: _Builder, then: str) -> str:
    selector = {"best_training_job.$": "$.BestTrainingJob.TrainingJobName"}
    entry = b.task("Tuning", "tuning", _sagemaker_job("tuning", selector, "Copy best model"))
    # Later stages were planned with the model in the run folder; the best job is known only now.
    # A Lambda copies it, in parts when large: S3's CopyObject refuses sources above 5 GB.
    b.task(
        "Copy best model",
        "tuning",
        {
            "Resource": LAMBDA,
            "Parameters": {
                "FunctionName": "${model_copy_function_arn}",
                "Payload": {
                    "source.$": "States.Format('{}/{}/output/model.tar.gz', "
                    "$.stages.tuning.best_model.source_folder, $.results.tuning.best_training_job)",
                    "target.$": "$.stages.tuning.best_model.target",
                },
            },
            "ResultSelector": {"model_data_url.$": "$.Payload.model_data_url", "bytes.$": "$.Payload.bytes"},
            "ResultPath": "$.results.tuning.model",
            "Next": then,
        },
    )
    return entry


def _evaluation(b: _Builder, then: str) -> str:
    entry = b.task("Evaluation", "evaluation", _sagemaker_job("evaluation", _job_name("evaluation"), "Quality gate?"))
    b.add(
        "Quality gate?",
        {
            "Type": "Choice",
            "Choices": [{"Variable": "$.quality_gate", "IsPresent": True, "Next": "Check quality gate"}],
            "Default": then,
        },
    )
    # JSONPath cannot follow a metric path held in data, so a small function reads the metric. It
    # reads the report from S3 itself: a report in the state could pass the 256 KiB payload limit,
    # and States.DataLimitExceeded ends the run uncaught. The state keeps only the verdict.
    b.task(
        "Check quality gate",
        "quality_gate",
        {
            "Resource": LAMBDA,
            "Parameters": {
                "FunctionName": "${quality_gate_function_arn}",
                "Payload": {"report.$": "$.stages.evaluation.report", "gate.$": "$.quality_gate"},
            },
            "ResultSelector": {
                "met.$": "$.Payload.met",
                "value.$": "$.Payload.value",
                "message.$": "$.Payload.message",
            },
            "ResultPath": "$.results.quality_gate",
            "Next": "Quality gate met?",
        },
    )
    b.add(
        "Quality gate met?",
        {
            "Type": "Choice",
            "Choices": [{"Variable": "$.results.quality_gate.met", "BooleanEquals": True, "Next": then}],
            "Default": "Quality gate not met",
        },
    )
    b.add(
        "Quality gate not met",
        {
            "Type": "Pass",
            "Parameters": {
                "stage": "quality_gate",
                "error": "QualityGateNotMet",
                "cause.$": "$.results.quality_gate.message",
            },
            "ResultPath": "$.failure",
            "Next": b.failure_target,
        },
    )
    return entry


def _register(b: _Builder, then: str) -> str:
    # An existing group is the usual case; any real problem resurfaces in "Register model".
    entry = b.add(
        "Create model package group",
        {
            "Type": "Task",
            "Resource": f"{SDK}sagemaker:createModelPackageGroup",
            "Parameters": {"ModelPackageGroupName.$": "$.stages.register.request.ModelPackageGroupName"},
            "ResultPath": None,
            "Retry": retry_for(f"{SDK}sagemaker:createModelPackageGroup"),
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "Register model"}],
            "Next": "Register model",
        },
    )
    b.task(
        "Register model",
        "register",
        {
            "Resource": f"{SDK}sagemaker:createModelPackage",
            "InputPath": "$.stages.register.request",
            "ResultSelector": {"model_package_arn.$": "$.ModelPackageArn"},
            "ResultPath": "$.results.register",
            "Next": then,
        },
    )
    return entry


def _approval(b: _Builder, then: str) -> str:
    entry = b.add(
        "Ask for approval",
        {
            "Type": "Task",
            "Resource": "arn:aws:states:::sns:publish.waitForTaskToken",
            "Parameters": {
                "TopicArn": "${approval_topic_arn}",
                "Subject": "Model approval requested",
                "Message": {
                    "pipeline.$": "$.pipeline",
                    "execution_name.$": "$.execution_name",
                    "model_package_arn.$": "$.results.register.model_package_arn",
                    "results.$": "$.results",  # the evaluation and gate verdict, when they ran
                    "task_token.$": "$$.Task.Token",
                    "answer": "mlops-sfn approve|reject <task_token or execution name>",
                },
            },
            "TimeoutSecondsPath": "$.stages.approval.timeout_seconds",
            "ResultPath": "$.results.approval",
            "Catch": [
                # Unanswered in time counts as rejected: the package must not wait, pending, for ever.
                {
                    "ErrorEquals": ["Rejected", "States.Timeout"],
                    "ResultPath": "$.caught",
                    "Next": "Reject model package",
                },
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.caught", "Next": b.recorder("approval")},
            ],
            "Next": "Approve model package",
        },
    )
    for answer, status, after in [("Approve", "Approved", then), ("Reject", "Rejected", "Approval failed")]:
        b.task(
            f"{answer} model package",
            "approval",
            {
                "Resource": f"{SDK}sagemaker:updateModelPackage",
                "Parameters": {
                    "ModelPackageArn.$": "$.results.register.model_package_arn",
                    "ModelApprovalStatus": status,
                },
                "ResultPath": None,
                "Next": after,
            },
        )
    return entry


def _create_model(b: _Builder, then: str) -> str:
    return b.task(
        "Create model",
        "create_model",
        {
            "Resource": f"{SAGEMAKER}createModel",
            "InputPath": "$.stages.create_model.request",
            "ResultSelector": {"model_arn.$": "$.ModelArn"},
            "ResultPath": "$.results.create_model",
            "Next": then,
        },
    )


def _recorded(b: _Builder, stage: str, then: str | None) -> str | None:
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
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.caught", "Next": then}],
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


def _pipeline(b: _Builder) -> None:
    """The stages in catalog order, each behind its "Run X?" Choice, then the serving stages side by
    side, one Parallel branch each; no state names the next stage by hand."""
    assert tuple(_STATES) == STAGES, "every stage needs its states in _STATES, in catalog order"
    sequence = [stage for stage in STAGES if stage not in SERVING and stage not in WATCHING]
    follows = {stage: _run(after) for stage, after in itertools.pairwise(sequence)}
    follows[sequence[-1]] = "Serve model?"
    # The watching stages run once the serving stages succeeded, in catalog order, then the run ends.
    follows |= {stage: _run(after) for stage, after in itertools.pairwise(WATCHING)}
    served = _run(WATCHING[0]) if WATCHING else "Notify success?"
    if WATCHING:
        follows[WATCHING[-1]] = "Notify success?"
    for stage in sequence + list(WATCHING):
        entry = _STATES[stage](b, _recorded(b, stage, follows[stage]))
        b.add(_run(stage), _choice(stage, entry, follows[stage], reused=follows[stage]))

    # A run a drift alarm started says so first, whether it retrains or only reports (the router set it up).
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
    b.add(
        "Notify drift",
        {
            "Type": "Task",
            "Resource": "arn:aws:states:::sns:publish",
            "Parameters": {
                "TopicArn": "${notification_topic_arn}",
                "Subject": "Model drift detected",
                "Message": {
                    "status": "DRIFT",
                    "pipeline.$": "$.pipeline",
                    "execution_name.$": "$.execution_name",
                    "trigger.$": "$.trigger",  # the alarm, CloudWatch's reason, the violations the router read
                    "retraining.$": "$.run",
                },
            },
            "ResultPath": None,
            "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "BackoffRate": 2.0, "MaxAttempts": 3}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": _run(STAGES[0])}],
            "Next": _run(STAGES[0]),
        },
    )
    b.add(
        "Serve model?",
        {
            "Type": "Choice",
            "Choices": [
                {
                    "Or": [{"Variable": f"$.run.{stage}", "BooleanEquals": True} for stage in SERVING],
                    "Next": "Serve",
                }
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
    # After both branches: the run fails naming every serving stage that failed, and notifies once.
    serve = "$.results.serve"
    b.add(
        "Serving failed?",
        {
            "Type": "Choice",
            "Choices": [
                {
                    "And": [{"Variable": f"{serve}.{stage}.failure", "IsPresent": True} for stage in SERVING],
                    "Next": "Both serving stages failed",
                },
                *(
                    {
                        "Variable": f"{serve}.{stage}.failure",
                        "IsPresent": True,
                        "Next": f"{STAGE[stage].title} branch failed",
                    }
                    for stage in SERVING
                ),
            ],
            "Default": served,
        },
    )
    for stage in SERVING:
        b.add(
            f"{STAGE[stage].title} branch failed",
            {
                "Type": "Pass",
                "InputPath": f"{serve}.{stage}.failure",
                "ResultPath": "$.failure",
                "Next": b.failure_target,
            },
        )
    b.add(
        "Both serving stages failed",
        {
            "Type": "Pass",
            "Parameters": {
                "stage": ",".join(SERVING),
                "error": "StagesFailed",
                "cause.$": "States.Format('{}', {})".format(
                    " | ".join(f"{stage}: {{}}: {{}}" for stage in SERVING),
                    ", ".join(f"{serve}.{stage}.failure.{part}" for stage in SERVING for part in ("error", "cause")),
                ),
            },
            "ResultPath": "$.failure",
            "Next": b.failure_target,
        },
    )

    b.add(
        "Notify success?",
        {
            "Type": "Choice",
            "Choices": [{"Variable": "$.notify.on_success", "BooleanEquals": True, "Next": "Notify success"}],
            "Default": "Succeeded",
        },
    )
    b.add(
        "Notify success",
        {
            "Type": "Task",
            "Resource": "arn:aws:states:::sns:publish",
            "Parameters": {
                "TopicArn": "${notification_topic_arn}",
                "Subject": "Pipeline run succeeded",
                "Message": {
                    "status": "SUCCEEDED",
                    "pipeline.$": "$.pipeline",
                    "execution_name.$": "$.execution_name",
                    "run_folder.$": "$.run_folder",
                    "stages_run.$": "$.run",
                    "results.$": "$.results",
                },
            },
            "ResultPath": None,
            "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "BackoffRate": 2.0, "MaxAttempts": 3}],
            "Next": "Succeeded",
        },
    )
    b.add("Succeeded", {"Type": "Succeed"})

    b.add(
        "Notify failure?",
        {
            "Type": "Choice",
            "Choices": [{"Variable": "$.notify.on_failure", "BooleanEquals": True, "Next": "Notify failure"}],
            "Default": "Failed",
        },
    )
    b.add(
        "Notify failure",
        {
            "Type": "Task",
            "Resource": "arn:aws:states:::sns:publish",
            "Parameters": {
                "TopicArn": "${notification_topic_arn}",
                "Subject": "Pipeline run failed",
                "Message": {
                    "status": "FAILED",
                    "pipeline.$": "$.pipeline",
                    "execution_name.$": "$.execution_name",
                    "failed_stage.$": "$.failure.stage",
                    "error.$": "$.failure.error",
                    "cause.$": "$.failure.cause",
                    "run_folder.$": "$.run_folder",
                },
            },
            "ResultPath": None,
            "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "BackoffRate": 2.0, "MaxAttempts": 3}],
            # A notification that cannot be sent must not hide the failure it reports.
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "Failed"}],
            "Next": "Failed",
        },
    )
    # The error names the stage, then what went wrong there: "training.States.TaskFailed",
    # "quality_gate.QualityGateNotMet". (A Fail error may not start with "States.".)
    b.add(
        "Failed",
        {
            "Type": "Fail",
            "ErrorPath": "States.Format('{}.{}', $.failure.stage, $.failure.error)",
            "CausePath": "$.failure.cause",
        },
    )


def _branch_failure(b: _Builder) -> None:
    """Inside a Parallel branch: end the branch successfully with its failure record, so that the
    other branch finishes (a failed branch would stop it)."""
    b.add(b.failure_target, {"Type": "Pass", "Parameters": {"failure.$": "$.failure"}, "End": True})


def _branch(stage: str) -> dict[str, Any]:
    """A serving stage's Parallel branch: its "Run X?" Choice, its states (the last one ends the
    branch with the stage's results as output), and the failure record that ends it otherwise."""
    b = _Builder(f"End {STAGE[stage].title.lower()} branch: failed")
    entry, skipped = _STATES[stage](b, _recorded(b, stage, None)), f"No {STAGE[stage].title.lower()}"
    # A rerun reuses stages before the one it starts from, so never the last (it has no Reused state).
    reused = f"Reused {STAGE[stage].title.lower()}" if stage != STAGES[-1] else None
    b.states = {_run(stage): _choice(stage, entry, skipped, reused), **b.states}
    b.add(skipped, {"Type": "Pass", "Result": {"skipped": True}, "End": True})
    if reused:  # a rerun's input holds the earlier run's results of this branch: they are its output again
        b.add(reused, {"Type": "Pass", "InputPath": f"$.results.serve.{stage}", "End": True})
    _branch_failure(b)
    return {"StartAt": _run(stage), "States": b.states}


def _batch_transform(b: _Builder, then: str | None) -> str:
    job = _sagemaker_job("batch_transform", _job_name("batch_transform"), then)
    ends_branch = {} if then else {"OutputPath": "$.results.batch_transform"}
    return b.task("Batch transform", "batch_transform", job | ends_branch)


def _deploy(b: _Builder, then: str | None) -> str:
    deploy = "$.stages.deploy"
    entry = b.task(
        "Create endpoint config",
        "deploy",
        {
            "Resource": f"{SAGEMAKER}createEndpointConfig",
            "InputPath": f"{deploy}.endpoint_config_request",
            "ResultSelector": {"wait": {"count": 0}},
            "ResultPath": "$.results.deploy",
            "Next": "Put errors alarm",
        },
    )
    # The endpoint's alarms, created or updated (PutMetricAlarm does both) before the endpoint
    # changes: a blue/green update rolls back on them, and they must exist when it starts.
    for alarm, following in (("errors", "Put latency alarm"), ("latency", "Rollback alarms?")):
        b.task(
            f"Put {alarm} alarm",
            "deploy",
            {
                "Resource": f"{SDK}cloudwatch:putMetricAlarm",
                "InputPath": f"{deploy}.alarms.{alarm}",
                "ResultPath": None,
                "Next": following,
            },
        )
    b.add(
        "Rollback alarms?",
        {
            "Type": "Choice",
            "Choices": [{"Variable": f"{deploy}.rollback_alarms", "IsPresent": True, "Next": "Find rollback alarms"}],
            "Default": "Find endpoint",
        },
    )
    # Alarms the item names must exist: SageMaker cannot roll back on an alarm that is not there.
    b.task(
        "Find rollback alarms",
        "deploy",
        {
            "Resource": f"{SDK}cloudwatch:describeAlarms",
            "Parameters": {"AlarmNames.$": f"{deploy}.rollback_alarms", "AlarmTypes": ["MetricAlarm"]},
            "ResultSelector": {"found.$": "States.ArrayLength($.MetricAlarms)"},
            "ResultPath": "$.results.deploy.rollback_alarms",
            "Next": "All rollback alarms exist?",
        },
    )
    b.add(
        "All rollback alarms exist?",
        {
            "Type": "Choice",
            "Choices": [
                {
                    "Variable": "$.results.deploy.rollback_alarms.found",
                    "NumericEqualsPath": f"{deploy}.rollback_alarm_count",
                    "Next": "Find endpoint",
                }
            ],
            "Default": "Rollback alarm missing",
        },
    )
    # The endpoint's state decides (SageMaker API reference, DescribeEndpoint): none yet, create
    # it; InService, update it; Failed, delete it (the only call a failed endpoint accepts) and
    # create it again; in progress, wait for it. Any other error fails the stage with its cause.
    b.add(
        "Find endpoint",
        {
            "Type": "Task",
            "Resource": f"{SDK}sagemaker:describeEndpoint",
            "Parameters": {"EndpointName.$": f"{deploy}.endpoint_name"},
            "ResultSelector": {"status.$": "$.EndpointStatus"},
            "ResultPath": "$.results.deploy.existing",
            # A missing endpoint is reported like a throttle (SageMaker.SageMakerException, from a
            # ValidationException), so only two quick retries before the Catch looks at the cause.
            "Retry": [{"ErrorEquals": TRANSIENT["aws-sdk:sagemaker"], "IntervalSeconds": 1, "MaxAttempts": 2}],
            "Catch": [
                {
                    "ErrorEquals": ["SageMaker.SageMakerException"],
                    "ResultPath": "$.caught",
                    "Next": "Endpoint missing?",
                },
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.caught", "Next": b.recorder("deploy")},
            ],
            "Next": "Existing endpoint status?",
        },
    )
    b.add(
        "Endpoint missing?",
        {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.caught.Cause", "StringMatches": "*Could not find endpoint*", "Next": "Create endpoint"}
            ],
            "Default": b.recorder("deploy"),
        },
    )
    existing = "$.results.deploy.existing.status"
    b.add(
        "Existing endpoint status?",
        {
            "Type": "Choice",
            "Choices": [
                {"Variable": existing, "StringEquals": "InService", "Next": "Update endpoint"},
                {"Variable": existing, "StringEquals": "Failed", "Next": "Delete failed endpoint"},
                *(
                    {"Variable": existing, "StringEquals": status, "Next": "Count busy check"}
                    for status in ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
                ),
            ],
            "Default": "Endpoint not updatable",  # OutOfService, UpdateRollbackFailed: a person must look
        },
    )
    b.task(
        "Delete failed endpoint",
        "deploy",
        {
            "Resource": f"{SDK}sagemaker:deleteEndpoint",
            "Parameters": {"EndpointName.$": f"{deploy}.endpoint_name"},
            "ResultPath": None,
            "Next": "Count busy check",
        },
    )
    b.add(
        "Count busy check",
        {
            "Type": "Pass",
            "Parameters": {"count.$": "States.MathAdd($.results.deploy.wait.count, 1)"},
            "ResultPath": "$.results.deploy.wait",
            "Next": "Busy too long?",
        },
    )
    b.add(
        "Busy too long?",
        {
            "Type": "Choice",
            "Choices": [
                {
                    "Variable": "$.results.deploy.wait.count",
                    "NumericGreaterThanPath": f"{deploy}.max_checks",
                    "Next": "Endpoint not updatable",
                }
            ],
            "Default": "Wait before finding endpoint",
        },
    )
    b.add(
        "Wait before finding endpoint",
        {"Type": "Wait", "SecondsPath": f"{deploy}.wait_seconds", "Next": "Find endpoint"},
    )
    for verb in ("create", "update"):
        b.task(
            f"{verb.capitalize()} endpoint",
            "deploy",
            {
                "Resource": f"{SAGEMAKER}{verb}Endpoint",
                "InputPath": f"{deploy}.{verb}_request",
                "ResultPath": None,
                "Next": "Wait for endpoint",
            },
        )
    b.add("Wait for endpoint", {"Type": "Wait", "SecondsPath": f"{deploy}.wait_seconds", "Next": "Check endpoint"})
    b.task(
        "Check endpoint",
        "deploy",
        {
            "Resource": f"{SDK}sagemaker:describeEndpoint",
            "Parameters": {"EndpointName.$": f"{deploy}.endpoint_name"},
            "ResultSelector": {"status.$": "$.EndpointStatus", "config.$": "$.EndpointConfigName"},
            "ResultPath": "$.results.deploy.endpoint",
            "Next": "Endpoint status?",
        },
    )
    b.add(
        "Endpoint status?",
        {
            "Type": "Choice",
            "Choices": [
                {
                    "Variable": "$.results.deploy.endpoint.status",
                    "StringEquals": "InService",
                    "Next": "Runs new config?",
                },
                {"Variable": "$.results.deploy.endpoint.status", "StringEquals": "Failed", "Next": "Endpoint failed"},
                {
                    "Variable": "$.results.deploy.wait.count",
                    "NumericGreaterThanEqualsPath": f"{deploy}.max_checks",
                    "Next": "Endpoint wait timed out",
                },
            ],
            "Default": "Count endpoint check",
        },
    )
    b.add(
        "Count endpoint check",
        {
            "Type": "Pass",
            "Parameters": {"count.$": "States.MathAdd($.results.deploy.wait.count, 1)"},
            "ResultPath": "$.results.deploy.wait",
            "Next": "Wait for endpoint",
        },
    )
    # SageMaker can roll an update back and still report InService: the config in use must be ours.
    b.add(
        "Runs new config?",
        {
            "Type": "Choice",
            "Choices": [
                {
                    "Variable": "$.results.deploy.endpoint.config",
                    "StringEqualsPath": f"{deploy}.endpoint_config_request.EndpointConfigName",
                    "Next": "Smoke test?",
                }
            ],
            "Default": "Endpoint rolled back",
        },
    )
    for name, error, cause in [
        (
            "Rollback alarm missing",
            "RollbackAlarmMissing",
            "States.Format('Endpoint {}: only {} of its rollback alarms {} exist: create the missing ones "
            "or remove them from stages.deploy.rollback_alarms', $.stages.deploy.endpoint_name, "
            "$.results.deploy.rollback_alarms.found, States.JsonToString($.stages.deploy.rollback_alarms))",
        ),
        ("Endpoint failed", "EndpointFailed", "States.Format('Endpoint {} is Failed', $.stages.deploy.endpoint_name)"),
        (
            "Endpoint not updatable",
            "EndpointNotUpdatable",
            "States.Format('Endpoint {} is {}: it can be neither updated nor replaced now', "
            "$.stages.deploy.endpoint_name, $.results.deploy.existing.status)",
        ),
        (
            "Endpoint wait timed out",
            "EndpointWaitTimedOut",
            "States.Format('Endpoint {} was not InService after {} checks', "
            "$.stages.deploy.endpoint_name, $.results.deploy.wait.count)",
        ),
        (
            "Endpoint rolled back",
            "EndpointRolledBack",
            "States.Format('Endpoint {} runs {}, not the new {}: the update was rolled back', "
            "$.stages.deploy.endpoint_name, $.results.deploy.endpoint.config, "
            "$.stages.deploy.endpoint_config_request.EndpointConfigName)",
        ),
    ]:
        b.add(
            name,
            {
                "Type": "Pass",
                "Parameters": {"stage": "deploy", "error": error, "cause.$": cause},
                "ResultPath": "$.failure",
                "Next": b.failure_target,
            },
        )
    b.add(
        "Smoke test?",
        {
            "Type": "Choice",
            "Choices": [{"Variable": f"{deploy}.smoke_test", "IsPresent": True, "Next": "Smoke test"}],
            "Default": "Deployed",
        },
    )
    b.task(
        "Smoke test",
        "deploy",
        {
            "Resource": f"{SDK}sagemakerruntime:invokeEndpoint",
            "Parameters": {
                "EndpointName.$": f"{deploy}.endpoint_name",
                "ContentType.$": f"{deploy}.smoke_test.content_type",
                "Body.$": f"{deploy}.smoke_test.body",
            },
            "ResultSelector": {"response.$": "$.Body"},
            "ResultPath": "$.results.deploy.smoke_test",
            "Next": "Deployed",
        },
    )
    b.add("Deployed", {"Type": "Pass"} | ({"Next": then} if then else {"OutputPath": "$.results.deploy", "End": True}))
    return entry


def _monitoring(b: _Builder, then: str | None) -> str:
    """The endpoint's data-quality monitoring, created or updated after each deploy (SageMaker API
    reference: CreateDataQualityJobDefinition, Create/Update/Describe/DeleteMonitoringSchedule), or
    removed when the item deploys without it. A job definition cannot be changed, so each run creates
    its own and points the schedule at it; the one it replaces is deleted."""
    assert then is not None, "monitoring runs after the serving stages, never inside a branch"
    watch = "$.stages.monitoring"
    results = "$.results.monitoring"
    entry = b.add(
        "Monitoring on?",
        {
            "Type": "Choice",
            "Choices": [{"Variable": f"{watch}.remove", "IsPresent": True, "Next": "Find schedule to remove"}],
            "Default": "Baseline",
        },
    )
    b.task(
        "Baseline",
        "monitoring",
        _sagemaker_job("monitoring", _job_name("monitoring"), "Create job definition"),
    )
    b.task(
        "Create job definition",
        "monitoring",
        {
            "Resource": f"{SDK}sagemaker:createDataQualityJobDefinition",
            "InputPath": f"{watch}.job_definition_request",
            "ResultSelector": {"arn.$": "$.JobDefinitionArn"},
            "ResultPath": f"{results}.job_definition",
            "Next": "Find schedule",
        },
    )

    def find(name: str, missing: str, found: str) -> None:
        # DescribeMonitoringSchedule models ResourceNotFound: Step Functions names it
        # SageMaker.ResourceNotFoundException, so "no schedule yet" is told from every other error.
        b.add(
            name,
            {
                "Type": "Task",
                "Resource": f"{SDK}sagemaker:describeMonitoringSchedule",
                "Parameters": {"MonitoringScheduleName.$": f"{watch}.schedule_name"},
                "ResultSelector": {
                    "status.$": "$.MonitoringScheduleStatus",
                    "job_definition.$": "$.MonitoringScheduleConfig.MonitoringJobDefinitionName",
                },
                "ResultPath": f"{results}.existing",
                "Retry": retry_for(f"{SDK}sagemaker:describeMonitoringSchedule"),
                "Catch": [
                    {"ErrorEquals": ["SageMaker.ResourceNotFoundException"], "ResultPath": None, "Next": missing},
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.caught", "Next": b.recorder("monitoring")},
                ],
                "Next": found,
            },
        )

    find("Find schedule", "Create schedule", "Update schedule")
    for verb, next_state in (("create", "Put drift alarm"), ("update", "Delete replaced job definition")):
        b.task(
            f"{verb.capitalize()} schedule",
            "monitoring",
            {
                "Resource": f"{SDK}sagemaker:{verb}MonitoringSchedule",
                "InputPath": f"{watch}.schedule_request",
                "ResultPath": None,
                "Next": next_state,
            },
        )
    b.add(
        "Delete replaced job definition",
        {
            "Type": "Task",
            "Resource": f"{SDK}sagemaker:deleteDataQualityJobDefinition",
            "Parameters": {"JobDefinitionName.$": f"{results}.existing.job_definition"},
            "ResultPath": None,
            "Retry": retry_for(f"{SDK}sagemaker:deleteDataQualityJobDefinition"),
            # Tidying only: a definition left behind costs nothing and must not fail the run.
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "Put drift alarm"}],
            "Next": "Put drift alarm",
        },
    )
    b.task(
        "Put drift alarm",
        "monitoring",
        {
            "Resource": f"{SDK}cloudwatch:putMetricAlarm",
            "InputPath": f"{watch}.alarm",
            "ResultPath": None,
            "Next": "Monitored",
        },
    )
    b.add(
        "Monitored",
        {
            "Type": "Pass",
            "Parameters": {
                "schedule.$": f"{watch}.schedule_name",
                "job_definition.$": f"{watch}.job_definition_request.JobDefinitionName",
                "alarm.$": f"{watch}.alarm.AlarmName",
                "baseline_job.$": f"{results}.job_name",
            },
            "ResultPath": results,
            "Next": then,
        },
    )

    find("Find schedule to remove", "Remove drift alarm", "Delete schedule")
    b.task(
        "Delete schedule",
        "monitoring",
        {
            "Resource": f"{SDK}sagemaker:deleteMonitoringSchedule",
            "Parameters": {"MonitoringScheduleName.$": f"{watch}.schedule_name"},
            "ResultPath": None,
            "Next": "Remove drift alarm",
        },
    )
    b.add(
        "Remove drift alarm",
        {
            "Type": "Task",
            "Resource": f"{SDK}cloudwatch:deleteAlarms",
            "Parameters": {"AlarmNames.$": f"States.Array({watch}.alarm_name)"},
            "ResultPath": None,
            "Retry": retry_for(f"{SDK}cloudwatch:deleteAlarms"),
            "Catch": [
                # DeleteAlarms models ResourceNotFound: an alarm that is not there is already removed.
                {
                    "ErrorEquals": ["CloudWatch.ResourceNotFoundException"],
                    "ResultPath": None,
                    "Next": "Monitoring removed",
                },
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.caught", "Next": b.recorder("monitoring")},
            ],
            "Next": "Monitoring removed",
        },
    )
    b.add(
        "Monitoring removed",
        {"Type": "Pass", "Result": {"removed": True}, "ResultPath": results, "Next": then},
    )
    return entry


# Each stage's states, in catalog order. A builder gets the state that follows the stage (None at
# the end of a serving stage's Parallel branch), adds the stage's states and returns the first.
_STATES: dict[str, Callable[[_Builder, Any], str]] = {
    "preprocessing": _preprocessing,
    "training": _training,
    "tuning": _tuning,
    "evaluation": _evaluation,
    "register": _register,
    "approval": _approval,
    "create_model": _create_model,
    "batch_transform": _batch_transform,
    "deploy": _deploy,
    "monitoring": _monitoring,
}


def build() -> dict[str, Any]:
    """The definition template, with ${...} template variables still in it."""
    b = _Builder("Notify failure?")
    _pipeline(b)
    return {
        "Comment": "mlops-sfn: one generic pipeline; the execution input's `run` flags choose the stages. "
        "Generated by mlops_sfn.tools.statemachine.build(): edit that, then run `mlops-sfn statemachine --write`.",
        "StartAt": "Started by drift?",
        "States": b.states,
    }


def template_text() -> str:
    return json.dumps(build(), indent=2) + "\n"


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


def states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state by name, branches included (state names are unique across the machine)."""
    found: dict[str, dict[str, Any]] = {}
    for name, state in definition["States"].items():
        found[name] = state
        for branch in state.get("Branches", []):
            found |= states(branch)
    return found


def stage_tasks(definition: dict[str, Any]) -> dict[str, list[str]]:
    """Each stage's Task states, in definition order: those whose catch-all records a failure of that stage."""
    every = states(definition)
    found: dict[str, list[str]] = {}
    for name, state in every.items():
        for catch in state.get("Catch", []) if state["Type"] == "Task" else []:
            record = every[catch["Next"]].get("Parameters", {})
            if "States.ALL" in catch["ErrorEquals"] and "stage" in record:
                found.setdefault(record["stage"], []).append(name)
    return found
