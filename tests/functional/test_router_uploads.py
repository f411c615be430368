"""Uploads that are complete: a manifest starts a run only when every object it lists is in the bucket
with the listed ETag; otherwise the event waits in the dead-letter queue, and replays once the data is there."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from mlops_sfn.core.router import RejectedEvent
from mlops_sfn.core.uploads import MANIFEST_LIMIT
from mlops_sfn.local import quotas
from tests.aws import BUCKET, REGION, Stack, deploy
from tests.conftest import load_event, load_item

pytestmark = pytest.mark.functional

FOLDER = "input/demo-dev-domain-cal-house-price/2024-06-01/"
ACCOUNT = "123456789012"  # moto's default account


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mock_aws():
        yield deploy([load_item()])


def put(stack: Stack, key: str, body: bytes) -> str:
    return str(stack.s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"].strip('"'))


def manifest_event(stack: Stack, files: list[dict[str, str]] | bytes) -> dict[str, Any]:
    body = files if isinstance(files, bytes) else json.dumps({"files": files}).encode()
    event = load_event("s3_object_created")
    event["detail"]["object"].update(key=FOLDER + "manifest.json", etag=put(stack, FOLDER + "manifest.json", body))
    return event


def rejection(stack: Stack, event: dict[str, Any]) -> str:
    with pytest.raises(RejectedEvent) as raised:
        stack.router().handle(event, "req")
    (rejected,) = raised.value.rejections
    assert rejected["field"] == "trigger.complete_on.manifest"
    return str(rejected["reason"])


def test_a_complete_upload_starts_its_run(stack: Stack) -> None:
    files = [
        {"key": FOLDER + f"data/part-{n}.csv", "etag": put(stack, FOLDER + f"data/part-{n}.csv", b"x")} for n in (1, 2)
    ]
    files.append({"key": "code/train.py", "etag": f'"{put(stack, FOLDER + "code/train.py", b"print(1)")}"'})  # relative
    assert stack.router().handle(manifest_event(stack, files), "req")["started"] == 1


def test_a_marker_uploaded_before_its_data_waits_for_a_replay(stack: Stack) -> None:
    data = b"a,b\n1,2\n"
    listed = [{"key": FOLDER + "data/houses.csv", "etag": hashlib.md5(data, usedforsecurity=False).hexdigest()}]
    event = manifest_event(stack, listed)
    reason = rejection(stack, event)
    assert "lists 1 object(s) not in the bucket as listed" in reason and "data/houses.csv (missing)" in reason
    assert "replay" in reason and stack.executions() == []
    put(stack, FOLDER + "data/houses.csv", data)  # the data arrives: the kept event is replayed
    assert stack.router().handle(event, "replay")["started"] == 1


def test_a_marker_over_an_older_uploads_data_is_refused(stack: Stack) -> None:
    put(stack, FOLDER + "data/houses.csv", b"last week's rows\n")
    reason = rejection(stack, manifest_event(stack, [{"key": FOLDER + "data/houses.csv", "etag": "0" * 32}]))
    assert "data/houses.csv (ETag differs)" in reason


def test_an_event_whose_manifest_was_replaced_since_starts_nothing_and_is_not_dead_lettered(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two uploads of manifest.json: the older event is superseded, not a failure. Kept in the dead-letter
    queue it could never be settled (every replay would be refused again), so it is skipped, and said so."""
    first = manifest_event(stack, [])
    second = manifest_event(stack, [{"key": FOLDER + "a.csv", "etag": put(stack, FOLDER + "a.csv", b"new")}])
    capsys.readouterr()
    assert stack.router().handle(first, "req")["skipped"] == 1  # no RejectedEvent: nothing for the queue
    (line,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert line["outcome"] == "skipped" and "manifest.json was replaced after this event" in line["reason"]
    assert stack.executions() == []
    assert stack.router().handle(second, "req")["started"] == 1


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"done", "not a manifest"),
        (b'{"files": "all"}', "not a manifest"),
        (b'{"files": [{"key": "a.csv"}]}', "files[0]"),
        (b"[" * 5000 + b"]" * 5000, "not a manifest"),
    ],
)
def test_a_manifest_that_lists_nothing_readable_is_rejected_saying_its_shape(
    stack: Stack, body: bytes, words: str
) -> None:
    reason = rejection(stack, manifest_event(stack, body))
    assert words in reason and '{"files": [{"key": "<key>", "etag": "<ETag>"}' in reason


def test_a_huge_manifest_is_not_read(stack: Stack) -> None:
    assert f"at most {MANIFEST_LIMIT} bytes" in rejection(stack, manifest_event(stack, b" " * (MANIFEST_LIMIT + 1)))


def test_a_deleted_manifest_is_rejected(stack: Stack) -> None:
    event = manifest_event(stack, [])
    stack.s3.delete_object(Bucket=BUCKET, Key=FOLDER + "manifest.json")
    assert "no longer in the bucket" in rejection(stack, event)


