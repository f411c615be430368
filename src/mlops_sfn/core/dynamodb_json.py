"""Plain JSON <-> DynamoDB-typed JSON ({"S": ...}, {"N": ...}, {"M": ...}).

DynamoDB stores every number as a decimal string; the earlier framework passed boto3's Decimal
values to json.dumps and crashed. Here numbers come back as int when integral and float otherwise,
so an item read from the table is plain JSON again.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .problems import Error

TYPE_KEYS = frozenset({"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"})


class NotDynamoDBJson(Error, ValueError):
    """A value that is not DynamoDB-typed JSON."""


def is_typed_value(value: Any) -> bool:
    """True for a one-key {"<type>": value} wrapper."""
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in TYPE_KEYS


def is_typed_item(document: Any) -> bool:
    """True when every attribute of document is a typed wrapper."""
    return isinstance(document, dict) and bool(document) and all(map(is_typed_value, document.values()))


def number(text: str | Decimal) -> int | float:
    value = Decimal(text)
    if not value.is_finite():
        raise NotDynamoDBJson(f"{text!r} is not a finite number")
    return int(value) if value == value.to_integral_value() else float(value)


def from_typed(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB-typed item (as GetItem or the console's DynamoDB JSON view gives it) as plain JSON."""
    return {name: from_typed_value(value, name) for name, value in item.items()}


def from_typed_value(value: Any, path: str = "") -> Any:
    if not is_typed_value(value):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise NotDynamoDBJson(f"{path}: expected a DynamoDB-typed value like {{'S': 'text'}}, got {shown}")
    kind, inner = next(iter(value.items()))
    if kind == "S" or kind == "B":
        return inner
    if kind == "N":
        return number(inner)
    if kind == "BOOL":
        return bool(inner)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: from_typed_value(v, f"{path}.{k}") for k, v in inner.items()}
    if kind == "L":
        return [from_typed_value(v, f"{path}[{i}]") for i, v in enumerate(inner)]
    if kind == "NS":
        return [number(v) for v in inner]
    return list(inner)  # SS, BS


def to_typed(item: dict[str, Any]) -> dict[str, Any]:
    """A plain JSON item as DynamoDB-typed JSON (for aws_dynamodb_table_item or PutItem)."""
    return {name: to_typed_value(value) for name, value in item.items()}


def to_typed_value(value: Any) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float | Decimal):
        return {"N": str(value) if not isinstance(value, float) else repr(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, dict):
        return {"M": {k: to_typed_value(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_typed_value(v) for v in value]}
    raise TypeError(f"cannot store {type(value).__name__} in DynamoDB JSON")


def plain(value: Any) -> Any:
    """Replace Decimal (from boto3's resource API) with int or float, recursively."""
    if isinstance(value, Decimal):
        return number(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
