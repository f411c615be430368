"""The deploy stage's smoke test: one request to the new endpoint, kept as a bounded summary.

Called by the state machine through a small Lambda (lambdas/smoke_test/handler.py) rather than Step
Functions' own `sagemakerruntime:invokeEndpoint`, whose result is the whole response body. An
endpoint may answer up to 6 MB (InvokeEndpoint, SageMaker Runtime API reference), a Task result over
Step Functions' 256 KiB payload quota fails the run with States.DataLimitExceeded, and that error is
terminal: no Catch takes it ("Error names" in the Step Functions guide), so the run would end with no
notification after the endpoint already switched. The summary keeps what a reader needs to see that
the model answered: the content type, the variant that answered, the size and the first characters.
"""

from __future__ import annotations

from typing import Any

from .problems import Error

HEAD_BYTES = 200  # what the state, `status` and the success notification show of the answer
_CHUNK_BYTES = 64 * 1024


def summary(response: dict[str, Any]) -> dict[str, Any]:
    """{"content_type", "variant", "bytes", "head", "truncated"} of an InvokeEndpoint response; the body
    is read in chunks and only its first HEAD_BYTES are kept."""
    body = response["Body"]
    head = body.read(HEAD_BYTES)
    size = len(head)
    for chunk in iter(lambda: body.read(_CHUNK_BYTES), b""):
        size += len(chunk)
    return {
        "content_type": response.get("ContentType", ""),
        "variant": response.get("InvokedProductionVariant", ""),
        "bytes": size,
        # a multi-byte character cut at the boundary becomes U+FFFD rather than an error
        "head": head.decode("utf-8", errors="replace"),
        "truncated": size > len(head),
    }


def handler(event: dict[str, Any], context: Any, runtime: Any = None, s3: Any = None) -> dict[str, Any]:
    """The smoke-test Lambda's handler (lambdas/smoke_test/handler.py exports this one).
    Event: {"endpoint", "test": {"content_type", "body", and for a multi-model endpoint "target_model"
    or "models", the prefix its models are under}}; returns the summary (with the target model asked).
    An error the endpoint answers (ModelError, ValidationError) fails the invocation under its name,
    and the run's deploy stage with it."""
    import boto3  # in the Lambda runtime; imported here so the summary needs no AWS SDK

    test = event["test"]
    if "async" in test:
        runtime, s3 = runtime or boto3.client("sagemaker-runtime"), s3 or boto3.client("s3")
        return asynchronous(event["endpoint"], test, runtime, s3)
    request = {"EndpointName": event["endpoint"], "ContentType": test["content_type"], "Body": test["body"].encode()}
    target = test.get("target_model")
    if not target and "models" in test:
        target = first_model(test["models"], s3 or boto3.client("s3"))
    if target:
        # a multi-model endpoint loads <its ModelDataUrl prefix><TargetModel> for the invocation
        # ("Invoke a Multi-Model Endpoint", SageMaker developer guide)
        request["TargetModel"] = target
    response = (runtime or boto3.client("sagemaker-runtime")).invoke_endpoint(**request)
    return summary(response) | ({"target_model": target} if target else {})


class AsyncInferenceFailed(Error):
    """An asynchronous endpoint wrote an error for the smoke test's request, or no answer in time."""


ASYNC_WAIT_SECONDS = 60  # within the function's timeout (modules/state-machine: 75 s)


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def asynchronous(
    endpoint: str, test: dict[str, Any], runtime: Any, s3: Any, sleep: Any = None, wait: float = ASYNC_WAIT_SECONDS
) -> dict[str, Any]:
    """An asynchronous endpoint's test: the body written to the planned input object, InvokeEndpointAsync
    with it, then the answer read where SageMaker writes it (OutputLocation), or its error
    (FailureLocation) raised ("Asynchronous inference", SageMaker developer guide). Polls every second."""
    import time

    bucket, key = _split(test["async"]["input"])
    s3.put_object(Bucket=bucket, Key=key, Body=test["body"].encode(), ContentType=test["content_type"])
    answer = runtime.invoke_endpoint_async(
        EndpointName=endpoint, ContentType=test["content_type"], InputLocation=test["async"]["input"]
    )
    deadline = time.monotonic() + wait
    while True:
        for location, failed in ((answer["OutputLocation"], False), (answer.get("FailureLocation"), True)):
            if not location:
                continue
            found = _read(s3, location)
            if found is not None and failed:
                head = found["Body"].read(HEAD_BYTES).decode("utf-8", errors="replace")
                raise AsyncInferenceFailed(f"endpoint {endpoint} wrote an error to {location}: {head}")
            if found is not None:
                return summary(found) | {"output": location}
        if time.monotonic() > deadline:
            where = answer["OutputLocation"]
            raise AsyncInferenceFailed(f"endpoint {endpoint} wrote no answer to {where} in {wait:g} s")
        (sleep or time.sleep)(1)


def _read(s3: Any, location: str) -> dict[str, Any] | None:
    """The GetObject response of `location`, or None while it does not exist."""
    bucket, key = _split(location)
    try:
        return dict(s3.get_object(Bucket=bucket, Key=key))
    except s3.exceptions.NoSuchKey:
        return None


class NoModelServed(Error):
    """No model is under a multi-model endpoint's prefix: no segment published one."""


def first_model(prefix: str, s3: Any) -> str:
    """The first model under the s3:// `prefix` (S3 lists keys in UTF-8 binary order), relative to it:
    what TargetModel names to reach it."""
    bucket, _, key = prefix.removeprefix("s3://").partition("/")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents", [])
    if not listed:
        raise NoModelServed(f"no model under {prefix}: no segment published one, so the endpoint serves none")
    return str(listed[0]["Key"]).removeprefix(key)
