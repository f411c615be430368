"""Tuning: a `.sync` hyperparameter tuning job, then its best job's model copied into the run folder."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .. import iam
from ..asl import LAMBDA, Builder
from ..problems import Problem
from ..stage import RUN_FOLDER, Block, Item, JobStage, Made, Statements, Where, job_limit, training_definition
from .shared import plan_spot, spot_rules, spot_settings, training_request

if TYPE_CHECKING:
    from ..settings import Settings

BEST_MODEL = f"{RUN_FOLDER}/tuning/best/model.tar.gz"  # where the state machine copies the best job's model


class Tuning(JobStage):
    name = "tuning"
    per_segment = True
    operation = "CreateHyperParameterTuningJob"
    name_field = "HyperParameterTuningJobName"
    name_limit = 32
    tag = "tune"
    resource = "hyper-parameter-tuning-job"
    described_as = "tuning job"
    cacheable = True
    rule = "StepFunctionsGetEventsForSageMakerTuningJobsRule"

    def defaults(self, item: Item, execution: str) -> dict[str, Any]:
        return {"TrainingJobDefinition": training_definition("tuning")}

    def plan(self, item: Item, execution: str, settings: Settings) -> Block:
        result = super().plan(item, execution, settings)
        spot = spot_settings(item, self.name)
        if spot is not None:
            definition = result["request"]["TrainingJobDefinition"]
            plan_spot(definition, spot, "CheckpointConfig" in definition)
        # The state machine copies the best job's model.tar.gz (under source_folder) to where
        # {model_data_url} points, which the later stages were planned with.
        output = result["request"]["TrainingJobDefinition"]["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        result["best_model"] = {"source_folder": output, "target": BEST_MODEL}
        return result

    def rules(self, item: Item) -> list[Problem]:
        own = item.get("stages", {}).get(self.name, {}).get("request", {})
        own = own.get("TrainingJobDefinition", {}) if isinstance(own, dict) else {}
        own = own if isinstance(own, dict) else {}
        job = training_request(item, self.name)
        path = "request.TrainingJobDefinition"
        return spot_rules(item, self.name, job, own, path, "CheckpointConfig" in own)

    def limit(self, block: Block) -> int:
        request = block["request"]
        limits = request["HyperParameterTuningJobConfig"].get("ResourceLimits", {})
        if "MaxRuntimeInSeconds" in limits:
            return int(limits["MaxRuntimeInSeconds"])
        rounds = -(-int(limits.get("MaxNumberOfTrainingJobs", 1)) // int(limits.get("MaxParallelTrainingJobs", 1)))
        return rounds * job_limit(request.get("TrainingJobDefinition", {}))

    def selector(self) -> dict[str, str]:
        return {"best_training_job.$": "$.BestTrainingJob.TrainingJobName"}

    def states(self, b: Builder, then: str | None) -> str:
        entry = b.job(self, self.selector(), "Copy best model")
        # Later stages were planned with the model in the run folder; the best job is known only now.
        # A Lambda copies it, in parts when large: S3's CopyObject refuses sources above 5 GB.
        b.call(
            "Copy best model",
            "tuning",
            LAMBDA,
            parameters={
                "FunctionName": "${model_copy_function_arn}",
                "Payload": {
                    "source.$": "States.Format('{}/{}/output/model.tar.gz', "
                    "$.stages.tuning.best_model.source_folder, $.results.tuning.best_training_job)",
                    "target.$": "$.stages.tuning.best_model.target",
                },
            },
            selector={"model_data_url.$": "$.Payload.model_data_url", "bytes.$": "$.Payload.bytes"},
            result="$.results.tuning.model",
            then=then,
        )
        return entry

    def permissions(self) -> Statements:
        return {
            **iam.sync_job(self, self.rule, "sagemaker:ListTrainingJobsForHyperParameterTuningJob"),
            "lambda:invoke": (iam.function("model_copy_function_arn"),),
        }

    def made(self, block: Block, result: dict[str, Any] | None = None) -> list[Made]:
        target = block.get("best_model", {}).get("target")
        planned = [Made(target, needed=True)] if isinstance(target, str) else []
        model = (result or {}).get("model", {}).get("model_data_url")
        copied = [Made(model, needed=True)] if isinstance(model, str) and model and model != target else []
        # what later stages read is the best model, not the trials' outputs
        return [replace(made, needed=False) for made in super().made(block)] + planned + copied

    def report(self, result: dict[str, Any], block: Block, where: Where) -> str:
        model = result.get("model", {})
        return f"best job {result.get('best_training_job', '')}: {where(str(model.get('model_data_url', '')))}"


STAGE = Tuning()
