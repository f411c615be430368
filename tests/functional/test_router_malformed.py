"""Property-based: a malformed event never starts an execution and never raises anything but RejectedEvent."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from mlops_sfn.core.item import check_item
from mlops_sfn.core.router import RejectedEvent, Router
from tests.aws import Stack, deploy
from tests.conftest import DEMO, load_event, load_item

pytestmark = pytest.mark.functional

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
# What DynamoDB can store (numbers within its range, non-empty map keys): an operator's edit can be anything of it.
STORABLE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(-1e9, 1e9).map(lambda x: round(x, 6))
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(min_size=1, max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
NOT_A_STRING = JSON.filter(lambda value: not isinstance(value, str))
# A name that is not the deployed pipeline's (they exist in the table; everything else does not).
OTHER_NAME = st.text(min_size=1, max_size=70).filter(lambda name: name not in {DEMO})

# Fields each event shape needs, and values that make each of them wrong.
REQUIRED = {
    "s3_object_created": {
        ("source",): NOT_A_STRING | st.text(max_size=10),
        ("detail-type",): NOT_A_STRING | st.text(max_size=10),
        ("detail",): NOT_A_STRING,
        ("detail", "bucket", "name"): NOT_A_STRING | OTHER_NAME,
        ("detail", "object", "key"): NOT_A_STRING | st.text(max_size=40),
        ("detail", "object", "etag"): NOT_A_STRING.filter(lambda value: value is not None),
        ("time",): NOT_A_STRING.filter(lambda value: value is not None) | st.text(max_size=10),
    },
    "scheduled": {
        ("detail",): NOT_A_STRING,
        ("detail", "consumption_pipeline_name"): NOT_A_STRING | OTHER_NAME,
        ("time",): NOT_A_STRING | st.text(max_size=8),
    },
    "manual": {
        ("consumption_pipeline_name",): NOT_A_STRING | OTHER_NAME,
        ("overrides",): NOT_A_STRING.filter(lambda value: not isinstance(value, dict)),
        ("overrides", "stages"): JSON.filter(lambda value: value != {}),
        ("dataset_date",): st.booleans() | st.lists(JSON) | st.text(min_size=65) | st.just("2024/05/31"),
        ("run_id",): NOT_A_STRING.filter(lambda value: value is not None) | st.just("a b") | st.text(min_size=65),
    },
    "records_legacy": {
        ("Records",): NOT_A_STRING | st.just([]),
        ("Records", 0): NOT_A_STRING.filter(lambda value: not isinstance(value, dict)),
        ("Records", 0, "body"): NOT_A_STRING.filter(lambda value: not isinstance(value, dict)) | st.text(max_size=20),
        ("Records", 0, "body", "consumption_pipeline_name"): NOT_A_STRING | OTHER_NAME,
        ("Records", 0, "body", "dataset_date"): st.booleans() | st.dictionaries(st.text(), JSON) | st.just("a b"),
    },
}
MUTATIONS = [(fixture, path) for fixture, fields in REQUIRED.items() for path in fields]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with mock_aws():
        yield deploy([load_item(), load_item("demo-dev-train-and-batch-score")])


def handle_without_starting(stack: Stack, router: Router, event: Any) -> None:
    before = len(stack.executions())
    try:
        summary = router.handle(event, "hypothesis")
    except RejectedEvent as error:
        assert error.rejections and all(r["field"] and r["reason"] for r in error.rejections)
    else:
        assert summary["started"] == 0, json.dumps(event)[:500]
    assert len(stack.executions()) == before


def set_path(event: Any, path: tuple[str | int, ...], value: Any) -> Any:
    result = copy.deepcopy(event)
    node = result
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return result


_DELETE = object()


# Fields an event may leave out: deleting them gives a valid event, so they are only ever set wrong.
OPTIONAL = {("detail", "object", "etag"), ("time",), ("overrides",), ("overrides", "stages"), ("dataset_date",)}
OPTIONAL |= {("run_id",), ("Records", 0, "body", "dataset_date")}


@st.composite
def broken_events(draw: st.DrawFn) -> Any:
    fixture, path = draw(st.sampled_from(MUTATIONS))
    wrong = REQUIRED[fixture][path]
    optional = path in OPTIONAL and not (fixture == "scheduled" and path == ("time",))
    broken = set_path(load_event(fixture), path, draw(wrong if optional else st.just(_DELETE) | wrong))
    records = broken.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict) and draw(st.booleans()):
        records[0]["body"] = json.dumps(records[0].get("body"))  # the same body, as a string (SQS-style)
    return broken


SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(event=broken_events())
def test_a_broken_field_starts_nothing(stack: Stack, event: Any) -> None:
    handle_without_starting(stack, stack.router(), event)


@SETTINGS
@given(event=JSON)
def test_arbitrary_json_starts_nothing(stack: Stack, event: Any) -> None:
    handle_without_starting(stack, stack.router(), event)


@SETTINGS
@given(records=st.lists(JSON, min_size=1, max_size=3))
def test_arbitrary_batches_start_nothing(stack: Stack, records: list[Any]) -> None:
    handle_without_starting(stack, stack.router(), {"Records": records})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from(["trigger", "stages", "enabled", "quality_gate", "version"]), STORABLE))
def test_a_malformed_stored_item_starts_nothing(stack: Stack, changes: dict[str, Any]) -> None:
    # Whatever an operator writes into the table, the item is rejected or skipped, never crashes the router.
    broken = load_item() | changes
    assume(broken.get("enabled") is False or check_item(broken))
    stack.put_item(broken)
    try:
        for fixture in ("s3_object_created", "manual"):
            handle_without_starting(stack, stack.router(), load_event(fixture) | {"run_id": "malformed"})
    finally:
        stack.put_item(load_item())
