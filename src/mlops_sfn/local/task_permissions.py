"""What IAM checks when a Task calls AWS, and the state machine role's answer (policy_evaluation).

Step Functions makes each Task's call as the state machine's role, so every call a local run makes
is checked against that role's policies (read from the local IAM, as Terraform or the harness put
them there) and against the run's guardrails (`--deny`, `--scp`). A refusal fails the Task as the
service answers AWS's IAM refusal: AccessDeniedException (HTTP 400; AWS's "Common errors" page), or
SNS's AuthorizationError (403; SNS API reference, Publish), with AWS's message naming principal,
action and resource; the state's Retry and Catch then do what they do on AWS.

`needed` lists, per integration, the (action, resource ARN, condition keys) pairs AWS documents:
Step Functions guide, "IAM policies for ... SageMaker" (a `.sync` job also needs Describe* and Stop*
on the job and the managed EventBridge rule), SageMaker's ARN formats (names lower-case), iam:PassRole
with iam:PassedToService, sagemaker:AddTags when a request carries Tags (the Service Authorization
Reference's dependent action, with aws:RequestTag/aws:TagKeys).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from .policy_evaluation import Policy, Request, decide, denied_message

# What the optimised SageMaker integration creates -> (ARN resource type, name field).
_SAGEMAKER_KINDS = {
    "ProcessingJob": ("processing-job", "ProcessingJobName"),
    "TrainingJob": ("training-job", "TrainingJobName"),
    "HyperParameterTuningJob": ("hyper-parameter-tuning-job", "HyperParameterTuningJobName"),
    "TransformJob": ("transform-job", "TransformJobName"),
    "Model": ("model", "ModelName"),
    "EndpointConfig": ("endpoint-config", "EndpointConfigName"),
    "Endpoint": ("endpoint", "EndpointName"),
}
# The managed rule Step Functions puts for each .sync job kind.
_SYNC_RULES = {
    "ProcessingJob": "ProcessingJobs",
    "TrainingJob": "TrainingJobs",
    "HyperParameterTuningJob": "TuningJobs",
}
# aws-sdk:sagemaker calls -> (ARN resource type, name field) of what they act on.
_SDK_TARGETS = {
    "describeEndpoint": ("endpoint", "EndpointName"),
    "deleteEndpoint": ("endpoint", "EndpointName"),
    "createModelPackageGroup": ("model-package-group", "ModelPackageGroupName"),
    "createModelPackage": ("model-package-group", "ModelPackageGroupName"),
    **{
        f"{verb}MonitoringSchedule": ("monitoring-schedule", "MonitoringScheduleName")
        for verb in ("describe", "create", "update", "delete")
    },
    **{
        f"{verb}DataQualityJobDefinition": ("data-quality-job-definition", "JobDefinitionName")
        for verb in ("create", "delete")
    },
}
_PASSED_TO_SAGEMAKER = {"iam:PassedToService": "sagemaker.amazonaws.com"}


@dataclass(frozen=True)
class Call:
    action: str
    resource: str
    context: dict[str, Any]


def _tagging(params: dict[str, Any], arn: str) -> list[Call]:
    """AddTags on what a Create makes, when its request carries Tags, with the tags as IAM sees them."""
    tags = params.get("Tags") or []
    if not tags:
        return []
    context: dict[str, Any] = {f"aws:RequestTag/{tag['Key']}": tag.get("Value", "") for tag in tags}
    context["aws:TagKeys"] = [tag["Key"] for tag in tags]
    return [Call("sagemaker:AddTags", arn, context)]


def needed(resource_type: str, resource: str, params: dict[str, Any], region: str, account: str) -> list[Call]:
    """The calls IAM checks for one Task: its integration type ("sagemaker", "aws-sdk:sagemaker", ...),
    its resource ("createTrainingJob.sync") and its request."""
    sagemaker = f"arn:aws:sagemaker:{region}:{account}"
    if resource_type == "sagemaker":
        api, _, pattern = resource.partition(".")
        verb, noun = ("Update", api[6:]) if api.startswith("update") else ("Create", api[6:])
        arn_type, field = _SAGEMAKER_KINDS[noun]
        arn = f"{sagemaker}:{arn_type}/{str(params.get(field, '')).lower()}"
        calls = [Call(f"sagemaker:{verb}{noun}", arn, {})] + (_tagging(params, arn) if verb == "Create" else [])
        if pattern == "sync":
            rule = f"arn:aws:events:{region}:{account}:rule/StepFunctionsGetEventsForSageMaker"
            rule += f"{_SYNC_RULES.get(noun, 'TransformJobs')}Rule"
            calls += [Call(f"sagemaker:{action}{noun}", arn, {}) for action in ("Describe", "Stop")]
            calls += [Call(f"events:{action}", rule, {}) for action in ("PutTargets", "PutRule", "DescribeRule")]
        if noun == "Endpoint":  # the endpoint config it names, and the alarms a blue/green update reads
            calls.append(
                Call(
                    f"sagemaker:{verb}Endpoint",
                    f"{sagemaker}:endpoint-config/{params.get('EndpointConfigName', '')}".lower(),
                    {},
                )
            )
            alarms = params.get("DeploymentConfig", {}).get("AutoRollbackConfiguration", {}).get("Alarms", [])
            calls += [
                Call(
                    "cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:{region}:{account}:alarm:{alarm['AlarmName']}", {}
                )
                for alarm in alarms
            ]
        role = (
            params.get("RoleArn")
            or params.get("ExecutionRoleArn")
            or params.get("TrainingJobDefinition", {}).get("RoleArn")
        )
        if role:
            calls.append(Call("iam:PassRole", role, _PASSED_TO_SAGEMAKER))
        return calls
    if resource_type == "aws-sdk:sagemaker":
        if resource == "updateModelPackage":
            return [Call("sagemaker:UpdateModelPackage", str(params.get("ModelPackageArn", "")), {})]
        arn_type, field = _SDK_TARGETS[resource]
        arn = f"{sagemaker}:{arn_type}/{str(params.get(field, '')).lower()}"
        calls = [Call(f"sagemaker:{resource[0].upper()}{resource[1:]}", arn, {})]
        if resource.startswith("create"):
            calls += _tagging(params, arn)
        if resource == "createDataQualityJobDefinition":  # its executions run as the role it names
            calls.append(Call("iam:PassRole", str(params.get("RoleArn", "")), _PASSED_TO_SAGEMAKER))
        return calls
    if resource_type == "aws-sdk:cloudwatch":
        alarms = [params.get("AlarmName", "")] if resource == "putMetricAlarm" else params.get("AlarmNames", [])
        action = f"cloudwatch:{resource[0].upper()}{resource[1:]}"
        return [Call(action, f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}", {}) for name in alarms]
    if resource_type == "lambda":
        return [Call("lambda:InvokeFunction", str(params.get("FunctionName", "")), {})]
    if resource_type == "dynamodb":
        action = f"dynamodb:{resource[0].upper()}{resource[1:]}"
        return [Call(action, f"arn:aws:dynamodb:{region}:{account}:table/{params.get('TableName', '')}", {})]
    if resource_type == "sns":
        return [Call("sns:Publish", str(params.get("TopicArn", "")), {})]
    raise NotImplementedError(f"the local AWS does not know what IAM checks for {resource_type}:{resource}")


def refusal(role: str, calls: Iterable[Call], policies: Sequence[Policy], guardrails: Sequence[Policy]) -> str | None:
    """AWS's AccessDenied message for the first call the role may not make, or None when all may be made."""
    for call in calls:
        request = Request(role, call.action, call.resource, call.context)
        decision = decide(request, identity=policies, guardrails=guardrails)
        if not decision.allowed:
            return denied_message(request, decision)
    return None


