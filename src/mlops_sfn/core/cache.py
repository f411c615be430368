"""Step caching: a stage whose work is unchanged reuses the outputs an earlier run recorded for it.

A stage's key is a digest of what decides its result, and of nothing else:
- its planned block (the SageMaker request and what the stage adds) with what differs per run made
  neutral: the run folder, the execution name, per-run names (`<pipeline>-<tag>-<hash>`);
- the content of every S3 location it reads outside the run folder: each object under it as
  ListObjectsV2 lists it (key, ETag, size), since an S3Prefix input reads the whole prefix;
- the keys of the earlier stages whose outputs (locations in the run folder) or names it uses.
So editing another stage, the description, the notifications, approval or deploy changes no key,
while new data, another image or another hyperparameter changes that stage's key and the keys of
everything that uses its outputs.

The router (`lookup`) asks the run ledger, a DynamoDB table, for each enabled stage's key: a live
record that holds together (`untrusted`) and that AWS confirms (`recorded_run_proof`: its run
succeeded, its outputs are unchanged since) makes the stage reused, exactly as a rerun reuses one
(`reused`, `results`), and the later stages read the recorded run's outputs instead of this run's;
otherwise `cache.<stage>` asks the
state machine to record the stage once it succeeded (and once its checkpoints passed). A failed
stage is never recorded.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from typing import Any

from . import fanout, names, tags
from .fanout import SEGMENT
from .plan import map_strings
from .problems import Error
from .schema import item_schema
from .stage import strings
from .stages import CACHEABLE, PER_RUN_NAME, SERVING, STAGE, STAGES


class Unlisted(Error):
    """A location whose content could not be listed, or a ledger that could not be read: the stage
    runs, uncached, this time."""


@cache
def _expire_after() -> dict[str, Any]:
    """The schema's expire_after: its default and its pattern (read when first needed, not at import)."""
    node: dict[str, Any] = item_schema()["$defs"]["cache"]["properties"]["expire_after"]
    return node


def expire_after(block: dict[str, Any]) -> str:
    """How long a stage's record may be reused: its `expire_after`, or the schema's default."""
    return str(block.get("expire_after", _expire_after()["default"]))


def seconds(duration: str) -> int:
    """`P30D` -> 2592000; ValueError for what the schema's pattern does not accept (weeks, or days and
    hours and minutes)."""
    match = re.match(str(_expire_after()["pattern"]).replace(r"\d+", r"(\d+)"), duration)
    if not match:
        raise ValueError(duration)
    weeks, days, hours, minutes = (int(part or 0) for part in match.groups())
    return ((weeks * 7 + days) * 24 + hours) * 3600 + minutes * 60


def settings(item: dict[str, Any], stage: str) -> dict[str, Any] | None:
    """The stage's `cache` block when caching is on for it."""
    block = item.get("stages", {}).get(stage, {}).get("cache") or {}
    return block if stage in CACHEABLE and block.get("enabled") else None


def enabled(item: dict[str, Any]) -> tuple[str, ...]:
    """The stages an item caches."""
    return tuple(stage for stage in CACHEABLE if settings(item, stage))


@dataclass(frozen=True)
class StageKey:
    stage: str
    key: str | None  # None: this stage cannot be cached in this run (why_not says why)
    reads: dict[str, str]  # location -> content identity
    upstream: tuple[str, ...]  # earlier stages whose outputs or names it uses
    why_not: str | None = None


def made_by(execution_input: dict[str, Any], stage: str) -> dict[str, str]:
    """What a stage makes that later stages may use (as the stage declares it): its locations in the
    run folder, and its names."""
    block, run_folder = execution_input["stages"][stage], execution_input["run_folder"]
    made = STAGE[stage].made(block)
    return {m.value: stage for m in made if not m.location or m.value.startswith(run_folder)}


def _producer(value: str, made: dict[str, str]) -> str | None:
    if value in made:
        return made[value]
    return next(
        (stage for location, stage in made.items() if location.endswith("/") and value.startswith(location)), None
    )


def _neutral(block: Any, execution_input: dict[str, Any]) -> Any:
    run_folder, execution = execution_input["run_folder"], execution_input["execution_name"]

    def neutral(text: str) -> str:
        text = text.replace(run_folder, "{run_folder}/").replace(execution, "{execution}")
        return PER_RUN_NAME.sub(r"-\1-*", text)

    return map_strings(tags.without_tags(block), neutral)  # which run a resource is tagged for keys nothing


