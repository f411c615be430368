"""AWS Lambda entry point of the quality gate, invoked by the state machine's "Check quality gate" state.

Event: {"report": <the evaluation report>, "gate": <the item's quality_gate>}. Returns the verdict;
the state machine fails the run, naming the metric, its value and the threshold, when it is not met.
"""

from typing import Any

from mlops_sfn.gate import evaluate


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return evaluate(event["report"], event["gate"])
