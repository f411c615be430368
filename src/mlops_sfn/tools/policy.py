"""The state machine role's policy, derived from the Task states of the definition.

Each integration the definition uses maps to the IAM actions Step Functions needs for it
(reference.md section 1: a `.sync` job also needs Describe*/Stop* on the job and the managed
EventBridge rule it polls with). Resources are scoped to what the framework names:
- jobs, models and endpoint configs by their stage's resource type and tag (`<pipeline>-train-<hash>`,
  stages.CATALOG);
- endpoints and model package groups by the deployment's name prefix, which the router also enforces
  on items (plan._check_reach), so the table cannot redeploy an unrelated endpoint;
- the two topics, the two functions (quality gate, model copy) and the SageMaker role by ARN; the
  artifact bucket is reached by the jobs and functions, not by the state machine.
`policy_text()` is committed as `statemachine/role-policy.json`, a template Terraform renders with
the same variables as `render_policy()`; a test keeps it current, another checks it against the
calls the executed scenarios made.
"""

from __future__ import annotations

import json
from typing import Any

from ..core.stages import STAGE, calling
from . import statemachine

POLICY_TEMPLATE = statemachine.ROOT / "statemachine" / "role-policy.json"

POLICY_VARIABLES = {
    "partition": "aws, aws-cn or aws-us-gov",
    "region": "the region the pipeline runs in",
    "account_id": "the account the pipeline runs in",
    "sagemaker_role_arn": "the role SageMaker jobs and models run as (passed with iam:PassRole)",
    "sagemaker_name_prefix": "the start of the endpoint and model package group names items may use",
    **statemachine.VARIABLES,
}

_SAGEMAKER = "arn:${partition}:sagemaker:${region}:${account_id}"


def _named(*stages: str) -> list[str]:
    """What these stages create per run, by their resource type and tag: `training-job/*-train-*`."""
    return [f"{_SAGEMAKER}:{STAGE[stage].resource}/*-{STAGE[stage].tag}-*" for stage in stages]


def _sync_job(api: str, rule: str, *extra: str) -> list[dict[str, Any]]:
    """A `.sync` job: Create<api> by the stages that call it, and what Step Functions polls with."""
    return [
        {
            "Sid": f"{api}Sync",
            # Tags in a request need AddTags; Step Functions' poller reads ListTags.
            "Actions": [
                f"sagemaker:Create{api}",
                f"sagemaker:Describe{api}",
                f"sagemaker:Stop{api}",
                "sagemaker:AddTags",
                "sagemaker:ListTags",
                *extra,
            ],
            "Resources": _named(*calling(f"Create{api}")),
        },
        {
            "Sid": f"{api}SyncEvents",
            "Actions": ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            "Resources": [f"arn:${{partition}}:events:${{region}}:${{account_id}}:rule/{rule}"],
        },
    ]


_SCOPED = "${sagemaker_name_prefix}*"  # items name endpoints and groups inside the deployment's prefix
_ENDPOINTS = [f"{_SAGEMAKER}:endpoint/{_SCOPED}"]
_GROUPS = [f"{_SAGEMAKER}:model-package-group/{_SCOPED}"]
_PACKAGES = [f"{_SAGEMAKER}:model-package/{_SCOPED}"]  # model-package/<group>/<version>
_CONFIGS = _named("deploy")
# The endpoint's alarms start with its name, so with the prefix; alarms an item names must too.
# (DescribeAlarms scoped narrower than "*" returns metric alarms only: CloudWatch API reference.)
_ALARMS = ["arn:${partition}:cloudwatch:${region}:${account_id}:alarm:" + _SCOPED]
_JOB_DEFINITION = {
    "Sid": "MonitoringJobDefinitions",
    "Actions": ["sagemaker:CreateDataQualityJobDefinition", "sagemaker:DeleteDataQualityJobDefinition"],
    "Resources": [f"{_SAGEMAKER}:data-quality-job-definition/*-{STAGE['monitoring'].tag}-*"],
}
_SCHEDULE = {
    "Sid": "MonitoringSchedule",
    "Actions": [f"sagemaker:{verb}MonitoringSchedule" for verb in ("Describe", "Create", "Update", "Delete")],
    "Resources": [f"{_SAGEMAKER}:monitoring-schedule/{_SCOPED}"],
}
# The endpoint's alarms, and the drift alarm a deploy without monitoring removes.
_PUT_ALARMS = {
    "Sid": "EndpointAlarms",
    "Actions": ["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"],
    "Resources": _ALARMS,
}
_READ_ALARMS = {"Sid": "ReadRollbackAlarms", "Actions": ["cloudwatch:DescribeAlarms"], "Resources": _ALARMS}

