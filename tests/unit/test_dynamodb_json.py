"""Plain <-> DynamoDB-typed JSON, numbers included."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import boto3.dynamodb.types as ddb_types
from hypothesis import given
from hypothesis import strategies as st

from mlops_sfn.core import dynamodb_json
from mlops_sfn.core.item import parse_item
from mlops_sfn.core.plan import check_with_sample
from tests.conftest import load_item

plain_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer())
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(min_size=1, max_size=6), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(min_size=1, max_size=8), plain_values, min_size=1, max_size=5))
def test_round_trip_plain_typed_plain(item: dict[str, Any]) -> None:
    typed = dynamodb_json.to_typed(item)
    assert dynamodb_json.is_typed_item(typed)
    assert dynamodb_json.from_typed(json.loads(json.dumps(typed))) == item


def test_shipped_items_round_trip_and_stay_valid() -> None:
    for name in ("demo-dev-domain-cal-house-price", "demo-dev-deploy-existing-model"):
        item = load_item(name)
        typed = dynamodb_json.to_typed(item)
        assert parse_item(typed) == item
        assert parse_item({"Item": typed}) == item  # the shape `aws dynamodb get-item` prints
        assert check_with_sample(parse_item(typed)) == []


def test_boto3_decimals_become_json_numbers() -> None:
    """What boto3's resource API returns (Decimal everywhere) encodes as JSON after plain()."""
    deserializer = ddb_types.TypeDeserializer()
    typed = dynamodb_json.to_typed(load_item())
    from_boto3 = {k: deserializer.deserialize(v) for k, v in typed.items()}
    assert isinstance(from_boto3["quality_gate"]["threshold"], Decimal)
    item = dynamodb_json.plain(from_boto3)
    assert item["quality_gate"]["threshold"] == 0.75
    assert isinstance(item["stages"]["approval"]["timeout_hours"], int)
    json.dumps(item)  # the earlier framework crashed here


def test_typed_numbers_parse_to_int_or_float() -> None:
    assert dynamodb_json.from_typed({"a": {"N": "3"}, "b": {"N": "0.1"}, "c": {"NS": ["1", "2.5"]}}) == {
        "a": 3,
        "b": 0.1,
        "c": [1, 2.5],
    }