def role_policies(role_arn: str, iam: Any) -> list[Policy] | None:
    """The role's inline and attached policies from the local IAM backend, or None when it has no such role."""
    name = role_arn.rsplit("/", 1)[-1]
    try:
        role = iam.get_role(name)
    except Exception:
        return None
    inline = [json.loads(document) if isinstance(document, str) else document for document in role.policies.values()]
    attached = [
        json.loads(version.document)
        for policy in role.managed_policies.values()
        for version in policy.versions
        if version.is_default
    ]
    return inline + attached


def role_policies_via_api(iam: Any, role_arn: str) -> list[Policy] | None:
    """The same, read through the IAM API (a process outside the local AWS's), or None without the role."""
    name = role_arn.rsplit("/", 1)[-1]
    try:
        inline = [
            iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
            for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]
        ]
    except iam.exceptions.NoSuchEntityException:
        return None
    attached = []
    for policy in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        version = iam.get_policy(PolicyArn=policy["PolicyArn"])["Policy"]["DefaultVersionId"]
        attached.append(
            iam.get_policy_version(PolicyArn=policy["PolicyArn"], VersionId=version)["PolicyVersion"]["Document"]
        )
    return inline + attached


# The S3 calls a job's data moves through, as S3 authorizes them (S3 User Guide, "Required permissions
# for Amazon S3 API operations"): HeadObject needs s3:GetObject, each part of a multipart upload
# s3:PutObject, a listing s3:ListBucket on the bucket with the prefix as s3:prefix.
_S3_ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
}


