"""What started a run: every event shape the router accepts, parsed in one place.

Shapes: EventBridge S3 "Object Created"; the earlier framework's {"Records":[{"body": ...}]};
SQS messages carrying either; EventBridge scheduled events whose detail names the pipeline;
CloudWatch "Alarm State Change" events of a drift alarm (the pipeline is in the alarm's name);
SageMaker "Model Package State Change" events approving a package (the item serving its group is
found by the router); a direct invocation {"consumption_pipeline_name": ..., "overrides": {...}}.

Values are normalised here, once, so nothing downstream sees how a sender wrote them: S3 keys are
URL-decoded, and an ISO 8601 timestamp given as a dataset date becomes its (UTC) date.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, date, datetime
from typing import Any, ClassVar
from urllib.parse import unquote_plus

from .bounds import EVENT_DEPTH, InputRefused, check_nesting
from .problems import Error

PIPELINE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Characters S3 leaves as they are when it URL-encodes a key in an event (form encoding: letters, digits,
# '-', '_', '.'; '/' is not encoded). A trigger prefix or marker made of these matches the key whichever
# way AWS writes it, including the EventBridge rule's prefix filter, which sees the encoded key.
KEY_SAFE = re.compile(r"[A-Za-z0-9/._-]*")
ECHO_LIMIT = 80  # characters of an event's value quoted back in a reason or a log line


class InvalidEvent(Error, ValueError):
    """An event the router cannot turn into a trigger; it starts nothing."""


@dataclass(frozen=True)
class Trigger:
    """What started a run. One subclass per source, each with its identity (what makes two deliveries
    the same trigger, so the same run) and its check of an item (`mismatch`)."""

    source: ClassVar[str]
    pipeline: str | None = None  # named by the event; an upload's is found from its key's prefix
    time: str | None = None  # ISO 8601, from the event
    dataset_date: str | None = None  # YYYY-MM-DD
    # The upload the run reads: an upload's own object; for a scheduled or drift run, the newest
    # verified upload under the item's prefix (the router sets it).
    bucket: str | None = None
    key: str | None = None
    etag: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    def identity(self) -> str:
        """What makes two deliveries the same trigger: "<source>:<its parts>"."""
        return f"{self.source}:" + "|".join(part or "" for part in self.identifying())

    def identifying(self) -> list[str | None]:
        raise NotImplementedError

    def mismatch(self, item: dict[str, Any]) -> str | None:
        """Why this trigger does not start this item's pipeline, or None when it does. Tolerates a
        malformed item: whatever cannot be read here is reported by plan_execution's checks."""
        name = item.get("consumption_pipeline_name")
        return None if self.pipeline == name else f"the event names pipeline {self.pipeline!r}, not {name!r}"

    def day(self) -> str:
        """The dataset date: named by the event, else the day of the event (UTC)."""
        if self.dataset_date:
            return self.dataset_date
        if self.time:
            return parse_time(self.time).strftime("%Y-%m-%d")
        return datetime.now(UTC).strftime("%Y-%m-%d")

    def as_dict(self) -> dict[str, Any]:
        """As the execution input holds it: its source and the fields it has, in one order for every source."""
        found = {"source": self.source} | {
            k: v for k, v in asdict(self).items() if v is not None and v != {} and v is not False
        }
        return {name: found[name] for name in _ORDER if name in found}

    @staticmethod
    def from_dict(planned: dict[str, Any]) -> Trigger:
        """The trigger an execution input holds (`as_dict`), without what the router added to it (a
        drift run's `violations`)."""
        kind = SOURCES[planned["source"]]
        known = {f.name for f in fields(kind)}
        return kind(**{key: value for key, value in planned.items() if key in known})


@dataclass(frozen=True)
class Upload(Trigger):
    """An object created under an item's trigger prefix (EventBridge's S3 "Object Created")."""

    source: ClassVar[str] = "s3"

    def identifying(self) -> list[str | None]:
        return [self.bucket, self.key, self.etag]

    def mismatch(self, item: dict[str, Any]) -> str | None:
        name = item.get("consumption_pipeline_name")
        prefix = trigger_prefix(item)
        key = self.key or ""
        if prefix is None:
            return f"pipeline {name!r} has no trigger.prefix, so uploads do not start it"
        if not key.startswith(prefix):
            return f"{key!r} is not under the trigger prefix {prefix!r}"
        config = item["trigger"]
        complete_on = config.get("complete_on")
        readable = isinstance(complete_on, dict) and all(isinstance(v, str) for v in complete_on.values())
        if readable and not completes_upload(config, key):
            return f"{key!r} is part of an upload; only the object named by trigger.complete_on starts a run"
        return None


