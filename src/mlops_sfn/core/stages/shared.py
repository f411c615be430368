"""What several stages plan with, so that no stage module imports another: the run's model (its
name and containers), the endpoint it is served on, and the data it was trained on. Each value is
the one its stage plans (create_model, deploy, training, tuning)."""

from __future__ import annotations

from typing import Any

from .. import names
from ..problems import Problem
from ..stage import DEFAULT_JOB_LIMIT_SECONDS, RUN_FOLDER, Item, merge, runs, training_definition

MODEL_TAG = "model"  # create_model's: <pipeline>-model-<hash>


def model_name(item: Item, execution: str) -> str:
    """The model a run creates (what batch transform and deploy serve unless the item names one)."""
    return names.resource_name(item["consumption_pipeline_name"], MODEL_TAG, execution)


def model_request(item: Item) -> dict[str, Any]:
    """CreateModel's framework request: the default image, the item's model data URL when it names one;
    a model package's containers as registered (CreateModel's ContainerDefinition.ModelPackageName)."""
    block = item.get("stages", {}).get("create_model", {})
    if block.get("model_package"):
        return {"ExecutionRoleArn": "{role_arn}", "Containers": [{"ModelPackageName": block["model_package"]}]}
    container: dict[str, Any] = {"Image": "{image}"}
    if block.get("model_data_url"):
        container["ModelDataUrl"] = block["model_data_url"]
    # CreateModel takes PrimaryContainer or Containers, not both.
    own = block.get("request", {})
    return {"ExecutionRoleArn": "{role_arn}"} | ({} if "Containers" in own else {"PrimaryContainer": container})


def add_model_data(containers: list[dict[str, Any]]) -> None:
    """Containers without a ModelDataUrl serve the run's model (its URL is known before the run starts)."""
    for container in containers:
        if "ModelPackageName" not in container:  # a package's model data is the package's
            container.setdefault("ModelDataUrl", "{model_data_url}")


def evaluation_report(item: Item) -> str:
    """Where evaluation writes its report (placeholders left in): the quality gate reads it, and the
    registered package names it as its model quality statistics."""
    return str(item["stages"]["evaluation"].get("report_uri", RUN_FOLDER + "/evaluation/evaluation.json"))


def endpoint_name(item: Item, name_prefix: str) -> str:
    """The endpoint deploy creates or updates: the item's, else one named after the pipeline."""
    named = item["stages"].get("deploy", {}).get("endpoint_name")
    return str(named) if named else names.stable_name(item["consumption_pipeline_name"], name_prefix)


def training_request(item: Item, stage: str) -> Any:
    """The training job a stage plans (training's request, tuning's TrainingJobDefinition), before the
    per-run name; as the item has it, which the rules may yet refuse."""
    own = item.get("stages", {}).get(stage, {}).get("request", {})
    if stage == "training":
        return merge(training_definition("training"), own)
    request = merge({"TrainingJobDefinition": training_definition("tuning")}, own)
    return request.get("TrainingJobDefinition", {}) if isinstance(request, dict) else None


def training_data(item: Item) -> str | None:
    """Where the item's training data is (the "train" channel, else the first): the running stage's,
    else the training or tuning block's (a rerun that reuses training trained on it too)."""
    blocks = item.get("stages", {})
    for stage in sorted(("training", "tuning"), key=lambda stage: not runs(item, stage)):
        if stage not in blocks:
            continue
        definition = training_request(item, stage)
        # the rules run on requests the API check may have refused (a channel that is not an object)
        listed = definition.get("InputDataConfig") if isinstance(definition, dict) else None
        channels = [c for c in listed if isinstance(c, dict)] if isinstance(listed, list) else []
        chosen = next((c for c in channels if c.get("ChannelName") == "train"), channels[0] if channels else {})
        uri = field_at(chosen, "DataSource.S3DataSource.S3Uri")
        if isinstance(uri, str) and uri:
            return uri
    return None


# --- Managed spot training (SageMaker developer guide, "Managed Spot Training") ---

