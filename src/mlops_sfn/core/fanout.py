"""Fan-out: some of an item's stages run once per segment (one model per region, store or product
line), side by side in one Step Functions Distributed Map.

The item's `fanout` block names the stages (`stages`), the segments (`segments`: objects with an
`id` and the values their placeholders read), how many run at once (`max_concurrency`) and how many
may fail before the run fails (`tolerated_failure_percentage`, `tolerated_failure_count`).

plan.py plans each segment's stages as a run of their own: there `{execution}` is
`<execution>/segments/<id>`, so each segment has its own SageMaker names and its own folder, and
`{segment}` / `{segment.<field>}` are the segment's values. Before the run starts, its starter (the
router, `local run`, `rerun`) reads the upload's list when a file of it holds the segments
(`read_segments`) and writes the segments' inputs to the run's folder (`write`); the Map reads them
from there (ItemReader), so the run's own input never carries the list and stays small whatever the
number of segments. Each segment's outcome goes to the run's folder too (ResultWriter): the run's
state keeps only where; `outcome` reads it back for `status`, `handler` for the run's notification.

AWS's Distributed Map, as this module uses it ("Using Map state in Distributed mode", Step Functions
developer guide): a child workflow execution per item, at most MaxConcurrency at once; a failed child
fails the Map only beyond the tolerated failures, with States.ExceedToleratedFailureThreshold; the
results written as manifest.json with SUCCEEDED_n.json / FAILED_n.json / PENDING_n.json files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import schema
from .problems import InvalidItem, Problem
from .sagemaker_api import failure_reason
from .stage import Item, runs

if TYPE_CHECKING:
    from .stage import Stage

# The most segments one run plans (each is a child execution and several SageMaker jobs; the router
# plans them all within its time limit): the schema's bound, read from there.
MAX_SEGMENTS: int = schema.item_schema()["$defs"]["fanout"]["properties"]["segments"]["maxItems"]
# Segments running at once when the item does not say. Each runs its own SageMaker jobs, and
# SageMaker's per-instance-type quotas for concurrent training and processing instances are low by
# default (often under 20): raise it with `max_concurrency` once the quotas allow.
DEFAULT_MAX_CONCURRENCY = 10
# Where a run's segments are, inside its folder, each run's under its own name (a rerun of failed
# segments works in the folder of the run it reruns): <folder>/segments/items/<execution>.json, and
# the Map Run's results under <folder>/segments/results/<execution>/.
SEGMENTS_FOLDER = "segments/items"
RESULTS_FOLDER = "segments/results"
# Where each segment that succeeded puts its model, <folder>/segments/models/<id>.tar.gz, when the run
# serves them (`serves`): the prefix of the run's multi-model endpoint.
MODELS_FOLDER = "segments/models"
# Ids a segment may not have: its folder, segments/<id>/, would be one of these.
RESERVED_IDS = {
    SEGMENTS_FOLDER.split("/")[1]: "segment list",
    RESULTS_FOLDER.split("/")[1]: "segment outcomes",
    MODELS_FOLDER.split("/")[1]: "served models",
}
# The stages that may run once after the segments: a model of what they made, and the endpoint that
# serves it (a multi-model endpoint: one model per segment behind one endpoint).
SERVED_AFTER = ("create_model", "deploy")
STAGE_NAME = "segments"  # the failed stage a run names when the Map itself failed
# A segment's own values, for placeholders: {segment} is its id, {segment.<field>} any other field.
SEGMENT = "segment"


def stages_of(item: Item) -> tuple[str, ...]:
    """The stages the item runs once per segment, in pipeline order; () without fan-out."""
    from .stages import STAGES

    named = item.get("fanout", {}).get("stages", [])
    return tuple(stage for stage in STAGES if stage in named)


def serves(item: Item) -> bool:
    """Whether the run serves its segments' models once they ran: a fanned-out item whose deploy runs
    once, after them (fanout.rules checked the rest)."""
    return "fanout" in item and runs(item, "deploy") and "deploy" not in item["fanout"].get("stages", [])


def models_prefix(run_folder: str) -> str:
    """The S3 prefix the run's multi-model endpoint loads its models from (CreateModel's ModelDataUrl in
    MultiModel mode: SageMaker adds the TargetModel of each invocation to it)."""
    return f"{run_folder}{MODELS_FOLDER}/"


def target_model(segment_id: str) -> str:
    """What InvokeEndpoint's TargetModel names to reach a segment's model on the run's endpoint."""
    return f"{segment_id}.tar.gz"


