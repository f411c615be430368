"""Training: one `.sync` training job; its model is the run's model unless tuning runs."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .. import asl, iam
from ..asl import Builder
from ..stage import Item, Stage, job_limit, training_definition

facts = Stage(
    "training",
    operation="CreateTrainingJob",
    name_field="TrainingJobName",
    tag="train",
    resource="training-job",
    described_as="training job",
    cacheable=True,
)


def model_data_url(item: Item, execution: str) -> str:
    """Where the job writes model.tar.gz (placeholders left in)."""
    request = STAGE.request(item, execution)
    folder = request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
    return f"{folder}/{request['TrainingJobName']}/output/model.tar.gz"


def _states(b: Builder, then: str | None) -> str:
    selector = asl.job_name(facts) | {"model_data_url.$": "$.ModelArtifacts.S3ModelArtifacts"}
    return b.task("Training", "training", asl.sagemaker_job(facts, selector, then))


def _outputs(result: dict[str, Any], block: dict[str, Any], where: Any) -> str:
    return str(where(str(result.get("model_data_url", ""))))


STAGE = replace(
    facts,
    defaults=lambda item, execution: training_definition("training"),
    limit=lambda block: job_limit(block["request"]),
    states=_states,
    permissions=iam.sync_job(facts, "StepFunctionsGetEventsForSageMakerTrainingJobsRule"),
    outputs=_outputs,
)
