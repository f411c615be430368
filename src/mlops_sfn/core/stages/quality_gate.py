"""The quality gate, the checkpoint evaluation declares: does the report's metric pass the item's threshold?

Called by the state machine through a small Lambda (lambdas/quality_gate/handler.py), because
JSONPath cannot follow a metric path that is itself data. The function reads the report from S3, so
that no report, however large, travels through the state machine's 256 KiB state.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from typing import Any

from ..model_copy import MISSING
from ..problems import Error

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


MAX_REPORT_BYTES = 10 * 1024 * 1024  # a metrics report; anything larger is not one


class ReportUnreadable(Error):
    """The evaluation report is missing, too large or not JSON (the run fails at quality_gate with this)."""


def read_report(location: dict[str, str], s3: Any = None) -> Any:
    """The evaluation report at {"Bucket", "Key"}, parsed."""
    import boto3  # here, so that evaluate() needs no AWS SDK

    s3 = s3 or boto3.client("s3")
    where = f"s3://{location['Bucket']}/{location['Key']}"
    try:
        response = s3.get_object(Bucket=location["Bucket"], Key=location["Key"])
    except s3.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") not in MISSING:
            raise
        raise ReportUnreadable(
            f"no evaluation report at {where}: the evaluation job must write it there (stages.evaluation.report_uri)"
        ) from None
    if response["ContentLength"] > MAX_REPORT_BYTES:
        raise ReportUnreadable(
            f"the evaluation report {where} has {response['ContentLength']} bytes, "
            f"more than {MAX_REPORT_BYTES}: write only the metrics there"
        )
    try:
        return json.loads(response["Body"].read())
    except ValueError as error:
        raise ReportUnreadable(f"the evaluation report {where} is not JSON: {error}") from None


def handler(event: dict[str, Any], context: Any, s3: Any = None) -> dict[str, Any]:
    """The quality-gate Lambda's handler (lambdas/quality_gate/handler.py exports this one).
    Event: {"report": {"Bucket", "Key"} of the evaluation report, "gate": <the item's quality_gate>};
    returns the verdict. `s3`: the client to read with (Lambda gives none: the default one)."""
    return evaluate(read_report(event["report"], s3), event["gate"])


def explain(gate: dict[str, Any]) -> str:
    """The item's gate in words: "rmse <= 0.5"."""
    return f"{gate['metric']} {COMPARISONS[gate['comparison']][0]} {gate['threshold']}"
