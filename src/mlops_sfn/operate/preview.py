"""Human views of a planned execution: the stage list and a Mermaid flowchart."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..core import cache, fanout
from ..core.stages import SERVING, STAGE, STAGES, WATCHING


def stage_summary(stage: str, block: dict[str, Any]) -> str:
    """One line on what a planned stage will do (its definition says how)."""
    return STAGE[stage].preview(block)


def _checkpoints(stage: str, execution_input: dict[str, Any]) -> list[Any]:
    """The stage's checkpoints this run has (the item set them)."""
    return [checkpoint for checkpoint in STAGE[stage].checkpoints if checkpoint.name in execution_input]


def text(
    execution_input: dict[str, Any],
    enabled: bool,
    segment_inputs: Sequence[dict[str, Any]] = (),
    item_file: str | None = None,
) -> str:
    """The plan in lines; a stage that runs per segment shows the first segment's (`segment_inputs`)."""
    lines = [
        f"pipeline:   {execution_input['pipeline']}{'' if enabled else ' (disabled: triggers start nothing)'}",
        f"execution:  {execution_input['execution_name']}",
        f"dataset:    {execution_input['dataset_date']}",
        f"outputs:    {execution_input['run_folder']}",
    ]
    fanned = execution_input.get("fanout")
    if fanned:
        file = fanned["count"] is None  # the upload lists them: read when the run starts
        listed = [planned["segment"] for planned in segment_inputs]
        lines.append(fanout.preview(fanned, listed, file=item_file if file else None))
    lines.append("stages:")
    first = segment_inputs[0] if segment_inputs else None
    number = 0
    for stage in STAGES:
        if fanned and stage in fanned["stages"] and first is None:
            number += 1
            lines.append(f"  {number}. {stage:<16} per segment (the segments the upload lists)")
            continue
        planned = first if first is not None and fanned and stage in fanned["stages"] else execution_input
        if planned["run"][stage]:
            number += 1
            detail = stage_summary(stage, planned["stages"][stage])
            if planned is first:
                detail = f"per segment ({first['segment']}'s:) {detail}"
            lines.append(f"  {number}. {stage:<16} {detail}")
            for checkpoint in _checkpoints(stage, planned):
                explained = checkpoint.explain(planned[checkpoint.name])
                lines.append(f"     {checkpoint.title:<16} pass when {explained}")
        else:
            lines.append(f"  -  {stage:<16} skipped")
    return "\n".join(lines)


def mermaid(execution_input: dict[str, Any], outcomes: dict[str, tuple[str, float | None]] | None = None) -> str:
    """A flowchart of the stages in order; skipped stages are dashed and labelled. With `outcomes`
    (stage -> (status, seconds), from a finished run) each stage shows how it went."""
    per_segment = execution_input.get("fanout", {}).get("stages", [])
    run = execution_input["run"] | {stage: True for stage in per_segment}
    lines = ["flowchart TD", "  start([trigger])"]

    def node(stage: str) -> str:
        if stage in per_segment and not outcomes:
            return f'  {stage}[["{stage}<br/>(per segment)"]]'
        if not run[stage]:
            return f'  {stage}["{stage}<br/>(skipped)"]:::skipped'
        if outcomes and stage in outcomes:
            status, seconds = outcomes[stage]
            took = f" {seconds:.1f} s" if seconds is not None else ""
            return f'  {stage}["{stage}<br/>{status}{took}"]:::{status.replace(" ", "_")}'
        return f'  {stage}["{stage}"]'

    sequential = [s for s in STAGES if s not in SERVING and s not in WATCHING]
    previous = "start"
    for stage in sequential:
        lines.append(node(stage))
        lines.append(f"  {previous} --> {stage}")
        previous = stage
        for checkpoint in _checkpoints(stage, execution_input):
            verdict = outcomes.get(checkpoint.name) if outcomes else None
            label = f"{checkpoint.title}<br/>{checkpoint.explain(execution_input[checkpoint.name])}"
            label += f"<br/>{verdict[0]}" if verdict else ""
            style = f":::{verdict[0].replace(' ', '_')}" if verdict else ""
            lines.append(f'  {checkpoint.name}{{"{label}"}}{style}')
            lines.append(f"  {previous} --> {checkpoint.name}")
            lines.append(f"  {checkpoint.name} -- fails --> failed([failed])")
            previous = checkpoint.name
    # The serving stages (batch transform, deploy) run side by side once the model exists; the
    # watching stages (monitoring) follow once they succeeded.
    lines.append("  finished([succeeded])")
    served = WATCHING[0] if WATCHING else "finished"
    for stage in SERVING:
        lines.append(node(stage))
        lines.append(f"  {previous} --> {stage}")
        lines.append(f"  {stage} --> {served}")
    for stage, after in zip(WATCHING, [*WATCHING[1:], "finished"], strict=True):
        lines.append(node(stage))
        lines.append(f"  {stage} --> {after}")
    lines.append("  classDef skipped stroke-dasharray: 5 5,color:#888,fill:#f4f4f4")
    if outcomes:
        lines.append("  classDef succeeded fill:#e6f4ea,stroke:#1e8e3e")
        lines.append("  classDef failed fill:#fce8e6,stroke:#d93025")
        lines.append("  classDef not_reached color:#888,fill:#fff")
        lines.append("  classDef met fill:#e6f4ea,stroke:#1e8e3e")
        lines.append("  classDef not_met fill:#fce8e6,stroke:#d93025")
    return "\n".join(lines)


