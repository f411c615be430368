"""Managed spot training on the local AWS: interrupted (resumed from its checkpoint), without capacity
(trained once more on demand, the run saying so), and the spot fields SageMaker refuses."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from mlops_sfn import cli
from mlops_sfn.core.plan import SAMPLE_TRIGGER, plan_execution
from mlops_sfn.core.settings import EXAMPLE_SETTINGS
from mlops_sfn.local.harness import DEFAULT_ACCOUNT_ID, LocalRuns
from mlops_sfn.local.sagemaker import LOCAL_SPOT_BILLED
from mlops_sfn.local.simulated import SIMULATED_CHECKPOINT
from mlops_sfn.operate import bill
from tests.conftest import edited, load_item
from tests.functional.test_operate import outputs_file

pytestmark = pytest.mark.functional

SPOT = edited(load_item(), {"stages.training.spot": True})
ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}


@pytest.fixture(scope="module")
def local() -> Any:
    with LocalRuns() as runs:
        yield runs


def read(local: LocalRuns, uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bytes(local.s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def archived(data: bytes) -> dict[str, Any]:
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        member = archive.getmembers()[0]
        content = archive.extractfile(member)
        assert content is not None
        return dict(json.loads(content.read()))


def test_a_spot_job_that_capacity_never_reached_is_trained_once_more_on_demand(local: LocalRuns) -> None:
    report = local.run(SPOT, answer="approve", spot="none")
    assert report.status == "SUCCEEDED", report.cause
    on_demand = report.states.index("Training on demand")
    assert report.states[on_demand - 2 : on_demand + 2] == [
        "Training",
        "Spot capacity missed?",
        "Training on demand",
        "Copy on-demand model",
    ]
    name = report.results["training"]["job_name"]
    spot_job = local.sagemaker.describe_training_job(TrainingJobName=name.removesuffix("-od"))
    assert spot_job["EnableManagedSpotTraining"] is True
    # as "Managed Spot Training Lifecycle" lists it: Starting, Stopping, then Stopped: MaxWaitTimeExceeded
    assert spot_job["TrainingJobStatus"] == "Stopped" and spot_job["SecondaryStatus"] == "MaxWaitTimeExceeded"
    assert [t["Status"] for t in spot_job["SecondaryStatusTransitions"]] == [
        "Starting",
        "Stopping",
        "MaxWaitTimeExceeded",
    ]
    assert spot_job["BillableTimeInSeconds"] == 0
    job = local.sagemaker.describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "Completed" and not job.get("EnableManagedSpotTraining")
    assert job["BillableTimeInSeconds"] == job["TrainingTimeInSeconds"] >= 1  # on demand: every second billed
    # the run says so, and the model is where later stages were planned to read it
    assert report.results["training"]["on_demand"] is True
    model = f"{spot_job['OutputDataConfig']['S3OutputPath']}{spot_job['TrainingJobName']}/output/model.tar.gz"
    assert report.results["training"]["model"]["model_data_url"] == model
    assert read(local, model) == read(local, report.results["training"]["model_data_url"])
    assert archived(read(local, model))["training_job"] == name
    success = next(n for n in report.notifications if n["subject"] == "Pipeline run succeeded")
    assert success["message"]["results"]["training"]["on_demand"] is True
    # both jobs carry the run's tags
    tags = local.sagemaker.list_tags(ResourceArn=job["TrainingJobArn"])["Tags"]
    assert {"Key": "mlops-sfn:stage", "Value": "training"} in tags


def test_an_interrupted_spot_job_resumes_from_its_checkpoint_and_bills_less(local: LocalRuns) -> None:
    report = local.run(SPOT, answer="approve", spot="interrupted")
    assert report.status == "SUCCEEDED", report.cause
    assert "Training on demand" not in report.states
    name = report.results["training"]["job_name"]
    job = local.sagemaker.describe_training_job(TrainingJobName=name)
    statuses = [t["Status"] for t in job["SecondaryStatusTransitions"]]
    assert statuses[: statuses.index("Completed") + 1] == [
        "Starting",
        "Downloading",
        "Training",
        "Interrupted",
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    # the second attempt started from what the first saved under the run's folder
    checkpoint = job["CheckpointConfig"]["S3Uri"]
    assert checkpoint.endswith(f"/{report.execution_name}/training/checkpoints/")
    assert json.loads(read(local, checkpoint + SIMULATED_CHECKPOINT))["attempt"] == 2
    model = archived(read(local, report.results["training"]["model_data_url"]))
    assert model["resumed_from"] == {"training_job": name, "attempt": 1}
    # AWS reports a spot job's billable time at the spot price: the saving is 1 - billable / training
    assert job["BillableTimeInSeconds"] < job["TrainingTimeInSeconds"] or job["TrainingTimeInSeconds"] == 1
    assert job["BillableTimeInSeconds"] == -(-job["TrainingTimeInSeconds"] * LOCAL_SPOT_BILLED // 1)


def test_when_the_on_demand_job_fails_too_the_run_fails_at_training(local: LocalRuns) -> None:
    """The fallback runs once: an on-demand job the guardrails refuse fails the stage, notified."""
    jobs = f"arn:aws:sagemaker:{local.settings.region}:{DEFAULT_ACCOUNT_ID}:training-job/*-od"
    scp = {"Statement": [ALLOW_ALL, {"Effect": "Deny", "Action": "sagemaker:CreateTrainingJob", "Resource": jobs}]}
    report = local.run(SPOT, spot="none", scp=scp)
    assert report.status == "FAILED" and report.error is not None and report.error.startswith("training.SageMaker")
    assert "AccessDenied" in str(report.cause) and "sagemaker:CreateTrainingJob" in str(report.cause)
    assert report.states.count("Training on demand") == 1 and "Copy on-demand model" not in report.states
    failure = next(n for n in report.notifications if n["subject"] == "Pipeline run failed")
    assert failure["message"]["failed_stage"] == "training"


def test_a_training_job_that_fails_on_spot_capacity_fails_as_any_job(local: LocalRuns) -> None:
    """Only MaxWaitTimeExceeded is capacity missed: a job that failed is not run again on demand."""
    report = local.run(SPOT, fail={"training"})
    assert report.status == "FAILED" and report.error == "training.States.TaskFailed"
    assert "simulated failure of training" in str(report.cause)
    assert "Training on demand" not in report.states
    assert report.states[report.states.index("Training") + 1 : report.states.index("Training") + 4] == [
        "Spot capacity missed?",
        "Training job failed",
        "Training failed",
    ]


def test_the_on_demand_model_the_copy_may_not_write_fails_the_run_at_training(local: LocalRuns) -> None:
    """The model-copy function writes as its role: S3 decides (CopyObject needs s3:PutObject on the target)."""
    # where the spot job's model was planned (the on-demand job's own output, "...-od/", stays allowed)
    target = f"arn:aws:s3:::{local.settings.bucket}/runs/*/training/*-train-??????????/output/model.tar.gz"
    scp = {"Statement": [ALLOW_ALL, {"Effect": "Deny", "Action": "s3:PutObject", "Resource": target}]}
    report = local.run(SPOT, spot="none", scp=scp)
    assert report.status == "FAILED" and report.error is not None and report.error.startswith("training.")
    assert "AccessDenied" in str(report.cause) and "s3:PutObject" in str(report.cause)
    assert "Copy on-demand model" in report.states


def test_a_segment_whose_spot_capacity_never_came_trains_on_demand(local: LocalRuns) -> None:
    item = edited(load_item("demo-dev-segmented-house-price"), {"stages.training.spot": True})
    report = local.run(item, spot="none")
    assert report.status == "SUCCEEDED", report.cause
    children = [e["stateEnteredEventDetails"]["name"] for e in report.child_history if "stateEnteredEventDetails" in e]
    segments = len(item["fanout"]["segments"])
    assert children.count("Segment: Training on demand") == children.count("Segment: Copy on-demand model") == segments


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"StoppingCondition": {"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 120}}, "only supported when"),
        ({"EnableManagedSpotTraining": True, "StoppingCondition": {"MaxRuntimeInSeconds": 60}}, "is required"),
        (
            {
                "EnableManagedSpotTraining": True,
                "StoppingCondition": {"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 30},
            },
            "less than MaxRuntimeInSeconds",
        ),
    ],
)
def test_the_local_sagemaker_refuses_spot_fields_as_sagemaker_does(
    local: LocalRuns, change: dict[str, Any], words: str
) -> None:
    request = plan_execution(load_item(), SAMPLE_TRIGGER, local.settings)["stages"]["training"]["request"] | change
    request["TrainingJobName"] = f"spot-refused-{len(words)}"
    with pytest.raises(ClientError) as refused:
        local.local.sagemaker.call("createTrainingJob", request, local.settings.region, DEFAULT_ACCOUNT_ID)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert words in refused.value.response["Error"]["Message"]
    sagemaker = boto3.client("sagemaker", region_name=local.settings.region)
    with pytest.raises(ClientError):
        sagemaker.describe_training_job(TrainingJobName=request["TrainingJobName"])  # nothing was created


# -- what status reports of it --------------------------------------------------------------------------


def test_status_shows_what_sagemaker_billed_the_spot_job_and_the_saving(
    local: LocalRuns, tmp_path: Path, capsys: Any
) -> None:
    report = local.run(SPOT, answer="approve", spot="interrupted")
    job = local.sagemaker.describe_training_job(TrainingJobName=report.results["training"]["job_name"])
    billed, trained = job["BillableTimeInSeconds"], job["TrainingTimeInSeconds"]
    outputs = outputs_file(tmp_path, local.state_machine_arn, bucket_name=local.settings.bucket)
    assert cli.main(["status", report.execution_name, "--outputs", str(outputs)]) == 0
    saving = round((1 - billed / trained) * 100, 1)  # AWS's formula
    assert f"spot: {billed} s billed of {trained} s trained: saved {saving:g} %" in capsys.readouterr().out
    assert cli.main(["status", report.execution_name, "--json", "--outputs", str(outputs)]) == 0
    (shown,) = json.loads(capsys.readouterr().out)["stages"]["training"]["spot"]["jobs"]
    assert shown == {
        "job": job["TrainingJobName"],
        "status": "Completed (Completed)",
        "training_seconds": trained,
        "billable_seconds": billed,
        "spot": True,
        "saving_percent": saving,
    }


def test_status_says_when_spot_capacity_missed_and_what_the_on_demand_job_billed(
    local: LocalRuns, tmp_path: Path, capsys: Any
) -> None:
    report = local.run(SPOT, answer="approve", spot="none")
    name = report.results["training"]["job_name"]
    billed = local.sagemaker.describe_training_job(TrainingJobName=name)["BillableTimeInSeconds"]
    outputs = outputs_file(tmp_path, local.state_machine_arn, bucket_name=local.settings.bucket)
    assert cli.main(["status", report.execution_name, "--outputs", str(outputs)]) == 0
    text = capsys.readouterr().out
    assert f"spot capacity did not arrive in time: trained on demand as {name}" in text
    spot = name.removesuffix("-od")
    assert f"spot: capacity did not arrive ({spot}: Stopped (MaxWaitTimeExceeded), 0 s billed);" in text
    assert f"on demand {name}: {billed} s billed" in text


def test_status_without_permission_to_describe_the_jobs_says_so() -> None:
    class Refusing:
        def describe_training_job(self, **_: Any) -> None:
            error = {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}
            raise ClientError(error, "DescribeTrainingJob")

    planned = plan_execution(SPOT, SAMPLE_TRIGGER, EXAMPLE_SETTINGS)
    found = bill.spot_training(Refusing(), planned, {})
    assert found is not None and "AccessDeniedException" in bill.spot_line(found)
    assert bill.spot_training(Refusing(), plan_execution(load_item(), SAMPLE_TRIGGER, EXAMPLE_SETTINGS), {}) is None


def test_a_tuning_job_on_spot_capacity_runs_and_its_training_jobs_are_asked_for_on_spot(local: LocalRuns) -> None:
    item = edited(load_item(), {"stages.training.run": False, "stages.tuning.run": True, "stages.tuning.spot": True})
    report = local.run(item, answer="approve")
    assert report.status == "SUCCEEDED", report.cause
    name = report.results["tuning"]["best_training_job"].rsplit("-", 2)[0]  # the tuning job's
    described = local.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    assert described["TrainingJobDefinition"]["EnableManagedSpotTraining"] is True


def test_local_run_says_when_an_item_has_no_spot_training_to_deprive_of_capacity(capsys: Any) -> None:
    item = "dynamodb_items/demo-dev-train-and-batch-score.json"
    assert cli.main(["local", "run", item, "--no-spot-capacity"]) == 2
    assert "trains on demand: set stages.training.spot" in capsys.readouterr().err
