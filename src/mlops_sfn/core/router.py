"""The router: from one Lambda event to at most one execution per trigger.

Its three jobs have a module each: routing (here: events to triggers, items to executions),
prefix ownership (prefixes.py: which pipeline an upload belongs to), drift handling (drift.py).

lambdas/router/handler.py is the Lambda entry point; everything it does lives here so the CLI,
the tests and the local runtime run the same code. Only the standard library and boto3 are needed.
"""

from __future__ import annotations

import collections
import json
import os
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from . import cache, drift, dynamodb_json, fanout, monitoring, uploads
from .contract import ROUTER_ENVIRONMENT
from .log import log
from .names import execution_arn
from .plan import apply_overrides, plan_run, with_upload_segments
from .prefixes import PrefixIndex, Unowned, trigger_items
from .problems import Error, InvalidItem, Problem, join
from .schema import UNKNOWN_FIELD
from .settings import SETTINGS_ENVIRONMENT, Settings, parse_tags
from .triggers import Approval, Drift, InvalidEvent, Trigger, parse_parts, shorten

# Environment variable -> what it holds. Read and checked once, when the Lambda starts.
ENVIRONMENT = {
    ROUTER_ENVIRONMENT["table_name"]: "name of the DynamoDB table holding one item per pipeline",
    ROUTER_ENVIRONMENT["state_machine_arn"]: "ARN of the state machine every run starts",
    SETTINGS_ENVIRONMENT["bucket"]: "the framework's S3 bucket (uploads, code, run outputs)",
    SETTINGS_ENVIRONMENT["sagemaker_role_arn"]: "ARN of the role SageMaker jobs run as",
    SETTINGS_ENVIRONMENT["default_image_uri"]: "container image used where an item names none",
    SETTINGS_ENVIRONMENT["sagemaker_name_prefix"]: "start of the endpoint and model package group names items may use",
    SETTINGS_ENVIRONMENT["image_repository_arns"]: "comma-separated ECR repository ARNs jobs may pull images from",
    SETTINGS_ENVIRONMENT["region"]: "AWS region (set by the Lambda runtime itself)",
}
OPTIONAL_ENVIRONMENT = {
    SETTINGS_ENVIRONMENT["data_buckets"]: "comma-separated buckets besides the framework's that jobs may read",
    SETTINGS_ENVIRONMENT["kms_key_arn"]: "the deployment's customer-managed KMS key, the only one jobs may use",
    SETTINGS_ENVIRONMENT["deployment_tags"]: "the deployment's tags, a JSON object: every resource a run creates "
    "carries them",
    SETTINGS_ENVIRONMENT["required_tags"]: "comma-separated tag keys every item must set",
    SETTINGS_ENVIRONMENT["model_consumer_accounts"]: "comma-separated accounts each package group a run registers "
    "in is shared with",
    SETTINGS_ENVIRONMENT["model_source_account"]: "the account whose shared packages items may serve besides the "
    "deployment's own",
    SETTINGS_ENVIRONMENT["model_source_prefix"]: "the start of the model source's group names items may serve",
    "PREFIX_CACHE_SECONDS": "how long the trigger-prefix -> pipeline map is kept before it is read again (default 60)",
    ROUTER_ENVIRONMENT["report_batch_item_failures"]: "true when every SQS event source mapping of the router has "
    "FunctionResponseTypes ReportBatchItemFailures: failed SQS records are then returned, not raised (default false)",
    ROUTER_ENVIRONMENT["ledger_table_name"]: "the run ledger (DynamoDB) step caching reads; without it no stage is "
    "reused",
}
REASON_LIMIT = 1000  # characters of a rejection reason: every failure record must fit SQS's 256 KiB

# Botocore's standard mode retries throttling, 5xx and connection errors with jittered exponential backoff.
RETRIES: Any = {"mode": "standard", "total_max_attempts": 5}

_TABLE = ROUTER_ENVIRONMENT["table_name"]
_MACHINE = ROUTER_ENVIRONMENT["state_machine_arn"]
_PARTIAL = ROUTER_ENVIRONMENT["report_batch_item_failures"]
_PATTERNS = {
    _TABLE: re.compile(r"[A-Za-z0-9_.-]{3,255}"),
    _MACHINE: re.compile(r"arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}"),
    ROUTER_ENVIRONMENT["sagemaker_role_arn"]: re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+"),
    ROUTER_ENVIRONMENT["bucket"]: re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"),
}


