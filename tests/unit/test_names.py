"""Execution and SageMaker names: AWS limits, determinism, uniqueness kept when shortened."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mlops_sfn.core import names
from mlops_sfn.core.plan import plan_execution
from mlops_sfn.core.sagemaker_api import input_shape
from mlops_sfn.core.settings import EXAMPLE_SETTINGS
from mlops_sfn.core.stages import CATALOG, OPERATIONS, tag
from mlops_sfn.core.triggers import Manual
from tests.conftest import edited, load_item

pipeline_names = st.text(alphabet="abcXYZ019_-", min_size=1, max_size=64)
NAME_FIELDS = {
    "preprocessing": "ProcessingJobName",
    "training": "TrainingJobName",
    "evaluation": "ProcessingJobName",
    "create_model": "ModelName",
    "batch_transform": "TransformJobName",
}


@given(pipeline=pipeline_names, identity=st.text(max_size=200))
def test_execution_names_obey_step_functions_limits(pipeline: str, identity: str) -> None:
    name = names.execution_name(pipeline, identity)
    assert names.EXECUTION_NAME.fullmatch(name)
    assert name == names.execution_name(pipeline, identity)


@given(
    pipeline=pipeline_names, stage=st.sampled_from([s.name for s in CATALOG if s.tag]), limit=st.sampled_from([32, 63])
)
def test_resource_names_obey_sagemaker_limits(pipeline: str, stage: str, limit: int) -> None:
    name = names.resource_name(pipeline, tag(stage), "execution-1", limit)
    assert len(name) <= limit
    assert names.SAGEMAKER_NAME.fullmatch(name)


def test_long_pipeline_names_keep_the_unique_part() -> None:
    pipeline = "p" * 64
    first = names.execution_name(pipeline, "s3:bucket|key|etag-1")
    second = names.execution_name(pipeline, "s3:bucket|key|etag-2")
    assert len(first) == 80 and first != second
    assert names.resource_name(pipeline, tag("training"), first) != names.resource_name(
        pipeline, tag("training"), second
    )


def test_every_name_in_a_long_named_pipeline_is_valid_for_sagemaker() -> None:
    item = edited(load_item(), {"consumption_pipeline_name": "a_very_long_pipeline_name_" + "x" * 38})
    item["stages"]["tuning"]["run"] = True
    item["stages"]["training"]["run"] = False
    item["stages"]["deploy"]["endpoint_name"] = "mlops-dev-house-price"
    execution_input = plan_execution(item, Manual(run_id="r1"), EXAMPLE_SETTINGS)
    assert len(execution_input["execution_name"]) <= 80
    for stage, block in execution_input["stages"].items():
        if stage in NAME_FIELDS:
            name = block["request"][NAME_FIELDS[stage]]
            limit = input_shape(OPERATIONS[stage]).members[NAME_FIELDS[stage]].metadata["max"]
            assert len(name) <= limit and names.SAGEMAKER_NAME.fullmatch(name), (stage, name)
    tuning_name = execution_input["stages"]["tuning"]["request"]["HyperParameterTuningJobName"]
    assert len(tuning_name) <= 32
