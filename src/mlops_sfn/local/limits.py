"""AWS's refusals moto's Step Functions and S3 lack, each as AWS documents it; patched in while a local run
executes (integrations.py installs them with the rest)."""

from __future__ import annotations

import time
from typing import Any

from .motoport import (
    CallbackOutcomeTimedOut,
    ErrorEqualsDecl,
    S3Backend,
    S3ClientError,
    StateTaskServiceCallback,
    StepFunctionsParserBackend,
    ValidationException,
)

# "States.ALL ... can't catch the States.DataLimitExceeded terminal error or the Runtime error
# types" ("Handling errors in Step Functions workflows", Step Functions guide, Error names); moto's
# States.ALL matches them, so a Catch would hide a failure that ends the execution on AWS.
UNCATCHABLE = ("States.DataLimitExceeded", "States.Runtime")
_MATCH = ErrorEqualsDecl._eval_body


def _match_but_uncatchable(self: Any, env: Any) -> None:
    error = env.stack[-1]
    if getattr(error, "error_name", None) in UNCATCHABLE and error not in self.error_names:
        env.stack.pop()
        env.stack.append(False)  # only a Catch or Retry that names it could match it
        return
    _MATCH(self, env)


# StartExecution's input: "Length Constraints: Maximum length of 262144", in bytes of its UTF-8
# encoding (Step Functions API reference, StartExecution); moto accepts any size.
MAX_INPUT_BYTES = 262_144
_START = StepFunctionsParserBackend.start_execution


def _start_within_limit(
    self: Any, state_machine_arn: str, name: Any = None, execution_input: Any = None, **rest: Any
) -> Any:
    size = len((execution_input or "").encode("utf-8"))
    if size > MAX_INPUT_BYTES:
        raise ValidationException(
            f"1 validation error detected: Value at 'input' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_INPUT_BYTES} (it has {size} bytes)"
        )
    return _START(self, state_machine_arn, name, execution_input, **rest)


# CopyObject: "you create a copy of your object up to 5 GB in size in a single atomic action using
# this API. However, to copy an object greater than 5 GB, you must use the multipart upload Upload
# Part - Copy (UploadPartCopy) API" (S3 API reference, CopyObject); S3 answers InvalidRequest.
# moto copies any size. (Read at each call, so a test can lower it instead of storing 5 GB.)
MAX_COPY_SOURCE_BYTES = 5 * 1024**3
_COPY = S3Backend.copy_object


def _copy_within_limit(self: Any, src_key: Any, *args: Any, **kwargs: Any) -> Any:
    if src_key.size > MAX_COPY_SOURCE_BYTES:
        raise S3ClientError(
            "InvalidRequest",
            f"The specified copy source is larger than the maximum allowable size for a copy source: "
            f"{MAX_COPY_SOURCE_BYTES}",
        )
    return _COPY(self, src_key, *args, **kwargs)


# "StopExecution: Stops an execution" whatever it is doing (Step Functions API reference); moto's
# task waiting for a task token keeps waiting, so a stopped run waiting for an approval stayed RUNNING.
_WAIT_FOR_TOKEN = StateTaskServiceCallback._eval_wait_for_task_token
_TOKEN_POLL_SECONDS = 0.2


def _wait_for_token_until_stopped(
    self: Any, env: Any, timeout_seconds: Any, callback_endpoint: Any, heartbeat_endpoint: Any
) -> Any:
    if heartbeat_endpoint is not None:
        return _WAIT_FOR_TOKEN(self, env, timeout_seconds, callback_endpoint, heartbeat_endpoint)
    deadline = time.monotonic() + timeout_seconds if timeout_seconds else None
    while env.is_running():
        left = _TOKEN_POLL_SECONDS if deadline is None else min(_TOKEN_POLL_SECONDS, deadline - time.monotonic())
        outcome = callback_endpoint.wait(timeout=max(left, 0))
        if outcome is not None:
            return outcome
        if deadline is not None and time.monotonic() >= deadline:
            return CallbackOutcomeTimedOut(callback_id=callback_endpoint.callback_id)
    return None  # stopped: the execution ends ABORTED


def patch() -> None:
    StateTaskServiceCallback._eval_wait_for_task_token = _wait_for_token_until_stopped  # type: ignore[method-assign]
    ErrorEqualsDecl._eval_body = _match_but_uncatchable  # type: ignore[method-assign]
    StepFunctionsParserBackend.start_execution = _start_within_limit  # type: ignore[method-assign,assignment]
    S3Backend.copy_object = _copy_within_limit  # type: ignore[method-assign]


def unpatch() -> None:
    StateTaskServiceCallback._eval_wait_for_task_token = _WAIT_FOR_TOKEN  # type: ignore[method-assign]
    ErrorEqualsDecl._eval_body = _MATCH  # type: ignore[method-assign]
    StepFunctionsParserBackend.start_execution = _START  # type: ignore[method-assign]
    S3Backend.copy_object = _COPY  # type: ignore[method-assign]
