"""Lambda on this machine: the functions Terraform deployed into the local AWS, run as Lambda runs them.

moto records functions but, without Docker, never runs them. `LocalLambda` runs a function's
deployment package (its zip, as moto stored it) in warm `Worker` processes with the function's
handler, environment variables and timeout. As on AWS, each container serves one request at a
time and concurrent requests get containers of their own (each cold start writes an `INIT_START`
line to the function's log), up to the function's reserved concurrency, else `MAX_CONTAINERS`
(AWS allows the account's concurrency, 1,000 by default; here twice the cores, at least 4). "Each execution
environment can only process one request at a time" (Lambda Developer Guide, "Understanding Lambda
function scaling"):
- `invoke()`: a synchronous invocation (Step Functions' lambda:invoke, `aws lambda invoke`);
- `invoke_async()`: an asynchronous one (EventBridge targets, `--invocation-type Event`): queued,
  retried as the function's event invoke config says (MaximumRetryAttempts, default 2; AWS waits
  about 1 then 2 minutes between attempts, this runtime does not wait), then sent to its on-failure
  destination as Lambda's invocation record, so a rejected event lands in the dead-letter queue.
Each function's output (its JSON log lines) goes to `HOME/logs/lambda/<function>.log`.
"""

from __future__ import annotations

import io
import json
import os
import queue
import sys
import threading
import traceback
import uuid
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..core.problems import Error
from . import callers, resource_policies, task_permissions
from .policy_evaluation import Policy
from .worker import Worker, WorkerError

DEFAULT_RETRIES = 2  # Lambda's default MaximumRetryAttempts for asynchronous invocations
# Per function, when it reserves no concurrency. AWS allows the account's concurrency (1,000 by default);
# here containers beyond twice the cores only compete for them: 50 uploads to 50 pipelines started their
# last run 3.4-4.2 s after the last upload with 8 router containers on 2 cores, 2.4-3.3 s with 4.
MAX_CONTAINERS = max(4, 2 * (os.cpu_count() or 2))


@dataclass
class Containers:
    """The warm containers of one function's configuration (code, environment, handler, role, limits):
    idle ones are reused, busy ones are not shared."""

    configuration: str
    limit: int
    idle: list[Worker] = field(default_factory=list)
    size: int = 0
    retired: bool = False
    ready: threading.Condition = field(default_factory=threading.Condition)

    def take(self, start: Callable[[int], Worker]) -> Worker:
        with self.ready:
            self.ready.wait_for(lambda: bool(self.idle) or self.size < self.limit)
            if self.idle:
                return self.idle.pop()
            self.size += 1
            number = self.size
        return start(number)

    def give_back(self, worker: Worker) -> None:
        with self.ready:
            if self.retired:
                worker.stop()
                self.size -= 1
            else:
                self.idle.append(worker)
            self.ready.notify()

    def retire(self) -> None:
        with self.ready:
            self.retired = True
            for worker in self.idle:
                worker.stop()
            self.size -= len(self.idle)
            self.idle.clear()


@dataclass(frozen=True)
class Unmarshalable:
    """An Invoke body that is JSON the runtime cannot parse (nested deeper than its parser goes): the
    invocation is accepted, and the runtime fails it as Lambda's Python runtime does, with
    Runtime.UnmarshalError ("Unable to unmarshal input: ...")."""

    raw: str
    reason: str


@dataclass(frozen=True)
class Invocation:
    function: str  # name or ARN
    event: Any
    account: str
    region: str


