"""Serving a registered model package (stages.create_model.model_package) on the local AWS: the model
is created from the package as registered, and only a package read Approved when the run reaches it
is served; a rejected, pending or unreadable one fails the run before anything is created."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_sfn.local.harness import LocalRuns
from tests.conftest import edited, load_item, serving_package

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
