"""Warm pools on the local AWS: a training job leaves one, the next matching job takes it, SageMaker's
WarmPoolStatus says so and the bill counts the retained time; an organisation's bound on the keep-alive
period (sagemaker:KeepAlivePeriod) is decided on the request."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from mlops_sfn.core import prices
from mlops_sfn.local.harness import DEFAULT_ACCOUNT_ID, LocalRuns
from mlops_sfn.operate import bill
from tests.conftest import edited, load_item

pytestmark = pytest.mark.functional

WARM = edited(load_item("demo-dev-train-and-batch-score"), {"stages.training.warm_pool_minutes": 30})
ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}


@pytest.fixture(scope="module")
def local() -> Any:
    with LocalRuns() as runs:
        yield runs


def training_job(local: LocalRuns, report: Any) -> dict[str, Any]:
    described: dict[str, Any] = local.sagemaker.describe_training_job(
        TrainingJobName=report.results["training"]["job_name"]
    )
    return described


def test_the_next_matching_training_job_takes_the_warm_pool_the_last_one_left(local: LocalRuns) -> None:
    first = local.run(WARM)
    assert first.status == "SUCCEEDED", first.cause
    assert training_job(local, first)["WarmPoolStatus"] == {
        "Status": "Available",
        "ResourceRetainedBillableTimeInSeconds": 0,
    }
    second = local.run(WARM)  # the next run's training job: the same role, instances and volume
    assert second.status == "SUCCEEDED", second.cause
    taken = training_job(local, first)["WarmPoolStatus"]
    assert taken["Status"] == "Reused" and taken["ReusedByJob"] == second.results["training"]["job_name"]
    assert taken["ResourceRetainedBillableTimeInSeconds"] >= 0
    assert training_job(local, second)["WarmPoolStatus"]["Status"] == "Available"  # its own, once it ended
    # the bill counts the pool's retained seconds with the job's: ResourceRetainedBillableTimeInSeconds
    # x InstanceCount (WarmPoolStatus)
    arn = local.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{first.execution_name}"
    execution_input = json.loads(local.sfn.describe_execution(executionArn=arn)["input"])
    cost = bill.run_cost(local.sagemaker, execution_input, prices.load(), local.settings.region, datetime.now(UTC))
    job = training_job(local, first)
    seconds = job["BillableTimeInSeconds"] + taken["ResourceRetainedBillableTimeInSeconds"]
    (line,) = [line for line in cost["lines"] if line.startswith("training:")]
    assert f"for {float(seconds):g} s," in line


def test_a_job_on_other_instances_does_not_take_the_pool(local: LocalRuns) -> None:
    left = local.run(WARM)
    other = edited(WARM, {"stages.training.request.ResourceConfig.InstanceType": "ml.m5.2xlarge"})
    assert local.run(other).status == "SUCCEEDED"
    assert training_job(local, left)["WarmPoolStatus"]["Status"] == "Available"
    assert "WarmPoolStatus" not in training_job(local, local.run(load_item("demo-dev-train-and-batch-score")))


@pytest.mark.parametrize(("minutes", "status"), [(30, "FAILED"), (5, "SUCCEEDED")])
def test_an_organisations_bound_on_the_keep_alive_period_is_decided_on_the_request(
    local: LocalRuns, minutes: int, status: str
) -> None:
    """sagemaker:KeepAlivePeriod is a condition key of CreateTrainingJob (Service Authorization
    Reference): an SCP denying warm pools over 10 minutes refuses 30 and lets 5 through."""
    jobs = f"arn:aws:sagemaker:{local.settings.region}:{DEFAULT_ACCOUNT_ID}:training-job/*"
    deny = {
        "Effect": "Deny",
        "Action": "sagemaker:CreateTrainingJob",
        "Resource": jobs,
        "Condition": {"NumericGreaterThan": {"sagemaker:KeepAlivePeriod": "600"}},
    }
    item = edited(WARM, {"stages.training.warm_pool_minutes": minutes})
    report = local.run(item, scp={"Statement": [ALLOW_ALL, deny]})
    assert report.status == status, report.cause
    if status == "FAILED":
        assert report.error == "training.SageMaker.AmazonSageMakerException" or "AccessDenied" in str(report.cause)
        assert "sagemaker:CreateTrainingJob" in str(report.cause)


def test_an_organisations_instance_types_are_decided_on_the_request(local: LocalRuns) -> None:
    """sagemaker:InstanceTypes, multivalued: an SCP allowing training only on ml.m5.large and ml.m5.xlarge."""
    jobs = f"arn:aws:sagemaker:{local.settings.region}:{DEFAULT_ACCOUNT_ID}:training-job/*"
    deny = {
        "Effect": "Deny",
        "Action": "sagemaker:CreateTrainingJob",
        "Resource": jobs,
        "Condition": {"ForAnyValue:StringNotLike": {"sagemaker:InstanceTypes": ["ml.m5.large", "ml.m5.xlarge"]}},
    }
    scp = {"Statement": [ALLOW_ALL, deny]}
    assert local.run(load_item("demo-dev-train-and-batch-score"), scp=scp).status == "SUCCEEDED"
    bigger = edited(
        load_item("demo-dev-train-and-batch-score"),
        {"stages.training.request.ResourceConfig.InstanceType": "ml.m5.4xlarge"},
    )
    report = local.run(bigger, scp=scp)
    assert report.status == "FAILED" and str(report.error).startswith("training.")
    assert "AccessDenied" in str(report.cause)
