"""Checks an item against pipeline_item.schema.json.

The router Lambda runs this too, and its runtime has boto3 but not the jsonschema package (whose
dependencies include compiled code), so this module implements the small subset of JSON Schema that
the item schema uses. tests/unit/test_schema.py checks it agrees with the jsonschema package.
"""

from __future__ import annotations

import difflib
import json
import re
from functools import cache
from importlib import resources
from typing import Any

from .problems import Problem, describe, join, json_type

SCHEMA_FILE = "pipeline_item.schema.json"

_TYPE_WORDS = {
    "boolean": "boolean (true or false)",
    "integer": "integer",
    "number": "number",
    "string": "string",
    "object": "object",
    "array": "array",
}


@cache
def item_schema() -> dict[str, Any]:
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a local "$ref" (#/$defs/name), keeping the referring node's own description."""
    ref = schema.get("$ref")
    if ref is None:
        return schema
    name = ref.removeprefix("#/$defs/")
    target = dict(item_schema()["$defs"][name])
    target.update({k: v for k, v in schema.items() if k != "$ref"})
    return resolve(target)


def check(value: Any, schema: dict[str, Any] | None = None, path: str = "") -> list[Problem]:
    """All problems of value against schema (default: the whole item schema)."""
    node = resolve(item_schema() if schema is None else schema)
    problems: list[Problem] = []
    if "oneOf" in node:  # alternatives told apart by their type: `true`, or an object with settings
        fitting = [alternative for alternative in node["oneOf"] if _is_type(value, alternative["type"])]
        if not fitting:
            words = " or ".join(_TYPE_WORDS[alternative["type"]] for alternative in node["oneOf"])
            return [Problem(path, f"expected {words}, got {describe(value)}")]
        return check(value, fitting[0], path)
    expected = node.get("type")
    if expected is not None and not _is_type(value, expected):
        return [Problem(path, f"expected {_TYPE_WORDS[expected]}, got {describe(value)}")]
    if "enum" in node and value not in node["enum"]:
        allowed = ", ".join(json.dumps(v) for v in node["enum"])
        return [Problem(path, f"{json.dumps(value)} is not allowed; allowed: {allowed}")]
    if isinstance(value, str):
        problems += _check_string(value, node, path)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        problems += _check_number(value, node, path)
    elif isinstance(value, list):
        problems += _check_array(value, node, path)
    elif isinstance(value, dict):
        problems += _check_object(value, node, path)
    return problems


def _is_type(value: Any, expected: str) -> bool:
    actual = json_type(value)
    if expected == "integer" and isinstance(value, float):
        return value.is_integer()  # as JSON Schema defines integer: 1.0 is one
    return actual == expected or (expected == "number" and actual == "integer")


def _check_string(value: str, node: dict[str, Any], path: str) -> list[Problem]:
    allowed = node.get("x-allowed")
    if "minLength" in node and len(value) < node["minLength"]:
        return [Problem(path, f"must be at least {node['minLength']} characters long")]
    if "maxLength" in node and len(value) > node["maxLength"]:
        return [Problem(path, f"is {len(value)} characters long; at most {node['maxLength']} are allowed")]
    if "pattern" in node and not re.search(node["pattern"], value):
        return [Problem(path, f"{value!r} is not valid; allowed: {allowed or 'pattern ' + node['pattern']}")]
    return []


def _check_number(value: float, node: dict[str, Any], path: str) -> list[Problem]:
    low, high = node.get("minimum"), node.get("maximum")
    if (low is not None and value < low) or (high is not None and value > high):
        return [Problem(path, f"{value} is out of range; allowed: {low} to {high}")]
    above = node.get("exclusiveMinimum")
    if above is not None and value <= above:
        return [Problem(path, f"{value} is out of range; allowed: above {above}{f' to {high}' if high else ''}")]
    return []


def _check_array(value: list[Any], node: dict[str, Any], path: str) -> list[Problem]:
    problems: list[Problem] = []
    if "maxItems" in node and len(value) > node["maxItems"]:
        problems.append(Problem(path, f"has {len(value)} entries; at most {node['maxItems']} are allowed"))
    if "minItems" in node and len(value) < node["minItems"]:
        problems.append(Problem(path, f"has {len(value)} entries; at least {node['minItems']} are needed"))
    if node.get("uniqueItems") and len({json.dumps(v, sort_keys=True) for v in value}) != len(value):
        problems.append(Problem(path, "has repeated entries; list each value once"))
    if "items" in node:
        for index, entry in enumerate(value):
            problems += check(entry, node["items"], join(path, index))
    return problems


def _check_object(value: dict[str, Any], node: dict[str, Any], path: str) -> list[Problem]:
    problems: list[Problem] = []
    properties: dict[str, Any] = node.get("properties", {})
    for name in node.get("required", []):
        if name not in value:
            hint = resolve(properties.get(name, {})).get("description", "")
            problems.append(Problem(join(path, name), "is required" + (f": {hint}" if hint else "")))
    if node.get("additionalProperties") is False:
        for name in value:
            if name not in properties:
                problems.append(Problem(join(path, name), unknown_field_message(name, properties)))
    count = len(value)
    if count < node.get("minProperties", 0) or count > node.get("maxProperties", count):
        names = " or ".join(properties)
        problems.append(Problem(path, f"needs exactly one of {names}"))
    for name, entry in value.items():
        if name in properties:
            problems += check(entry, properties[name], join(path, name))
    return problems


UNKNOWN_FIELD = "unknown field"


def unknown_field_message(name: str, allowed: Any) -> str:
    names = sorted(allowed)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{UNKNOWN_FIELD}; {hint}allowed: {', '.join(names)}"
