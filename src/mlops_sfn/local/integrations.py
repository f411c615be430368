"""The Step Functions integrations moto's interpreter lacks, plugged in while a local run executes.

moto picks a Task's service integration with `state_task_service_for(service_name)`. While
`installed(local)` is active that choice goes through `_service_for`, which adds:
- `arn:aws:states:::sagemaker:*`: the optimised SageMaker integration (moto has none), `.sync`
  included, answered by `LocalSageMaker`;
- `aws-sdk:*`: a local endpoint settles before DescribeEndpoint sees it; streamed bodies become
  strings, as on AWS;
- `arn:aws:states:::lambda:invoke`: functions run in this process (moto would need Docker);
- Tasks without Parameters send their effective input, as on AWS;
- on every Task: IAM's decision first: each call is checked against the state machine role's
  policies and the run's guardrails (`task_permissions`), and refused as AWS refuses it; then the
  failure a caller asked for (`Local.fail_states`), raised before the call, and the throttling of
  an API (`Local.throttle`), reported under the error name its integration uses;
- aws-sdk error names as Step Functions spells them (moto lowercases the service);
- AWS's refusals moto lacks (`limits.py`): `States.ALL` catches and retries neither
  `States.DataLimitExceeded` nor `States.Runtime`, StartExecution refuses an input above 262,144
  bytes, S3's CopyObject refuses a source above 5 GB, and a task waiting for a task token stops
  waiting when its execution is stopped. (moto already fails a state whose output or task result
  exceeds 256 KiB, and a failing Parallel branch already stops its siblings.)
- a `.sync` job runs in its own thread while the task polls it; when its execution or Parallel
  branch stops, the job is stopped as Step Functions stops it (it ends `Stopped`);
- RedriveExecution (`redrive.py`);
- monitoring schedules (`monitor.py`), alarm evaluation and alarm state change events (`alarms.py`).
Retry intervals are shortened by `retry_sleep_scale`, and Wait states by `wait_scale`, since moto's
interpreter really sleeps.
The patches are process-wide, but each run's wiring (`Local`) is found through the state machine
of the execution being interpreted, so several local runs (one per state machine) share a process.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from botocore.exceptions import ClientError
from botocore.response import StreamingBody

from ..core.asl import SDK_SERVICES
from . import accounts, autoscaling, distributed_map, limits, monitor, quotas, redrive, task_iam
from .motoport import (
    AmazonStateLanguageParser,
    CustomErrorName,
    EventDetails,
    FailureEvent,
    FailureEventException,
    HistoryEventType,
    LambdaFunctionErrorException,
    ResourceCondition,
    RetrierDecl,
    StatesErrorName,
    StatesErrorNameType,
    StateTaskServiceAwsSdk,
    StateTaskServiceCallback,
    StateTaskServiceLambda,
    TaskFailedEventDetails,
    WaitFunction,
    aws_sdk_task,
    boto_client_for,
    dynamodb_task,
    retrier_decl,
    sns_task,
    state_task_factory,
    unsupported_task,
)
from .sagemaker import (
    ACTIONS,
    JOBS,
    JobFailed,
    LocalSageMaker,
    client_error,
    install_group_policies,
    install_multi_model,
    install_tags,
)

# SageMaker errors Step Functions names after the SDK's exception classes; the rest are AmazonSageMakerException.
_MODELED_ERRORS = {"ResourceLimitExceeded", "ResourceInUse", "ResourceNotFound", "ConflictException"}


@dataclass
class Local:
    """What the interpreter is wired to during one local run."""

    sagemaker: LocalSageMaker
    # function ARN -> handler; the local stack's is a view of the deployed functions (server.Deployed)
    functions: Mapping[str, Callable[[Any, Any], Any]] = field(default_factory=dict)
    fail_states: dict[str, str] = field(default_factory=dict)  # Task state -> the stage failing there
    # "<service>:<action>" (e.g. "sagemaker:describeEndpoint") whose next call is throttled once.
    throttle: set[str] = field(default_factory=set)
    # SageMaker Create APIs whose next call is refused once with ResourceLimitExceeded (an account
    # quota reached for the moment: SageMaker API reference, the Create* actions' errors).
    limited: set[str] = field(default_factory=set)
    # Guardrail levels on top of the state machine role (`--deny`, `--scp`): each must allow a call.
    guardrails: list[Mapping[str, Any]] = field(default_factory=list)
    check_permissions: bool = True  # off only to measure what the checks cost (benchmarks/statemachine.py)
    retry_sleep_scale: float = 0.0
    wait_scale: float = 1.0  # Wait states: the local stack waits for nothing (its endpoints settle at once)


# State machine ARN -> the wiring of the local run that executes it; None: every other state machine
# (the local stack serves whatever Terraform deploys into it).
_RUNS: dict[str | None, Local] = {}
_RUNS_LOCK = threading.Lock()


def _local(env: Any) -> Local:
    """The wiring of the run that `env` (the interpreter's state of one execution) belongs to."""
    arn = env.states.context_object.context_object_data["StateMachine"]["Id"]
    found = _RUNS.get(arn) or _RUNS.get(None)
    if found is None:
        raise RuntimeError(f"no local run executes {arn}")
    return found


def _state_name(env: Any) -> str:
    return str(env.states.context_object.context_object_data["State"]["Name"])


def _failure(env: Any, resource: str, resource_type: str, error: str, cause: str) -> FailureEventException:
    name = StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed) if error == "States.TaskFailed" else None
    return FailureEventException(
        FailureEvent(
            env=env,
            error_name=name or CustomErrorName(error),
            event_type=HistoryEventType.TaskFailed,
            event_details=cast(
                EventDetails,
                {
                    "taskFailedEventDetails": TaskFailedEventDetails(
                        error=error, cause=cause, resource=resource, resourceType=resource_type
                    )
                },
            ),
        )
    )


