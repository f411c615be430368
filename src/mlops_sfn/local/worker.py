"""Long-lived Python processes that answer requests: a warm Lambda container, a model server.

The parent (`Worker`) starts `python .../worker.py KIND ARGS...` and exchanges one JSON
line per request over the child's stdin and stdout. In the child, everything the user's code
prints (stdout and stderr, Python or C) goes to the worker's log instead, so the protocol stream
carries nothing but answers. A request that outlives its timeout kills the process, as Lambda
ends a timed-out invocation; the next request starts a fresh one (a cold start). The child runs
this file as a script, importing only the standard library before the user's code, so a Lambda's
`mlops_sfn` comes from its deployment package, never from this installation.

Kinds:
- `lambda CODE_DIR HANDLER`: `module.function` from CODE_DIR (the deployment package, unzipped);
  a request is {"event", "request_id"}; an import error is an init error, reported per request.
- `model MODEL_DIR CODE_DIR PROGRAM`: SageMaker's scikit-learn serving functions (model_fn,
  input_fn, predict_fn, output_fn, each optional but model_fn) from CODE_DIR/PROGRAM; a request is
  {"body", "content_type", "accept"}.
"""

from __future__ import annotations

import importlib
import json
import os
import select
import subprocess
import sys
import time
import traceback
import types
from pathlib import Path
from typing import IO, Any


class WorkerError(Exception):  # not core.problems.Error: the child runs this file alone, standard library only
    """The code raised (error_type, message), or the process failed or timed out."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.trace = trace or []


class Worker:
    """One child process; `call()` is not thread-safe, callers serialise (one container, one request)."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> None:
        self.argv, self.env, self.log, self.cwd = argv, env, log, cwd
        self.process: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, __file__, *self.argv],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=self.env,
                cwd=self.cwd,
            )

    def call(self, request: dict[str, Any], timeout: float) -> Any:
        if self.process is None or self.process.poll() is not None:
            self.process = self._start()
        assert self.process.stdin and self.process.stdout
        try:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            self.stop()
            raise WorkerError("Runtime.ExitError", f"the process exited; see {self.log}") from None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else b""
        if not line:
            timed_out = not ready
            self.stop()
            if timed_out:
                raise WorkerError("Sandbox.Timedout", f"Task timed out after {timeout:.2f} seconds")
            raise WorkerError("Runtime.ExitError", f"the process exited; see {self.log}")
        answer = json.loads(line)
        if "error" in answer:
            error = answer["error"]
            raise WorkerError(error["errorType"], error["errorMessage"], error.get("stackTrace"))
        return answer["result"]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


# --- The child side -------------------------------------------------------------------------------


def _error(error: BaseException) -> dict[str, Any]:
    return {
        "errorType": type(error).__name__,
        "errorMessage": str(error),
        "stackTrace": traceback.format_exception(error)[-6:],
    }


def _lambda(code_dir: str, handler_path: str) -> tuple[Any, dict[str, Any] | None]:
    sys.path.insert(0, code_dir)
    module_name, _, function = handler_path.rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function)
    except Exception as error:  # Lambda reports this on every invocation until the code is fixed
        return None, {**_error(error), "errorType": f"Runtime.ImportModuleError: {type(error).__name__}"}

    def invoke(request: dict[str, Any]) -> Any:
        context = types.SimpleNamespace(
            aws_request_id=request["request_id"],
            function_name=os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
            invoked_function_arn=request.get("function_arn"),
        )
        return handler(request["event"], context)

    return invoke, None


def _model(model_dir: str, code_dir: str, program: str) -> tuple[Any, dict[str, Any] | None]:
    sys.path.insert(0, code_dir)
    try:
        module = importlib.import_module(Path(program).stem)
        model = module.model_fn(model_dir)
    except Exception as error:
        return None, {**_error(error), "errorType": f"ModelError: {type(error).__name__}"}

    def invoke(request: dict[str, Any]) -> Any:
        data = module.input_fn(request["body"], request["content_type"])
        prediction = module.predict_fn(data, model) if hasattr(module, "predict_fn") else model.predict(data)
        body, content_type = module.output_fn(prediction, request.get("accept") or "text/csv")
        return {"body": body if isinstance(body, str) else bytes(body).decode("utf-8"), "content_type": content_type}

    return invoke, None


def serve(kind: str, args: list[str], requests: IO[str], answers: IO[str]) -> None:
    started = time.monotonic()
    start: Any = {"lambda": _lambda, "model": _model}[kind]
    invoke, init_error = start(*args)
    print(f"[worker] {kind} ready in {time.monotonic() - started:.3f} s", file=sys.stderr, flush=True)
    for line in requests:
        request = json.loads(line)
        if init_error is not None:
            answer: dict[str, Any] = {"error": init_error}
        else:
            try:
                answer = {"result": invoke(request)}
                json.dumps(answer)
            except Exception as error:
                answer = {"error": _error(error)}
        answers.write(json.dumps(answer, default=str) + "\n")
        answers.flush()


def main(argv: list[str]) -> None:
    del sys.path[0]  # this file's folder: the user's code must not import its neighbours
    # The protocol keeps the real stdout; everything else written to fd 1 goes to the log (fd 2).
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    serve(argv[0], argv[1:], sys.stdin, answers)


if __name__ == "__main__":
    main(sys.argv[1:])