def test_a_redelivery_after_the_upload_was_replaced_is_a_duplicate_not_a_dead_letter(stack: Stack) -> None:
    first = manifest_event(stack, [])
    router = stack.router()
    assert router.handle(first, "req-1")["started"] == 1
    manifest_event(stack, [{"key": FOLDER + "a.csv", "etag": put(stack, FOLDER + "a.csv", b"new")}])  # replaced
    assert router.handle(first, "req-2")["duplicates"] == 1  # its run had started: nothing to replay


def _scheduled_reads(stack: Stack) -> list[str]:
    (execution,) = stack.executions()
    started = stack.execution_input(execution["name"])
    inputs = started["stages"]["preprocessing"]["request"]["ProcessingInputs"]
    return [entry["S3Input"]["S3Uri"] for entry in inputs]


def test_a_scheduled_run_reads_the_newest_upload_that_passes_its_manifest_check(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """A schedule tick names no upload: it reads the newest that passes the check its own run passed, the
    refused one after it passed over (and logged), and records which upload it read with its ETag."""
    import time

    accepted, refused = (f"input/demo-dev-domain-cal-house-price/2024-06-0{day}/" for day in (1, 2))
    time.sleep(1.1)  # after the fixtures' manifests: S3 lists LastModified to the second
    listed = [{"key": "data/houses.csv", "etag": put(stack, accepted + "data/houses.csv", b"6000 rows")}]
    manifest_etag = put(stack, accepted + "manifest.json", json.dumps({"files": listed}).encode())
    time.sleep(1.1)
    put(stack, refused + "data/houses.csv", b"100 rows")
    put(stack, refused + "manifest.json", json.dumps({"files": listed}).encode())
    capsys.readouterr()

    assert stack.router().handle(load_event("scheduled"), "req")["started"] == 1
    assert _scheduled_reads(stack) == [
        f"s3://{BUCKET}/{accepted}code/preprocessing.py",
        f"s3://{BUCKET}/{accepted}data/",
    ]
    (execution,) = stack.executions()
    trigger = stack.execution_input(execution["name"])["trigger"]
    assert trigger["source"] == "schedule"
    assert (trigger["key"], trigger["etag"]) == (accepted + "manifest.json", manifest_etag)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (over,) = [line for line in lines if line["outcome"] == "upload passed over"]
    assert over["upload"] == refused + "manifest.json" and "data/houses.csv (ETag differs)" in over["reason"]


def test_a_scheduled_run_with_no_upload_that_passes_is_kept_in_the_dead_letter_queue(stack: Stack) -> None:
    for key in [entry["Key"] for entry in stack.s3.list_objects_v2(Bucket=BUCKET)["Contents"]]:
        stack.s3.delete_object(Bucket=BUCKET, Key=key)
    put(stack, FOLDER + "manifest.json", json.dumps({"files": [{"key": "a.csv", "etag": "0" * 32}]}).encode())
    reason = rejection(stack, load_event("scheduled"))
    assert "no upload under input/demo-dev-domain-cal-house-price/ passes its manifest's check" in reason
    assert stack.executions() == []


def test_a_scheduled_run_of_an_item_that_names_no_upload_folder_checks_no_upload(stack: Stack) -> None:
    """Its locations are written out ({dataset_date} folders, say): there is no upload to pick, so none
    is looked for, and a prefix with no upload that passes does not hold the run back."""
    for key in [entry["Key"] for entry in stack.s3.list_objects_v2(Bucket=BUCKET)["Contents"]]:
        stack.s3.delete_object(Bucket=BUCKET, Key=key)
    item = json.loads(json.dumps(load_item()).replace("{upload_prefix}", "data/{dataset_date}/"))
    stack.put_item(item)
    assert stack.router().handle(load_event("scheduled"), "req")["started"] == 1
    assert _scheduled_reads(stack) == [
        f"s3://{BUCKET}/data/2024-06-03/code/preprocessing.py",
        f"s3://{BUCKET}/data/2024-06-03/data/",
    ]


def test_a_scheduled_run_whose_uploads_cannot_be_listed_is_kept_for_a_replay(stack: Stack) -> None:
    """Without the listing the run would read whatever lies under the prefix: the event is refused."""
    from botocore.exceptions import ClientError

    class Unlistable:
        def __init__(self, s3: Any) -> None:
            self.s3 = s3

        def __getattr__(self, name: str) -> Any:
            return getattr(self.s3, name)

        def get_paginator(self, operation: str) -> Any:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "ListObjectsV2")

    router = stack.router()
    router._s3 = Unlistable(stack.s3)
    with pytest.raises(RejectedEvent) as raised:
        router.handle(load_event("scheduled"), "req")
    (rejected,) = raised.value.rejections
    assert rejected["field"] == "trigger.prefix" and "could not be listed (AccessDenied)" in rejected["reason"]
    assert stack.executions() == []


# --- fan-out: the segments listed by a file of the upload ----------------------------------------

