"""What a stage is: the one definition each module of core/stages/ gives, and what they share.

A `Stage` holds every fact and every part of one stage: its SageMaker operation and names, how
its part of the execution input is planned, the states it adds to the definition, the role
policy's statements for the integrations those states call, how previews and `status` describe
it, and the item rules that are its own. The planner, the definition builder, the policy, the
previews and the checks iterate over `stages.CATALOG` and call these; only rules between stages
(item.py) and the quality gate's line in previews (it follows evaluation) name one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import names, sagemaker_api
from .problems import Problem

if TYPE_CHECKING:
    from .asl import Builder
    from .plan import Settings

Item = dict[str, Any]
Block = dict[str, Any]  # a stage's part of the execution input ($.stages.<stage>)
Statements = Mapping[str, tuple[dict[str, Any], ...]]  # Task resource (after arn:aws:states:::) -> statements

DEFAULT_INSTANCE_TYPE = "ml.m5.large"
RUN_FOLDER = "s3://{bucket}/runs/{pipeline}/{execution}"
DEFAULT_JOB_LIMIT_SECONDS = 86_400  # SageMaker's MaxRuntimeInSeconds when a job's request sets none


@dataclass(frozen=True)
class Stage:
    """One stage, described once (a module of core/stages/ each)."""

    name: str
    operation: str | None = None  # the SageMaker API its "request" is an input of
    name_field: str | None = None  # the name the framework fills per execution (unique for ever)
    name_limit: int = 63
    tag: str | None = None  # in the names of what it creates per run: <pipeline>-<tag>-<hash>
    resource: str | None = None  # the SageMaker ARN type of what it creates per run (role policy)
    described_as: str | None = None  # in previews: "<described_as> <name>"
    framework_fields: tuple[str, ...] = ()  # request fields the framework decides, besides the name
    serving: bool = False  # runs after the others, side by side with the other serving stages
    watches: bool = False  # runs after the serving stages succeeded: it looks after what they deployed
    cacheable: bool = False  # an item may let a run reuse its outputs when nothing it depends on changed
    follows: str | None = None  # runs exactly when this other stage runs, whatever its own `run` says

    # Its parts. Each has a default, so a definition names only what is its own.
    # The framework's request, before the item's fields are merged over it: (item, execution).
    defaults: Callable[[Item, str], dict[str, Any]] | None = None
    # Its part of the execution input (default: its merged request): (item, execution, deployment).
    plan: Callable[[Item, str, Settings], Block] | None = None
    # How long it may run at most, in seconds (the one-year check): (block). None: a single API call,
    # or a transform job (SageMaker sets no run time limit on one).
    limit: Callable[[Block], int] | None = None
    # Adds its states given the state that follows it (None: it ends a Parallel branch); returns the first.
    states: Callable[[Builder, str | None], str] | None = None
    # The role's statements for each integration its states call.
    permissions: Statements = field(default_factory=dict)
    # Its line in previews: (block).
    preview: Callable[[Block], str] | None = None
    # What it produced, in one line for `status`: (result, block, where); where() shortens run-folder URIs.
    outputs: Callable[[dict[str, Any], Block, Callable[[str], str]], str] | None = None
    # The SageMaker requests in its planned block, checked once placeholders are filled: (block).
    requests: Callable[[Block], list[tuple[str, dict[str, Any]]]] | None = None
    # Item rules that are its own (rules between stages are item.py's): (item).
    rules: Callable[[Item], list[Problem]] | None = None
    # Its planned block against the deployment: (block, deployment).
    check: Callable[[Block, Settings], list[Problem]] | None = None
    # The names in its planned block that must be inside the deployment's name prefix: (block) -> (field, name).
    reaches: Callable[[Block], list[tuple[str, str]]] | None = None

    @property
    def title(self) -> str:
        """As state names show it: "Batch transform"."""
        return self.name.replace("_", " ").capitalize()

    def framework_request(self, item: Item, execution: str) -> dict[str, Any]:
        return self.defaults(item, execution) if self.defaults else {}

    def request(self, item: Item, execution: str) -> dict[str, Any]:
        """Defaults, then the item's request over them, then the per-execution name."""
        own = item.get("stages", {}).get(self.name, {}).get("request", {})
        request: dict[str, Any] = merge(self.framework_request(item, execution), own)
        if self.name_field and self.tag:
            pipeline = item["consumption_pipeline_name"]
            request[self.name_field] = names.resource_name(pipeline, self.tag, execution, self.name_limit)
        return request

    def planned(self, item: Item, execution: str, settings: Settings) -> Block:
        """What the state machine needs for this stage in one run."""
        return self.plan(item, execution, settings) if self.plan else {"request": self.request(item, execution)}

    def longest(self, block: Block) -> int:
        return self.limit(block) if self.limit else 0

    def summary(self, block: Block) -> str:
        if self.preview:
            return self.preview(block)
        return f"{self.described_as} {block['request'][self.name_field]}" if self.name_field else ""

    def produced(self, result: dict[str, Any], block: Block, where: Callable[[str], str]) -> str:
        return self.outputs(result, block, where) if self.outputs else ""

    def filled_requests(self, block: Block) -> list[tuple[str, dict[str, Any]]]:
        if self.requests:
            return self.requests(block)
        return [(self.operation, block["request"])] if self.operation and "request" in block else []

    def own_rules(self, item: Item) -> list[Problem]:
        return self.rules(item) if self.rules else []

    def checked(self, block: Block, settings: Settings) -> list[Problem]:
        return self.check(block, settings) if self.check else []

    def named_in_prefix(self, block: Block) -> list[tuple[str, str]]:
        return self.reaches(block) if self.reaches else []


