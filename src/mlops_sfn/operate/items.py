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
from ..core.problems import Error
from ..tools.generated import typed_items

KEY = "consumption_pipeline_name"
KINDS = {"same": "=", "changed": "~", "only in files": "+", "only in table": "-"}
# The table's push revision: an item no pipeline can be named ('#' is outside the names' alphabet),
# which every push and delete moves on in the same transaction as its writes, on condition that it
# is still what the command read before it checked the items. Two commands that overlap cannot both
# write: the later one fails whole ("Amazon DynamoDB transactions", TransactWriteItems: all or
# nothing, a failed condition cancels the transaction).
REVISION = "#items-revision"
TRANSACTION_LIMIT = 100  # actions in one TransactWriteItems


class TableChanged(Error):
    """Another push or delete wrote the table after this command read it: nothing was written."""


def revision(dynamodb: Any, table: str) -> int:
    """The table's push revision as it is now (0 before the first push)."""
    found = dynamodb.get_item(TableName=table, Key={KEY: {"S": REVISION}}, ConsistentRead=True).get("Item")
    return int(found["revision"]["N"]) if found else 0


def _move_on(table: str, read: int) -> dict[str, Any]:
    """The transaction's action that moves the revision on from `read`, and fails if it moved since."""
    condition = "attribute_not_exists(revision)" if read == 0 else "revision = :read"
    values = {":next": {"N": str(read + 1)}} | ({":read": {"N": str(read)}} if read else {})
    return {
        "Update": {
            "TableName": table,
            "Key": {KEY: {"S": REVISION}},
            "UpdateExpression": "SET revision = :next",
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
    }


def write(dynamodb: Any, table: str, read: int, actions: list[dict[str, Any]]) -> None:
    """`actions` (Put/Delete), with the revision moved on from `read`, all or nothing; TableChanged when
    another command wrote since `read`."""
    if len(actions) >= TRANSACTION_LIMIT:
        raise ValueError(f"at most {TRANSACTION_LIMIT - 1} items per push: push the files in smaller folders")
    try:
        dynamodb.transact_write_items(TransactItems=[_move_on(table, read), *actions])
    except dynamodb.exceptions.TransactionCanceledException as error:
        reasons = [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]
        if reasons and reasons[0] == "ConditionalCheckFailed":
            raise TableChanged(
                f"{table} changed while this command ran (another items push or delete): nothing was written;"
                " run mlops-sfn items diff, then push again"
            ) from None
        raise


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
    """Every item in the table, as plain JSON, by pipeline name (Scan, page by page); not the revision."""
    found = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for typed in page["Items"]:
            item = dynamodb_json.from_typed(typed)
            if item.get(KEY) != REVISION:
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


def push(dynamodb: Any, table: str, items: list[dict[str, Any]], read: int) -> None:
    """Write `items` in one transaction with the revision read before they were checked (`revision`)."""
    write(
        dynamodb, table, read, [{"Put": {"TableName": table, "Item": dynamodb_json.to_typed(item)}} for item in items]
    )


def _in_order_of(new: Any, old: Any) -> Any:
    """`new`, its objects' keys in the order `old` has them (keys `old` lacks follow, as `new` has them)."""
    if isinstance(new, dict) and isinstance(old, dict):
        kept = [name for name in old if name in new] + [name for name in new if name not in old]
        return {name: _in_order_of(new[name], old.get(name)) for name in kept}
    if isinstance(new, list) and isinstance(old, list):
        return [_in_order_of(value, old[index] if index < len(old) else None) for index, value in enumerate(new)]
    return new


def _write_if_changed(path: Path, data: bytes) -> bool:
    """Write `data` to `path` unless the file already holds it; whether it was written."""
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True


def pull(table: dict[str, dict[str, Any]], into: Path) -> tuple[list[Path], list[Path]]:
    """Write each item over its file in `into` (else to `<pipeline>.json`), keeping the file's key order,
    and its DynamoDB JSON copy under typed/ as `mlops-sfn generate` would; a file that already holds
    what it would hold is left untouched. Returns (item files written, item files unchanged)."""
    into.mkdir(parents=True, exist_ok=True)
    existing: dict[str, tuple[Path, Any]] = {}
    for path in item_files(into):
        try:
            existing[str(load_item_file(path).get(KEY))] = (path, json.loads(path.read_text(encoding="utf-8")))
        except (ItemFileError, ValueError):
            continue  # an unreadable file is not this pipeline's: it is left as it is
    written: list[Path] = []
    unchanged: list[Path] = []
    for pipeline, item in sorted(table.items()):
        path, held = existing.get(pipeline, (into / f"{pipeline}.json", None))
        if held is None:  # a new file: the pipeline's name first
            held = {KEY: None}
        ordered = _in_order_of(item, held)
        changed = _write_if_changed(path, (json.dumps(ordered, indent=2) + "\n").encode())
        (written if changed else unchanged).append(path)
    for path, data in typed_items(into).items():
        _write_if_changed(path, data)
    return written, unchanged
