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