class ConfigurationError(Error, RuntimeError):
    """The Lambda's environment is incomplete or malformed: fix the deployment, no event is processed."""


class RejectedEvent(Error):
    """The router's documented error: an event (or part of a batch) that must not start a run.

    Raised for an unparseable event, an unknown pipeline or an invalid item, after every valid
    trigger in the same event has been handled. Lambda then sends the event to its failure
    destination (the dead-letter queue), from which it can be replayed once the cause is fixed;
    replaying is safe because execution names are deterministic.
    """

    def __init__(self, rejections: list[dict[str, Any]]) -> None:
        self.rejections = rejections
        super().__init__("; ".join(f"{r.get('pipeline') or '?'}: {r['field']}: {r['reason']}" for r in rejections))


@dataclass(frozen=True)
class Config:
    table: str
    state_machine_arn: str
    settings: Settings
    prefix_cache_seconds: float = 60.0
    report_batch_item_failures: bool = False
    ledger: str | None = None  # the run ledger's table (step caching)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Config:
        environ = os.environ if environ is None else environ
        problems = [f"{name} is not set ({what})" for name, what in ENVIRONMENT.items() if not environ.get(name)]
        for name, pattern in _PATTERNS.items():
            value = environ.get(name)
            if value and not pattern.fullmatch(value):
                problems.append(f"{name}={value!r} is not a valid {ENVIRONMENT[name]}")
        ttl_text = environ.get("PREFIX_CACHE_SECONDS", "60")
        try:
            ttl = float(ttl_text)
            if ttl < 0:
                raise ValueError
        except ValueError:
            problems.append(f"PREFIX_CACHE_SECONDS={ttl_text!r}: expected a number of seconds >= 0")
            ttl = 0.0
        partial = environ.get(_PARTIAL, "false")
        if partial not in ("true", "false"):
            problems.append(f"{_PARTIAL}={partial!r}: expected true or false")
        tagged = SETTINGS_ENVIRONMENT["deployment_tags"]
        try:
            parse_tags(environ.get(tagged, ""))
        except ValueError:
            problems.append(f"{tagged}={environ.get(tagged)!r}: expected a JSON object of tag keys and values")
        if problems:
            raise ConfigurationError("router configuration: " + "; ".join(problems))
        return cls(
            table=environ[_TABLE],
            state_machine_arn=environ[_MACHINE],
            settings=Settings.from_environment(environ),
            prefix_cache_seconds=ttl,
            report_batch_item_failures=partial == "true",
            ledger=environ.get(ROUTER_ENVIRONMENT["ledger_table_name"]) or None,
        )


def aws_clients(region: str, services: tuple[str, ...] = ("dynamodb", "stepfunctions")) -> tuple[Any, ...]:
    """Clients with retries; boto3 is imported here, off the cold-import path."""
    import boto3
    from botocore.config import Config as BotoConfig

    config = BotoConfig(retries=RETRIES, connect_timeout=5, read_timeout=10)
    session = boto3.session.Session(region_name=region)
    return tuple(session.client(service, config=config) for service in services)


QUOTAS_SECONDS = 3600  # a raised quota bounds runs within the hour


