"""What every command shares: exit codes, the one way problems are printed, the deployment's
settings and reading an item file."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core import bounds
from ..core.item import ItemFileError, load_item_file
from ..core.problems import Error, Problem
from ..core.settings import EXAMPLE_SETTINGS, SETTINGS_ENVIRONMENT, Settings
from ..core.stages import STAGES

# Exit codes, the same for every command.
OK = 0  # done; for a run, it succeeded
INVALID = 1  # the input is invalid (each problem printed), a run failed, or AWS refused a call
USAGE = 2  # the command line is wrong (a missing file, an option the command cannot use)
INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)


class UsageError(Error):
    """A wrong command line: main() prints it and exits USAGE."""

    exit_code = USAGE


FOLDER = "a folder, not a file"  # how every command refuses a folder where it reads or writes a file


def input_file(text: str) -> Path:
    """An argument naming a file to read (argparse `type`): a folder or a missing path is a usage
    error (exit 2), said the same way by every command."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {FOLDER}: name the file")
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return path


OUTPUTS_HELP = (
    "`terraform output -json` of the deployed root, saved to a file: check against that deployment's bucket,"
    " role, image repositories and name prefix (default: the environment's ARTIFACT_BUCKET, ..., else an"
    " example deployment)"
)


def meanings(intro: str, choices: dict[str, str]) -> str:
    """An option's help that lists what each of its choices means."""
    return f"{intro}: " + "; ".join(f"{name}: {meaning}" for name, meaning in choices.items())


def problem(text: str) -> None:
    """Every refusal and problem goes to stderr (stdout carries only a command's result)."""
    print(text, file=sys.stderr)


def print_problems(source: Path, problems: list[Problem]) -> None:
    for found in problems:
        problem(f"{source}: {found}")


def settings(outputs: Path | None = None) -> Settings:
    """The deployment's settings: from its Terraform outputs when given, else where the environment
    names them (as in the router), else the example's."""
    if outputs is None:
        found = Settings.from_environment(fallback=EXAMPLE_SETTINGS)
        try:
            found.tags()
        except ValueError as error:  # (json.JSONDecodeError is one)
            tagged = SETTINGS_ENVIRONMENT["deployment_tags"]
            raise UsageError(
                f"{tagged}: expected a JSON object of tag keys and values, as the router has it: {error}"
            ) from None
        return found
    if not outputs.exists():
        raise UsageError(f"{outputs}: no such file")
    try:
        document = bounds.read_json(outputs)
        return Settings.from_outputs(document if isinstance(document, dict) else {})
    except (json.JSONDecodeError, UnicodeDecodeError, bounds.InputRefused) as error:
        raise UsageError(f"{outputs}: not `terraform output -json` of the root: {error}") from error
    except KeyError as error:
        raise UsageError(
            f"{outputs}: not `terraform output -json` of the root: it lacks {error.args[0]}"
            " (apply the current root, then save its outputs again)"
        ) from error


def read_item(path: Path) -> dict[str, Any] | None:
    """The item in `path`, or None once the reason it cannot be read is printed; a missing file is a usage error."""
    if not path.exists():
        raise UsageError(f"{path}: no such file")
    try:
        return load_item_file(path)
    except ItemFileError as error:
        problem(f"{path}: {error}")
        return None


# --- the deployment the operator commands act on ----------------------------------------------------

TARGET_HELP = (
    "`terraform output -json` of the deployed root, saved to a file: act on that deployment, in its region"
    " (AWS_ENDPOINT_URL, as for any AWS SDK, selects another endpoint); default: the local deployment"
    " `mlops-sfn local up` started"
)


