"""Which IAM calls a request of a function's code is decided as (local/callers.py)."""

from __future__ import annotations

import json

import pytest

from mlops_sfn.local import callers
from mlops_sfn.local.task_permissions import Call

REGION, ACCOUNT = "us-east-1", "123456789012"
TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table"


def calls(service: str, method: str, path: str, query: str = "", body: object = None, **headers: str) -> list[Call]:
    data = json.dumps(body).encode() if body is not None else b""
    return callers.calls(service, REGION, ACCOUNT, method, path, query, headers, data)


def test_a_key_names_the_role_it_was_given_for_and_no_other_key_is_decided() -> None:
    role = "arn:aws:iam::123456789012:role/mlops-dev-router"
    key = callers.key_for(role)
    signed = f"AWS4-HMAC-SHA256 Credential={key}/20261206/eu-west-1/dynamodb/aws4_request, SignedHeaders=host"
    assert key.startswith("ASIA") and callers.signer({"Authorization": signed}) == (role, "eu-west-1", "dynamodb")
    other = signed.replace(key, "testing")
    assert callers.signer({"Authorization": other}) is None and callers.signer({}) is None


def test_s3_requests_are_the_object_calls_s3_authorizes_them_as() -> None:
    assert calls("s3", "GET", "/b/runs/r/report.json") == [
        Call("s3:GetObject", "arn:aws:s3:::b/runs/r/report.json", {})
    ]
    assert calls("s3", "HEAD", "/b/m%20odel.tar.gz") == [Call("s3:GetObject", "arn:aws:s3:::b/m odel.tar.gz", {})]
    assert calls("s3", "GET", "/b", "list-type=2&prefix=input%2Fp%2F") == [
        Call("s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "input/p/"})
    ]
    # a copy (CopyObject, UploadPartCopy) reads its source and writes its target
    copied = calls(
        "s3",
        "PUT",
        "/b/runs/best/model.tar.gz",
        "partNumber=1&uploadId=u",
        **{"x-amz-copy-source": "b/tuning/j/model.tar.gz"},
    )
    assert copied == [
        Call("s3:GetObject", "arn:aws:s3:::b/tuning/j/model.tar.gz", {}),
        Call("s3:PutObject", "arn:aws:s3:::b/runs/best/model.tar.gz", {}),
    ]
    assert calls("s3", "POST", "/b/k", "uploads=") == [Call("s3:PutObject", "arn:aws:s3:::b/k", {})]
    assert calls("s3", "DELETE", "/b/k", "uploadId=u") == [Call("s3:AbortMultipartUpload", "arn:aws:s3:::b/k", {})]
    with pytest.raises(NotImplementedError, match="s3 DELETE /b/k"):
        calls("s3", "DELETE", "/b/k")


def test_json_requests_are_decided_on_what_their_body_names() -> None:
    get = calls(
        "dynamodb", "POST", "/", body={"TableName": "pipelines"}, **{"X-Amz-Target": "DynamoDB_20120810.GetItem"}
    )
    assert get == [Call("dynamodb:GetItem", f"{TABLE}/pipelines", {})]
    machine = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:mlops-dev-pipeline"
    started = calls(
        "states", "POST", "/", body={"stateMachineArn": machine}, **{"X-Amz-Target": "AWSStepFunctions.StartExecution"}
    )
    assert started == [Call("states:StartExecution", machine, {})]
    invoked = calls("sagemaker", "POST", "/endpoints/mlops-dev-Price/invocations")
    assert invoked == [
        Call("sagemaker:InvokeEndpoint", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/mlops-dev-price", {})
    ]
    with pytest.raises(NotImplementedError, match=r"AWSStepFunctions\.StopExecution"):
        calls("states", "POST", "/", body={}, **{"X-Amz-Target": "AWSStepFunctions.StopExecution"})


def test_a_refusal_is_answered_as_the_service_answers_one() -> None:
    status, headers, body = callers.denied("s3", "User: r is not authorized to perform: s3:GetObject on resource: <x>")
    assert status == 403 and headers["Content-Type"] == "application/xml"
    assert b"<Code>AccessDenied</Code>" in body and b"&lt;x&gt;" in body
    status, _, body = callers.denied("dynamodb", "no")
    assert status == 400 and json.loads(body)["__type"] == "AccessDeniedException"
