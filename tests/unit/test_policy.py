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
    "model_source_account": "444455556666",
    "model_source_prefix": "mlops-shared-",
    "notification_topic_arn": "arn:aws:sns:eu-west-1:111122223333:mlops-notifications",
    "approval_topic_arn": "arn:aws:sns:eu-west-1:111122223333:mlops-approvals",
    "quality_gate_function_arn": "arn:aws:lambda:eu-west-1:111122223333:function:mlops-quality-gate",
    "model_copy_function_arn": "arn:aws:lambda:eu-west-1:111122223333:function:mlops-model-copy",
    "smoke_test_function_arn": "arn:aws:lambda:eu-west-1:111122223333:function:mlops-smoke-test",
    "segments_function_arn": "arn:aws:lambda:eu-west-1:111122223333:function:mlops-segments",
    "ledger_table_name": "mlops-run-ledger",
    "bucket": "mlops-artifacts",
    "state_machine_name": "mlops-pipeline",
}


def test_every_integration_the_definition_calls_has_its_permissions() -> None:
    called = policy.called(statemachine.build())
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
    # the one Deny narrows what the Allows grant (test_tagging_is_denied_without_the_runs_tag)
    denying = [statement["Sid"] for statement in document["Statement"] if statement["Effect"] != "Allow"]
    assert denying == ["TagOnlyForARun"]
    for statement in document["Statement"]:
        if statement["Effect"] == "Deny":
            continue
        assert all("*" not in action for action in statement["Action"]), statement["Sid"]
        for resource in statement["Resource"]:
            assert resource != "*" and resource.startswith("arn:aws:"), (statement["Sid"], resource)
            # in this account: by ARN, or (S3's ARNs name no account) in the deployment's bucket; the one
            # exception is reading the model source's shared packages, of its groups only
            if statement["Sid"] == "SourcePackages":
                assert statement["Action"] == ["sagemaker:DescribeModelPackage"]
                assert resource == "arn:aws:sagemaker:eu-west-1:444455556666:model-package/mlops-shared-*"
                continue
            assert ":111122223333:" in resource or resource.startswith("arn:aws:s3:::mlops-artifacts/"), resource
        # The state machine reads and writes only a fanned-out run's segments (its Map's items and
        # results); the jobs and the functions do the rest.
        if any(action.startswith("s3:") for action in statement["Action"]):
            assert statement["Sid"] in ("ReadSegments", "WriteSegmentResults"), statement["Sid"]
            assert all(r.startswith("arn:aws:s3:::mlops-artifacts/runs/*/segments/") for r in statement["Resource"])


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
        "model_source_prefix": "b" * 32,
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


def test_the_model_sources_packages_may_be_read_and_never_approved() -> None:
    """A consumer serves the source's shared packages (model_source): it reads them, of the source's
    groups only, and approving stays with the source (approval's UpdateModelPackage is its own)."""
    document = policy.render_policy(VARIABLES)
    source = "arn:aws:sagemaker:eu-west-1:444455556666:model-package"

    def allowed(action: str, resource: str) -> bool:
        return any(
            action in statement["Action"] and any(fnmatch.fnmatchcase(resource, p) for p in statement["Resource"])
            for statement in document["Statement"]
        )

    assert allowed("sagemaker:DescribeModelPackage", f"{source}/mlops-shared-price/3")
    assert not allowed("sagemaker:DescribeModelPackage", f"{source}/payments-fraud/3")
    assert not allowed("sagemaker:UpdateModelPackage", f"{source}/mlops-shared-price/3")


