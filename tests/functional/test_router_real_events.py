"""The router against events as AWS and the earlier framework really send them: URL-encoded S3 keys,
ISO timestamps as dataset dates, SQS batches with poisoned records, inputs of any size."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_plus

import botocore.endpoint
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from mlops_sfn.core.router import REASON_LIMIT, Config, ConfigurationError, RejectedEvent, Router
from tests.aws import BUCKET, TABLE, Stack, deploy
from tests.conftest import DEMO, edited, load_event, load_item
from tests.functional.test_router import log_lines, throttle

pytestmark = pytest.mark.functional

PREFIX = "input/demo-dev-domain-cal-house-price/"
# Folder names as users write them; S3 sends each URL-encoded ("dt=2024-05-31" arrives as "dt%3D2024-05-31").
FOLDERS = ["dt=2024-05-31/", "batch 7/", "c++ run/", "café/", "100%/", "a b+c=d é%/"]


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mock_aws():
        yield deploy([load_item(), load_item("demo-dev-train-and-batch-score")])


def partial_router(stack: Stack) -> Router:
    """The router as deployed behind an SQS event source mapping that reports batch item failures."""
    return Router(Config.from_environment(stack.environment | {"REPORT_BATCH_ITEM_FAILURES": "true"}))


def as_s3_writes(key: str) -> str:
    """The key as S3 puts it in an event: form-encoded, '/' kept."""
    return quote_plus(key, safe="/")


def sqs_record(body: Any, message_id: str) -> dict[str, Any]:
    """One record of an SQS event (Lambda's shape, from the fixture) carrying `body`."""
    record: dict[str, Any] = load_event("sqs_records_legacy")["Records"][0]
    record.update(messageId=message_id, body=body if isinstance(body, str) else json.dumps(body))
    return record


def data_channel(execution_input: dict[str, Any]) -> str:
    inputs = execution_input["stages"]["preprocessing"]["request"]["ProcessingInputs"]
    (uri,) = [entry["S3Input"]["S3Uri"] for entry in inputs if entry["InputName"] == "raw"]
    return str(uri)


# --- URL-encoded keys ------------------------------------------------------------------------------


def test_the_aws_fixture_with_an_encoded_key_runs_on_the_real_folder(stack: Stack) -> None:
    event = load_event("s3_object_created_encoded_key")
    assert "%3D" in event["detail"]["object"]["key"]  # as S3 writes it
    (name,) = stack.router().handle(event, "req-1")["executions"]
    execution_input = stack.execution_input(name)
    folder = f"{PREFIX}dt=2024-05-31/batch 1+é%/"
    assert execution_input["trigger"]["key"] == folder + "manifest.json"
    assert data_channel(execution_input) == f"s3://{BUCKET}/{folder}data/"


@pytest.mark.parametrize("folder", FOLDERS)
@pytest.mark.parametrize("delivery", ["eventbridge", "sqs"])
def test_keys_are_decoded_for_every_shape_that_carries_one(stack: Stack, folder: str, delivery: str) -> None:
    key = PREFIX + folder + "manifest.json"
    event = stack.s3_event(key)
    if delivery == "sqs":
        event = {"Records": [sqs_record(event, "m-1")]}
    summary = stack.router().handle(event, "req-1")
    assert summary["started"] == 1, summary  # the marker was recognised under its encoded name
    execution_input = stack.execution_input(summary["executions"][0])
    assert execution_input["trigger"]["key"] == key
    assert data_channel(execution_input) == f"s3://{BUCKET}/{PREFIX}{folder}data/"


def test_a_suffix_marker_is_recognised_after_decoding(stack: Stack) -> None:
    router = stack.router()
    folder = "input/demo-dev-train-and-batch-score/dt=2024-06-01 full/"
    assert router.handle(stack.s3_event(folder + "train/part 1.csv"), "req-1")["skipped"] == 1
    (name,) = router.handle(stack.s3_event(folder + "_SUCCESS"), "req-2")["executions"]
    training = stack.execution_input(name)["stages"]["training"]["request"]
    assert training["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{BUCKET}/{folder}train/"


def test_the_same_upload_encoded_or_decoded_is_one_trigger(stack: Stack) -> None:
    # A replayed or re-sent event names the same object: the run is named after the real key.
    router = stack.router()
    key = PREFIX + "dt=2024-05-31/manifest.json"
    assert router.handle(stack.s3_event(key), "req-1")["started"] == 1
    assert router.handle(stack.s3_event(key), "req-2")["duplicates"] == 1


# --- dataset dates as senders write them -----------------------------------------------------------


@pytest.mark.parametrize("delivery", ["direct", "string body", "sqs"])
def test_the_earlier_frameworks_ingestion_time_becomes_the_dataset_date(stack: Stack, delivery: str) -> None:
    event = load_event("records_legacy_ingestion_time")
    body = event["Records"][0]["body"]
    assert body["dataset_date"] == "2022-06-04T14:00:03Z"  # <aws.events.event.ingestion-time>
    if delivery == "string body":
        event["Records"][0]["body"] = json.dumps(body)
    elif delivery == "sqs":
        event = {"Records": [sqs_record(body, "m-1")]}
    (name,) = stack.router().handle(event, "req-1")["executions"]
    assert stack.execution_input(name)["dataset_date"] == "2022-06-04"


def test_each_ingestion_time_is_its_own_trigger_and_a_redelivery_is_not(stack: Stack) -> None:
    router = stack.router()
    first = load_event("records_legacy_ingestion_time")
    later = copy.deepcopy(first)
    later["Records"][0]["body"]["dataset_date"] = "2022-06-04T18:30:00Z"
    assert router.handle(first, "req-1")["started"] == 1
    assert router.handle(copy.deepcopy(first), "req-2")["duplicates"] == 1
    assert router.handle(later, "req-3")["started"] == 1


@pytest.mark.parametrize(
    ("written", "date"),
    [
        ("2024-05-31", "2024-05-31"),
        ("20240531", "2024-05-31"),
        (20240531, "2024-05-31"),
        ("2024-05-31T23:30:00-05:00", "2024-06-01"),  # the UTC date, as for events without one
        ("2024-05-31T14:00:03.123Z", "2024-05-31"),
    ],
)
def test_a_manual_runs_dataset_date_is_normalised(stack: Stack, written: Any, date: str) -> None:
    event = load_event("manual") | {"dataset_date": written}
    (name,) = stack.router().handle(event, "req-1")["executions"]
    assert stack.execution_input(name)["dataset_date"] == date


@pytest.mark.parametrize("written", ["yesterday", "2024-13-01", "2024/05/31", "v2"])
def test_a_dataset_date_that_is_no_date_is_rejected_naming_the_field(stack: Stack, written: str) -> None:
    with pytest.raises(RejectedEvent) as raised:
        stack.router().handle(load_event("manual") | {"dataset_date": written}, "req-1")
    (rejection,) = raised.value.rejections
    assert rejection["field"] == "dataset_date" and "ISO 8601" in rejection["reason"]
    assert stack.executions() == []


# --- batches: record by record ------------------------------------------------------------------------

POISONS = {
    "not JSON": "{not json",
    "unknown pipeline": {"consumption_pipeline_name": "no-such-pipeline", "run_id": "p"},
    "invalid date": {"consumption_pipeline_name": DEMO, "run_id": "p", "dataset_date": "soon"},
}


def batch(poison: Any, at: int) -> dict[str, Any]:
    valid = [sqs_record({"consumption_pipeline_name": DEMO, "run_id": f"run-{n}"}, f"ok-{n}") for n in range(2)]
    valid.insert(at, sqs_record(poison, "poisoned"))
    return {"Records": valid}


@pytest.mark.parametrize("at", [0, 1, 2], ids=["first", "middle", "last"])
@pytest.mark.parametrize("poison", list(POISONS))
def test_a_poisoned_record_is_the_only_one_reported_and_the_others_start_once(
    stack: Stack, poison: str, at: int
) -> None:
    router = partial_router(stack)
    event = batch(POISONS[poison], at)
    summary = router.handle(event, "req-1")
    assert summary["batchItemFailures"] == [{"itemIdentifier": "poisoned"}]
    assert summary["started"] == 2 and len(stack.executions()) == 2
    # SQS redelivers the whole batch when the function fails; nothing new starts, only the poison is reported.
    again = router.handle(copy.deepcopy(event), "req-2")
    assert (again["started"], again["duplicates"]) == (0, 2)
    assert again["batchItemFailures"] == [{"itemIdentifier": "poisoned"}]


def test_without_partial_reporting_the_batch_is_raised_after_its_valid_records_started(stack: Stack) -> None:
    with pytest.raises(RejectedEvent) as raised:
        stack.router().handle(batch(POISONS["not JSON"], 0), "req-1")
    (rejection,) = raised.value.rejections
    assert rejection["message_id"] == "poisoned" and rejection["field"] == "Records[0].body"
    assert len(stack.executions()) == 2


def test_an_aws_error_outlasting_the_retries_fails_only_its_record(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(botocore.endpoint.time, "sleep", lambda _: None)
    router = partial_router(stack)
    event = batch(POISONS["unknown pipeline"], 2)
    calls = throttle(router.stepfunctions, "StartExecution", 5, "ThrottlingException")
    summary = router.handle(event, "req-1")
    assert len(calls) == 6  # the first record: five refused attempts; the second: one that went through
    assert summary["batchItemFailures"] == [{"itemIdentifier": "ok-0"}, {"itemIdentifier": "poisoned"}]
    assert summary["started"] == 1
    failed = [line for line in log_lines(capsys) if line.get("outcome") == "failed"]
    assert failed and failed[0]["message_id"] == "ok-0" and "Throttling" in failed[0]["error"]


def test_a_batch_that_is_not_all_sqs_is_raised_even_with_partial_reporting(stack: Stack) -> None:
    # batchItemFailures can only name SQS messages: the earlier framework's Records are raised, as before.
    good = load_event("records_legacy")["Records"][0]
    bad = copy.deepcopy(good)
    bad["body"]["consumption_pipeline_name"] = "no-such-pipeline"
    with pytest.raises(RejectedEvent):
        partial_router(stack).handle({"Records": [bad, good]}, "req-1")
    assert len(stack.executions()) == 1


def test_the_partial_reporting_switch_is_checked_at_cold_start(stack: Stack) -> None:
    with pytest.raises(ConfigurationError, match="REPORT_BATCH_ITEM_FAILURES='yes': expected true or false"):
        Config.from_environment(stack.environment | {"REPORT_BATCH_ITEM_FAILURES": "yes"})


# --- inputs of any size: logs and dead letters stay small ----------------------------------------------


def test_a_5000_character_pipeline_name_is_not_echoed_whole(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RejectedEvent) as raised:
        stack.router().handle({"consumption_pipeline_name": "p" * 5000}, "req-1")
    output = capsys.readouterr().out
    (line,) = [json.loads(text) for text in output.splitlines()]
    assert line["field"] == "consumption_pipeline_name" and "(5002 characters)" in line["reason"]
    assert len(output) < 1000 and len(str(raised.value)) < 1000


def test_a_rejection_of_a_huge_item_value_fits_a_dead_letter(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    huge = "ml." + "x" * 340_000
    stack.put_item(edited(load_item(), {"stages.training.request.ResourceConfig.InstanceType": huge}))
    with pytest.raises(RejectedEvent) as raised:
        stack.router().handle(load_event("s3_object_created"), "req-1")
    (rejection,) = raised.value.rejections
    assert rejection["field"] == "stages.training.request.ResourceConfig.InstanceType"
    assert len(rejection["reason"]) <= REASON_LIMIT + 30
    # What Lambda's failure record repeats of the error: far under SQS's 256 KiB.
    assert len(str(raised.value)) < 2000 and len(capsys.readouterr().out) < 4000


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Environment.DB_PWD", "hunter2-value"),  # a secret by its name
        ("HyperParameters.db", "postgres://ml:hunter2-value@db/x"),  # a secret by its value
        ("ResourceConfig.InstanceType", "ml.hunter2-value"),  # any invalid override value
        ("InputDataConfig", ["hunter2-value", "hunter2-value"]),  # a list, its entries and their repeat
        ("Environment", ["hunter2-value"]),  # a list where an object belongs
        ("EnableManagedSpotTraining", {"hunter2-value": 1}),  # an object where a flag belongs
    ],
)
def test_an_override_value_never_reaches_logs_or_dead_letters(
    stack: Stack, capsys: pytest.CaptureFixture[str], field: str, value: str
) -> None:
    path = field.split(".")
    request: dict[str, Any] = {}
    node = request
    for name in path[:-1]:
        node = node.setdefault(name, {})
    node[path[-1]] = value
    event = load_event("manual") | {"overrides": {"stages": {"training": {"request": request}}}}
    with pytest.raises(RejectedEvent) as raised:
        stack.router().handle(event, "req-1")
    assert raised.value.rejections[0]["field"].startswith(f"stages.training.request.{field}")
    assert "hunter2" not in str(raised.value) and "hunter2" not in capsys.readouterr().out
    assert stack.executions() == []
    if field == "ResourceConfig.InstanceType":  # the hint is a command that takes the override
        assert "check it with mlops-sfn plan ITEM --set PATH=VALUE" in raised.value.rejections[0]["reason"]


def test_a_mistyped_field_in_overrides_is_named_with_what_it_may_have_meant(stack: Stack) -> None:
    # field names are not values: the redaction of override values leaves them, and the hint, alone
    event = load_event("manual") | {"overrides": {"stages": {"training": {"reqest": {"x": "hunter2-value"}}}}}
    with pytest.raises(RejectedEvent) as raised:
        stack.router().handle(event, "req-1")
    (rejection,) = raised.value.rejections
    assert rejection["field"] == "stages.training.reqest"
    assert rejection["reason"].startswith("unknown field; did you mean 'request'?")
    assert "hunter2" not in str(raised.value)


# --- the prefix map --------------------------------------------------------------------------------------


def test_the_prefix_map_is_read_with_a_strongly_consistent_scan(stack: Stack) -> None:
    # An eventually consistent Scan may miss the item just added that made the router read the map again.
    router = stack.router()
    scans: list[dict[str, Any]] = []
    router.dynamodb.meta.events.register(
        "provide-client-params.dynamodb.Scan", lambda params, **_: scans.append(params)
    )
    router.handle(stack.s3_event(PREFIX + "manifest.json"), "req-1")
    assert scans and all(scan["ConsistentRead"] is True and scan["TableName"] == TABLE for scan in scans)


# --- properties ----------------------------------------------------------------------------------------

BATCHES = itertools.count()
PROPERTIES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTIES
@given(folder=st.text(st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=60))
def test_any_key_s3_can_hold_reaches_the_run_as_written(stack: Stack, folder: str) -> None:
    key = f"{PREFIX}{folder}/manifest.json"
    summary = stack.router().handle(stack.s3_event(key, upload=folder), "req")
    assert summary["started"] + summary["duplicates"] == 1, summary
    name = summary["executions"][0] if summary["executions"] else None
    if name:
        assert stack.execution_input(name)["trigger"]["key"] == key


@PROPERTIES
@given(kinds=st.lists(st.sampled_from(["valid", *POISONS]), min_size=1, max_size=10))
def test_only_the_poisoned_records_of_any_batch_are_reported(stack: Stack, kinds: list[str]) -> None:
    batch_number = next(BATCHES)  # each example a new batch: its valid records are new runs
    records = [
        sqs_record({"consumption_pipeline_name": DEMO, "run_id": f"b{batch_number}-{n}"}, f"m-{n}")
        if kind == "valid"
        else sqs_record(POISONS[kind], f"m-{n}")
        for n, kind in enumerate(kinds)
    ]
    router = partial_router(stack)
    before = len(stack.executions())
    summary = router.handle({"Records": records}, "req")
    poisoned = [{"itemIdentifier": f"m-{n}"} for n, kind in enumerate(kinds) if kind != "valid"]
    assert summary.get("batchItemFailures", []) == poisoned
    assert summary["started"] == kinds.count("valid") == len(stack.executions()) - before
    again = router.handle({"Records": records}, "req-again")
    assert again["started"] == 0 and again.get("batchItemFailures", []) == poisoned
