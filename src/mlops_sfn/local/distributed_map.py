"""Step Functions' Distributed Map as AWS runs it, where moto's interpreter differs.

moto runs a Distributed Map's items in threads (MaxConcurrency of them at once, as AWS bounds its
child executions), but:
- it ignores the tolerated failures: a failed child is a null result and the Map succeeds. On AWS
  a failed, timed-out or aborted child counts against ToleratedFailureCount and
  ToleratedFailurePercentage (both 0 by default), and beyond either the Map fails with
  States.ExceedToleratedFailureThreshold ("Distributed Map state", "Setting failure thresholds",
  Step Functions developer guide);
- its ResultWriter reads its Parameters from the children's outputs and writes an empty manifest.
  On AWS the Parameters are read from the state's input, and the results are exported as
  `<Prefix>/<map run id>/manifest.json` listing SUCCEEDED_n.json, FAILED_n.json and PENDING_n.json,
  each a JSON array with one object per child: ExecutionArn, Name, Input, Output (or Error and
  Cause), Status, StartDate, StopDate ("ResultWriter (Map)", "Exporting to Amazon S3"). The state's
  result is {MapRunArn, ResultWriterDetails: {Bucket, Key}}. Here the results are written when the
  threshold fails the Map too, so that `status` can name the failed segments;
- its item reader and result writer call S3 as nobody: here they call it as the state machine's
  role, IAM deciding ("IAM policies for using Distributed Map states"); a refusal fails the Map with
  States.ItemReaderFailed or States.ResultWriterFailed, the errors AWS names for them ("Error
  handling in Step Functions", States.* errors).
Its child executions are not executions moto knows: here ListExecutions with a mapRunArn lists
them and DescribeExecution describes one, from the records the writer exports, as AWS lists and
describes a Map Run's child workflow executions (API reference, ListExecutions: "mapRunArn ... lists
all child workflow executions started by a Map Run"; DescribeExecution answers a child's mapRunArn).
The last KEPT_MAP_RUNS Map Runs are kept (a long-running local server would otherwise grow); their
histories are not (GetExecutionHistory of a child is refused: moto has no such execution).
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

from botocore.exceptions import ClientError

from . import task_permissions
from .motoport import (
    ActionResult,
    DistributedItemProcessorWorker,
    DistributedIterationComponent,
    EventDetails,
    FailureEvent,
    FailureEventException,
    HistoryEventType,
    ItemReaderS3,
    JsonRESTError,
    ProgramError,
    ProgramStopped,
    ProgramTimedOut,
    ResultWriter,
    StateMap,
    StatesErrorName,
    StatesErrorNameType,
    StepFunctionResponse,
)

_EVAL_JOB = DistributedItemProcessorWorker._eval_job
_MAP_RUN = DistributedIterationComponent._map_run
_EVAL_EXECUTION = StateMap._eval_execution
_WRITE = ResultWriter._eval_body
_READ = ItemReaderS3._handle_get_object

# Map Run ARN -> its children's records, in the order they ended.
_CHILDREN: dict[str, list[dict[str, Any]]] = {}
# Map Runs that ended -> their children's records, the latest KEPT_MAP_RUNS, for ListExecutions.
KEPT_MAP_RUNS = 50
_ENDED: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
# A kept child's ARN -> its Map Run: DescribeExecution, which polls every run, looks a child up once.
_RUN_OF_CHILD: dict[str, str] = {}
_LOCK = threading.Lock()
THRESHOLD_CAUSE = "The specified tolerated failure threshold for the Map Run has been exceeded."


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _eval_job(self: Any, env: Any, job: Any) -> None:
    """One child execution, recorded as AWS's results list it."""
    started = _now()
    _EVAL_JOB(self, env, job)
    ended = env.program_state()
    record: dict[str, Any] = {"Input": json.dumps(job.job_input), "StartDate": started, "StopDate": _now()}
    if isinstance(ended, ProgramError):
        error = ended.error or {}
        record |= {"Status": "FAILED", "Error": error.get("error", ""), "Cause": error.get("cause", "")}
    elif isinstance(ended, ProgramTimedOut):
        record |= {"Status": "TIMED_OUT", "Error": "States.Timeout", "Cause": ""}
    elif isinstance(ended, ProgramStopped):
        record |= {"Status": "ABORTED", "Error": "", "Cause": ""}
    elif job.job_output is None:  # the child's evaluation raised: what AWS reports as a runtime failure
        record |= {"Status": "FAILED", "Error": "States.Runtime", "Cause": "the child execution could not run"}
    else:
        record |= {"Status": "SUCCEEDED", "Output": json.dumps(job.job_output)}
    run = self._map_run_record.map_run_arn
    name = str(uuid.uuid4())
    # arn:...:mapRun:<state machine>/<label>:<id> -> arn:...:execution:<state machine>/<label>:<child>
    record = {
        "ExecutionArn": run.replace(":mapRun:", ":execution:").rsplit(":", 1)[0] + f":{name}",
        "Name": name,
    } | record
    with _LOCK:
        _CHILDREN.setdefault(run, []).append(record)


