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


def handler(event: dict[str, Any], context: Any, runtime: Any = None) -> dict[str, Any]:
    """The smoke-test Lambda's handler (lambdas/smoke_test/handler.py exports this one).
    Event: {"endpoint", "content_type", "body"}; returns the summary. An error the endpoint answers
    (ModelError, ValidationError) fails the invocation under its name, and the run's deploy stage with it."""
    import boto3  # in the Lambda runtime; imported here so the summary needs no AWS SDK

    runtime = runtime or boto3.client("sagemaker-runtime")
    response = runtime.invoke_endpoint(
        EndpointName=event["endpoint"], ContentType=event["content_type"], Body=event["body"].encode("utf-8")
    )
    return summary(response)