@dataclass(frozen=True)
class Scheduled(Trigger):
    """A schedule rule's event: one run per rule and time."""

    source: ClassVar[str] = "schedule"
    rule: str | None = None

    def identifying(self) -> list[str | None]:
        return [self.rule, self.time]


@dataclass(frozen=True)
class Manual(Trigger):
    """A run asked for by name (`mlops-sfn run`, a direct invocation, an SQS message): its run_id and
    overrides make it another run."""

    source: ClassVar[str] = "manual"
    run_id: str | None = None
    over_budget: bool = False  # started although its estimate is above the item's budget_usd

    def identifying(self) -> list[str | None]:
        return [self.run_id, self.dataset_date, self.time, json.dumps(self.overrides, sort_keys=True)]


@dataclass(frozen=True)
class Records(Trigger):
    """The earlier framework's {"Records": [{"body": ...}]}: one run per dataset date and time."""

    source: ClassVar[str] = "records"

    def identifying(self) -> list[str | None]:
        return [self.dataset_date, self.time]


@dataclass(frozen=True)
class Drift(Trigger):
    """A drift alarm's change to ALARM: one episode, one run (the alarm's name holds the pipeline)."""

    source: ClassVar[str] = "monitoring"
    alarm: str | None = None
    reason: str | None = None  # CloudWatch's reason for the change

    def identifying(self) -> list[str | None]:
        return [self.alarm, self.time]


@dataclass(frozen=True)
class Approval(Trigger):
    """A model package approved in the registry ("SageMaker Model Package State Change" with
    ModelApprovalStatus Approved), in this account or its model source's: the pipeline whose
    trigger.model_package_group is the package's group serves that package (its overrides set
    stages.create_model.model_package), read Approved again when the run reaches it. One approval,
    one run, however many times SageMaker sends it."""

    source: ClassVar[str] = "model_package"
    package: str | None = None

    def identifying(self) -> list[str | None]:
        return [self.package, self.time]

    def group(self) -> str:
        return package_group(self.package or "")

    def mismatch(self, item: dict[str, Any]) -> str | None:
        name = item.get("consumption_pipeline_name")
        config = item.get("trigger")
        wanted = config.get("model_package_group") if isinstance(config, dict) else None
        if not isinstance(wanted, str):
            return f"pipeline {name!r} has no trigger.model_package_group, so approvals do not start it"
        if wanted.lower() != self.group():
            return f"package {self.package} is of group {self.group()!r}, not trigger.model_package_group {wanted!r}"
        return None


SOURCES: dict[str, type[Trigger]] = {
    kind.source: kind for kind in (Upload, Scheduled, Manual, Records, Drift, Approval)
}
# The fields of an execution input's trigger, in this order whatever its source.
_ORDER = (
    "source",
    "pipeline",
    "bucket",
    "key",
    "etag",
    "time",
    "dataset_date",
    "run_id",
    "rule",
    "alarm",
    "reason",
    "package",
    "overrides",
    "over_budget",
)


def parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise InvalidEvent(f"time: {echo(text)} is not an ISO 8601 timestamp") from error


@dataclass(frozen=True)
class Part:
    """One record of an event (the event itself when it is no batch): its trigger, or why it is none."""

    trigger: Trigger | None = None
    problem: InvalidEvent | None = None
    message_id: str | None = None  # an SQS record's messageId: what a partial batch failure names


def parse_event(event: Any, invocation_id: str | None = None) -> list[Trigger]:
    """The triggers in one Lambda event; the first record that is not one raises InvalidEvent."""
    parts = parse_parts(event, invocation_id)
    for part in parts:
        if part.problem is not None:
            raise part.problem
    return [part.trigger for part in parts if part.trigger is not None]


def parse_parts(event: Any, invocation_id: str | None = None) -> list[Part]:
    """Each record of one Lambda event parsed on its own, so one bad record spoils no other.

    An event that is not an object, or whose Records is no list, raises InvalidEvent: it has no parts.
    invocation_id (the Lambda request id, stable across the Lambda's own retries) names a manual run
    that gives no run_id of its own.
    """
    if not isinstance(event, dict):
        raise InvalidEvent(f"expected a JSON object, got {type(event).__name__}")
    try:
        check_nesting(event, EVENT_DEPTH, "the event")
    except InputRefused as refused:
        raise InvalidEvent(str(refused)) from None
    if "Records" not in event:
        try:
            return [Part(trigger=_from_message(event, invocation_id))]
        except InvalidEvent as problem:
            return [Part(problem=problem)]
    records = event["Records"]
    if not isinstance(records, list) or not records:
        raise InvalidEvent("Records: expected a non-empty list")
    parts = []
    for index, record in enumerate(records):
        message_id = _message_id(record)
        try:
            parts.append(Part(trigger=_from_record(record, index), message_id=message_id))
        except InvalidEvent as problem:
            parts.append(Part(problem=problem, message_id=message_id))
    return parts


