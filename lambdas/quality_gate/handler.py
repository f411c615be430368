"""AWS Lambda entry point of the quality gate, invoked by the state machine's "Check quality gate" state.

Event: {"report": <the evaluation report>, "gate": <the item's quality_gate>}. Returns the verdict;
the state machine fails the run, naming the metric, its value and the threshold, when it is not met.
The handler lives in the package, so `mlops-sfn local run` calls the same function from an install.
"""

from mlops_sfn.core.stages.quality_gate import handler

__all__ = ["handler"]