# Task resource (after arn:aws:states:::) -> the statements it needs.
PERMISSIONS: dict[str, list[dict[str, Any]]] = {
    "sagemaker:createProcessingJob.sync": _sync_job(
        "ProcessingJob", "StepFunctionsGetEventsForSageMakerProcessingJobsRule"
    ),
    "sagemaker:createTrainingJob.sync": _sync_job("TrainingJob", "StepFunctionsGetEventsForSageMakerTrainingJobsRule"),
    "sagemaker:createHyperParameterTuningJob.sync": _sync_job(
        "HyperParameterTuningJob",
        "StepFunctionsGetEventsForSageMakerTuningJobsRule",
        "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
    ),
    "sagemaker:createTransformJob.sync": _sync_job(
        "TransformJob", "StepFunctionsGetEventsForSageMakerTransformJobsRule"
    ),
    "sagemaker:createModel": [
        {
            "Sid": "CreateModel",
            "Actions": ["sagemaker:CreateModel", "sagemaker:AddTags"],
            "Resources": _named(*calling("CreateModel")),
        }
    ],
    "sagemaker:createEndpointConfig": [
        {
            "Sid": "CreateEndpointConfig",
            "Actions": ["sagemaker:CreateEndpointConfig", "sagemaker:AddTags"],
            "Resources": _CONFIGS,
        }
    ],
    "sagemaker:createEndpoint": [
        {
            "Sid": "CreateEndpoint",
            "Actions": ["sagemaker:CreateEndpoint", "sagemaker:AddTags"],
            "Resources": _ENDPOINTS + _CONFIGS,
        }
    ],
    "sagemaker:updateEndpoint": [
        {"Sid": "UpdateEndpoint", "Actions": ["sagemaker:UpdateEndpoint"], "Resources": _ENDPOINTS + _CONFIGS},
        _READ_ALARMS,  # a blue/green update with auto-rollback reads its alarms as the caller
    ],
    "aws-sdk:cloudwatch:putMetricAlarm": [_PUT_ALARMS],
    "aws-sdk:cloudwatch:describeAlarms": [_READ_ALARMS],
    "aws-sdk:sagemaker:describeEndpoint": [
        {"Sid": "DescribeEndpoint", "Actions": ["sagemaker:DescribeEndpoint"], "Resources": _ENDPOINTS}
    ],
    "aws-sdk:sagemaker:deleteEndpoint": [
        {"Sid": "ReplaceFailedEndpoint", "Actions": ["sagemaker:DeleteEndpoint"], "Resources": _ENDPOINTS}
    ],
    "aws-sdk:sagemakerruntime:invokeEndpoint": [
        {"Sid": "SmokeTest", "Actions": ["sagemaker:InvokeEndpoint"], "Resources": _ENDPOINTS}
    ],
    "aws-sdk:sagemaker:createModelPackageGroup": [
        {
            "Sid": "CreateModelPackageGroup",
            "Actions": ["sagemaker:CreateModelPackageGroup"],
            "Resources": _GROUPS,
        }
    ],
    "aws-sdk:sagemaker:createModelPackage": [
        {
            "Sid": "RegisterModel",
            "Actions": ["sagemaker:CreateModelPackage"],
            "Resources": _PACKAGES + _GROUPS,
        }
    ],
    "aws-sdk:sagemaker:updateModelPackage": [
        {
            "Sid": "ApproveOrReject",
            "Actions": ["sagemaker:UpdateModelPackage"],
            "Resources": _PACKAGES,
        }
    ],
    # Monitoring: the per-run job definitions (<pipeline>-monitor-<hash>), the endpoint's schedule (named in
    # the prefix, as the endpoint is) and its drift alarm (<prefix>drift-<pipeline>, in _ALARMS).
    **{f"aws-sdk:sagemaker:{verb}DataQualityJobDefinition": [_JOB_DEFINITION] for verb in ("create", "delete")},
    **{
        f"aws-sdk:sagemaker:{verb}MonitoringSchedule": [_SCHEDULE]
        for verb in ("describe", "create", "update", "delete")
    },
    "aws-sdk:cloudwatch:deleteAlarms": [_PUT_ALARMS],
    "lambda:invoke": [
        {
            "Sid": "PipelineFunctions",  # the quality gate and the model copy
            "Actions": ["lambda:InvokeFunction"],
            "Resources": [
                f"${{{variable}}}{version}"
                for variable in ("quality_gate_function_arn", "model_copy_function_arn")
                for version in ("", ":*")
            ],
        }
    ],
    "dynamodb:putItem": [
        {
            "Sid": "RecordStages",  # step caching: succeeded stages go to the run ledger
            "Actions": ["dynamodb:PutItem"],
            "Resources": ["arn:${partition}:dynamodb:${region}:${account_id}:table/${ledger_table_name}"],
        }
    ],
    "sns:publish": [{"Sid": "Notify", "Actions": ["sns:Publish"], "Resources": ["${notification_topic_arn}"]}],
    "sns:publish.waitForTaskToken": [
        {"Sid": "AskForApproval", "Actions": ["sns:Publish"], "Resources": ["${approval_topic_arn}"]}
    ],
}

