"""The smoke test keeps a bounded summary of the endpoint's answer, whatever its size."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest

from mlops_sfn.core import smoke_test

STATE_QUOTA_BYTES = 256 * 1024  # Step Functions' payload quota for a state's input and output


class Runtime:
    """A SageMaker runtime client that answers one body and records the request."""

    def __init__(self, body: bytes) -> None:
        self.body, self.requests = body, []  # type: ignore[var-annotated]

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        return {"Body": io.BytesIO(self.body), "ContentType": "text/csv", "InvokedProductionVariant": "AllTraffic"}


def test_an_answer_of_six_megabytes_is_summarised_in_a_few_hundred_bytes() -> None:
    body = b"4.7812\n" * (6 * 1024 * 1024 // 7)  # InvokeEndpoint answers up to 6 MB
    runtime = Runtime(body)

    summary = smoke_test.handler(
        {"endpoint": "mlops-dev-price", "test": {"content_type": "text/csv", "body": "1,2"}}, None, runtime
    )

    assert runtime.requests == [{"EndpointName": "mlops-dev-price", "ContentType": "text/csv", "Body": b"1,2"}]
    assert summary["bytes"] == len(body) and summary["truncated"] is True
    assert summary["head"] == body[: smoke_test.HEAD_BYTES].decode()
    assert summary["content_type"] == "text/csv" and summary["variant"] == "AllTraffic"
    assert len(json.dumps(summary)) < 1024 < STATE_QUOTA_BYTES


def test_a_short_answer_is_kept_whole() -> None:
    summary = smoke_test.summary({"Body": io.BytesIO(b"4.7812\n"), "ContentType": "text/csv"})
    assert summary == {"content_type": "text/csv", "variant": "", "bytes": 7, "head": "4.7812\n", "truncated": False}


def test_a_character_cut_at_the_boundary_does_not_fail_the_summary() -> None:
    body = "a" * (smoke_test.HEAD_BYTES - 1) + "é" + "tail"  # "é" is two bytes: its first is the last kept
    summary = smoke_test.summary({"Body": io.BytesIO(body.encode())})
    assert summary["head"] == "a" * (smoke_test.HEAD_BYTES - 1) + "\ufffd" and summary["bytes"] == len(body.encode())


class Listing:
    """An S3 client whose bucket holds `keys`, listed as S3 lists them (UTF-8 binary order)."""

    def __init__(self, keys: list[str]) -> None:
        self.keys, self.requests = sorted(keys), []  # type: ignore[var-annotated]

    def list_objects_v2(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        found = [key for key in self.keys if key.startswith(request["Prefix"])][: request["MaxKeys"]]
        return {"Contents": [{"Key": key} for key in found]} if found else {}


MODELS = "s3://bucket/runs/p/run-1/segments/models/"


def test_a_multi_model_endpoint_is_asked_for_the_first_model_its_segments_published() -> None:
    runtime, s3 = (
        Runtime(b"2.5\n"),
        Listing(["runs/p/run-1/segments/models/band2.tar.gz", "runs/p/run-1/segments/models/band7.tar.gz"]),
    )
    test = {"content_type": "text/csv", "body": "1,2", "models": MODELS}
    summary = smoke_test.handler({"endpoint": "mlops-dev-seg", "test": test}, None, runtime, s3)
    assert runtime.requests[0]["TargetModel"] == "band2.tar.gz" and summary["target_model"] == "band2.tar.gz"
    assert s3.requests == [{"Bucket": "bucket", "Prefix": "runs/p/run-1/segments/models/", "MaxKeys": 1}]


def test_the_model_an_item_names_is_asked_without_listing() -> None:
    runtime, s3 = Runtime(b"2.5\n"), Listing([])
    test = {"content_type": "text/csv", "body": "1,2", "models": MODELS, "target_model": "band5.tar.gz"}
    smoke_test.handler({"endpoint": "mlops-dev-seg", "test": test}, None, runtime, s3)
    assert runtime.requests[0]["TargetModel"] == "band5.tar.gz" and s3.requests == []


def test_no_model_published_fails_the_test_before_the_endpoint_is_asked() -> None:
    runtime = Runtime(b"")
    test = {"content_type": "text/csv", "body": "1,2", "models": MODELS}
    with pytest.raises(smoke_test.NoModelServed, match="no model under s3://bucket/runs/p/run-1/segments/models/"):
        smoke_test.handler({"endpoint": "mlops-dev-seg", "test": test}, None, runtime, Listing(["runs/p/run-1/x"]))
    assert runtime.requests == []


class AsyncEndpoint:
    """An asynchronous endpoint over a moto S3: it reads the request's input object and writes its answer
    (or its error) where InvokeEndpointAsync says, after `delay` polls."""

    def __init__(self, s3: Any, answer: bytes | None, delay: int = 2) -> None:
        self.s3, self.answer, self.delay, self.requests = s3, answer, delay, []  # type: ignore[var-annotated]

    def invoke_endpoint_async(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        bucket, _, key = request["InputLocation"].removeprefix("s3://").partition("/")
        self.body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return {
            "InferenceId": "i1",
            "OutputLocation": "s3://smoke-bucket/out/i1.out",
            "FailureLocation": "s3://smoke-bucket/err/i1-error.out",
        }

    def sleep(self, _: float) -> None:  # each poll: the answer arrives after `delay` of them
        self.delay -= 1
        if self.delay == 0:
            key = "out/i1.out" if self.answer is not None else "err/i1-error.out"
            self.s3.put_object(Bucket="smoke-bucket", Key=key, Body=self.answer or b"ModelError: bad input")


ASYNC_TEST = {
    "content_type": "text/csv",
    "body": "1,2",
    "async": {
        "input": "s3://smoke-bucket/in/run.in",
        "output": "s3://smoke-bucket/out/",
        "failure_output": "s3://smoke-bucket/err/",
    },
}


@pytest.fixture
def s3() -> Any:
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="smoke-bucket")
        yield client


def test_an_async_endpoint_is_asked_through_s3_and_its_answer_summarised(s3: Any) -> None:
    endpoint = AsyncEndpoint(s3, b"4.2\n")
    summary = smoke_test.asynchronous("mlops-dev-price", ASYNC_TEST, endpoint, s3, sleep=endpoint.sleep)
    assert endpoint.body == b"1,2"  # the request the test wrote, read by the endpoint
    assert endpoint.requests == [
        {"EndpointName": "mlops-dev-price", "ContentType": "text/csv", "InputLocation": "s3://smoke-bucket/in/run.in"}
    ]
    assert summary["head"] == "4.2\n" and summary["output"] == "s3://smoke-bucket/out/i1.out"


def test_an_async_endpoints_error_or_silence_fails_the_test_naming_where_it_looked(s3: Any) -> None:
    failing = AsyncEndpoint(s3, None)
    error = re.escape("wrote an error to s3://smoke-bucket/err/i1-error.out: ModelError")
    with pytest.raises(smoke_test.AsyncInferenceFailed, match=error):
        smoke_test.asynchronous("mlops-dev-price", ASYNC_TEST, failing, s3, sleep=failing.sleep)
    s3.delete_object(Bucket="smoke-bucket", Key="err/i1-error.out")
    silent = AsyncEndpoint(s3, b"late", delay=10**6)
    silence = re.escape("wrote no answer to s3://smoke-bucket/out/i1.out in 0 s")
    with pytest.raises(smoke_test.AsyncInferenceFailed, match=silence):
        smoke_test.asynchronous("mlops-dev-silent", ASYNC_TEST, silent, s3, sleep=silent.sleep, wait=0)
