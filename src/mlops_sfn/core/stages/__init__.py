"""The ten stages in pipeline order, one module each: adding a stage is one module here, listed in
CATALOG, plus its schema (pipeline_item.schema.json) and its tests.

Each module defines a subclass of `Stage` (core/stage.py) and its one instance, `STAGE`: its facts
and defaults, its planner, its states, its role statements, what it makes, its preview and status
lines, its own rules and its checkpoints. What several stages plan with is shared.py's, so no stage
module imports another. Default values may hold placeholders ({bucket}, {role_arn}, ...); plan.py
fills them per execution.
"""

from __future__ import annotations

import re
from typing import Any

from ..stage import DEFAULT_INSTANCE_TYPE, RUN_FOLDER, Checkpoint, Item, Stage, merge, model_sources, runs
from . import (
    approval,
    batch_transform,
    create_model,
    deploy,
    evaluation,
    monitoring,
    preprocessing,
    register,
    training,
    tuning,
)

CATALOG: tuple[Stage, ...] = tuple(
    module.STAGE
    for module in (
        preprocessing,
        training,
        tuning,
        evaluation,
        register,
        approval,
        create_model,
        batch_transform,
        deploy,
        monitoring,
    )
)
STAGE = {stage.name: stage for stage in CATALOG}
# Each checkpoint by name, with the stage that declares it.
CHECKPOINTS: dict[str, tuple[Checkpoint, Stage]] = {
    checkpoint.name: (checkpoint, stage) for stage in CATALOG for checkpoint in stage.checkpoints
}
# The stages and their checkpoints in the order a run reaches them (what a run's report lists).
REPORTED = tuple(name for stage in CATALOG for name in (stage.name, *(c.name for c in stage.checkpoints)))
STAGES = tuple(STAGE)
SERVING = tuple(stage.name for stage in CATALOG if stage.serving)
WATCHING = tuple(stage.name for stage in CATALOG if stage.watches)
CACHEABLE = tuple(stage.name for stage in CATALOG if stage.cacheable)
# A per-run SageMaker name (names.resource_name): "<pipeline>-<stage tag>-<10 hex>".
PER_RUN_NAME = re.compile(rf"-({'|'.join(re.escape(s.tag) for s in CATALOG if s.tag)})-[0-9a-f]{{10}}\b")
OPERATIONS = {stage.name: stage.operation for stage in CATALOG if stage.operation}
NAME_FIELDS = {stage.name: stage.name_field for stage in CATALOG if stage.name_field}
# Fields an item may not set: the generated names, and what the framework decides.
FRAMEWORK_FIELDS = {
    stage.name: ((stage.name_field,) if stage.name_field else ()) + stage.framework_fields
    for stage in CATALOG
    if stage.name_field or stage.framework_fields
}

__all__ = [
    "CACHEABLE",
    "CATALOG",
    "CHECKPOINTS",
    "DEFAULT_INSTANCE_TYPE",
    "FRAMEWORK_FIELDS",
    "NAME_FIELDS",
    "OPERATIONS",
    "PER_RUN_NAME",
    "REPORTED",
    "RUN_FOLDER",
    "SERVING",
    "STAGE",
    "STAGES",
    "WATCHING",
    "Stage",
    "calling",
    "merge",
    "merged_request",
    "model_data_url",
    "model_sources",
    "runs",
    "tag",
]


def tag(stage: str) -> str:
    """The tag in the names of what a stage creates per run."""
    found = STAGE[stage].tag
    if not found:
        raise KeyError(f"stage {stage} creates nothing named per run")
    return found


def calling(operation: str) -> tuple[str, ...]:
    """The stages whose request is an input of this SageMaker API."""
    return tuple(stage.name for stage in CATALOG if stage.operation == operation)


def merged_request(stage: str, item: Item, execution: str) -> dict[str, Any]:
    """Defaults, then the item's request over them, then the per-execution names."""
    return STAGE[stage].request(item, execution)


def model_data_url(item: Item, source: str, execution: str) -> str:
    """Where the run's model.tar.gz is, with placeholders left in (they are filled with the rest)."""
    if source == "training":
        return training.STAGE.model_data_url(item, execution)
    if source == "tuning":
        return tuning.BEST_MODEL  # the state machine copies the best job's model here
    return str(item["stages"]["create_model"]["model_data_url"])
