"""Warm pools: what stages.training.warm_pool_minutes plans, and what SageMaker does not pool."""

from __future__ import annotations

import pytest

from mlops_sfn.core.plan import SAMPLE_TRIGGER, plan_execution, plan_run
from mlops_sfn.core.problems import InvalidItem
from mlops_sfn.core.settings import EXAMPLE_SETTINGS
from mlops_sfn.core.stages.training import WARM_POOL_MATCH
from tests.conftest import edited, load_item

WARM = edited(load_item(), {"stages.training.warm_pool_minutes": 30})


def test_the_keep_alive_period_is_planned_from_the_item() -> None:
    planned = plan_execution(WARM, SAMPLE_TRIGGER, EXAMPLE_SETTINGS)["stages"]["training"]["request"]
    assert planned["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 1800
    plain = plan_execution(load_item(), SAMPLE_TRIGGER, EXAMPLE_SETTINGS)["stages"]["training"]["request"]
    assert "KeepAlivePeriodInSeconds" not in plain["ResourceConfig"]


def test_the_estimate_counts_the_pool_waiting_at_the_training_price() -> None:
    with_pool = plan_run(WARM, SAMPLE_TRIGGER, EXAMPLE_SETTINGS).estimate["stages"]["training"]
    without = plan_run(load_item(), SAMPLE_TRIGGER, EXAMPLE_SETTINGS).estimate["stages"]["training"]
    assert with_pool == pytest.approx(without * 1.5)  # an hour's limit, then half an hour kept alive


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        ({"stages.training.spot": True}, "stages.training.warm_pool_minutes", "no warm pool of spot capacity"),
        (
            {
                "stages.training.request.ResourceConfig.InstanceGroups": [
                    {"InstanceGroupName": "a", "InstanceType": "ml.m5.large", "InstanceCount": 1}
                ]
            },
            "stages.training.warm_pool_minutes",
            "heterogeneous cluster",
        ),
        ({"stages.training.warm_pool_minutes": 61}, "stages.training.warm_pool_minutes", "out of range"),
        ({"stages.training.warm_pool_minutes": 0}, "stages.training.warm_pool_minutes", "out of range"),
    ],
)
def test_what_sagemaker_does_not_pool_is_refused_naming_the_field(changes: dict, path: str, words: str) -> None:
    with pytest.raises(InvalidItem) as raised:
        plan_execution(edited(WARM, changes), SAMPLE_TRIGGER, EXAMPLE_SETTINGS)
    found = [p for p in raised.value.problems if p.path == path]
    assert found and words in found[0].message, raised.value.problems


def test_the_keep_alive_period_in_the_request_is_refused() -> None:
    item = edited(load_item(), {"stages.training.request.ResourceConfig.KeepAlivePeriodInSeconds": 600})
    with pytest.raises(InvalidItem) as raised:
        plan_execution(item, SAMPLE_TRIGGER, EXAMPLE_SETTINGS)
    (problem,) = raised.value.problems
    assert problem.path == "stages.training.request.ResourceConfig.KeepAlivePeriodInSeconds"
    assert "warm_pool_minutes" in problem.message


def test_segments_whose_jobs_could_not_share_a_pool_are_refused() -> None:
    item = edited(load_item("demo-dev-segmented-house-price"), {"stages.training.warm_pool_minutes": 10})
    planned = plan_run(item, SAMPLE_TRIGGER, EXAMPLE_SETTINGS)
    requests = [segment["stages"]["training"]["request"] for segment in planned.segment_inputs]
    assert {r["ResourceConfig"]["KeepAlivePeriodInSeconds"] for r in requests} == {600}
    segments = item["fanout"]["segments"]
    for index, segment in enumerate(segments):  # one segment in another subnet
        segment["subnet"] = "subnet-0aaaaaaaaaaaaaaaa" if index != 1 else "subnet-0bbbbbbbbbbbbbbbb"
    vpc = {"SecurityGroupIds": ["sg-0123456789abcdef0"], "Subnets": ["{segment.subnet}"]}
    item["stages"]["training"].setdefault("request", {})["VpcConfig"] = vpc
    with pytest.raises(InvalidItem) as raised:
        plan_run(item, SAMPLE_TRIGGER, EXAMPLE_SETTINGS)
    (problem,) = raised.value.problems
    assert problem.path == "stages.training.request.VpcConfig"
    assert f"segments {segments[0]['id']!r} and {segments[1]['id']!r} would not share a warm pool" in problem.message
    assert "VpcConfig" in WARM_POOL_MATCH