# Create calls the definition makes whose requests carry Tags, each with the resource it creates.
# The Service Authorization Reference lists sagemaker:AddTags as a dependent action of each one
# (reference.md section 7): without it, a request with Tags is denied on AWS. (CreateModelPackage
# carries none: a package in a group "uses the tags associated with the model group".)
TAGGED_CREATES = {
    "sagemaker:CreateProcessingJob": "processing-job/",
    "sagemaker:CreateTrainingJob": "training-job/",
    "sagemaker:CreateHyperParameterTuningJob": "hyper-parameter-tuning-job/",
    "sagemaker:CreateTransformJob": "transform-job/",
    "sagemaker:CreateModel": "model/",
    "sagemaker:CreateEndpointConfig": "endpoint-config/",
    "sagemaker:CreateEndpoint": "endpoint/",
    "sagemaker:CreateModelPackageGroup": "model-package-group/",
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
        tagging = [
            r
            for s in statements
            if s["Effect"] == "Allow" and "sagemaker:AddTags" in s["Action"]
            for r in s["Resource"]
        ]
        assert set(created) <= set(tagging), f"{action} with Tags needs sagemaker:AddTags on {created}"
    packages = [s for s in statements if "sagemaker:CreateModelPackage" in s["Action"]]
    assert all("sagemaker:AddTags" not in s["Action"] for s in packages)  # nothing it needs


def test_tagging_is_denied_without_the_runs_tag() -> None:
    """What the role may tag, it may tag only with the run's mlops-sfn:execution in the request
    (aws:RequestTag/<key>; a Null condition holds when the key is absent), decided by the local
    IAM evaluator as IAM decides: an explicit Deny wins over the Allow."""
    from mlops_sfn.local.policy_evaluation import Request, decide

    document = policy.render_policy(VARIABLES)
    role = "arn:aws:iam::111122223333:role/mlops-pipeline"
    job = "arn:aws:sagemaker:eu-west-1:111122223333:training-job/mlops-dev-price-train-0123456789"
    alarm = "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:mlops-dev-price-5xx-errors"
    run = {"aws:RequestTag/mlops-sfn:execution": "run-1", "aws:TagKeys": ["mlops-sfn:execution", "team"]}
    other = {"aws:RequestTag/team": "fraud", "aws:TagKeys": ["team"]}
    assert decide(Request(role, "sagemaker:AddTags", job, run), identity=[document]).allowed
    assert not decide(Request(role, "sagemaker:AddTags", job, other), identity=[document]).allowed
    assert decide(Request(role, "cloudwatch:TagResource", alarm, run), identity=[document]).allowed
    assert not decide(Request(role, "cloudwatch:TagResource", alarm, other), identity=[document]).allowed


def test_a_distributed_map_gets_what_aws_documents_on_its_own_state_machine_and_run_folders_only() -> None:
    """ "IAM policies for using Distributed Map states": StartExecution on the state machine itself,
    DescribeExecution and StopExecution on its (child) executions, GetObject on the items read, and
    PutObject, GetObject, ListMultipartUploadParts, AbortMultipartUpload where the results are written."""
    from mlops_sfn.local.policy_evaluation import Request, decide

    document = policy.render_policy(VARIABLES)
    role = "arn:aws:iam::111122223333:role/mlops-pipeline"
    states = "arn:aws:states:eu-west-1:111122223333"
    run = "arn:aws:s3:::mlops-artifacts/runs/demo/demo-0123456789abcdef"
    child = f"{states}:execution:mlops-pipeline/Segments:0f1e2d3c-aaaa-bbbb-cccc-1234567890ab"

    def allowed(action: str, resource: str) -> bool:
        return decide(Request(role, action, resource), identity=[document]).allowed

    assert allowed("states:StartExecution", f"{states}:stateMachine:mlops-pipeline")
    assert allowed("states:DescribeExecution", child) and allowed("states:StopExecution", child)
    assert allowed("s3:GetObject", f"{run}/segments/items/demo-0123456789abcdef.json")
    for action in ("s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"):
        assert allowed(action, f"{run}/segments/results/0f1e2d3c/SUCCEEDED_0.json"), action
    # and nothing beyond: another state machine, another's executions, other objects of the run
    assert not allowed("states:StartExecution", f"{states}:stateMachine:someone-elses")
    assert not allowed("states:StopExecution", f"{states}:execution:someone-elses/Map:0f1e2d3c")
    assert not allowed("s3:GetObject", f"{run}/training/model.tar.gz")
    assert not allowed(
        "s3:PutObject", f"{run}/segments/items/demo-0123456789abcdef.json"
    )  # the router writes the items, not the run
    assert not allowed("s3:PutObject", "arn:aws:s3:::mlops-artifacts/input/demo/manifest.json")