SEGMENTED = "demo-dev-segmented-house-price"
SEGMENTED_FOLDER = f"input/{SEGMENTED}/2024-06-01/"


@pytest.fixture
def segmented() -> Iterator[Stack]:
    item = load_item(SEGMENTED)
    del item["fanout"]["segments"]
    item["fanout"]["segments_file"] = "segments.csv"  # each upload lists its own
    with mock_aws():
        uninstall = quotas.install()  # ListServiceQuotas, which moto lacks: the local AWS's fill
        try:
            yield deploy([item])
        finally:
            uninstall()
            quotas.APPLIED.clear()


def segmented_upload(stack: Stack, files: dict[str, bytes]) -> dict[str, Any]:
    listed = [
        {"key": SEGMENTED_FOLDER + name, "etag": put(stack, SEGMENTED_FOLDER + name, body)}
        for name, body in files.items()
    ]
    body = json.dumps({"files": listed}).encode()
    event = load_event("s3_object_created")
    key = SEGMENTED_FOLDER + "manifest.json"
    event["detail"]["object"].update(key=key, etag=put(stack, key, body))
    return event


def test_the_segments_an_upload_lists_are_planned_and_written_where_the_run_reads_them(segmented: Stack) -> None:
    rows = "id,latitude_min,latitude_max\n" + "".join(f"s{n},{30 + n},{31 + n}\n" for n in range(12))
    assert (
        segmented.router().handle(segmented_upload(segmented, {"segments.csv": rows.encode()}), "req")["started"] == 1
    )
    (execution,) = segmented.executions()
    described = segmented.stepfunctions.describe_execution(executionArn=execution["executionArn"])
    where = json.loads(described["input"])["fanout"]["items"]
    listed = json.loads(segmented.s3.get_object(Bucket=where["Bucket"], Key=where["Key"])["Body"].read())
    assert [segment["segment"] for segment in listed] == [f"s{n}" for n in range(12)]
    arguments = listed[3]["stages"]["preprocessing"]["request"]["AppSpecification"]["ContainerArguments"]
    assert arguments[-4:] == ["--latitude-min", "33", "--latitude-max", "34"]  # the file's values, as text


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        ({}, "segments.csv: not in the upload: upload it with the run's files, or list fanout.segments"),
        ({"segments.csv": b"name,latitude_min\nnorth,1\n"}, "its header row (name,latitude_min) names no id column"),
        ({"segments.csv": b"id,latitude_min,latitude_max\na,1,2\nb,1\n"}, "line 3 has not as many fields"),
        ({"segments.csv": b"id,latitude_min,latitude_max\na,1,2\na,2,3\n"}, "repeats segment 'a'"),
        ({"segments.csv": b"id,latitude_min\na,1\n"}, "segment 'a' has no field 'latitude_max'"),
        ({"segments.csv": b"id\n" + b"".join(b"s%d\n" % n for n in range(1001))}, "at most 1000 run in one run"),
    ],
)
def test_an_upload_whose_segments_cannot_be_used_starts_nothing_and_says_why(
    segmented: Stack, files: dict[str, bytes], reason: str
) -> None:
    with pytest.raises(RejectedEvent) as raised:
        segmented.router().handle(segmented_upload(segmented, files), "req")
    (rejected,) = raised.value.rejections
    assert reason in rejected["reason"] or any(reason in p["reason"] for p in rejected.get("problems", []))
    assert segmented.executions() == []


def test_the_router_bounds_segments_at_once_by_the_sagemaker_quotas_it_reads(
    segmented: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = "id,latitude_min,latitude_max\n" + "".join(f"s{n},{30 + n},{31 + n}\n" for n in range(12))
    quotas.applied(ACCOUNT, REGION, "sagemaker", "ml.m5.large for processing job usage", 2)
    event = segmented_upload(segmented, {"segments.csv": rows.encode()})
    assert segmented.router().handle(event, "req")["started"] == 1
    (execution,) = segmented.executions()
    described = segmented.stepfunctions.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"])["fanout"]["max_concurrency"] == 2  # the item asks for 4
    (line,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "max_concurrency" in line]
    assert line["max_concurrency"] == (
        "max_concurrency 4 lowered to 2: SageMaker's quota 'ml.m5.large for processing job usage' is 2 instances"
        " and each segment holds 1"
    )


def test_a_quota_that_lets_no_segment_run_keeps_the_event_and_says_which(segmented: Stack) -> None:
    rows = b"id,latitude_min,latitude_max\na,32,33\n"
    quotas.applied(ACCOUNT, REGION, "sagemaker", "ml.m5.large for training job usage", 0)
    with pytest.raises(RejectedEvent) as raised:
        segmented.router().handle(segmented_upload(segmented, {"segments.csv": rows}), "req")
    (rejected,) = raised.value.rejections
    assert rejected["field"] == "fanout.stages"
    assert "'ml.m5.large for training job usage' is 0 instances" in rejected["reason"]
    assert segmented.executions() == []
