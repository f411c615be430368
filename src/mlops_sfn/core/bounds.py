"""Limits on what the framework reads from outside (events, item files, manifests), checked before
anything recurses into it, so a hostile or broken input gets one line naming the limit, never a crash."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from .problems import Error

# DynamoDB stores attributes nested at most 32 levels deep (Developer Guide, "Quotas in Amazon
# DynamoDB", Attributes): a deeper item could never be in the table.
ITEM_DEPTH = 32
# An event nests its payload a few levels (SQS record, body, overrides): twice an item's depth is ample.
EVENT_DEPTH = 64
FILE_BYTES = 4 << 20  # an item file, typed JSON included (a DynamoDB item is at most 400 KB)


class InputRefused(Error, ValueError):
    """An input beyond one of these limits; the message names the limit."""


def nesting(value: Any) -> int:
    """How deeply lists and objects nest in a JSON value (a scalar is 0), without recursing."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        node, level = pending.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        pending.extend((child, level + 1) for child in children)
    return deepest


def check_nesting(value: Any, limit: int, what: str) -> None:
    if nesting(value) > limit:
        raise InputRefused(f"{what} is nested more than {limit} levels deep")


def read_text(path: Path, limit: int = FILE_BYTES) -> str:
    """A regular file's text (never a FIFO or device, which could block for ever), at most `limit` bytes."""
    try:
        status = path.stat()
    except OSError as error:
        raise InputRefused(f"cannot read: {error.strerror or error}") from error
    if stat.S_ISDIR(status.st_mode):
        raise InputRefused("a folder, not a file: name the file")
    if not stat.S_ISREG(status.st_mode):
        raise InputRefused("not a regular file (a FIFO, device or socket is never read)")
    if status.st_size > limit:
        raise InputRefused(f"{status.st_size} bytes; at most {limit} bytes are read")
    return path.read_text(encoding="utf-8")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all different: JSON parsers keep one of a repeated key's values (Python's
    the last), so a file that repeats one would silently lose the other."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise InputRefused(f"the key {key!r} appears twice in one object: keep one")
        seen[key] = value
    return seen


def read_json(path: Path, limit: int = FILE_BYTES) -> Any:
    """read_text, parsed as parse_json parses."""
    return parse_json(read_text(path, limit))


def parse_json(text: str) -> Any:
    """JSON text parsed; a key repeated in an object, or a number Python will not convert (an integer
    of more than 4,300 digits), is refused naming it (JSONDecodeError for text that is not JSON)."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise InputRefused(f"nested more than {EVENT_DEPTH} levels deep") from None
    except json.JSONDecodeError:
        raise
    except ValueError as error:  # int() refuses integers of more than sys.get_int_max_str_digits() digits
        raise InputRefused(f"a number too long to read: {error}") from None