class Router:
    """Handles Lambda events; one instance per Lambda container, so the prefix index is reused warm."""

    def __init__(self, config: Config, clients: tuple[Any, Any] | None = None) -> None:
        self.config = config
        self._clients = clients
        self._s3: Any = None
        self._servicequotas: Any = None  # read for fanned-out runs only
        self._read_quotas: tuple[float, dict[str, float] | None] | None = None
        self.index = PrefixIndex(ttl=config.prefix_cache_seconds)  # (kept warm: one per container)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Router:
        return cls(Config.from_environment(environ))

    @property
    def dynamodb(self) -> Any:
        return self.clients[0]

    @property
    def stepfunctions(self) -> Any:
        return self.clients[1]

    @property
    def clients(self) -> tuple[Any, Any]:
        if self._clients is None:  # created on the first event: creating them costs ~90 ms
            dynamodb, stepfunctions = aws_clients(self.config.settings.region)
            self._clients = (dynamodb, stepfunctions)
        return self._clients

    def _quotas(self) -> dict[str, float] | None:
        """SageMaker's applied quotas, read at most once an hour per container (fanout.read_quotas)."""
        now = time.monotonic()
        if self._read_quotas is None or now - self._read_quotas[0] > QUOTAS_SECONDS:
            if self._servicequotas is None:
                (self._servicequotas,) = aws_clients(self.config.settings.region, ("service-quotas",))
            self._read_quotas = (now, fanout.read_quotas(self._servicequotas))
        return self._read_quotas[1]

    @property
    def s3(self) -> Any:
        if self._s3 is None:  # a manifest check and step caching need it; other runs never pay for it
            (self._s3,) = aws_clients(self.config.settings.region, ("s3",))
        return self._s3

    def handle(self, event: Any, request_id: str | None = None) -> dict[str, Any]:
        """Start one execution per new trigger in the event; returns counts, raises RejectedEvent.

        Every record of a batch is handled on its own. The records that fail are raised together
        (RejectedEvent) after the others were handled, so Lambda keeps the event for replay; from an
        SQS event source mapping that reports partial failures (REPORT_BATCH_ITEM_FAILURES) they are
        returned as `batchItemFailures` instead, so SQS retries and dead-letters only them.
        """
        request_id = request_id or str(uuid.uuid4())
        summary: dict[str, Any] = {"started": 0, "duplicates": 0, "skipped": 0, "executions": []}
        try:
            parts = parse_parts(event, request_id)
        except InvalidEvent as error:
            raise RejectedEvent([self._reject(None, None, _field_of(str(error)), str(error), request_id)]) from None
        partial = self.config.report_batch_item_failures and all(part.message_id for part in parts)
        rejections: list[dict[str, Any]] = []
        failed: list[str] = []  # message ids of SQS records to hand back to the queue
        handled: set[str] = set()  # execution names seen in this event: a batch may repeat a message
        for part in parts:
            try:
                if part.problem is not None:
                    message = str(part.problem)
                    raise _Rejected(self._reject(None, None, _field_of(message), message, request_id))
                assert part.trigger is not None
                outcome, execution = self._route(part.trigger, request_id, handled)
            except _Rejected as rejected:
                rejections.append(rejected.record | ({"message_id": part.message_id} if part.message_id else {}))
                failed.append(part.message_id or "")
                continue
            except Exception as error:  # an AWS error outlasting botocore's retries
                if not partial:
                    raise
                log(
                    level="error",
                    request_id=request_id,
                    message_id=part.message_id,
                    outcome="failed",
                    error=shorten(repr(error), REASON_LIMIT),
                )
                failed.append(part.message_id or "")
                continue
            summary[{"started": "started", "duplicate": "duplicates"}.get(outcome, "skipped")] += 1
            if outcome == "started":
                summary["executions"].append(execution)
        if failed and partial:
            # https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
            return summary | {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
        if rejections:
            raise RejectedEvent(rejections)
        return summary

    def _route(self, trigger: Trigger, request_id: str | None, handled: set[str]) -> tuple[str, str | None]:
        """The decision for one trigger: ("started"|"duplicate"|"skipped", execution name)."""
        context = {"request_id": request_id, "pipeline": trigger.pipeline, "trigger": _describe(trigger)}
        if isinstance(trigger, Drift):  # a drift alarm names its pipeline in the alarm's name
            named, why_not = drift.pipeline_of(trigger, self.config.settings.sagemaker_name_prefix)
            if named is None:
                raise _Rejected(self._reject(None, trigger, "detail.alarmName", why_not, request_id))
            trigger = replace(trigger, pipeline=named)
        if isinstance(trigger, Approval):  # the item serving the package's group is found by its trigger
            serving = self._serving(trigger, request_id)
            if serving is None:
                unserved = f"no enabled item has trigger.model_package_group {trigger.group()!r}"
                log(level="info", **context, outcome="skipped", reason=unserved)
                return "skipped", None
            trigger = replace(trigger, pipeline=serving)
        pipeline, item = self._find(trigger, request_id)
        context["pipeline"] = pipeline
        if item.get("enabled") is False:
            log(level="info", **context, outcome="skipped", reason="the pipeline is disabled (enabled: false)")
            return "skipped", None
        reason = trigger.mismatch(item) or drift.not_retrained(item, trigger)
        if reason is not None:  # an object that is part of an upload, not the one completing it; a drift left alone
            log(level="info", **context, outcome="skipped", reason=reason)
            return "skipped", None
        if _reads_latest_upload(item, trigger):
            # the latest upload that passes the check its own run passed; none: the event is refused
            latest = self._latest_upload(item, trigger, request_id, context)
            trigger = replace(trigger, bucket=self.config.settings.bucket, key=latest.key, etag=latest.etag)
        try:
            item = with_upload_segments(item, trigger, self.config.settings, self.s3)
            planned = plan_run(item, trigger, self.config.settings)
            if planned.segment_inputs:  # segments at once within SageMaker's quotas
                lowered = fanout.within_quotas(planned.execution_input, planned.segment_inputs, self._quotas())
                if lowered:
                    context["max_concurrency"] = lowered
        except InvalidItem as error:
            shown = [_without_override_values(problem, trigger.overrides) for problem in error.problems]
            problems = [{"field": p.path, "reason": p.message} for p in shown]
            raise _Rejected(
                self._reject(pipeline, trigger, shown[0].path, shown[0].message, request_id, problems)
            ) from None
        execution_input = planned.execution_input
        cached = self._reuse(apply_overrides(item, trigger), execution_input, planned.segment_inputs)
        if cached:
            context["cache"] = cached
        # Per delivery, so a repeat of a running execution is refused (ExecutionAlreadyExists) rather than
        # answered with the original; names, not inputs, carry the idempotency.
        execution_input["delivery"] = {"request_id": request_id}
        name = execution_input["execution_name"]
        manifest = trigger.source == "s3" and "manifest" in item["trigger"]["complete_on"]
        if trigger.source == "monitoring":
            execution_input["trigger"]["violations"] = drift.violations(self.s3, self.config.settings.bucket, pipeline)
        if name in handled:
            outcome = "duplicate"
        elif trigger.source == "monitoring" and (
            reason := drift.cooling_down(self.dynamodb, self.config.ledger, pipeline, item, name)
        ):
            log(level="info", **context, execution_name=name, outcome="skipped", reason=reason)
            return "skipped", None
        elif manifest and (reason := self._upload_problem(trigger)) is not None:
            # A redelivery may find the upload replaced or gone since its run started: still a duplicate.
            if self._exists(name):
                outcome = "duplicate"
            elif uploads.SUPERSEDED in reason:  # nothing to fix or replay: the newer upload's own event starts its run
                log(level="info", **context, execution_name=name, outcome="skipped", reason=reason)
                return "skipped", None
            else:
                raise _Rejected(self._reject(pipeline, trigger, "trigger.complete_on.manifest", reason, request_id))
        else:
            fanout.write(self.s3, execution_input, planned.segment_inputs)  # read by the run's Map
            outcome = self._start(name, execution_input)
        handled.add(name)
        if outcome == "duplicate":
            log(level="info", **context, execution_name=name, outcome=outcome, reason=DUPLICATE)
        else:
            log(level="info", **context, execution_name=name, outcome=outcome)
        return outcome, name

    def _reuse(
        self, item: dict[str, Any], execution_input: dict[str, Any], segment_inputs: Sequence[dict[str, Any]]
    ) -> dict[str, Any]:
        """Step caching: stages the run ledger has a live record of are reused (cache.lookup), the
        run's and each segment's; what was decided for each stage the item caches, for the log line
        (for the segments: how many reused each stage)."""
        if self.config.ledger is None:
            return {}
        clients = (self.s3, self.dynamodb, self.stepfunctions)
        ledger, state_machine = self.config.ledger, self.config.state_machine_arn
        found = cache.reuse(item, execution_input, clients, ledger, state_machine, segment_inputs)
        reused, cached = execution_input.get("reused", {}), cache.enabled(item)
        per_segment = collections.Counter(stage for segment in segment_inputs for stage in segment.get("reused", {}))
        return ({"segments_reused": dict(per_segment)} if per_segment else {}) | {
            stage: {"reused_from": reused[stage]}
            if stage in reused
            else (
                {"missed": str(key.key)[:12]} | ({"why": key.why_not} if key.why_not else {})
                if key.key
                else {"not_cached": key.why_not}
            )
            for stage, key in found.items()
            if stage in cached
        }

    def _latest_upload(
        self, item: dict[str, Any], trigger: Trigger, request_id: str | None, context: dict[str, Any]
    ) -> uploads.Latest:
        """The upload a run not started by an upload (drift, schedule) reads: the
        newest that passes its manifest's check (uploads.latest_verified), each newer one passed over
        logged with its reason; _Rejected when none passes."""
        from botocore.exceptions import ClientError

        pipeline, field_path = item["consumption_pipeline_name"], "trigger.complete_on.manifest"
        try:
            latest = uploads.latest_verified(self.s3, self.config.settings.bucket, item.get("trigger", {}))
        except ClientError as error:  # the run would read whatever lies under the prefix: kept for a replay
            code = error.response.get("Error", {}).get("Code", "error")
            reason = f"the uploads under trigger.prefix could not be listed ({code}); replay this event once they can"
            raise _Rejected(self._reject(pipeline, trigger, "trigger.prefix", reason, request_id)) from None
        except uploads.NoVerifiedUpload as error:
            raise _Rejected(self._reject(pipeline, trigger, field_path, str(error), request_id)) from None
        for key, reason in latest.passed_over:
            log(level="warning", **context, outcome="upload passed over", upload=key, reason=reason)
        if latest.passed_over:
            log(level="warning", **context, outcome="reads an earlier upload", upload=latest.key)
        return latest

    def _find(self, trigger: Trigger, request_id: str | None) -> tuple[str, dict[str, Any]]:
        """The pipeline a trigger names (or whose prefix holds its key) and its item, read consistently."""
        if trigger.source != "s3":
            pipeline = trigger.pipeline or ""
            item = self._get_item(pipeline)
            if item is None:
                reason = f"no item named {pipeline!r} in table {self.config.table}; check the name or add the item"
                raise _Rejected(self._reject(pipeline, trigger, "consumption_pipeline_name", reason, request_id))
            return pipeline, item
        key = trigger.key or ""
        if trigger.bucket != self.config.settings.bucket:
            reason = f"bucket {trigger.bucket!r} is not the framework's bucket {self.config.settings.bucket!r}"
            raise _Rejected(self._reject(None, trigger, "detail.bucket.name", reason, request_id))
        refreshed = self.index.stale()
        if refreshed:
            self.index.load(self.dynamodb, self.config.table)
        while True:
            found = self.index.owner(key, self._get_item)
            if isinstance(found, Unowned):
                if refreshed:
                    raise _Rejected(self._reject(found.pipeline, trigger, found.field, found.reason, request_id))
                self.index.load(self.dynamodb, self.config.table)  # the cached map may predate an edit
                refreshed = True
                continue
            return found

    def _serving(self, trigger: Approval, request_id: str | None) -> str | None:
        """The enabled item whose trigger.model_package_group is the approved package's group, or None.
        Approvals are rare, so the table is read for each (consistently: an item just added counts); an
        approval of a group no item serves is none of this deployment's business. Two items serving one
        group are refused: which one a deployment serves must not depend on table order."""
        found = []
        for item in trigger_items(self.dynamodb, self.config.table):
            if trigger.mismatch(item) is None and item.get("enabled") is not False:
                found.append(str(item.get("consumption_pipeline_name")))
        if len(found) > 1:
            reason = (
                f"items {', '.join(sorted(found))} all have trigger.model_package_group {trigger.group()!r}: keep it"
                " on one, then replay this event"
            )
            raise _Rejected(self._reject(None, trigger, "trigger.model_package_group", reason, request_id))
        return found[0] if found else None

    def _upload_problem(self, trigger: Trigger) -> str | None:
        """Why the upload this event completes may not start a run, with what to do about it."""
        why = uploads.problem(self.s3, trigger.bucket or "", trigger.key or "", trigger.etag)
        if why is None:
            return None
        if uploads.SUPERSEDED in why:
            return f"{why}; the newer upload's own event starts its run"
        return f"{why}. Upload the files as the manifest lists them, then replay this event"

    def _exists(self, name: str) -> bool:
        try:
            self.stepfunctions.describe_execution(executionArn=execution_arn(self.config.state_machine_arn, name))
        except self.stepfunctions.exceptions.ExecutionDoesNotExist:
            return False
        return True

    def _get_item(self, pipeline: str) -> dict[str, Any] | None:
        response = self.dynamodb.get_item(
            TableName=self.config.table, Key={"consumption_pipeline_name": {"S": pipeline}}, ConsistentRead=True
        )
        if "Item" not in response:
            return None
        return dynamodb_json.from_typed(response["Item"])  # numbers become int/float, never Decimal

    def _start(self, name: str, execution_input: dict[str, Any]) -> str:
        """StartExecution; a name already used means this trigger was handled before."""
        try:
            self.stepfunctions.start_execution(
                stateMachineArn=self.config.state_machine_arn, name=name, input=json.dumps(execution_input)
            )
        except self.stepfunctions.exceptions.ExecutionAlreadyExists:
            return "duplicate"
        return "started"

    @staticmethod
    def _reject(
        pipeline: str | None,
        trigger: Trigger | None,
        field_path: str,
        reason: str,
        request_id: str | None,
        problems: list[dict[str, str]] | None = None,
    ) -> dict[str, Any]:
        reason = shorten(reason, REASON_LIMIT)
        field_path = shorten(field_path or "(item)", 300)
        record: dict[str, Any] = {"pipeline": pipeline, "field": field_path, "reason": reason}
        problems = [
            {"field": shorten(p["field"], 300), "reason": shorten(p["reason"], REASON_LIMIT)}
            for p in (problems or [])[:20]
        ]
        log(
            level="error",
            request_id=request_id,
            pipeline=pipeline,
            trigger=_describe(trigger) if trigger else None,
            outcome="rejected",
            field=record["field"],
            reason=reason,
            **({"problems": problems} if problems and len(problems) > 1 else {}),
        )
        return record


# Step Functions lets a Standard execution's name be reused 90 days after the execution closed
# (API reference, StartExecution), so name-based idempotency holds for 90 days.
DUPLICATE = (
    "an execution of this name exists: this trigger was handled before "
    "(names are kept 90 days after a run ends; the same trigger delivered later starts a new run)"
)


class _Rejected(Error):  # one part of an event refused: gathered into RejectedEvent
    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record


def _without_override_values(problem: Problem, overrides: dict[str, Any]) -> Problem:
    """The problem, its message withheld when it is about a value a manual run's overrides set: those
    values may hold anything, and rejection reasons reach logs and dead letters."""
    overridden = [path for path, _ in _leaves(overrides, "")]
    if problem.message.startswith(UNKNOWN_FIELD):  # names fields, never a value: said as it is
        return problem
    if any(problem.path == path or problem.path.startswith((path + ".", path + "[")) for path in overridden):
        return Problem(
            problem.path,
            "invalid value from this run's overrides (not repeated here); check it with"
            " mlops-sfn plan ITEM --set PATH=VALUE",
        )
    return problem


def _leaves(value: Any, path: str) -> list[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        return [leaf for key, entry in value.items() for leaf in _leaves(entry, join(path, str(key)))]
    if isinstance(value, list) and value:
        return [leaf for index, entry in enumerate(value) for leaf in _leaves(entry, join(path, index))]
    return [(path, value)]


def _reads_latest_upload(item: dict[str, Any], trigger: Trigger) -> bool:
    """A drift run that retrains, or a scheduled run, of an item whose stages read {upload_prefix}: it
    must read one verified upload, not whatever lies under the trigger prefix. (A drift run that only
    notifies reads nothing.)"""
    if trigger.source == "monitoring" and monitoring.on_drift(item) != "run":
        return False
    return trigger.source in ("monitoring", "schedule") and uploads.reads_upload(item)


def _describe(trigger: Trigger) -> dict[str, Any]:
    """The trigger for logs: what started it, never the override values (they may hold anything)."""
    described: dict[str, Any] = {
        name: shorten(value, 300) if isinstance(value, str) else value for name, value in trigger.as_dict().items()
    }
    if trigger.bucket and trigger.key:
        described["object"] = shorten(f"s3://{trigger.bucket}/{trigger.key}", 1100)  # keys are at most 1,024 bytes
        del described["bucket"], described["key"]
    if trigger.overrides:
        described["overrides"] = [shorten(name, 64) for name in sorted(trigger.overrides)[:20]]
    return described


def _field_of(message: str) -> str:
    """InvalidEvent messages start with the field they are about ("detail.object.key: missing ...")."""
    head, sep, _ = message.partition(": ")
    return head if sep and " " not in head else "(event)"