def merge(base: Any, override: Any) -> Any:
    """Deep merge: objects merge key by key, anything else (lists included) is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        result = copy.deepcopy(base)
        for key, value in override.items():
            result[key] = merge(result.get(key), value) if key in result else copy.deepcopy(value)
        return result
    return copy.deepcopy(override)


def runs(item: Item, stage: str) -> bool:
    return item.get("stages", {}).get(stage, {}).get("run") is True


def model_sources(item: Item) -> list[str]:
    """Where the model comes from: the running training or tuning stage, or a model data URL."""
    sources = [stage for stage in ("training", "tuning") if runs(item, stage)]
    if item["stages"].get("create_model", {}).get("model_data_url"):
        sources.append("model_data_url")
    return sources


def map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """`value` (JSON-shaped) with `change` applied to every string in it."""
    if isinstance(value, dict):
        return {key: map_strings(entry, change) for key, entry in value.items()}
    if isinstance(value, list):
        return [map_strings(entry, change) for entry in value]
    return change(value) if isinstance(value, str) else value


def fill(value: Any, values: Mapping[str, str]) -> Any:
    """Replace {placeholders} in every string ({model_data_url} only exists when the pipeline has a model)."""
    placeholder = sagemaker_api.PLACEHOLDER
    return map_strings(value, lambda text: placeholder.sub(lambda m: values.get(m.group(1), m.group(0)), text))


def job_limit(request: dict[str, Any]) -> int:
    """How long a SageMaker job may run: its MaxRuntimeInSeconds (or spot wait), else SageMaker's default."""
    stop = request.get("StoppingCondition", {})
    return max(
        int(stop.get("MaxRuntimeInSeconds", DEFAULT_JOB_LIMIT_SECONDS)), int(stop.get("MaxWaitTimeInSeconds", 0))
    )


def processing_request() -> dict[str, Any]:
    """The framework's processing job: the default image and instance, an hour at most."""
    return {
        "RoleArn": "{role_arn}",
        "AppSpecification": {"ImageUri": "{image}"},
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": DEFAULT_INSTANCE_TYPE, "VolumeSizeInGB": 30}
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }


def training_definition(stage: str) -> dict[str, Any]:
    """The framework's training job (a tuning job's definition too), writing into the run folder."""
    return {
        "RoleArn": "{role_arn}",
        "AlgorithmSpecification": {"TrainingImage": "{image}", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": f"{RUN_FOLDER}/{stage}/"},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": DEFAULT_INSTANCE_TYPE, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }


def where_in(run_folder: str) -> Callable[[str], str]:
    """Shortens URIs inside the run folder (reports name the folder once)."""
    return lambda uri: uri.removeprefix(run_folder) if run_folder and uri.startswith(run_folder) else uri
