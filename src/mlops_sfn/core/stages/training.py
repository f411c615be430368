"""Training: one `.sync` training job; its model is the run's model unless tuning runs.

With `spot`, the job runs on managed spot capacity (SageMaker developer guide, "Managed Spot
Training"): `EnableManagedSpotTraining`, a `MaxWaitTimeInSeconds` (waiting for capacity included)
and a `CheckpointConfig` under the run's folder, from which SageMaker restores an interrupted job.
A spot job that capacity never reached in time ends `Stopped` with the secondary status
`MaxWaitTimeExceeded` ("Managed Spot Training Lifecycle"); the stage then trains once more on
demand (its own job, planned with the run: job names are unique for ever), resuming from the same
checkpoints, and copies that job's model to where later stages were planned to read it.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .. import iam, names
from ..asl import LAMBDA, Builder
from ..problems import Problem
from ..stage import (
    RUN_FOLDER,
    Block,
    Item,
    JobStage,
    Made,
    Statements,
    Where,
    job_limit,
    training_definition,
)
from .shared import field_at, plan_spot, spot_rules, spot_settings, training_request

if TYPE_CHECKING:
    from ..settings import Settings

CHECKPOINTS = f"{RUN_FOLDER}/training/checkpoints/"
ON_DEMAND_SUFFIX = "-od"  # the on-demand job's name: the spot job's, marked
# How the spot job ended when capacity did not come in time: its description (the error's cause)
# holds its secondary status.
CAPACITY_MISSED = "*MaxWaitTimeExceeded*"
# A warm pool's keep-alive period: an item asks for one with warm_pool_minutes.
KEEP_ALIVE = "ResourceConfig.KeepAlivePeriodInSeconds"
# What a training job must share with the one that left a warm pool to start on it ("Matching
# training jobs", developer guide, "SageMaker AI Managed Warm Pools").
WARM_POOL_MATCH = (
    "RoleArn",
    "ResourceConfig.InstanceType",
    "ResourceConfig.InstanceCount",
    "ResourceConfig.VolumeSizeInGB",
    "ResourceConfig.VolumeKmsKeyId",
    "VpcConfig",
    "EnableInterContainerTrafficEncryption",
    "EnableNetworkIsolation",
)


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
    cause_copies = 2  # a failed job's error is caught into its results, then recorded as the failure

    def defaults(self, item: Item, execution: str) -> dict[str, Any]:
        return training_definition("training")

    def plan(self, item: Item, execution: str, settings: Settings) -> Block:
        block = super().plan(item, execution, settings)
        minutes = item.get("stages", {}).get("training", {}).get("warm_pool_minutes")
        if minutes:
            block["request"].setdefault("ResourceConfig", {})["KeepAlivePeriodInSeconds"] = minutes * 60
        spot = spot_settings(item, self.name)
        if spot is None:
            return block
        request = block["request"]
        on_demand = copy.deepcopy(request)
        if spot.get("checkpoints", True) and "CheckpointConfig" not in request:
            request["CheckpointConfig"] = {"S3Uri": CHECKPOINTS}
        plan_spot(request, spot, "CheckpointConfig" in request)
        if "CheckpointConfig" in request:  # the on-demand job resumes from what the spot job saved
            on_demand["CheckpointConfig"] = request["CheckpointConfig"]
        pipeline = item["consumption_pipeline_name"]
        limit = self.name_limit - len(ON_DEMAND_SUFFIX)
        on_demand[self.name_field] = names.resource_name(pipeline, self.tag, execution, limit) + ON_DEMAND_SUFFIX
        block["on_demand"] = {"request": on_demand, "model_data_url": self.model_data_url(item, execution)}
        return block

    def requests(self, block: Block) -> list[tuple[str, dict[str, Any]]]:
        fallback = [(self.operation, block["on_demand"]["request"])] if "on_demand" in block else []
        return super().requests(block) + fallback

    def limit(self, block: Block) -> int:
        fallback = job_limit(block["on_demand"]["request"]) if "on_demand" in block else 0
        return job_limit(block["request"]) + fallback

    def rules(self, item: Item) -> list[Problem]:
        own = item.get("stages", {}).get("training", {}).get("request", {})
        own = own if isinstance(own, dict) else {}
        spot = spot_settings(item, self.name) or {}
        checkpointed = spot.get("checkpoints", True) or "CheckpointConfig" in own
        job = training_request(item, self.name)
        return _warm_pool_rules(item) + spot_rules(item, self.name, job, own, "request", checkpointed)

    def model_data_url(self, item: Item, execution: str) -> str:
        """Where the job writes model.tar.gz (placeholders left in)."""
        request = self.request(item, execution)
        folder = request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        return f"{folder}/{request['TrainingJobName']}/output/model.tar.gz"

    def selector(self) -> dict[str, str]:
        return super().selector() | {"model_data_url.$": "$.ModelArtifacts.S3ModelArtifacts"}

    def states(self, b: Builder, then: str | None) -> str:
        entry = b.job(self, self.selector(), then)
        # A failed job's error is caught into its results (one copy of its long cause in the state):
        # the on-demand job's results replace it, or it becomes the stage's failure record.
        missed, failed = "Spot capacity missed?", "Training job failed"
        catch = {"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.results.training", "Next": missed}
        b.states[entry] = {**b.states[entry], "Catch": [catch, *b.states[entry]["Catch"]]}
        cause = "$.results.training.Cause"
        b.add(
            missed,
            {
                "Type": "Choice",
                "Choices": [  # examined in order: the cause is read only when it is there
                    {"Not": {"Variable": "$.stages.training.on_demand", "IsPresent": True}, "Next": failed},
                    {"Not": {"Variable": cause, "IsPresent": True}, "Next": failed},
                    {"Variable": cause, "StringMatches": CAPACITY_MISSED, "Next": "Training on demand"},
                ],
                "Default": failed,
            },
        )
        # the caught error as it is ({Error, Cause}), where every stage's recorder reads it
        b.add(
            failed,
            {
                "Type": "Pass",
                "InputPath": "$.results.training",
                "ResultPath": "$.failure",
                "Next": b.recorder(self.name),
            },
        )
        b.call(
            "Training on demand",
            self.name,
            "arn:aws:states:::sagemaker:createTrainingJob.sync",
            input_path="$.stages.training.on_demand.request",
            selector=self.selector() | {"on_demand": True},
            result="$.results.training",
            then="Copy on-demand model",
        )
        # Later stages were planned with the spot job's model location: the model is copied there
        # (by the Lambda that copies tuning's best model, in parts when large).
        b.call(
            "Copy on-demand model",
            self.name,
            LAMBDA,
            parameters={
                "FunctionName": "${model_copy_function_arn}",
                "Payload": {
                    "source.$": "$.results.training.model_data_url",
                    "target.$": "$.stages.training.on_demand.model_data_url",
                },
            },
            selector={"model_data_url.$": "$.Payload.model_data_url", "bytes.$": "$.Payload.bytes"},
            result="$.results.training.model",
            then=then,
        )
        if then is None:
            b.states["Copy on-demand model"]["OutputPath"] = "$.results.training"
        return entry

    def permissions(self) -> Statements:
        return {**super().permissions(), "lambda:invoke": (iam.function("model_copy_function_arn"),)}

    def made(self, block: Block, result: dict[str, Any] | None = None) -> list[Made]:
        # what later stages read is the model, not the rest of the job's output folder
        result = result or {}
        model = result.get("model", {}).get("model_data_url") if "model" in result else result.get("model_data_url")
        written = [replace(made, needed=False) for made in super().made(block)]
        return written + ([Made(model, needed=True)] if isinstance(model, str) and model else [])

    def report(self, result: dict[str, Any], block: Block, where: Where) -> str:
        model = result.get("model", {}).get("model_data_url") if "model" in result else result.get("model_data_url")
        if result.get("on_demand"):
            return (
                f"spot capacity did not arrive in time: trained on demand as {result.get('job_name', '')},"
                f" {where(str(model or ''))}"
            )
        return where(str(model or ""))


def _warm_pool_rules(item: Item) -> list[Problem]:
    """A warm pool with what SageMaker does not pool, or its keep-alive period set in the request."""
    block = item.get("stages", {}).get("training", {})
    own = block.get("request", {}) if isinstance(block.get("request"), dict) else {}
    problems = []
    if field_at(own, KEEP_ALIVE) is not None:
        problems.append(
            Problem(f"stages.training.request.{KEEP_ALIVE}", "set stages.training.warm_pool_minutes instead")
        )
    if not block.get("warm_pool_minutes"):
        return problems
    # "Warm pools are not compatible with managed spot training or heterogeneous clusters" (developer
    # guide, warm pools, "Considerations"); the Terraform provider's KeepAlivePeriodInSeconds
    # "Conflicts with instanceGroups".
    if block.get("spot"):
        problems.append(
            Problem(
                "stages.training.warm_pool_minutes",
                "SageMaker keeps no warm pool of spot capacity: remove spot or this",
            )
        )
    if field_at(own, "ResourceConfig.InstanceGroups") is not None:
        problems.append(
            Problem(
                "stages.training.warm_pool_minutes",
                "SageMaker keeps no warm pool of a heterogeneous cluster (ResourceConfig.InstanceGroups): remove one",
            )
        )
    return problems


def warm_pool_mismatch(segment_inputs: list[dict[str, Any]]) -> list[Problem]:
    """Segments whose training jobs could not take each other's warm pool: the matching fields differ."""
    requests = [
        (planned.get("segment", ""), planned["stages"]["training"]["request"])
        for planned in segment_inputs
        if "training" in planned.get("stages", {})
    ]
    if not requests or not field_at(requests[0][1], KEEP_ALIVE):
        return []
    first_id, first = requests[0]
    for path in WARM_POOL_MATCH:
        other = next(((sid, r) for sid, r in requests[1:] if field_at(r, path) != field_at(first, path)), None)
        if other is not None:
            return [
                Problem(
                    f"stages.training.request.{path}",
                    f"segments {first_id!r} and {other[0]!r} would not share a warm pool: their {path} differ"
                    f" ({field_at(first, path)!r}, {field_at(other[1], path)!r}); make it the same for every segment,"
                    " or remove warm_pool_minutes",
                )
            ]
    return []


STAGE = Training()
