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
    "applicationautoscaling": "ApplicationAutoScaling",
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
        # another change of the same target is under way (Application Auto Scaling API reference, Errors)
        + (["ApplicationAutoScaling.ConcurrentUpdateException"] if service == "applicationautoscaling" else [])
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
        name = f"{stage.replace('_', ' ').capitalize()} failed"  # a stage, or a checkpoint
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

    # The recurring shapes, typed: each writes its keys in one order, so the definition is stable.

    def call(
        self,
        name: str,
        stage: str,
        resource: str,
        *,
        input_path: str | None = None,
        parameters: dict[str, Any] | None = None,
        selector: dict[str, Any] | None = None,
        result: str | None,
        then: str | None,
    ) -> str:
        """A Task calling an integration (`.sync` job, AWS SDK call, Lambda): its input from the
        state (`input_path`) or built (`parameters`), what it keeps (`selector`) at `result` (None:
        nothing); retried on its integration's transient errors, its failure recorded for `stage`."""
        state: dict[str, Any] = {"Resource": resource}
        if input_path is not None:
            state["InputPath"] = input_path
        if parameters is not None:
            state["Parameters"] = parameters
        if selector is not None:
            state["ResultSelector"] = selector
        state["ResultPath"] = result
        return self.task(name, stage, state | ({"Next": then} if then else {"End": True}))

    def job(self, stage: Stage, selector: dict[str, str], then: str | None, name: str | None = None) -> str:
        """A stage's `.sync` SageMaker job (named after the stage unless `name`): its planned request
        in, the selected outputs to its results; without `then`, the job ends its branch with them."""
        operation = stage.operation or ""
        name = self.call(
            name or stage.title,
            stage.name,
            f"{SAGEMAKER}{operation[0].lower()}{operation[1:]}.sync",
            input_path=f"$.stages.{stage.name}.request",
            selector=selector,
            result=f"$.results.{stage.name}",
            then=then,
        )
        if then is None:
            self.states[name] = {**self.states[name], "OutputPath": f"$.results.{stage.name}"}
        return name

    def when(
        self, name: str, variable: str, then: str | None, otherwise: str | None, test: dict[str, Any] | None = None
    ) -> str:
        """A Choice on one value: to `then` when `test` holds (default: the value is present)."""
        rule = {"Variable": variable, **(test or {"IsPresent": True}), "Next": then}
        return self.add(name, {"Type": "Choice", "Choices": [rule], "Default": otherwise})

    def fail(self, name: str, stage: str, error: str, cause_path: str) -> str:
        """A failure the definition decides (not an error caught): recorded, then the failure path."""
        return self.add(
            name,
            {
                "Type": "Pass",
                "Parameters": {"stage": stage, "error": error, "cause.$": cause_path},
                "ResultPath": "$.failure",
                "Next": self.failure_target,
            },
        )

    def wait(self, name: str, seconds_path: str, then: str) -> str:
        """A Wait of the seconds the state holds at `seconds_path`: with `count` and `when`, a bounded loop."""
        return self.add(name, {"Type": "Wait", "SecondsPath": seconds_path, "Next": then})

    def count(self, name: str, counter: str, then: str) -> str:
        """One more turn of a bounded loop: `counter`.count + 1."""
        return self.add(
            name,
            {
                "Type": "Pass",
                "Parameters": {"count.$": f"States.MathAdd({counter}.count, 1)"},
                "ResultPath": counter,
                "Next": then,
            },
        )

    def notify(self, name: str, subject: str, message: dict[str, Any], then: str) -> str:
        """An SNS message to the notification topic; one that cannot be sent does not change the run."""
        return self.add(
            name,
            {
                "Type": "Task",
                "Resource": "arn:aws:states:::sns:publish",
                "Parameters": {"TopicArn": "${notification_topic_arn}", "Subject": subject, "Message": message},
                "ResultPath": None,
                "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "BackoffRate": 2.0, "MaxAttempts": 3}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": then}],
                "Next": then,
            },
        )


# --- Reading a definition back (the reports, the policy, the local runs) ---


def states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state by name, branches and Map processors included (state names are unique across the
    machine)."""
    found: dict[str, dict[str, Any]] = {}
    for name, state in definition["States"].items():
        found[name] = state
        for branch in [*state.get("Branches", []), *([state["ItemProcessor"]] if "ItemProcessor" in state else [])]:
            found |= states(branch)
    return found


def renamed(states: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The same states, each name prefixed, every transition among them following (a Map's
    processor repeats states the machine has too, and names are unique across a machine)."""

    def rename(value: Any, key: str = "") -> Any:
        if key in ("Next", "Default") and isinstance(value, str):
            return prefix + value
        if isinstance(value, dict):
            return {k: rename(v, k) for k, v in value.items()}
        if isinstance(value, list) and key in ("Choices", "Catch", "And", "Or"):
            return [rename(entry) for entry in value]
        return value

    return {prefix + name: rename(state) for name, state in states.items()}


def stage_tasks(definition: dict[str, Any]) -> dict[str, list[str]]:
    """Each stage's Task states, in definition order: those whose catch-all records a failure of that
    stage, and the tasks of an inline Map whose catch-all does (a catch cannot leave the Map)."""
    every = states(definition)
    found: dict[str, list[str]] = {}
    for name, state in every.items():
        inline = state["Type"] == "Map" and state["ItemProcessor"].get("ProcessorConfig", {}).get("Mode") == "INLINE"
        for catch in state.get("Catch", []) if state["Type"] == "Task" or inline else []:
            record = every[catch["Next"]].get("Parameters", {})
            if "States.ALL" in catch["ErrorEquals"] and "stage" in record:
                inner = state["ItemProcessor"]["States"] if inline else {name: state}
                tasks = [task for task, each in inner.items() if each["Type"] == "Task"]
                found.setdefault(record["stage"], []).extend(tasks)
    return found
