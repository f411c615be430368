"""Tuning: a `.sync` hyperparameter tuning job, then its best job's model copied into the run folder."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .. import asl, iam
from ..asl import LAMBDA, Builder
from ..stage import RUN_FOLDER, Item, Stage, job_limit, training_definition

if TYPE_CHECKING:
    from ..plan import Settings

facts = Stage(
    "tuning",
    operation="CreateHyperParameterTuningJob",
    name_field="HyperParameterTuningJobName",
    name_limit=32,
    tag="tune",
    resource="hyper-parameter-tuning-job",
    described_as="tuning job",
    cacheable=True,
)
_RULE = "StepFunctionsGetEventsForSageMakerTuningJobsRule"
BEST_MODEL = f"{RUN_FOLDER}/tuning/best/model.tar.gz"  # where the state machine copies the best job's model


def _plan(item: Item, execution: str, settings: Settings) -> dict[str, Any]:
    result = {"request": STAGE.request(item, execution)}
    # The state machine copies the best job's model.tar.gz (under source_folder) to where
    # {model_data_url} points, which the later stages were planned with.
    output = result["request"]["TrainingJobDefinition"]["OutputDataConfig"]["S3OutputPath"].rstrip("/")
    result["best_model"] = {"source_folder": output, "target": BEST_MODEL}
    return result


def _limit(block: dict[str, Any]) -> int:
    request = block["request"]
    limits = request["HyperParameterTuningJobConfig"].get("ResourceLimits", {})
    if "MaxRuntimeInSeconds" in limits:
        return int(limits["MaxRuntimeInSeconds"])
    rounds = -(-int(limits.get("MaxNumberOfTrainingJobs", 1)) // int(limits.get("MaxParallelTrainingJobs", 1)))
    return rounds * job_limit(request.get("TrainingJobDefinition", {}))


def _states(b: Builder, then: str | None) -> str:
    selector = {"best_training_job.$": "$.BestTrainingJob.TrainingJobName"}
    entry = b.task("Tuning", "tuning", asl.sagemaker_job(facts, selector, "Copy best model"))
    # Later stages were planned with the model in the run folder; the best job is known only now.
    # A Lambda copies it, in parts when large: S3's CopyObject refuses sources above 5 GB.
    b.task(
        "Copy best model",
        "tuning",
        {
            "Resource": LAMBDA,
            "Parameters": {
                "FunctionName": "${model_copy_function_arn}",
                "Payload": {
                    "source.$": "States.Format('{}/{}/output/model.tar.gz', "
                    "$.stages.tuning.best_model.source_folder, $.results.tuning.best_training_job)",
                    "target.$": "$.stages.tuning.best_model.target",
                },
            },
            "ResultSelector": {"model_data_url.$": "$.Payload.model_data_url", "bytes.$": "$.Payload.bytes"},
            "ResultPath": "$.results.tuning.model",
            "Next": then,
        },
    )
    return entry


def _outputs(result: dict[str, Any], block: dict[str, Any], where: Any) -> str:
    model = result.get("model", {})
    return f"best job {result.get('best_training_job', '')}: {where(str(model.get('model_data_url', '')))}"


STAGE = replace(
    facts,
    defaults=lambda item, execution: {"TrainingJobDefinition": training_definition("tuning")},
    plan=_plan,
    limit=_limit,
    states=_states,
    permissions={
        **iam.sync_job(
            facts,
            "StepFunctionsGetEventsForSageMakerTuningJobsRule",
            "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
        ),
        "lambda:invoke": (iam.function("model_copy_function_arn"),),
    },
    outputs=_outputs,
)