class _InputAsRequest:
    """A Task without Parameters sends its effective input (after InputPath) as the request, as on AWS
    (moto's interpreter would send an empty request)."""

    parargs: Any

    def _eval_parameters(self, env: Any) -> dict[str, Any]:
        if self.parargs is None:
            return copy.deepcopy(env.stack[-1])
        result: dict[str, Any] = super()._eval_parameters(env)  # type: ignore[misc]
        return result


_JOB_POLL_SECONDS = 0.5


class SageMakerTask(_InputAsRequest, StateTaskServiceCallback):
    """arn:aws:states:::sagemaker:<action>[.sync]."""

    def __init__(self) -> None:
        # WaitForTaskToken is listed only because moto's engine interrupts a callback endpoint
        # unconditionally; SageMaker tasks never wait for a token (on AWS either).
        patterns: set[Any] = {ResourceCondition.Sync, ResourceCondition.WaitForTaskToken}
        super().__init__(supported_integration_patterns=patterns)

    def _validate_service_integration_is_supported(self) -> None:
        action = self.resource.api_action
        if action not in ACTIONS or (self.resource.condition == ResourceCondition.Sync and action not in JOBS):
            raise ValueError(f"{self.resource.resource_arn}: not a SageMaker integration this framework uses")

    def _eval_service_task(
        self, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
    ) -> None:
        part, local = resource_runtime_part, _local(env)
        if self.resource.api_action == "createModel":
            problem = task_iam.model_data_problem(local, normalised_parameters, part.region, part.account)
            if problem:
                raise client_error("ValidationException", problem, "CreateModel")
        env.stack.append(
            local.sagemaker.call(self.resource.api_action, normalised_parameters, part.region, part.account)
        )

    def _build_sync_resolver(
        self, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
    ) -> Callable[[], Any]:
        env.stack.pop()  # the create response: the task's result is the job's description
        action, part = self.resource.api_action, resource_runtime_part
        local = _local(env)
        s3, logs = (
            task_iam.as_job_role(local, normalised_parameters, part.region, part.account, api) for api in ("s3", "logs")
        )
        sagemaker = local.sagemaker
        job = sagemaker.start_job(action, normalised_parameters, part.region, part.account, s3, logs)

        def stop() -> None:
            if job.done():
                return
            sagemaker.stop_job(action, normalised_parameters, part.region, part.account)
            futures.wait([job])  # the local job's thread ends before the run does

        def resolve() -> Any:
            # moto polls this while the branch runs (every 0.5 s when it answers None): wait here
            # for the job a little, so that a local job's end is seen at once.
            if not futures.wait([job], timeout=_JOB_POLL_SECONDS).done:
                return None
            try:
                return job.result()
            except JobFailed as failed:  # as on AWS: States.TaskFailed, the description as the cause
                raise _failure(
                    env,
                    self._get_sfn_resource(),
                    self._get_sfn_resource_type(),
                    "States.TaskFailed",
                    json.dumps(failed.description),
                ) from None

        resolve.stop = stop  # type: ignore[attr-defined]
        return resolve

    def _eval_sync(
        self, env: Any, sync_resolver: Any, timeout_seconds: Any, callback_endpoint: Any, heartbeat_endpoint: Any
    ) -> Any:
        try:
            return super()._eval_sync(env, sync_resolver, timeout_seconds, callback_endpoint, heartbeat_endpoint)
        finally:
            if not env.is_running():  # a sibling branch failed, or the execution was stopped
                sync_resolver.stop()

    def _from_error(self, env: Any, ex: Exception) -> FailureEvent:
        if isinstance(ex, ClientError):
            code = ex.response["Error"]["Code"]
            error = (
                f"SageMaker.{code.removesuffix('Exception')}Exception"
                if code in _MODELED_ERRORS
                else "SageMaker.AmazonSageMakerException"
            )
            cause = (
                f"{ex.response['Error']['Message']} (Service: AmazonSageMaker; Status Code: 400; Error Code: {code})"
            )
            failure: FailureEvent = _failure(
                env, self._get_sfn_resource(), self._get_sfn_resource_type(), error, cause
            ).failure_event
            return failure
        result: FailureEvent = super()._from_error(env=env, ex=ex)
        return result


