"""Reading pipeline items and checking every rule they must obey before a run can start."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import bounds, dynamodb_json, fanout, sagemaker_api, schema, secrets, stages
from .problems import Error, Problem, join
from .stage import model_sources, runs
from .stages import CATALOG, OPERATIONS, STAGES

# Placeholders an item may use in any string; plan.py fills them for each execution.
PLACEHOLDERS = {
    "bucket": "the framework's S3 bucket",
    "pipeline": "the pipeline name (consumption_pipeline_name)",
    "execution": "the execution name",
    "dataset_date": "the dataset date: from the event, else the day of the event (UTC), e.g. 2024-05-31",
    "upload_prefix": "the key prefix of the upload that started the run (a drift or scheduled run: of the latest "
    "upload that passes its manifest's check; a manual run: the trigger prefix)",
    "region": "the AWS region",
    "role_arn": "the SageMaker execution role's ARN",
    "image": "the default container image URI",
    "model_data_url": "the run's model.tar.gz: from training, from tuning's best job (copied to "
    "s3://{bucket}/runs/{pipeline}/{execution}/tuning/best/model.tar.gz), or create_model.model_data_url",
    "segment": "in the stages fanout.stages names: the segment's id ({segment.<field>}: its other values)",
}


# `mlops-sfn generate` writes each item of a folder as DynamoDB JSON into this subfolder, for Terraform.
TYPED_FOLDER = "typed"


def item_files(folder: Path) -> list[Path]:
    """The item files of a folder and its subfolders, without the generated DynamoDB JSON copies."""
    return sorted(path for path in folder.rglob("*.json") if TYPED_FOLDER not in path.relative_to(folder).parts[:-1])


class ItemFileError(Error, ValueError):
    """A file that is not a readable JSON item."""


def load_item_file(path: Path) -> dict[str, Any]:
    """A plain item from a file holding plain or DynamoDB-typed JSON (or a GetItem {"Item": ...})."""
    try:
        document = bounds.read_json(path)
        # DynamoDB-typed JSON nests two levels per level of the item.
        depth = 2 * bounds.ITEM_DEPTH + 2
        bounds.check_nesting(
            document, depth, f"the file (an item nests at most {bounds.ITEM_DEPTH}, as DynamoDB JSON {depth})"
        )
    except bounds.InputRefused as error:
        raise ItemFileError(str(error)) from error
    except (OSError, UnicodeDecodeError) as error:
        raise ItemFileError(f"cannot read: {error}") from error
    except json.JSONDecodeError as error:
        raise ItemFileError(f"line {error.lineno} column {error.colno}: not valid JSON: {error.msg}") from error
    item = parse_item(document)
    try:
        bounds.check_nesting(item, bounds.ITEM_DEPTH, "the item")
    except bounds.InputRefused as error:
        raise ItemFileError(f"{error}; DynamoDB stores at most {bounds.ITEM_DEPTH}") from error
    return item


def parse_item(document: Any) -> dict[str, Any]:
    if isinstance(document, dict) and set(document) == {"Item"} and isinstance(document["Item"], dict):
        document = document["Item"]
    if not isinstance(document, dict):
        raise ItemFileError("expected a JSON object holding one pipeline item")
    if dynamodb_json.is_typed_item(document):
        try:
            return dynamodb_json.from_typed(document)
        except dynamodb_json.NotDynamoDBJson as error:
            raise ItemFileError(f"DynamoDB JSON: {error}") from error
    result: dict[str, Any] = dynamodb_json.plain(document)
    return result


# An item's checks are pure: a warm router checks each version of an item's content once, and
# keeps the answers for this many versions.
CHECKED_VERSIONS = 64
_checked: dict[str, tuple[Problem, ...]] = {}
_checked_lock = threading.Lock()  # the local runtime checks items from several threads


def check_item(item: Any) -> list[Problem]:
    """Every problem in an item, before placeholders are filled (plan.py checks the filled requests).
    Answered from memory for content already checked (its JSON text, key order included, is its version)."""
    try:
        version = json.dumps(item)
    except (TypeError, ValueError):  # not JSON-shaped (a Decimal, a set): checked each time
        return _check(item)
    with _checked_lock:
        known = _checked.get(version)
    if known is None:
        known = tuple(_check(item))
        with _checked_lock:
            if len(_checked) >= CHECKED_VERSIONS:
                del _checked[next(iter(_checked))]  # the oldest
            _checked[version] = known
    return list(known)


def _check(item: Any) -> list[Problem]:
    problems = schema.check(item)
    if problems:
        return problems  # deeper checks on a malformed structure would only add noise
    problems += _check_placeholders(item)
    problems += secrets.find(item)
    problems += _check_requests(item)
    problems += _check_rules(item)
    return sorted(set(problems), key=lambda p: (_order(p.path), p.path, p.message))


def _order(path: str) -> int:
    for index, stage in enumerate(STAGES):
        if path.startswith(f"stages.{stage}"):
            return index + 1
    return 0 if not path.startswith("stages") else len(STAGES) + 1


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string in a JSON value, with its field path."""
    if isinstance(value, dict):
        for key, entry in value.items():
            yield from _strings(entry, join(path, key))
    elif isinstance(value, list):
        for index, entry in enumerate(value):
            yield from _strings(entry, join(path, index))
    elif isinstance(value, str):
        yield path, value


