"""`mlops-sfn items diff | push | pull | delete`: the item files against the deployed pipeline-config table."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..operate import items
from .common import INVALID, OK, UsageError, add_target, problem, target
from .validate import DEFAULT_ITEMS, checked


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = commands.add_parser("items", help="compare, push or pull the items of the deployed table")
    verbs = group.add_subparsers(dest="items_command", required=True, metavar="COMMAND")
    for verb, meaning in [
        ("diff", "compare the item files with the table (exit 1 when they differ)"),
        ("push", "write the item files to the table, only if every one is valid"),
    ]:
        parser = verbs.add_parser(verb, help=meaning)
        parser.add_argument("paths", nargs="*", type=Path, metavar="PATH", help=f"default: {DEFAULT_ITEMS}/")
        add_target(parser)
        parser.set_defaults(run=diff if verb == "diff" else push)
    pull = verbs.add_parser("pull", help="write the table's items to plain JSON files (and their typed copies)")
    pull.add_argument("--into", type=Path, default=DEFAULT_ITEMS, metavar="FOLDER", help=f"default: {DEFAULT_ITEMS}/")
    add_target(pull)
    pull.set_defaults(run=pull_items)
    delete = verbs.add_parser("delete", help="remove a pipeline's item from the table (its uploads then start nothing)")
    delete.add_argument("pipeline", metavar="PIPELINE", help="the item's consumption_pipeline_name")
    delete.add_argument("--force", action="store_true", help="even while a run of it is in flight")
    add_target(delete)
    delete.set_defaults(run=delete_item)


def diff(args: argparse.Namespace) -> int:
    deployment = target(args.outputs)
    table = items.deployed(deployment.client("dynamodb"), deployment.output("table_name"))
    code, loaded = checked(args.paths or [DEFAULT_ITEMS], deployment.settings())
    files = {str(item.get(items.KEY)): item for _, item in loaded}
    found = items.differences(files, table if not args.paths else {k: v for k, v in table.items() if k in files})
    for difference in found:
        print(difference.line())
    return OK if code == OK and all(d.kind == "same" for d in found) else INVALID


def push(args: argparse.Namespace) -> int:
    deployment = target(args.outputs)
    if deployment.output("items_ownership") == "terraform":
        raise UsageError(
            'the deployment\'s items are owned by Terraform (items_ownership = "terraform"): an apply would'
            " undo a push; change the files and apply instead"
        )
    dynamodb, table_name = deployment.client("dynamodb"), deployment.output("table_name")
    read = items.revision(dynamodb, table_name)  # before the items are read: a push since moves it on
    table = items.deployed(dynamodb, table_name)
    paths = args.paths or [DEFAULT_ITEMS]
    others = [(f"{table_name}: {name}", item) for name, item in table.items()]
    code, loaded = checked(paths, deployment.settings(), others)
    if code != OK:
        problem(f"nothing written to {table_name}")
        return INVALID
    found = {d.pipeline: d for d in items.differences({str(i[items.KEY]): i for _, i in loaded}, table)}
    changed = [item for _, item in loaded if found[str(item[items.KEY])].kind != "same"]
    try:
        items.push(dynamodb, table_name, changed, read)
    except (items.TableChanged, ValueError) as refused:
        problem(f"mlops-sfn items push: {refused}")
        return INVALID
    for item in changed:
        print(found[str(item[items.KEY])].line())
    print(f"{len(changed)} item(s) written to {table_name}, {len(loaded) - len(changed)} unchanged")
    return OK


def pull_items(args: argparse.Namespace) -> int:
    deployment = target(args.outputs)
    table = items.deployed(deployment.client("dynamodb"), deployment.output("table_name"))
    if args.into.exists() and not args.into.is_dir():
        raise UsageError(f"--into {args.into}: a file, not a folder: name a folder for the item files")
    try:
        written, unchanged = items.pull(table, args.into)
    except OSError as error:
        raise UsageError(f"--into {args.into}: cannot write there: {error.strerror or error}") from None
    print(f"{len(written)} item(s) written to {args.into}/ (with their typed copies), {len(unchanged)} unchanged")
    return OK


def delete_item(args: argparse.Namespace) -> int:
    """Remove one item; refused while a run of the pipeline is in flight (it would end without its item for
    reruns and redrives), unless --force."""
    from ..operate import runs

    deployment = target(args.outputs)
    if deployment.output("items_ownership") == "terraform":
        raise UsageError(
            'the deployment\'s items are owned by Terraform (items_ownership = "terraform"): an apply would'
            " put it back; remove its file and apply instead"
        )
    dynamodb, table_name = deployment.client("dynamodb"), deployment.output("table_name")
    key = {items.KEY: {"S": args.pipeline}}
    read = items.revision(dynamodb, table_name)
    if "Item" not in dynamodb.get_item(TableName=table_name, Key=key, ProjectionExpression=items.KEY):
        problem(f"mlops-sfn items delete: no pipeline {args.pipeline} in {table_name}")
        return INVALID
    sfn = deployment.client("stepfunctions")
    running = runs.recent(sfn, deployment.output("state_machine_arn"), args.pipeline, status="RUNNING", limit=5)
    if running and not args.force:
        problem(
            f"mlops-sfn items delete: {args.pipeline} has a run in flight ({running[0].name}): let it end, or"
            " give --force"
        )
        return INVALID
    try:
        items.write(dynamodb, table_name, read, [{"Delete": {"TableName": table_name, "Key": key}}])
    except items.TableChanged as refused:
        problem(f"mlops-sfn items delete: {refused}")
        return INVALID
    print(f"deleted {args.pipeline} from {table_name}; its item file, if any, is yours to remove")
    return OK
