"""Segments at once within SageMaker's quotas (fanout.instances, fanout.within_quotas): what one
segment holds under each quota, and the bound each applied quota sets."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_sfn.core import fanout
from mlops_sfn.core.problems import InvalidItem


def segment(**stages: dict[str, Any]) -> dict[str, Any]:
    return {"stages": {name: {"request": request} for name, request in stages.items()}}


PROCESSING = {"ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 2}}}
TRAINING = {"ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1}}
TUNING = {
    "HyperParameterTuningJobConfig": {"ResourceLimits": {"MaxNumberOfTrainingJobs": 12, "MaxParallelTrainingJobs": 3}},
    "TrainingJobDefinition": {"ResourceConfig": {"InstanceType": "ml.c5.xlarge", "InstanceCount": 2}},
}


def test_a_segment_holds_its_largest_job_per_quota_a_tuning_job_its_parallel_trials() -> None:
    needs = fanout.instances(
        [segment(preprocessing=PROCESSING, training=TRAINING, evaluation=PROCESSING), segment(tuning=TUNING)]
    )
    assert needs == {
        "ml.m5.large for processing job usage": 2,  # one stage after another: the largest, not the sum
        "ml.m5.large for training job usage": 1,
        "ml.c5.xlarge for training job usage": 6,  # 3 trials at once, 2 instances each
    }
    spot = dict(TRAINING, EnableManagedSpotTraining=True)
    assert fanout.instances([segment(training=spot)]) == {"ml.m5.large for spot training job usage": 1}


@pytest.mark.parametrize(
    ("quotas", "bound", "why"),
    [
        ({"ml.m5.large for processing job usage": 9}, 4, "... is 9 instances and each segment holds 2"),
        ({"ml.m5.large for processing job usage": 40, "ml.c5.xlarge for training job usage": 20}, 3, "holds 6"),
        ({"ml.m5.large for processing job usage": 40}, 10, None),  # never raised above the item's
        ({"ml.p3.2xlarge for training job usage": 0}, 10, None),  # a quota no job uses
        ({}, 10, None),
        (None, 10, None),  # the quotas could not be read
    ],
)
def test_the_tightest_applied_quota_bounds_segments_at_once(
    quotas: dict[str, float] | None, bound: int, why: str | None
) -> None:
    execution_input = {"fanout": {"max_concurrency": 10}}
    segments = [segment(preprocessing=PROCESSING, tuning=TUNING)]
    said = fanout.within_quotas(execution_input, segments, quotas)
    assert execution_input["fanout"]["max_concurrency"] == bound
    assert (said is None) == (why is None)
    if why is not None and said is not None:
        assert said.startswith(f"max_concurrency 10 lowered to {bound}: SageMaker's quota")
        assert said.endswith(why.removeprefix("... "))


def test_a_quota_below_one_segments_need_refuses_the_run_naming_it() -> None:
    with pytest.raises(InvalidItem) as raised:
        fanout.within_quotas(
            {"fanout": {"max_concurrency": 10}},
            [segment(tuning=TUNING)],
            {"ml.c5.xlarge for training job usage": 5},
        )
    (problem,) = raised.value.problems
    assert problem.path == "fanout.stages"
    assert "'ml.c5.xlarge for training job usage' is 5 instances" in problem.message and "needs 6" in problem.message
