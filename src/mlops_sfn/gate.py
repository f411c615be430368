"""The quality gate: does the evaluation report's metric pass the item's threshold?

Called by the state machine through a small Lambda (lambdas/quality_gate/handler.py), because
JSONPath cannot follow a metric path that is itself data.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

COMPARISONS: dict[str, tuple[str, Callable[[float, float], bool]]] = {
    "less_than": ("<", operator.lt),
    "less_than_or_equal": ("<=", operator.le),
    "greater_than": (">", operator.gt),
    "greater_than_or_equal": (">=", operator.ge),
}


def evaluate(report: Any, gate: dict[str, Any]) -> dict[str, Any]:
    """{"met", "metric", "value", "threshold", "comparison", "message"}; a missing metric fails the gate."""
    metric, comparison, threshold = gate["metric"], gate["comparison"], gate["threshold"]
    symbol, compare = COMPARISONS[comparison]
    result: dict[str, Any] = {"metric": metric, "threshold": threshold, "comparison": comparison, "value": None}
    node: Any = report
    walked: list[str] = []
    for key in metric.split("."):
        if not isinstance(node, dict) or key not in node:
            where = ".".join(walked) or "the report's top level"
            keys = ", ".join(sorted(node)) if isinstance(node, dict) else f"a {type(node).__name__}, not an object"
            message = f"quality gate: {metric} is not in the evaluation report ({where} holds: {keys or 'nothing'})"
            return result | {"met": False, "message": message}
        node = node[key]
        walked.append(key)
    if isinstance(node, bool) or not isinstance(node, int | float):
        return result | {"met": False, "message": f"quality gate: {metric} is {node!r}, not a number"}
    met = compare(node, threshold)
    verdict = "met" if met else "not met"
    message = f"quality gate {verdict}: {metric} = {node} (required {symbol} {threshold})"
    return result | {"value": node, "met": met, "message": message}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The quality-gate Lambda's handler (lambdas/quality_gate/handler.py exports this one).
    Event: {"report": <the evaluation report>, "gate": <the item's quality_gate>}; returns the verdict."""
    return evaluate(event["report"], event["gate"])
