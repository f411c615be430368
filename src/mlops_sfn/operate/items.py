"""The item files and the deployed pipeline-config table, compared, pushed and pulled.

A push writes only items that are valid, each against the others and against the table's other
items (a trigger prefix two pipelines would share, say): one invalid item and nothing is written.
Items are stored as DynamoDB JSON (dynamodb_json), as Terraform's table items are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core import dynamodb_json
from ..core.item import ItemFileError, item_files, load_item_file
from ..tools.generated import typed_items

KEY = "consumption_pipeline_name"
KINDS = {"same": "=", "changed": "~", "only in files": "+", "only in table": "-"}


@dataclass
class Difference:
    pipeline: str
    kind: str  # KINDS
    paths: list[str] = field(default_factory=list)  # for "changed": the fields that differ

    def line(self) -> str:
        detail = {
            "changed": ": " + ", ".join(self.paths),
            "only in files": " (only in the files: push adds it)",
            "only in table": " (only in the table: pull writes it, push leaves it)",
        }.get(self.kind, "")
        return f"{KINDS[self.kind]} {self.pipeline}{detail}"


def deployed(dynamodb: Any, table: str) -> dict[str, dict[str, Any]]:
    """Every item in the table, as plain JSON, by pipeline name (Scan, page by page)."""
    found = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for typed in page["Items"]:
            item = dynamodb_json.from_typed(typed)
            found[str(item[KEY])] = item
    return found


def changed_paths(ours: Any, theirs: Any, path: str = "") -> list[str]:
    """The dotted paths at which two items differ (a field present in one only counts)."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return [
            found
            for name in sorted(set(ours) | set(theirs))
            for found in changed_paths(ours.get(name, _MISSING), theirs.get(name, _MISSING), f"{path}.{name}")
        ]
    return [] if ours == theirs else [path.lstrip(".") or "(the item)"]


_MISSING = object()


def differences(files: dict[str, dict[str, Any]], table: dict[str, dict[str, Any]]) -> list[Difference]:
    found = []
    for pipeline in sorted(set(files) | set(table)):
        if pipeline not in table:
            found.append(Difference(pipeline, "only in files"))
        elif pipeline not in files:
            found.append(Difference(pipeline, "only in table"))
        else:
            paths = changed_paths(files[pipeline], table[pipeline])
            found.append(Difference(pipeline, "changed" if paths else "same", paths))
    return found


def push(dynamodb: Any, table: str, items: list[dict[str, Any]]) -> None:
    for item in items:
        dynamodb.put_item(TableName=table, Item=dynamodb_json.to_typed(item))


def pull(table: dict[str, dict[str, Any]], into: Path) -> list[Path]:
    """Write each item over its file in `into` (else to `<pipeline>.json`), and its DynamoDB JSON
    copy under typed/ as `mlops-sfn generate` would; returns the item files written."""
    into.mkdir(parents=True, exist_ok=True)
    existing = {}
    for path in item_files(into):
        try:
            existing[str(load_item_file(path).get(KEY))] = path
        except ItemFileError:
            continue  # an unreadable file is not this pipeline's: it is left as it is
    written = []
    for pipeline, item in sorted(table.items()):
        ordered = {KEY: item[KEY], **{name: value for name, value in item.items() if name != KEY}}
        path = existing.get(pipeline, into / f"{pipeline}.json")
        path.write_text(json.dumps(ordered, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    for path, data in typed_items(into).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return written
