"""Uploads that are complete: a manifest starts a run only when every object it lists is in the bucket
with the listed ETag; otherwise the event waits in the dead-letter queue, and replays once the data is there."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from mlops_sfn.core.router import MANIFEST_LIMIT, RejectedEvent
from tests.aws import BUCKET, Stack, deploy
from tests.conftest import load_event, load_item

pytestmark = pytest.mark.functional

FOLDER = "input/demo-dev-domain-cal-house-price/2024-06-01/"


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
