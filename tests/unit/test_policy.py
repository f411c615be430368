"""The state machine role's policy template: current, complete for the definition, and narrow."""

from __future__ import annotations

import fnmatch
import json
import re

import pytest

from mlops_sfn.tools import policy, statemachine

VARIABLES = {
    "partition": "aws",
    "region": "eu-west-1",
    "account_id": "111122223333",
    "sagemaker_role_arn": "arn:aws:iam::111122223333:role/mlops-sagemaker",
    "sagemaker_name_prefix": "mlops-dev-",
    "notification_topic_arn": "arn:aws:sns:eu-west-1:111122223333:mlops-notifications",
    "approval_topic_arn": "arn:aws:sns:eu-west-1:111122223333:mlops-approvals",
    "quality_gate_function_arn": "arn:aws:lambda:eu-west-1:111122223333:function:mlops-quality-gate",
    "model_copy_function_arn": "arn:aws:lambda:eu-west-1:111122223333:function:mlops-model-copy",
    "smoke_test_function_arn": "arn:aws:lambda:eu-west-1:111122223333:function:mlops-smoke-test",
    "ledger_table_name": "mlops-run-ledger",
}


def test_every_integration_the_definition_calls_has_its_permissions() -> None:
    called = policy.task_resources(statemachine.build())
    assert called and set(called) == set(policy.PERMISSIONS)  # nothing missing, nothing left over
    definition = statemachine.build()
    definition["States"]["Extra"] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:s3:deleteObject",
        "End": True,
    }
    with pytest.raises(KeyError, match="aws-sdk:s3:deleteObject"):
        policy.build(definition)


def test_no_wildcard_action_and_no_resource_that_is_only_a_wildcard() -> None:
    document = policy.render_policy(VARIABLES)
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        assert all("*" not in action for action in statement["Action"]), statement["Sid"]
        for resource in statement["Resource"]:
            assert resource != "*" and resource.startswith("arn:aws:"), (statement["Sid"], resource)
            assert ":111122223333:" in resource, (statement["Sid"], resource)
        # The state machine reads and writes no object: the jobs and the two functions do.
        assert not any(action.startswith("s3:") for action in statement["Action"]), statement["Sid"]


def test_the_sagemaker_role_can_be_passed_to_sagemaker_only() -> None:
    (passing,) = [s for s in policy.render_policy(VARIABLES)["Statement"] if "iam:PassRole" in s["Action"]]
    assert passing["Resource"] == [VARIABLES["sagemaker_role_arn"]]
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def test_the_template_declares_its_variables_and_fits_an_iam_policy() -> None:
    text = policy.POLICY_TEMPLATE.read_text()
    assert set(re.findall(r"\$\{([^}]*)\}", text)) == set(policy.POLICY_VARIABLES)
    with pytest.raises(KeyError, match="model_copy_function_arn"):
        policy.render_policy({k: v for k, v in VARIABLES.items() if k != "model_copy_function_arn"})
    # A role's inline policies together hold at most 10,240 characters without whitespace (IAM quotas,
    # "Role policy size"); logs-and-tracing (modules/state-machine) takes under 1,024 of them. Measured
    # with names as long as the variables allow.
    longest = {
        **VARIABLES,
        "partition": "aws-us-gov",
        "region": "ap-southeast-2",
        "sagemaker_name_prefix": "a" * 32,
        **{name: VARIABLES[name] + "x" * 40 for name in VARIABLES if name.endswith(("_arn", "_name"))},
    }
    assert len(json.dumps(policy.render_policy(longest), separators=(",", ":"))) < 10_240 - 1_024


def test_endpoints_and_model_packages_are_reachable_only_inside_the_deployments_prefix() -> None:
    document = policy.render_policy(VARIABLES)
    arn = "arn:aws:sagemaker:eu-west-1:111122223333"

    def allowed(action: str, resource: str) -> bool:
        return any(
            action in statement["Action"]
            and any(fnmatch.fnmatchcase(resource, pattern) for pattern in statement["Resource"])
            for statement in document["Statement"]
        )

    for action, inside, outside in [
        ("sagemaker:UpdateEndpoint", "endpoint/mlops-dev-price", "endpoint/payments-fraud"),
        ("sagemaker:CreateEndpoint", "endpoint/mlops-dev-price", "endpoint/payments-fraud"),
        ("sagemaker:CreateModelPackageGroup", "model-package-group/mlops-dev-price", "model-package-group/fraud"),
        ("sagemaker:CreateModelPackage", "model-package/mlops-dev-price/1", "model-package/fraud/1"),
        ("sagemaker:UpdateModelPackage", "model-package/mlops-dev-price/1", "model-package/fraud/1"),
    ]:
        assert allowed(action, f"{arn}:{inside}"), action
        assert not allowed(action, f"{arn}:{outside}"), action


# Create calls the definition makes whose requests may carry Tags, each with the resource it creates.
# The Service Authorization Reference lists sagemaker:AddTags as a dependent action of each one
# (reference.md section 7): without it, a request with Tags is denied on AWS.
TAGGED_CREATES = {
    "sagemaker:CreateProcessingJob": "processing-job/",
    "sagemaker:CreateTrainingJob": "training-job/",
    "sagemaker:CreateHyperParameterTuningJob": "hyper-parameter-tuning-job/",
    "sagemaker:CreateTransformJob": "transform-job/",
    "sagemaker:CreateModel": "model/",
    "sagemaker:CreateEndpointConfig": "endpoint-config/",
    "sagemaker:CreateEndpoint": "endpoint/",
    "sagemaker:CreateModelPackageGroup": "model-package-group/",
    "sagemaker:CreateModelPackage": "model-package/",
    "sagemaker:CreateDataQualityJobDefinition": "data-quality-job-definition/",
    "sagemaker:CreateMonitoringSchedule": "monitoring-schedule/",
}


def test_every_create_that_may_carry_tags_may_add_them_to_what_it_creates() -> None:
    statements = policy.render_policy(VARIABLES)["Statement"]
    for action, resource_type in TAGGED_CREATES.items():
        granting = [s for s in statements if action in s["Action"]]
        assert granting, f"the definition no longer calls {action}: update TAGGED_CREATES"
        created = [r for s in granting for r in s["Resource"] if f":{resource_type}" in r]
        assert created, (action, granting)
        tagging = [r for s in statements if "sagemaker:AddTags" in s["Action"] for r in s["Resource"]]
        assert set(created) <= set(tagging), f"{action} with Tags needs sagemaker:AddTags on {created}"