@dataclass(frozen=True)
class Target:
    """A deployment: its root's Terraform outputs, and its AWS (service name -> client)."""

    outputs: dict[str, Any]
    client: Callable[..., Any]  # (service, config=botocore Config) -> client
    where: str
    local: bool = False  # the local stack: no AWS console shows it

    def settings(self) -> Settings:
        """What items are checked against: this deployment's bucket, role, image repositories, ..."""
        try:
            return Settings.from_outputs(self.outputs)
        except KeyError as error:
            lacking = error.args[0]
            raise UsageError(f"{self.where}: the deployment lacks outputs {lacking}: apply the current root") from None

    def output(self, name: str) -> str:
        """One of the root's string outputs (a name, an ARN, a URL)."""
        value = self.outputs.get(name)
        if value in (None, "", []):
            raise UsageError(f"{self.where}: the deployment has no output {name}: apply the current root")
        if not isinstance(value, str):
            raise UsageError(f"{self.where}: the output {name} is not a string: is this the root's outputs?")
        return value


def target(outputs: Path | None) -> Target:
    """The deployment named by `--outputs FILE`, else the local one that is up; UsageError otherwise."""
    if outputs is not None:
        if not outputs.exists():
            raise UsageError(f"{outputs}: no such file")
        try:
            document = bounds.read_json(outputs)
        except (json.JSONDecodeError, UnicodeDecodeError, bounds.InputRefused) as error:
            raise UsageError(f"{outputs}: not `terraform output -json` of the root: {error}") from error
        if not isinstance(document, dict) or not all(isinstance(e, dict) and "value" in e for e in document.values()):
            raise UsageError(f"{outputs}: not `terraform output -json` of the root ({{name: {{value: ...}}}})")
        values = {name: entry["value"] for name, entry in document.items()}
        if not isinstance(values.get("region") or "", str):
            raise UsageError(f"{outputs}: its region output is not a region name: is this the root's outputs?")
        import boto3

        session = boto3.session.Session(region_name=values.get("region") or None)
        return Target(values, session.client, str(outputs))
    try:
        from ..local import deployment
    except ImportError:  # the local extra is not installed
        deployment = None  # type: ignore[assignment]
    local = deployment.load() if deployment else None
    if local is None:
        raise UsageError(
            "no deployment found: give --outputs FILE (`terraform output -json` of the deployed root, saved),"
            " or start the local one with `mlops-sfn local up`"
        )
    return Target(local.outputs, local.client, f"the local deployment ({local.endpoint})", local=True)


def add_target(parser: Any) -> None:
    parser.add_argument("--outputs", type=input_file, metavar="FILE", help=TARGET_HELP)


def add_sets(parser: Any, scope: str) -> None:
    """`--set PATH=VALUE` (repeatable): the item changed for `scope` only."""
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help=f"change the item for {scope} only: PATH is dotted (a stage name first means stages.<stage>),"
        " VALUE is JSON or else a string, e.g. --set training.request.StoppingCondition.MaxRuntimeInSeconds=7200"
        " (repeatable)",
    )


def overrides(sets: list[str]) -> dict[str, Any]:
    """--set PATH=VALUE options as the partial item the router merges over the stored one."""
    merged: dict[str, Any] = {}
    for option in sets:
        path, equals, text = option.partition("=")
        parts = path.split(".")
        if not equals or not all(parts):
            raise UsageError(f"--set {option}: expected PATH=VALUE, e.g. training.request.HyperParameters.alpha=0.1")
        if parts[0] in STAGES:
            parts.insert(0, "stages")
        try:
            value = bounds.parse_json(text)
        except json.JSONDecodeError:
            value = text
        except bounds.InputRefused as refused:
            raise UsageError(f"--set {path[:200]}: {refused}") from None
        depth = len(parts) + bounds.nesting(value)  # the path's levels count too
        if depth > bounds.ITEM_DEPTH:
            shown = path if len(path) <= 200 else path[:200] + "..."
            raise UsageError(
                f"--set {shown}: nests {depth} levels (path and value); an item nests at most {bounds.ITEM_DEPTH}"
            )
        node = merged
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UsageError(f"--set {option}: {'.'.join(parts)} is inside a value another --set gives")
        node[parts[-1]] = value
    return merged