def keys(
    execution_input: dict[str, Any], identity: Callable[[str], str], until: str = STAGES[-1]
) -> dict[str, StageKey]:
    """Every running stage's key, in order, up to `until`; `identity(location)` lists a location's
    content (Unlisted)."""
    run_folder = execution_input["run_folder"]
    made: dict[str, str] = {}
    found: dict[str, StageKey] = {}
    for stage in STAGES[: STAGES.index(until) + 1]:
        block = execution_input["stages"].get(stage)
        if not execution_input["run"].get(stage) or block is None:
            continue
        reads: dict[str, str] = {}
        upstream: set[str] = set()
        why_not = None
        written = {m.value for m in STAGE[stage].made(block)}
        for _, value in strings(block):
            producer = _producer(value, made)
            if producer:
                upstream.add(producer)
            elif value.startswith("s3://") and value not in written and not value.startswith(run_folder):
                try:
                    reads[value] = identity(value)
                except Unlisted as error:
                    why_not = f"could not list {value}: {error}"
        for earlier in sorted(upstream):
            if found[earlier].key is None and why_not is None:
                why_not = f"it uses {earlier}'s outputs, which have no key ({found[earlier].why_not})"
        parts = {
            "stage": stage,
            # a segment's stages are keyed apart from any other segment's (fanout.py), even for equal inputs
            **({"segment": execution_input[SEGMENT]} if SEGMENT in execution_input else {}),
            "block": _neutral(block, execution_input),
            # a reused stage skips its checkpoints: what they checked is part of its key
            "gate": STAGE[stage].checked_by(execution_input),
            "reads": reads,
            "upstream": {earlier: found[earlier].key for earlier in sorted(upstream)},
        }
        key = None if why_not else hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
        found[stage] = StageKey(stage, key, reads, tuple(sorted(upstream)), why_not)
        made |= made_by(execution_input, stage)
    return found


def record_of(item: dict[str, Any]) -> dict[str, Any]:
    """A ledger record (DynamoDB's typed item) as {execution, run_folder, name, results, expires_at,
    recorded_at}."""
    return {
        "recorded_at": item.get("recorded_at", {}).get("S"),
        "execution": item["execution"]["S"],
        "run_folder": item["run_folder"]["S"],
        "name": item.get("name", {}).get("S"),
        "results": json.loads(item["results"]["S"]),
        "expires_at": int(item["expires_at"]["N"]),
    }


def lookup(
    execution_input: dict[str, Any],
    item: dict[str, Any],
    identity: Callable[[str], str],
    fetch: Callable[[str], dict[str, Any] | None],
    now: float | None = None,
    proof: Callable[[dict[str, Any], list[str], str | None], str | None] | None = None,
) -> dict[str, StageKey]:
    """Marks in `execution_input` the enabled stages the ledger has a live record of as reused (their
    outputs used by later stages), and asks the state machine to record the others; returns the keys.

    `fetch(key)` is the ledger's record for a key (`record_of`) or None; `proof(record, outputs,
    segment)` says why the recorded run's outputs (S3 locations) may not be read, or None
    (`recorded_run_proof`). A segment's input (fanout.py) is looked up as a run of its own."""
    now = time.time() if now is None else now
    cached = enabled(item)
    if not cached:
        return {}
    found = keys(execution_input, identity, until=cached[-1])  # later stages' keys decide nothing
    moved: dict[str, str] = {}  # this run's location or name -> where the reused stage's run has it
    for stage in STAGES:
        if stage not in execution_input["stages"]:
            continue
        if moved:  # a later stage uses a reused stage's outputs where that run wrote them
            block = execution_input["stages"][stage]
            execution_input["stages"][stage] = map_strings(block, lambda text: _rewritten(text, moved))
        wanted, stage_key = settings(item, stage), found.get(stage)
        if wanted is None or stage_key is None or stage_key.key is None:
            continue
        try:
            record = fetch(stage_key.key)
        except Unlisted as error:  # the run must not wait on its cache: the stage runs, unrecorded
            found[stage] = replace(stage_key, key=None, why_not=f"the run ledger: {error}")
            continue
        # TTL deletes expired items lazily, and reads still return them until then (DynamoDB Developer
        # Guide, "Working with expired items and time to live"): a record past its time is a miss.
        if record is not None and record["expires_at"] <= now:
            record = None
        distrusted = untrusted(record, execution_input) if record is not None else None
        if record is not None and distrusted is None and proof is not None:
            distrusted = proof(record, _recorded_outputs(execution_input, stage, record), execution_input.get(SEGMENT))
        if distrusted:  # recorded anew by this run, over the record it would not trust
            found[stage] = replace(stage_key, why_not=f"the ledger's record is not reused: {distrusted}")
            record = None
        if record is not None:
            execution_input.setdefault("reused", {})[stage] = record["execution"]
            results = execution_input["results"]
            if stage in SERVING:
                results.setdefault("serve", {})[stage] = record["results"]
            else:
                results[stage] = record["results"]
            for value in made_by(execution_input, stage):
                if value.startswith(execution_input["run_folder"]):
                    moved[value] = value.replace(execution_input["run_folder"], record["run_folder"], 1)
                elif record["name"]:
                    moved[value] = record["name"]
        else:
            expires = int(now) + seconds(expire_after(wanted))
            entry: dict[str, Any] = {"key": stage_key.key, "expires_at": expires}
            if found[stage].why_not:  # a record that was not reused: status says why the stage ran
                entry["why"] = str(found[stage].why_not)[:WHY_LIMIT]
            execution_input.setdefault("cache", {})[stage] = entry
    if moved and "publish" in execution_input:  # a segment publishes its model, reused or not
        execution_input["publish"] = map_strings(execution_input["publish"], lambda text: _rewritten(text, moved))
    return found


