"""AWS's refusals moto's Step Functions and S3 lack, each as AWS documents it; patched in while a local run
executes (integrations.py installs them with the rest)."""

from __future__ import annotations

import json
import time
from typing import Any

from .motoport import (
    CallbackOutcomeTimedOut,
    EmptyResult,
    ErrorEqualsDecl,
    S3Backend,
    S3ClientError,
    StateTaskServiceCallback,
    StepFunctionResponse,
    StepFunctionsParserBackend,
    ValidationException,
    s3control_backends,
)
from .policy_evaluation import listed

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


# SendTaskFailure: the task fails with the `error` and `cause` sent (its TaskFailed event and the
# Catch's {Error, Cause} carry both), error "Length Constraints: Minimum length of 0. Maximum length of
# 256", cause "... Maximum length of 32768" (Step Functions API reference, SendTaskFailure). moto's
# handler drops the cause, so a rejection's reason never reached the run.
MAX_ERROR_CHARS, MAX_CAUSE_CHARS = 256, 32768


def _send_task_failure_with_cause(self: Any) -> Any:
    error, cause = self._get_param("error"), self._get_param("cause")
    for field, value, limit in (("error", error, MAX_ERROR_CHARS), ("cause", cause, MAX_CAUSE_CHARS)):
        if value is not None and len(value) > limit:
            raise ValidationException(
                f"1 validation error detected: Value at '{field}' failed to satisfy constraint: "
                f"Member must have length less than or equal to {limit}"
            )
    self.stepfunction_backend.send_task_failure(self._get_param("taskToken"), error=error, cause=cause)
    return EmptyResult()


_SEND_TASK_FAILURE = StepFunctionResponse.send_task_failure


# SendTaskSuccess: output "Length Constraints: Maximum length of 262144" (Step Functions API reference;
# the 256 KiB of a task's output, as UTF-8); moto takes any size.
_SEND_TASK_SUCCESS = StepFunctionResponse.send_task_success


def _send_task_success_within_limit(self: Any) -> Any:
    size = len((self._get_param("output") or "").encode("utf-8"))
    if size > MAX_INPUT_BYTES:
        raise ValidationException(
            f"1 validation error detected: Value at 'output' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_INPUT_BYTES} (it has {size} bytes)"
        )
    return _SEND_TASK_SUCCESS(self)


# PutBucketPolicy under Block Public Access: BlockPublicPolicy "causes Amazon S3 to reject calls to PUT
# Bucket policy if the specified bucket policy allows public access", the bucket's setting and its
# account's both applying (S3 API reference, PublicAccessBlockConfiguration; S3 Control,
# PutPublicAccessBlock). "Amazon S3 considers a bucket policy public unless" what it allows is granted
# to a fixed principal, or limited to fixed values of the keys below, or to a set of CIDRs with
# aws:SourceIp (the same, "The Meaning of Public"). S3 refuses with 403 AccessDenied; moto stores any
# policy. A grant by organisation (aws:PrincipalOrgID, aws:PrincipalOrgPaths) is not in that list.
_FIXED_KEYS = frozenset(
    key.lower()
    for key in (
        "aws:SourceArn",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:SourceOwner",
        "aws:SourceAccount",
        "aws:userid",
        "s3:x-amz-server-side-encryption-aws-kms-key-id",
    )
)
_EXACT = ("StringEquals", "StringEqualsIgnoreCase", "StringLike", "ArnEquals", "ArnLike")
_PUT_POLICY = S3Backend.put_bucket_policy


def _fixed(values: list[Any]) -> bool:
    return all("*" not in str(value) and "?" not in str(value) for value in values)


def _limited(condition: dict[str, Any]) -> bool:
    """Whether a statement's Condition holds it to fixed values of the keys S3 accepts as limits."""
    for operator, keys in condition.items():
        for key, values in keys.items():
            values = listed(values)
            if operator in _EXACT and key.lower() in _FIXED_KEYS and _fixed(values):
                return True
            cidrs = operator == "IpAddress" and key.lower() == "aws:sourceip"
            if cidrs and not any(str(value).endswith("/0") for value in values):  # /0: every address
                return True
    return False


def public_statements(policy: dict[str, Any]) -> list[str]:
    """The Sids (or indexes) of the statements that make a bucket policy public in S3's sense."""
    found = []
    statements = policy.get("Statement", [])
    for index, statement in enumerate(listed(statements)):
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        anyone = "NotPrincipal" in statement or principal == "*"
        if isinstance(principal, dict):
            anyone = anyone or not all(_fixed(listed(values)) for values in principal.values())
        if anyone and not _limited(statement.get("Condition", {})):
            found.append(str(statement.get("Sid", f"#{index}")))
    return found


def _blocks_public_policy(bucket: Any) -> bool:
    own = bucket.public_access_block
    account = s3control_backends[bucket.account_id]["global"].public_access_block
    return any(block is not None and block.block_public_policy for block in (own, account))


def _put_policy_unless_public(self: Any, bucket_name: str, policy: bytes) -> None:
    bucket = self.get_bucket(bucket_name)
    if _blocks_public_policy(bucket):
        public = public_statements(json.loads(policy))
        if public:
            raise S3ClientError(
                "AccessDenied",
                f"Access Denied: the bucket policy allows public access (statements {', '.join(public)}) "
                "and Block Public Access (BlockPublicPolicy, of the bucket or its account) refuses it",
            )
    _PUT_POLICY(self, bucket_name, policy)


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
    S3Backend.put_bucket_policy = _put_policy_unless_public  # type: ignore[method-assign]
    StepFunctionResponse.send_task_failure = _send_task_failure_with_cause  # type: ignore[method-assign]
    StepFunctionResponse.send_task_success = _send_task_success_within_limit  # type: ignore[method-assign]


def unpatch() -> None:
    StateTaskServiceCallback._eval_wait_for_task_token = _WAIT_FOR_TOKEN  # type: ignore[method-assign]
    ErrorEqualsDecl._eval_body = _MATCH  # type: ignore[method-assign]
    StepFunctionsParserBackend.start_execution = _START  # type: ignore[method-assign]
    S3Backend.copy_object = _COPY  # type: ignore[method-assign]
    S3Backend.put_bucket_policy = _PUT_POLICY  # type: ignore[method-assign]
    StepFunctionResponse.send_task_failure = _SEND_TASK_FAILURE  # type: ignore[method-assign]
    StepFunctionResponse.send_task_success = _SEND_TASK_SUCCESS  # type: ignore[method-assign]
