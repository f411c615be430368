"""IAM's decision for what a Task calls and for the jobs it starts, as the local AWS makes it: the
state machine's role (task_permissions.py evaluates its policies and the run's guardrails), the job's
role for the data SageMaker moves, the model's role for its model data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from . import accounts, resource_policies, task_permissions
from .sagemaker import package_containers

if TYPE_CHECKING:
    from .integrations import Local


# How a service answers IAM's refusal: AccessDeniedException, 400 (AWS's "Common errors"); SNS's
# AuthorizationError, 403, and for an encrypted topic KMSAccessDenied or KMSNotFound, 400 (SNS API
# reference, Publish, "Errors").
_DENIALS = {"sns": ("AuthorizationError", 403)}
_KEY_DENIALS = {"sns": {False: "KMSAccessDenied", True: "KMSNotFound"}}


def refusal(env: Any, service: Any, parameters: dict[str, Any], local: Local) -> tuple[str, int, str] | None:
    """(error code, HTTP status, AWS's message) when the state machine's role may not make this Task's
    calls, or None."""
    if not local.check_permissions:
        return None
    api = service.resource.api_name
    code, status = _DENIALS.get(api, ("AccessDeniedException", 400))
    context = env.states.context_object.context_object_data
    role = context["Execution"]["RoleArn"]
    _, _, _, region, account, _ = context["StateMachine"]["Id"].split(":", 5)
    policies = task_permissions.role_policies(role)
    if policies is None:  # AWS cannot assume a role that does not exist
        return code, status, f"the state machine's role {role} does not exist: no call can be made as it"
    calls = task_permissions.needed(
        service._get_sfn_resource_type(), service._get_sfn_resource(), parameters, region, account
    )
    refused = task_permissions.refusal(role, calls, policies, local.guardrails)
    if refused:
        return code, status, refused
    topic = str(parameters.get("TopicArn", ""))
    if api == "sns" and (key := resource_policies.key_of(topic)):  # SNS encrypts the message with the topic's key
        problem = resource_policies.key_refusal(role, "sns", topic, key, identity=policies, guardrails=local.guardrails)
        if problem:
            return _KEY_DENIALS["sns"][problem.missing_key], 400, problem.message
    return None


def as_job_role(local: Local, request: dict[str, Any], region: str, account: str, service: str = "s3") -> Any:
    """A client of `service` acting as the job's role (a transform job's is its model's), in the job's
    account: S3 for the data SageMaker moves for the job, CloudWatch Logs for its log; None when there
    is nothing for IAM to decide."""
    import boto3

    if not local.check_permissions:
        return None
    role = request.get("RoleArn") or request.get("TrainingJobDefinition", {}).get("RoleArn")
    if role is None and "ModelName" in request:
        role = local.sagemaker.model_role(request["ModelName"], region, account)
    policies = task_permissions.role_policies(role) if role else None
    if policies is None and not local.guardrails:
        return None
    # its own (the check is registered on it), in the job's account
    client = accounts.in_account(boto3.client(service, region_name=region), account)
    return task_permissions.acting_as(
        client, role or "", policies if policies is not None else [task_permissions.UNDEPLOYED_ROLE], local.guardrails
    )


def model_data_problem(local: Local, request: dict[str, Any], region: str, account: str) -> str | None:
    """Why CreateModel refuses the model: SageMaker reads each container's ModelDataUrl as the model's
    role when the model is created, and refuses a model whose data it cannot find or read, in these
    words (ValidationException; Step Functions reports it as SageMaker.AmazonSageMakerException)."""
    role = str(request.get("ExecutionRoleArn", ""))
    s3 = as_job_role(local, {"RoleArn": role}, region, account) or accounts.client("s3", region, account)
    containers = [request["PrimaryContainer"]] if "PrimaryContainer" in request else request.get("Containers", [])
    try:  # a package's containers: its model data is read as the model's role too
        containers = package_containers(accounts.client("sagemaker", region, account), containers)
    except ClientError as error:  # SageMaker's own answer for a package it cannot find
        return str(error.response.get("Error", {}).get("Message", error))
    # A MultiModel container's ModelDataUrl is a prefix: SageMaker reads <prefix><TargetModel> when an
    # invocation asks for it ("Invoke a Multi-Model Endpoint", SageMaker developer guide), not now.
    single = [c for c in containers if c.get("Mode", "SingleModel") == "SingleModel"]
    for uri in [c["ModelDataUrl"] for c in single if str(c.get("ModelDataUrl", "")).startswith("s3://")]:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        try:  # read, as SageMaker reads it to serve it: an encrypted object's key is used (SSE-KMS)
            s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-0")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NoSuchBucket"):
                return f"Could not find model data at {uri}."
            return (
                f'Could not access model data at {uri}. Please ensure that the role "{role}" exists and that its '
                'trust relationship policy allows the action "sts:AssumeRole" for the service principal '
                f'"sagemaker.amazonaws.com". Also ensure that the role has "s3:GetObject" permissions and that '
                f"the object is located in {region}."
            )
    return None