def untrusted(record: dict[str, Any], execution_input: dict[str, Any]) -> str | None:
    """Why a ledger record may not be reused by this run, or None. Whoever can write the ledger table
    must not make a run read another pipeline's or another bucket's data: a record is reused only if
    it names a run of this pipeline, whose folder in this deployment's bucket it gives (for a segment:
    that segment's folder in that run's), and every S3 location among its results is in that bucket."""
    pipeline, execution = str(execution_input["pipeline"]), str(record.get("execution", ""))
    if not names.is_execution_of(pipeline, execution):
        return f"{execution[:100]!r} is not a run of {pipeline}"
    # s3://<bucket>/runs/<pipeline>/<execution>/ and, for a segment, segments/<id>/ after it
    base, _, inside = str(execution_input["run_folder"]).partition(f"/{execution_input['execution_name']}/")
    if record.get("run_folder") != f"{base}/{execution}/{inside}":
        return f"its run folder is not {base}/{execution}/{inside}"
    bucket = base.split("/runs/", 1)[0] + "/"
    outside = [
        text for _, text in strings(record.get("results")) if text.startswith("s3://") and not text.startswith(bucket)
    ]
    if outside:
        return f"its results name {outside[0][:200]}, outside {bucket}"
    return None


def _recorded_outputs(execution_input: dict[str, Any], stage: str, record: dict[str, Any]) -> list[str]:
    """Where the recorded run wrote what the stage makes: this run's locations in its folder."""
    run_folder = str(execution_input["run_folder"])
    return sorted(
        location.replace(run_folder, str(record["run_folder"]), 1)
        for location in made_by(execution_input, stage)
        if location.startswith(run_folder)
    )


def recorded_run_proof(
    s3: Any, stepfunctions: Any, state_machine_arn: str
) -> Callable[[dict[str, Any], list[str], str | None], str | None]:
    """Why a record's outputs may not be read, or None. A record says which run made a stage's outputs
    and when; that is believed only as far as AWS confirms it: the run is an execution of this state
    machine that SUCCEEDED, the record's time lies within it, and every object under each output
    location is there and was last modified no later than the record was written (S3 sets
    LastModified on every write, to the second: an output replaced since, or added to, is not reused).
    A stage's record is written by its run, so a run that failed later is not reused either; a
    segment's, by its child execution, so the segment must be among those the run's Map wrote as
    SUCCEEDED (a run may succeed with failed segments, fanout.tolerance).
    """

    described: dict[str, dict[str, Any] | str] = {}  # one DescribeExecution per run, however many stages it made
    succeeded: dict[str, set[str] | str] = {}  # a run's segments that succeeded: one read per run

    def segments_of(record: dict[str, Any], segment: str) -> set[str] | str:
        execution = str(record["execution"])
        if execution not in succeeded:
            folder = fanout.run_folder_of(str(record["run_folder"]), segment)
            bucket = folder.removeprefix("s3://").split("/", 1)[0]
            try:
                found = fanout.outcome(s3, {"fanout": fanout.locations(bucket, folder, execution)})
            except s3.exceptions.ClientError as error:
                code = error.response.get("Error", {}).get("Code", error)
                succeeded[execution] = f"{execution}'s segment outcomes could not be read: {code}"
            else:
                succeeded[execution] = set(found["succeeded"]) if found else f"{execution}'s segment outcomes are gone"
        return succeeded[execution]

    def describe(execution: str) -> dict[str, Any] | str:
        if execution not in described:
            try:
                arn = names.execution_arn(state_machine_arn, execution)
                described[execution] = stepfunctions.describe_execution(executionArn=arn)
            except stepfunctions.exceptions.ExecutionDoesNotExist:
                described[execution] = f"{execution} is not a run of this state machine"
            except stepfunctions.exceptions.ClientError as error:
                code = error.response.get("Error", {}).get("Code", error)
                described[execution] = f"{execution} could not be read: {code}"
        return described[execution]

    def proof(record: dict[str, Any], outputs: list[str], segment: str | None = None) -> str | None:
        execution = str(record["execution"])
        run = describe(execution)
        if isinstance(run, str):
            return run
        if run["status"] != "SUCCEEDED":
            return f"{execution} did not succeed ({run['status']})"
        if segment is not None:
            found = segments_of(record, segment)
            if isinstance(found, str):
                return found
            if segment not in found:
                return f"segment {segment} did not succeed in {execution}"
        try:
            recorded = datetime.fromisoformat(str(record.get("recorded_at")).replace("Z", "+00:00"))
        except ValueError:
            return "it holds no time it was recorded"
        if not run["startDate"] <= recorded <= run["stopDate"]:
            return f"its time ({record['recorded_at']}) is not within {execution}"
        for location in outputs:
            bucket, _, prefix = location.removeprefix("s3://").partition("/")
            count = 0
            try:
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                    for entry in page.get("Contents", []):
                        count += 1
                        # S3 lists LastModified cut to the second; the record's time has milliseconds
                        if entry["LastModified"] > recorded.replace(microsecond=0):
                            return f"{entry['Key'][:200]} changed after the stage was recorded"
                        if count > MAX_LISTED:
                            return f"{location} holds more than {MAX_LISTED} objects"
            except s3.exceptions.ClientError as error:
                return f"{location} could not be listed: {error.response.get('Error', {}).get('Code', error)}"
            if count == 0:
                return f"{location} is gone"
        return None

    return proof


