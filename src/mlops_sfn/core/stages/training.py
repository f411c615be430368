"""Training: one `.sync` training job; its model is the run's model unless tuning runs."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..stage import Block, Item, JobStage, Made, Where, training_definition


class Training(JobStage):
    name = "training"
    per_segment = True
    operation = "CreateTrainingJob"
    name_field = "TrainingJobName"
    tag = "train"
    resource = "training-job"
    described_as = "training job"
    cacheable = True
    rule = "StepFunctionsGetEventsForSageMakerTrainingJobsRule"

    def defaults(self, item: Item, execution: str) -> dict[str, Any]:
        return training_definition("training")

    def model_data_url(self, item: Item, execution: str) -> str:
        """Where the job writes model.tar.gz (placeholders left in)."""
        request = self.request(item, execution)
        folder = request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        return f"{folder}/{request['TrainingJobName']}/output/model.tar.gz"

    def selector(self) -> dict[str, str]:
        return super().selector() | {"model_data_url.$": "$.ModelArtifacts.S3ModelArtifacts"}

    def made(self, block: Block, result: dict[str, Any] | None = None) -> list[Made]:
        # what later stages read is the model, not the rest of the job's output folder
        model = (result or {}).get("model_data_url")
        written = [replace(made, needed=False) for made in super().made(block)]
        return written + ([Made(model, needed=True)] if isinstance(model, str) and model else [])

    def report(self, result: dict[str, Any], block: Block, where: Where) -> str:
        return where(str(result.get("model_data_url", "")))


STAGE = Training()
