"""Managed spot training: what `stages.training.spot` plans, and the rules SageMaker holds a spot job to."""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest

from mlops_sfn.core import sagemaker_api
from mlops_sfn.core.plan import SAMPLE_TRIGGER, plan_execution, plan_run
from mlops_sfn.core.settings import EXAMPLE_SETTINGS
from mlops_sfn.core.stages import STAGE
from mlops_sfn.core.stages.training import CAPACITY_MISSED
from mlops_sfn.tools import statemachine
from tests.conftest import edited, load_item

SPOT = edited(load_item(), {"stages.training.spot": True})


def training(item: dict[str, Any]) -> dict[str, Any]:
    block: dict[str, Any] = plan_execution(item, SAMPLE_TRIGGER, EXAMPLE_SETTINGS)["stages"]["training"]
    return block


def test_spot_plans_the_spot_fields_checkpoints_in_the_run_folder_and_an_on_demand_job() -> None:
    planned = plan_execution(SPOT, SAMPLE_TRIGGER, EXAMPLE_SETTINGS)
    block, folder = planned["stages"]["training"], planned["run_folder"]
    request, on_demand = block["request"], block["on_demand"]["request"]
    assert request["EnableManagedSpotTraining"] is True
    # the default wait: the job's run time, and an hour for capacity
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert request["CheckpointConfig"] == {"S3Uri": f"{folder}training/checkpoints/"}
    # the on-demand job: the same job without spot, resuming from the same checkpoints, its own name
    assert "EnableManagedSpotTraining" not in on_demand and on_demand["StoppingCondition"] == {
        "MaxRuntimeInSeconds": 3600
    }
    assert on_demand["CheckpointConfig"] == request["CheckpointConfig"]
    assert on_demand["TrainingJobName"] == request["TrainingJobName"] + "-od"
    assert len(on_demand["TrainingJobName"]) <= 63
    assert fnmatch.fnmatch(on_demand["TrainingJobName"], "*-train-*")  # the role's training-job/*-train-*
    assert on_demand["Tags"] == request["Tags"]
    # its model is copied to where later stages were planned to read the spot job's
    model = f"{folder}training/{request['TrainingJobName']}/output/model.tar.gz"
    assert block["on_demand"]["model_data_url"] == model
    assert planned["stages"]["create_model"]["request"]["PrimaryContainer"]["ModelDataUrl"] == model


def test_an_on_demand_item_plans_none_of_it() -> None:
    block = training(load_item())
    assert "on_demand" not in block and "CheckpointConfig" not in block["request"]
    assert "EnableManagedSpotTraining" not in block["request"]


def test_the_wait_and_checkpoints_follow_the_items_spot_settings() -> None:
    block = training(edited(load_item(), {"stages.training.spot": {"max_wait_minutes": 90}}))
    assert block["request"]["StoppingCondition"]["MaxWaitTimeInSeconds"] == 5400
    item = edited(
        load_item(),
        {
            "stages.training.spot": {"checkpoints": False, "max_wait_minutes": 60},
            "stages.training.request.StoppingCondition.MaxRuntimeInSeconds": 1800,
        },
    )
    block = training(item)
    assert "CheckpointConfig" not in block["request"] and "CheckpointConfig" not in block["on_demand"]["request"]
    assert block["request"]["StoppingCondition"] == {"MaxRuntimeInSeconds": 1800, "MaxWaitTimeInSeconds": 3600}


def test_the_run_may_last_the_spot_wait_and_the_on_demand_job() -> None:
    block = training(SPOT)
    assert STAGE["training"].limit(block) == 7200 + 3600


def test_each_segment_checkpoints_in_its_own_folder() -> None:
    item = edited(load_item("demo-dev-segmented-house-price"), {"stages.training.spot": True})
    planned = plan_run(item, SAMPLE_TRIGGER, EXAMPLE_SETTINGS)
    folders = {
        segment["stages"]["training"]["request"]["CheckpointConfig"]["S3Uri"] for segment in planned.segment_inputs
    }
    assert len(folders) == len(planned.segment_inputs)
    for segment in planned.segment_inputs:
        uri = segment["stages"]["training"]["request"]["CheckpointConfig"]["S3Uri"]
        assert uri.startswith(segment["run_folder"]) and uri.endswith("/training/checkpoints/")


