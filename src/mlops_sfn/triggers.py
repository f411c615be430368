"""What started a run: every event shape the router accepts, parsed in one place.

Shapes: EventBridge S3 "Object Created"; the earlier framework's {"Records":[{"body": ...}]};
SQS messages carrying either; EventBridge scheduled events whose detail names the pipeline;
a direct invocation {"consumption_pipeline_name": ..., "overrides": {...}}.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

DATASET_DATE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
PIPELINE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class InvalidEvent(ValueError):
    """An event the router cannot turn into a trigger; it starts nothing."""


@dataclass(frozen=True)
class Trigger:
    source: str  # "s3" | "schedule" | "manual" | "records"
    pipeline: str | None = None  # named by the event; for "s3" it is found from the key's prefix
    bucket: str | None = None
    key: str | None = None
    etag: str | None = None
    time: str | None = None  # ISO 8601, from the event
    dataset_date: str | None = None
    run_id: str | None = None
    rule: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    def identity(self) -> str:
        """What makes two deliveries the same trigger. Overrides count: a different manual run differs."""
        if self.source == "s3":
            parts = [self.bucket, self.key, self.etag]
        elif self.source == "schedule":
            parts = [self.rule, self.time]
        elif self.source == "records":
            parts = [self.dataset_date]
        else:
            parts = [self.run_id, self.dataset_date, json.dumps(self.overrides, sort_keys=True)]
        return f"{self.source}:" + "|".join(p or "" for p in parts)

    def day(self) -> str:
        """The dataset date: named by the event, else the day of the event (UTC)."""
        if self.dataset_date:
            return self.dataset_date
        if self.time:
            return parse_time(self.time).strftime("%Y-%m-%d")
        return datetime.now(UTC).strftime("%Y-%m-%d")

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, {})}


def parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise InvalidEvent(f"time: {text!r} is not an ISO 8601 timestamp") from error


def parse_event(event: Any, invocation_id: str | None = None) -> list[Trigger]:
    """The triggers in one Lambda event (SQS and Records batches hold several).

    invocation_id (the Lambda request id, stable across the Lambda's own retries) names a
    manual run that gives no run_id of its own.
    """
    if not isinstance(event, dict):
        raise InvalidEvent(f"expected a JSON object, got {type(event).__name__}")
    if "Records" in event:
        records = event["Records"]
        if not isinstance(records, list) or not records:
            raise InvalidEvent("Records: expected a non-empty list")
        return [_from_record(record, index) for index, record in enumerate(records)]
    return [_from_message(event, invocation_id)]


def _from_record(record: Any, index: int) -> Trigger:
    where = f"Records[{index}]"
    if not isinstance(record, dict) or "body" not in record:
        raise InvalidEvent(f"{where}.body: missing; expected an SQS message or an earlier-framework record")
    body = record["body"]
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except json.JSONDecodeError as error:
            raise InvalidEvent(f"{where}.body: not JSON ({error.msg})") from error
    if not isinstance(body, dict):
        raise InvalidEvent(f"{where}.body: expected a JSON object")
    if record.get("eventSource") == "aws:sqs":
        # An SQS message id is stable across redeliveries of that message; a manual run sent through
        # SQS without its own run_id is named by it.
        return _from_message(body, str(record.get("messageId") or "") or None)
    return _from_records_body(body, where)


def _from_records_body(body: dict[str, Any], where: str) -> Trigger:
    pipeline = _pipeline_name(body.get("consumption_pipeline_name"), f"{where}.body.consumption_pipeline_name")
    return Trigger(
        source="records",
        pipeline=pipeline,
        dataset_date=_dataset_date(body.get("dataset_date"), f"{where}.body.dataset_date"),
    )


def _from_message(event: dict[str, Any], invocation_id: str | None) -> Trigger:
    if event.get("source") == "aws.s3" and event.get("detail-type") == "Object Created":
        return _from_s3(event)
    if event.get("detail-type") == "Scheduled Event":
        return _from_schedule(event)
    if "consumption_pipeline_name" in event:
        if "event_source" in event:  # an earlier-framework body sent on its own
            return _from_records_body(event, "event")
        return _from_manual(event, invocation_id)
    raise InvalidEvent(
        "unrecognised event: expected an S3 'Object Created' event, a 'Scheduled Event', "
        "a Records/SQS batch, or {'consumption_pipeline_name': ...}"
    )


def _from_s3(event: dict[str, Any]) -> Trigger:
    detail = event.get("detail")
    bucket = _get(detail, "bucket", "name")
    key = _get(detail, "object", "key")
    if not isinstance(bucket, str) or not bucket:
        raise InvalidEvent("detail.bucket.name: missing in the S3 event")
    if not isinstance(key, str) or not key:
        raise InvalidEvent("detail.object.key: missing in the S3 event")
    etag = _get(detail, "object", "etag")
    if etag is not None and not isinstance(etag, str):
        raise InvalidEvent("detail.object.etag: expected a string")
    time = event.get("time")
    if time is not None:
        if not isinstance(time, str):
            raise InvalidEvent("time: expected an ISO 8601 timestamp string")
        parse_time(time)
    return Trigger(source="s3", bucket=bucket, key=key, etag=etag, time=time)


def _from_schedule(event: dict[str, Any]) -> Trigger:
    pipeline = _pipeline_name(_get(event, "detail", "consumption_pipeline_name"), "detail.consumption_pipeline_name")
    time = event.get("time")
    if not isinstance(time, str):
        raise InvalidEvent("time: a scheduled event must carry its time")
    parse_time(time)
    resources = event.get("resources")
    rule = resources[0] if isinstance(resources, list) and resources and isinstance(resources[0], str) else None
    return Trigger(source="schedule", pipeline=pipeline, time=time, rule=rule)


def _from_manual(event: dict[str, Any], invocation_id: str | None) -> Trigger:
    pipeline = _pipeline_name(event.get("consumption_pipeline_name"), "consumption_pipeline_name")
    overrides = event.get("overrides", {})
    if not isinstance(overrides, dict):
        raise InvalidEvent("overrides: expected an object holding item fields to change for this run")
    if "consumption_pipeline_name" in overrides:
        raise InvalidEvent("overrides.consumption_pipeline_name: a run cannot rename its pipeline")
    run_id = event.get("run_id", invocation_id)
    if run_id is not None and (not isinstance(run_id, str) or not PIPELINE_NAME.fullmatch(run_id)):
        raise InvalidEvent("run_id: expected 1-64 characters of letters, digits, '_' and '-'")
    return Trigger(
        source="manual",
        pipeline=pipeline,
        run_id=run_id,
        dataset_date=_dataset_date(event.get("dataset_date"), "dataset_date"),
        overrides=overrides,
    )


def _pipeline_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not PIPELINE_NAME.fullmatch(value):
        raise InvalidEvent(f"{where}: expected a pipeline name of 1-64 letters, digits, '_' and '-', got {value!r}")
    return value


def _dataset_date(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int) or not DATASET_DATE.fullmatch(str(value)):
        raise InvalidEvent(f"{where}: expected 1-64 characters of letters, digits and _.- (e.g. 2024-05-31)")
    return str(value)


def _get(node: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def completes_upload(trigger_config: dict[str, Any], key: str) -> bool:
    """Whether an object key is the one that marks an upload under this item's prefix as complete."""
    prefix = trigger_config.get("prefix")
    complete_on = trigger_config.get("complete_on", {})
    if not prefix or not key.startswith(prefix):
        return False
    if "suffix" in complete_on:
        return bool(key.endswith(complete_on["suffix"]))
    if "manifest" in complete_on:
        return bool(key.rsplit("/", 1)[-1] == complete_on["manifest"])
    return False
