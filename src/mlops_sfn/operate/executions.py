"""Reading what an execution did, for the commands that report runs (`local run`, `local demo`).

One place for how the definition's outcomes are read back: a failed job's cause (its whole
description) comes down to its FailureReason, and the run's error ("<stage>.<error>") names the
stage that failed.
"""

from __future__ import annotations

from typing import Any

from ..core.stages import CHECKPOINTS, REPORTED

# A stage's outcome: switched off, ran to its end, failed, started but not ended (the run was
# stopped or is still going), or switched on but never reached (an earlier stage failed).
# A rerun's reused stage did not run: its results come from the earlier run (`reused` in the input).
# A stage of a fanned-out run's segments ran once per segment: the segments' summary tells how each went.
OUTCOMES = ("skipped", "succeeded", "failed", "started", "not_reached", "reused", "per_segment")


def stage_outcomes(
    execution_input: dict[str, Any], status: str, error: str | None, task_entered: dict[str, bool]
) -> dict[str, str]:
    """Each stage's outcome (OUTCOMES), its checkpoints' included when the item has them. The run's
    error names the failed stage(s) ("deploy.EndpointFailed", "batch_transform,deploy.StagesFailed");
    every other stage entered in a run that ended ran to its end, since stages follow one another
    and the serving branches end on their own."""
    failed = set((error or "").split(".")[0].split(",")) if status == "FAILED" else set()
    ended = status in ("SUCCEEDED", "FAILED")
    switched_on = dict(execution_input["run"])
    reused = dict(execution_input.get("reused", {}))
    for name, (_, owner) in CHECKPOINTS.items():  # a checkpoint runs, or is reused, with its stage
        if name in execution_input:
            switched_on[name] = switched_on.get(owner.name, False)
        if owner.name in reused:
            reused[name] = reused[owner.name]
    per_segment = set(execution_input.get("fanout", {}).get("stages", []))
    per_segment |= {
        name for name, (_, owner) in CHECKPOINTS.items() if owner.name in per_segment and name in execution_input
    }
    outcomes = {}
    for stage in (stage for stage in REPORTED if stage in switched_on):
        if stage in per_segment:
            outcomes[stage] = "per_segment"
        elif stage in reused:
            outcomes[stage] = "reused"
        elif not switched_on[stage]:
            outcomes[stage] = "skipped"
        elif stage in failed:
            outcomes[stage] = "failed"
        elif task_entered.get(stage):
            outcomes[stage] = "succeeded" if ended else "started"
        else:
            outcomes[stage] = "not_reached"
    return outcomes
