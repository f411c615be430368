"""Tags on everything a run creates: planned into every Create request the definition sends."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from mlops_sfn.core import asl, cache, tags
from mlops_sfn.core.plan import SAMPLE_TRIGGER, check_with_sample, plan_run
from mlops_sfn.core.settings import EXAMPLE_SETTINGS
from mlops_sfn.core.stages import CATALOG
from mlops_sfn.tools import statemachine
from tests.conftest import DEMO, edited, load_item

SETTINGS = replace(EXAMPLE_SETTINGS, deployment_tags='{"mlops-sfn:environment": "dev", "team": "platform"}')


def every_stage() -> dict[str, Any]:
    """The demo with every stage on (tuning beside training: the model from tuning)."""
    item = load_item()
    for stage in CATALOG:
        item["stages"].setdefault(stage.name, {})["run"] = True
    item["stages"]["tuning"] = load_item("demo-dev-train-and-batch-score")["stages"].get("tuning") or {
        "run": True,
        "request": {
            "HyperParameterTuningJobConfig": {
                "Strategy": "Random",
                "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1},
            }
        },
    }
    item["stages"]["tuning"]["run"] = True
    item["stages"]["training"]["run"] = False
    return item | {"tags": {"cost-center": "ml-42", "team": "pricing"}}


def resolve(document: dict[str, Any], path: str) -> Any:
    """A JSONPath of the simple form the definition uses ($.a.b.c) in a document."""
    value: Any = document
    for part in path.removeprefix("$.").split("."):
        value = value[part]
    return value


# The Create calls that take Tags, as the definition sends them (Task resource -> the API).
TAGGED = {
    "sagemaker:createProcessingJob.sync": "CreateProcessingJob",
    "sagemaker:createTrainingJob.sync": "CreateTrainingJob",
    "sagemaker:createHyperParameterTuningJob.sync": "CreateHyperParameterTuningJob",
    "sagemaker:createTransformJob.sync": "CreateTransformJob",
    "sagemaker:createModel": "CreateModel",
    "sagemaker:createEndpointConfig": "CreateEndpointConfig",
    "sagemaker:createEndpoint": "CreateEndpoint",
    "aws-sdk:sagemaker:createModelPackageGroup": "CreateModelPackageGroup",
    "aws-sdk:sagemaker:createDataQualityJobDefinition": "CreateDataQualityJobDefinition",
    "aws-sdk:sagemaker:createMonitoringSchedule": "CreateMonitoringSchedule",
    "aws-sdk:cloudwatch:putMetricAlarm": "PutMetricAlarm",
}


def test_every_create_call_the_definition_sends_carries_the_runs_the_items_and_the_deployments_tags() -> None:
    tuned = plan_run(every_stage(), SAMPLE_TRIGGER, SETTINGS).execution_input
    trained = plan_run(
        edited(every_stage(), {"stages.tuning.run": False, "stages.training.run": True, "stages.training.spot": True}),
        SAMPLE_TRIGGER,
        SETTINGS,
    )  # on spot capacity: its on-demand job is planned too
    states = asl.states(statemachine.build())
    sent = {
        name: state
        for name, state in states.items()
        if state["Type"] == "Task"
        and not name.startswith(statemachine.SEGMENT)  # the Map's own states: as the run's (below)
        and state["Resource"].removeprefix("arn:aws:states:::") in TAGGED
    }
    assert {state["Resource"].removeprefix("arn:aws:states:::") for state in sent.values()} == set(TAGGED)
    scaled = plan_run(  # served asynchronously, scaled from zero: its backlog alarm planned
        edited(every_stage(), {"stages.deploy.mode": "async", "stages.deploy.autoscaling": {"max": 2}}),
        SAMPLE_TRIGGER,
        SETTINGS,
    ).execution_input
    for name, state in sent.items():
        # each sends a planned request whole, or (the backlog alarm) field by field, its Tags among them
        path = state.get("InputPath") or state["Parameters"]["Tags.$"].removesuffix(".Tags")
        stage = path.split(".")[2]
        planned = trained.execution_input if stage == "training" else scaled if "InputPath" not in state else tuned
        request = resolve(planned, path)
        found = {tag["Key"]: tag["Value"] for tag in request["Tags"]}
        assert found == {
            "mlops-sfn:environment": "dev",
            "team": "pricing",  # the item's, over the deployment's
            "cost-center": "ml-42",
            "mlops-sfn:pipeline": DEMO,
            "mlops-sfn:execution": planned["execution_name"],
            "mlops-sfn:stage": stage,
        }, name
    # a registered package takes its group's tags: SageMaker refuses Tags beside ModelPackageGroupName
    assert "Tags" not in tuned["stages"]["register"]["request"]
    # the schedule's update sends no Tags (UpdateMonitoringSchedule takes none)
    update = states["Update schedule"]
    assert "InputPath" not in update and "Tags" not in str(update["Parameters"])


def test_a_segments_resources_name_their_segment_and_the_run() -> None:
    item = load_item("demo-dev-segmented-house-price")
    planned = plan_run(item, SAMPLE_TRIGGER, SETTINGS)
    for segment in planned.segment_inputs:
        found = {t["Key"]: t["Value"] for t in segment["stages"]["training"]["request"]["Tags"]}
        assert found["mlops-sfn:segment"] == segment["segment"]
        assert found["mlops-sfn:execution"] == planned.execution_input["execution_name"]  # the run's, not a path
    assert "mlops-sfn:segment" not in str(planned.execution_input["stages"]["deploy"])


def test_tags_key_nothing_so_a_retagged_run_reuses_its_cached_stages() -> None:
    first = plan_run(load_item(), SAMPLE_TRIGGER, EXAMPLE_SETTINGS).execution_input
    second = plan_run(load_item() | {"tags": {"cost-center": "other"}}, SAMPLE_TRIGGER, SETTINGS).execution_input
    assert first["stages"]["training"]["request"]["Tags"] != second["stages"]["training"]["request"]["Tags"]

    def listing(location: str) -> str:
        return "listed"

    assert cache.keys(first, listing)["training"].key == cache.keys(second, listing)["training"].key


def test_a_rerun_tags_what_it_creates_as_its_own() -> None:
    planned = plan_run(load_item(), SAMPLE_TRIGGER, EXAMPLE_SETTINGS).execution_input
    rerun = tags.retagged(copy.deepcopy(planned["stages"]), "rerun-1")
    found = {t["Key"]: t["Value"] for t in rerun["deploy"]["alarms"]["errors"]["Tags"]}
    assert found["mlops-sfn:execution"] == "rerun-1" and found["mlops-sfn:stage"] == "deploy"


@pytest.mark.parametrize(
    ("tagged", "words"),
    [
        ({"aws:owner": "x"}, "keys starting with 'aws:' are AWS's"),
        ({"mlops-sfn:stage": "x"}, "keys starting with 'mlops-sfn:' are the framework's"),
        ({"cost center!": "x"}, "tags.cost center! (the key)"),
        ({"owner": "a#b"}, "'#' may not be in a tag"),
        ({"owner": "v" * 257}, "tags.owner"),
    ],
)
def test_an_item_tag_aws_would_refuse_is_named(tagged: dict[str, str], words: str) -> None:
    problems = check_with_sample(load_item() | {"tags": tagged})
    assert problems and any(words in f"{p.path} {p.message}" for p in problems), problems


def test_more_tags_than_sagemaker_takes_are_refused() -> None:
    many = {f"k{index}": "v" for index in range(45)}
    deployment = replace(EXAMPLE_SETTINGS, deployment_tags='{"a": "1", "b": "2"}')
    (problem,) = check_with_sample(load_item() | {"tags": many}, deployment)
    assert problem.path == "tags" and "would carry 51 tags" in problem.message and "at most 50" in problem.message


def test_required_tags_are_named_with_what_to_add() -> None:
    required = replace(EXAMPLE_SETTINGS, required_tags="cost-center, owner")
    (problem,) = check_with_sample(edited(load_item(), {"tags": {"owner": "pricing"}}), required)
    assert problem.path == "tags"
    assert "requires every item to set cost-center" in problem.message and '"cost-center": "..."' in problem.message
    assert check_with_sample(load_item() | {"tags": {"owner": "p", "cost-center": "c"}}, required) == []


def test_tags_in_a_request_are_refused_for_the_items_tags() -> None:
    item = edited(load_item(), {"stages.training.request.Tags": [{"Key": "team", "Value": "x"}]})
    problems = check_with_sample(item)
    assert [p.path for p in problems] == ["stages.training.request.Tags"]
    assert 'set the item\'s "tags" instead' in problems[0].message


def test_a_deployment_tag_sagemaker_would_refuse_is_named_with_where_it_comes_from() -> None:
    deployment = replace(EXAMPLE_SETTINGS, deployment_tags='{"team": "a#b"}')
    (problem,) = check_with_sample(load_item(), deployment)
    assert problem.path == "tags (the deployment's tag 'team', root variable tags)"
    assert "'#' may not be in a tag" in problem.message


def test_a_tag_problem_is_reported_with_the_items_other_problems() -> None:
    item = edited(load_item(), {"stages.training.run": "Y"}) | {"tags": {"aws:owner": "x"}}
    paths = [problem.path for problem in check_with_sample(item)]
    assert "stages.training.run" in paths and "tags.aws:owner" in paths
