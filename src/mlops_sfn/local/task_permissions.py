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
    if resource_type == "aws-sdk:sagemakerruntime":
        return [
            Call("sagemaker:InvokeEndpoint", f"{sagemaker}:endpoint/{str(params.get('EndpointName', '')).lower()}", {})
        ]
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
