"""Shared helpers: the repository's items and event fixtures, loaded one way everywhere."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
ITEMS = ROOT / "dynamodb_items"
EVENTS = Path(__file__).parent / "events"
DEMO = "demo-dev-domain-cal-house-price"
# Event fixtures that start the demo pipeline (every shape the router accepts).
STARTING_EVENTS = [
    "s3_object_created",
    "records_legacy",
    "records_legacy_string_body",
    "sqs_s3_object_created",
    "sqs_records_legacy",
    "scheduled",
    "manual",
]


def load_item(name: str = DEMO) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((ITEMS / f"{name}.json").read_text())
    return result


def load_event(name: str) -> Any:
    return json.loads((EVENTS / f"{name}.json").read_text())


DELETE = object()


def edited(item: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A copy of item with dotted paths set (or removed with DELETE); "a.b[0].c" indexes lists."""
    result = copy.deepcopy(item)
    for path, value in changes.items():
        keys: list[str | int] = []
        for part in path.split("."):
            name, _, rest = part.partition("[")
            keys.append(name)
            while rest:
                index, _, rest = rest.partition("]")
                keys.append(int(index))
                rest = rest.removeprefix("[")
        node: Any = result
        for key in keys[:-1]:
            node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
        if value is DELETE:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
    return result


# A package of the example deployment's account, region and prefix (core.settings.EXAMPLE_SETTINGS).
PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-dev-served/1"
TRAINS = ("preprocessing", "training", "tuning", "evaluation", "register", "approval")


def serving_package(item: dict[str, Any], package: str = PACKAGE) -> dict[str, Any]:
    """The item serving a registered package: nothing trained, evaluated or registered, the model
    created from the package, then batch transform and deploy as the item has them."""
    return edited(
        item,
        {
            **{f"stages.{stage}.run": False for stage in TRAINS if stage in item["stages"]},
            "quality_gate": DELETE,
            "stages.create_model.model_package": package,
            "stages.create_model.request": DELETE,  # the package's containers, as registered
        },
    )


@pytest.fixture
def demo_item() -> dict[str, Any]:
    return load_item()
