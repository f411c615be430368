"""Serving a registered model package (stages.create_model.model_package) on the local AWS: the model
is created from the package as registered, and only a package read Approved when the run reaches it
is served; a rejected, pending or unreadable one fails the run before anything is created."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from mlops_sfn.core.stages import STAGES
from mlops_sfn.local import task_permissions
from mlops_sfn.local.harness import LocalRuns
from tests.conftest import DELETE, edited, load_item, serving_package

pytestmark = pytest.mark.functional

ENDPOINT = "mlops-dev-from-package"


@pytest.fixture(scope="module")
def local() -> Any:
    with LocalRuns() as runs:
        yield runs


@pytest.fixture(scope="module")
def package(local: LocalRuns) -> str:
    """The demo's model, trained and registered, then approved: what a development run leaves behind."""
    report = local.run(edited(load_item(), {"stages.monitoring.run": False}), answer="approve")
    assert report.status == "SUCCEEDED", (report.error, report.cause)
    arn: str = report.results["register"]["model_package_arn"]
    assert local.sagemaker.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "Approved"
    return arn


def served(package: str, endpoint: str = ENDPOINT) -> dict[str, Any]:
    item = serving_package(load_item(), package)
    return edited(item, {"stages.deploy.endpoint_name": endpoint, "stages.monitoring.run": False})


def test_an_approved_package_is_served_as_registered(local: LocalRuns, package: str) -> None:
    report = local.run(served(package))
    assert report.status == "SUCCEEDED", (report.error, report.cause)
    assert report.states.index("Check model package") < report.states.index("Create model")
    model = local.sagemaker.describe_model(ModelName=report.results["create_model"]["model_arn"].split("/")[-1])
    assert model["Containers"] == [{"ModelPackageName": package}]  # the package itself, not a copy of its data
    config = local.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    variant = local.sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]
    assert variant["ModelName"] == model["ModelName"]
    assert report.results["deploy"]["smoke_test"]["response"]["bytes"] > 0  # the package's model answered


@pytest.mark.parametrize("status", ["Rejected", "PendingManualApproval"])
def test_a_package_not_approved_when_the_run_reads_it_is_never_served(
    local: LocalRuns, package: str, status: str
) -> None:
    endpoint = f"{ENDPOINT}-{status.lower()}"
    local.sagemaker.update_model_package(ModelPackageArn=package, ModelApprovalStatus=status)
    try:
        report = local.run(served(package, endpoint))
    finally:
        local.sagemaker.update_model_package(ModelPackageArn=package, ModelApprovalStatus="Approved")
    assert (report.status, report.error) == ("FAILED", "create_model.ModelPackageNotApproved"), report.cause
    assert f"model package {package} is {status}, not Approved" in report.cause
    assert "Create model" not in report.states and "Create endpoint" not in report.states
    assert not local.sagemaker.list_endpoints(NameContains=endpoint)["Endpoints"]


def test_a_role_that_may_not_read_the_package_serves_nothing(local: LocalRuns, package: str) -> None:
    report = local.run(served(package, f"{ENDPOINT}-unread"), deny=["sagemaker:DescribeModelPackage"])
    assert report.status == "FAILED" and report.stages["create_model"] == "failed"
    assert "sagemaker:DescribeModelPackage" in report.cause and "Create model" not in report.states


CONSUMER = "444455556666"  # the account that serves this deployment's models
# Register alone, of a model trained elsewhere: the stage that shares its group.
REGISTER_ONLY = edited(
    load_item(),
    {
        **{f"stages.{stage}.run": stage == "register" for stage in STAGES},
        "quality_gate": DELETE,
        "stages.create_model.model_data_url": "s3://{bucket}/models/existing/model.tar.gz",
    },
)


def test_a_deployment_with_consumer_accounts_shares_each_group_a_run_registers_in(local: LocalRuns) -> None:
    """model_consumer_accounts: the run puts the group's resource policy after creating the group, and
    the local IAM decides a consumer's request on the group's packages with it (both sides must allow:
    "Cross-account policy evaluation logic"); another account's is refused, and so is one the
    consumer's own policy does not allow."""
    sharing = LocalRuns(replace(local.settings, model_consumer_accounts=CONSUMER))
    with sharing:
        report = sharing.run(REGISTER_ONLY)
        assert report.status == "SUCCEEDED", (report.error, report.cause)
        assert report.states.index("Register model") < report.states.index("Share model package group")
        package = report.results["register"]["model_package_arn"]
        group = package.split("/")[1]
        policy = json.loads(
            sharing.sagemaker.get_model_package_group_policy(ModelPackageGroupName=group)["ResourcePolicy"]
        )
        assert {s["Sid"]: s["Principal"] for s in policy["Statement"]} == {
            "ConsumersReadGroup": {"AWS": [f"arn:aws:iam::{CONSUMER}:root"]},
            "ConsumersReadPackages": {"AWS": [f"arn:aws:iam::{CONSUMER}:root"]},
        }
        read = [task_permissions.Call("sagemaker:DescribeModelPackage", package, {})]
        allows = [
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sagemaker:*", "Resource": "*"}]}
        ]
        serving = f"arn:aws:iam::{CONSUMER}:role/mlops-prod-pipeline"
        assert task_permissions.refusal(serving, read, allows, []) is None
        assert "no identity-based policy allows" in str(task_permissions.refusal(serving, read, [], []))
        other = "arn:aws:iam::777788889999:role/mlops-other-pipeline"
        assert "no resource-based policy of account" in str(task_permissions.refusal(other, read, allows, []))


def test_a_role_that_may_not_share_the_group_fails_the_register_stage_naming_the_action(local: LocalRuns) -> None:
    with LocalRuns(replace(local.settings, model_consumer_accounts=CONSUMER)) as sharing:
        denied = "sagemaker:PutModelPackageGroupPolicy"
        report = sharing.run(REGISTER_ONLY, deny=[denied])
    assert report.status == "FAILED" and report.stages["register"] == "failed"
    assert denied in report.cause and "is not authorized to perform" in report.cause
