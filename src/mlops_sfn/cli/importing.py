"""`mlops-sfn import aiops|reusable-framework FILE [--set NAME=VALUE]... [--dynamodb-json]`: an item of
an earlier framework, converted."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..core import bounds, dynamodb_json
from ..core.item import ItemFileError
from ..core.plan import check_with_sample
from ..operate import importers
from .common import INVALID, OK, UsageError, input_file, print_problems, problem, settings

TOKENS = {"aiops": importers.AIOPS_TOKENS, "reusable-framework": importers.REUSABLE_TOKENS}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("import", help="convert an item of an earlier framework")
    parser.add_argument("format", choices=list(TOKENS))
    parser.add_argument("source", type=input_file, metavar="FILE")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="fill a deploy-time token of the earlier file, e.g. MLOPS_BUCKET={bucket} (aiops) or "
        "'your bucket={bucket}' for <your bucket> (reusable-framework); repeatable",
    )
    parser.add_argument("--dynamodb-json", action="store_true", help="print DynamoDB-typed JSON")
    parser.set_defaults(run=lambda args: import_item(args.format, args.source, args.dynamodb_json, args.set))


def _values(assignments: list[str]) -> dict[str, str]:
    values = {}
    for assignment in assignments:
        name, equals, value = assignment.partition("=")
        if not equals or not name.strip():
            raise UsageError(f"--set {assignment!r}: expected NAME=VALUE, e.g. --set MLOPS_BUCKET={{bucket}}")
        values[name.strip().strip("<>")] = value
    return values


def _known(source: Path, values: dict[str, str], tokens: list[str]) -> None:
    """Each --set names a token the file holds: one that matches nothing would be silently ignored."""
    for name in values:
        if name not in tokens:
            held = ", ".join(tokens) or "none"
            raise UsageError(f"--set {name}=...: {source} holds no token {name!r} (its tokens: {held})")


YAML_NODES = 100_000  # nodes of a YAML document once its aliases are expanded (an input.yaml has hundreds)


def _load_yaml(text: str) -> Any:
    """yaml.safe_load, refusing a document whose aliases expand beyond YAML_NODES nodes (an alias bomb:
    a few lines that a walk of the loaded document turns into billions of nodes) or refer to
    themselves. Aliases are counted on the composed node graph, before anything is built."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        sizes: dict[int, int] = {}

        def expanded(current: Any) -> int:
            if id(current) in sizes:
                if sizes[id(current)] < 0:
                    raise bounds.InputRefused("an alias refers to the node that holds it (a recursive YAML document)")
                return sizes[id(current)]
            sizes[id(current)] = -1  # in progress
            children: list[Any] = []
            if isinstance(current, yaml.SequenceNode):
                children = list(current.value)
            elif isinstance(current, yaml.MappingNode):
                children = [part for pair in current.value for part in pair]
            size = 1 + sum(expanded(child) for child in children)
            if size > YAML_NODES:
                raise bounds.InputRefused(f"its aliases expand to more than {YAML_NODES} nodes")
            sizes[id(current)] = size
            return size

        expanded(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def import_item(kind: str, source: Path, typed: bool, assignments: list[str] | None = None) -> int:
    values = _values(assignments or [])  # (the source is an existing file: cli.common.input_file)
    try:
        text = bounds.read_text(source)
        if kind == "aiops":
            import yaml  # only this command needs PyYAML

            try:
                document = _load_yaml(text)
            except yaml.YAMLError as error:
                raise ItemFileError(f"not valid YAML: {error}") from error
            except bounds.InputRefused:
                raise
            except ValueError as error:  # int() refuses integers of more than 4,300 digits
                raise ItemFileError(f"a number too long to read: {error}") from None
            _known(source, values, importers.unfilled(document, TOKENS[kind]))
            item, notes = importers.from_aiops(document, values)
        else:
            try:
                document = bounds.parse_json(text)
            except json.JSONDecodeError as error:
                raise ItemFileError(f"line {error.lineno} column {error.colno}: not valid JSON: {error.msg}") from error
            _known(source, values, importers.unfilled(document, TOKENS[kind]))
            item, notes = importers.from_reusable_framework(document, values)
    except RecursionError:
        problem(f"{source}: nested more than {bounds.EVENT_DEPTH} levels deep")
        return INVALID
    except (ItemFileError, bounds.InputRefused, UnicodeDecodeError) as error:
        problem(f"{source}: {error}")
        return INVALID
    for note in notes:
        problem(f"{source}: note: {note}")
    print(json.dumps(dynamodb_json.to_typed(item) if typed else item, indent=2))
    tokens = importers.unfilled(item, TOKENS[kind])
    if tokens:
        for token in tokens:
            problem(
                f"{source}: {token}: a deploy-time token of the earlier file, still in the item: fill it with"
                f" --set '{token}=VALUE' (a placeholder such as {{bucket}} or {{image}} works too)"
            )
        return INVALID
    problems = check_with_sample(item, settings())
    if problems:
        problem(f"{source}: the imported item is not valid yet; fix these, then run mlops-sfn validate:")
        print_problems(source, problems)
        return INVALID
    return OK