SPOT_EXTRA_WAIT_SECONDS = 3600  # a checkpointed job's default wait for capacity, beyond its run time
# "SageMaker built-in algorithms and marketplace algorithms that do not checkpoint are currently
# limited to a MaxWaitTimeInSeconds of 3600 seconds (60 minutes)"; a job that keeps no checkpoint
# starts again from the beginning after each interruption, so the framework holds every job without
# checkpoints to that bound.
UNCHECKPOINTED_WAIT_SECONDS = 3600
# The fields only a spot job sets: an item asks for spot with `spot`, which plans them.
SPOT_FIELDS = ("EnableManagedSpotTraining", "StoppingCondition.MaxWaitTimeInSeconds")


def spot_settings(item: Item, stage: str) -> dict[str, Any] | None:
    """The item's `stages.<stage>.spot` as an object (None: on demand)."""
    spot = item.get("stages", {}).get(stage, {}).get("spot")
    if spot is True:
        return {}
    return spot if isinstance(spot, dict) else None


def spot_wait(spot: dict[str, Any], run: int, checkpointed: bool) -> int:
    """MaxWaitTimeInSeconds: the item's, else the run time and an hour for capacity (with checkpoints),
    else an hour, or the run time when longer (without)."""
    minutes = spot.get("max_wait_minutes")
    if isinstance(minutes, int):
        return minutes * 60
    return run + SPOT_EXTRA_WAIT_SECONDS if checkpointed else max(run, UNCHECKPOINTED_WAIT_SECONDS)


def plan_spot(job: dict[str, Any], spot: dict[str, Any], checkpointed: bool) -> None:
    """A training job (a tuning job's definition too) on spot capacity, in place."""
    stop = job.setdefault("StoppingCondition", {})
    job["EnableManagedSpotTraining"] = True
    stop["MaxWaitTimeInSeconds"] = spot_wait(
        spot, int(stop.get("MaxRuntimeInSeconds", DEFAULT_JOB_LIMIT_SECONDS)), checkpointed
    )


def spot_rules(
    item: Item, stage: str, job: Any, own: dict[str, Any], own_path: str, checkpointed: bool
) -> list[Problem]:
    """The spot fields set by hand in the item's job (`own`, at stages.<stage>.<own_path>), a wait below
    the job's run time, and a job without checkpoints waiting past UNCHECKPOINTED_WAIT_SECONDS."""
    problems = []
    for field in SPOT_FIELDS:
        parent, _, key = field.rpartition(".")
        holder = own.get(parent, {}) if parent else own
        if isinstance(holder, dict) and key in holder:
            problems.append(
                Problem(
                    f"stages.{stage}.{own_path}.{field}",
                    f'set stages.{stage}.spot instead (true, or {{"max_wait_minutes": N}}): it plans this field',
                )
            )
    spot = spot_settings(item, stage)
    if spot is None or not isinstance(job, dict) or not isinstance(job.get("StoppingCondition", {}), dict):
        return problems
    run = job.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", DEFAULT_JOB_LIMIT_SECONDS)
    if not isinstance(run, int):
        return problems
    minutes = spot.get("max_wait_minutes")
    wait = spot_wait(spot, run, checkpointed)
    path = f"stages.{stage}.spot.max_wait_minutes"
    if isinstance(minutes, int) and wait < run:
        problems.append(
            Problem(
                path,
                f"{minutes} minutes is less than the job's MaxRuntimeInSeconds ({run} s): SageMaker requires"
                f" MaxWaitTimeInSeconds of at least that; set at least {-(-run // 60)}",
            )
        )
    if not checkpointed and wait > UNCHECKPOINTED_WAIT_SECONDS:
        where = path if minutes or stage != "training" else f"stages.{stage}.spot.checkpoints"
        problems.append(
            Problem(
                where,
                f"a spot job without checkpoints may wait and run {UNCHECKPOINTED_WAIT_SECONDS // 60} minutes at"
                f" most (it would take {wait // 60}; after an interruption it starts again from the beginning):"
                f" keep its run time (MaxRuntimeInSeconds) and max_wait_minutes within"
                f" {UNCHECKPOINTED_WAIT_SECONDS // 60} minutes, or give it checkpoints",
            )
        )
    return problems


def field_at(value: Any, path: str) -> Any:
    """value[a][b]... for the path "a.b...", None where a step is missing or not an object."""
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value