# Step Functions' service names of the AWS SDK integrations whose boto3 names differ.
_BOTO_NAMES = {"sagemakerruntime": "sagemaker-runtime", "applicationautoscaling": "application-autoscaling"}


class SdkTask(_InputAsRequest, StateTaskServiceAwsSdk):
    """aws-sdk:*: moto's, except that a local endpoint settles before DescribeEndpoint sees it,
    and a streamed body (s3:getObject) comes back as a string, as on AWS."""

    def _get_boto_service_name(self, boto_service_name: str | None = None) -> str:
        name: str = super()._get_boto_service_name(boto_service_name)
        return _BOTO_NAMES.get(name, name)  # moto lacks these of Step Functions' names

    @staticmethod
    def _normalise_service_error_name(service_name: str) -> str:
        # "<Service>.<Error>Exception" with the service in PascalCase, and <Service>.<Service>Exception
        # for errors the API does not model (Step Functions guide, "Using AWS SDK service
        # integrations"); moto would write "sagemaker.sagemakerException".
        return SDK_SERVICES.get(service_name.lower(), service_name)

    def _eval_service_task(
        self, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
    ) -> None:
        if (self.resource.api_name, self.resource.api_action) == ("sagemaker", "describeEndpoint"):
            part = resource_runtime_part
            _local(env).sagemaker.advance_endpoint(normalised_parameters["EndpointName"], part.region, part.account)
        super()._eval_service_task(env, resource_runtime_part, normalised_parameters, state_credentials)
        response = env.stack[-1]
        for key, value in response.items():
            if isinstance(value, StreamingBody):
                response[key] = value.read().decode("utf-8")


class LambdaTask(StateTaskServiceLambda):
    """lambda:invoke, with the function's handler run in this process."""

    def _eval_service_task(
        self, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
    ) -> None:
        name = normalised_parameters["FunctionName"]
        handler = _local(env).functions.get(name)
        if handler is None:
            raise ClientError(
                {
                    "Error": {"Code": "ResourceNotFoundException", "Message": f"Function not found: {name}"},
                    "ResponseMetadata": {"HTTPStatusCode": 404, "RequestId": "local"},
                },
                "Invoke",
            )
        event = json.loads(normalised_parameters.get("Payload") or b"{}")
        try:
            payload = json.loads(json.dumps(handler(event, None)))
        except Exception as error:  # reported as Lambda reports an unhandled error
            error_type = getattr(error, "error_type", None) or type(error).__name__  # a worker's: the handler's
            detail = {"errorType": error_type, "errorMessage": str(error)}
            raise LambdaFunctionErrorException("Unhandled", json.dumps(detail)) from error
        env.stack.append({"ExecutedVersion": "$LATEST", "Payload": payload, "StatusCode": 200})