def reuse(
    item: dict[str, Any],
    execution_input: dict[str, Any],
    clients: tuple[Any, Any, Any],
    ledger: str,
    state_machine_arn: str,
    segment_inputs: Sequence[dict[str, Any]] = (),
) -> dict[str, StageKey]:
    """What the router does to a planned run before starting it (the local harness too): the stages
    `item` (overrides applied) caches are looked up in the ledger (`lookup`), each record proven
    against the run it names (`recorded_run_proof`), for the run and for each of its segments (before
    their list is written); the run's keys, {} when it caches none. `clients`: S3, DynamoDB and Step
    Functions."""
    s3, dynamodb, stepfunctions = clients
    proof = recorded_run_proof(s3, stepfunctions, state_machine_arn)
    identity, fetch = s3_identity(s3), ledger_fetch(dynamodb, ledger)
    for segment_input in segment_inputs:  # each segment as a run of its own, its later stages included
        lookup(segment_input, item, identity, fetch, proof=proof)
    return lookup(execution_input, item, identity, fetch, proof=proof)


WHY_LIMIT = 500  # characters of why a record was not reused, in the run's input
MAX_LISTED = 100_000  # objects per location: beyond, listing costs more than it saves; the stage runs


def s3_identity(s3: Any) -> Callable[[str], str]:
    """The content identity of an S3 location: a digest of (key, ETag, size) of every object under it."""

    listed: dict[str, str] = {}  # one listing per location, however many stages read it

    def identity(location: str) -> str:
        if location not in listed:
            listed[location] = _listing(location)
        return listed[location]

    def _listing(location: str) -> str:
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        digest, count = hashlib.sha256(), 0
        try:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for entry in page.get("Contents", []):
                    digest.update(f"{entry['Key']}\0{entry['ETag']}\0{entry['Size']}\n".encode())
                    count += 1
                    if count > MAX_LISTED:
                        raise Unlisted(f"more than {MAX_LISTED} objects")
        except s3.exceptions.ClientError as error:
            raise Unlisted(error.response.get("Error", {}).get("Code", str(error))) from None
        if count == 0:
            raise Unlisted("nothing there")  # the job would fail: no point in a key
        return digest.hexdigest()

    return identity


def ledger_fetch(dynamodb: Any, table: str) -> Callable[[str], dict[str, Any] | None]:
    def fetch(key: str) -> dict[str, Any] | None:
        try:
            found = dynamodb.get_item(TableName=table, Key={"cache_key": {"S": key}}, ConsistentRead=True)
        except dynamodb.exceptions.ClientError as error:
            raise Unlisted(error.response.get("Error", {}).get("Code", str(error))) from None
        return record_of(found["Item"]) if "Item" in found else None

    return fetch


def _rewritten(text: str, moved: dict[str, str]) -> str:
    """A location in a moved folder, with the names in it (a job's own subfolder) moved too."""
    for before, after in moved.items():
        if before.startswith("s3://"):
            if text == before or (before.endswith("/") and text.startswith(before)):
                text = after + text[len(before) :]
        else:  # a per-run name, also inside paths: <folder>/<job name>/output/model.tar.gz
            text = text.replace(before, after)
    return text