def segments(item: Item) -> list[dict[str, Any]]:
    """The segments the item lists (none yet when its upload's file lists them: `read_segments`)."""
    listed: list[dict[str, Any]] = item.get("fanout", {}).get("segments", [])
    return listed


# What a segments file may weigh: 1,000 segments with a few values each take well under this.
MAX_FILE_BYTES = 4 * 1024 * 1024
# A placeholder segment: the stages of an item whose segments are in its upload are checked with it.
SAMPLE = {"id": "sample"}


def in_upload(item: Item) -> bool:
    """Whether the item's segments are listed by a file of each upload (`segments_file`)."""
    return "segments_file" in item.get("fanout", {})


def read_segments(s3: Any, bucket: str, upload_prefix: str, item: Item) -> Item:
    """The item with the segments its upload's file lists (`fanout.segments_file`, relative to the
    upload's prefix): a CSV row each (its header names an `id` column), or a JSON Lines line each.
    InvalidItem naming the file, and the line, for what cannot be read; the segments themselves are
    checked as listed ones are (plan.py)."""
    name = item["fanout"]["segments_file"]
    where = f"s3://{bucket}/{upload_prefix}{name}"

    def refused(why: str) -> InvalidItem:
        return InvalidItem([Problem("fanout.segments_file", f"{where}: {why}")])

    try:
        body = s3.get_object(Bucket=bucket, Key=upload_prefix + name)["Body"].read(MAX_FILE_BYTES + 1)
    except s3.exceptions.NoSuchKey:
        raise refused("not in the upload: upload it with the run's files, or list fanout.segments") from None
    if len(body) > MAX_FILE_BYTES:
        raise refused(f"more than {MAX_FILE_BYTES} bytes: list at most {MAX_SEGMENTS} segments, a few values each")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise refused("not UTF-8 text") from None
    rows = _csv_rows(text, refused) if name.endswith(".csv") else _jsonl_rows(text, refused)
    if not rows:
        raise refused("lists no segment")
    if len(rows) > MAX_SEGMENTS:
        raise refused(f"lists {len(rows)} segments; at most {MAX_SEGMENTS} run in one run")
    block = {key: value for key, value in item["fanout"].items() if key != "segments_file"}
    return {**item, "fanout": block | {"segments": rows}}


def _csv_rows(text: str, refused: Any) -> list[dict[str, Any]]:
    import csv
    import io

    reader = csv.DictReader(io.StringIO(text))
    if "id" not in (reader.fieldnames or []):
        raise refused(f"its header row ({','.join(reader.fieldnames or [])}) names no id column")
    rows = []
    for row in reader:
        if None in row or None in row.values():
            raise refused(f"line {reader.line_num} has not as many fields as the header row")
        rows.append(dict(row))
    return rows


