"""Batch transform: a `.sync` transform job with the run's model (a serving stage: beside deploy)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .. import asl, iam
from ..asl import Builder
from ..stage import DEFAULT_INSTANCE_TYPE, RUN_FOLDER, Item, Stage
from . import create_model

facts = Stage(
    "batch_transform",
    operation="CreateTransformJob",
    name_field="TransformJobName",
    tag="transform",
    resource="transform-job",
    described_as="transform job",
    serving=True,
    cacheable=True,
)


def _defaults(item: Item, execution: str) -> dict[str, Any]:
    return {
        "ModelName": create_model.model_name(item, execution),  # the run's model unless the item names one
        "TransformOutput": {"S3OutputPath": f"{RUN_FOLDER}/batch-transform/"},
        "TransformResources": {"InstanceCount": 1, "InstanceType": DEFAULT_INSTANCE_TYPE},
    }


def _states(b: Builder, then: str | None) -> str:
    job = asl.sagemaker_job(facts, asl.job_name(facts), then)
    ends_branch = {} if then else {"OutputPath": "$.results.batch_transform"}
    return b.task("Batch transform", "batch_transform", job | ends_branch)


def _outputs(result: dict[str, Any], block: dict[str, Any], where: Any) -> str:
    return "wrote " + str(where(str(block.get("request", {}).get("TransformOutput", {}).get("S3OutputPath", ""))))


STAGE = replace(
    facts,
    defaults=_defaults,
    states=_states,
    permissions=iam.sync_job(facts, "StepFunctionsGetEventsForSageMakerTransformJobsRule"),
    outputs=_outputs,
)
