"""RedriveExecution, which moto lacks, as the Step Functions guide and API reference describe it.

"When you redrive an execution, it continues the failed execution from the unsuccessful step and
uses the same input. Step Functions preserves the results and execution history of the successful
steps, and doesn't rerun these steps ... Redriven executions use the same state machine definition
and execution ARN" (API reference, RedriveExecution; guide, "Redriving executions"). So here:
- the unsuccessful step is the last top-level state entered and never exited (a Task that failed
  or was running when the execution was stopped, or the Fail state a caught error led to); it runs
  again with the input it had, and the execution goes on from it;
- the history goes on, numbered after the earlier events, from an `ExecutionRedriven` event;
  DescribeExecution reports `redriveCount` and `redriveDate`;
- refused with ExecutionNotRedrivable, with the reasons DescribeExecution's `redriveStatusReason`
  lists, for a RUNNING or SUCCEEDED execution and after the 14-day redrivable period.
Not modelled: redriving inside a Parallel or Map state (AWS reruns only its failed or aborted
branches); such a redrive is refused with a message that says so, never accepted.
"""

from __future__ import annotations

import copy
import datetime
import json
from typing import Any, cast

from ..operate.runs import unsuccessful_state
from .motoport import (
    ActionResult,
    EvaluationDetails,
    EventDetails,
    Execution,
    ExecutionStatus,
    ExecutionWorker,
    HistoryEventType,
    JsonRESTError,
    StateMachineDetails,
    StepFunctionResponse,
)

REDRIVABLE_DAYS = 14  # "didn't complete successfully in the last 14 days"


class ExecutionNotRedrivable(JsonRESTError):
    def __init__(self, reason: str) -> None:
        super().__init__("ExecutionNotRedrivable", reason)


class _RedriveWorker(ExecutionWorker):
    """Runs the definition from the unsuccessful state, with that state's input, continuing the history."""

    def __init__(self, *args: Any, state_input: Any, first_event_id: int, redrive_count: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._state_input, self._first_event_id, self._redrive_count = state_input, first_event_id, redrive_count

    def _execution_logic(self) -> None:
        program = self._get_evaluation_entrypoint()
        self.env = self._get_evaluation_environment()
        self.env.states.reset(self._state_input)
        self.env.event_manager._event_id_gen._next_id = self._first_event_id
        self.env.event_manager.add_event(
            context=self.env.event_history_context,
            event_type=HistoryEventType.ExecutionRedriven,
            event_details=cast(EventDetails, {"executionRedrivenEventDetails": {"redriveCount": self._redrive_count}}),
            update_source_event_id=False,
        )
        program.eval(self.env)
        self._execution_communication.terminated()


def redrive(backend: Any, execution_arn: str) -> Execution:
    execution: Execution = backend.describe_execution(execution_arn)
    status = execution.exec_status
    if status in (ExecutionStatus.RUNNING, ExecutionStatus.SUCCEEDED):
        raise ExecutionNotRedrivable(f"Execution is {status.value} and cannot be redriven.")
    now = datetime.datetime.now(tz=datetime.UTC)
    if execution.stop_date and now - execution.stop_date > datetime.timedelta(days=REDRIVABLE_DAYS):
        raise ExecutionNotRedrivable("Execution redrivable period exceeded.")
    events: list[dict[str, Any]] = [dict(event) for event in execution.to_history_output()["events"]]
    definition = json.loads(execution.state_machine.definition)
    found = unsuccessful_state(events, definition["States"])
    if found is None:
        raise ExecutionNotRedrivable("Execution has no unsuccessful state to redrive from.")
    state, state_input = found
    if definition["States"][state]["Type"] in ("Parallel", "Map"):
        raise JsonRESTError(
            "NotImplemented",
            f"mlops-sfn's local AWS does not redrive inside the {definition['States'][state]['Type']} "
            f"state {state!r} (AWS reruns only its failed branches)",
        )
    redrive_count = getattr(execution, "redrive_count", 0) + 1
    details = execution.get_start_state_machine_details()
    restarted = copy.deepcopy(definition) | {"StartAt": state}
    worker = _RedriveWorker(
        evaluation_details=EvaluationDetails(
            aws_execution_details=execution._get_start_aws_execution_details(),
            execution_details=execution.get_start_execution_details(),
            state_machine_details=StateMachineDetails(
                arn=details.arn, name=details.name, typ=details.typ, definition=json.dumps(restarted)
            ),
        ),
        exec_comm=execution._get_start_execution_worker_comm(),
        cloud_watch_logging_session=execution._cloud_watch_logging_session,
        activity_store=execution._activity_store,
        state_input=state_input,
        first_event_id=len(events) + 1,
        redrive_count=redrive_count,
    )
    execution.earlier_events = events  # type: ignore[attr-defined]
    execution.redrive_count = redrive_count  # type: ignore[attr-defined]
    execution.redrive_date = now  # type: ignore[attr-defined]
    execution.exec_status, execution.stop_date = ExecutionStatus.RUNNING, None
    execution.error = execution.cause = execution.output = None
    execution.exec_worker = worker
    worker.start()  # type: ignore[no-untyped-call]
    return execution


# --- wired into moto while a local run is --------------------------------------------------------------

_HISTORY = Execution.to_history_output
_DESCRIBE = StepFunctionResponse.describe_execution


def _history(self: Any) -> Any:
    found = _HISTORY(self)
    earlier = getattr(self, "earlier_events", None)
    if earlier:
        found = {**found, "events": [*earlier, *found["events"]]}
    return found


def _respond_redrive(self: Any) -> Any:
    execution = redrive(self.stepfunction_backend, self._get_param("executionArn"))
    return ActionResult({"redriveDate": execution.redrive_date})  # type: ignore[attr-defined]


def _describe(self: Any) -> Any:
    result = _DESCRIBE(self)
    execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
    if getattr(execution, "redrive_count", 0):
        result.result.update(redriveCount=execution.redrive_count, redriveDate=execution.redrive_date)  # type: ignore[attr-defined]
    return result


def patch() -> None:
    Execution.to_history_output = _history  # type: ignore[method-assign]
    StepFunctionResponse.redrive_execution = _respond_redrive  # type: ignore[attr-defined]
    StepFunctionResponse.describe_execution = _describe  # type: ignore[method-assign]


def unpatch() -> None:
    Execution.to_history_output = _HISTORY  # type: ignore[method-assign]
    del StepFunctionResponse.redrive_execution  # type: ignore[attr-defined]
    StepFunctionResponse.describe_execution = _DESCRIBE  # type: ignore[method-assign]