@pytest.mark.parametrize(
    ("job", "words"),
    [
        ({"StoppingCondition": {"MaxWaitTimeInSeconds": 7200}}, "only supported when EnableManagedSpotTraining"),
        ({"EnableManagedSpotTraining": True, "StoppingCondition": {"MaxRuntimeInSeconds": 60}}, "is required"),
        (
            {
                "EnableManagedSpotTraining": True,
                "StoppingCondition": {"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 300},
            },
            "300 is less than MaxRuntimeInSeconds (600)",
        ),
        # no MaxRuntimeInSeconds: SageMaker's default, a day
        ({"EnableManagedSpotTraining": True, "StoppingCondition": {"MaxWaitTimeInSeconds": 3600}}, "less than"),
    ],
)
def test_sagemaker_refuses_a_spot_job_whose_wait_is_missing_short_or_without_spot(
    job: dict[str, Any], words: str
) -> None:
    problems = sagemaker_api.spot_problems(job, "request")
    assert [p.path for p in problems] == ["request.StoppingCondition.MaxWaitTimeInSeconds"]
    assert words in problems[0].message
    # a tuning job's training jobs are held to the same rules
    tuning = sagemaker_api.spot_problems(job, "request.TrainingJobDefinition")
    assert tuning[0].path == "request.TrainingJobDefinition.StoppingCondition.MaxWaitTimeInSeconds"


def test_a_spot_job_with_a_long_enough_wait_and_an_on_demand_job_pass() -> None:
    job = {
        "EnableManagedSpotTraining": True,
        "StoppingCondition": {"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 60},
    }
    assert sagemaker_api.spot_problems(job, "") == []
    assert sagemaker_api.spot_problems({"StoppingCondition": {"MaxRuntimeInSeconds": 60}}, "") == []


def test_only_a_job_that_capacity_never_reached_trains_again_on_demand() -> None:
    """The spot job's error is caught into its results and read in order: no on-demand job planned, or
    no cause, or any other ending than MaxWaitTimeExceeded, and the stage fails as any job failure."""
    states = statemachine.build()["States"]
    catches = states["Training"]["Catch"]
    assert catches[0] == {
        "ErrorEquals": ["States.TaskFailed"],
        "ResultPath": "$.results.training",
        "Next": "Spot capacity missed?",
    }
    assert catches[-1]["ErrorEquals"] == ["States.ALL"] and catches[-1]["Next"] == "Training failed"
    choices = states["Spot capacity missed?"]["Choices"]
    assert [choice["Next"] for choice in choices] == [
        "Training job failed",
        "Training job failed",
        "Training on demand",
    ]
    assert (
        choices[2]["StringMatches"] == CAPACITY_MISSED
        and states["Spot capacity missed?"]["Default"] == "Training job failed"
    )
    assert states["Training job failed"]["Next"] == "Training failed"
    assert states["Training on demand"]["InputPath"] == "$.stages.training.on_demand.request"
    assert states["Copy on-demand model"]["Next"] == states["Training"]["Next"]


def test_a_tuning_jobs_trials_run_on_spot_without_checkpoints_or_fallback() -> None:
    item = edited(load_item(), {"stages.training.run": False, "stages.tuning.run": True, "stages.tuning.spot": True})
    block = plan_execution(item, SAMPLE_TRIGGER, EXAMPLE_SETTINGS)["stages"]["tuning"]
    definition = block["request"]["TrainingJobDefinition"]
    assert definition["EnableManagedSpotTraining"] is True
    # no checkpoints: an hour at most, the trials' run time within it
    assert definition["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 3600}
    assert "CheckpointConfig" not in definition and "on_demand" not in block
    assert sagemaker_api.check_request("CreateHyperParameterTuningJob", block["request"], "request") == []
    runtime = "stages.tuning.request.TrainingJobDefinition.StoppingCondition.MaxRuntimeInSeconds"
    shorter = edited(item, {"stages.tuning.spot": {"max_wait_minutes": 45}, runtime: 1800})
    definition = plan_execution(shorter, SAMPLE_TRIGGER, EXAMPLE_SETTINGS)["stages"]["tuning"]["request"]
    assert definition["TrainingJobDefinition"]["StoppingCondition"]["MaxWaitTimeInSeconds"] == 2700