def _planned(item: dict[str, Any], path: str) -> bool:
    """Whether the string at `path` is planned: not in the block of a stage that does not run."""
    parts = path.split(".")
    return not (len(parts) > 1 and parts[0] == "stages" and parts[1] in STAGES and not runs(item, parts[1]))


def _check_placeholders(item: dict[str, Any]) -> list[Problem]:
    problems = []
    allowed = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
    has_model = bool(model_sources(item)) and model_sources(item) != ["model_package"]
    for path, text in _strings(item, ""):
        used = sagemaker_api.PLACEHOLDER.findall(text)
        segment = [name for name in used if name.partition(".")[0] == fanout.SEGMENT]
        unknown = [name for name in used if name not in PLACEHOLDERS and name not in segment]
        if unknown:
            problems.append(Problem(path, f"unknown placeholder {{{unknown[0]}}}; allowed: {allowed}"))
        elif segment and (why := fanout.placeholder_problem(item, path, segment[0])):
            problems.append(Problem(path, why))
        elif "model_data_url" in used and not has_model and _planned(item, path):
            problems.append(
                Problem(
                    path,
                    "{model_data_url} needs a model whose data is known before the run: run training or tuning, or"
                    " set stages.create_model.model_data_url (a model package's is read only when the run starts)",
                )
            )
    return problems


