"""No pipeline stopped by another: only enabled, valid items own trigger prefixes; the longest prefix wins;
a conflict names both items and clears as soon as the offending item is fixed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from mlops_sfn.core.router import RejectedEvent
from tests.aws import TABLE, Stack, deploy
from tests.conftest import DEMO, edited, load_item

pytestmark = pytest.mark.functional

PREFIX = "input/demo-dev-domain-cal-house-price/"


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mock_aws():
        yield deploy([load_item()])


def put_raw(stack: Stack, item: dict[str, Any]) -> None:
    """An item as an operator's careless edit may leave it: typed by hand, not checked."""
    stack.dynamodb.put_item(TableName=TABLE, Item=item)


# Items that must never take uploads from the demo pipeline, whatever prefix they claim.
OFFENDERS = {
    "disabled, holding the whole input prefix": lambda: edited(
        load_item(), {"consumption_pipeline_name": "off", "enabled": False, "trigger.prefix": "input/"}
    ),
    "disabled, the same prefix": lambda: edited(load_item(), {"consumption_pipeline_name": "off", "enabled": False}),
    "invalid complete_on": lambda: edited(
        load_item(), {"consumption_pipeline_name": "bad", "trigger.complete_on": {"Manifest": "manifest.json"}}
    ),
    "prefix without a trailing slash": lambda: edited(
        load_item(), {"consumption_pipeline_name": "bad", "trigger.prefix": PREFIX.rstrip("/")}
    ),
    "enabled is a string": lambda: edited(load_item(), {"consumption_pipeline_name": "bad", "enabled": "yes"}),
}


@pytest.mark.parametrize("offender", list(OFFENDERS))
def test_an_item_that_owns_no_prefix_never_stops_a_healthy_pipeline(stack: Stack, offender: str) -> None:
    stack.put_item(OFFENDERS[offender]())
    router = stack.router()
    assert router.handle(stack.s3_event(PREFIX + "data/part-1.csv", "p1"), "req-1")["skipped"] == 1  # a data file
    assert router.handle(stack.s3_event(PREFIX + "manifest.json", "m1"), "req-2")["started"] == 1


def test_a_two_attribute_junk_item_repeating_a_prefix_is_ignored(stack: Stack) -> None:
    put_raw(stack, {"consumption_pipeline_name": {"S": "junk"}, "trigger": {"M": {"prefix": {"S": PREFIX}}}})
    put_raw(stack, {"consumption_pipeline_name": {"S": "junk-2"}, "trigger": {"S": "input/"}})
    assert stack.router().handle(stack.s3_event(PREFIX + "manifest.json", "m1"), "req-1")["started"] == 1


def test_an_upload_under_an_invalid_items_prefix_is_dead_lettered_naming_why(stack: Stack) -> None:
    # Before: every object of such an upload was "part of an upload", skipped at info level, and lost.
    broken = edited(
        load_item(),
        {
            "consumption_pipeline_name": "broken",
            "trigger.prefix": "input/broken/",
            "trigger.complete_on": {"Manifest": "m.json"},
        },
    )
    stack.put_item(broken)
    for number, key in enumerate(["input/broken/data.csv", "input/broken/m.json"]):
        with pytest.raises(RejectedEvent) as raised:
            stack.router().handle(stack.s3_event(key, f"e{number}"), f"req-{number}")
        (rejection,) = raised.value.rejections
        assert rejection["pipeline"] == "broken"
        assert "broken declares 'input/broken/' but its trigger is invalid (trigger.complete_on" in rejection["reason"]
    assert stack.executions() == []


def test_a_conflict_clears_as_soon_as_the_offending_item_is_removed(stack: Stack) -> None:
    stack.put_item(edited(load_item(), {"consumption_pipeline_name": "demo-dev-twin"}))
    router = stack.router()  # one warm container, prefix map cached for 60 s
    with pytest.raises(RejectedEvent, match=r"demo-dev-twin all have trigger\.prefix"):
        router.handle(stack.s3_event(PREFIX + "manifest.json", "m2"), "req-2")
    stack.dynamodb.delete_item(TableName=TABLE, Key={"consumption_pipeline_name": {"S": "demo-dev-twin"}})
    # The replay of the rejected event: started at once, without waiting for the cache to expire.
    assert router.handle(stack.s3_event(PREFIX + "manifest.json", "m2"), "req-3")["started"] == 1


def test_an_item_disabled_after_the_map_was_read_takes_no_upload(stack: Stack) -> None:
    router = stack.router()
    router.handle(stack.s3_event(PREFIX + "manifest.json", "m1"), "req-1")
    stack.put_item(edited(load_item(), {"enabled": False}))
    with pytest.raises(RejectedEvent, match=f"{DEMO} declares '{PREFIX}' but it is disabled"):
        router.handle(stack.s3_event(PREFIX + "manifest.json", "m2"), "req-2")
