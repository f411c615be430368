"""What several stages plan with, so that no stage module imports another: the run's model (its
name and containers), the endpoint it is served on, and the data it was trained on. Each value is
the one its stage plans (create_model, deploy, training, tuning)."""

from __future__ import annotations

from typing import Any

from .. import names
from ..stage import Item, merge, runs, training_definition

MODEL_TAG = "model"  # create_model's: <pipeline>-model-<hash>


def model_name(item: Item, execution: str) -> str:
    """The model a run creates (what batch transform and deploy serve unless the item names one)."""
    return names.resource_name(item["consumption_pipeline_name"], MODEL_TAG, execution)


def model_request(item: Item) -> dict[str, Any]:
    """CreateModel's framework request: the default image, the item's model data URL when it names one."""
    block = item.get("stages", {}).get("create_model", {})
    container: dict[str, Any] = {"Image": "{image}"}
    if block.get("model_data_url"):
        container["ModelDataUrl"] = block["model_data_url"]
    # CreateModel takes PrimaryContainer or Containers, not both.
    own = block.get("request", {})
    return {"ExecutionRoleArn": "{role_arn}"} | ({} if "Containers" in own else {"PrimaryContainer": container})


def add_model_data(containers: list[dict[str, Any]]) -> None:
    """Containers without a ModelDataUrl serve the run's model (its URL is known before the run starts)."""
    for container in containers:
        container.setdefault("ModelDataUrl", "{model_data_url}")


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
        uri = _within(chosen, "DataSource", "S3DataSource", "S3Uri")
        if isinstance(uri, str) and uri:
            return uri
    return None


def _within(value: Any, *path: str) -> Any:
    """value[path[0]][path[1]]..., None where a step is missing or not an object."""
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value