def cache_text(
    execution_input: dict[str, Any], item: dict[str, Any], segment_inputs: Sequence[dict[str, Any]] = ()
) -> str:
    """`plan --explain-cache`: for each running stage, whether it is cached and what its key covers;
    for the stages a fanned-out run runs per segment, the first segment's."""
    per_segment = execution_input.get("fanout", {}).get("stages", [])
    first_segment_stage = STAGES.index(per_segment[0]) if per_segment else len(STAGES)
    lines = _cache_lines(execution_input, item, lambda stage: STAGES.index(stage) < first_segment_stage)
    if segment_inputs:
        first = segment_inputs[0]
        lines.append(f"per segment ({first['segment']}'s; each segment has keys of its own, its id included):")
        lines += [f"  {line}" for line in _cache_lines(first, item)]
    elif "fanout" in execution_input:
        lines.append("per segment: keyed for each segment once the run reads the upload's list of them")
    # the stages that run once after the segments (what serves their models)
    lines += _cache_lines(execution_input, item, lambda stage: STAGES.index(stage) > first_segment_stage)
    return "\n".join(lines)


def _cache_lines(
    execution_input: dict[str, Any], item: dict[str, Any], shown: Callable[[str], bool] = lambda stage: True
) -> list[str]:
    found = cache.keys(execution_input, lambda location: "listed when the run starts")
    lines = []
    for stage, key in found.items():
        if not shown(stage):
            continue
        wanted = cache.settings(item, stage)
        if wanted:
            lines.append(f"{stage}: cached, a record reused for {cache.expire_after(wanted)}")
        elif STAGE[stage].cacheable:
            lines.append(f'{stage}: not cached (set stages.{stage}.cache to {{"enabled": true}} to cache it)')
        else:
            lines.append(f"{stage}: not cacheable; its key carries what it uses to the stages after it")
        lines.append("  key covers: its planned request, per-run names and the run folder aside")
        if key.reads:
            lines.append("  and the content (key, ETag, size of every object, listed when the run starts) of:")
            lines += [f"    {location}" for location in key.reads]
        if key.upstream:
            lines.append(f"  and the keys of: {', '.join(key.upstream)} (whose outputs or names it uses)")
        for checkpoint in _checkpoints(stage, execution_input):
            lines.append(f"  and the {checkpoint.title} (a reused {stage} skips it)")
    return lines


def estimate_text(bound: dict[str, Any], budget: float | None = None) -> str:
    """The run's cost bound (core/estimate.py) in lines: the total, then what each stage pays for."""
    within = f" (budget_usd {budget:g})" if budget is not None else ""
    lines = [
        f"estimate:   at most USD {bound['usd']:.2f}{within}, prices of {bound['prices_as_of']} in {bound['region']}"
    ]
    lines += [f"  {line}" for line in bound["charges"]]
    lines.append(
        f"  step functions: USD {bound['stages']['step_functions']:.4f}, about {bound['transitions']} transitions"
    )
    if bound["unpriced"]:
        lines.append(f"  not counted (no price): {', '.join(bound['unpriced'])}: mlops-sfn prices refresh")
    return "\n".join(lines)
