"""The Amazon States Language building blocks a stage's states are written with.

Stage definitions (core/stages/) add their states through a `Builder`; tools/statemachine.py
composes them into the one definition. Nothing here runs in the Lambda functions: it lives in core
so that a stage is defined in one module, its states next to its planner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .stage import Stage

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


def choice(flag: str, then: str, otherwise: str, reused: str | None = None) -> dict[str, Any]:
    """Run the stage, or skip it; a stage a rerun reuses (`$.reused.<stage>`, its results already in
    `$.results`) goes to `reused`."""
    rules = [{"Variable": f"$.reused.{flag}", "IsPresent": True, "Next": reused}] if reused else []
    return {
        "Type": "Choice",
        "Choices": [*rules, {"Variable": f"$.run.{flag}", "BooleanEquals": True, "Next": then}],
        "Default": otherwise,
    }


class Builder:
    """Collects states; every task gets the same retry and a catch that records the failed stage."""

    def __init__(self, failure_target: str) -> None:
        self.states: dict[str, Any] = {}
        self.failure_target = failure_target

    def add(self, name: str, state: dict[str, Any]) -> str:
        assert name not in self.states, name
        self.states[name] = state
        return name

    def recorder(self, stage: str) -> str:
        """ "<stage> failed": turns the error caught at $.failure ({Error, Cause}) into the failure record
        {stage, error, cause}, in place. One copy of the cause, which for a failed job repeats its whole
        request: a second one could take the state past Step Functions' 256 KiB (plan.failure_state_bytes)."""
        name = f"{stage.replace('_', ' ').capitalize()} failed"  # a stage, or "quality_gate"
        if name not in self.states:
            self.add(
                name,
                {
                    "Type": "Pass",
                    "Parameters": {"stage": stage, "error.$": "$.failure.Error", "cause.$": "$.failure.Cause"},
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
        state["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": recorder}]
        return self.add(name, state)


def sagemaker_job(stage: Stage, selector: dict[str, str], then: str | None) -> dict[str, Any]:
    """A `.sync` SageMaker job: the stage's planned request in, the selected outputs to its results;
    without `then`, the job ends its branch."""
    operation = stage.operation or ""
    return {
        "Resource": f"{SAGEMAKER}{operation[0].lower()}{operation[1:]}.sync",
        "InputPath": f"$.stages.{stage.name}.request",
        "ResultSelector": selector,
        "ResultPath": f"$.results.{stage.name}",
    } | ({"Next": then} if then else {"End": True})


def job_name(stage: Stage) -> dict[str, str]:
    """The selector that keeps the job's name in the stage's results."""
    return {"job_name.$": f"$.{stage.name_field}"}