class LocalLambda:
    """`environment`: what every function's process gets besides its own variables (endpoint, credentials);
    `guardrails`: the stack's, on top of every role."""

    def __init__(self, home: Path, environment: dict[str, str], guardrails: Sequence[Policy] = ()) -> None:
        self.home = home
        self.environment = environment
        self.guardrails = list(guardrails)
        self._containers: dict[str, Containers] = {}  # function ARN -> its current code's containers
        self._lock = threading.Lock()
        self._queue: queue.Queue[Invocation | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        # Asynchronous invocations run concurrently, as Lambda's internal queue hands them out.
        self._attempts = ThreadPoolExecutor(max_workers=2 * MAX_CONTAINERS, thread_name_prefix="local-lambda")
        self._thread = threading.Thread(target=self._deliver, name="local-lambda-async", daemon=True)
        self._thread.start()

    @staticmethod
    def _function(name: str, account: str, region: str) -> Any:
        # Without Docker (the local AWS's setting) moto keeps functions in its "simple" Lambda backend.
        from .motoport import lambda_simple_backends

        backend = lambda_simple_backends[account][region]
        parts = name.split(":")  # moto's lookup by ARN fails without a qualifier: look up by name
        if len(parts) >= 7 and parts[5] == "function":
            return backend.get_function(parts[6], parts[7] if len(parts) > 7 else None)
        return backend.get_function(name)

    def invoke(self, name: str, event: Any, account: str, region: str) -> Any:
        """The handler's result; WorkerError (errorType, errorMessage) when it raised, timed out or could not start."""
        function = self._function(name, account, region)
        if isinstance(event, Unmarshalable):
            raise WorkerError("Runtime.UnmarshalError", f"Unable to unmarshal input: {event.reason}")
        containers = self._containers_of(function)
        worker = containers.take(lambda number: self._container(function, number))
        try:
            request = {"event": event, "request_id": str(uuid.uuid4()), "function_arn": function.function_arn}
            return worker.call(request, timeout=float(function.timeout))
        finally:
            containers.give_back(worker)

    def _containers_of(self, function: Any) -> Containers:
        # "When you update a function, Lambda provisions an instance of the function and its supporting
        # resources" (Lambda API reference, UpdateFunctionConfiguration): new code or a new configuration
        # (environment variables say) is served by new containers; the old ones go as they finish.
        configuration = json.dumps(
            [
                function.code_sha_256,
                function.environment_vars,
                function.handler,
                function.role,
                function.timeout,
                function.memory_size,
                function.run_time,
            ],
            sort_keys=True,
            default=str,
        )
        with self._lock:
            current = self._containers.get(function.function_arn)
            if current and current.configuration == configuration:
                return current
            if current:
                current.retire()
            limit = int(getattr(function, "reserved_concurrency", None) or MAX_CONTAINERS)
            self._containers[function.function_arn] = Containers(configuration, max(limit, 1))
            code = self._code_folder(function)
            if not code.exists():
                with zipfile.ZipFile(io.BytesIO(function.code_bytes)) as package:
                    package.extractall(code)
            return self._containers[function.function_arn]

    def _code_folder(self, function: Any) -> Path:
        return self.home / "lambda" / str(function.function_name) / str(function.code_sha_256).replace("/", "_")[:16]

    def _container(self, function: Any, number: int) -> Worker:
        code = self._code_folder(function)
        env = {
            **self.environment,
            **{key: str(value) for key, value in function.environment_vars.items()},
            # the execution role's credentials, as Lambda gives them: the local AWS decides as that role
            **callers.credentials(function.role),
            "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(function.timeout),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        log = self.home / "logs" / "lambda" / f"{function.function_name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as lines:  # as Lambda logs each new execution environment
            lines.write(f"INIT_START Runtime Version: {function.run_time} (local container {number})\n")
        return Worker(["lambda", str(code), function.handler], env, log, cwd=code)

    def invoke_async(self, name: str, event: Any, account: str, region: str) -> None:
        """Queued as Lambda queues an asynchronous invocation; a function that does not exist is refused at
        once (ResourceNotFoundException), as the Invoke API refuses it, so the caller learns of it."""
        try:
            self._function(name, account, region)
        except Exception as missing:
            raise FunctionNotFound(f"Function not found: {name}") from missing
        with self._idle:
            self._pending += 1
        self._queue.put(Invocation(name, event, account, region))

    def wait_idle(self, timeout: float) -> bool:
        """Until every queued asynchronous invocation has finished (tests and the demo use it)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _deliver(self) -> None:
        while (invocation := self._queue.get()) is not None:
            self._attempts.submit(self._attempt_once, invocation)

    def _attempt_once(self, invocation: Invocation) -> None:
        try:
            self._attempt(invocation)
        except Exception:  # a fault of this runtime, not of the function: the server log shows it
            traceback.print_exc()
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _attempt(self, invocation: Invocation) -> None:
        try:
            function = self._function(invocation.function, invocation.account, invocation.region)
        except Exception as missing:  # deleted since: AWS drops the event too
            print(f"[local lambda] {invocation.function}: {missing}; event dropped", file=sys.stderr)
            return
        config = function.event_invoke_config[0].config if function.event_invoke_config else {}
        attempts = 1 + int(config.get("MaximumRetryAttempts", DEFAULT_RETRIES))
        failures: list[WorkerError] = []
        for _ in range(attempts):
            try:
                self.invoke(function.function_arn, invocation.event, invocation.account, invocation.region)
                return
            except WorkerError as failed:
                failures.append(failed)
        destination = config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        if destination:
            identity = task_permissions.role_policies(function.role) or []
            refused = resource_policies.write_refusal(
                function.role, destination, identity=identity, guardrails=self.guardrails
            )
            if refused:
                print(f"[local lambda] {function.function_arn}: record dropped: {refused.message}", file=sys.stderr)
                return
            record = failure_record(function.function_arn, invocation.event, failures[-1], attempts)
            send(destination, _record_text(record, invocation.event), invocation.account, invocation.region)

    def stop(self) -> None:
        self._queue.put(None)
        self._attempts.shutdown(wait=False, cancel_futures=True)
        for containers in self._containers.values():
            containers.retire()


class FunctionNotFound(Error, LookupError):
    """The Invoke API's ResourceNotFoundException."""


def failure_record(function_arn: str, event: Any, error: WorkerError, attempts: int) -> dict[str, Any]:
    """What Lambda sends to an on-failure destination after the last attempt."""
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"{function_arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": str(error), "errorType": error.error_type, "stackTrace": error.trace},
    }


def _record_text(record: dict[str, Any], event: Any) -> str:
    """The record as JSON; an event the runtime could not parse goes in as the text it arrived as."""
    if not isinstance(event, Unmarshalable):
        return json.dumps(record)
    placeholder = f"unmarshalable-{uuid.uuid4()}"
    return json.dumps(record | {"requestPayload": placeholder}).replace(json.dumps(placeholder), event.raw, 1)


def send(destination: str, message: str, account: str, region: str, attributes: dict[str, str] | None = None) -> None:
    """Deliver to an SQS queue (with string message attributes) or SNS topic ARN of the local AWS."""
    service, name = destination.split(":")[2], destination.rsplit(":", 1)[1]
    if service == "sqs":
        from .motoport import sqs_backends

        typed = {key: {"DataType": "String", "StringValue": value} for key, value in (attributes or {}).items()}
        sqs_backends[account][region].send_message(queue_name=name, message_body=message, message_attributes=typed)
    elif service == "sns":
        from .motoport import sns_backends

        sns_backends[account][region].publish(message=message, arn=destination)
    else:
        raise ValueError(f"{destination}: only SQS and SNS destinations are served locally")
