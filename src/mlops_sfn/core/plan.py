"""The execution input: built here, and only here, for `mlops-sfn plan` and for the router Lambda."""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from typing import Any

from . import estimate, fanout, monitoring, names, prices, sagemaker_api, stages, tags
from .item import check_item
from .problems import InvalidItem, Problem
from .settings import EXAMPLE_SETTINGS, Settings
from .stage import WRITTEN, fill, map_strings, model_sources, runs
from .stages import CATALOG, CHECKPOINTS, STAGE, STAGES
from .stages.training import warm_pool_mismatch
from .triggers import Manual, Trigger

__all__ = ["fill", "map_strings"]  # (the modules that rewrite planned inputs take them from here)

EXECUTION_INPUT_VERSION = 1

# Step Functions carries at most 262,144 bytes (UTF-8) in an execution's input and in each state's
# input and output ("Step Functions service quotas"); over it, States.DataLimitExceeded ends the run
# and no Catch sees it. The run adds its results to the input, so the planned input keeps room.
MAX_PLANNED_INPUT_BYTES = 192 * 1024
# A failed SageMaker job's Catch adds the error's cause to the state: for a .sync job, its Describe*
# response as a JSON string, which holds the job's whole request again, every quote escaped (at most
# twice its bytes), plus SageMaker's own fields. A run's input and that addition must fit together,
# else the failure itself ends in States.DataLimitExceeded: no failure notification, nothing caught.
FAILURE_OVERHEAD_BYTES = 8 * 1024
# A Standard workflow runs at most one year ("Step Functions service quotas"); a run stopped there
# sends no failure notification.
EXECUTION_LIMIT_SECONDS = 365 * 24 * 3600


# A trigger used to check filled requests when no event is at hand.
SAMPLE_TRIGGER = Manual(run_id="preview", dataset_date="2024-01-31")


def apply_overrides(item: dict[str, Any], trigger: Trigger) -> dict[str, Any]:
    merged: dict[str, Any] = stages.merge(item, trigger.overrides) if trigger.overrides else item
    return merged


@dataclass(frozen=True)
class Planned:
    """A run as its starter needs it: its input, and each segment's when the item fans out (the
    starter writes those to the run's folder first: fanout.write)."""

    execution_input: dict[str, Any]
    segment_inputs: list[dict[str, Any]]
    estimate: dict[str, Any]  # estimate.estimate's, its charges listed (the input keeps the sums)


def plan_execution(
    item: dict[str, Any], trigger: Trigger, settings: Settings, execution: str | None = None
) -> dict[str, Any]:
    """The execution input for one trigger of one item; raises InvalidItem listing every problem.
    `execution`: the run whose names and folder this one takes (a rerun's earlier run), else the
    trigger's own."""
    return plan_run(item, trigger, settings, execution).execution_input