def _jsonl_rows(text: str, refused: Any) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise refused(f"line {number} is not JSON ({error.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            raise refused(f'line {number} is not an object with a string "id"')
        rows.append(row)
    return rows


def segment_folder(execution: str, segment_id: str) -> str:
    """What `{execution}` is in a segment's stages: its names hash it, its folder is under the run's."""
    return f"{execution}/segments/{segment_id}"


def run_folder_of(folder: str, segment_id: str) -> str:
    """The run's folder, from one of its segments' folders (s3://<bucket>/runs/<p>/<e>/segments/<id>/)."""
    return folder.removesuffix(f"segments/{segment_id}/")


def values(segment: dict[str, Any]) -> dict[str, str]:
    """A segment's placeholder values: {segment} and {segment.<field>}."""
    found = {SEGMENT: str(segment["id"])}
    found |= {f"{SEGMENT}.{key}": _text(value) for key, value in segment.items() if key != "id"}
    return found


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


def config(item: Item, bucket: str, run_folder: str, execution: str) -> dict[str, Any]:
    """The run's `fanout` input: where the Map reads the segments and writes their outcomes, and its
    bounds (Step Functions reads MaxConcurrency and the thresholds from here: ...Path fields)."""
    block = item["fanout"]
    return {
        "stages": list(stages_of(item)),
        "count": len(segments(item)) if not in_upload(item) else None,  # None: read when the run starts
        **locations(bucket, run_folder, execution),
        "max_concurrency": block.get("max_concurrency", DEFAULT_MAX_CONCURRENCY),
        **tolerance(block),
        # the state machine runs the segments before create_model when the run serves their models
        **({"models": models_prefix(run_folder)} if serves(item) else {}),
    }


def locations(bucket: str, run_folder: str, execution: str) -> dict[str, Any]:
    """Where execution `execution`, working in `run_folder`, reads its segments and writes their outcomes."""
    folder = run_folder.removeprefix(f"s3://{bucket}/")
    return {
        "items": {"Bucket": bucket, "Key": f"{folder}{SEGMENTS_FOLDER}/{execution}.json"},
        "results": {"Bucket": bucket, "Prefix": f"{folder}{RESULTS_FOLDER}/{execution}"},
    }


# --- Segments at once within SageMaker's quotas. SageMaker bounds the instances of each type its
# jobs hold at once, one quota per instance type and job kind, named in Service Quotas (service code
# "sagemaker") "<instance type> for training job usage" (for processing, spot training, transform
# job usage); a job beyond it fails with ResourceLimitExceeded ("The account-level service limit
# 'ml.m5.large for processing job usage' is 0 Instances"). Service Quotas' ListServiceQuotas lists
# the applied values (API reference: "If the applied quota value is not available for a quota, the
# quota is not retrieved"): a quota it does not list, or a deployment that cannot read them, leaves
# the item's max_concurrency as it is.
QUOTAS_SERVICE_CODE = "sagemaker"


def instances(segment_inputs: Sequence[dict[str, Any]]) -> dict[str, int]:
    """{quota name: the most instances one segment holds under it at once}: a segment's stages run
    one after another, so its largest job counts (a tuning job's: its parallel training jobs)."""
    needs: dict[str, int] = {}
    for segment_input in segment_inputs:
        for block in segment_input["stages"].values():
            for quota, count in _usage(block.get("request", {})):
                needs[quota] = max(needs.get(quota, 0), count)
    return needs


def _usage(request: dict[str, Any]) -> list[tuple[str, int]]:
    cluster = request.get("ProcessingResources", {}).get("ClusterConfig", {})
    if "InstanceType" in cluster:
        return [(f"{cluster['InstanceType']} for processing job usage", int(cluster.get("InstanceCount", 1)))]
    parallel = 1
    if "TrainingJobDefinition" in request:  # tuning: its training jobs, MaxParallelTrainingJobs at once
        limits = request.get("HyperParameterTuningJobConfig", {}).get("ResourceLimits", {})
        parallel, request = int(limits.get("MaxParallelTrainingJobs", 1)), request["TrainingJobDefinition"]
    resources = request.get("ResourceConfig", {})
    if "InstanceType" not in resources:  # instance groups, or no job: not bounded here
        return []
    kind = "spot training" if request.get("EnableManagedSpotTraining") else "training"
    return [(f"{resources['InstanceType']} for {kind} job usage", int(resources.get("InstanceCount", 1)) * parallel)]


def read_quotas(client: Any) -> dict[str, float] | None:
    """SageMaker's applied quotas by name (ListServiceQuotas, every page), or None when they cannot be
    read (no permission, or Service Quotas unreachable): the run then keeps the item's bound."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        pages = client.get_paginator("list_service_quotas").paginate(ServiceCode=QUOTAS_SERVICE_CODE)
        return {quota["QuotaName"]: float(quota["Value"]) for page in pages for quota in page.get("Quotas", [])}
    except (ClientError, BotoCoreError):
        return None


def within_quotas(
    execution_input: dict[str, Any], segment_inputs: Sequence[dict[str, Any]], quotas: dict[str, float] | None
) -> str | None:
    """Lowers the run's max_concurrency to what SageMaker's quotas let its segments' jobs hold at once
    (each quota's value over what one segment holds under it), and says why; None when nothing was
    lowered. InvalidItem when a quota lets no segment run (its jobs would all fail)."""
    config = execution_input.get("fanout")
    if config is None or not quotas:
        return None
    needs = instances(segment_inputs)
    allowed = {quota: int(quotas[quota] // need) for quota, need in needs.items() if quota in quotas}
    if not allowed:
        return None
    tightest = min(allowed, key=lambda quota: allowed[quota])
    if allowed[tightest] < 1:
        raise InvalidItem(
            [
                Problem(
                    "fanout.stages",
                    f"SageMaker's quota {tightest!r} is {quotas[tightest]:g} instances in this account and"
                    f" region, and each segment's job needs {needs[tightest]}: every segment would fail with"
                    " ResourceLimitExceeded. Request an increase (Service Quotas, SageMaker), or use another"
                    " instance type",
                )
            ]
        )
    if allowed[tightest] >= config["max_concurrency"]:
        return None
    wanted, config["max_concurrency"] = config["max_concurrency"], allowed[tightest]
    return (
        f"max_concurrency {wanted} lowered to {allowed[tightest]}: SageMaker's quota {tightest!r} is"
        f" {quotas[tightest]:g} instances and each segment holds {needs[tightest]}"
    )


def only(item: Item, ids: list[str]) -> Item:
    """The item with only the segments `ids` (a rerun of those); KeyError naming an id it lacks."""
    listed = {segment["id"]: segment for segment in segments(item)}
    missing = [identity for identity in ids if identity not in listed]
    if missing:
        raise KeyError(", ".join(missing))
    return {**item, "fanout": {**item["fanout"], "segments": [listed[identity] for identity in ids]}}


def tolerance(block: dict[str, Any]) -> dict[str, Any]:
    """The Map's thresholds. The definition always sets both (its ...Path fields), and the Map fails
    beyond either, so the one the item leaves out must not bound: 100 % or every segment. Neither
    set: no failure is tolerated (AWS's default, 0)."""
    percentage, count = block.get("tolerated_failure_percentage"), block.get("tolerated_failure_count")
    if percentage is None and count is None:
        return {"tolerated_failure_percentage": 0, "tolerated_failure_count": 0}
    return {
        "tolerated_failure_percentage": 100 if percentage is None else percentage,
        "tolerated_failure_count": MAX_SEGMENTS if count is None else count,  # (no more segments than that)
    }


def rules(item: Item, catalog: tuple[Stage, ...]) -> list[Problem]:
    """What cannot combine with fan-out (the schema checked the block's shape)."""
    if "fanout" not in item:
        return []
    per_segment = stages_of(item)
    named = item["fanout"]["stages"]
    problems = []
    if ("segments" in item["fanout"]) == in_upload(item):
        problems.append(
            Problem("fanout", "needs exactly one of segments (listed here) or segments_file (a file of each upload)")
        )
    for index, stage in enumerate(named):
        if not next(s for s in catalog if s.name == stage).per_segment:
            problems.append(Problem(f"fanout.stages[{index}]", _not_per_segment(stage)))
        elif not runs(item, stage):
            problems.append(
                Problem(
                    f"fanout.stages[{index}]", f"{stage} does not run: set stages.{stage}.run to true, or remove it"
                )
            )
    if per_segment:
        first = _position(catalog, per_segment[0])
        for stage in catalog[first:]:
            if stage.name in per_segment or not runs(item, stage.name):
                continue
            if serves(item) and stage.name in SERVED_AFTER:
                continue  # checked by _serving_rules
            if serves(item) and stage.watches:
                problems.append(Problem(f"stages.{stage.name}", f"{_MONITOR}: switch it off (run: false)"))
                continue
            joins = " Add it to fanout.stages, or" if stage.per_segment else " It cannot run per segment:"
            problems.append(
                Problem(
                    f"stages.{stage.name}",
                    f"runs once, after {per_segment[0]}, which runs per segment, so it would need what each"
                    f" segment made.{joins} switch it off (run: false)",
                )
            )
    if per_segment and serves(item):
        problems += _serving_rules(item, per_segment)
    seen: dict[str, int] = {}
    for index, segment in enumerate(segments(item)):
        identity = segment["id"]
        if identity in seen:
            problems.append(
                Problem(
                    f"fanout.segments[{index}].id",
                    f"repeats segment {identity!r} (fanout.segments[{seen[identity]}]): each segment's names and"
                    " folder come from its id, so ids must be unique",
                )
            )
        seen.setdefault(identity, index)
        if identity in RESERVED_IDS:
            problems.append(
                Problem(
                    f"fanout.segments[{index}].id",
                    f"{identity!r} names the folder of the run's {RESERVED_IDS[identity]}"
                    f" (segments/{identity}/), next to the segments' own folders: name the segment otherwise",
                )
            )
        for field, value in segment.items():
            if field != "id" and not isinstance(value, str | int | float | bool):
                problems.append(
                    Problem(
                        f"fanout.segments[{index}].{field}",
                        f"must be a string, number or boolean: it fills {{segment.{field}}} in text",
                    )
                )
    return problems


def _serving_rules(item: Item, per_segment: tuple[str, ...]) -> list[Problem]:
    """What a run that serves its segments' models from one multi-model endpoint needs: CreateModel
    with its container in MultiModel mode and the segments' models under its ModelDataUrl, an S3
    prefix ("Create a Multi-Model Endpoint", SageMaker developer guide), then deploy of that model."""
    stages, problems = item["stages"], []
    sources = [stage for stage in ("training", "tuning") if stage in per_segment]
    if not sources:
        problems.append(
            Problem(
                "fanout.stages",
                "deploy runs once after the segments and serves the model each segment trained: add training"
                " (or tuning) to fanout.stages, or switch deploy off",
            )
        )
    if "create_model" in per_segment or not runs(item, "create_model"):
        problems.append(
            Problem(
                "stages.create_model",
                "deploy after the segments serves one multi-model model made of every segment's model: run"
                " create_model once (run: true, not in fanout.stages); batch_transform per segment needs"
                " create_model per segment, so a run does one or the other",
            )
        )
    if "Containers" in stages.get("create_model", {}).get("request", {}):
        problems.append(
            Problem(
                "stages.create_model.request.Containers",
                "a multi-model endpoint's model has one container (PrimaryContainer, in MultiModel mode):"
                " use PrimaryContainer",
            )
        )
    if stages.get("create_model", {}).get("model_data_url"):
        problems.append(
            Problem(
                "stages.create_model.model_data_url",
                "the run serves the segments' models (their prefix is the model data): remove model_data_url",
            )
        )
    if "model_name" in stages.get("deploy", {}):
        problems.append(
            Problem(
                "stages.deploy.model_name",
                "deploy after the segments serves the model create_model makes of them: remove model_name",
            )
        )
    return problems


# "Model Monitor currently supports only endpoints that host a single model and does not support
# monitoring multi-model endpoints" (SageMaker developer guide, "Data and model quality monitoring").
_MONITOR = "SageMaker's Model Monitor does not monitor multi-model endpoints, which serve a fanned-out run's models"


def _position(catalog: tuple[Stage, ...], stage: str) -> int:
    return [s.name for s in catalog].index(stage)


def _not_per_segment(stage: str) -> str:
    from .stages import STAGE

    if stage == "approval":
        why = "a person would answer one request per segment"
    elif stage == "deploy":
        why = (
            "one endpoint per segment is not built: run deploy once, after the segments (not in fanout.stages),"
            " and it serves every segment's model from one multi-model endpoint"
        )
    elif STAGE[stage].watches:
        why = _MONITOR
    else:
        why = "it cannot run per segment"
    return f"{stage} cannot run per segment ({why}): remove it from fanout.stages"


def placeholder_problem(item: Item, path: str, name: str) -> str | None:
    """Why `{name}` (segment or segment.<field>) may not appear at `path`, or None when it may."""
    per_segment = stages_of(item)
    if not any(path.startswith(f"stages.{stage}.") for stage in per_segment):
        return f"{{{name}}} is a segment's value: use it in the blocks of the stages fanout.stages names" + (
            f" ({', '.join(per_segment)})" if per_segment else " (the item has no fanout)"
        )
    field = name.partition(".")[2]
    missing = next((s["id"] for s in segments(item) if field and field not in s), None)
    if missing is not None:
        return f"segment {missing!r} has no field {field!r}: give every segment in fanout.segments a {field}"
    return None


def write(s3: Any, execution_input: dict[str, Any], segment_inputs: Sequence[dict[str, Any]]) -> None:
    """Put the segments' inputs where the run's Map reads them (a JSON array, as ItemReader's
    InputType JSON reads it); a run without fan-out writes nothing."""
    where = execution_input.get("fanout", {}).get("items")
    if where is None:
        return
    body = json.dumps(list(segment_inputs), separators=(",", ":")).encode("utf-8")
    s3.put_object(Bucket=where["Bucket"], Key=where["Key"], Body=body, ContentType="application/json")


def planned_segments(s3: Any, execution_input: dict[str, Any]) -> list[dict[str, Any]]:
    """The segments' inputs the run's Map read (what `write` put); [] without fan-out or when gone."""
    where = execution_input.get("fanout", {}).get("items")
    if where is None:
        return []
    try:
        listed = json.loads(s3.get_object(Bucket=where["Bucket"], Key=where["Key"])["Body"].read())
    except s3.exceptions.ClientError:
        return []
    return [segment for segment in listed if isinstance(segment, dict)] if isinstance(listed, list) else []


def outcome(s3: Any, execution_input: dict[str, Any]) -> dict[str, Any] | None:
    """What became of a run's segments, from what its Map wrote (summary); None for a run without
    fan-out, or whose Map wrote nothing (it never started, or failed before its children ended)."""
    results = execution_input.get("fanout", {}).get("results")
    if results is None:
        return None
    listed = s3.list_objects_v2(Bucket=results["Bucket"], Prefix=results["Prefix"] + "/").get("Contents", [])
    manifests = sorted((o for o in listed if o["Key"].endswith("/manifest.json")), key=lambda o: o["LastModified"])
    if not manifests:
        return None
    return summary(s3, {"Bucket": results["Bucket"], "Key": manifests[-1]["Key"]})


def summary(s3: Any, written: dict[str, Any]) -> dict[str, Any]:
    """What the Map's ResultWriter wrote (its ResultWriterDetails: Bucket, Key of manifest.json), as
    `status` reports it: {total, succeeded: [ids], failed: [{segment, stage, error, cause, execution}],
    not_run: [ids], reused: {id: {stage: the run whose record it reused}}} (step caching, per segment)."""
    bucket = written["Bucket"]
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=written["Key"])["Body"].read())
    found: dict[str, list[Any]] = {"SUCCEEDED": [], "FAILED": [], "PENDING": []}
    reused: dict[str, dict[str, str]] = {}
    for status, files in manifest.get("ResultFiles", {}).items():
        for file in files:
            for child in json.loads(s3.get_object(Bucket=bucket, Key=file["Key"])["Body"].read()):
                segment = json.loads(child.get("Input") or "{}").get(SEGMENT, "?")
                stages_reused = json.loads(child.get("Output") or "{}").get("reused") if status == "SUCCEEDED" else None
                if stages_reused:
                    reused[segment] = stages_reused
                if status != "FAILED":
                    found.setdefault(status, []).append(segment)
                    continue
                # A segment's failure names its stage first: "training.States.TaskFailed".
                stage, _, error = str(child.get("Error") or "").partition(".")
                cause = failure_reason(str(child.get("Cause") or ""), limit=500)  # a job's: its FailureReason
                failure = {"segment": segment, "stage": stage, "error": error, "cause": cause}
                # its child execution: `aws stepfunctions describe-execution --execution-arn` shows it
                found["FAILED"].append(failure | {"execution": str(child.get("ExecutionArn", ""))})
    return {
        "total": sum(len(listed) for listed in found.values()),
        "succeeded": sorted(found["SUCCEEDED"]),
        "failed": sorted(found["FAILED"], key=lambda failure: str(failure["segment"])),
        "not_run": sorted(found["PENDING"]),
        "reused": dict(sorted(reused.items())),
    }


# --- The role's permissions for the Map ("IAM policies for using Distributed Map states", Step
# Functions developer guide): starting child executions of its own state machine and following and
# stopping them; reading the items (ItemReader: s3:GetObject); writing the results (ResultWriter:
# PutObject, GetObject, ListMultipartUploadParts, AbortMultipartUpload). Keyed as policy.py keys a
# Task's: by what the Map calls.
_STATES = "arn:${partition}:states:${region}:${account_id}"
_RUNS = "arn:${partition}:s3:::${bucket}/runs/*"


def permissions() -> dict[str, tuple[dict[str, Any], ...]]:
    return {
        "states:startExecution": (
            {
                "Sid": "StartSegments",
                "Actions": ["states:StartExecution"],
                "Resources": [f"{_STATES}:stateMachine:${{state_machine_name}}"],
            },
            {
                "Sid": "FollowSegments",
                "Actions": ["states:DescribeExecution", "states:StopExecution"],
                # a child execution's ARN: execution:<state machine>/<Map label>:<id>
                "Resources": [f"{_STATES}:execution:${{state_machine_name}}/*"],
            },
        ),
        "s3:getObject": (
            {"Sid": "ReadSegments", "Actions": ["s3:GetObject"], "Resources": [f"{_RUNS}/{SEGMENTS_FOLDER}/*"]},
        ),
        "s3:putObject": (
            {
                "Sid": "WriteSegmentResults",
                "Actions": ["s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"],
                "Resources": [f"{_RUNS}/{RESULTS_FOLDER}/*"],
            },
        ),
    }


def map_resources(state: dict[str, Any]) -> list[str]:
    """What a Distributed Map state calls, as `permissions` keys it; [] for any other state."""
    if (
        state.get("Type") != "Map"
        or state.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode") != "DISTRIBUTED"
    ):
        return []
    found = ["states:startExecution"]
    for part in ("ItemReader", "ResultWriter"):
        if part in state:
            found.append(state[part]["Resource"].removeprefix("arn:aws:states:::"))
    return found


def made_up_segments(item: Item, count: int) -> Item:
    """The item with `count` segments made up from its first (its fields, a new id each; an item whose
    uploads list its segments: "0" for each field its placeholders read): `local run --segments N`
    tries a run at that scale."""
    if segments(item):
        first = {key: value for key, value in segments(item)[0].items() if key != "id"}
    else:
        used = re.findall(r"\{segment\.([A-Za-z0-9_-]+)\}", json.dumps(item))
        first = dict.fromkeys(sorted(set(used)), "0")
    made = [{"id": f"segment-{index:05d}", **first} for index in range(1, count + 1)]
    block = {key: value for key, value in item["fanout"].items() if key != "segments_file"}
    return {**item, "fanout": block | {"segments": made}}


def segments_line(outcome: dict[str, Any], shown: int = 10) -> str:
    """A summary's one line: "segments: 8 in all, 7 succeeded, 1 failed: north (training: ...)"."""
    failed = outcome["failed"]
    line = f"segments: {outcome['total']} in all, {len(outcome['succeeded'])} succeeded, {len(failed)} failed"
    if outcome.get("not_run"):
        line += f", {len(outcome['not_run'])} not run"
    if outcome.get("reused"):  # step caching: a segment's stages reused from an earlier run's record
        line += f", {len(outcome['reused'])} reused an earlier run's outputs"
    if failed:
        named = [f"{f['segment']} ({f['stage'] or 'run'}: {f['error']}: {f['cause'][:120]})" for f in failed[:shown]]
        line += ": " + "; ".join(named) + (f"; and {len(failed) - shown} more" if len(failed) > shown else "")
    return line


def preview(config: dict[str, Any], ids: list[str], shown: int = 8, file: str | None = None) -> str:
    """The plan's line on a run's segments (its `fanout` input and the segments' ids, or the file of
    the upload that will list them)."""
    named = ", ".join(ids[:shown]) + (f", ... ({len(ids)} in all)" if len(ids) > shown else "")
    listed = f"{config['count']} ({named})" if file is None else f"read from the upload's {file} when the run starts"
    bounds = []
    if config["tolerated_failure_count"] < (config["count"] or MAX_SEGMENTS):
        bounds.append(f"{config['tolerated_failure_count']} may fail")
    if config["tolerated_failure_percentage"] < 100:
        bounds.append(f"{config['tolerated_failure_percentage']} % may fail")
    return (
        f"segments:   {listed}, {config['max_concurrency']} at once (fewer if SageMaker's quotas allow fewer),"
        f" {' and '.join(bounds) if bounds else 'any may fail'}; the run fails beyond that"
    )


# The failures a run's notification lists by name (the rest are counted; `status` lists them all).
LISTED_FAILURES = 20


def handler(event: dict[str, Any], context: Any, s3: Any = None) -> dict[str, Any]:
    """The segments function's handler (lambdas/segments/handler.py exports this one), invoked once
    the Map ended, whether it succeeded or failed. Event: {"results": {Bucket, Prefix}} (the run's
    `fanout.results`); returns {total, succeeded, failed, failures: [{segment, stage, error}], message},
    bounded whatever the number of segments: what the run's notification says of its segments."""
    if s3 is None:
        import boto3

        s3 = boto3.client("s3")
    found = outcome(s3, {"fanout": {"results": event["results"]}})
    if found is None:
        return {"total": 0, "succeeded": 0, "failed": 0, "failures": [], "message": "no segment outcome was written"}
    failed = found["failed"]
    return {
        "total": found["total"],
        "succeeded": len(found["succeeded"]),
        "failed": len(failed),
        "failures": [
            {key: failure[key] for key in ("segment", "stage", "error")} for failure in failed[:LISTED_FAILURES]
        ],
        "message": segments_line(found),
    }