def _message_id(record: Any) -> str | None:
    if isinstance(record, dict) and record.get("eventSource") == "aws:sqs":
        message_id = record.get("messageId")
        return message_id if isinstance(message_id, str) and message_id else None
    return None


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
        except RecursionError:
            raise InvalidEvent(f"{where}.body: nested more than {EVENT_DEPTH} levels deep") from None
        try:  # a body that was a string held JSON the event's own check could not see into
            check_nesting(body, EVENT_DEPTH, f"{where}.body")
        except InputRefused as refused:
            raise InvalidEvent(f"{where}.body: {refused}") from None
    if not isinstance(body, dict):
        raise InvalidEvent(f"{where}.body: expected a JSON object")
    if record.get("eventSource") == "aws:sqs":
        # An SQS message id is stable across redeliveries of that message; a manual run sent through
        # SQS without its own run_id is named by it.
        return _from_message(body, str(record.get("messageId") or "") or None)
    return _from_records_body(body, where)


def _from_records_body(body: dict[str, Any], where: str) -> Trigger:
    pipeline = _pipeline_name(body.get("consumption_pipeline_name"), f"{where}.body.consumption_pipeline_name")
    day, time = _dataset_date(body.get("dataset_date"), f"{where}.body.dataset_date")
    return Records(pipeline=pipeline, dataset_date=day, time=time)