# How each service says "slow down" (its error code and HTTP status); the integration names it.
# S3: SlowDown, 503 (S3 API reference, Error responses); Lambda: TooManyRequestsException, 429
# (Invoke); CloudWatch: Throttling, 400 (CloudWatch API reference, Common errors); SageMaker and
# the rest: ThrottlingException, 400.
_THROTTLES = {"s3": ("SlowDown", 503), "lambda": ("TooManyRequestsException", 429), "cloudwatch": ("Throttling", 400)}


def _throttled(api: str) -> ClientError:
    code, status = _THROTTLES.get(api.split(":")[0], ("ThrottlingException", 400))
    return ClientError(
        {
            "Error": {"Code": code, "Message": "Rate exceeded (mlops-sfn local run --throttle)"},
            "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "local-throttle"},
        },
        api.split(":")[1],
    )


def _with_faults(service: Any) -> Any:
    """Make the Task fail before its call when the caller asked for its stage to fail, or throttle
    its API's first call when asked to."""
    call = service._eval_service_task

    def evaluate(
        env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
    ) -> None:
        state, local = _state_name(env), _local(env)
        api = f"{service.resource.api_name}:{service.resource.api_action}"
        refused = task_iam.refusal(env, service, normalised_parameters, local)
        if refused:
            code, status, message = refused
            raise ClientError(
                {
                    "Error": {"Code": code, "Message": message},
                    "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "local-iam"},
                },
                service.resource.api_action,
            )
        if api in local.throttle:
            local.throttle.discard(api)
            raise _throttled(api)
        if api in local.limited:
            local.limited.discard(api)
            message = "The account-level service limit was exceeded (mlops-sfn local: refused once)"
            raise ClientError(
                {
                    "Error": {"Code": "ResourceLimitExceeded", "Message": message},
                    "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "local-limit"},
                },
                api.split(":")[1],
            )
        stage = local.fail_states.get(state)
        if stage is not None:
            cause = f"{state}: simulated failure of {stage} (mlops-sfn local run --fail {stage})"
            raise _failure(
                env, service._get_sfn_resource(), service._get_sfn_resource_type(), "SimulatedFailure", cause
            )
        _TASK.account = resource_runtime_part.account
        try:
            call(env, resource_runtime_part, normalised_parameters, state_credentials)
        finally:
            _TASK.account = None

    service._eval_service_task = evaluate
    return service


# The moto modules of the integrations a run uses (aws-sdk, dynamodb, sns, and s3, which moto runs as
# an unsupported one): their clients are made in the Task's account (client_for).
_CLIENT_MODULES: tuple[Any, ...] = (aws_sdk_task, dynamodb_task, sns_task, unsupported_task)
# The two moto module attributes this replaces while a run is active.
_FACTORY: Any = state_task_factory
_RETRIER: Any = retrier_decl
_ORIGINAL = _FACTORY.state_task_service_for
_SERVICES: dict[str, Callable[[], Any]] = {"sagemaker": SageMakerTask, "aws-sdk": SdkTask, "lambda": LambdaTask}


def _service_for(service_name: str) -> Any:
    make = _SERVICES.get(service_name)
    return _with_faults(make() if make else _ORIGINAL(service_name))


# moto's retrier sleeps through its module's `time`, with no execution at hand: the retrier is
# wrapped to note, in its thread, the run it retries for, and the stand-in `time` scales by it.
_RETRYING = threading.local()
_RETRY = RetrierDecl._eval_body


def _retry_for_run(self: Any, env: Any) -> None:
    _RETRYING.local = _local(env)
    try:
        _RETRY(self, env)
    finally:
        _RETRYING.local = None


class _ScaledClock:
    """Stands in for the `time` module in moto's retrier: sleeps scaled by the run retrying."""

    @staticmethod
    def sleep(seconds: float) -> None:
        local = getattr(_RETRYING, "local", None)
        time.sleep(seconds * (local.retry_sleep_scale if local else 1.0))

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


_WAIT = WaitFunction._wait_interval


