"""Prefixes and markers hold only characters S3 leaves alone when it URL-encodes a key in an event, in
the item schema and in the Terraform root alike: the EventBridge rule filters on the encoded key."""

from __future__ import annotations

import re
from urllib.parse import quote_plus

import pytest

from mlops_sfn.core import schema
from mlops_sfn.core.triggers import KEY_SAFE
from tests.conftest import ROOT

GOOD = ["input/", "input/demo-dev_1.2/", "a/b/c/"]
BAD = ["input/dt=2024/", "in put/", "input/café/", "input/a+b/", "input/100%/", "input/(1)/", "input/x*/"]


def terraform_rule() -> re.Pattern[str]:
    """The root's validation of input_prefix, as Terraform evaluates it (its RE2 and Python agree here)."""
    found = re.search(r'can\(regex\("(.+?)", var\.input_prefix\)\)', (ROOT / "variables.tf").read_text())
    assert found, "variables.tf validates input_prefix with can(regex(...))"
    return re.compile(found.group(1))


@pytest.mark.parametrize("prefix", GOOD + BAD)
def test_a_prefix_is_accepted_exactly_when_s3_writes_it_unchanged(prefix: str) -> None:
    unchanged = quote_plus(prefix, safe="/") == prefix and KEY_SAFE.fullmatch(prefix) is not None
    assert (prefix in GOOD) == unchanged
    assert bool(terraform_rule().fullmatch(prefix)) == unchanged
    item_pattern = schema.item_schema()["$defs"]["trigger"]["properties"]["prefix"]["pattern"]
    assert bool(re.fullmatch(item_pattern, prefix)) == unchanged