def _check_requests(item: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    for stage, operation in OPERATIONS.items():
        block = item["stages"].get(stage)
        if block is None:
            continue
        path = f"stages.{stage}.request"
        own = block.get("request", {})
        for name in (*stages.FRAMEWORK_FIELDS.get(stage, ()), "Tags"):
            if name in own:
                problems.append(Problem(join(path, name), _framework_field_message(stage, name)))
        request = stages.merged_request(stage, item, "check")
        problems += sagemaker_api.check_request(operation, request, path)
    return problems


def _framework_field_message(stage: str, name: str) -> str:
    if name == "Tags":
        return (
            "set the item's \"tags\" instead: every resource a run creates carries them, with the run's own"
            " (mlops-sfn:pipeline, execution, stage); remove it"
        )
    if name == "ModelApprovalStatus":
        return "set by the framework: Approved, or PendingManualApproval when the approval stage runs; remove it"
    if name == "ModelPackageName":
        return "packages in a model package group are versioned, not named; remove it"
    return "set by the framework for each execution (SageMaker names are unique for ever); remove it"


def _check_rules(item: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    blocks = item["stages"]
    trigger = item.get("trigger", {})
    if "prefix" in trigger and "complete_on" not in trigger:
        problems.append(
            Problem(
                "trigger.complete_on",
                "is required with a prefix, or every uploaded object starts its own run; "
                'name the object that completes an upload: {"suffix": "_SUCCESS"} or {"manifest": "manifest.json"}',
            )
        )
    if "complete_on" in trigger and "prefix" not in trigger:
        problems.append(Problem("trigger.prefix", "is required with complete_on: the key prefix of the uploads"))

    sources = model_sources(item)
    if runs(item, "create_model"):
        if not sources:
            problems.append(
                Problem(
                    "stages.create_model.model_data_url",
                    "is required when neither training nor tuning runs: the s3:// URI of a model.tar.gz (or set"
                    " model_package to a registered package's ARN)",
                )
            )
        elif len(sources) > 1:
            problems.append(
                Problem(
                    "stages.create_model",
                    f"the model would come from {' and '.join(sources)}; it comes from one source only: "
                    "switch one off (or remove model_data_url or model_package)",
                )
            )
    elif runs(item, "tuning") and runs(item, "training") and runs(item, "register"):
        problems.append(
            Problem(
                "stages.register",
                "training and tuning both run; the registered model comes from one source only",
            )
        )

    for stage, field in (("deploy", "model_name"), ("batch_transform", "request.ModelName")):
        if not runs(item, stage):
            continue
        block = blocks[stage]
        named = block.get("model_name") if stage == "deploy" else block.get("request", {}).get("ModelName")
        path = f"stages.{stage}.{field}"
        if named and runs(item, "create_model"):
            problems.append(Problem(path, "names an existing model, but create_model also runs; remove one of the two"))
        elif not named and not runs(item, "create_model"):
            problems.append(
                Problem(
                    f"stages.{stage}",
                    f"needs a model: switch create_model on, or set {field} to an existing model",
                )
            )

    if runs(item, "approval") and not runs(item, "register"):
        problems.append(Problem("stages.approval", "needs the register stage: approval acts on the registered model"))
    if runs(item, "register") and not sources:
        problems.append(
            Problem(
                "stages.register",
                "needs a model: run training or tuning, or set stages.create_model.model_data_url",
            )
        )
    for described in CATALOG:  # the rules each stage defines for itself (its checkpoints' included)
        problems += described.rules(item)
    problems += fanout.rules(item, CATALOG)
    return problems


def prefix_owner(item: Any) -> tuple[str | None, str]:
    """(the trigger.prefix this item owns, or None; why not). Only an enabled item whose name and trigger
    are valid owns its prefix: a disabled, half-written or junk item can never take uploads from another."""
    if not isinstance(item, dict):
        return None, "not an item"
    name, trigger = item.get("consumption_pipeline_name"), item.get("trigger")
    if not isinstance(trigger, dict) or "prefix" not in trigger:
        return None, "it has no trigger.prefix"
    if item.get("enabled", True) is not True:
        return None, "it is disabled (enabled: false)" if item.get("enabled") is False else "its enabled is no boolean"
    problems = schema.check(name, schema.resolve(schema.item_schema()["properties"]["consumption_pipeline_name"]))
    problems += schema.check(trigger, schema.resolve({"$ref": "#/$defs/trigger"}), "trigger")
    if not problems and "complete_on" not in trigger:
        problems = [Problem("trigger.complete_on", "is required with a prefix")]
    if problems:
        return (
            None,
            f"its trigger is invalid ({problems[0].path or 'consumption_pipeline_name'}: {problems[0].message})",
        )
    return str(trigger["prefix"]), ""


def check_unique(items: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, Problem]]:
    """Rules across items of one table: unique names, and no two owners of one trigger prefix.

    Nested prefixes are allowed, as in the router: an upload belongs to the longest prefix holding it.
    """
    problems: list[tuple[str, Problem]] = []
    seen: dict[str, str] = {}
    owners: dict[str, str] = {}
    for source, item in items:
        name = item.get("consumption_pipeline_name")
        if isinstance(name, str):
            if name in seen:
                problems.append(
                    (source, Problem("consumption_pipeline_name", f"{name!r} is also used by {seen[name]}"))
                )
            seen.setdefault(name, source)
        prefix, _ = prefix_owner(item)
        if prefix is not None:
            if prefix in owners:
                reason = f"{prefix!r} is also the prefix of {owners[prefix]}: an upload would match two pipelines"
                problems.append((source, Problem("trigger.prefix", reason)))
            owners.setdefault(prefix, source)
    return problems
