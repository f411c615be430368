"""The calls the deployed functions' and the jobs' code makes, decided as the role each runs as.

On AWS a function's code calls AWS with its execution role's temporary credentials (Lambda guide,
"Lambda execution role"), and a job's or model's containers with the job's or model's role
(SageMaker developer guide, "How SageMaker AI uses execution roles"). Here each function's
container, job script and model server gets an access key of its own that names its role
(`key_for`); the server reads the key from each request's signature (SigV4: the access key is the
first part of the Credential scope) and decides the call with policy_evaluation, against the role's
policies in the local IAM and the stack's guardrails, as task_permissions does for Tasks. A refusal
is answered as the service answers one: S3's 403 AccessDenied (XML, S3 API reference "Error
responses"), AccessDeniedException with HTTP 400 elsewhere (AWS's "Common errors" page). A call
this module cannot map to IAM's action and resource is answered 500, naming it. Requests signed
with any other key (Terraform, the CLI) are not decided here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape

from . import task_permissions
from .policy_evaluation import Policy
from .task_permissions import Call

KEYS: dict[str, str] = {}  # access key id -> the role ARN it acts as
_CREDENTIAL = re.compile(r"Credential=([^/]+)/\d+/([^/]+)/([^/]+)/aws4_request")
# JSON-protocol services: the X-Amz-Target prefix -> IAM's service prefix
_TARGETS = {"DynamoDB_20120810": "dynamodb", "AWSStepFunctions": "states", "ServiceQuotasV20190624": "servicequotas"}


def credentials(role: str) -> dict[str, str]:
    """The environment a process acting as `role` signs with (Lambda and SageMaker hand a role's
    temporary credentials: an access key and a session token)."""
    return {"AWS_ACCESS_KEY_ID": key_for(role), "AWS_SESSION_TOKEN": "local-session"}


def key_for(role: str) -> str:
    """The access key a function running as `role` signs with (an STS-style ASIA key)."""
    key = "ASIA" + hashlib.sha256(role.encode()).hexdigest()[:16].upper()
    KEYS[key] = role
    return key


def signer(headers: Any) -> tuple[str, str, str] | None:
    """(role, region, signing service) of a request signed with a function's key, else None."""
    found = _CREDENTIAL.search(headers.get("Authorization", ""))
    if found is None or found.group(1) not in KEYS:
        return None
    return KEYS[found.group(1)], found.group(2), found.group(3)


def _s3_calls(method: str, path: str, query: dict[str, list[str]], headers: Any) -> list[Call]:
    bucket, _, key = unquote(path.lstrip("/")).partition("/")
    source = headers.get("x-amz-copy-source")
    if source:  # CopyObject, UploadPartCopy: read the source, write the target
        source_bucket, _, source_key = unquote(source.split("?")[0].lstrip("/")).partition("/")
        read = task_permissions.s3_call("GetObject", {"Bucket": source_bucket, "Key": source_key})
        return [read, task_permissions.s3_call("PutObject", {"Bucket": bucket, "Key": key})]
    if not key:
        if method == "GET" and ("list-type" in query or not query):
            prefix = query.get("prefix", [""])[0]
            return [task_permissions.s3_call("ListObjectsV2", {"Bucket": bucket, "Prefix": prefix})]
        raise NotImplementedError(f"the local AWS does not know what IAM checks for s3 {method} /{bucket}?{query}")
    operations = {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject", "POST": "PutObject"}
    if method == "DELETE" and "uploadId" in query:
        operation = "AbortMultipartUpload"
    elif method in operations:
        operation = operations[method]  # POST ?uploads / ?uploadId=: the multipart upload, s3:PutObject
    else:
        raise NotImplementedError(f"the local AWS does not know what IAM checks for s3 {method} {path}")
    return [task_permissions.s3_call(operation, {"Bucket": bucket, "Key": key})]


def calls(
    service: str, region: str, account: str, method: str, path: str, query_string: str, headers: Any, body: bytes
) -> list[Call]:
    """What IAM checks for one request of a function's code, for the calls the framework's functions make."""
    query = parse_qs(query_string, keep_blank_values=True)
    if service == "s3":
        return _s3_calls(method, path, query, headers)
    if service == "sagemaker" and (invoked := re.fullmatch(r"/endpoints/([^/]+)/(async-)?invocations", path)):
        action = "sagemaker:InvokeEndpointAsync" if invoked.group(2) else "sagemaker:InvokeEndpoint"
        return task_permissions.checked(action, {}, region, account, EndpointName=unquote(invoked.group(1)))
    target = headers.get("X-Amz-Target", "")
    prefix, _, operation = target.partition(".")
    if prefix in _TARGETS:
        action, request = f"{_TARGETS[prefix]}:{operation}", json.loads(body or b"{}")
        if action == "states:StartExecution":
            return [Call(action, request["stateMachineArn"], {})]
        if action == "states:DescribeExecution":
            return [Call(action, request["executionArn"], {})]
        if action == "servicequotas:ListServiceQuotas":  # no resource type: "*" (Service Authorization Reference)
            return [Call(action, "*", {})]
        if prefix == "DynamoDB_20120810":
            return task_permissions.checked(action, {"TableName": request["TableName"]}, region, account)
    raise NotImplementedError(f"the local AWS does not know what IAM checks for {service} {method} {path} {target}")


def refusal(
    role: str,
    checked: list[Call],
    policies: Callable[[str], Sequence[Policy] | None],
    guardrails: Sequence[Policy],
) -> str | None:
    """AWS's AccessDenied message for the first call the role may not make, or None."""
    found = policies(role)
    if found is None:
        return f"the role {role} does not exist: no call can be made as it"
    return task_permissions.refusal(role, checked, found, guardrails)


def unlisted(
    role: str, wanted: list[Call], policies: Callable[[str], Sequence[Policy] | None], guardrails: Sequence[Policy]
) -> bool:
    """Whether a read of one object is by a role that may not list its bucket: S3 then answers a missing
    key 403 Access Denied, not 404 (S3 API reference, GetObject and HeadObject, "Permissions")."""
    found = policies(role)
    if [call.action for call in wanted] != ["s3:GetObject"] or found is None:
        return False
    bucket, _, key = wanted[0].resource.removeprefix("arn:aws:s3:::").partition("/")
    return not task_permissions.may_list(role, bucket, key, found, guardrails)


def denied(service: str, message: str) -> tuple[int, dict[str, str], bytes]:
    """The response a service gives IAM's refusal."""
    if service == "s3":
        error = f"<Error><Code>AccessDenied</Code><Message>{escape(message)}</Message></Error>"
        body = f"<?xml version='1.0' encoding='UTF-8'?>\n{error}"
        return 403, {"Content-Type": "application/xml"}, body.encode()
    document = {"__type": "AccessDeniedException", "message": message, "Message": message}
    return 400, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(document).encode()
