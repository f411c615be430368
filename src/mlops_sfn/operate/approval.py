"""Answering a manual approval: `mlops-sfn approve|reject TOKEN_OR_EXECUTION`.

The "Ask for approval" state publishes the task token to the approval topic and waits. An approver
answers with the token from that message, or with the execution (ARN, or name plus the state
machine ARN), whose history holds the token of the request still waiting.
"""

from __future__ import annotations

import json
from typing import Any

from ..core import names
from ..core.names import EXECUTION_NAME
from ..core.problems import Error
from .runs import history

APPROVAL_RESOURCE = ("sns", "publish.waitForTaskToken")
MAX_OUTPUT, MAX_CAUSE = 262_144, 32_768  # SendTaskSuccess's output (UTF-8 bytes), SendTaskFailure's cause
REJECTED_ERROR = "Rejected"  # the state machine catches this error name and rejects the model package


class ApprovalError(Error):
    pass


def is_execution_name(target: str) -> bool:
    """Whether `target` is an execution's name (AWS task tokens are long and use characters execution
    names cannot hold)."""
    return EXECUTION_NAME.fullmatch(target) is not None


def execution_arn(target: str, state_machine_arn: str | None) -> str | None:
    """The execution ARN `target` names, or None when target is a task token."""
    if target.startswith("arn:") and ":execution:" in target:
        return target
    if state_machine_arn and ":stateMachine:" in state_machine_arn and is_execution_name(target):
        return names.execution_arn(state_machine_arn, target)
    return None


def waiting_token(sfn: Any, execution: str) -> str:
    """The task token of the approval request `execution` is waiting on."""
    try:
        status = sfn.describe_execution(executionArn=execution)["status"]
    except sfn.exceptions.ExecutionDoesNotExist:
        raise ApprovalError(f"no execution {execution}") from None
    if status != "RUNNING":
        raise ApprovalError(f"execution {execution} is {status}: nothing waits for an answer")
    token = requested_token(history(sfn, execution))
    if token is None:
        raise ApprovalError(f"execution {execution} has not asked for an approval (yet)")
    return token


def requested_token(events: list[dict[str, Any]]) -> str | None:
    """The task token of the latest approval request in an execution's history."""
    token = None
    for event in events:
        details = event.get("taskScheduledEventDetails")
        if details and (details["resourceType"], details["resource"]) == APPROVAL_RESOURCE:
            token = json.loads(details["parameters"])["Message"]["task_token"]
    return str(token) if token is not None else None


def answer(
    sfn: Any, target: str, approved: bool, comment: str | None = None, state_machine_arn: str | None = None
) -> str:
    """Approve or reject; returns the task token answered. Raises ApprovalError saying why not."""
    output = json.dumps({"approved": True, "comment": comment or ""})
    cause = comment or "rejected with mlops-sfn reject"
    # Step Functions API reference: SendTaskSuccess's output is at most 262144 (bytes of UTF-8),
    # SendTaskFailure's cause 32768 characters; refused before anything is answered
    what, size, limit = ("output", len(output.encode()), MAX_OUTPUT) if approved else ("cause", len(cause), MAX_CAUSE)
    if size > limit:
        raise ApprovalError(
            f"--comment: {len(comment or '')} characters make the answer's {what} {size}; Step Functions takes "
            f"at most {limit}: shorten it"
        )
    execution = execution_arn(target, state_machine_arn)
    token = waiting_token(sfn, execution) if execution else target
    try:
        if approved:
            sfn.send_task_success(taskToken=token, output=output)
        else:
            sfn.send_task_failure(taskToken=token, error=REJECTED_ERROR, cause=cause)
    except (sfn.exceptions.TaskDoesNotExist, sfn.exceptions.InvalidToken, sfn.exceptions.TaskTimedOut) as error:
        raise ApprovalError(f"the approval request is no longer waiting ({error.response['Error']['Code']})") from None
    return token
