"""What a stage is: the base class each module of core/stages/ extends, and what stages share.

A stage is an object whose methods answer, grouped by concern:

- planning: `defaults` (the framework's request), `request`, `plan` (its part of the execution
  input), `limit`, `requests`, `rules`, `check`, `reaches`;
- states: `states` adds its states to the definition (core/asl.py's `Builder`);
- permissions: `permissions` (the role's statements for the integrations its states call);
- what it makes: `made`, read by the cache, `rerun` and `status`;
- reporting: `preview`, `report`.

Each has a default; a stage overrides what is its own. `JobStage` is a stage that is one `.sync`
SageMaker job; `ProcessingStage` one processing job. A stage may declare `checkpoints` (evaluation
declares one): the layers iterate over them as they iterate over the stages.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from . import iam, names, sagemaker_api
from .problems import Problem

if TYPE_CHECKING:
    from .asl import Builder
    from .settings import Settings

Item = dict[str, Any]
Block = dict[str, Any]  # a stage's part of the execution input ($.stages.<stage>)
Statements = Mapping[str, tuple[dict[str, Any], ...]]  # Task resource (after arn:aws:states:::) -> statements
Where = Callable[[str], str]  # shortens a run-folder URI in a report line

DEFAULT_INSTANCE_TYPE = "ml.m5.large"
RUN_FOLDER = "s3://{bucket}/runs/{pipeline}/{execution}"
DEFAULT_JOB_LIMIT_SECONDS = 86_400  # SageMaker's MaxRuntimeInSeconds when a job's request sets none
# Request fields naming where SageMaker writes.
WRITTEN = re.compile(r"Output|Checkpoint|Capture|Destination")
# Of those, a job's output configuration (Create*Job requests) holds what later stages read; a
# checkpoint, debugger or captured-traffic location may stay empty.
_OUTPUT = re.compile(
    r"^\.request\.(?:TrainingJobDefinition\.)?(?:ProcessingOutputConfig|TransformOutput|OutputDataConfig)\."
)


@dataclass(frozen=True)
class Made:
    """One thing a stage makes: an S3 location (a folder ends with "/"), or a per-run name.

    `needed`: later stages read it, so a rerun that reuses the stage needs it still there.
    `describe`: for a SageMaker resource that can be deleted, the boto3 call and parameter that find
    it (a job's name needs none: SageMaker keeps it for ever)."""

    value: str
    needed: bool = False
    describe: tuple[str, str] | None = None

    @property
    def location(self) -> bool:
        return self.value.startswith("s3://")


@dataclass(frozen=True)
class Checkpoint:
    """A check that follows a stage and can end the run there (evaluation declares one).

    The item's top-level key `name` turns it on and the execution input carries it there; its
    verdict is at `$.results.<name>` ({"met", "message", ...}); a failure it causes names `name` as
    the failed stage. A stage reused by a rerun skips its checkpoints, so their settings join the
    stage's cache key."""

    name: str
    title: str  # in previews and reports
    explain: Callable[[Any], str]  # the item's setting in words: "rmse <= 0.5"
    error: str  # the failure's error when not met


class Stage:
    """One stage; a module of core/stages/ defines a subclass and its one instance, `STAGE`."""

    # Facts: a subclass sets what is its own.
    name: ClassVar[str]
    operation: ClassVar[str | None] = None  # the SageMaker API its "request" is an input of
    name_field: ClassVar[str | None] = None  # the name the framework fills per execution (unique for ever)
    name_limit: ClassVar[int] = 63
    tag: ClassVar[str | None] = None  # in the names of what it creates per run: <pipeline>-<tag>-<hash>
    resource: ClassVar[str | None] = None  # the SageMaker ARN type of what it creates per run (role policy)
    described_as: ClassVar[str | None] = None  # in previews: "<described_as> <name>"
    framework_fields: ClassVar[tuple[str, ...]] = ()  # request fields the framework decides, besides the name
    serving: ClassVar[bool] = False  # runs after the others, side by side with the other serving stages
    watches: ClassVar[bool] = False  # runs after the serving stages succeeded: it looks after what they deployed
    cacheable: ClassVar[bool] = False  # an item may let a run reuse its outputs when nothing it depends on changed
    follows: ClassVar[str | None] = None  # runs exactly when this other stage runs, whatever its own `run` says
    per_segment: ClassVar[bool] = False  # may run once per segment (core/fanout.py), its states in the Map too
    checkpoints: ClassVar[tuple[Checkpoint, ...]] = ()  # checks that follow it, in order
    cause_copies: ClassVar[int] = 1  # how many copies of a failure's cause its states hold at once

    @property
    def title(self) -> str:
        """As state names show it: "Batch transform"."""
        return self.name.replace("_", " ").capitalize()

    def __repr__(self) -> str:
        return f"<stage {self.name}>"

    # --- planning

    def defaults(self, item: Item, execution: str) -> dict[str, Any]:
        """The framework's request, before the item's fields are merged over it."""
        return {}

    def request(self, item: Item, execution: str) -> dict[str, Any]:
        """Defaults, then the item's request over them, then the per-execution name."""
        own = item.get("stages", {}).get(self.name, {}).get("request", {})
        request: dict[str, Any] = merge(self.defaults(item, execution), own)
        if self.name_field and self.tag:
            pipeline = item["consumption_pipeline_name"]
            request[self.name_field] = names.resource_name(pipeline, self.tag, execution, self.name_limit)
        return request

    def plan(self, item: Item, execution: str, settings: Settings) -> Block:
        """Its part of the execution input for one run (placeholders are filled by plan.py)."""
        return {"request": self.request(item, execution)}

    def limit(self, block: Block) -> int:
        """How long it may run at most, in seconds (the one-year check); 0: a single API call."""
        return 0

    def requests(self, block: Block) -> list[tuple[str, dict[str, Any]]]:
        """The SageMaker requests in its planned block, checked once placeholders are filled."""
        return [(self.operation, block["request"])] if self.operation and "request" in block else []

    def tagged(self, block: Block) -> list[tuple[str, dict[str, Any]]]:
        """(API, request) of what it creates, each tagged for its run (tags.py): its requests, by default."""
        return self.requests(block)

    def rules(self, item: Item) -> list[Problem]:
        """Item rules that are its own (rules between stages are item.py's)."""
        return []

    def check(self, block: Block, settings: Settings) -> list[Problem]:
        """Its planned block against the deployment."""
        return []

    def reaches(self, block: Block) -> list[tuple[str, str]]:
        """(field, name) of names in its planned block that must be inside the deployment's prefix."""
        return []

    # --- states and permissions

    def states(self, b: Builder, then: str | None) -> str:
        """Adds its states given the state that follows it (None: it ends a Parallel branch); returns the first."""
        raise NotImplementedError(f"stage {self.name} defines no states")

    def permissions(self) -> Statements:
        """The role's statements for each integration its states call."""
        return {}

    # --- what it makes

    def made(self, block: Block, result: dict[str, Any] | None = None) -> list[Made]:
        """What it makes: the locations its planned request writes to and its per-run name; with the
        run's `result`, what only the result names too. The one answer the cache (what later stages
        use, what a ledger record must still find), `rerun` (what a reused stage must still have) and
        `report` read."""
        found = [
            Made(value, needed=bool(_OUTPUT.search(path)))
            for path, value in strings(block)
            if WRITTEN.search(path) and value.startswith("s3://")
        ]
        name = block.get("request", {}).get(self.name_field) if self.name_field else None
        return found + ([Made(name)] if isinstance(name, str) else [])

    # --- reporting

    def preview(self, block: Block) -> str:
        """Its line in previews."""
        return f"{self.described_as} {block['request'][self.name_field]}" if self.name_field else ""

    def report(self, result: dict[str, Any], block: Block, where: Where) -> str:
        """What it produced, in one line for `status`: by default the locations it wrote."""
        wrote = [where(made.value) for made in self.made(block, result) if made.needed and made.location]
        return "wrote " + ", ".join(wrote) if wrote else ""

    def checked_by(self, execution_input: dict[str, Any]) -> Any:
        """Its checkpoints' settings in a run (part of its cache key): one checkpoint's as it is, so
        keys recorded before checkpoints were declared stay valid; None without any."""
        settings = [execution_input.get(checkpoint.name) for checkpoint in self.checkpoints]
        return settings[0] if len(settings) == 1 else (settings or None)


class JobStage(Stage):
    """A stage that is one `.sync` SageMaker job (processing, training, transform)."""

    rule: ClassVar[str]  # the managed EventBridge rule Step Functions polls the job with

    def limit(self, block: Block) -> int:
        return job_limit(block["request"])

    def states(self, b: Builder, then: str | None) -> str:
        return b.job(self, self.selector(), then)

    def selector(self) -> dict[str, str]:
        """What its results keep of the job's description: its name."""
        return {"job_name.$": f"$.{self.name_field}"}

    def permissions(self) -> Statements:
        return iam.sync_job(self, self.rule)


class ProcessingStage(JobStage):
    """A stage that is one `.sync` processing job (preprocessing, evaluation)."""

    operation = "CreateProcessingJob"
    name_field = "ProcessingJobName"
    resource = "processing-job"
    described_as = "processing job"
    cacheable = True
    per_segment = True
    rule = "StepFunctionsGetEventsForSageMakerProcessingJobsRule"

    def defaults(self, item: Item, execution: str) -> dict[str, Any]:
        return processing_request()


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
    """Where the model comes from: the running training or tuning stage, a model data URL, or a
    registered model package (whose model data is known only when the run reads the package)."""
    sources = [stage for stage in ("training", "tuning") if runs(item, stage)]
    block = item["stages"].get("create_model", {})
    sources += [field for field in ("model_data_url", "model_package") if block.get(field)]
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


def strings(value: Any, path: str = "") -> list[tuple[str, str]]:
    """(path, string) for every string in a JSON-shaped value: ".Outputs[].S3Output.S3Uri"."""
    if isinstance(value, dict):
        return [found for key, entry in value.items() for found in strings(entry, f"{path}.{key}")]
    if isinstance(value, list):
        return [found for entry in value for found in strings(entry, f"{path}[]")]
    return [(path, value)] if isinstance(value, str) else []
