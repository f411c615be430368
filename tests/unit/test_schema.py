"""The in-house schema checker agrees with the jsonschema package on the item schema."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_sfn.core import schema
from tests.conftest import DELETE, edited, load_item

EDITS = [
    {},
    {"consumption_pipeline_name": "bad name"},
    {"consumption_pipeline_name": "x" * 65},
    {"schema_version": 2},
    {"enabled": "Y"},
    {"stages.training.run": "Y"},
    {"stages.training.run": DELETE},
    {"stages.trainnig": {"run": True}},
    {"trigger.complete_on": {"suffix": "a", "manifest": "b"}},
    {"trigger.complete_on": {}},
    {"trigger.prefix": "/leading/"},
    {"trigger.schedule": "every day"},
    {"trigger.schedule": "rate(5 minutes)"},
    {"quality_gate.comparison": "lt"},
    {"quality_gate.threshold": "0.5"},
    {"stages.approval.timeout_hours": 0},
    {"stages.approval.timeout_hours": 8761},
    {"stages.deploy.instance_count": 1.5},
    {"stages.deploy.rollback_alarms": ["a", "a"]},
    {"stages.deploy.smoke_test": {"content_type": "text/csv"}},
    {"notifications.on": ["failure", "sms"]},
    {"description": "x" * 1025},
]


@pytest.mark.parametrize("changes", EDITS, ids=[",".join(e) or "unchanged" for e in EDITS])
def test_agrees_with_jsonschema(changes: dict[str, Any]) -> None:
    item = edited(load_item(), changes)
    reference = jsonschema.Draft202012Validator(schema.item_schema())
    assert (not list(reference.iter_errors(item))) == (not schema.check(item))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(
    path=st.sampled_from(["enabled", "trigger", "trigger.prefix", "stages", "stages.deploy", "quality_gate"]),
    value=json_values,
)
def test_agrees_on_arbitrary_values(path: str, value: Any) -> None:
    item = edited(load_item(), {path: value})
    reference = jsonschema.Draft202012Validator(schema.item_schema())
    assert (not list(reference.iter_errors(item))) == (not schema.check(item))


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(schema.item_schema())


def test_unknown_field_suggests_the_close_name() -> None:
    problems = schema.check(edited(load_item(), {"stages.trainnig": {"run": True}}))
    assert [p.path for p in problems] == ["stages.trainnig"]
    assert "did you mean 'training'?" in problems[0].message