def s3_call(operation: str, params: dict[str, Any]) -> Call:
    """What IAM checks for one S3 call of a job."""
    action = _S3_ACTIONS.get(operation)
    if action is None:
        raise NotImplementedError(f"the local AWS does not know what IAM checks for s3:{operation}")
    bucket = params["Bucket"]
    if action == "s3:ListBucket":
        return Call(action, f"arn:aws:s3:::{bucket}", {"s3:prefix": params.get("Prefix", "")})
    return Call(action, f"arn:aws:s3:::{bucket}/{params['Key']}", {})


# `local run` deploys no Terraform, so no SageMaker role: its jobs' calls are decided by the run's
# guardrails alone, as if the role allowed them (on the local stack the role Terraform made decides).
UNDEPLOYED_ROLE: Policy = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "RoleNotDeployed", "Effect": "Allow", "Action": "*", "Resource": "*"}],
}


def acting_as(s3: Any, role: str, policies: Sequence[Policy], guardrails: Sequence[Policy]) -> Any:
    """`s3`, a client of its own, making each call as `role` does on AWS: refused as S3 refuses,
    AccessDenied (403) with IAM's message, and a HEAD's 403 with no body, so "Forbidden". A key that
    does not exist is answered 404 only to a role that may list the bucket, 403 AccessDenied to any
    other (S3 API reference, GetObject and HeadObject, "Permissions")."""

    def denied(operation: str, message: str) -> dict[str, Any]:
        code, message = ("403", "Forbidden") if operation == "HeadObject" else ("AccessDenied", message)
        return {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 403}}

    def check(model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        message = refusal(role, [s3_call(model.name, params)], policies, guardrails)
        if message is not None:
            raise ClientError(denied(model.name, message), model.name)
        if model.name in ("GetObject", "HeadObject"):  # what a missing key will be answered
            listing = Call("s3:ListBucket", f"arn:aws:s3:::{params['Bucket']}", {"s3:prefix": params["Key"]})
            context["unlisted"] = refusal(role, [listing], policies, guardrails) is not None

    def missing_key(model: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if context.get("unlisted") and parsed.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            parsed.update(denied(model.name, "Access Denied"))  # S3 says no more than that here

    s3.meta.events.register("before-parameter-build.s3", check)  # with the call's own parameters
    s3.meta.events.register("after-call.s3", missing_key)
    return s3


def guardrail(denied: Iterable[str] = (), scp: Policy | None = None) -> list[Policy]:
    """The run's guardrail levels: `--deny ACTION` as an SCP that allows everything else, and `--scp FILE`."""
    levels: list[Policy] = []
    denied = list(denied)
    if denied:
        levels.append(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Sid": "Everything", "Effect": "Allow", "Action": "*", "Resource": "*"},
                    {"Sid": "Denied", "Effect": "Deny", "Action": denied, "Resource": "*"},
                ],
            }
        )
    if scp is not None:
        levels.append(scp)
    return levels