def _exceeded(children: list[dict[str, Any]], count: int, percentage: float) -> bool:
    failed = sum(child["Status"] != "SUCCEEDED" for child in children)
    return failed > count or (bool(children) and failed * 100 > percentage * len(children))


# Parent execution ARN -> its children's history events (the newest runs' only): Step Functions keeps
# each child's history with the child; moto keeps none, and `local run` reports the states they entered.
_CHILD_EVENTS: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
_KEPT_EVENTS = 16


def child_events(execution_arn: str) -> list[dict[str, Any]]:
    """The history events of an execution's child executions (its Distributed Map's), taken once."""
    with _LOCK:
        return _CHILD_EVENTS.pop(execution_arn, [])


def _map_run(self: Any, env: Any, eval_input: Any) -> None:
    try:
        _MAP_RUN(self, env, eval_input)
    finally:  # env.event_manager is the children's here (moto gives them one of their own)
        parent = env.states.context_object.context_object_data["Execution"]["Id"]
        with _LOCK:
            _CHILD_EVENTS.setdefault(parent, []).extend(env.event_manager._history_event_list)
            while len(_CHILD_EVENTS) > _KEPT_EVENTS:
                _CHILD_EVENTS.popitem(last=False)
    record = eval_input.map_run_record
    with _LOCK:
        children = list(_CHILDREN.get(record.map_run_arn, []))
    if _exceeded(children, eval_input.tolerated_failure_count, eval_input.tolerated_failure_percentage):
        writer = getattr(env, "_mlops_writer", None)
        if writer is not None:
            _export(writer, env, record.map_run_arn)
        raise _failure(env, StatesErrorNameType.StatesExceedToleratedFailureThreshold, THRESHOLD_CAUSE)


def _failure(env: Any, kind: Any, cause: str) -> FailureEventException:
    name = StatesErrorName(typ=kind)
    details = cast(EventDetails, {"executionFailedEventDetails": {"error": name.error_name, "cause": cause}})
    return FailureEventException(
        failure_event=FailureEvent(
            env=env, error_name=name, event_type=HistoryEventType.MapRunFailed, event_details=details
        )
    )


def _eval_execution(self: Any, env: Any) -> None:
    """Keeps what the result writer reads: the state's input, and the writer itself."""
    env._mlops_map_input = copy.deepcopy(env.states.get_input())
    env._mlops_writer = self.result_writer
    try:
        _EVAL_EXECUTION(self, env)
    finally:  # what the writer exported is in S3 now
        with _LOCK:
            for record in env.map_run_record_pool_manager.get_all():
                children = _ENDED[record.map_run_arn] = _CHILDREN.pop(record.map_run_arn, [])
                _RUN_OF_CHILD.update((child["ExecutionArn"], record.map_run_arn) for child in children)
                while len(_ENDED) > KEPT_MAP_RUNS:
                    for child in _ENDED.popitem(last=False)[1]:
                        _RUN_OF_CHILD.pop(child["ExecutionArn"], None)


def _write(self: Any, env: Any) -> None:
    env.stack.pop()  # the children's outputs: AWS exports them instead of returning them
    run = env.map_run_record_pool_manager.get_all()[-1].map_run_arn
    env.stack.append(_export(self, env, run))


def _export(writer: Any, env: Any, run: str) -> dict[str, Any]:
    """Writes the Map Run's results as AWS exports them; returns the state's result."""
    env.stack.append(env._mlops_map_input)  # AWS reads the Parameters from the state's input (paths read the top)
    try:
        writer.parargs.eval(env=env)
        parameters = env.stack.pop()
    finally:
        env.stack.pop()
    bucket, prefix = parameters["Bucket"], parameters.get("Prefix", "")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    folder = f"{prefix}{run.rsplit(':', 1)[1]}/"
    with _LOCK:
        children = list(_CHILDREN.get(run, []))
    s3 = _s3(env, "ResultWriter")
    manifest: dict[str, Any] = {"DestinationBucket": bucket, "MapRunArn": run, "ResultFiles": {}}
    for status in ("FAILED", "PENDING", "SUCCEEDED"):
        # FAILED_n.json holds the failed, timed-out and aborted children
        listed = [
            c
            for c in children
            if (c["Status"] == status) or (status == "FAILED" and c["Status"] in ("TIMED_OUT", "ABORTED"))
        ]
        files = []
        if listed:
            key, body = f"{folder}{status}_0.json", json.dumps(listed).encode("utf-8")
            _put(s3, env, bucket, key, body)
            files.append({"Key": key, "Size": len(body)})
        manifest["ResultFiles"][status] = files
    key = f"{folder}manifest.json"
    _put(s3, env, bucket, key, json.dumps(manifest).encode("utf-8"))
    return {"MapRunArn": run, "ResultWriterDetails": {"Bucket": bucket, "Key": key}}


