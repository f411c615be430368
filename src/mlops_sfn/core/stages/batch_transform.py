"""Batch transform: a `.sync` transform job with the run's model (a serving stage: beside deploy; in a
fanned-out run, one per segment with the segment's model)."""

from __future__ import annotations

from typing import Any

from ..stage import DEFAULT_INSTANCE_TYPE, RUN_FOLDER, Block, Item, JobStage
from .shared import model_name


class BatchTransform(JobStage):
    name = "batch_transform"
    operation = "CreateTransformJob"
    name_field = "TransformJobName"
    tag = "transform"
    resource = "transform-job"
    described_as = "transform job"
    serving = True
    cacheable = True
    # per segment: one transform job per segment, with that segment's model (a transform job runs one
    # model: CreateTransformJob takes one ModelName)
    per_segment = True
    rule = "StepFunctionsGetEventsForSageMakerTransformJobsRule"

    def defaults(self, item: Item, execution: str) -> dict[str, Any]:
        return {
            "ModelName": model_name(item, execution),  # the run's model unless the item names one
            "TransformOutput": {"S3OutputPath": f"{RUN_FOLDER}/batch-transform/"},
            "TransformResources": {"InstanceCount": 1, "InstanceType": DEFAULT_INSTANCE_TYPE},
        }

    def limit(self, block: Block) -> int:
        return 0  # SageMaker sets no run time limit on a transform job


STAGE = BatchTransform()
