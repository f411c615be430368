"""`mlops-sfn import aiops|reusable-framework FILE [--dynamodb-json]`: an item of an earlier framework, converted."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .. import bounds, dynamodb_json, importers
from ..item import ItemFileError
from ..plan import check_with_sample
from .common import INVALID, OK, UsageError, print_problems, problem, settings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("import", help="convert an item of an earlier framework")
    parser.add_argument("format", choices=["aiops", "reusable-framework"])
    parser.add_argument("source", type=Path, metavar="FILE")
    parser.add_argument("--dynamodb-json", action="store_true", help="print DynamoDB-typed JSON")
    parser.set_defaults(run=lambda args: import_item(args.format, args.source, args.dynamodb_json))


def import_item(kind: str, source: Path, typed: bool) -> int:
    if not source.exists():
        raise UsageError(f"{source}: no such file")
    try:
        text = bounds.read_text(source)
        if kind == "aiops":
            import yaml  # only this command needs PyYAML

            try:
                document = yaml.safe_load(text)
            except yaml.YAMLError as error:
                raise ItemFileError(f"not valid YAML: {error}") from error
            item, notes = importers.from_aiops(document)
        else:
            try:
                document = json.loads(text)
            except json.JSONDecodeError as error:
                raise ItemFileError(f"line {error.lineno} column {error.colno}: not valid JSON: {error.msg}") from error
            item, notes = importers.from_reusable_framework(document)
    except RecursionError:
        problem(f"{source}: nested more than {bounds.EVENT_DEPTH} levels deep")
        return INVALID
    except (ItemFileError, bounds.InputRefused, UnicodeDecodeError) as error:
        problem(f"{source}: {error}")
        return INVALID
    for note in notes:
        problem(f"{source}: note: {note}")
    print(json.dumps(dynamodb_json.to_typed(item) if typed else item, indent=2))
    problems = check_with_sample(item, settings())
    if problems:
        problem(f"{source}: the imported item is not valid yet; fix these, then run mlops-sfn validate:")
        print_problems(source, problems)
        return INVALID
    return OK