def plan_run(item: dict[str, Any], trigger: Trigger, settings: Settings, execution: str | None = None) -> Planned:
    """The run's input and its segments' inputs (plan_execution's, with the segments)."""
    item = apply_overrides(item, trigger)
    problems = check_item(item)
    if isinstance(item, dict) and not any(p.path.split(".")[0] == "tags" for p in problems):  # (schema first)
        problems += tags.rules(item, settings)
    if problems:
        raise InvalidItem(problems)
    pipeline = item["consumption_pipeline_name"]
    execution = execution or names.execution_name(pipeline, trigger.identity())
    values = _placeholder_values(item, trigger, settings, execution)
    per_segment = fanout.stages_of(item)
    run = {stage.name: runs(item, stage.follows or stage.name) for stage in CATALOG}
    if trigger.source == "monitoring" and monitoring.on_drift(item) == "notify":
        run = {stage: False for stage in STAGES}  # the run only says that the model drifted
        per_segment = ()
    once = [name for name, on in run.items() if on and name not in per_segment]
    if per_segment and fanout.serves(item):  # the run's model is every segment's, under one prefix
        values["model_data_url"] = fanout.models_prefix(fill(stages.RUN_FOLDER + "/", values))
    blocks = _planned(item, once, execution, settings, values, execution)
    notify = item.get("notifications", {}).get("on", ["failure"])
    execution_input: dict[str, Any] = {
        "version": EXECUTION_INPUT_VERSION,
        "pipeline": pipeline,
        "execution_name": execution,
        "dataset_date": values["dataset_date"],
        "trigger": trigger.as_dict(),
        "run_folder": fill(stages.RUN_FOLDER + "/", values),
        "run": {name: on and name not in per_segment for name, on in run.items()},
        "stages": blocks,
        "notify": {"on_failure": "failure" in notify, "on_success": "success" in notify},
        "results": {},  # each stage writes its trimmed result here; present even when no stage runs
    }
    for name in CHECKPOINTS:  # the checkpoints' settings, at the top level as in the item
        if name in item:
            execution_input[name] = item[name]
    segment_inputs = []
    if per_segment:
        execution_input["fanout"] = fanout.config(item, settings.bucket, execution_input["run_folder"], execution)
        # An item whose uploads list its segments is checked with a sample segment until its starter
        # reads the upload's list (fanout.read_segments): nothing to write before then.
        listed = [fanout.SAMPLE] if fanout.in_upload(item) else fanout.segments(item)
        segment_inputs = [
            _plan_segment(item, trigger, settings, execution_input, segment, per_segment) for segment in listed
        ]
        if fanout.in_upload(item):
            segment_inputs = []
    # Segments run in waves of max_concurrency: the run lasts as long as its waves of the longest segment.
    waves = -(-len(segment_inputs) // execution_input["fanout"]["max_concurrency"]) if segment_inputs else 0
    longest = max((_duration(segment["stages"]) for segment in segment_inputs), default=0)
    bound = estimate.estimate(execution_input, segment_inputs, prices.load(), settings.region)
    execution_input["estimate"] = {key: bound[key] for key in ("usd", "stages", "prices_as_of", "region")}
    problems = _check_size(execution_input) + _check_duration(blocks, waves * longest)
    problems += warm_pool_mismatch(segment_inputs) + _check_budget(item, bound, trigger)
    if problems:
        raise InvalidItem(problems)
    return Planned(execution_input, segment_inputs, bound)


def _check_budget(item: dict[str, Any], bound: dict[str, Any], trigger: Trigger) -> list[Problem]:
    """A run whose estimate is above the item's budget_usd, or cannot be estimated, is refused unless a
    manual run was started over budget (`mlops-sfn run --over-budget`)."""
    budget = item.get("budget_usd")
    if not isinstance(budget, int | float) or getattr(trigger, "over_budget", False):
        return []
    if bound["unpriced"]:
        return [
            Problem(
                "budget_usd",
                f"the run cannot be checked against it: no price for {', '.join(bound['unpriced'])} in"
                f" {bound['region']} (prices of {bound['prices_as_of']}): refresh the prices (mlops-sfn prices"
                " refresh), or remove budget_usd",
            )
        ]
    if bound["usd"] <= budget:
        return []
    costly = sorted(((usd, stage) for stage, usd in bound["stages"].items() if usd >= 0.005), reverse=True)[:3]
    listed = ", ".join(f"{stage} {usd:.2f}" for usd, stage in costly)
    return [
        Problem(
            "budget_usd",
            f"the run may cost up to USD {bound['usd']:.2f} ({listed}; prices of {bound['prices_as_of']},"
            f" {bound['region']}), above budget_usd {budget:g}: raise the budget, lower the jobs' time limits"
            " or instances, or start it anyway with mlops-sfn run --over-budget",
        )
    ]


def _planned(
    item: dict[str, Any],
    planned: list[str],
    execution: str,
    settings: Settings,
    values: dict[str, str],
    run: str,
    segment: str | None = None,
) -> dict[str, Any]:
    """The blocks of the stages `planned`, filled, tagged (as run `run`'s, of `segment`) and checked
    against the deployment."""
    blocks = {name: fill(STAGE[name].plan(item, execution, settings), values) for name in planned}
    for name, block in blocks.items():
        tags.apply(STAGE[name].tagged(block), tags.of_run(item, settings, run, name, segment))
    problems = _check_filled(blocks) + _check_reach(blocks, settings.sagemaker_name_prefix)
    strings = _strings(blocks, "stages")  # walked once for both checks
    problems += _check_images(strings, settings.image_repository_arns) + _check_access(strings, settings)
    problems += [problem for name, block in blocks.items() for problem in STAGE[name].check(block, settings)]
    if problems:
        raise InvalidItem(problems)
    return blocks


def _plan_segment(
    item: dict[str, Any],
    trigger: Trigger,
    settings: Settings,
    execution_input: dict[str, Any],
    segment: dict[str, Any],
    per_segment: tuple[str, ...],
) -> dict[str, Any]:
    """One segment's input: its stages planned as a run whose execution is <execution>/segments/<id>
    (its own names and folder), its values in its placeholders; what the Map's states read."""
    inside = fanout.segment_folder(execution_input["execution_name"], segment["id"])
    values = _placeholder_values(item, trigger, settings, inside) | fanout.values(segment)
    try:
        run = execution_input["execution_name"]
        blocks = _planned(item, list(per_segment), inside, settings, values, run, segment["id"])
    except InvalidItem as error:
        found = [Problem(p.path, f"for segment {segment['id']!r}: {p.message}") for p in error.problems]
        raise InvalidItem(found) from None
    segment_input = {key: execution_input[key] for key in ("version", "pipeline", "execution_name", "dataset_date")} | {
        fanout.SEGMENT: segment["id"],
        "run_folder": fill(stages.RUN_FOLDER + "/", values),
        "run": {name: name in per_segment for name in STAGES},
        "stages": blocks,
        "results": {},
        "reused": {},  # the stages the run ledger has (cache.lookup); its outcome says which (fanout.summary)
    }
    if "models" in execution_input["fanout"]:  # where the run's endpoint loads this segment's model from
        target = execution_input["fanout"]["models"] + fanout.target_model(segment["id"])
        segment_input["publish"] = {"source": values["model_data_url"], "target": target}
    for name in CHECKPOINTS:
        if name in item:
            segment_input[name] = item[name]
    problems = _check_size(segment_input, f"for segment {segment['id']!r}: ")
    if problems:
        raise InvalidItem(problems)
    return segment_input


def failure_state_bytes(execution_input: dict[str, Any]) -> int:
    """The bytes a state holds when the largest stage fails: the input, its block again as the error's
    cause (escaped: at most twice; as many times as the stage holds its cause), and what SageMaker
    adds to the cause."""
    blocks = execution_input["stages"]
    largest = max(
        (STAGE[name].cause_copies * len(json.dumps(block).encode("utf-8")) for name, block in blocks.items()),
        default=0,
    )
    return len(json.dumps(execution_input).encode("utf-8")) + 2 * largest + FAILURE_OVERHEAD_BYTES


def _check_size(execution_input: dict[str, Any], whose: str = "") -> list[Problem]:
    """The input as the router sends it must leave room for the results the run adds, and for the
    cause a failure adds (a failure must reach its notification, not end in DataLimitExceeded)."""
    size = failure_state_bytes(execution_input)
    if size <= MAX_PLANNED_INPUT_BYTES:
        return []
    blocks = execution_input["stages"]
    largest = max(blocks, key=lambda stage: len(json.dumps(blocks[stage]).encode("utf-8")))
    return [
        Problem(
            f"stages.{largest}",
            f"{whose}a failure of this stage would hold {size} bytes in the run's state, more than"
            f" {MAX_PLANNED_INPUT_BYTES} (Step Functions carries at most 262,144 bytes per state; the run adds"
            " its results, and a failed job's error repeats its request): shrink the largest block, this one,"
            " e.g. move long values into a file the job reads from S3",
        )
    ]


def _duration(blocks: dict[str, Any]) -> int:
    return sum(STAGE[stage].limit(block) for stage, block in blocks.items())


def _check_duration(blocks: dict[str, Any], segments_seconds: int = 0) -> list[Problem]:
    """A run must be able to finish within the execution limit, approval wait and segments included."""
    total = _duration(blocks) + segments_seconds
    if total < EXECUTION_LIMIT_SECONDS:
        return []
    where = "stages.approval.timeout_hours" if "approval" in blocks else "stages"
    return [
        Problem(
            where,
            f"the run could take {total / 86_400:.0f} days (the approval timeout plus the stages' time limits),"
            " and Step Functions stops a run after 365 days without a failure notification: lower the"
            " approval timeout or the StoppingCondition of the jobs",
        )
    ]


def with_upload_segments(item: dict[str, Any], trigger: Trigger, settings: Settings, s3: Any) -> dict[str, Any]:
    """The item as a run of `trigger` sees it: with the segments its upload's file lists, when its
    fan-out says so (what starts a run reads them: the router, `local run`, `rerun`)."""
    if not fanout.in_upload(item):
        return item
    return fanout.read_segments(s3, settings.bucket, upload_prefix(item, trigger), item)


def upload_prefix(item: dict[str, Any], trigger: Trigger) -> str:
    """The key prefix of the upload a run reads ({upload_prefix}): the upload's, for a drift or
    scheduled run the latest upload's (the router sets it), for a manual run the trigger prefix."""
    if trigger.source in ("s3", "monitoring", "schedule") and trigger.key:
        return trigger.key.rsplit("/", 1)[0] + "/" if "/" in trigger.key else ""
    return str(item.get("trigger", {}).get("prefix", ""))


def _placeholder_values(item: dict[str, Any], trigger: Trigger, settings: Settings, execution: str) -> dict[str, str]:
    values = {
        "bucket": settings.bucket,
        "pipeline": item["consumption_pipeline_name"],
        "execution": execution,
        "dataset_date": trigger.day(),
        "upload_prefix": upload_prefix(item, trigger),
        "region": settings.region,
        "role_arn": settings.sagemaker_role_arn,
        "image": settings.default_image_uri,
    }
    sources = model_sources(item)
    if sources and sources[0] != "model_package":  # a package's model data is read when the run reads it
        values["model_data_url"] = fill(stages.model_data_url(item, sources[0], execution), values)
    return values


def _check_reach(blocks: dict[str, Any], prefix: str) -> list[Problem]:
    """An item may only touch the deployment's own endpoints and model package groups: without this,
    anyone who can edit the table could redeploy an unrelated endpoint (the role's policy agrees)."""
    return [
        Problem(
            path,
            f"{name!r} is outside this deployment, whose names start with {prefix!r}: rename it, or deploy"
            " with a sagemaker_name_prefix it starts with (mlops-sfn validate reads SAGEMAKER_NAME_PREFIX)",
        )
        for stage, block in blocks.items()
        for path, name in STAGE[stage].reaches(block)
        if not name.startswith(prefix)
    ]


_ROLE_FIELDS = {"RoleArn", "ExecutionRoleArn"}


def _strings(value: Any, path: str) -> list[tuple[str, str, str]]:
    """(path, key, string) of every string in a planned block, the key being the field holding it."""
    if isinstance(value, dict):
        found = []
        for key, entry in value.items():
            if isinstance(entry, str):
                found.append((f"{path}.{key}", key, entry))
            else:
                found += _strings(entry, f"{path}.{key}")
        return found
    if isinstance(value, list):
        return [triple for index, entry in enumerate(value) for triple in _strings(entry, f"{path}[{index}]")]
    return []


# Request paths whose S3 locations SageMaker writes (outputs, checkpoints, captured data): these
# must be in the framework's bucket; data buckets are read only.
_KMS_FIELDS = {"KmsKeyId", "VolumeKmsKeyId"}


def _check_access(strings: list[tuple[str, str, str]], settings: Settings) -> list[Problem]:
    """Only the deployment's SageMaker role may be passed, and it reaches only the deployment's
    bucket (and reads its data buckets) with only its key: anything else would start and then fail
    with AccessDenied, after the stages before it."""
    problems = []
    readable = settings.data_bucket_names()
    for path, key, value in strings:
        if key in _ROLE_FIELDS and value != settings.sagemaker_role_arn:
            problems.append(
                Problem(
                    path,
                    f"{value!r} is not this deployment's SageMaker role, the only one the state machine may pass"
                    " (validate reads SAGEMAKER_ROLE_ARN): remove the field, the framework's role is the default",
                )
            )
        elif key in _KMS_FIELDS and not _usable_key(value, settings.kms_key_arn):
            deployed = f"its key {settings.kms_key_arn!r}" if settings.kms_key_arn else "no customer-managed key"
            problems.append(
                Problem(
                    path,
                    f"KMS key {value!r} is not this deployment's: its roles may use {deployed} (validate reads"
                    " KMS_KEY_ARN); remove the field (the bucket's default encryption applies), or deploy with"
                    " kms_key_arn set to that key",
                )
            )
        elif value.startswith("s3://"):
            bucket = value.removeprefix("s3://").split("/", 1)[0]
            written = bool(WRITTEN.search(path.split(".request.", 1)[-1]))
            if bucket == settings.bucket or (bucket in readable and not written):
                continue
            if bucket in readable:
                reason = (
                    f"bucket {bucket!r} is declared for reading (data_buckets), and a run writes here: write to"
                    f" s3://{{bucket}}/... (this deployment's {settings.bucket!r})"
                )
            else:
                reason = (
                    f"bucket {bucket!r} is outside this deployment: its SageMaker role reaches only"
                    f" {settings.bucket!r}{' and reads ' + ', '.join(map(repr, readable)) if readable else ''};"
                    " move the data there (write s3://{bucket}/...), or declare the bucket in the root variable"
                    " data_buckets if runs only read it (validate reads DATA_BUCKETS)"
                )
            problems.append(Problem(path, reason))
    return problems


def _usable_key(value: str, deployed: str) -> bool:
    """A key the SageMaker role may use: the deployment's (by ARN or key id), or an AWS managed key
    (alias/aws/...), which AWS services use on the caller's behalf."""
    if value.startswith("alias/aws/") or ":alias/aws/" in value:
        return True
    return bool(deployed) and (value == deployed or deployed.endswith(f":key/{value}"))


_ECR_IMAGE = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([^:@]+)")
_IMAGE_FIELDS = {"ImageUri", "TrainingImage", "Image"}


def _check_images(strings: list[tuple[str, str, str]], repositories: str) -> list[Problem]:
    """Every ECR image a run would pull comes from a repository the SageMaker role may pull from;
    otherwise the job would start and fail on an access error, after the runs before it."""
    allowed = [arn.strip() for arn in repositories.split(",") if arn.strip()]
    problems = []
    for path, key, image in strings:
        if key not in _IMAGE_FIELDS:
            continue
        found = _ECR_IMAGE.match(image)
        if not found:
            continue  # not an ECR image: SageMaker's own check applies
        account, region, repository = found.groups()
        if monitoring.is_analyzer(account, repository):
            continue  # AWS's own image, pulled by SageMaker for the job
        wanted = f"repository/{repository}"
        if not any(
            arn.split(":")[3:5] == [region, account] and fnmatch.fnmatchcase(wanted, arn.split(":", 5)[5])
            for arn in allowed
        ):
            problems.append(
                Problem(
                    path,
                    f"image {image!r} is in a repository this deployment may not pull from: add its ARN"
                    " to the root variable image_repository_arns",
                )
            )
    return problems


def _check_filled(blocks: dict[str, Any]) -> list[Problem]:
    """Patterns and lengths, once placeholders hold real values (e.g. a '_' from {pipeline} in a name)."""
    problems: list[Problem] = []
    for stage, block in blocks.items():
        for operation, request in STAGE[stage].requests(block):
            if request is block.get("request"):  # the stage's own request, as the item wrote it
                found = sagemaker_api.check_request(operation, request, f"stages.{stage}.request")
                problems += [Problem(p.path, f"after placeholders are filled: {p.message}") for p in found]
            else:  # requests the framework derives from it
                problems += sagemaker_api.check_request(operation, request, f"stages.{stage}")
    return problems


def check_with_sample(item: Any, settings: Settings = EXAMPLE_SETTINGS) -> list[Problem]:
    """All problems `validate` reports: the item's own, then those of its requests once filled."""
    try:
        plan_execution(item, SAMPLE_TRIGGER, settings)
    except InvalidItem as error:
        return error.problems
    return []
