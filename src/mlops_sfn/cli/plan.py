"""`mlops-sfn plan ITEM [--event EVENT.json] [--outputs FILE] [--json | --graph]`: what a run of ITEM does."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..core import bounds
from ..core.plan import apply_overrides, plan_run
from ..core.problems import InvalidItem
from ..core.settings import Settings
from ..core.triggers import InvalidEvent, Manual, Trigger, parse_event
from ..operate import preview
from .common import (
    INVALID,
    OK,
    OUTPUTS_HELP,
    UsageError,
    add_sets,
    input_file,
    overrides,
    print_problems,
    problem,
    read_item,
    settings,
)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("plan", help="show the stages an item runs and the execution input")
    parser.add_argument("item", type=input_file, metavar="ITEM")
    parser.add_argument(
        "--event", type=input_file, metavar="EVENT.json", help="the triggering event (default: a manual run)"
    )
    parser.add_argument("--outputs", type=input_file, metavar="FILE", help=OUTPUTS_HELP)
    add_sets(parser, "this plan of a manual run (as `mlops-sfn run --set` starts it)")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="print the execution input the router would build")
    shown.add_argument("--graph", action="store_true", help="print a Mermaid flowchart")
    shown.add_argument(
        "--explain-cache", action="store_true", help="print what each stage's cache key covers (step caching)"
    )
    parser.set_defaults(
        run=lambda args: plan(
            args.item,
            args.event,
            args.json,
            args.graph,
            settings(args.outputs),
            explain_cache=args.explain_cache,
            sets=args.sets,
        )
    )


def _trigger(event_path: Path) -> Trigger | None:
    """The one trigger in the event file, or None once the reason is printed."""
    if not event_path.exists():
        raise UsageError(f"{event_path}: no such file")
    try:
        triggers = parse_event(bounds.read_json(event_path), invocation_id="plan")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        problem(f"{event_path}: not valid JSON: {error}")
        return None
    except (bounds.InputRefused, InvalidEvent) as error:
        problem(f"{event_path}: {error}")
        return None
    if len(triggers) != 1:
        problem(f"{event_path}: holds {len(triggers)} triggers; plan takes an event with one")
        return None
    return triggers[0]


def plan(
    item_path: Path,
    event_path: Path | None,
    as_json: bool,
    as_graph: bool,
    deployment: Settings,
    explain_cache: bool = False,
    sets: list[str] | None = None,
) -> int:
    if sets and event_path is not None:
        raise UsageError("--set changes a manual run (mlops-sfn run --set); an event's run takes the item as it is")
    changes = overrides(sets or [])
    item = read_item(item_path)
    if item is None:
        return INVALID
    pipeline = str(item.get("consumption_pipeline_name"))
    manual = Manual(pipeline=pipeline, run_id="preview", overrides=changes)
    trigger = manual if event_path is None else _trigger(event_path)
    if trigger is None:
        return INVALID
    try:
        planned = plan_run(item, trigger, deployment)
    except InvalidItem as error:
        print_problems(item_path, error.problems)
        return INVALID
    reason = trigger.mismatch(item)
    if reason:
        problem(f"{event_path}: this event starts nothing: {reason}")
        return INVALID
    execution_input = planned.execution_input
    if as_json:
        print(json.dumps(execution_input, indent=2))
    elif as_graph:
        print(preview.mermaid(execution_input))
    elif explain_cache:
        print(preview.cache_text(execution_input, apply_overrides(item, trigger), planned.segment_inputs))
    else:
        listed_by = item.get("fanout", {}).get("segments_file")
        shown = preview.text(execution_input, item.get("enabled", True), planned.segment_inputs, listed_by)
        print(shown)
        print(preview.estimate_text(planned.estimate, item.get("budget_usd")))
    return OK