# Integrations that start SageMaker work as the SageMaker role (a job definition names the role its
# monitoring executions run as).
_PASSES_ROLE = {
    resource for resource in PERMISSIONS if resource.startswith("sagemaker:create") and "Endpoint" not in resource
} | {"aws-sdk:sagemaker:createDataQualityJobDefinition"}


def task_resources(definition: dict[str, Any]) -> list[str]:
    """The integrations the definition's Task states call, e.g. "sagemaker:createTrainingJob.sync"."""
    found = {
        state["Resource"].removeprefix("arn:aws:states:::")
        for state in statemachine.states(definition).values()
        if state["Type"] == "Task"
    }
    return sorted(found)


def build(definition: dict[str, Any] | None = None) -> dict[str, Any]:
    """The policy document (with ${...} template variables) for the definition's integrations."""
    resources = task_resources(definition or statemachine.build())
    unknown = [resource for resource in resources if resource not in PERMISSIONS]
    if unknown:
        raise KeyError(f"no IAM permissions known for {', '.join(unknown)}: add them to PERMISSIONS")
    statements: dict[str, dict[str, Any]] = {}
    for resource in resources:
        for statement in PERMISSIONS[resource]:
            statements[statement["Sid"]] = {
                "Sid": statement["Sid"],
                "Effect": "Allow",
                "Action": sorted(statement["Actions"]),
                "Resource": statement["Resources"],
            }
    if set(resources) & _PASSES_ROLE:
        statements["PassSageMakerRole"] = {
            "Sid": "PassSageMakerRole",
            "Effect": "Allow",
            "Action": ["iam:PassRole"],
            "Resource": ["${sagemaker_role_arn}"],
            "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        }
    return {"Version": "2012-10-17", "Statement": list(statements.values())}


def policy_text() -> str:
    return json.dumps(build(), indent=2) + "\n"


def render_policy(variables: dict[str, str], text: str | None = None) -> dict[str, Any]:
    text = policy_text() if text is None else text  # what POLICY_TEMPLATE holds, without the file
    return statemachine.fill_template(text, variables, POLICY_VARIABLES)
