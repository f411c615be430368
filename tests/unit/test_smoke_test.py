"""The smoke test keeps a bounded summary of the endpoint's answer, whatever its size."""

from __future__ import annotations

import io
import json
from typing import Any

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
        {"endpoint": "mlops-dev-price", "content_type": "text/csv", "body": "1,2"}, None, runtime
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
