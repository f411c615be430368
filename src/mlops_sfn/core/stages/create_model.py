"""Create model: the SageMaker model that serves the run's model (batch transform and deploy use it)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .. import iam, names
from ..asl import SAGEMAKER, Builder
from ..problems import Problem
from ..stage import Item, Stage, model_sources

if TYPE_CHECKING:
    from ..plan import Settings

facts = Stage(
    "create_model",
    operation="CreateModel",
    name_field="ModelName",
    tag="model",
    resource="model",
    described_as="model",
)


def model_name(item: Item, execution: str) -> str:
    """The model a run creates (what batch transform and deploy serve unless the item names one)."""
    return names.resource_name(item["consumption_pipeline_name"], facts.tag or "", execution)


def _defaults(item: Item, execution: str) -> dict[str, Any]:
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


def _plan(item: Item, execution: str, settings: Settings) -> dict[str, Any]:
    request = STAGE.request(item, execution)
    add_model_data([request["PrimaryContainer"]] if "PrimaryContainer" in request else request["Containers"])
    return {"request": request, "model_source": model_sources(item)[0]}


def _rules(item: Item) -> list[Problem]:
    own = item["stages"].get("create_model", {}).get("request", {})
    if "ModelDataUrl" not in own.get("PrimaryContainer", {}):
        return []
    return [
        Problem(
            "stages.create_model.request.PrimaryContainer.ModelDataUrl",
            "set stages.create_model.model_data_url instead, so the rules about the model's source apply",
        )
    ]


def _states(b: Builder, then: str | None) -> str:
    return b.task(
        "Create model",
        "create_model",
        {
            "Resource": f"{SAGEMAKER}createModel",
            "InputPath": "$.stages.create_model.request",
            "ResultSelector": {"model_arn.$": "$.ModelArn"},
            "ResultPath": "$.results.create_model",
            "Next": then,
        },
    )


STAGE = replace(
    facts,
    defaults=_defaults,
    plan=_plan,
    rules=_rules,
    states=_states,
    permissions={
        "sagemaker:createModel": (
            iam.statement("CreateModel", ["sagemaker:CreateModel", *iam.TAGGING], iam.named(facts)),
            iam.PASS_ROLE,
        )
    },
    outputs=lambda result, block, where: str(result.get("model_arn", "")),
)
