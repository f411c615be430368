"""Prefix ownership: which pipeline an uploaded key belongs to, from every item's trigger.prefix.

The router's second job (core/router.py routes, core/drift.py handles drift alarms). Only an enabled
item with a valid name and trigger owns its prefix (item.prefix_owner), so a disabled, half-written
or junk item never takes uploads from another pipeline; the others are kept aside to say why a key
has no owner.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import dynamodb_json
from .item import prefix_owner
from .log import log
from .triggers import shorten


def trigger_items(dynamodb: Any, table: str) -> Iterator[dict[str, Any]]:
    """Every item's name, trigger and enabled flag, read with one strongly consistent Scan (its pages);
    an item that is not DynamoDB JSON is left out."""
    request: dict[str, Any] = {
        "TableName": table,
        # A Scan is eventually consistent by default and could miss the item just added that made
        # the router read the table again (DynamoDB Developer Guide, "Read consistency for scan").
        "ConsistentRead": True,
        # The whole (small) trigger map: moto fails on a nested path through a non-map value.
        "ProjectionExpression": "#name, #trigger, #enabled",
        "ExpressionAttributeNames": {  # reserved words
            "#name": "consumption_pipeline_name",
            "#trigger": "trigger",
            "#enabled": "enabled",
        },
    }
    while True:
        page = dynamodb.scan(**request)
        for raw in page.get("Items", []):
            try:
                yield dynamodb_json.from_typed(raw)
            except dynamodb_json.NotDynamoDBJson:
                continue
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@dataclass
class PrefixIndex:
    """Every owned prefix and its pipelines, read with one Scan and kept for `ttl` seconds; any
    rejection makes the router read it again at once, so an added, edited or deleted item counts
    immediately."""

    ttl: float
    clock: Callable[[], float] = time.monotonic
    prefixes: dict[str, list[str]] = field(default_factory=dict)  # prefix -> pipelines owning it
    ignored: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # prefix -> (pipeline, why not)
    read_at: float | None = None

    def stale(self) -> bool:
        return self.read_at is None or self.clock() - self.read_at >= self.ttl

    def load(self, dynamodb: Any, table: str) -> None:
        prefixes: dict[str, list[str]] = {}
        ignored: dict[str, list[tuple[str, str]]] = {}
        for item in trigger_items(dynamodb, table):
            name = item.get("consumption_pipeline_name")
            pipeline = name if isinstance(name, str) else None
            prefix, why_not = prefix_owner(item)
            trigger = item.get("trigger")
            declared = trigger.get("prefix") if isinstance(trigger, dict) else None
            if pipeline and prefix:
                prefixes.setdefault(prefix, []).append(pipeline)
            elif pipeline and isinstance(declared, str):
                ignored.setdefault(declared, []).append((pipeline, why_not))
        self.prefixes, self.ignored = prefixes, ignored
        self.read_at = self.clock()

    def matches(self, key: str) -> list[tuple[str, list[str]]]:
        """The owned prefixes holding the key with their pipelines, longest first: the first one wins."""
        found = [(prefix, sorted(pipelines)) for prefix, pipelines in self.prefixes.items() if key.startswith(prefix)]
        return sorted(found, key=lambda match: -len(match[0]))

    def why_unowned(self, key: str) -> tuple[str | None, str]:
        """What the table says of a key no owned prefix holds: (the first item declaring a prefix holding it
        without owning it, and why each such item does not own it)."""
        declared = [
            (pipeline, f"{pipeline} declares {prefix!r} but {why_not}")
            for prefix, entries in sorted(self.ignored.items(), key=lambda entry: -len(entry[0]))
            if key.startswith(prefix)
            for pipeline, why_not in entries
        ]
        return (declared[0][0] if declared else None), "; ".join(text for _, text in declared[:5])

    def owner(self, key: str, get_item: Callable[[str], dict[str, Any] | None]) -> tuple[str, dict[str, Any]] | Unowned:
        """(pipeline, item) owning the key by the index, confirmed by `get_item` (a consistent read);
        else why none does."""
        matches = self.matches(key)
        if matches and len(matches[0][1]) > 1:
            prefix, pipelines = matches[0]
            reason = (
                f"pipelines {', '.join(pipelines)} all have trigger.prefix {prefix!r}; "
                "give each its own prefix (or disable one), then replay"
            )
            return Unowned(pipelines[0], "trigger.prefix", reason)
        if matches:
            prefix, (pipeline,) = matches[0]
            item = get_item(pipeline)
            if item is not None and prefix_owner(item)[0] == prefix:
                if len(matches) > 1:  # nested prefixes: the longest wins; said, so a surprise can be traced
                    outer = ", ".join(f"{other} ({shorter!r})" for shorter, others in matches[1:] for other in others)
                    log(
                        level="warning",
                        pipeline=pipeline,
                        key=shorten(key, 300),
                        outcome="nested prefixes",
                        reason=f"{prefix!r} is the longest prefix holding the key; also held by {outer}",
                    )
                return pipeline, item
        reason = f"no enabled, valid pipeline's trigger.prefix holds {shorten(key, 300)!r}"
        declaring, why = self.why_unowned(key)
        reason += f"; {why}" if why else "; add an item whose trigger.prefix covers it"
        return Unowned(declaring, "detail.object.key", reason)


@dataclass(frozen=True)
class Unowned:
    """Why no pipeline takes an uploaded key: what its rejection names."""

    pipeline: str | None
    field: str
    reason: str