def _scaled_wait(self: Any, env: Any, wait_seconds: int) -> None:
    _WAIT(self, env, int(wait_seconds * _local(env).wait_scale))


_UNINSTALL: list[Callable[[], None]] = []
_PARSE = AmazonStateLanguageParser.parse
_PARSED: dict[str, Any] = {}  # definition -> moto's parse of it under these patches (read only under them)
_PARSED_LOCK = threading.Lock()


def _parsed_once(definition: str) -> Any:
    """moto parses a definition when the state machine is created and again for every execution
    (about half a second each for ours). The parsed program keeps no execution's state (that lives
    in each execution's Environment, and what a run is wired to is looked up from it), so one parse
    made under these patches serves every execution of the definition, in any local run."""
    with _PARSED_LOCK:
        if definition not in _PARSED:
            _PARSED[definition] = _PARSE(definition)
        return _PARSED[definition]


# The account of the Task being evaluated in this thread: its execution's (moto's integrations make
# their clients with the region alone).
_TASK = threading.local()


def client_for(region: str, service: str, state_credentials: Any = None) -> Any:
    """A boto3 client of the local AWS, in the account of the Task this thread evaluates. moto builds a
    new one for every SDK task (a fifth of a run's time); clients are thread-safe and moto ignores the
    task's credentials, so one client per service, region and account serves every task."""
    return accounts.client(service, region, getattr(_TASK, "account", None) or accounts.DEFAULT)


def _map_client_checks(env: Any) -> tuple[bool, Any]:
    local = _local(env)
    return local.check_permissions, local.guardrails


def _patch() -> None:
    redrive.patch()
    # a client of its own each time: acting_as wires the role's checks into the client it is given
    own = lambda region: boto_client_for(region=region, service="s3")  # noqa: E731
    distributed_map.patch(distributed_map.acting_as_role(own, _map_client_checks))
    _UNINSTALL.append(monitor.install())
    _UNINSTALL.append(quotas.install())  # ListServiceQuotas, which moto lacks
    _UNINSTALL.append(install_tags())  # ListTags for every kind a run creates
    _UNINSTALL.append(install_group_policies())  # a package group's resource policy, which moto lacks
    _UNINSTALL.append(autoscaling.install())  # a scalable target's absence refused as AWS refuses it
    _UNINSTALL.append(install_multi_model())  # InvokeEndpoint's TargetModel on a multi-model endpoint
    limits.patch()
    _FACTORY.state_task_service_for = _service_for
    _RETRIER.time = _ScaledClock()
    RetrierDecl._eval_body = _retry_for_run  # type: ignore[method-assign]
    WaitFunction._wait_interval = _scaled_wait  # type: ignore[method-assign]
    AmazonStateLanguageParser.parse = staticmethod(_parsed_once)  # type: ignore[method-assign]
    for module in _CLIENT_MODULES:
        module.boto_client_for = client_for


def _unpatch() -> None:
    distributed_map.unpatch()  # before redrive's: it wraps redrive's DescribeExecution
    redrive.unpatch()
    while _UNINSTALL:
        _UNINSTALL.pop()()
    limits.unpatch()
    _FACTORY.state_task_service_for = _ORIGINAL
    _RETRIER.time = time
    RetrierDecl._eval_body = _RETRY  # type: ignore[method-assign]
    WaitFunction._wait_interval = _WAIT  # type: ignore[method-assign]
    AmazonStateLanguageParser.parse = staticmethod(_PARSE)  # type: ignore[method-assign]
    for module in _CLIENT_MODULES:
        module.boto_client_for = boto_client_for


@contextmanager
def installed(local: Local, state_machine_arn: str | None = None) -> Iterator[Local]:
    """Wire moto's interpreter to `local` for the executions of one state machine (None: of every
    state machine no other run claims) for the duration; moto is patched while any run is wired."""
    with _RUNS_LOCK:
        if state_machine_arn in _RUNS:
            raise RuntimeError(f"another local run executes {state_machine_arn or 'every state machine'}")
        if not _RUNS:
            _patch()
        _RUNS[state_machine_arn] = local
    try:
        yield local
    finally:
        with _RUNS_LOCK:
            del _RUNS[state_machine_arn]
            if not _RUNS:
                _unpatch()
