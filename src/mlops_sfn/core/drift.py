"""Drift handling: what the router does with a drift alarm's event.

The router's third job (core/router.py routes, core/prefixes.py owns prefixes). A drift alarm's
name holds its pipeline (<prefix>drift-<pipeline>); its run says what drifted (the latest
constraint violations); one drift run starts per cool-down.
"""

from __future__ import annotations

import json
import time
from typing import Any

from . import cache, monitoring, uploads
from .stage import runs
from .triggers import Drift, Trigger, shorten

VIOLATIONS_KEPT = 20  # of a report's violations, in the run's input (the report holds them all)


def pipeline_of(trigger: Drift, name_prefix: str) -> tuple[str | None, str]:
    """(the pipeline a drift alarm's name holds, or None; why not)."""
    named = monitoring.pipeline_of_alarm(trigger.alarm or "", name_prefix)
    if named is not None:
        return named, ""
    prefix, alarm = monitoring.drift_alarm_name("", name_prefix), shorten(trigger.alarm or "", 200)
    return None, f"alarm {alarm!r} is not a drift alarm of this deployment ({prefix}<pipeline>)"


def not_retrained(item: dict[str, Any], trigger: Trigger) -> str | None:
    """Why a drift alarm's episode starts nothing for this item, if it does not."""
    if trigger.source != "monitoring":
        return None
    if not runs(item, "monitoring"):
        return "the item no longer monitors its endpoint (stages.monitoring.run is not true)"
    if monitoring.on_drift(item) == "off":
        return "stages.monitoring.retrain.on_drift is off"
    return None


def violations(s3: Any, bucket: str, pipeline: str) -> dict[str, Any]:
    """The pipeline's latest constraint_violations.json (its monitoring executions' reports), for the
    run and its notification to say what drifted; what could not be read is said instead."""
    from botocore.exceptions import ClientError

    bucket, _, prefix = monitoring.reports_folder(bucket, pipeline).partition("//")[2].partition("/")
    try:
        report = "/constraint_violations.json"
        listed = uploads.newest_first(s3, bucket, prefix + "/", lambda key: key.endswith(report))
        latest = listed[0] if listed else None
        if latest is None:
            return {"unread": f"no constraint_violations.json under s3://{bucket}/{prefix}/"}
        report = json.loads(s3.get_object(Bucket=bucket, Key=latest["Key"])["Body"].read())
    except (ClientError, ValueError) as error:
        return {"unread": shorten(str(error), 200)}
    found = report.get("violations", []) if isinstance(report, dict) else []
    kept = [
        {key: shorten(str(entry.get(key, "")), 200) for key in ("feature_name", "constraint_check_type", "description")}
        for entry in found[:VIOLATIONS_KEPT]
        if isinstance(entry, dict)
    ]
    return {"report": f"s3://{bucket}/{latest['Key']}", "count": len(found), "violations": kept}


def cooling_down(dynamodb: Any, ledger: str | None, pipeline: str, item: dict[str, Any], name: str) -> str | None:
    """One drift run per cool-down: the run ledger keeps the pipeline's last drift run until its
    cool-down ends (a conditional write, so two episodes racing start one run). A redelivery of the
    same episode finds its own record and goes on to StartExecution, which refuses a duplicate."""
    if ledger is None:
        return None
    from botocore.exceptions import ClientError

    cool_down = item["stages"]["monitoring"].get("retrain", {}).get("cool_down", monitoring.DEFAULT_COOL_DOWN)
    now = int(time.time())
    try:
        dynamodb.put_item(
            TableName=ledger,
            Item={
                "cache_key": {"S": monitoring.episode_key(pipeline)},
                "execution": {"S": name},
                "started_at": {"N": str(now)},
                "expires_at": {"N": str(now + cache.seconds(cool_down))},
            },
            ConditionExpression="attribute_not_exists(cache_key) OR expires_at < :now OR #execution = :name",
            ExpressionAttributeNames={"#execution": "execution"},
            ExpressionAttributeValues={":now": {"N": str(now)}, ":name": {"S": name}},
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        last = dynamodb.get_item(
            TableName=ledger, Key={"cache_key": {"S": monitoring.episode_key(pipeline)}}, ConsistentRead=True
        ).get("Item", {})
        started = last.get("execution", {}).get("S", "?")
        within = f"started within the cool-down of {cool_down} (stages.monitoring.retrain.cool_down)"
        return f"a drift run ({started}) {within}"
    return None