def _from_message(event: dict[str, Any], invocation_id: str | None) -> Trigger:
    if event.get("source") == "aws.s3" and event.get("detail-type") == "Object Created":
        return _from_s3(event)
    if event.get("detail-type") == "Scheduled Event":
        return _from_schedule(event)
    if event.get("source") == "aws.cloudwatch" and event.get("detail-type") == "CloudWatch Alarm State Change":
        return _from_alarm(event)
    if event.get("source") == "aws.sagemaker" and event.get("detail-type") == PACKAGE_STATE_CHANGE:
        return _from_package(event)
    if "consumption_pipeline_name" in event:
        if "event_source" in event:  # an earlier-framework body sent on its own
            return _from_records_body(event, "event")
        return _from_manual(event, invocation_id)
    raise InvalidEvent(
        "unrecognised event: expected an S3 'Object Created' event, a 'Scheduled Event', a model package's"
        " approval, "
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
    # S3 URL-encodes keys in its events ("dt=2024-05-31/a b.csv" arrives as "dt%3D2024-05-31/a+b.csv").
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html
    key = unquote_plus(key)
    etag = _get(detail, "object", "etag")
    if etag is not None and not isinstance(etag, str):
        raise InvalidEvent("detail.object.etag: expected a string")
    time = event.get("time")
    if time is not None:
        if not isinstance(time, str):
            raise InvalidEvent("time: expected an ISO 8601 timestamp string")
        parse_time(time)
    return Upload(bucket=bucket, key=key, etag=etag, time=time)


def _from_schedule(event: dict[str, Any]) -> Trigger:
    pipeline = _pipeline_name(_get(event, "detail", "consumption_pipeline_name"), "detail.consumption_pipeline_name")
    time = event.get("time")
    if not isinstance(time, str):
        raise InvalidEvent("time: a scheduled event must carry its time")
    parse_time(time)
    resources = event.get("resources")
    rule = resources[0] if isinstance(resources, list) and resources and isinstance(resources[0], str) else None
    return Scheduled(pipeline=pipeline, time=time, rule=rule)


PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"
# A versioned package's ARN: model-package/<group>/<version> (SageMaker writes it lower-case).
PACKAGE_ARN = re.compile(r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:model-package/([a-z0-9-]{1,63})/[0-9]+")


def package_group(arn: str) -> str:
    """The group of a versioned package's ARN, "" when it names none."""
    found = PACKAGE_ARN.fullmatch(arn)
    return found.group(1) if found else ""


def _from_package(event: dict[str, Any]) -> Trigger:
    """A model package's state change ("Events that Amazon SageMaker sends to Amazon EventBridge",
    model package state change): detail.ModelPackageArn and detail.ModelApprovalStatus, with
    LastModifiedTime, when it changed. Only an approval starts a run; the rule sends no other."""
    arn = _get(event, "detail", "ModelPackageArn")
    if not isinstance(arn, str) or not PACKAGE_ARN.fullmatch(arn):
        raise InvalidEvent(
            f"detail.ModelPackageArn: {echo(arn)} is not a versioned model package's ARN"
            " (arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>)"
        )
    status = _get(event, "detail", "ModelApprovalStatus")
    if status != "Approved":
        raise InvalidEvent(
            f"detail.ModelApprovalStatus: {echo(status)}; only an Approved package starts a run (the"
            " package-approval rule sends no other: check the rule that delivered this event)"
        )
    # SageMaker may send one change more than once, each with its own event time: the change's own time
    # names the run, so they start one.
    time = _get(event, "detail", "LastModifiedTime")
    time = time if isinstance(time, str) else event.get("time")
    if not isinstance(time, str):
        raise InvalidEvent("time: a model package state change must carry its time")
    parse_time(time)
    overrides = {"stages": {"create_model": {"model_package": arn}}}
    return Approval(package=arn, time=time, overrides=overrides)


def _from_alarm(event: dict[str, Any]) -> Trigger:
    """A drift alarm's change of state (CloudWatch user guide, "Alarm events and EventBridge"):
    detail.alarmName, and detail.state with value, reason and timestamp. Only a change to ALARM
    starts anything; the EventBridge rule sends no other."""
    alarm = _get(event, "detail", "alarmName")
    if not isinstance(alarm, str) or not alarm:
        raise InvalidEvent("detail.alarmName: missing in the alarm state change event")
    state = _get(event, "detail", "state", "value")
    if state != "ALARM":
        raise InvalidEvent(f"detail.state.value: only a change to ALARM starts a run, got {echo(state)}")
    time = _get(event, "detail", "state", "timestamp") or event.get("time")
    if not isinstance(time, str):
        raise InvalidEvent("detail.state.timestamp: an alarm state change must carry its time")
    parse_time(time)
    reason = _get(event, "detail", "state", "reason")
    return Drift(
        alarm=alarm,
        time=time,
        reason=shorten(reason, 500) if isinstance(reason, str) else "the drift alarm changed to ALARM",
    )


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
    day, time = _dataset_date(event.get("dataset_date"), "dataset_date")
    over_budget = event.get("over_budget", False)
    if not isinstance(over_budget, bool):
        raise InvalidEvent("over_budget: expected true (start the run whatever its estimate) or false")
    manual = Manual(pipeline=pipeline, run_id=run_id, dataset_date=day, time=time, overrides=overrides)
    return replace(manual, over_budget=True) if over_budget else manual


def _pipeline_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not PIPELINE_NAME.fullmatch(value):
        raise InvalidEvent(f"{where}: expected a pipeline name of 1-64 letters, digits, '_' and '-', got {echo(value)}")
    return value


def _dataset_date(value: Any, where: str) -> tuple[str | None, str | None]:
    """(the date as YYYY-MM-DD, the timestamp it came from if it was one).

    Senders write a date (2024-05-31, 20240531) or, like the earlier framework's input transformer
    (<aws.events.event.ingestion-time>), an ISO 8601 timestamp, whose UTC date is taken.
    """
    if value is None:
        return None, None
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if isinstance(text, str) and len(text) <= 64:
        try:
            return date.fromisoformat(text).isoformat(), None
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if moment.tzinfo is not None:
                moment = moment.astimezone(UTC)
            return moment.date().isoformat(), text
    raise InvalidEvent(
        f"{where}: expected a date (2024-05-31) or an ISO 8601 timestamp (2024-05-31T14:00:03Z), got {echo(value)}"
    )


def echo(value: Any) -> str:
    """A value quoted back to the sender, short whatever its size: the length and a prefix of a long one."""
    return shorten(repr(value), ECHO_LIMIT)


def shorten(text: str, limit: int) -> str:
    """text, or its first `limit` characters and its length: what logs and dead letters may repeat of an input."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


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


def trigger_prefix(item: dict[str, Any]) -> str | None:
    """The item's trigger.prefix when it has a usable one."""
    config = item.get("trigger")
    prefix = config.get("prefix") if isinstance(config, dict) else None
    return prefix if isinstance(prefix, str) and prefix else None
