"""`mlops-sfn validate [PATH]... [--outputs FILE]`: check pipeline items, each against the others too."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..core.item import ItemFileError, check_unique, item_files, load_item_file
from ..core.plan import check_with_sample
from ..core.settings import Settings
from .common import INVALID, OK, OUTPUTS_HELP, UsageError, input_file, print_problems, problem, settings

DEFAULT_ITEMS = Path("dynamodb_items")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("validate", help="check pipeline items (files or folders)")
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH", help=f"default: {DEFAULT_ITEMS}/")
    parser.add_argument("--outputs", type=input_file, metavar="FILE", help=OUTPUTS_HELP)
    parser.set_defaults(run=lambda args: validate(args.paths or [DEFAULT_ITEMS], settings(args.outputs)))


def _item_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += item_files(path)
        elif path.exists():
            files.append(path)  # a FIFO or device is reported by load_item_file, never read
        else:
            raise UsageError(f"{path}: no such file or folder")
    if not files:
        raise UsageError(f"no .json items found in {', '.join(map(str, paths))}")
    return files


def validate(paths: list[Path], deployment: Settings) -> int:
    return checked(paths, deployment)[0]


def checked(
    paths: list[Path], deployment: Settings, others: list[tuple[str, dict[str, Any]]] | None = None
) -> tuple[int, list[tuple[str, dict[str, Any]]]]:
    """Check every item file, each against the others and `others` (items already elsewhere, e.g. in
    the table, where a file of the same pipeline replaces them), printing each problem; returns the
    exit code and the (file, item) pairs read."""
    files = _item_files(paths)
    failed: set[str] = set()
    loaded: list[tuple[str, dict[str, Any]]] = []
    for file in files:
        try:
            item = load_item_file(file)
        except ItemFileError as error:
            problem(f"{file}: {error}")
            failed.add(str(file))
            continue
        problems = check_with_sample(item, deployment)
        print_problems(file, problems)
        if problems:
            failed.add(str(file))
        loaded.append((str(file), item))
    names = {item.get("consumption_pipeline_name") for _, item in loaded}
    kept = [(source, item) for source, item in others or [] if item.get("consumption_pipeline_name") not in names]
    for source, duplicate in check_unique(kept + loaded):  # a conflict is the file's problem
        if source in {str(file) for file in files}:
            problem(f"{source}: {duplicate}")
            failed.add(source)
    if failed:
        problem(f"{len(failed)} of {len(files)} file(s) invalid")
        return INVALID, loaded
    print(f"{len(files)} item(s) valid")
    return OK, loaded
