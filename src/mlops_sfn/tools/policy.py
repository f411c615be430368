"""The state machine role's policy, derived from the Task states of the definition.

Each integration the definition uses maps to the IAM actions Step Functions needs for it: each
stage declares the statements its states need (Stage.permissions, written with core/iam.py), the
pipeline's own (notifications, the run ledger) are here. Resources are scoped to what the framework
names (core/iam.py); the artifact bucket is reached by the jobs and functions; the state machine
reads and writes only a fanned-out run's segments (core/fanout.py).
`policy_text()` is committed as `statemachine/role-policy.json`, a template Terraform renders with
the same variables as `render_policy()`; a test keeps it current, another checks it against the
calls the executed scenarios made.
"""

from __future__ import annotations

import json
from typing import Any

from ..checkout import ROOT
from ..core import asl, fanout, iam
from ..core.stages import CATALOG
from . import statemachine

POLICY_TEMPLATE = ROOT / "statemachine" / "role-policy.json"

POLICY_VARIABLES = {
    "partition": "aws, aws-cn or aws-us-gov",
    "region": "the region the pipeline runs in",
    "account_id": "the account the pipeline runs in",
    "sagemaker_role_arn": "the role SageMaker jobs and models run as (passed with iam:PassRole)",
    "sagemaker_name_prefix": "the start of the endpoint and model package group names items may use",
    "model_source_account": "the account whose shared packages it may serve (its own without a model source)",
    "model_source_prefix": "the start of the model source's group names (the deployment's own prefix without one)",
    "bucket": "the artifact bucket: a fanned-out run reads its segments and writes their outcomes in its folder",
    "state_machine_name": "the state machine's own name: a fanned-out run starts child executions of it",
    **statemachine.VARIABLES,
}

# The pipeline's own integrations; every stage's come from its definition (Stage.permissions).
_PIPELINE: dict[str, tuple[dict[str, Any], ...]] = {
    "dynamodb:putItem": (
        iam.statement(
            "RecordStages",  # step caching: succeeded stages go to the run ledger
            ["dynamodb:PutItem"],
            ["arn:${partition}:dynamodb:${region}:${account_id}:table/${ledger_table_name}"],
        ),
    ),
    "sns:publish": (iam.statement("Notify", ["sns:Publish"], ["${notification_topic_arn}"]),),
    "lambda:invoke": (iam.function("segments_function_arn"),),  # a fanned-out run's summary
}


def _merged() -> dict[str, list[dict[str, Any]]]:
    """Task resource -> its statements, each Sid once: what several stages declare under one Sid
    (ProcessingJobSync for preprocessing, evaluation and monitoring) joins their actions and resources."""
    by_sid: dict[str, dict[str, Any]] = {}
    sids: dict[str, list[str]] = {}
    for permissions in [stage.permissions() for stage in CATALOG] + [_PIPELINE, fanout.permissions()]:
        for resource, statements in permissions.items():
            for statement in statements:
                sid = statement["Sid"]
                merged = by_sid.setdefault(sid, {**statement, "Actions": [], "Resources": []})
                merged["Actions"] += [a for a in statement["Actions"] if a not in merged["Actions"]]
                merged["Resources"] += [r for r in statement["Resources"] if r not in merged["Resources"]]
                if sid not in sids.setdefault(resource, []):
                    sids[resource].append(sid)
    return {resource: [by_sid[sid] for sid in found] for resource, found in sids.items()}


# Task resource (after arn:aws:states:::) -> the statements it needs.
PERMISSIONS = _merged()


def task_resources(definition: dict[str, Any]) -> list[str]:
    """The integrations the definition's Task states call, e.g. "sagemaker:createTrainingJob.sync"."""
    found = {
        state["Resource"].removeprefix("arn:aws:states:::")
        for state in asl.states(definition).values()
        if state["Type"] == "Task"
    }
    return sorted(found)


def called(definition: dict[str, Any]) -> list[str]:
    """Everything the definition calls: its Tasks' integrations, and what its Distributed Maps call
    (child executions, their item reader and result writer)."""
    found = set(task_resources(definition))
    found |= {resource for state in asl.states(definition).values() for resource in fanout.map_resources(state)}
    return sorted(found)


def build(definition: dict[str, Any] | None = None) -> dict[str, Any]:
    """The policy document (with ${...} template variables) for the definition's integrations."""
    resources = called(definition or statemachine.build())
    unknown = [resource for resource in resources if resource not in PERMISSIONS]
    if unknown:
        raise KeyError(f"no IAM permissions known for {', '.join(unknown)}: add them to PERMISSIONS")
    statements: dict[str, dict[str, Any]] = {}
    for resource in resources:
        for statement in PERMISSIONS[resource]:
            statements[statement["Sid"]] = {
                "Sid": statement["Sid"],
                "Effect": statement.get("Effect", "Allow"),
                "Action": sorted(statement["Actions"]),
                "Resource": statement["Resources"],
            } | ({"Condition": statement["Condition"]} if "Condition" in statement else {})
    tagging = {action for s in statements.values() for action in s["Action"] if action in iam.UNTAGGED["Actions"]}
    if tagging:  # whatever tags, tags only what a run creates, saying which run (iam.UNTAGGED)
        untagged = iam.UNTAGGED
        statements[untagged["Sid"]] = {
            "Sid": untagged["Sid"],
            "Effect": untagged["Effect"],
            "Action": sorted(tagging),
            "Resource": untagged["Resources"],
            "Condition": untagged["Condition"],
        }
    return {"Version": "2012-10-17", "Statement": list(statements.values())}


def policy_text() -> str:
    return json.dumps(build(), indent=2) + "\n"


def render_policy(variables: dict[str, str], text: str | None = None) -> dict[str, Any]:
    text = policy_text() if text is None else text  # what POLICY_TEMPLATE holds, without the file
    return statemachine.fill_template(text, variables, POLICY_VARIABLES)
