"""Create model: the SageMaker model that serves the run's model (batch transform and deploy use it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import fanout, iam
from ..asl import SAGEMAKER, Builder
from ..problems import Problem
from ..stage import Block, Item, Made, Stage, Statements, Where, model_sources
from .shared import MODEL_TAG, add_model_data, model_request

if TYPE_CHECKING:
    from ..settings import Settings


class CreateModel(Stage):
    name = "create_model"
    per_segment = True
    operation = "CreateModel"
    name_field = "ModelName"
    tag = MODEL_TAG
    resource = "model"
    described_as = "model"

    def defaults(self, item: Item, execution: str) -> dict[str, Any]:
        return model_request(item)

    def plan(self, item: Item, execution: str, settings: Settings) -> Block:
        request = self.request(item, execution)
        add_model_data([request["PrimaryContainer"]] if "PrimaryContainer" in request else request["Containers"])
        if fanout.serves(item):  # every segment's model behind one endpoint: {model_data_url} is their prefix
            request["PrimaryContainer"]["Mode"] = "MultiModel"
            return {"request": request, "model_source": "segments"}
        return {"request": request, "model_source": model_sources(item)[0]}

    def rules(self, item: Item) -> list[Problem]:
        own = item["stages"].get("create_model", {}).get("request", {})
        if "ModelDataUrl" not in own.get("PrimaryContainer", {}):
            return []
        return [
            Problem(
                "stages.create_model.request.PrimaryContainer.ModelDataUrl",
                "set stages.create_model.model_data_url instead, so the rules about the model's source apply",
            )
        ]

    def states(self, b: Builder, then: str | None) -> str:
        return b.call(
            "Create model",
            self.name,
            f"{SAGEMAKER}createModel",
            input_path="$.stages.create_model.request",
            selector={"model_arn.$": "$.ModelArn"},
            result="$.results.create_model",
            then=then,
        )

    def permissions(self) -> Statements:
        return {
            "sagemaker:createModel": (
                iam.statement("CreateModel", ["sagemaker:CreateModel", *iam.TAGGING], iam.named(self)),
                iam.PASS_ROLE,
            )
        }

    def made(self, block: Block, result: dict[str, Any] | None = None) -> list[Made]:
        name = block.get("request", {}).get(self.name_field)
        # a model can be deleted: a rerun that reuses it must still find it
        return [Made(name, needed=bool(result), describe=("describe_model", "ModelName"))] if name else []

    def preview(self, block: Block) -> str:
        container = block["request"].get("PrimaryContainer", {})
        if container.get("Mode") == "MultiModel":
            return f"{super().preview(block)}, multi-model: each segment's model, under {container['ModelDataUrl']}"
        return super().preview(block)

    def report(self, result: dict[str, Any], block: Block, where: Where) -> str:
        return str(result.get("model_arn", ""))


STAGE = CreateModel()
