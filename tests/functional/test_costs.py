"""What `status` and `runs --cost` say a run cost, from what SageMaker recorded of its jobs and endpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops_sfn import cli
from mlops_sfn.core import fanout, prices
from mlops_sfn.local.harness import LocalRuns
from tests.conftest import load_item
from tests.functional.test_operate import outputs_file

pytestmark = pytest.mark.functional
TABLE = prices.load()


@pytest.fixture(scope="module")
def ran() -> Any:
    with LocalRuns() as local:
        yield local, local.run(load_item(), answer="approve")


def hand_bill(local: LocalRuns, execution_input: dict[str, Any]) -> dict[str, float]:
    """Each stage's cost from the jobs' and endpoint's descriptions, as AWS documents billing."""
    sm, region, stages = local.sagemaker, local.settings.region, execution_input["stages"]
    hourly = lambda use, instance: TABLE.hourly(region, use, instance)  # noqa: E731
    training = sm.describe_training_job(TrainingJobName=stages["training"]["request"]["TrainingJobName"])
    bill = {  # BillableTimeInSeconds x InstanceCount (DescribeTrainingJob)
        "training": training["BillableTimeInSeconds"]
        * training["ResourceConfig"]["InstanceCount"]
        * hourly("training", training["ResourceConfig"]["InstanceType"])
        / 3600
    }
    for stage in ("preprocessing", "evaluation", "monitoring"):
        job = sm.describe_processing_job(ProcessingJobName=stages[stage]["request"]["ProcessingJobName"])
        cluster = job["ProcessingResources"]["ClusterConfig"]
        seconds = (job["ProcessingEndTime"] - job["ProcessingStartTime"]).total_seconds()
        bill[stage] = seconds * cluster["InstanceCount"] * hourly("processing", cluster["InstanceType"]) / 3600
    job = sm.describe_transform_job(TransformJobName=stages["batch_transform"]["request"]["TransformJobName"])
    seconds = (job["TransformEndTime"] - job["TransformStartTime"]).total_seconds()
    resources = job["TransformResources"]
    bill["batch_transform"] = (
        seconds * resources["InstanceCount"] * hourly("transform", resources["InstanceType"]) / 3600
    )
    return bill


def test_status_reports_each_stage_from_what_sagemaker_recorded(ran: Any, tmp_path: Path, capsys: Any) -> None:
    local, report = ran
    outputs = outputs_file(tmp_path, local.state_machine_arn, bucket_name=local.settings.bucket)
    assert cli.main(["status", report.execution_name, "--json", "--outputs", str(outputs)]) == 0
    shown = json.loads(capsys.readouterr().out)
    cost = shown["cost"]
    arn = local.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{report.execution_name}"
    execution_input = json.loads(local.sfn.describe_execution(executionArn=arn)["input"])
    hand = hand_bill(local, execution_input)
    for stage, usd in hand.items():  # to the cost's precision, a millionth of a dollar
        assert cost["stages"][stage] == pytest.approx(usd, abs=1e-6), stage
    assert cost["stages"]["training"] > 0  # a training job bills at least a second
    # the endpoint: its instance since it took this run's config, up to now (so at least 0)
    assert cost["stages"]["deploy"] >= 0 and any(line.startswith("deploy:") for line in cost["lines"])
    assert "tuning's training jobs" in cost["not_counted"]
    assert shown["estimate"] == execution_input["estimate"] and shown["estimate"]["usd"] >= cost["usd"]
    assert cli.main(["status", report.execution_name, "--outputs", str(outputs)]) == 0
    text = capsys.readouterr().out
    assert f"estimate at the start: at most USD {execution_input['estimate']['usd']:.2f}" in text
    assert "training: USD" in text and "1 x ml.m5.large" in text


def test_runs_cost_adds_each_runs_cost(ran: Any, tmp_path: Path, capsys: Any) -> None:
    local, report = ran
    outputs = outputs_file(tmp_path, local.state_machine_arn, bucket_name=local.settings.bucket)
    assert cli.main(["runs", "--cost", "--json", "--outputs", str(outputs)]) == 0
    (listed,) = [run for run in json.loads(capsys.readouterr().out) if run["name"] == report.execution_name]
    execution_input = json.loads(local.sfn.describe_execution(executionArn=listed["arn"])["input"])
    assert listed["cost"]["usd"] >= round(sum(hand_bill(local, execution_input).values()), 4)  # and the endpoint
    assert cli.main(["runs", "--cost", "--outputs", str(outputs)]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert "cost (USD)" in header and any(report.execution_name in line for line in lines)
    assert cli.main(["runs", "--outputs", str(outputs)]) == 0
    assert "cost (USD)" not in capsys.readouterr().out  # only when asked: it describes every run's jobs


def test_a_fanned_out_runs_cost_counts_every_segments_jobs(tmp_path: Path, capsys: Any) -> None:
    item = load_item("demo-dev-segmented-house-price")
    with LocalRuns() as local:
        report = local.run(item)
        assert report.status == "SUCCEEDED", report.cause
        outputs = outputs_file(tmp_path, local.state_machine_arn, bucket_name=local.settings.bucket)
        assert cli.main(["status", report.execution_name, "--json", "--outputs", str(outputs)]) == 0
        cost = json.loads(capsys.readouterr().out)["cost"]
        arn = local.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{report.execution_name}"
        planned = fanout.planned_segments(local.s3, json.loads(local.sfn.describe_execution(executionArn=arn)["input"]))
        trained = [
            local.sagemaker.describe_training_job(
                TrainingJobName=segment["stages"]["training"]["request"]["TrainingJobName"]
            )
            for segment in planned
        ]
    segments = {segment["id"] for segment in item["fanout"]["segments"]}
    assert len(trained) == len(segments) == len(planned)
    hourly = TABLE.hourly(local.settings.region, "training", "ml.m5.large")
    assert hourly is not None
    hand = sum(job["BillableTimeInSeconds"] * job["ResourceConfig"]["InstanceCount"] for job in trained) * hourly / 3600
    assert cost["stages"]["training"] == pytest.approx(hand, abs=1e-5)
    assert sum(line.startswith("training:") for line in cost["lines"]) == len(segments)
