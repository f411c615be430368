"""The role policy's building blocks a stage's statements are written with (tools/policy.py merges them).

Resources are scoped to what the framework names: jobs, models and endpoint configs by their
stage's resource type and tag (`training-job/*-train-*`); endpoints, model package groups,
schedules and alarms by the deployment's name prefix, which the router also enforces on items
(plan._check_reach). Statements of one Sid declared by several stages are merged (their actions and
resources joined), so each stage declares only what its own states call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .tags import EXECUTION

if TYPE_CHECKING:
    from .stage import Stage

SAGEMAKER = "arn:${partition}:sagemaker:${region}:${account_id}"
SCOPED = "${sagemaker_name_prefix}*"  # items name endpoints and groups inside the deployment's prefix
ENDPOINTS = [f"{SAGEMAKER}:endpoint/{SCOPED}"]
GROUPS = [f"{SAGEMAKER}:model-package-group/{SCOPED}"]
PACKAGES = [f"{SAGEMAKER}:model-package/{SCOPED}"]  # model-package/<group>/<version>
PACKAGES_SID = "ModelPackages"  # reading and approving the deployment's packages: one statement
# The model source's packages (root variable model_source) a consumer deployment may serve; without a
# source the module passes the deployment's own account and prefix, so this names PACKAGES again.
SOURCE_PACKAGES = ["arn:${partition}:sagemaker:${region}:${model_source_account}:model-package/${model_source_prefix}*"]
# The endpoint's alarms start with its name, so with the prefix; alarms an item names must too.
# (DescribeAlarms scoped narrower than "*" returns metric alarms only: CloudWatch API reference.)
ALARMS = ["arn:${partition}:cloudwatch:${region}:${account_id}:alarm:" + SCOPED]
# Reading them shares the statement that writes them (one Sid, one resource: IAM's size quota).
READ_ALARMS = {"Sid": "EndpointAlarms", "Actions": ["cloudwatch:DescribeAlarms"], "Resources": ALARMS}
# Jobs, models and job definitions run as the SageMaker role, which the state machine passes.
PASS_ROLE = {
    "Sid": "PassSageMakerRole",
    "Actions": ["iam:PassRole"],
    "Resources": ["${sagemaker_role_arn}"],
    "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
}


# A SageMaker Create call that carries Tags also needs AddTags on what it creates (Service
# Authorization Reference, SageMaker, "Dependent actions": CreateModelPackageGroup,
# CreateDataQualityJobDefinition, CreateMonitoringSchedule, ...), and every Create the state machine
# makes carries the run's tags (tags.py).
TAGGING = ["sagemaker:AddTags"]
# PutMetricAlarm with Tags: "To be able to associate tags with the alarm when you create the alarm,
# you must have the cloudwatch:TagResource permission" (CloudWatch API reference).
TAG_ALARMS = ["cloudwatch:TagResource"]
# Tagging is denied whenever the request does not carry the run's tag (aws:RequestTag/<key>,
# "Controlling access during AWS requests", IAM User Guide; a Null condition is true when the key is
# absent): the role tags nothing without saying which run it is for. One Deny keeps the policy within
# IAM's size quota, where a condition on every Allow would not.
UNTAGGED: dict[str, Any] = {
    "Sid": "TagOnlyForARun",
    "Effect": "Deny",
    "Actions": [*TAGGING, *TAG_ALARMS],
    "Resources": ["*"],
    "Condition": {"Null": {f"aws:RequestTag/{EXECUTION}": "true"}},
}


def statement(sid: str, actions: list[str], resources: list[str]) -> dict[str, Any]:
    return {"Sid": sid, "Actions": actions, "Resources": resources}


def named(stage: Stage, resource: str | None = None) -> list[str]:
    """What a stage creates per run, by resource type and tag: `training-job/*-train-*`."""
    return [f"{SAGEMAKER}:{resource or stage.resource}/*-{stage.tag}-*"]


def sync_job(stage: Stage, rule: str, *extra: str) -> dict[str, tuple[dict[str, Any], ...]]:
    """A `.sync` job: its Create call and what Step Functions polls it with (reference.md section 1:
    Describe*/Stop* on the job and the managed EventBridge rule)."""
    operation = stage.operation or ""
    api = operation.removeprefix("Create")
    return {
        f"sagemaker:{operation[0].lower()}{operation[1:]}.sync": (
            statement(
                f"{api}Sync",
                # Tags in a request need AddTags; Step Functions' poller reads ListTags.
                [
                    f"sagemaker:Create{api}",
                    f"sagemaker:Describe{api}",
                    f"sagemaker:Stop{api}",
                    *TAGGING,
                    "sagemaker:ListTags",
                    *extra,
                ],
                named(stage),
            ),
            statement(
                f"{api}SyncEvents",
                ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                [f"arn:${{partition}}:events:${{region}}:${{account_id}}:rule/{rule}"],
            ),
            PASS_ROLE,
        )
    }


def function(variable: str) -> dict[str, Any]:
    """Invoking one of the deployment's functions (checkpoints, model copy, smoke test), any version."""
    return statement(
        "PipelineFunctions", ["lambda:InvokeFunction"], [f"${{{variable}}}{version}" for version in ("", ":*")]
    )