def _put(s3: Any, env: Any, bucket: str, key: str, body: bytes) -> None:
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    except ClientError as error:
        raise _failure(env, StatesErrorNameType.StatesResultWriterFailed, str(error)) from None


def _read(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
    parameters = env.stack.pop()
    try:
        response = _s3(env, "ItemReader").get_object(**parameters)
    except ClientError as error:
        raise _failure(env, StatesErrorNameType.StatesItemReaderFailed, str(error)) from None
    env.stack.append(response["Body"].read().decode("utf-8"))


# Set by patch(): (env) -> an S3 client acting as the execution's role, or a plain one.
_CLIENT: Callable[[Any], Any] | None = None


def _s3(env: Any, part: str) -> Any:
    assert _CLIENT is not None, f"{part} ran without distributed_map.patch()"
    return _CLIENT(env)


def acting_as_role(plain: Callable[[str], Any], checks: Callable[[Any], tuple[bool, Any]]) -> Callable[[Any], Any]:
    """A client maker for `patch`: `plain(region)` is an S3 client of the local AWS; `checks(env)`
    says whether IAM decides for the execution's run, and its guardrails."""

    def make(env: Any) -> Any:
        context = env.states.context_object.context_object_data
        decide, guardrails = checks(env)
        client = plain(context["StateMachine"]["Id"].split(":")[3])
        if not decide:
            return client
        role = context["Execution"]["RoleArn"]
        policies = task_permissions.role_policies(role) or []
        return task_permissions.acting_as(client, role, policies, guardrails)

    return make


def _listed(run: str, child: dict[str, Any]) -> dict[str, Any]:
    """A child as ListExecutions lists it (its state machine: the Map Run's, with the Map's label)."""
    return {
        "executionArn": child["ExecutionArn"],
        "stateMachineArn": run.replace(":mapRun:", ":stateMachine:").rsplit(":", 1)[0],
        "name": child["Name"],
        "status": child["Status"],
        "startDate": datetime.fromisoformat(child["StartDate"]),
        "stopDate": datetime.fromisoformat(child["StopDate"]),
        "mapRunArn": run,
    }


def _list_executions(self: Any) -> Any:
    run = self._get_param("mapRunArn")
    if not run:
        return _LIST(self)
    with _LOCK:
        children = _ENDED.get(run, _CHILDREN.get(run))
    if children is None:
        raise JsonRESTError("ResourceNotFound", f"Map Run does not exist: {run}")
    wanted = self._get_param("statusFilter")
    listed = [_listed(run, child) for child in children if wanted in (None, child["Status"])]
    return ActionResult({"executions": listed})


def _describe_execution(self: Any) -> Any:
    arn = self._get_param("executionArn")
    with _LOCK:
        run = _RUN_OF_CHILD.get(arn)
        child = next((c for c in _ENDED[run] if c["ExecutionArn"] == arn), None) if run else None
    if run is None or child is None:
        return _DESCRIBED(self)
    described = _listed(run, child) | {"input": child["Input"]}
    described |= {key.lower(): child[key] for key in ("Output", "Error", "Cause") if child.get(key)}
    return ActionResult(described)


_LIST = StepFunctionResponse.list_executions
_DESCRIBED: Any = None  # DescribeExecution as it was when patched (redrive's)


def patch(client: Callable[[Any], Any]) -> None:
    global _CLIENT, _DESCRIBED
    _CLIENT = client
    _DESCRIBED = StepFunctionResponse.describe_execution
    StepFunctionResponse.list_executions = _list_executions  # type: ignore[method-assign]
    StepFunctionResponse.describe_execution = _describe_execution  # type: ignore[method-assign]
    DistributedItemProcessorWorker._eval_job = _eval_job  # type: ignore[method-assign]
    DistributedIterationComponent._map_run = _map_run  # type: ignore[method-assign]
    StateMap._eval_execution = _eval_execution  # type: ignore[method-assign]
    ResultWriter._eval_body = _write  # type: ignore[method-assign]
    ItemReaderS3._handle_get_object = staticmethod(_read)  # type: ignore[method-assign]


def unpatch() -> None:
    global _CLIENT
    _CLIENT = None
    StepFunctionResponse.list_executions = _LIST  # type: ignore[method-assign]
    StepFunctionResponse.describe_execution = _DESCRIBED  # type: ignore[method-assign]
    DistributedItemProcessorWorker._eval_job = _EVAL_JOB  # type: ignore[method-assign]
    DistributedIterationComponent._map_run = _MAP_RUN  # type: ignore[method-assign]
    StateMap._eval_execution = _EVAL_EXECUTION  # type: ignore[method-assign]
    ResultWriter._eval_body = _WRITE  # type: ignore[method-assign]
    ItemReaderS3._handle_get_object = staticmethod(_READ)  # type: ignore[method-assign]
